// Package servertest runs a real Castellan provider for tests: a real SQLite
// file, a real master key, real signing keys, an httptest server and a fake
// clock. Tests talk to it over HTTP like any client would.
package servertest

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/server"
	"github.com/castellan-auth/castellan/internal/signing"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
)

// Start is the fake clock's initial time in every test server.
// It is the real time at start-up (truncated to the second), so that real
// client libraries and browsers, which check expiry against their own clock,
// accept the tokens.
var Start = time.Now().UTC().Truncate(time.Second)

// Env is a running provider.
type Env struct {
	T      testing.TB
	Server *server.Server
	HTTP   *httptest.Server
	Store  storage.Storage
	Clock  *clock.Fake
	Config *config.Config
	Master *seal.Key
	// URL is the issuer.
	URL string
}

// Password is the password of every user Config declares.
const Password = "correct horse battery staple"

// Config returns a test configuration with cheap argon2id parameters, users
// alice and bob, and a public and a confidential client. Its issuer is
// replaced by the httptest server's URL.
func Config() *config.Config {
	cfg := config.Default()
	cfg.Passwords.MemoryKiB = 1024
	cfg.Passwords.Iterations = 1
	cfg.Passwords.MemoryLimitMiB = 64
	cfg.Signing.Algorithms = []string{"ES256", "RS256"}
	cfg.Users = []config.User{
		{Username: "alice", Password: Password, Email: "alice@example.com", EmailVerified: true, Name: "Alice Liddell", GivenName: "Alice", FamilyName: "Liddell"},
		{Username: "bob", Password: Password, Email: "bob@example.com", Name: "Bob"},
	}
	return &cfg
}

// Options adjust New.
type Options struct {
	// Config to use (default Config()). Issuer, Listen, Storage and KeyFile are set by New.
	Config *config.Config
	// Dir holds the database and key (default t.TempDir()); reuse it to restart.
	Dir string
	// Storage overrides the sqlite file (e.g. a PostgreSQL DSN).
	Storage string
	// Log receives the server's logs (default: discarded).
	Log *slog.Logger
	// HTTPServer adjusts the test server's http.Server before it starts
	// (timeouts, as castellan serve sets them).
	HTTPServer func(*http.Server)
}

// New starts a provider and stops it when the test ends.
func New(t testing.TB, opt Options) *Env {
	t.Helper()
	cfg := opt.Config
	if cfg == nil {
		cfg = Config()
	}
	dir := opt.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	cfg.Storage = "sqlite://" + filepath.Join(dir, "castellan.db")
	if opt.Storage != "" {
		cfg.Storage = opt.Storage
	}
	cfg.KeyFile = filepath.Join(dir, "master.key")
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
		if os.Getenv("CASTELLAN_TEST_LOG") != "" {
			log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	}

	// The handler is set after the server is built, because the issuer must
	// be the httptest URL before building.
	var h http.Handler = http.NotFoundHandler()
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	if opt.HTTPServer != nil {
		opt.HTTPServer(hs.Config)
	}
	hs.Start()
	t.Cleanup(hs.Close)
	cfg.Issuer = hs.URL
	cfg.Listen = hs.Listener.Addr().String()
	if problems := cfg.Validate(); len(problems) > 0 {
		t.Fatalf("test config invalid: %v", problems)
	}

	ctx := context.Background()
	master, _, err := seal.LoadOrCreate(cfg.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlstore.Open(ctx, cfg.Storage, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	clk := clock.NewFake(Start)
	srv, err := server.New(ctx, server.Deps{Config: cfg, Store: store, Master: master, Clock: clk, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	h = srv.Handler()
	// Background work (notifications, sweeps) runs as in production; the
	// sweeper uses the fake clock, and tests may also call Sweep directly.
	bg, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	go srv.Run(bg)
	return &Env{T: t, Server: srv, HTTP: hs, Store: store, Clock: clk, Config: cfg, Master: master, URL: hs.URL}
}

// Browser returns an HTTP client with its own cookie jar that does not follow
// redirects, so tests see every hop.
func (e *Env) Browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Clients that tests commonly need: a public single-page app, a confidential
// web app that needs consent, and a service using client credentials.
const (
	SPARedirect = "http://127.0.0.1:9100/callback"
	WebRedirect = "https://web.example/callback"
	WebSecret   = "web-secret-0123456789abcdef0123456789"
	SvcSecret   = "svc-secret-0123456789abcdef0123456789"
)

// WithClients adds the spa, web and svc clients to cfg.
func WithClients(cfg *config.Config) *config.Config {
	cfg.Clients = append(cfg.Clients,
		config.Client{
			ClientID: "spa", ClientName: "Demo SPA", TokenEndpointAuthMethod: "none",
			RedirectURIs: []string{SPARedirect}, PostLogoutRedirectURIs: []string{"http://127.0.0.1:9100/"},
			AllowedOrigins: []string{"http://127.0.0.1:9100"},
			GrantTypes:     []string{"authorization_code", "refresh_token"},
			Scope:          "openid profile email offline_access", SkipConsent: true, IDTokenSignedResponseAlg: "ES256",
		},
		config.Client{
			ClientID: "web", ClientName: "Web App", ClientSecret: WebSecret, TokenEndpointAuthMethod: "client_secret_basic",
			RedirectURIs: []string{WebRedirect, "https://web.example/other"},
			GrantTypes:   []string{"authorization_code", "refresh_token"},
			Scope:        "openid profile email offline_access api:read",
		},
		config.Client{
			ClientID: "svc", ClientSecret: SvcSecret, TokenEndpointAuthMethod: "client_secret_post",
			GrantTypes: []string{"client_credentials"}, Scope: "api:read api:write",
		},
	)
	return cfg
}

// SigningKey returns the provider's private signing key for alg, so that a
// test can sign what the provider never would (critical headers, say) with a
// key its clients trust.
func (e *Env) SigningKey(t testing.TB, alg string) jose.JSONWebKey {
	t.Helper()
	recs, err := e.Store.ListSigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if rec.Algorithm == alg && !rec.ActivatesAt.After(e.Clock.Now()) {
			jwk, err := signing.OpenKey(e.Master, rec)
			if err != nil {
				t.Fatal(err)
			}
			return jwk
		}
	}
	t.Fatalf("no active %s signing key", alg)
	return jose.JSONWebKey{}
}
