// Package server builds Castellan's provider: it wires the domain packages to a
// storage backend and mounts every endpoint on one http.Handler. The route list
// in routes.go is the one place that says what the provider serves.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/castellan-auth/castellan/internal/authorize"
	"github.com/castellan-auth/castellan/internal/client"
	"github.com/castellan-auth/castellan/internal/clientkeys"
	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/dpopcheck"
	"github.com/castellan-auth/castellan/internal/grant"
	"github.com/castellan-auth/castellan/internal/identity"
	"github.com/castellan-auth/castellan/internal/login"
	"github.com/castellan-auth/castellan/internal/logout"
	"github.com/castellan-auth/castellan/internal/metrics"
	"github.com/castellan-auth/castellan/internal/mint"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/par"
	"github.com/castellan-auth/castellan/internal/presence"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/session"
	"github.com/castellan-auth/castellan/internal/signing"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/throttle"
	"github.com/castellan-auth/castellan/internal/token"
	"github.com/castellan-auth/castellan/internal/userinfo"
	"github.com/castellan-auth/castellan/internal/web"
)

// Deps are what the provider is built from.
type Deps struct {
	Config *config.Config
	Store  storage.Storage
	Master *seal.Key
	Clock  clock.Clock      // default: the system clock
	Log    *slog.Logger     // default: discard
	Hasher *identity.Hasher // default: from Config.Passwords
}

// Server is a wired provider.
type Server struct {
	cfg      *config.Config
	store    storage.Storage
	clock    clock.Clock
	log      *slog.Logger
	issuer   *url.URL
	base     string // issuer path, "" or "/prefix"
	https    bool
	handler  http.Handler
	Metrics  *metrics.Metrics
	Keys     *signing.Keyset
	Sessions *session.Manager
	Users    *identity.Directory
	Secrets  client.Secrets
	// Clients serves client records from memory for client.CacheTTL.
	Clients  *client.Cache
	Grants   *grant.Service
	Mint     *mint.Minter
	Notifier *logout.Notifier
	Presence *presence.Endpoint
	CORS     *web.CORS
	// DPoP checks DPoP proofs at the token, userinfo (and PAR) endpoints.
	DPoP *dpopcheck.Checker
}

// New builds the provider: it makes sure signing keys exist and provisions the
// declared clients and users.
func New(ctx context.Context, d Deps) (*Server, error) {
	cfg := d.Config
	if d.Clock == nil {
		d.Clock = clock.System{}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	iss, err := url.Parse(cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("issuer: %w", err)
	}
	s := &Server{
		cfg: cfg, store: d.Store, clock: d.Clock, log: d.Log, issuer: iss,
		base: strings.TrimSuffix(iss.Path, "/"), https: iss.Scheme == "https",
		Metrics: metrics.New(),
		Secrets: client.NewSecrets(d.Master),
	}
	hasher := d.Hasher
	if hasher == nil {
		p := cfg.Passwords
		hasher = identity.NewHasher(identity.Params{MemoryKiB: uint32(p.MemoryKiB), Iterations: uint32(p.Iterations), Parallelism: uint8(p.Parallelism)},
			p.MemoryLimitMiB*1024, p.QueueTimeout.D())
	}
	s.Users = identity.NewDirectory(d.Store, hasher, d.Clock, d.Log)
	s.Sessions = session.NewManager(d.Store, d.Clock, session.Policy{
		IdleTimeout: cfg.Session.IdleTimeout.D(), AbsoluteTimeout: cfg.Session.AbsoluteTimeout.D()}, d.Log)
	s.Sessions.OnEnded(func(_ context.Context, ended []storage.Session, reason string) {
		s.Metrics.Sessions.WithLabelValues("ended", reason).Add(float64(len(ended)))
	})
	s.Keys = signing.New(d.Store, d.Master, d.Clock, signing.Policy{
		Algorithms:       cfg.Signing.Algorithms,
		RotationPeriod:   cfg.Signing.RotationPeriod.D(),
		Propagation:      2 * cfg.Signing.RefreshInterval.D(),
		MaxTokenLifetime: max(cfg.Tokens.AccessTokenTTL.D(), cfg.Tokens.IDTokenTTL.D()) + time.Minute,
	}, d.Log)
	if err := s.Keys.Ensure(ctx); err != nil {
		return nil, err
	}
	// Nodes starting together provision the same clients and users: one at a
	// time, so that the later ones find what the first created.
	unlock, err := storage.Lock(ctx, d.Store, "provision")
	if err != nil {
		return nil, err
	}
	err = s.provision(ctx)
	unlock()
	if err != nil {
		return nil, err
	}
	if err := s.warnLegacy(ctx, d.Store); err != nil {
		return nil, err
	}
	if err := warnRotationWithoutGrace(ctx, d.Store, cfg.Tokens.RefreshTokenGrace.D(), d.Log.Warn); err != nil {
		return nil, err
	}

	s.Clients = client.NewCache(d.Store, d.Clock, client.CacheTTL)
	audience := cfg.Tokens.Audience
	if len(audience) == 0 {
		audience = []string{cfg.Issuer}
	}
	s.Mint = mint.New(s.Keys, cfg.Issuer, audience)
	s.Grants = grant.New(d.Store, s.Sessions, d.Clock, d.Master, grant.Policy{
		CodeTTL:         cfg.Tokens.AuthorizationCodeTTL.D(),
		AccessTTL:       cfg.Tokens.AccessTokenTTL.D(),
		RefreshIdle:     cfg.Tokens.RefreshTokenIdleTTL.D(),
		RefreshAbsolute: cfg.Tokens.RefreshTokenAbsoluteTTL.D(),
		Grace:           cfg.Tokens.RefreshTokenGrace.D(),
	})

	pages, err := web.NewPages(s.base, d.Log)
	if err != nil {
		return nil, err
	}
	csrf := web.NewCSRF(d.Master, s.https)
	cookie := session.Cookie{Secure: s.https}
	az := &authorize.Handler{
		Issuer: cfg.Issuer, Base: s.base, Store: cachedClients{d.Store, s.Clients}, Sessions: s.Sessions,
		Cookie: cookie, CSRF: csrf, Pages: pages, Grants: s.Grants, Mint: s.Mint,
		Algorithms: cfg.Signing.Algorithms, IDTokenTTL: cfg.Tokens.IDTokenTTL.D(), Clock: d.Clock, Log: d.Log,
		PendingTTL: cfg.Authorize.PendingTTL.D(), ClientIP: web.NewClientIP(cfg.TrustedProxies), Limits: pendingLimits(cfg),
	}
	pushed := &par.Requests{Store: d.Store, Clock: d.Clock, Hold: cfg.Authorize.PendingTTL.D(), Limits: pendingLimits(cfg)}
	az.Pushed, az.RequirePAR = pushed, cfg.PAR.Required
	auth := client.NewAuthenticator(s.Clients, s.Secrets, d.Log)
	auth.Assertions = &client.Assertions{
		Issuer: cfg.Issuer, TokenEndpoint: s.URL(pathToken), MaxLifetime: cfg.ClientAssertion.MaxLifetime.D(),
		Replay: d.Store, Keys: clientkeys.NewFetcher(d.Clock), Clock: d.Clock,
	}
	pe := &par.Endpoint{Auth: auth, Validate: az, Requests: pushed, Clock: d.Clock, Log: d.Log, ClientIP: az.ClientIP}
	te := &token.Endpoint{
		Auth: auth, Grants: s.Grants, Mint: s.Mint, Users: d.Store,
		Algorithms: cfg.Signing.Algorithms, IDTokenTTL: cfg.Tokens.IDTokenTTL.D(), Clock: d.Clock,
		Metrics: s.Metrics, Log: d.Log,
	}
	ui := &userinfo.Endpoint{Mint: s.Mint, Grants: s.Grants, Users: d.Store, Clock: d.Clock, Log: d.Log}
	s.DPoP, err = dpopcheck.New(dpopcheck.Config{
		Issuer: cfg.Issuer, Algorithms: cfg.DPoP.Algorithms, RequireNonce: cfg.DPoP.RequireNonce,
		Store: d.Store, Master: d.Master, Clock: d.Clock,
	})
	if err != nil {
		return nil, err
	}
	te.DPoP, ui.DPoP, pe.DPoP = s.DPoP, s.DPoP, s.DPoP
	s.CORS = web.NewCORS(func(ctx context.Context) ([]string, error) {
		clients, err := d.Store.ListClients(ctx)
		var origins []string
		for _, c := range clients {
			origins = append(origins, c.AllowedOrigins...)
		}
		return origins, err
	})
	if err := s.CORS.Refresh(ctx); err != nil {
		return nil, err
	}
	te.CORS, pe.CORS = s.CORS, s.CORS
	ui.CORS, ui.Clients = s.CORS, s.Clients
	s.Notifier = logout.NewNotifier(logout.NotifierConfig{
		Store: d.Store, Mint: s.Mint, Algorithms: cfg.Signing.Algorithms, Clock: d.Clock, Log: d.Log, Metrics: s.Metrics,
		Retry: logout.DefaultRetry(cfg.Tokens.AccessTokenTTL.D(), cfg.Tokens.IDTokenTTL.D()),
	})
	s.Sessions.OnEnded(s.Notifier.Ended)
	ev := cfg.SessionEvents
	broker := presence.NewBroker(presence.Limits{PerSession: ev.MaxPerSession, PerAddress: ev.MaxPerAddress,
		Total: ev.MaxStreams, Lifetime: ev.MaxLifetime.D()})
	s.Sessions.OnEnded(broker.Ended)
	s.Presence = &presence.Endpoint{Mint: s.Mint, Grants: s.Grants, Sessions: s.Sessions, Store: d.Store,
		CORS: s.CORS, Broker: broker, Clock: d.Clock, Log: d.Log, DPoP: s.DPoP,
		Addresses: web.NewClientIP(cfg.TrustedProxies)}
	te.Activity = presence.Renewals{Sessions: s.Sessions, Store: d.Store, Log: d.Log}
	lo := &logout.Handler{Issuer: cfg.Issuer, Base: s.base, Store: d.Store, Sessions: s.Sessions, Cookie: cookie,
		CSRF: csrf, Pages: pages, Mint: s.Mint, Notifier: s.Notifier, Clock: d.Clock, Log: d.Log}
	lh := &login.Handler{
		Directory: s.Users,
		Sessions:  s.Sessions,
		Cookie:    cookie,
		Throttle: throttle.New(d.Store, d.Clock, throttle.Policy{
			AccountFailures: cfg.Throttle.AccountFailures, AddressFailures: cfg.Throttle.AddressFailures,
			BaseDelay: cfg.Throttle.BaseDelay.D(), MaxDelay: cfg.Throttle.MaxDelay.D(), ResetAfter: cfg.Throttle.ResetAfter.D(),
		}),
		CSRF:     csrf,
		Pages:    pages,
		ClientIP: web.NewClientIP(cfg.TrustedProxies),
		Metrics:  s.Metrics,
		Log:      d.Log,
		Base:     s.base,
		Pending:  az,
	}
	s.handler = s.routes(lh, az, te, ui, lo, pe)
	return s, nil
}

// Handler is the provider's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// URL returns the absolute URL of a provider path.
func (s *Server) URL(path string) string { return strings.TrimSuffix(s.cfg.Issuer, "/") + path }

// provision creates or updates the declared clients and users.
func (s *Server) provision(ctx context.Context) error {
	if err := client.Provision(ctx, s.store, s.cfg.Clients, s.Secrets, s.clock); err != nil {
		return fmt.Errorf("provision clients: %w", err)
	}
	for _, u := range s.cfg.Users {
		_, err := s.Users.Declare(ctx, identity.Declaration{
			Profile: identity.Profile{
				Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified, Name: u.Name,
				GivenName: u.GivenName, FamilyName: u.FamilyName, Disabled: u.Disabled,
			},
			Password: u.Password, PasswordHash: u.PasswordHash,
		})
		if err != nil {
			return fmt.Errorf("provision user %q: %w", u.Username, err)
		}
	}
	return nil
}

// Run does the background work until ctx ends: key maintenance (rotation,
// picking up keys rotated by other nodes), the session sweeper (so expired
// sessions are announced even if nobody comes back) and expired-record cleanup.
func (s *Server) Run(ctx context.Context) {
	keys := time.NewTicker(s.cfg.Signing.RefreshInterval.D())
	sweep := time.NewTicker(sweepInterval(s.cfg.Session.IdleTimeout.D()))
	cleanup := time.NewTicker(5 * time.Minute)
	defer keys.Stop()
	defer sweep.Stop()
	defer cleanup.Stop()
	go s.Notifier.Run(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-keys.C:
			if err := s.Keys.Maintain(ctx); err != nil {
				s.log.Error("signing key maintenance", "err", err)
			}
			if err := s.CORS.Refresh(ctx); err != nil {
				s.log.Error("reload allowed origins", "err", err)
			}
		case <-sweep.C:
			if n, err := s.Sessions.Sweep(ctx); err != nil {
				s.log.Error("session sweep", "err", err)
			} else if n > 0 {
				s.log.Info("expired sessions ended", "count", n)
			}
		case <-cleanup.C:
			if _, err := s.store.DeleteExpired(ctx, s.clock.Now()); err != nil {
				s.log.Error("delete expired records", "err", err)
			}
		}
	}
}

// pendingLimits bound the pending (and pushed) authorization requests stored.
func pendingLimits(cfg *config.Config) storage.PendingLimits {
	return storage.PendingLimits{PerAddress: cfg.Authorize.MaxPendingPerAddress, Total: cfg.Authorize.MaxPending}
}

// sweepInterval finds expired sessions within a small fraction of the idle
// timeout, between 1 and 30 seconds.
func sweepInterval(idle time.Duration) time.Duration {
	return min(max(idle/60, time.Second), 30*time.Second)
}

// warnLegacy logs a warning for every client that may use the implicit grant:
// its tokens travel in the URL fragment and cannot be sender-constrained or
// refreshed (RFC 9700 §2.1.2), so an operator should know who still uses it.
func (s *Server) warnLegacy(ctx context.Context, store storage.Storage) error {
	clients, err := store.ListClients(ctx)
	if err != nil {
		return err
	}
	for _, c := range clients {
		if oauth.Contains(c.GrantTypes, oauth.GrantImplicit) {
			s.log.Warn("client uses the legacy implicit grant: tokens are returned in the URL fragment; move it to the authorization code flow with PKCE",
				"client_id", c.ID, "response_types", c.ResponseTypes)
		}
		if uris := authorize.LocalhostPortRedirects(c); len(uris) > 0 {
			s.log.Warn("client registers http://localhost redirect URIs with a port: they match exactly, port included; a native app that picks its port needs http://127.0.0.1 or http://[::1] (RFC 8252 §7.3)",
				"client_id", c.ID, "redirect_uris", uris)
		}
	}
	return nil
}

// cachedClients is the storage with client records read through the cache.
type cachedClients struct {
	storage.Storage
	clients *client.Cache
}

func (c cachedClients) GetClient(ctx context.Context, id string) (storage.Client, error) {
	return c.clients.GetClient(ctx, id)
}
