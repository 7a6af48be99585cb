// Package userinfo serves the OpenID Connect UserInfo endpoint (OIDC Core
// §5.3): the claims the access token's scopes release, for a token presented
// in the Authorization header only.
package userinfo

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/castellan-auth/castellan/dpop"
	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/dpopcheck"
	"github.com/castellan-auth/castellan/internal/grant"
	"github.com/castellan-auth/castellan/internal/mint"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/oidc"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/web"
)

// Users finds users.
type Users interface {
	GetUser(ctx context.Context, id string) (storage.User, error)
}

// Clients finds the client a token was issued to, for its allowed origins.
type Clients interface {
	GetClient(ctx context.Context, id string) (storage.Client, error)
}

// Endpoint serves GET and POST /userinfo.
type Endpoint struct {
	Mint   *mint.Minter
	Grants *grant.Service
	Users  Users
	Clock  clock.Clock
	Log    *slog.Logger
	// CORS and Clients let browser apps call the endpoint from the
	// allowed_origins of the client the token was issued to; with CORS nil
	// no cross-origin request is answered.
	CORS    *web.CORS
	Clients Clients
	// DPoP, if set, accepts DPoP-bound tokens with "Authorization: DPoP" and
	// a proof (RFC 9449 §7); nil treats that scheme as no token.
	DPoP *dpopcheck.Checker
}

// Mount registers the endpoint.
func (e *Endpoint) Mount(mux *http.ServeMux, path string) {
	mux.HandleFunc("GET "+path, e.serve)
	mux.HandleFunc("POST "+path, e.serve)
	if e.CORS != nil {
		mux.HandleFunc("OPTIONS "+path, e.CORS.Preflight(http.MethodGet, http.MethodPost))
	}
}

// challenge writes an RFC 6750 §3 error with its WWW-Authenticate header. With
// no token at all the challenge is bare (§3.1: no error code).
func challenge(w http.ResponseWriter, status int, code, desc string) {
	v := `Bearer realm="castellan"`
	if code != "" {
		v += `, error="` + code + `"`
		if desc != "" {
			v += `, error_description="` + desc + `"`
		}
	}
	w.Header().Set("WWW-Authenticate", v)
	web.NoStore(w)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if code != "" {
		json.NewEncoder(w).Encode(oauth.Error{Code: code, Description: desc})
	}
}

// dpopChallenge is challenge for the DPoP scheme (RFC 9449 §7.1), with the
// accepted algorithms and, for use_dpop_nonce, the nonce to use.
func (e *Endpoint) dpopChallenge(w http.ResponseWriter, status int, code, desc string) {
	if code == oauth.ErrUseDPoPNonce {
		e.DPoP.SetNonce(w)
	}
	w.Header().Set("WWW-Authenticate", dpop.Challenge("castellan", e.DPoP.Algorithms(), code, desc))
	web.NoStore(w)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(oauth.Error{Code: code, Description: desc})
}

// bearer extracts the token of an Authorization header with the Bearer
// scheme (RFC 6750 §2.1), or the DPoP scheme when dpopOK (RFC 9449 §7.1).
// present is false when the request carries no such credentials at all — no
// Authorization header, or one of another scheme — which earns the bare
// challenge (§3.1: "the client was unaware that authentication is necessary
// or attempted using an unsupported authentication method"); a header
// without exactly one token, or two Authorization headers, is malformed.
func bearer(r *http.Request, dpopOK bool) (token string, isDPoP, present, malformed bool) {
	h := r.Header.Values("Authorization")
	switch {
	case len(h) == 0:
		return "", false, false, false
	case len(h) > 1:
		return "", false, true, true
	}
	scheme, tok, _ := strings.Cut(strings.TrimSpace(h[0]), " ")
	isDPoP = dpopOK && strings.EqualFold(scheme, "DPoP")
	if !strings.EqualFold(scheme, "Bearer") && !isDPoP {
		return "", false, false, false
	}
	tok = strings.TrimSpace(tok)
	if tok == "" || strings.ContainsAny(tok, " \t") {
		return "", isDPoP, true, true
	}
	return tok, isDPoP, true, false
}

func (e *Endpoint) serve(w http.ResponseWriter, r *http.Request) {
	if e.CORS != nil {
		e.CORS.Public(w, r)
	}
	// Tokens in URLs end up in logs and Referer headers (RFC 6750 §5.3, OAuth
	// 2.1 §5.2): refused, and so is the form-body variant.
	if r.URL.Query().Has("access_token") {
		challenge(w, http.StatusBadRequest, oauth.ErrInvalidRequest, "send the access token in the Authorization header")
		return
	}
	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if err := r.ParseForm(); err == nil && r.PostForm.Has("access_token") {
			challenge(w, http.StatusBadRequest, oauth.ErrInvalidRequest, "send the access token in the Authorization header")
			return
		}
	}
	tok, isDPoP, present, malformed := bearer(r, e.DPoP != nil)
	switch {
	case malformed:
		challenge(w, http.StatusBadRequest, oauth.ErrInvalidRequest, "malformed Authorization header")
		return
	case !present:
		if e.DPoP != nil {
			// Both schemes are offered (RFC 9449 §7.1); the Bearer one stays first and bare.
			w.Header().Set("WWW-Authenticate", `Bearer realm="castellan"`)
			w.Header().Add("WWW-Authenticate", dpop.Challenge("castellan", e.DPoP.Algorithms(), "", ""))
			web.NoStore(w)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		challenge(w, http.StatusUnauthorized, "", "")
		return
	}
	claims, err := e.Mint.ParseAccess(tok, e.Clock.Now())
	bound := err == nil && claims.Confirmation != nil && claims.Confirmation.JKT != ""
	switch {
	case err != nil && isDPoP:
		e.dpopChallenge(w, http.StatusUnauthorized, oauth.ErrInvalidToken, "the access token is invalid or expired")
		return
	case err != nil:
		challenge(w, http.StatusUnauthorized, oauth.ErrInvalidToken, "the access token is invalid or expired")
		return
	case bound && !isDPoP:
		// A DPoP-bound token sent as a Bearer token (RFC 9449 §7.1).
		challenge(w, http.StatusUnauthorized, oauth.ErrInvalidToken, "the access token is bound to a DPoP key")
		return
	case isDPoP && !bound:
		e.dpopChallenge(w, http.StatusUnauthorized, oauth.ErrInvalidToken, "the access token is not DPoP-bound")
		return
	case isDPoP:
		if !dpopcheck.Present(r) {
			e.dpopChallenge(w, http.StatusUnauthorized, oauth.ErrInvalidDPoPProof, "a DPoP proof is required")
			return
		}
		// The proof is used up (its jti stored) only once it is known to be
		// made with the token's key: one with a key of the caller's own
		// writes nothing.
		proof, err := e.DPoP.Verify(r, tok)
		if err == nil && proof.JKT != claims.Confirmation.JKT {
			// RFC 9449 §7.1: the proof must be made with the token's key.
			err = &oauth.Error{Code: oauth.ErrInvalidDPoPProof, Description: "the DPoP proof's key is not the access token's"}
		}
		if err == nil {
			err = e.DPoP.Use(r.Context(), proof)
		}
		var oe *oauth.Error
		if errors.As(err, &oe) {
			e.dpopChallenge(w, http.StatusUnauthorized, oe.Code, oe.Description)
			return
		}
		if err != nil {
			e.fail(w, r, err)
			return
		}
		if e.DPoP.RequireNonce() {
			e.DPoP.SetNonce(w)
		}
	}
	// Later refusals challenge in the scheme the token came with.
	deny := challenge
	if isDPoP {
		deny = e.dpopChallenge
	}
	ctx := r.Context()
	if ok, err := e.originAllowed(w, r, claims.ClientID); err != nil {
		e.fail(w, r, err)
		return
	} else if !ok {
		deny(w, http.StatusForbidden, oauth.ErrInvalidRequest, "the client of this token does not allow requests from this origin")
		return
	}
	active, err := e.Grants.AccessActive(ctx, claims.JTI, claims.Grant, claims.SID)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	if !active {
		deny(w, http.StatusUnauthorized, oauth.ErrInvalidToken, "the access token has been revoked")
		return
	}
	scopes, _ := oauth.ParseScope(claims.Scope)
	if !oauth.Contains(scopes, oauth.ScopeOpenID) || claims.Grant == "" {
		deny(w, http.StatusForbidden, oauth.ErrInsufficientScope, "the access token lacks the openid scope")
		return
	}
	u, err := e.Users.GetUser(ctx, claims.Subject)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Disabled) {
		deny(w, http.StatusUnauthorized, oauth.ErrInvalidToken, "the access token has been revoked")
		return
	}
	if err != nil {
		e.fail(w, r, err)
		return
	}
	type response struct {
		Subject string `json:"sub"`
		mint.UserClaims
	}
	web.NoStore(w)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(response{Subject: u.ID, UserClaims: oidc.UserClaims(u, scopes)})
}

// originAllowed reports whether a browser request comes from an origin the
// token's client registered (true for requests without Origin).
func (e *Endpoint) originAllowed(w http.ResponseWriter, r *http.Request, clientID string) (bool, error) {
	if web.Origin(r) == "" {
		return true, nil
	}
	if e.CORS == nil || e.Clients == nil {
		return false, nil
	}
	c, err := e.Clients.GetClient(r.Context(), clientID)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return e.CORS.Check(w, r, c.AllowedOrigins), nil
}

func (e *Endpoint) fail(w http.ResponseWriter, r *http.Request, err error) {
	e.Log.Error("userinfo", "request_id", web.RequestID(r.Context()), "err", err)
	w.Header().Set("Content-Type", "application/json")
	web.NoStore(w)
	w.WriteHeader(http.StatusInternalServerError)
	json.NewEncoder(w).Encode(oauth.Error{Code: oauth.ErrServerError})
}
