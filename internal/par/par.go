// Package par is the pushed authorization request endpoint (RFC 9126): a
// client sends its authorization request straight to Castellan, authenticated
// like at the token endpoint, and gets back a short-lived, single-use
// request_uri to send the browser with instead. The request then cannot be
// read or changed on its way through the browser, and it is validated before
// anyone is asked to sign in.
package par

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/castellan-auth/castellan/dpop"
	"github.com/castellan-auth/castellan/internal/authorize"
	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/dpopcheck"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/web"
)

// Lifetime is how long a request_uri may be used: long enough to send the
// browser to the authorization endpoint, short enough that a leaked one is
// useless (RFC 9126 §2.2 suggests 5 to 600 seconds).
const Lifetime = 60 * time.Second

// Authenticator identifies the client of a request, as at the token endpoint.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request, form map[string]string) (storage.Client, error)
}

// Validator checks a pushed request as the authorization endpoint would and
// encodes it for storage.
type Validator interface {
	ValidatePushed(params url.Values, c storage.Client) ([]byte, error)
}

// Endpoint serves POST to the pushed authorization request endpoint.
type Endpoint struct {
	Auth     Authenticator
	Validate Validator
	Requests *Requests
	Clock    clock.Clock
	Log      *slog.Logger
	// CORS lets single-page apps push from their allowed_origins, as they
	// call the token endpoint; nil answers no cross-origin request.
	CORS *web.CORS
	// DPoP, if set, checks a DPoP proof sent with the push: its key binds
	// the code as dpop_jkt would (RFC 9449 §10.1).
	DPoP *dpopcheck.Checker
	// ClientIP tells the address a push is counted against (Requests.Limits).
	ClientIP authorize.Addresses
}

// Response is the §2.2 answer.
type Response struct {
	RequestURI string `json:"request_uri"`
	ExpiresIn  int64  `json:"expires_in"`
}

// Mount registers the endpoint. Other methods get 405 from the mux (§2.1: POST only).
func (e *Endpoint) Mount(mux *http.ServeMux, path string) {
	mux.HandleFunc("POST "+path, e.push)
	if e.CORS != nil {
		mux.HandleFunc("OPTIONS "+path, e.CORS.Preflight(http.MethodPost))
	}
}

func (e *Endpoint) push(w http.ResponseWriter, r *http.Request) {
	if e.CORS != nil {
		e.CORS.Public(w, r) // errors readable before the client is known
	}
	resp, err := func() (*Response, error) {
		params, form, err := parseForm(w, r)
		if err != nil {
			return nil, err
		}
		c, err := e.Auth.Authenticate(r.Context(), r, form)
		if err != nil {
			return nil, err
		}
		if origin := web.Origin(r); origin != "" && (e.CORS == nil || !e.CORS.Check(w, r, c.AllowedOrigins)) {
			return nil, oauth.Errorf(oauth.ErrInvalidRequest, "this client does not allow requests from its browser origin")
		}
		if _, ok := params["request"]; ok {
			return nil, oauth.Errorf(oauth.ErrRequestNotSupported, "request objects are not supported")
		}
		params, proof, err := e.dpopJKT(w, r, params)
		if err != nil {
			return nil, err
		}
		data, err := e.Validate.ValidatePushed(params, c)
		if err != nil {
			return nil, err
		}
		uri, err := e.Requests.Put(r.Context(), c.ID, data, authorize.AddressKey(e.ClientIP.Of(r)))
		if err != nil {
			return nil, err
		}
		if err := e.useProof(r.Context(), proof, uri); err != nil {
			return nil, err
		}
		return &Response{RequestURI: uri, ExpiresIn: int64(Lifetime / time.Second)}, nil
	}()
	if err != nil {
		e.writeError(w, r, err)
		return
	}
	web.NoStore(w)
	w.Header().Set("Content-Type", "application/json")
	// §2.2: 201 Created.
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(resp)
}

// dpopJKT verifies the DPoP proof of a push, if any (RFC 9449 §10.1): its
// key's thumbprint must equal dpop_jkt when the request has one, and becomes
// dpop_jkt when it has none, so the code can only be redeemed with that key.
// The proof is not used up yet (useProof): a public client's push is
// anyone's, and only a push that is stored may store its proof's jti.
func (e *Endpoint) dpopJKT(w http.ResponseWriter, r *http.Request, params url.Values) (url.Values, *dpop.Proof, error) {
	if e.DPoP == nil || !dpopcheck.Present(r) {
		return params, nil, nil
	}
	if e.DPoP.RequireNonce() {
		e.DPoP.SetNonce(w)
	}
	p, err := e.DPoP.Verify(r, "")
	if err != nil {
		return nil, nil, err
	}
	switch jkt := params["dpop_jkt"]; {
	case len(jkt) == 0:
		params = cloneValues(params)
		params.Set("dpop_jkt", p.JKT)
	case len(jkt) > 1 || jkt[0] != p.JKT:
		return nil, nil, oauth.Errorf(oauth.ErrInvalidDPoPProof, "dpop_jkt is not the thumbprint of the DPoP proof's key")
	}
	return params, p, nil
}

// useProof uses up the DPoP proof of a push just stored under requestURI;
// a replayed proof withdraws the push. So every jti stored here came with a
// push the limits admitted.
func (e *Endpoint) useProof(ctx context.Context, p *dpop.Proof, requestURI string) error {
	if p == nil {
		return nil
	}
	err := e.DPoP.Use(ctx, p)
	if err == nil {
		return nil
	}
	if werr := e.Requests.Withdraw(ctx, requestURI); werr != nil {
		return errors.Join(err, werr)
	}
	return err
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// parseForm reads the urlencoded body, within oauth.MaxRequestBytes (413
// beyond, RFC 9126 §2.3) and oauth.MaxRequestParameters. The request
// parameters are checked for repetition by the authorization request
// validation, the client authentication parameters here.
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, map[string]string, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" {
		return nil, nil, oauth.Errorf(oauth.ErrInvalidRequest, "want Content-Type application/x-www-form-urlencoded")
	}
	tooLarge := &oauth.Error{Code: oauth.ErrInvalidRequest, Status: http.StatusRequestEntityTooLarge,
		Description: fmt.Sprintf("the request is longer than %d bytes", oauth.MaxRequestBytes)}
	if len(r.URL.RawQuery) > oauth.MaxRequestBytes {
		return nil, nil, tooLarge // ParseForm would parse it too
	}
	r.Body = http.MaxBytesReader(w, r.Body, oauth.MaxRequestBytes)
	if err := r.ParseForm(); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, nil, tooLarge
		}
		return nil, nil, oauth.Errorf(oauth.ErrInvalidRequest, "the request body could not be read")
	}
	if oauth.TooManyParameters(r.PostForm) {
		return nil, nil, oauth.Errorf(oauth.ErrInvalidRequest, "the request has more than %d parameters", oauth.MaxRequestParameters)
	}
	form := map[string]string{}
	for _, k := range []string{"client_id", "client_secret", "client_assertion", "client_assertion_type"} {
		v, ok := r.PostForm[k]
		if len(v) > 1 {
			return nil, nil, oauth.Errorf(oauth.ErrInvalidRequest, "parameter %s repeated", k)
		}
		if ok {
			form[k] = v[0]
		}
	}
	return r.PostForm, form, nil
}

func (e *Endpoint) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var full *storage.FullError
	if errors.As(err, &full) {
		e.writeFull(w, full)
		return
	}
	var oe *oauth.Error
	if !errors.As(err, &oe) {
		if errors.Is(err, context.Canceled) {
			return
		}
		e.Log.Error("pushed authorization request", "request_id", web.RequestID(r.Context()), "err", err)
		oe = &oauth.Error{Code: oauth.ErrServerError, Description: "internal error"}
	}
	// Errors of the authorization request itself are JSON here (§2.3), never
	// redirects: the client is the one talking.
	out := *oe
	out.Redirectable = false
	if out.Code == oauth.ErrUseDPoPNonce && e.DPoP != nil {
		e.DPoP.SetNonce(w) // RFC 9449 §8: the nonce to use
	}
	out.WriteJSON(w)
}

// writeFull answers a push refused because its pending request would pass a
// limit: 429 when the client address holds too many (RFC 9126 §2.3), 503
// when everyone together does, both with Retry-After.
func (e *Endpoint) writeFull(w http.ResponseWriter, full *storage.FullError) {
	w.Header().Set("Retry-After", strconv.Itoa(authorize.RetryAfter(full.RetryAt, e.Clock.Now())))
	oe := &oauth.Error{Code: oauth.ErrTemporarilyUnavailable, Status: http.StatusServiceUnavailable,
		Description: "too many authorization requests are waiting; push again later"}
	if errors.Is(full, storage.ErrAddressFull) {
		oe.Status = http.StatusTooManyRequests
		oe.Description = "too many authorization requests from this address are waiting; push again later"
	}
	oe.WriteJSON(w)
}
