package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/castellan-auth/castellan/internal/config"
)

// devDir holds everything castellan dev keeps (git-ignored).
const devDir = ".castellan-dev"

// devConfig is the provider configuration of castellan dev: loopback only,
// short access tokens so renewal is visible within a minute.
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
	cfg.Clients = []config.Client{{
		ClientID:                 "demo-spa",
		ClientName:               "Castellan demo SPA",
		TokenEndpointAuthMethod:  "none",
		RedirectURIs:             []string{"http://127.0.0.1:9100/callback.html"},
		PostLogoutRedirectURIs:   []string{"http://127.0.0.1:9100/"},
		AllowedOrigins:           []string{"http://127.0.0.1:9100"},
		GrantTypes:               []string{"authorization_code", "refresh_token"},
		ResponseTypes:            []string{"code"},
		Scope:                    "openid profile email offline_access",
		SkipConsent:              true,
		IDTokenSignedResponseAlg: "ES256",
	}}
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
	password, err := devPassword(*dir)
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
	log := newLogger(cfg.Log, stderr)
	return serve(ctx, &cfg, log, func(addr string) {
		fmt.Fprintf(stdout, `
Castellan dev is running (data in %s).

  Provider     %s
  Discovery    %s/.well-known/openid-configuration
  Sign in as   alice / %s
  Demo client  demo-spa (public, PKCE, redirect %s)

Press Ctrl-C to stop.
`, *dir, cfg.Issuer, cfg.Issuer, password, cfg.Clients[0].RedirectURIs[0])
	})
}

// devPassword returns the demo user's password, generated on first run and kept
// in the data directory (0600), so it is stable across restarts but never a
// well-known default.
func devPassword(dir string) (string, error) {
	path := filepath.Join(dir, "alice.password")
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
	pw := rand.Text()[:16]
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", err
	}
	return pw, nil
}
