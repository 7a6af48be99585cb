package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
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
)

// Files in the data directory that hold generated credentials, so that they
// are stable across restarts but never well-known defaults.
const (
	devPasswordFile  = "alice.password"
	devAPISecretFile = "demo-api.secret"
)

// devSetup is the demo of castellan dev for a provider at issuer.
func devSetup(issuer, apiSecret string) demo.Setup {
	return demo.Setup{Issuer: issuer, SPA: "http://" + devSPA, API: "http://" + devAPI, APISecret: apiSecret}
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
	secret, err := os.ReadFile(filepath.Join(dir, devAPISecretFile))
	if err != nil {
		// Admin commands (--dev) read this config without starting the demo.
		secret = []byte("not-used-by-admin-commands-0123456789")
	}
	cfg.Clients = devSetup(cfg.Issuer, strings.TrimSpace(string(secret))).Clients()
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
	cfg := devConfig(*dir, password)
	// The same env-override rule applies to dev (e.g. CASTELLAN_LISTEN).
	if err := config.Decode("", env, &cfg); err != nil {
		return err
	}
	if problems := cfg.Validate(); len(problems) > 0 {
		return &config.Error{Source: "dev", Problems: problems}
	}
	setup := devSetup(cfg.Issuer, apiSecret)
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

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	provider := make(chan error, 1)
	demoDone := make(chan error, 1)
	go func() {
		provider <- serve(ctx, &cfg, log, func(string) {
			// The demo API discovers the provider, so it starts once the
			// provider serves.
			go func() { demoDone <- setup.Serve(ctx, spaLn, apiLn, log) }()
			printDevBanner(stdout, *dir, &cfg, setup, password)
		})
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

func printDevBanner(w io.Writer, dir string, cfg *config.Config, setup demo.Setup, password string) {
	fmt.Fprintf(w, `
Castellan dev is running (data in %s).

  Demo app     %s/        open this in a browser
  Provider     %s
  Discovery    %s/.well-known/openid-configuration
  Demo API     %s/api/profile
  Sign in as   alice / %s

  Clients of the demo app (public, PKCE, first-party: no consent page):
    %-14s code + PKCE + refresh token (recommended)
    %-14s code + PKCE + silent iframe renewal (prompt=none)
    %-14s legacy implicit grant + silent iframe renewal
  Access tokens live %s, so renewals show within a minute.

Press Ctrl-C to stop.
`, dir, setup.SPA, cfg.Issuer, cfg.Issuer, setup.API, password,
		demo.ClientRefresh, demo.ClientIframe, demo.ClientImplicit, cfg.Tokens.AccessTokenTTL.D())
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
