package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/demo"
)

// devDir holds everything castellan dev keeps (git-ignored).
const devDir = ".castellan-dev"

// Where castellan dev runs the demo app and the demo API. The app's clients
// register these origins, so they are fixed.
const (
	devSPA = "127.0.0.1:9100"
	devAPI = "127.0.0.1:9101"
	devBFF = "127.0.0.1:9200"
)

// Files in the data directory that hold generated credentials, so that they
// are stable across restarts but never well-known defaults.
const (
	devPasswordFile  = "alice.password"
	devAPISecretFile = "demo-api.secret"
	devBFFSecretFile = "demo-bff.secret"
)

// devSetup is the demo of castellan dev for a provider at issuer.
func devSetup(issuer, apiSecret, bffSecret string) demo.Setup {
	return demo.Setup{
		Issuer: issuer, SPA: "http://" + devSPA, API: "http://" + devAPI, APISecret: apiSecret,
		BFF: "http://" + devBFF, BFFSecret: bffSecret,
	}
}

// devConfig is the provider configuration of castellan dev: loopback only,
// the demo's clients, and short access tokens so renewal is visible within a
// minute.
func devConfig(dir, password string) config.Config {
	cfg := config.Default()
	cfg.Issuer = "http://127.0.0.1:9000"
	cfg.Listen = "127.0.0.1:9000"
	cfg.Storage = "sqlite:" + filepath.Join(dir, "castellan.db")
	cfg.KeyFile = filepath.Join(dir, "master.key")
	cfg.Log.Format = "text"
	cfg.Tokens.AccessTokenTTL = config.Duration(60 * time.Second)
	cfg.Tokens.RefreshTokenGrace = config.Duration(10 * time.Second)
	cfg.Signing.Algorithms = []string{"ES256", "RS256"}
	// Admin commands (--dev) read this config without starting the demo, so
	// the secrets may not exist yet.
	secret := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "not-used-by-admin-commands-0123456789"
		}
		return strings.TrimSpace(string(b))
	}
	cfg.Clients = devSetup(cfg.Issuer, secret(devAPISecretFile), secret(devBFFSecretFile)).Clients()
	cfg.Users = []config.User{{
		Username: "alice", Password: password, Email: "alice@example.com", EmailVerified: true,
		Name: "Alice Liddell", GivenName: "Alice", FamilyName: "Liddell",
	}}
	return cfg
}

func cmdDev(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", devDir, "data `DIR`ectory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	password, err := devSecret(*dir, devPasswordFile, func() string { return rand.Text()[:16] })
	if err != nil {
		return err
	}
	apiSecret, err := devSecret(*dir, devAPISecretFile, func() string { return rand.Text() + rand.Text() })
	if err != nil {
		return err
	}
	bffSecret, err := devSecret(*dir, devBFFSecretFile, func() string { return rand.Text() + rand.Text() })
	if err != nil {
		return err
	}
	cfg := devConfig(*dir, password)
	// The same env-override rule applies to dev (e.g. CASTELLAN_LISTEN).
	if err := config.Decode("", env, &cfg); err != nil {
		return err
	}
	if problems := cfg.Validate(); len(problems) > 0 {
		return &config.Error{Source: "dev", Problems: problems}
	}
	setup := devSetup(cfg.Issuer, apiSecret, bffSecret)
	bffCfg := devBFFConfig(*dir, setup)
	if problems := bffCfg.Validate(); len(problems) > 0 {
		return &config.Error{Source: "dev (bff)", Problems: problems}
	}
	log := newLogger(cfg.Log, stderr)

	// The demo servers listen first: a port in use stops dev before the
	// provider starts.
	var lc net.ListenConfig
	spaLn, err := lc.Listen(ctx, "tcp", devSPA)
	if err != nil {
		return fmt.Errorf("demo app: %w", err)
	}
	defer spaLn.Close()
	apiLn, err := lc.Listen(ctx, "tcp", devAPI)
	if err != nil {
		return fmt.Errorf("demo api: %w", err)
	}
	defer apiLn.Close()
	bffLn, err := lc.Listen(ctx, "tcp", devBFF)
	if err != nil {
		return fmt.Errorf("demo bff: %w", err)
	}
	defer bffLn.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	provider := make(chan error, 1)
	demoDone := make(chan error, 2)
	go func() {
		provider <- serve(ctx, &cfg, log, serving{ready: func(string) {
			// The demo API and the BFF discover the provider, so they start
			// once the provider serves.
			go func() { demoDone <- setup.Serve(ctx, spaLn, apiLn, log) }()
			go func() { demoDone <- serveDevBFF(ctx, &bffCfg, setup, bffLn, log) }()
			printDevBanner(stdout, *dir, &cfg, setup, password)
		}})
	}()
	select {
	case err = <-provider:
		cancel()
	case err = <-demoDone:
		cancel()
		if perr := <-provider; err == nil {
			err = perr
		}
	}
	return err
}

// devBFFConfig is the demo BFF's gateway configuration: its sessions in a
// SQLite file of the data directory, and a refresh 15 s before the
// one-minute access tokens expire.
func devBFFConfig(dir string, setup demo.Setup) config.BFF {
	c := setup.BFFConfig("sqlite:"+filepath.Join(dir, "bff.db"), filepath.Join(dir, "bff.key"))
	c.RefreshBefore = config.Duration(15 * time.Second)
	return c
}

// serveDevBFF runs the demo's Backend-for-Frontend on ln until ctx ends: the
// gateway, with the demo app (and its /config.json) on the same origin.
func serveDevBFF(ctx context.Context, cfg *config.BFF, setup demo.Setup, ln net.Listener, log *slog.Logger) error {
	if err := serveBFF(ctx, cfg, log.With("part", "bff"), bffServing{ln: ln, wrap: setup.BFFHandler}); err != nil {
		return fmt.Errorf("demo bff: %w", err)
	}
	return nil
}

func printDevBanner(w io.Writer, dir string, cfg *config.Config, setup demo.Setup, password string) {
	fmt.Fprintf(w, `
Castellan dev is running (data in %s).

  Demo app     %s/        open this in a browser
  Demo BFF     %s/        the same app behind a Backend-for-Frontend (no token in the browser)
  Provider     %s
  Discovery    %s/.well-known/openid-configuration
  Demo API     %s/api/profile   (takes access tokens for the audience %s)
  Sign in as   alice / %s

  Clients of the demo app (public, PKCE, first-party: no consent page):
    %-14s code + PKCE + refresh token (recommended)
    %-14s code + PKCE + silent iframe renewal (prompt=none)
    %-14s legacy implicit grant + silent iframe renewal
  Client of the BFF (confidential, refresh tokens, back-channel logout):
    %-14s its sessions are in %s
  Access tokens live %s, so renewals show within a minute.

Press Ctrl-C to stop.
`, dir, setup.SPA, setup.BFF, cfg.Issuer, cfg.Issuer, setup.API, setup.APIAudience(), password,
		demo.ClientRefresh, demo.ClientIframe, demo.ClientImplicit,
		demo.ClientBFF, filepath.Join(dir, "bff.db"), cfg.Tokens.AccessTokenTTL.D())
}

// devSecret returns the credential kept in the file name of the data
// directory (0600), generating it with gen on first run.
func devSecret(dir, name string, gen func() string) (string, error) {
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	v := gen()
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", err
	}
	return v, nil
}
