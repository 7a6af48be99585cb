package bff

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// provider is what discovery told the gateway about the provider.
type provider struct {
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	// endSession and revocation are optional endpoints (empty if not offered).
	endSession string
	revocation string
}

// lazyProvider discovers the provider on first use and keeps the result; a
// failed discovery is tried again on the next request, at most every few
// seconds.
type lazyProvider struct {
	g        *Gateway
	mu       sync.Mutex
	p        *provider
	failedAt time.Time
	err      error
}

const rediscoverAfter = 5 * time.Second

// get returns the discovered provider.
func (l *lazyProvider) get(ctx context.Context) (*provider, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.p != nil {
		return l.p, nil
	}
	if l.err != nil && time.Since(l.failedAt) < rediscoverAfter {
		return nil, l.err
	}
	p, err := l.g.discover(ctx)
	if err != nil {
		l.err, l.failedAt = err, time.Now()
		l.g.log.Warn("bff: provider discovery failed", "issuer", l.g.cfg.Issuer, "err", err)
		return nil, err
	}
	l.p, l.err = p, nil
	return p, nil
}

// clientContext makes go-oidc and x/oauth2 use the gateway's HTTP client.
func (g *Gateway) clientContext(ctx context.Context) context.Context {
	ctx = oidc.ClientContext(ctx, g.http)
	return context.WithValue(ctx, oauth2.HTTPClient, g.http)
}

func (g *Gateway) discover(ctx context.Context) (*provider, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	// go-oidc checks that the discovered issuer is exactly the configured one
	// (OIDC Discovery §4.3). The provider keeps the client for later JWKS fetches.
	op, err := oidc.NewProvider(g.clientContext(ctx), g.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", g.cfg.Issuer, err)
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
		Revocation string `json:"revocation_endpoint"`
	}
	if err := op.Claims(&extra); err != nil {
		return nil, fmt.Errorf("discover %s: %w", g.cfg.Issuer, err)
	}
	ep := op.Endpoint()
	// client_secret_basic (RFC 6749 §2.3.1), or private_key_jwt: client_id in
	// the form and the assertion added by the transport (RFC 7523 §2.2).
	ep.AuthStyle = oauth2.AuthStyleInHeader
	if g.assertions != nil {
		ep.AuthStyle = oauth2.AuthStyleInParams
		g.assertions.endpoints.Store(&[]string{ep.TokenURL, extra.Revocation})
	}
	return &provider{
		oauth: oauth2.Config{
			ClientID:     g.cfg.ClientID,
			ClientSecret: g.cfg.ClientSecret,
			Endpoint:     ep,
			RedirectURL:  g.cfg.PublicURL + "/bff/callback",
			Scopes:       splitScope(g.cfg.Scope),
		},
		verifier:   op.Verifier(&oidc.Config{ClientID: g.cfg.ClientID, Now: g.clock.Now}),
		endSession: extra.EndSession,
		revocation: extra.Revocation,
	}, nil
}
