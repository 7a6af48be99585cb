package bff

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/castellan-auth/castellan/internal/storage"
)

func encodeSealed(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func decodeSealed(s string) ([]byte, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return b, err == nil
}

// hiddenClaims are protocol claims of the ID token that mean nothing to the
// app; /bff/user leaves them out.
var hiddenClaims = []string{"nonce", "at_hash", "c_hash", "exp", "iat", "nbf", "jti"}

// UserInfo is the answer of GET /bff/user.
type UserInfo struct {
	// Claims are the ID token's claims about the person (sub, name, email,
	// sid, …), without protocol claims such as nonce and at_hash.
	Claims map[string]any `json:"claims"`
	// ExpiresAt is when the session ends unless it is used again (idle
	// timeout), never later than its absolute timeout; ExpiresIn is the same
	// in seconds from now.
	ExpiresAt time.Time `json:"expires_at"`
	ExpiresIn int64     `json:"expires_in"`
	// AbsoluteExpiresAt is when the session ends however active it is.
	AbsoluteExpiresAt time.Time `json:"absolute_expires_at"`
}

// user answers who is signed in, or 401. No token is ever part of it.
func (g *Gateway) user(w http.ResponseWriter, r *http.Request) {
	s, ok := g.requireSession(w, r)
	if !ok {
		return
	}
	claims := make(map[string]any, len(s.tok.Claims))
	for k, v := range s.tok.Claims {
		claims[k] = v
	}
	for _, k := range hiddenClaims {
		delete(claims, k)
	}
	exp := g.idleExpiry(s)
	writeJSON(w, http.StatusOK, UserInfo{
		Claims: claims, ExpiresAt: exp.UTC(), ExpiresIn: int64(exp.Sub(g.clock.Now()) / time.Second),
		AbsoluteExpiresAt: s.rec.ExpiresAt.UTC(),
	})
}

// LogoutResponse is the answer of POST /bff/logout.
type LogoutResponse struct {
	// LogoutURL is where the SPA sends the browser so that the provider's
	// session ends too (OIDC RP-Initiated Logout 1.0 §2): the gateway's own
	// /bff/end-session, which redirects to the provider's end-session URL.
	LogoutURL string `json:"logoutUrl"`
}

// logoutHintTTL bounds how long the ended session's ID token waits in its
// cookie for the browser to reach /bff/end-session.
const logoutHintTTL = 2 * time.Minute

// logout ends the gateway's session, revokes its refresh token at the
// provider, and answers {public_url}/bff/end-session. The ID token the
// provider needs as id_token_hint travels there in a sealed HttpOnly cookie
// rather than in this body: no token ever reaches the page's JavaScript.
func (g *Gateway) logout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	s, ok := g.requireSession(w, r)
	if !ok {
		return
	}
	g.endSession(ctx, w, s.rec.IDHash)
	g.log.Info("bff: signed out", "sub", s.rec.Subject, "sid", s.rec.SID)

	if p, err := g.provider.get(ctx); err == nil {
		g.revoke(ctx, p, s.tok.RefreshToken)
	}
	http.SetCookie(w, &http.Cookie{
		Name: g.cookie.logout, Value: encodeSealed(g.states.Seal([]byte(s.tok.IDToken), "bff logout")),
		Path: "/bff/end-session", MaxAge: int(logoutHintTTL / time.Second), HttpOnly: true, Secure: g.cookie.secure,
		SameSite: http.SameSiteStrictMode,
	})
	writeJSON(w, http.StatusOK, LogoutResponse{LogoutURL: g.cfg.PublicURL + "/bff/end-session"})
}

// endProviderSession sends the browser on to the provider's end-session
// endpoint with the ended session's ID token as id_token_hint and
// post_logout_redirect_uri = {public_url}/, taking the hint out of its cookie
// (single use). Without the cookie (expired, or nobody signed out here) it
// goes home: it never ends a provider session on its own.
func (g *Gateway) endProviderSession(w http.ResponseWriter, r *http.Request) {
	home := g.cfg.PublicURL + "/"
	c, err := r.Cookie(g.cookie.logout)
	if err != nil {
		http.Redirect(w, r, home, http.StatusSeeOther)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: g.cookie.logout, Value: "", Path: "/bff/end-session", MaxAge: -1,
		HttpOnly: true, Secure: g.cookie.secure, SameSite: http.SameSiteStrictMode})
	sealed, ok := decodeSealed(c.Value)
	var idToken []byte
	if ok {
		idToken, err = g.states.Open(sealed, "bff logout")
	}
	p, perr := g.provider.get(r.Context())
	if !ok || err != nil || perr != nil || p.endSession == "" {
		http.Redirect(w, r, home, http.StatusSeeOther)
		return
	}
	u, err := url.Parse(p.endSession)
	if err != nil {
		http.Redirect(w, r, home, http.StatusSeeOther)
		return
	}
	q := u.Query()
	q.Set("id_token_hint", string(idToken))
	q.Set("post_logout_redirect_uri", home)
	q.Set("client_id", g.cfg.ClientID)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

// revoke revokes a refresh token at the provider (RFC 7009), so it dies even
// if the browser never reaches the end-session URL. Failure is logged only:
// the gateway's session has ended either way.
func (g *Gateway) revoke(ctx context.Context, p *provider, refreshToken string) {
	if refreshToken == "" || p.revocation == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	form := url.Values{"token": {refreshToken}, "token_type_hint": {"refresh_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.revocation, strings.NewReader(form.Encode()))
	if err != nil {
		return
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if g.assertions == nil {
		req.SetBasicAuth(url.QueryEscape(g.cfg.ClientID), url.QueryEscape(g.cfg.ClientSecret)) // RFC 6749 §2.3.1
	} // else the transport adds a client assertion (private_key_jwt)
	resp, err := g.http.Do(req)
	if err != nil {
		g.log.Warn("bff: revoke refresh token", "err", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		g.log.Warn("bff: revoke refresh token", "status", resp.StatusCode)
	}
}

// logoutTokenAlgorithms are the algorithms go-jose may parse a logout token's
// header with, after go-oidc verified it with the provider's algorithms.
var logoutTokenAlgorithms = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512, jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.EdDSA,
}

// logoutTokenMaxAge and logoutTokenSkew bound the iat of a logout token.
const (
	logoutTokenMaxAge = 5 * time.Minute
	logoutTokenSkew   = time.Minute
)

// backchannelLogout receives a logout token from the provider and ends the
// sessions it names (OIDC Back-Channel Logout 1.0 §2.5–2.8).
func (g *Gateway) backchannelLogout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store") // §2.8
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	raw := r.PostFormValue("logout_token")
	if raw == "" {
		writeError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	p, err := g.provider.get(ctx)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
		return
	}
	lt, err := g.verifyLogoutToken(ctx, p, raw)
	if err != nil {
		g.log.Warn("bff: logout token refused", "err", err)
		writeError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	// The jti is used once (§2.6 step 8): a captured token replayed later
	// changes nothing.
	if err := g.store.Remember(ctx, "bff-logout:"+lt.Issuer+" "+lt.TokenID, lt.Expiry.Add(logoutTokenSkew), g.clock.Now()); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			g.log.Warn("bff: logout token replayed", "jti", lt.TokenID)
			writeError(w, http.StatusBadRequest, "invalid_request")
			return
		}
		g.log.Error("bff: remember logout token", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error")
		return
	}
	var n int64
	if lt.SessionID != "" {
		// §2.7: with a sid, the sessions of that provider session end.
		n, err = g.store.DeleteBFFSessionsBySID(ctx, lt.SessionID)
	} else {
		n, err = g.store.DeleteBFFSessionsBySubject(ctx, lt.Subject)
	}
	if err != nil {
		g.log.Error("bff: end sessions for logout token", "err", err)
		writeError(w, http.StatusInternalServerError, "server_error")
		return
	}
	g.log.Info("bff: back-channel logout", "sub", lt.Subject, "sid", lt.SessionID, "sessions", n)
	w.WriteHeader(http.StatusOK)
}

// verifyLogoutToken validates a logout token per OIDC Back-Channel Logout 1.0
// §2.6: go-oidc checks the signature against the provider's JWKS, iss, aud,
// exp, the events claim, the absence of nonce and the presence of sid or
// sub; here are added the rest.
func (g *Gateway) verifyLogoutToken(ctx context.Context, p *provider, raw string) (*oidc.LogoutToken, error) {
	lt, err := p.verifier.VerifyLogout(g.clientContext(ctx), raw)
	if err != nil {
		return nil, err
	}
	// §2.4: logout tokens SHOULD be typed logout+jwt; when typed otherwise
	// (an ID token, an access token) it is not one.
	jws, err := jose.ParseSignedCompact(raw, logoutTokenAlgorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, errors.New("logout token: not a single-signature compact JWS")
	}
	for _, h := range []string{"crit", "b64"} {
		// RFC 7515 §4.1.11: no extension is understood, so none may be critical
		// (go-jose would accept crit ["b64"], an unencoded payload).
		if _, ok := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderKey(h)]; ok {
			return nil, errors.New("logout token: " + h + " header not allowed")
		}
	}
	if typ, ok := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType].(string); ok &&
		!strings.EqualFold(strings.TrimPrefix(strings.ToLower(typ), "application/"), "logout+jwt") {
		return nil, errors.New("logout token: typ is " + typ + ", want logout+jwt")
	}
	// §2.6 step 5: iat as for ID tokens — present, not in the future, recent.
	now := g.clock.Now()
	switch {
	case lt.IssuedAt.IsZero():
		return nil, errors.New("logout token: no iat")
	case lt.IssuedAt.After(now.Add(logoutTokenSkew)):
		return nil, errors.New("logout token: iat in the future")
	case lt.IssuedAt.Before(now.Add(-logoutTokenMaxAge)):
		return nil, errors.New("logout token: iat too old")
	}
	// §2.4: the event's value is a JSON object.
	var claims struct {
		Events map[string]json.RawMessage `json:"events"`
	}
	if err := lt.Claims(&claims); err != nil {
		return nil, err
	}
	ev := strings.TrimSpace(string(claims.Events["http://schemas.openid.net/event/backchannel-logout"]))
	if !strings.HasPrefix(ev, "{") {
		return nil, errors.New("logout token: the backchannel-logout event is not a JSON object")
	}
	return lt, nil
}
