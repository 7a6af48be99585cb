// Package bff is the Backend-for-Frontend gateway (castellan bff): a small
// server on the single-page app's own origin that signs people in at the
// provider as a confidential OpenID Connect client, keeps every token on the
// server, and gives the browser only an HttpOnly same-site cookie. The SPA
// calls its APIs through the gateway, which attaches the access token
// (draft-ietf-oauth-browser-based-apps, "Backend For Frontend").
//
// It talks to the provider only over HTTP, as any client would: endpoints
// come from discovery (coreos/go-oidc), the code flow runs through
// golang.org/x/oauth2, ID and logout tokens are verified with go-oidc.
// Endpoints follow the conventions of Duende BFF: GET /bff/login, GET
// /bff/callback, POST /bff/logout, GET /bff/user, POST
// /bff/backchannel-logout.
package bff

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/web"
)

// Config is the gateway's configuration; it loads with config.LoadBFF.
type Config = config.BFF

// Route is one API route of Config.
type Route = config.BFFRoute

// Store is what the gateway keeps: its sessions, and the replay cache that
// makes login states and logout tokens single use; its write probe tells
// /readyz whether it takes writes. *sqlstore.Store is one.
type Store interface {
	storage.BFFSessions
	storage.ReplayCache
	storage.WriteProbe
	// DeleteExpired removes replay-cache entries past their lifetime.
	DeleteExpired(ctx context.Context, now time.Time) (int64, error)
}

// Deps are what New needs besides the configuration.
type Deps struct {
	Store Store
	// Master is the gateway's master key; the keys that seal tokens at rest
	// and the login-state cookie are derived from it.
	Master *seal.Key
	// Clock defaults to the system clock; tests pass a fake one.
	Clock clock.Clock
	// Log defaults to discarding. Tokens are never logged.
	Log *slog.Logger
	// HTTPClient talks to the provider and to the API upstreams (default: a
	// client with a 30 s timeout for the provider, http.DefaultTransport for
	// upstreams).
	HTTPClient *http.Client
}

// Gateway is a running BFF. Its Handler serves the /bff/ endpoints, the API
// routes and the SPA.
type Gateway struct {
	cfg      Config
	public   *url.URL
	store    Store
	clock    clock.Clock
	log      *slog.Logger
	http     *http.Client
	tokens   *seal.Key // seals tokens at rest
	states   *seal.Key // seals the login-state cookie
	cookie   cookieNames
	provider lazyProvider
	refresh  singleFlight
	handler  http.Handler
	// assertions authenticates the gateway with private_key_jwt (nil with
	// client_secret_basic).
	assertions *assertionTransport
	// rotation warns once about rotating refresh tokens on shared storage.
	rotation rotationWarning
}

// sweepInterval is how often Run removes expired sessions.
const sweepInterval = time.Minute

// New checks cfg and builds the gateway. The provider is discovered on first
// use (and again after a failure), so the gateway starts even while the
// provider is still starting.
func New(ctx context.Context, cfg Config, deps Deps) (*Gateway, error) {
	if problems := cfg.Validate(); len(problems) > 0 {
		return nil, &config.Error{Source: "bff", Problems: problems}
	}
	if deps.Store == nil || deps.Master == nil {
		return nil, errors.New("bff: Store and Master are required")
	}
	public, err := url.Parse(cfg.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("bff: public_url: %w", err)
	}
	g := &Gateway{cfg: cfg, public: public, store: deps.Store, clock: deps.Clock, log: deps.Log, http: deps.HTTPClient}
	if g.clock == nil {
		g.clock = clock.System{}
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.http == nil {
		g.http = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.TokenEndpointAuthMethod == oauth.AuthPrivateKeyJWT {
		key, err := loadOrCreateClientKey(cfg.PrivateKeyFile)
		if err != nil {
			return nil, err
		}
		base := g.http.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		g.assertions = &assertionTransport{base: base, key: key, clientID: cfg.ClientID, issuer: cfg.Issuer, clock: g.clock}
		withAssertions := *g.http
		withAssertions.Transport = g.assertions
		g.http = &withAssertions
	}
	if g.tokens, err = seal.New(deps.Master.Derive("bff tokens")); err != nil {
		return nil, err
	}
	if g.states, err = seal.New(deps.Master.Derive("bff login state")); err != nil {
		return nil, err
	}
	g.cookie = newCookieNames(public.Scheme == "https")
	g.rotation.shared = sharedStorage(cfg.Storage)
	g.provider.g = g
	g.refresh.calls = map[string]*flight{}
	if g.handler, err = g.routes(); err != nil {
		return nil, err
	}
	return g, nil
}

// Handler serves everything: /healthz, /readyz, /bff/…, the API routes and
// the SPA.
func (g *Gateway) Handler() http.Handler { return g.handler }

// Run removes expired sessions every minute until ctx ends.
func (g *Gateway) Run(ctx context.Context) {
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := g.Sweep(ctx); err != nil && ctx.Err() == nil {
				g.log.Warn("bff: sweep expired sessions", "err", err)
			}
		}
	}
}

// Sweep removes sessions past their idle or absolute timeout and returns how
// many went, and the used login states and logout tokens the replay cache
// no longer needs. Expired sessions are refused when presented anyway; this
// only keeps storage small.
func (g *Gateway) Sweep(ctx context.Context) (int64, error) {
	now := g.clock.Now()
	if _, err := g.store.DeleteExpired(ctx, now); err != nil {
		return 0, err
	}
	var total int64
	for {
		n, err := g.store.DeleteExpiredBFFSessions(ctx, now.Add(-g.cfg.Session.IdleTimeout.D()), now, 500)
		total += n
		if err != nil || n < 500 {
			return total, err
		}
	}
}

// maxBody bounds the request body of every path but the API routes: the
// gateway's own endpoints take small forms and logout tokens.
const maxBody = 64 << 10

// routes builds the one list of what the gateway serves.
func (g *Gateway) routes() (http.Handler, error) {
	// own holds the gateway's endpoints and the SPA, with bodies bounded;
	// API calls stream bodies of any size for a signed-in person.
	own := http.NewServeMux()
	own.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	own.Handle("GET /readyz", web.NewReadiness(g.store, g.clock, g.log))
	own.HandleFunc("GET /bff/login", g.login)
	own.HandleFunc("GET /bff/callback", g.callback)
	own.HandleFunc("POST /bff/logout", g.requireCSRF(g.logout))
	own.HandleFunc("GET /bff/end-session", g.endProviderSession)
	if g.assertions != nil {
		own.HandleFunc("GET /bff/jwks", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/jwk-set+json")
			w.Write(g.assertions.key.jwks())
		})
	}
	own.HandleFunc("GET /bff/user", g.requireCSRF(g.user))
	own.HandleFunc("POST /bff/backchannel-logout", g.backchannelLogout)
	own.HandleFunc("/bff/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found")
	})
	spa, err := g.spaHandler()
	if err != nil {
		return nil, err
	}
	own.Handle("/", spa)

	mux := http.NewServeMux()
	for _, rt := range g.cfg.Routes {
		p, err := g.newAPIProxy(rt)
		if err != nil {
			return nil, err
		}
		mux.Handle(rt.Path, g.requireCSRF(p.ServeHTTP))
	}
	mux.Handle("/", web.RefuseLargeBody(own, maxBody))
	return secureHeaders(refuseAmbiguousPaths(mux)), nil
}

// secureHeaders adds what every answer of the gateway carries.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if strings.HasPrefix(r.URL.Path, "/bff/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// singleFlight runs at most one token refresh per session at a time; callers
// that arrive meanwhile wait for its outcome.
type singleFlight struct {
	mu    sync.Mutex
	calls map[string]*flight
}

type flight struct {
	done chan struct{}
	sess *session
	err  error
}
