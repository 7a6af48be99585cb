package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/castellan-auth/castellan/internal/bff"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
)

func cmdBFF(ctx context.Context, args, env []string, stderr io.Writer) error {
	path, err := configFlag("bff", args, stderr)
	if err != nil {
		return err
	}
	cfg, err := config.LoadBFF(path, env)
	if err != nil {
		return err
	}
	return serveBFF(ctx, cfg, newLogger(cfg.Log, stderr), bffServing{})
}

// bffServing adjusts how serveBFF serves; the zero value listens on
// cfg.Listen and serves the gateway alone.
type bffServing struct {
	// ln, if not nil, is the listener to serve on.
	ln net.Listener
	// wrap, if not nil, puts something around the gateway's handler (the
	// demo app of castellan dev).
	wrap func(http.Handler) http.Handler
	// ready, if not nil, is called with the listener's address once serving.
	ready func(addr string)
	// limits, when set, replace defaultLimits (tests use short ones).
	limits serverLimits
}

// serveBFF runs the Backend-for-Frontend gateway until ctx ends, then shuts
// down gracefully like serve.
func serveBFF(ctx context.Context, cfg *config.BFF, log *slog.Logger, opt bffServing) error {
	master, created, err := seal.LoadOrCreate(cfg.KeyFile)
	if err != nil {
		return err
	}
	if created {
		log.Warn("created a new master key for the BFF; sessions cannot be read without it", "key_file", cfg.KeyFile)
	}
	opts := storeOptions(cfg.Database)
	opts.Log = log
	store, err := sqlstore.Open(ctx, cfg.Storage, opts)
	if err != nil {
		return err
	}
	defer store.Close()
	gw, err := bff.New(ctx, *cfg, bff.Deps{Store: store, Master: master, Log: log})
	if err != nil {
		return err
	}
	ln := opt.ln
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
	}
	handler := gw.Handler()
	if opt.wrap != nil {
		handler = opt.wrap(handler)
	}
	// API calls of a signed-in person lift these limits for themselves, so
	// that their bodies stream both ways (internal/bff).
	hs := newHTTPServer(handler, limitsOr(opt.limits, defaultLimits), log)
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	go gw.Run(bg)

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("castellan bff serving", "public_url", cfg.PublicURL, "issuer", cfg.Issuer, "listen", ln.Addr().String(),
		"storage", strings.SplitN(cfg.Storage, ":", 2)[0], "routes", len(cfg.Routes))
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
