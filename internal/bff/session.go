package bff

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

// cookieNames are the gateway's cookies. Over https they carry the __Host-
// prefix, which makes the browser insist on Secure, Path=/ and no Domain, so a
// sibling subdomain cannot plant or overwrite them.
type cookieNames struct {
	session string
	// login prefixes the short-lived login-state cookies, one per sign-in
	// attempt so that two tabs signing in at once do not overwrite each other.
	login string
	// logout carries the ended session's ID token from POST /bff/logout to
	// GET /bff/end-session, so the token never reaches JavaScript.
	logout string
	secure bool
}

func newCookieNames(secure bool) cookieNames {
	if secure {
		return cookieNames{session: "__Host-castellan-bff", login: "__Host-castellan-bff-login.", logout: "__Host-castellan-bff-logout", secure: true}
	}
	return cookieNames{session: "castellan-bff", login: "castellan-bff-login.", logout: "castellan-bff-logout"}
}

// sessionTokens is what a session keeps sealed at rest.
type sessionTokens struct {
	AccessToken  string `json:"at"`
	RefreshToken string `json:"rt,omitempty"`
	IDToken      string `json:"it"`
	// Claims are the ID token's claims, shown by /bff/user.
	Claims map[string]any `json:"claims"`
}

// session is a loaded, unexpired session with its tokens opened.
type session struct {
	rec storage.BFFSession
	tok sessionTokens
}

var errNoSession = errors.New("no session")

// randomToken returns 256 random bits, base64url without padding.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashID is how a cookie value is found in storage: only its SHA-256 is kept,
// so a leaked database does not hand out live cookies.
func hashID(id string) []byte {
	sum := sha256.Sum256([]byte(id))
	return sum[:]
}

// sealContext binds sealed tokens to their row: a sealed blob copied into
// another session does not open.
func sealContext(idHash []byte) string { return "bff session " + hex.EncodeToString(idHash) }

func (g *Gateway) sealTokens(idHash []byte, t sessionTokens) ([]byte, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	return g.tokens.Seal(b, sealContext(idHash)), nil
}

func (g *Gateway) openTokens(idHash, sealed []byte) (sessionTokens, error) {
	var t sessionTokens
	b, err := g.tokens.Open(sealed, sealContext(idHash))
	if err != nil {
		return t, err
	}
	return t, json.Unmarshal(b, &t)
}

// sessionID returns the session cookie's value if it is well formed.
func (g *Gateway) sessionID(r *http.Request) (string, bool) {
	c, err := r.Cookie(g.cookie.session)
	if err != nil {
		return "", false
	}
	if b, err := base64.RawURLEncoding.DecodeString(c.Value); err != nil || len(b) != 32 {
		return "", false
	}
	return c.Value, true
}

// touchEvery bounds how often a session's activity is written: the idle
// timeout is minutes to hours, so a few seconds of slack cost nothing and
// save a write per API call.
const touchEvery = 10 * time.Second

// loadSession returns the request's session, enforcing the idle and absolute
// timeouts on the server whatever the cookie says.
func (g *Gateway) loadSession(ctx context.Context, r *http.Request) (*session, error) {
	id, ok := g.sessionID(r)
	if !ok {
		return nil, errNoSession
	}
	return g.loadSessionByHash(ctx, hashID(id), true)
}

func (g *Gateway) loadSessionByHash(ctx context.Context, idHash []byte, touch bool) (*session, error) {
	rec, err := g.store.GetBFFSession(ctx, idHash)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, err
	}
	now := g.clock.Now()
	if !now.Before(rec.ExpiresAt) || !now.Before(rec.LastActiveAt.Add(g.cfg.Session.IdleTimeout.D())) {
		if err := g.store.DeleteBFFSession(ctx, idHash); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return nil, err
		}
		g.log.Info("bff: session timed out", "sub", rec.Subject)
		return nil, errNoSession
	}
	tok, err := g.openTokens(idHash, rec.Tokens)
	if err != nil {
		// Sealed with another master key: useless, so it ends.
		g.log.Error("bff: session tokens do not open; ending the session", "err", err)
		g.store.DeleteBFFSession(ctx, idHash)
		return nil, errNoSession
	}
	if touch && now.Sub(rec.LastActiveAt) >= touchEvery {
		if err := g.store.TouchBFFSession(ctx, idHash, now); errors.Is(err, storage.ErrNotFound) {
			return nil, errNoSession
		} else if err != nil {
			return nil, err
		}
		rec.LastActiveAt = now
	}
	return &session{rec: rec, tok: tok}, nil
}

// requireSession loads the request's session, or answers 401 (clearing a
// stale cookie) or 500 and reports false.
func (g *Gateway) requireSession(w http.ResponseWriter, r *http.Request) (*session, bool) {
	s, err := g.loadSession(r.Context(), r)
	if errors.Is(err, errNoSession) {
		if _, had := g.sessionID(r); had {
			g.clearSessionCookie(w)
		}
		writeError(w, http.StatusUnauthorized, "unauthenticated")
		return nil, false
	}
	if err != nil {
		g.log.Error("bff: load session", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error")
		return nil, false
	}
	return s, true
}

// idleExpiry is when the session ends if nothing happens: the idle timeout
// from its last activity, but never after the absolute timeout.
func (g *Gateway) idleExpiry(s *session) time.Time {
	t := s.rec.LastActiveAt.Add(g.cfg.Session.IdleTimeout.D())
	if s.rec.ExpiresAt.Before(t) {
		return s.rec.ExpiresAt
	}
	return t
}

func (g *Gateway) setSessionCookie(w http.ResponseWriter, id string) {
	http.SetCookie(w, &http.Cookie{
		Name: g.cookie.session, Value: id, Path: "/",
		// No Max-Age: a browser-session cookie; the server enforces the timeouts.
		HttpOnly: true, Secure: g.cookie.secure, SameSite: http.SameSiteStrictMode,
	})
}

func (g *Gateway) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: g.cookie.session, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: g.cookie.secure, SameSite: http.SameSiteStrictMode,
	})
}

// endSession deletes the session and tells the browser to drop its cookie.
func (g *Gateway) endSession(ctx context.Context, w http.ResponseWriter, idHash []byte) {
	if err := g.store.DeleteBFFSession(ctx, idHash); err != nil && !errors.Is(err, storage.ErrNotFound) {
		g.log.Error("bff: delete session", "err", err)
	}
	g.clearSessionCookie(w)
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeError answers {"error": code}.
func writeError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]string{"error": code})
}

// requireCSRF refuses a request without the header X-CSRF: 1. A cross-site
// page cannot send a custom header without a CORS preflight, which the
// gateway never approves, so the header proves the request comes from the
// SPA's own origin (the Duende BFF convention). As a second line, a request
// whose Origin is another origin, or that the browser marks cross-site
// (Sec-Fetch-Site), is refused with 403 even with the header.
func (g *Gateway) requireCSRF(next http.HandlerFunc) http.HandlerFunc {
	own := g.public.Scheme + "://" + g.public.Host
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-CSRF") != "1" {
			writeError(w, http.StatusUnauthorized, "csrf_header_required")
			return
		}
		if o := r.Header.Get("Origin"); (o != "" && o != own) || r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			writeError(w, http.StatusForbidden, "cross_origin_refused")
			return
		}
		next(w, r)
	}
}
