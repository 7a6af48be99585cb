// Package presence is how a single-page app and Castellan keep each other
// informed without cookies, so it works cross-site where third-party cookies
// are blocked. Both endpoints authenticate with the app's access token:
//
//   - POST activity: the person actually used the app. It extends the SSO
//     session's idle timer, which silent renewals deliberately do not, so an
//     app left open over lunch stops renewing after the idle timeout while an
//     app in use renews until the absolute timeout.
//   - GET events: a Server-Sent Events stream (read with a streaming fetch,
//     since EventSource cannot send an Authorization header) that carries one
//     event the moment the token's session ends — sign-out, RP-initiated
//     logout, idle or absolute expiry, an administrator — and then closes. It
//     replaces OIDC Session Management's check_session_iframe, which
//     third-party cookie blocking breaks.
package presence

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/castellan-auth/castellan/dpop"
	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/dpopcheck"
	"github.com/castellan-auth/castellan/internal/grant"
	"github.com/castellan-auth/castellan/internal/mint"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/session"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/web"
)

// Store is what presence needs from storage.
type Store interface {
	GetClient(ctx context.Context, id string) (storage.Client, error)
	GetSessionBySID(ctx context.Context, sid string) (storage.Session, error)
}

// Endpoint serves the activity signal and the session-ended stream.
type Endpoint struct {
	Mint     *mint.Minter
	Grants   *grant.Service
	Sessions *session.Manager
	Store    Store
	CORS     *web.CORS
	Broker   *Broker
	Clock    clock.Clock
	Log      *slog.Logger
	// Poll is how often an open stream re-checks its session in storage, which
	// catches ends seen by other nodes (default 5s).
	Poll time.Duration
	// KeepAlive is how often an idle stream sends a comment so proxies keep it open.
	KeepAlive time.Duration
	// DPoP, if set, takes DPoP-bound tokens with "Authorization: DPoP" and a
	// proof (RFC 9449 §7); a bound token is never taken as a Bearer token.
	DPoP *dpopcheck.Checker
	// Addresses tells the client address a stream counts against
	// (Limits.PerAddress).
	Addresses Addresses
}

// Addresses resolves the client address of a request (web.ClientIP).
type Addresses interface {
	Of(r *http.Request) string
}

// Mount registers the routes.
func (e *Endpoint) Mount(mux *http.ServeMux, activityPath, eventsPath string) {
	mux.HandleFunc("POST "+activityPath, e.activity)
	mux.HandleFunc("OPTIONS "+activityPath, e.CORS.Preflight(http.MethodPost))
	mux.HandleFunc("GET "+eventsPath, e.events)
	mux.HandleFunc("OPTIONS "+eventsPath, e.CORS.Preflight(http.MethodGet))
}

func challenge(w http.ResponseWriter, status int, code, desc string) {
	v := `Bearer realm="castellan"`
	if code != "" {
		v += `, error="` + code + `", error_description="` + desc + `"`
	}
	w.Header().Set("WWW-Authenticate", v)
	web.NoStore(w)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if code != "" {
		json.NewEncoder(w).Encode(oauth.Error{Code: code, Description: desc})
	}
}

// authenticate checks the Bearer access token, that its grant is alive, and
// that the browser's origin is one its client registered. It returns the
// token's session.
func (e *Endpoint) authenticate(w http.ResponseWriter, r *http.Request) (storage.Session, mint.AccessClaims, bool) {
	e.CORS.Public(w, r)
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	isDPoP := e.DPoP != nil && strings.EqualFold(scheme, "DPoP")
	if !ok || !strings.EqualFold(scheme, "Bearer") && !isDPoP || tok == "" {
		challenge(w, http.StatusUnauthorized, "", "")
		return storage.Session{}, mint.AccessClaims{}, false
	}
	tok = strings.TrimSpace(tok)
	claims, err := e.Mint.ParseAccess(tok, e.Clock.Now())
	if err != nil || claims.SID == "" || claims.Grant == "" {
		challenge(w, http.StatusUnauthorized, oauth.ErrInvalidToken, "the access token is invalid, expired or not tied to a session")
		return storage.Session{}, mint.AccessClaims{}, false
	}
	if !e.proofOK(w, r, tok, claims, isDPoP) {
		return storage.Session{}, mint.AccessClaims{}, false
	}
	ctx := r.Context()
	c, err := e.Store.GetClient(ctx, claims.ClientID)
	if err != nil || !e.CORS.Check(w, r, c.AllowedOrigins) {
		challenge(w, http.StatusForbidden, oauth.ErrInvalidRequest, "origin not allowed for this client")
		return storage.Session{}, mint.AccessClaims{}, false
	}
	active, err := e.Grants.AccessActive(ctx, claims.JTI, claims.Grant, claims.SID)
	if err != nil {
		e.fail(w, r, err)
		return storage.Session{}, mint.AccessClaims{}, false
	}
	s, err := e.Store.GetSessionBySID(ctx, claims.SID)
	if !active || errors.Is(err, storage.ErrNotFound) {
		challenge(w, http.StatusUnauthorized, oauth.ErrInvalidToken, "the session of this token has ended")
		return storage.Session{}, mint.AccessClaims{}, false
	}
	if err != nil {
		e.fail(w, r, err)
		return storage.Session{}, mint.AccessClaims{}, false
	}
	return s, claims, true
}

// proofOK checks the binding of a token (RFC 9449 §7.1): a DPoP-bound one
// needs the DPoP scheme and a proof by its key naming it; an unbound one the
// Bearer scheme. Otherwise it answers the request and returns false.
func (e *Endpoint) proofOK(w http.ResponseWriter, r *http.Request, tok string, claims mint.AccessClaims, isDPoP bool) bool {
	bound := claims.Confirmation != nil && claims.Confirmation.JKT != ""
	deny := func(code, desc string) bool {
		if code == oauth.ErrUseDPoPNonce {
			e.DPoP.SetNonce(w)
		}
		w.Header().Set("WWW-Authenticate", dpop.Challenge("castellan", e.DPoP.Algorithms(), code, desc))
		web.NoStore(w)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(oauth.Error{Code: code, Description: desc})
		return false
	}
	switch {
	case bound && !isDPoP:
		challenge(w, http.StatusUnauthorized, oauth.ErrInvalidToken, "the access token is bound to a DPoP key")
		return false
	case !isDPoP:
		return true
	case !bound:
		return deny(oauth.ErrInvalidToken, "the access token is not DPoP-bound")
	case !dpopcheck.Present(r):
		return deny(oauth.ErrInvalidDPoPProof, "a DPoP proof is required")
	}
	p, err := e.DPoP.Check(r.Context(), r, tok)
	var oe *oauth.Error
	switch {
	case errors.As(err, &oe):
		return deny(oe.Code, oe.Description)
	case err != nil:
		e.fail(w, r, err)
		return false
	case p.JKT != claims.Confirmation.JKT:
		return deny(oauth.ErrInvalidDPoPProof, "the DPoP proof's key is not the access token's")
	}
	return true
}

func (e *Endpoint) fail(w http.ResponseWriter, r *http.Request, err error) {
	e.Log.Error("presence", "request_id", web.RequestID(r.Context()), "err", err)
	w.WriteHeader(http.StatusInternalServerError)
}

// ActivityResponse tells the app when the session ends if nothing else happens.
type ActivityResponse struct {
	IdleExpiresAt     int64 `json:"idle_expires_at"`
	AbsoluteExpiresAt int64 `json:"expires_at"`
}

func (e *Endpoint) activity(w http.ResponseWriter, r *http.Request) {
	s, _, ok := e.authenticate(w, r)
	if !ok {
		return
	}
	alive, err := e.Sessions.Alive(r.Context(), s.SID)
	if err != nil {
		e.fail(w, r, err)
		return
	}
	if !alive {
		challenge(w, http.StatusUnauthorized, oauth.ErrInvalidToken, "the session of this token has ended")
		return
	}
	if err := e.Sessions.Touch(r.Context(), s); err != nil {
		e.fail(w, r, err)
		return
	}
	s.LastActiveAt = e.Clock.Now()
	web.NoStore(w)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(ActivityResponse{IdleExpiresAt: e.Sessions.IdleExpiresAt(s).Unix(), AbsoluteExpiresAt: s.ExpiresAt.Unix()})
}

// Renewals makes silent renewals count as the person's activity, for the
// clients configured so (renewal_counts_as_activity); for every other client a
// renewal leaves the idle timer alone.
type Renewals struct {
	Sessions *session.Manager
	Store    Store
	Log      *slog.Logger
}

// RenewalActivity touches the session of a renewal when the client asks for it.
func (r Renewals) RenewalActivity(ctx context.Context, c storage.Client, sid string) {
	if !c.RenewalCountsAsActivity || sid == "" {
		return
	}
	s, err := r.Store.GetSessionBySID(ctx, sid)
	if err != nil {
		return
	}
	if err := r.Sessions.Touch(ctx, s); err != nil {
		r.Log.Warn("renewal activity", "err", err)
	}
}
