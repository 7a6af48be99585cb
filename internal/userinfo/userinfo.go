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

	"github.com/castellan-auth/castellan/internal/clock"
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

// Endpoint serves GET and POST /userinfo.
type Endpoint struct {
	Mint   *mint.Minter
	Grants *grant.Service
	Users  Users
	Clock  clock.Clock
	Log    *slog.Logger
}

// Mount registers the endpoint.
func (e *Endpoint) Mount(mux *http.ServeMux, path string) {
	mux.HandleFunc("GET "+path, e.serve)
	mux.HandleFunc("POST "+path, e.serve)
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

// bearer extracts the token of an Authorization: Bearer header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Values("Authorization")
	if len(h) != 1 {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func (e *Endpoint) serve(w http.ResponseWriter, r *http.Request) {
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
	tok, ok := bearer(r)
	if !ok {
		if r.Header.Get("Authorization") != "" {
			challenge(w, http.StatusUnauthorized, oauth.ErrInvalidRequest, "malformed Authorization header")
			return
		}
		challenge(w, http.StatusUnauthorized, "", "")
		return
	}
	claims, err := e.Mint.ParseAccess(tok, e.Clock.Now())
	if err != nil {
		challenge(w, http.StatusUnauthorized, oauth.ErrInvalidToken, "the access token is invalid or expired")
		return
	}
	if claims.Confirmation != nil && claims.Confirmation.JKT != "" {
		// A DPoP-bound token sent as a Bearer token (RFC 9449 §7.1).
		challenge(w, http.StatusUnauthorized, oauth.ErrInvalidToken, "the access token is bound to a DPoP key")
		return
	}
	ctx := r.Context()
	active, err := e.Grants.AccessActive(ctx, claims.JTI, claims.Grant)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	if !active {
		challenge(w, http.StatusUnauthorized, oauth.ErrInvalidToken, "the access token has been revoked")
		return
	}
	scopes, _ := oauth.ParseScope(claims.Scope)
	if !oauth.Contains(scopes, oauth.ScopeOpenID) || claims.Grant == "" {
		challenge(w, http.StatusForbidden, oauth.ErrInsufficientScope, "the access token lacks the openid scope")
		return
	}
	u, err := e.Users.GetUser(ctx, claims.Subject)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && u.Disabled) {
		challenge(w, http.StatusUnauthorized, oauth.ErrInvalidToken, "the access token has been revoked")
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

func (e *Endpoint) fail(w http.ResponseWriter, r *http.Request, err error) {
	e.Log.Error("userinfo", "request_id", web.RequestID(r.Context()), "err", err)
	w.Header().Set("Content-Type", "application/json")
	web.NoStore(w)
	w.WriteHeader(http.StatusInternalServerError)
	json.NewEncoder(w).Encode(oauth.Error{Code: oauth.ErrServerError})
}
