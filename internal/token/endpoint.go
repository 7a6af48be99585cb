// Package token serves the token endpoint (RFC 6749 §3.2) and its companions,
// revocation (RFC 7009) and introspection (RFC 7662). The endpoint owns the
// steps every grant shares — parsing the form once, client authentication,
// checking the client may use the grant type, writing the answer with
// Cache-Control: no-store — and each grant type lives in its own file behind a
// small interface, so none can skip a shared step.
package token

import (
	"context"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/castellan-auth/castellan/dpop"
	"github.com/castellan-auth/castellan/internal/client"
	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/dpopcheck"
	"github.com/castellan-auth/castellan/internal/grant"
	"github.com/castellan-auth/castellan/internal/metrics"
	"github.com/castellan-auth/castellan/internal/mint"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/web"
)

// Users finds the user a grant belongs to.
type Users interface {
	GetUser(ctx context.Context, id string) (storage.User, error)
}

// Activity is told when a renewal happened, for clients whose renewals count
// as the person's activity at the SSO session.
type Activity interface {
	RenewalActivity(ctx context.Context, c storage.Client, sid string)
}

// Endpoint serves POST /token, /revoke and /introspect.
type Endpoint struct {
	Auth       *client.Authenticator
	Grants     *grant.Service
	Mint       *mint.Minter
	Users      Users
	Algorithms []string // configured signing algorithms
	IDTokenTTL time.Duration
	Clock      clock.Clock
	Metrics    *metrics.Metrics
	Log        *slog.Logger
	// Activity, if set, hears about refreshes.
	Activity Activity
	// CORS lets the browser apps of clients with allowed_origins call the
	// token and revocation endpoints; nil answers no cross-origin request.
	CORS *web.CORS
	// DPoP checks DPoP proofs (RFC 9449); nil ignores the DPoP header and
	// issues Bearer tokens only.
	DPoP *dpopcheck.Checker

	types map[string]grantType
}

// grantType is one grant type's part of a token request.
type grantType interface {
	handle(ctx context.Context, e *Endpoint, req *request) (*Response, error)
}

type request struct {
	http   *http.Request
	client storage.Client
	form   map[string]string
	// jkt is the thumbprint of the key of a valid DPoP proof ("" without
	// one): the access token is bound to it (RFC 9449 §5).
	jkt string
}

// Response is a successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
type Response struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// Mount registers the endpoints.
func (e *Endpoint) Mount(mux *http.ServeMux, tokenPath, revokePath, introspectPath string) {
	e.types = map[string]grantType{
		oauth.GrantAuthorizationCode: authorizationCode{},
		oauth.GrantRefreshToken:      refreshToken{},
		oauth.GrantClientCredentials: clientCredentials{},
	}
	mux.HandleFunc("POST "+tokenPath, e.token)
	mux.HandleFunc("POST "+revokePath, e.revoke)
	mux.HandleFunc("POST "+introspectPath, e.introspect)
	if e.CORS != nil {
		// Introspection is for resource servers, not browsers: no preflight.
		mux.HandleFunc("OPTIONS "+tokenPath, e.CORS.Preflight(http.MethodPost))
		mux.HandleFunc("OPTIONS "+revokePath, e.CORS.Preflight(http.MethodPost))
	}
}

// crossOrigin makes errors readable by any registered origin before the
// client is known (so a misconfigured SPA sees why it failed).
func (e *Endpoint) crossOrigin(w http.ResponseWriter, r *http.Request) {
	if e.CORS != nil {
		e.CORS.Public(w, r)
	}
}

// originAllowed refuses a browser request from an origin the authenticated
// client did not register; the answer is then unreadable to that origin.
// Credentials are never allowed (Access-Control-Allow-Credentials is not
// sent), so the SSO cookie cannot ride along.
func (e *Endpoint) originAllowed(w http.ResponseWriter, r *http.Request, c storage.Client) error {
	if origin := web.Origin(r); origin != "" && (e.CORS == nil || !e.CORS.Check(w, r, c.AllowedOrigins)) {
		return &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "this client does not allow requests from origin " + quote(origin)}
	}
	return nil
}

// parseForm reads the urlencoded body once into single values (RFC 6749 §3.2:
// POST, form-encoded, no repeated parameter). Query-string parameters are not
// part of a token request.
func parseForm(r *http.Request) (map[string]string, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" {
		return nil, &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "want Content-Type application/x-www-form-urlencoded"}
	}
	if err := r.ParseForm(); err != nil {
		return nil, &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "the request body could not be read"}
	}
	form, dup := oauth.Single(r.PostForm)
	if dup != "" {
		return nil, &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "parameter " + dup + " repeated"}
	}
	return form, nil
}

func (e *Endpoint) token(w http.ResponseWriter, r *http.Request) {
	e.crossOrigin(w, r)
	grantType := "unknown"
	resp, err := func() (*Response, error) {
		form, err := parseForm(r)
		if err != nil {
			return nil, err
		}
		gt, ok := e.types[form["grant_type"]]
		if form["grant_type"] == "" {
			return nil, &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "grant_type required"}
		}
		if ok {
			grantType = form["grant_type"]
		}
		c, err := e.Auth.Authenticate(r.Context(), r, form)
		if err != nil {
			return nil, err
		}
		if err := e.originAllowed(w, r, c); err != nil {
			return nil, err
		}
		if !ok {
			return nil, &oauth.Error{Code: oauth.ErrUnsupportedGrantType, Description: "grant_type " + quote(form["grant_type"]) + " is not supported"}
		}
		if !oauth.Contains(c.GrantTypes, form["grant_type"]) {
			return nil, &oauth.Error{Code: oauth.ErrUnauthorizedClient, Description: "this client may not use grant_type " + form["grant_type"]}
		}
		proof, err := e.proof(w, r, c)
		if err != nil {
			return nil, err
		}
		if proof == nil {
			return gt.handle(r.Context(), e, &request{http: r, client: c, form: form})
		}
		return e.withProof(r.Context(), c, proof, func() (*Response, error) {
			return gt.handle(r.Context(), e, &request{http: r, client: c, form: form, jkt: proof.JKT})
		})
	}()
	if err != nil {
		e.writeError(w, r, grantType, err)
		return
	}
	e.Metrics.Tokens.WithLabelValues(grantType, "issued").Inc()
	web.NoStore(w)
	writeJSON(w, http.StatusOK, resp)
}

// proof verifies the DPoP proof of a token request, if any (nil without
// one), without using it up yet (see withProof). A client registered with
// dpop_bound_access_tokens must send one (RFC 9449 §5.2).
func (e *Endpoint) proof(w http.ResponseWriter, r *http.Request, c storage.Client) (*dpop.Proof, error) {
	if e.DPoP == nil || !dpopcheck.Present(r) {
		if c.DPoPBoundAccessTokens {
			return nil, &oauth.Error{Code: oauth.ErrInvalidDPoPProof, Description: "this client must send a DPoP proof"}
		}
		return nil, nil
	}
	if e.DPoP.RequireNonce() {
		// RFC 9449 §8.2: a fresh nonce with every answer keeps the client's current.
		e.DPoP.SetNonce(w)
	}
	return e.DPoP.Verify(r, "")
}

// withProof runs grant with a verified proof and uses the proof up (its jti
// is remembered in storage) only once the request is authenticated, so that
// a stranger cannot fill the replay cache with proofs of keys of their own.
// A confidential client is authenticated already: its proof is used up
// first, and a replayed one never reaches its grant. A public client is
// authenticated by its grant alone (the code with its verifier, or the
// refresh token), so its proof is used up after the grant succeeded. A proof
// already used is refused before the grant runs, so a replayed request
// changes nothing; only two copies racing can both reach the grant, and then
// the loser gets no answer but the error, and what its grant issued is held
// by nobody.
func (e *Endpoint) withProof(ctx context.Context, c storage.Client, p *dpop.Proof, grant func() (*Response, error)) (*Response, error) {
	if !c.Public() {
		if err := e.DPoP.Use(ctx, p); err != nil {
			return nil, err
		}
		return grant()
	}
	if err := e.DPoP.Refuse(ctx, p); err != nil {
		return nil, err
	}
	resp, err := grant()
	if err != nil {
		return nil, err
	}
	if err := e.DPoP.Use(ctx, p); err != nil {
		return nil, err
	}
	return resp, nil
}

// writeError renders a protocol error as JSON, and anything else as a generic
// server_error without details (those go to the log).
func (e *Endpoint) writeError(w http.ResponseWriter, r *http.Request, grantType string, err error) {
	var oe *oauth.Error
	if !errors.As(err, &oe) {
		if errors.Is(err, context.Canceled) {
			return
		}
		e.Log.Error("token endpoint", "request_id", web.RequestID(r.Context()), "err", err)
		oe = &oauth.Error{Code: oauth.ErrServerError, Description: "internal error"}
	}
	e.Metrics.Tokens.WithLabelValues(grantType, oe.Code).Inc()
	if oe.Code == oauth.ErrUseDPoPNonce && e.DPoP != nil {
		// RFC 9449 §8: the answer carries the nonce to use.
		e.DPoP.SetNonce(w)
	}
	oe.WriteJSON(w)
}

func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == '"' || r == 0x7f {
			return -1
		}
		return r
	}, s) + `"`
}

// requestedScopes parses an optional scope parameter (nil when absent).
func requestedScopes(form map[string]string) ([]string, error) {
	raw, ok := form["scope"]
	if !ok || raw == "" {
		return nil, nil
	}
	s, valid := oauth.ParseScope(raw)
	if !valid {
		return nil, &oauth.Error{Code: oauth.ErrInvalidScope, Description: "malformed scope"}
	}
	return s, nil
}
