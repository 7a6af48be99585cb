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
	"unicode/utf8"

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
	s, ok := g.requireSession(w, r)
	if !ok {
		return
	}
	// The server's read and write timeouts are for strangers: a signed-in
	// person's API call may stream its body and answer (uploads,
	// server-sent events) for as long as it takes.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
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

// refuseAmbiguousPaths answers 400 to a request whose path an upstream could
// read differently from the gateway, before any route matches. A route is a
// prefix of its upstream's paths; a path that could climb out of it
// (/api/..;/admin reaches /admin on a Tomcat or Spring upstream, which read
// "..;" as "..") must never be forwarded with the session's access token,
// whatever the upstream makes of it.
func refuseAmbiguousPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ambiguousPath(r.URL.EscapedPath()) {
			writeError(w, http.StatusBadRequest, "invalid_path")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// maxPathDecodings is how many times ambiguousPath percent-decodes a path in
// search of a hidden dot segment; a path still encoded after that many
// rounds is refused (no honest client encodes a path five times).
const maxPathDecodings = 4

// ambiguousPath reports whether an escaped request path, as sent, or decoded
// once, twice or up to maxPathDecodings times (an upstream behind a proxy
// that decodes again), holds anything that some server reads as a path
// step: a dot segment ("." or "..", also with trailing dots or spaces, which
// Windows drops), a ";" (path parameters: "..;" is ".." to Java servers), a
// backslash, a control character, a character that Unicode normalization
// turns into "." or "/", or bytes that are not UTF-8 (overlong encodings
// such as %c0%ae, which old decoders read as "."). An encoded slash (%2F)
// alone passes, and is forwarded encoded: decoded, its dot segments are
// seen like any other.
func ambiguousPath(escaped string) bool {
	p := escaped
	for round := 0; ; round++ {
		if hasPathStep(p) {
			return true
		}
		next := percentDecode(p)
		if next == p {
			return false
		}
		if round == maxPathDecodings {
			return true
		}
		p = next
	}
}

// hasPathStep reports whether p, at one stage of decoding, holds a dot
// segment or a character that could make one elsewhere.
func hasPathStep(p string) bool {
	if !utf8.ValidString(p) || strings.ContainsAny(p, ";\\") {
		return true
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f || lookalikes[c] {
			return true
		}
	}
	for _, seg := range strings.Split(p, "/") {
		if strings.Contains(seg, ".") && strings.Trim(seg, ". ") == "" {
			return true
		}
	}
	return false
}

// lookalikes are characters that Unicode compatibility normalization (NFKC,
// which some frameworks and file systems apply) turns into ".", "/" or a backslash.
var lookalikes = map[rune]bool{
	'\u2024': true, // ONE DOT LEADER
	'\u2025': true, // TWO DOT LEADER
	'\u2026': true, // HORIZONTAL ELLIPSIS
	'\uFE52': true, // SMALL FULL STOP
	'\uFF0E': true, // FULLWIDTH FULL STOP
	'\u2044': true, // FRACTION SLASH
	'\u2215': true, // DIVISION SLASH
	'\uFF0F': true, // FULLWIDTH SOLIDUS
	'\uFE68': true, // SMALL REVERSE SOLIDUS
	'\uFF3C': true, // FULLWIDTH REVERSE SOLIDUS
}

// percentDecode decodes every valid %XX escape of p and leaves anything else
// as it is, as lenient servers do.
func percentDecode(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]) {
			b.WriteByte(unhex(p[i+1])<<4 | unhex(p[i+2]))
			i += 2
			continue
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
