package authorize

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/web"
)

// RequestURIPrefix starts every request_uri Castellan hands out for a pushed
// authorization request (RFC 9126 §2.2).
const RequestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// ErrRequestURIUnknown refuses a request_uri that names no pushed request of
// the client it comes with; an unknown client_id gets the same answer, so
// that it cannot be told from a known one.
var ErrRequestURIUnknown = &oauth.Error{Code: oauth.ErrInvalidRequestURI, Description: "request_uri is unknown, expired or already used; push the request again"}

// PushedRequests keeps the requests clients pushed (RFC 9126) until the
// authorization they start completes.
type PushedRequests interface {
	// Take returns the stored request that requestURI names if it was pushed
	// by clientID. The first browser to take it keeps it: that browser may
	// take it again until the authorization completes or the request_uri
	// expires (FAPI 2.0 Security Profile §5.3.2.2 note 3: one-time use is
	// enforced at the point of authorization, not at the first visit); any
	// other browser cannot. An unknown, expired, completed, foreign or other
	// browser's one is an *oauth.Error with code invalid_request_uri.
	// A claimed request is counted against the limits of the browser's
	// client address (addressHash, see AddressKey), as a pending request.
	Take(ctx context.Context, requestURI, clientID string, browserHash, addressHash []byte) ([]byte, error)
	// Complete consumes the request whose request_uri has SHA-256 idHash:
	// a request_uri answers once (RFC 9126 §7.3). Of two concurrent calls
	// only one succeeds; the other gets invalid_request_uri.
	Complete(ctx context.Context, idHash []byte) error
}

// ValidatePushed checks a pushed authorization request of the authenticated
// client c exactly as the authorization endpoint checks one (RFC 9126 §2.1)
// and returns it encoded for storage. Its errors are *oauth.Error values for
// a JSON answer.
func (h *Handler) ValidatePushed(params url.Values, c storage.Client) ([]byte, error) {
	if l, over := oauth.FirstExceeded(params, oauth.IdentityLimits); over {
		return nil, oauth.Errorf(oauth.ErrInvalidRequest, "%s", l.Description())
	}
	if ids := params["client_id"]; len(ids) > 1 || (len(ids) == 1 && ids[0] != c.ID) {
		return nil, oauth.Errorf(oauth.ErrInvalidRequest, "client_id differs from the authenticated client")
	}
	if _, ok := params["request_uri"]; ok {
		// §2.1: "The request_uri authorization request parameter is one
		// exception, and it MUST NOT be provided."
		return nil, oauth.Errorf(oauth.ErrInvalidRequest, "request_uri cannot be pushed")
	}
	uri, given, e := redirectFor(params, c)
	if e != nil {
		return nil, e
	}
	req := &Request{ClientID: c.ID, RedirectURI: uri, RedirectGiven: given}
	if e := validate(params, c, req, h.Clock.Now()); e != nil {
		return nil, e
	}
	if e := h.hint(params, req); e != nil {
		return nil, e
	}
	data, e := EncodeRequest(req)
	if e != nil {
		return nil, e
	}
	return data, nil
}

// pushedRequest reports whether an authorization request refers to a pushed
// one; other request_uri values are answered request_uri_not_supported.
func (h *Handler) pushedRequest(params url.Values) bool {
	if h.Pushed == nil {
		return false
	}
	for _, v := range params["request_uri"] {
		if strings.HasPrefix(v, RequestURIPrefix) {
			return true
		}
	}
	return false
}

// pushed answers an authorization request that names a pushed request by its
// request_uri (RFC 9126 §4). The pushed parameters are the request: any other
// parameter but client_id is ignored, so nothing can be changed after the
// client authenticated the push. Until the pushed request is found, its
// redirect URI is unknown, so errors are shown on Castellan's page.
func (h *Handler) pushed(w http.ResponseWriter, r *http.Request, params url.Values) {
	if l, over := oauth.FirstExceeded(params, append(oauth.IdentityLimits, oauth.Limit{Name: "request_uri", Max: oauth.MaxRequestURILength})); over {
		h.showError(w, r, pageError(l.Description()))
		return
	}
	for _, k := range []string{"client_id", "request_uri"} {
		if len(params[k]) > 1 {
			h.showError(w, r, pageError(k+" is repeated"))
			return
		}
	}
	id := params.Get("client_id")
	if id == "" {
		// §4: client_id is required next to request_uri.
		h.showError(w, r, pageError("client_id is missing"))
		return
	}
	c, err := h.client(r.Context())(id)
	if errors.Is(err, storage.ErrNotFound) {
		h.Log.Info("authorization request refused", "request_id", web.RequestID(r.Context()), "client_id", id, "reason", "unknown client_id with a request_uri")
		h.showError(w, r, ErrRequestURIUnknown)
		return
	}
	if err != nil {
		h.showError(w, r, err)
		return
	}
	requestURI := params.Get("request_uri")
	data, err := h.Pushed.Take(r.Context(), requestURI, c.ID, opaque.Hash(h.CSRF.Browser(w, r)), AddressKey(h.ClientIP.Of(r)))
	if err != nil {
		h.showError(w, r, err)
		return
	}
	var req Request
	if err := json.Unmarshal(data, &req); err != nil {
		h.showError(w, r, err)
		return
	}
	req.StartedAt = h.Clock.Now()
	req.PushedHash = opaque.Hash(requestURI)
	h.proceed(w, r, &flow{client: c, req: &req})
}

// completePushed consumes the pushed request f answers, if any, as the
// authorization completes; it fails if another completion got there first.
func (h *Handler) completePushed(ctx context.Context, f *flow) error {
	if len(f.req.PushedHash) == 0 || h.Pushed == nil {
		return nil
	}
	return h.Pushed.Complete(ctx, f.req.PushedHash)
}

// parRequired says whether client c must push its authorization requests
// (RFC 9126 §5, §6).
func (h *Handler) parRequired(c storage.Client) bool {
	return h.Pushed != nil && (h.RequirePAR || c.RequirePushedAuthorizationRequests)
}
