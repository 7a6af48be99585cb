package bff

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/castellan-auth/castellan/internal/storage"
)

// loginTTL bounds a sign-in attempt: the login-state cookie and its entry in
// the replay cache live this long.
const loginTTL = 10 * time.Minute

// maxPendingLogins is how many sign-in attempts of one browser may be under
// way at once (tabs signing in together).
const maxPendingLogins = 5

// loginState is what the gateway remembers between /bff/login and
// /bff/callback, sealed in a cookie of the browser that started it.
type loginState struct {
	State     string    `json:"s"`
	Nonce     string    `json:"n"`
	Verifier  string    `json:"v"`
	ReturnURL string    `json:"r"`
	Expires   time.Time `json:"e"`
}

func splitScope(s string) []string { return strings.Fields(s) }

// localPath checks a returnUrl: only a path on the gateway's own origin, so
// that sign-in is no open redirector. "//evil" and "/\evil" are refused
// because browsers read them as another host.
func localPath(s string) (string, bool) {
	if s == "" {
		return "/", true
	}
	if len(s) > 2048 || s[0] != '/' || strings.HasPrefix(s, "//") {
		return "", false
	}
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return "", false
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return "", false
	}
	// A percent-encoded slash or backslash at the start would decode to the
	// forms refused above in some routers.
	if p := strings.ToLower(u.EscapedPath()); strings.HasPrefix(p, "/%2f") || strings.HasPrefix(p, "/%5c") {
		return "", false
	}
	return s, true
}

// login starts the authorization code flow with PKCE S256, state and nonce
// (RFC 9700 §2.1.1, OIDC Core §3.1.2.1).
func (g *Gateway) login(w http.ResponseWriter, r *http.Request) {
	ret, ok := localPath(r.URL.Query().Get("returnUrl"))
	if !ok {
		writeError(w, http.StatusBadRequest, "invalid_return_url")
		return
	}
	p, err := g.provider.get(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "provider_unavailable")
		return
	}
	st := loginState{
		State: randomToken(), Nonce: randomToken(), Verifier: oauth2.GenerateVerifier(),
		ReturnURL: ret, Expires: g.clock.Now().Add(loginTTL),
	}
	// Abandoned attempts leave cookies behind until they expire; past a few,
	// drop them so they cannot crowd the session cookie out of the browser's
	// per-site cookie limit.
	var pending []string
	for _, c := range r.Cookies() {
		if strings.HasPrefix(c.Name, g.cookie.login) {
			pending = append(pending, c.Name)
		}
	}
	if len(pending) >= maxPendingLogins {
		for _, name := range pending {
			http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: g.cookie.secure, SameSite: http.SameSiteLaxMode})
		}
	}
	b, _ := json.Marshal(st)
	http.SetCookie(w, &http.Cookie{
		Name:  g.loginCookieName(st.State),
		Value: encodeSealed(g.states.Seal(b, "bff login "+st.State)),
		Path:  "/", MaxAge: int(loginTTL / time.Second), HttpOnly: true, Secure: g.cookie.secure,
		// Lax, not Strict: the provider sends the browser back with a
		// cross-site top-level navigation, which must carry this cookie.
		SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, p.oauth.AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)), http.StatusFound)
}

// loginCookieName names the login-state cookie of one attempt after a digest
// of its state, so the callback finds it from the state parameter.
func (g *Gateway) loginCookieName(state string) string {
	return g.cookie.login + hex.EncodeToString(hashID(state)[:8])
}

// callback finishes the sign-in: the state must match a login-state cookie of
// this browser and is used once; the code is redeemed with the PKCE verifier;
// the ID token is verified (signature, iss, aud, exp, nonce) before a session
// is created under a fresh id.
func (g *Gateway) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	st, ok := g.takeLoginState(w, r, state)
	if !ok {
		g.log.Info("bff: callback refused: unknown, expired or used state")
		callbackError(w, http.StatusBadRequest, "The sign-in link is invalid or has been used already. Please sign in again.")
		return
	}
	if e := q.Get("error"); e != "" {
		// Only the code is logged: error_description is attacker-controlled text.
		g.log.Info("bff: provider refused sign-in", "error", e)
		callbackError(w, http.StatusBadRequest, "Sign-in did not complete. Please try again.")
		return
	}
	code := q.Get("code")
	if code == "" {
		callbackError(w, http.StatusBadRequest, "Sign-in did not complete. Please try again.")
		return
	}
	// RFC 9207: when the provider names itself, it must be ours (mix-up defence).
	if iss := q.Get("iss"); iss != "" && iss != g.cfg.Issuer {
		g.log.Warn("bff: callback from another issuer refused", "iss", iss)
		callbackError(w, http.StatusBadRequest, "Sign-in did not complete. Please try again.")
		return
	}
	p, err := g.provider.get(ctx)
	if err != nil {
		callbackError(w, http.StatusServiceUnavailable, "The sign-in service is unavailable. Please try again later.")
		return
	}
	tok, err := p.oauth.Exchange(g.clientContext(ctx), code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		g.log.Info("bff: code exchange failed", "err", tokenError(err))
		callbackError(w, http.StatusBadRequest, "Sign-in did not complete. Please try again.")
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		g.log.Error("bff: token response without id_token (is openid in scope?)")
		callbackError(w, http.StatusBadGateway, "Sign-in did not complete. Please try again.")
		return
	}
	idt, err := p.verifier.Verify(ctx, rawID)
	if err != nil {
		g.log.Warn("bff: ID token refused", "err", err)
		callbackError(w, http.StatusBadGateway, "Sign-in did not complete. Please try again.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		g.log.Warn("bff: ID token nonce does not match the login state")
		callbackError(w, http.StatusBadRequest, "Sign-in did not complete. Please try again.")
		return
	}
	if !g.useLoginState(ctx, state, st) {
		g.log.Info("bff: callback refused: the login state was used meanwhile")
		callbackError(w, http.StatusBadRequest, "The sign-in link is invalid or has been used already. Please sign in again.")
		return
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		callbackError(w, http.StatusBadGateway, "Sign-in did not complete. Please try again.")
		return
	}
	sid, _ := claims["sid"].(string)
	now := g.clock.Now()

	// A new session id at every sign-in (no session fixation); an earlier
	// session of this browser ends.
	if old, ok := g.sessionID(r); ok {
		if err := g.store.DeleteBFFSession(ctx, hashID(old)); err != nil && !errors.Is(err, storage.ErrNotFound) {
			g.log.Error("bff: end the previous session", "err", err)
		}
	}
	id := randomToken()
	idHash := hashID(id)
	sealed, err := g.sealTokens(idHash, sessionTokens{
		AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, IDToken: rawID, Claims: claims,
	})
	if err != nil {
		callbackError(w, http.StatusInternalServerError, "Sign-in did not complete. Please try again.")
		return
	}
	rec := storage.BFFSession{
		IDHash: idHash, Subject: idt.Subject, SID: sid, Tokens: sealed,
		AccessExpiresAt: g.accessExpiry(tok, now),
		CreatedAt:       now, LastActiveAt: now, ExpiresAt: now.Add(g.cfg.Session.AbsoluteTimeout.D()),
	}
	if err := g.store.CreateBFFSession(ctx, rec); err != nil {
		g.log.Error("bff: create session", "err", err)
		callbackError(w, http.StatusInternalServerError, "Sign-in did not complete. Please try again.")
		return
	}
	g.log.Info("bff: signed in", "sub", idt.Subject, "sid", sid)
	g.setSessionCookie(w, id)
	http.Redirect(w, r, g.cfg.PublicURL+st.ReturnURL, http.StatusFound)
}

// takeLoginState opens the login-state cookie named by state and clears it.
// A state already used (remembered by useLoginState) is refused here, before
// its code goes to the provider, so a callback URL works once even if the
// cookie was copied (RFC 9700 §4.7); this only reads storage.
func (g *Gateway) takeLoginState(w http.ResponseWriter, r *http.Request, state string) (loginState, bool) {
	var st loginState
	if state == "" || len(state) > 256 {
		return st, false
	}
	name := g.loginCookieName(state)
	c, err := r.Cookie(name)
	if err != nil {
		return st, false
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: g.cookie.secure, SameSite: http.SameSiteLaxMode})
	sealed, ok := decodeSealed(c.Value)
	if !ok {
		return st, false
	}
	b, err := g.states.Open(sealed, "bff login "+state)
	if err != nil || json.Unmarshal(b, &st) != nil {
		return st, false
	}
	now := g.clock.Now()
	if subtle.ConstantTimeCompare([]byte(st.State), []byte(state)) != 1 || !now.Before(st.Expires) {
		return st, false
	}
	used, err := g.store.Remembered(r.Context(), loginStateKey(state), now)
	if err != nil {
		g.log.Error("bff: read login state", "err", err)
		return st, false
	}
	return st, !used
}

// useLoginState records that the login state st (named by state) has
// signed someone in. It is written only now, once the provider redeemed the
// code and the ID token carries the state's nonce: anyone can fetch a
// login-state cookie from /bff/login, and a callback with a made-up code
// must not make the gateway store anything. Of two callbacks racing with one
// state (a copied cookie, or a request sent twice before the first answer),
// only one gets here with true; the provider has seen the code twice by
// then and revokes what it issued, as for any replayed code.
func (g *Gateway) useLoginState(ctx context.Context, state string, st loginState) bool {
	err := g.store.Remember(ctx, loginStateKey(state), st.Expires, g.clock.Now())
	if err != nil && !errors.Is(err, storage.ErrConflict) {
		g.log.Error("bff: remember login state", "err", err)
	}
	return err == nil
}

// loginStateKey is the replay-cache key of a used login state.
func loginStateKey(state string) string { return "bff-login:" + hex.EncodeToString(hashID(state)) }

// accessExpiry is when tok's access token expires by the gateway's clock.
// Without expires_in it is treated as short-lived.
func (g *Gateway) accessExpiry(tok *oauth2.Token, now time.Time) time.Time {
	if tok.ExpiresIn > 0 {
		return now.Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	return now.Add(5 * time.Minute)
}

// tokenError describes a token-endpoint failure for the log without the
// response body.
func tokenError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return "token endpoint: " + re.ErrorCode
		}
		if re.Response != nil {
			return "token endpoint: HTTP " + re.Response.Status
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "token endpoint: timeout"
	}
	return err.Error()
}

// callbackError shows a plain page: the callback is a top-level navigation,
// not an API call.
func callbackError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write([]byte(msg + "\n"))
}
