package bff

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/castellan-auth/castellan/internal/storage"
)

// refreshTimeout bounds one refresh at the provider.
const refreshTimeout = 30 * time.Second

// errSessionEnded means the refresh token no longer works: the session ends.
var errSessionEnded = errors.New("session ended")

// apiProxy forwards one route's calls with the session's access token.
type apiProxy struct {
	g      *Gateway
	route  Route
	target *url.URL
	rp     *httputil.ReverseProxy
}

func (g *Gateway) newAPIProxy(rt Route) (*apiProxy, error) {
	target, err := url.Parse(rt.Upstream)
	if err != nil {
		return nil, err
	}
	p := &apiProxy{g: g, route: rt, target: target}
	p.rp = &httputil.ReverseProxy{
		Rewrite:       p.rewrite,
		Transport:     g.upstreamTransport(),
		FlushInterval: -1, // stream: server-sent events and large bodies pass as they come
		ModifyResponse: func(resp *http.Response) error {
			// An API behind the gateway sets no cookies on the SPA's origin:
			// it could otherwise shadow the session cookie.
			resp.Header.Del("Set-Cookie")
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if !errors.Is(err, context.Canceled) {
				g.log.Warn("bff: upstream failed", "route", rt.Path, "err", err)
			}
			writeError(w, http.StatusBadGateway, "upstream_unavailable")
		},
	}
	return p, nil
}

// upstreamTransport is the transport of the configured HTTP client, so tests
// and deployments reach upstreams the way they reach the provider.
func (g *Gateway) upstreamTransport() http.RoundTripper {
	if g.http.Transport != nil {
		return g.http.Transport
	}
	return http.DefaultTransport
}

type ctxKey int

const accessTokenKey ctxKey = 0

// rewrite maps /api/orders?x=1 to {upstream}/orders?x=1. ReverseProxy has
// already removed the hop-by-hop headers (RFC 9110 §7.6.1).
func (p *apiProxy) rewrite(pr *httputil.ProxyRequest) {
	rest := strings.TrimPrefix(pr.In.URL.EscapedPath(), p.route.Path)
	pr.Out.URL.Path, _ = url.PathUnescape("/" + rest)
	pr.Out.URL.RawPath = "/" + rest
	pr.SetURL(p.target)
	pr.SetXForwarded()
	h := pr.Out.Header
	// The browser's cookies are the gateway's, not the API's.
	h.Del("Cookie")
	h.Del("X-CSRF")
	h.Del("Authorization")
	if at, _ := pr.In.Context().Value(accessTokenKey).(string); at != "" {
		h.Set("Authorization", "Bearer "+at)
	}
}

// ServeHTTP checks the session, makes sure its access token has some life
// left (refreshing it if not) and forwards the call.
func (p *apiProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g := p.g
	ctx := r.Context()
	// The route is a prefix of the upstream's paths: a path that climbs out
	// of it (/api/%2e%2e/admin) is refused, whatever the upstream would make
	// of it.
	if rest, err := url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), p.route.Path)); err != nil ||
		strings.Contains("/"+rest+"/", "/../") || strings.Contains("/"+rest+"/", "/./") || strings.Contains(rest, "\\") {
		writeError(w, http.StatusBadRequest, "invalid_path")
		return
	}
	s, ok := g.requireSession(w, r)
	if !ok {
		return
	}
	if g.needsRefresh(s) {
		fresh, err := g.refreshSession(ctx, s)
		switch {
		case errors.Is(err, errSessionEnded), errors.Is(err, errNoSession):
			g.endSession(ctx, w, s.rec.IDHash)
			writeError(w, http.StatusUnauthorized, "unauthenticated")
			return
		case err != nil && !g.clock.Now().Before(s.rec.AccessExpiresAt):
			// The provider could not be reached and the token is dead: the
			// session stays, the call fails.
			writeError(w, http.StatusServiceUnavailable, "provider_unavailable")
			return
		case err == nil:
			s = fresh
		}
		// A failed early refresh leaves a token that still works: use it.
	}
	r = r.WithContext(context.WithValue(ctx, accessTokenKey, s.tok.AccessToken))
	p.rp.ServeHTTP(w, r)
}

// needsRefresh reports whether the access token expires within refresh_before.
func (g *Gateway) needsRefresh(s *session) bool {
	return !g.clock.Now().Add(g.cfg.RefreshBefore.D()).Before(s.rec.AccessExpiresAt)
}

// refreshSession refreshes the session's access token, at most once at a time
// per session: callers arriving during a refresh wait for it and share its
// outcome. Whoever leads reads the session again first, so a caller holding
// a copy from before the last refresh does not refresh a second time.
func (g *Gateway) refreshSession(ctx context.Context, s *session) (*session, error) {
	key := hex.EncodeToString(s.rec.IDHash)
	sf := &g.refresh
	sf.mu.Lock()
	if f, ok := sf.calls[key]; ok {
		sf.mu.Unlock()
		select {
		case <-f.done:
			return f.sess, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	sf.calls[key] = f
	sf.mu.Unlock()

	// The refresh outlives a caller that gives up: others wait for it.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	f.sess, f.err = g.doRefresh(rctx, s.rec.IDHash)
	cancel()

	sf.mu.Lock()
	delete(sf.calls, key)
	sf.mu.Unlock()
	close(f.done)
	return f.sess, f.err
}

func (g *Gateway) doRefresh(ctx context.Context, idHash []byte) (*session, error) {
	s, err := g.loadSessionByHash(ctx, idHash, false)
	if err != nil {
		return nil, err
	}
	if !g.needsRefresh(s) {
		return s, nil // refreshed by the flight before this one
	}
	if s.tok.RefreshToken == "" {
		if g.clock.Now().Before(s.rec.AccessExpiresAt) {
			return s, nil
		}
		g.log.Info("bff: access token expired and no refresh token; ending the session", "sub", s.rec.Subject)
		return nil, errSessionEnded
	}
	p, err := g.provider.get(ctx)
	if err != nil {
		return nil, err
	}
	// An already expired token makes the TokenSource refresh at once.
	tok, err := p.oauth.TokenSource(g.clientContext(ctx), &oauth2.Token{RefreshToken: s.tok.RefreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 {
			g.log.Info("bff: refresh refused; ending the session", "sub", s.rec.Subject, "err", tokenError(err))
			return nil, errSessionEnded
		}
		g.log.Warn("bff: refresh failed", "sub", s.rec.Subject, "err", tokenError(err))
		return nil, err
	}
	now := g.clock.Now()
	next := s.tok
	next.AccessToken = tok.AccessToken
	if tok.RefreshToken != "" {
		g.rotation.observe(g.log, s.tok.RefreshToken, tok.RefreshToken)
		next.RefreshToken = tok.RefreshToken // rotated
	}
	if rawID, _ := tok.Extra("id_token").(string); rawID != "" {
		// OIDC Core §12.2: a refreshed ID token is about the same person.
		if idt, err := p.verifier.Verify(ctx, rawID); err == nil && idt.Subject == s.rec.Subject {
			var claims map[string]any
			if idt.Claims(&claims) == nil {
				next.IDToken, next.Claims = rawID, claims
			}
		} else {
			g.log.Warn("bff: refreshed ID token ignored", "err", err)
		}
	}
	sealed, err := g.sealTokens(idHash, next)
	if err != nil {
		return nil, err
	}
	exp := g.accessExpiry(tok, now)
	if err := g.store.UpdateBFFSessionTokens(ctx, idHash, sealed, exp); errors.Is(err, storage.ErrNotFound) {
		return nil, errNoSession // logged out meanwhile
	} else if err != nil {
		return nil, err
	}
	g.log.Debug("bff: access token refreshed", "sub", s.rec.Subject)
	s.tok, s.rec.Tokens, s.rec.AccessExpiresAt = next, sealed, exp
	return s, nil
}
