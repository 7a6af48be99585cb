package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/identity"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/server"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
	"github.com/castellan-auth/castellan/internal/web"
)

func cmdServe(ctx context.Context, args, env []string, stderr io.Writer) error {
	path, err := configFlag("serve", args, stderr)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path, env)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, newLogger(cfg.Log, stderr), serving{})
}

// serving adjusts how serve runs; the zero value serves on cfg.Listen with
// defaultLimits.
type serving struct {
	// ready, if not nil, is called with the listener's address once serving.
	ready func(addr string)
	// limits, when set, replace defaultLimits (tests use short ones).
	limits serverLimits
}

// limitsOr returns l, or def when l is unset.
func limitsOr(l, def serverLimits) serverLimits {
	if l == (serverLimits{}) {
		return def
	}
	return l
}

// configFlag parses the arguments of a command whose only flag is -config
// and returns its value.
func configFlag(command string, args []string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config `FILE` (YAML); keys can also come from CASTELLAN_* variables")
	err := fs.Parse(args)
	return *path, err
}

// newLogger builds the slog logger: text on a terminal, JSON otherwise or when
// configured.
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	format := c.Format
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if format == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	// When storage fails for every request, every request logs the same
	// error: once per interval is enough.
	return slog.New(web.LimitRepeatedErrors(h, web.RepeatedErrorInterval, clock.System{}))
}

// openStore opens the configured storage and master key.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (*sqlstore.Store, *seal.Key, error) {
	master, created, err := seal.LoadOrCreate(cfg.KeyFile)
	if err != nil {
		return nil, nil, err
	}
	if created {
		log.Warn("created a new master key; back it up: signing keys cannot be read without it", "key_file", cfg.KeyFile)
	}
	opts := storeOptions(cfg.Database)
	opts.Log = log
	store, err := sqlstore.Open(ctx, cfg.Storage, opts)
	if err != nil {
		return nil, nil, err
	}
	return store, master, nil
}

// serve runs the provider until ctx ends, then shuts down gracefully: it stops
// accepting, lets in-flight requests finish (up to 20 s) and closes storage.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, opt serving) error {
	start := time.Now()
	store, master, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close()
	srv, err := server.New(ctx, server.Deps{Config: cfg, Store: store, Master: master, Log: log})
	if err != nil {
		return err
	}
	tuneGC(cfg, srv.Users.Hasher(), log)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := newHTTPServer(srv.Handler(), limitsOr(opt.limits, defaultLimits), log)
	// Open session-ended streams never go idle: told to close, they let
	// the shutdown finish instead of holding it to its deadline.
	hs.RegisterOnShutdown(srv.Presence.Broker.Shutdown)
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	go srv.Run(bg)

	if cfg.MetricsListen != "" {
		stop, err := serveMetrics(cfg.MetricsListen, srv.MetricsHandler(), log)
		if err != nil {
			return err
		}
		defer stop()
	}
	if cfg.Debug.PprofListen != "" {
		stop, err := servePprof(cfg.Debug.PprofListen, log)
		if err != nil {
			return err
		}
		defer stop()
	}

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("castellan serving", "issuer", cfg.Issuer, "listen", ln.Addr().String(),
		"storage", strings.SplitN(cfg.Storage, ":", 2)[0], "startup_ms", time.Since(start).Milliseconds())
	if opt.ready != nil {
		opt.ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stopBG()
	if err := hs.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// tuneGC sets the garbage collector for a token server, unless GOGC or
// GOMEMLIMIT say otherwise.
//
// The live heap is small (a few MiB) and the allocation rate high (tens of KiB
// per token request), so with Go's default GOGC=100 the collector runs many
// times a second and its fixed costs were a fifth of the CPU of a token
// request: gcPercent lets the heap grow to four times what is live instead.
//
// The soft memory limit keeps that growth, and the garbage of argon2id (a
// fresh buffer of passwords.memory_kib per hash), within
// passwords.memory_limit_mib: the limit is that cap less what the process
// holds outside the Go heap (SQLite's page caches, the mapped binary), and
// never less than the hashes the pool can run at once plus the headroom the
// rest of the provider needs. Near the limit the collector runs sooner; it
// never fails an allocation.
func tuneGC(cfg *config.Config, h *identity.Hasher, log *slog.Logger) {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(gcPercent)
	}
	if _, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		return
	}
	hashing := int64(h.Slots()) * int64(h.Params().MemoryKiB) << 10
	limit := max(int64(cfg.Passwords.MemoryLimitMiB-outsideHeapMiB)<<20, hashing+heapHeadroomMiB<<20)
	debug.SetMemoryLimit(limit)
	log.Debug("garbage collector", "gogc", gcPercent, "soft_limit_mib", limit>>20)
}

const (
	gcPercent = 300
	// outsideHeapMiB is what the process maps besides the Go heap.
	outsideHeapMiB = 64
	// heapHeadroomMiB is the heap the provider needs besides password hashing.
	heapHeadroomMiB = 64
)

// storeOptions are the storage pool and migration settings of a database
// config block (the provider's and the BFF's are the same keys).
func storeOptions(db config.Database) sqlstore.Options {
	return sqlstore.Options{
		MaxOpenConns:    db.MaxOpenConns,
		MaxIdleConns:    db.MaxIdleConns,
		ConnMaxLifetime: db.ConnMaxLifetime.D(),
		ConnMaxIdleTime: db.ConnMaxIdleTime.D(),
		SkipMigrations:  !db.Migrate,
	}
}
