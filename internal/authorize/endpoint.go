package authorize

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/grant"
	"github.com/castellan-auth/castellan/internal/login"
	"github.com/castellan-auth/castellan/internal/mint"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/session"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/web"
)

// Store is what the endpoint needs from storage.
type Store interface {
	storage.Clients
	storage.Consents
	storage.PendingRequests
}

// Handler serves the authorization endpoint and consent.
type Handler struct {
	Issuer     string
	Base       string // issuer path prefix
	Store      Store
	Sessions   *session.Manager
	Cookie     session.Cookie
	CSRF       *web.CSRF
	Pages      *web.Pages
	Grants     *grant.Service
	Mint       *mint.Minter
	Algorithms []string
	IDTokenTTL time.Duration
	Clock      clock.Clock
	Log        *slog.Logger
	// PendingTTL is how long a person has to sign in and consent.
	PendingTTL time.Duration
	// ClientIP tells the address pending requests are counted against, and
	// Limits how many one address, and all together, may hold.
	ClientIP Addresses
	Limits   storage.PendingLimits

	// fullNoticed is when the warning that every pending request is taken
	// was last logged (Unix seconds): a flood must not flood the log too.
	fullNoticed atomic.Int64
	// Pushed, if set, holds pushed authorization requests (RFC 9126), which
	// requests then name by request_uri; RequirePAR refuses requests that
	// were not pushed, for every client.
	Pushed     PushedRequests
	RequirePAR bool
}

var _ login.Pending = (*Handler)(nil)

// Mount registers the routes.
func (h *Handler) Mount(mux *http.ServeMux, path string) {
	mux.HandleFunc("GET "+path, h.authorize)
	mux.HandleFunc("POST "+path, h.authorize)
	mux.HandleFunc("GET "+path+"/resume", h.resume)
	mux.HandleFunc("POST "+path+"/consent", h.consent)
}

// flow is one authorization request being answered.
type flow struct {
	client  storage.Client
	req     *Request
	pending string // pending request id, once one exists
}

func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) {
	params, e := readParams(w, r)
	if e != nil {
		h.showError(w, r, e)
		return
	}
	if h.pushedRequest(params) {
		h.pushed(w, r, params)
		return
	}
	c, uri, given, err := identify(params, h.client(r.Context()))
	if err != nil {
		h.showError(w, r, err)
		return
	}
	f := &flow{client: c, req: &Request{ClientID: c.ID, RedirectURI: uri, RedirectGiven: given}}
	if e := validate(params, c, f.req, h.Clock.Now()); e != nil {
		h.fail(w, r, f, e)
		return
	}
	if h.parRequired(c) {
		// RFC 9126 §5, §6: this client's requests count only when pushed.
		h.fail(w, r, f, redirectError(oauth.ErrInvalidRequest, "this client must push its authorization requests first (pushed_authorization_request_endpoint)"))
		return
	}
	if e := h.hint(params, f.req); e != nil {
		h.fail(w, r, f, e)
		return
	}
	h.proceed(w, r, f)
}

// readParams reads the parameters of an authorization request, within
// oauth.MaxRequestBytes and oauth.MaxRequestParameters: a request is parsed
// only once it is known to be small.
func readParams(w http.ResponseWriter, r *http.Request) (url.Values, *oauth.Error) {
	tooLarge := pageError("the request is longer than " + strconv.Itoa(oauth.MaxRequestBytes) +
		" bytes or has more than " + strconv.Itoa(oauth.MaxRequestParameters) + " parameters")
	// Even a POST's query is parsed (into r.Form) by ParseForm.
	params, ok := oauth.ParseRequestQuery(r.URL.RawQuery)
	if !ok {
		return nil, tooLarge
	}
	if r.Method == http.MethodPost {
		// OIDC Core §3.1.2.1: POST carries the parameters form-encoded in the body.
		r.Body = http.MaxBytesReader(w, r.Body, oauth.MaxRequestBytes)
		if err := r.ParseForm(); err != nil {
			var mb *http.MaxBytesError
			if errors.As(err, &mb) {
				return nil, tooLarge
			}
			return nil, pageError("the request body could not be read")
		}
		params = r.PostForm
	}
	if oauth.TooManyParameters(params) {
		return nil, tooLarge
	}
	return params, nil
}

// hint reads id_token_hint: the subject the client expects to be signed in.
func (h *Handler) hint(params url.Values, req *Request) *oauth.Error {
	if hint := params.Get("id_token_hint"); hint != "" {
		claims, err := h.Mint.ParseIDTokenHint(hint)
		if err != nil {
			return redirectError(oauth.ErrInvalidRequest, "id_token_hint is not an ID token issued here")
		}
		req.IDTokenHintSubject = claims.Subject
	}
	return nil
}

// client looks a client up.
func (h *Handler) client(ctx context.Context) func(string) (storage.Client, error) {
	return func(id string) (storage.Client, error) { return h.Store.GetClient(ctx, id) }
}

// proceed applies the session rule to a validated request: sign in if needed,
// consent if needed, else answer now.
func (h *Handler) proceed(w http.ResponseWriter, r *http.Request, f *flow) {
	ctx := r.Context()
	req := f.req
	sess, user, live, err := h.current(r)
	if err != nil {
		h.fail(w, r, f, err)
		return
	}
	if f.pending == "" && live {
		// First sight of the request: remember the session it found.
		req.SessionAtStart = sess.SID
	}
	if h.needsLogin(req, sess, user, live) {
		if req.HasPrompt(PromptNone) {
			h.fail(w, r, f, redirectError(oauth.ErrLoginRequired, "the user is not signed in"))
			return
		}
		if err := h.ensurePending(w, r, f); err != nil {
			h.fail(w, r, f, err)
			return
		}
		// The pending request's id (and perhaps a new browser cookie) is in it.
		web.NoStore(w)
		http.Redirect(w, r, h.Base+"/login?authz="+url.QueryEscape(f.pending), http.StatusSeeOther)
		return
	}
	if !f.client.SkipConsent {
		granted, err := h.Store.GetConsent(ctx, user.ID, f.client.ID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			h.fail(w, r, f, err)
			return
		}
		if req.HasPrompt(PromptConsent) || !oauth.Subset(req.Scopes, granted.Scopes) {
			if req.HasPrompt(PromptNone) {
				h.fail(w, r, f, redirectError(oauth.ErrConsentRequired, "the user has not consented to these scopes"))
				return
			}
			if err := h.ensurePending(w, r, f); err != nil {
				h.fail(w, r, f, err)
				return
			}
			h.showConsent(w, r, f, user)
			return
		}
	}
	h.issue(w, r, f, sess, user)
}

// needsLogin says whether the person must (re-)authenticate for req. A sign-in
// that happened after the request arrived (a session other than the one it
// found) satisfies every condition, so the flow does not loop back to the
// sign-in page.
func (h *Handler) needsLogin(req *Request, s storage.Session, u storage.User, live bool) bool {
	if !live {
		return true
	}
	if s.SID != req.SessionAtStart {
		return false
	}
	switch {
	case req.HasPrompt(PromptLogin), req.HasPrompt(PromptSelectAccount), req.MaxAge == 0:
		// OIDC Core §3.1.2.1: max_age=0 is equivalent to prompt=login.
		return true
	case req.MaxAge >= 0 && h.Clock.Now().Sub(s.AuthTime) > time.Duration(req.MaxAge)*time.Second:
		// OIDC Core §3.1.2.1: authentication older than max_age must be redone.
		return true
	case req.IDTokenHintSubject != "" && req.IDTokenHintSubject != u.ID:
		// Someone else is signed in than the client expects.
		return true
	}
	return false
}

// current returns the browser's live session and its (enabled) user.
func (h *Handler) current(r *http.Request) (storage.Session, storage.User, bool, error) {
	v := h.Cookie.Read(r)
	if v == "" {
		return storage.Session{}, storage.User{}, false, nil
	}
	s, u, err := h.Sessions.LookupWithUser(r.Context(), v)
	if errors.Is(err, session.ErrNoSession) || (err == nil && u.Disabled) {
		return storage.Session{}, storage.User{}, false, nil
	}
	return s, u, err == nil, err
}

// ensurePending stores the request so it survives the sign-in or consent page.
func (h *Handler) ensurePending(w http.ResponseWriter, r *http.Request, f *flow) error {
	if f.pending != "" {
		return nil
	}
	data, e := EncodeRequest(f.req)
	if e != nil {
		return e
	}
	now := h.Clock.Now()
	id := opaque.New()
	err := h.Store.CreatePendingRequest(r.Context(), storage.PendingRequest{
		IDHash: opaque.Hash(id), BrowserHash: opaque.Hash(h.CSRF.Browser(w, r)), ClientID: f.client.ID,
		Request: data, CreatedAt: now, ExpiresAt: now.Add(h.PendingTTL), AddressHash: AddressKey(h.ClientIP.Of(r)),
	}, h.Limits)
	if err != nil {
		return err
	}
	f.pending = id
	return nil
}

// errExpiredPending is shown when a pending request is gone or not this browser's.
var errExpiredPending = pageError("this sign-in request has expired or was already completed; go back to the application and start again")

// loadPending finds a pending request of this browser (without consuming it).
func (h *Handler) loadPending(r *http.Request, id string) (*flow, error) {
	if !opaque.Wellformed(id) {
		return nil, errExpiredPending
	}
	p, err := h.Store.GetPendingRequest(r.Context(), opaque.Hash(id), h.Clock.Now())
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errExpiredPending
	}
	if err != nil {
		return nil, err
	}
	return h.flowOf(r, p, id)
}

func (h *Handler) flowOf(r *http.Request, p storage.PendingRequest, id string) (*flow, error) {
	browser := h.CSRF.BrowserOf(r)
	if browser == "" || !web.ConstantTimeEqual(opaque.Hash(browser), p.BrowserHash) {
		// Bound to the browser that started it: a link to someone else's pending
		// request is useless (no login CSRF through a shared URL).
		return nil, errExpiredPending
	}
	var req Request
	if err := json.Unmarshal(p.Request, &req); err != nil {
		return nil, err
	}
	c, err := h.Store.GetClient(r.Context(), p.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, &clientError{clientID: p.ClientID, reason: "the client of a pending request was removed"}
	}
	if err != nil {
		return nil, err
	}
	return &flow{client: c, req: &req, pending: id}, nil
}

// resume continues a pending request after sign-in.
func (h *Handler) resume(w http.ResponseWriter, r *http.Request) {
	f, err := h.loadPending(r, r.URL.Query().Get("authz"))
	if err != nil {
		h.showError(w, r, err)
		return
	}
	h.proceed(w, r, f)
}

// consume takes the pending request out of storage; of two concurrent
// submissions only one gets it.
func (h *Handler) consume(r *http.Request, f *flow) error {
	if f.pending == "" {
		return nil
	}
	_, err := h.Store.ConsumePendingRequest(r.Context(), opaque.Hash(f.pending), h.Clock.Now())
	if errors.Is(err, storage.ErrNotFound) {
		return errExpiredPending
	}
	return err
}

// Describe implements login.Pending.
func (h *Handler) Describe(r *http.Request, id string) (login.PendingInfo, bool) {
	f, err := h.loadPending(r, id)
	if err != nil {
		return login.PendingInfo{}, false
	}
	return login.PendingInfo{ClientName: f.client.Name, LoginHint: f.req.LoginHint, RedirectOrigin: origin(f.req.RedirectURI)}, true
}

// Resume implements login.Pending.
func (h *Handler) Resume(id string) string {
	return h.Base + "/authorize/resume?authz=" + url.QueryEscape(id)
}

// Cancel implements login.Pending: the person declined to sign in.
func (h *Handler) Cancel(w http.ResponseWriter, r *http.Request, id string) {
	f, err := h.loadPending(r, id)
	if err == nil {
		err = h.consume(r, f)
	}
	if err != nil {
		h.showError(w, r, err)
		return
	}
	h.fail(w, r, f, redirectError(oauth.ErrAccessDenied, "the user cancelled the sign-in"))
}

// origin is the CSP source that lets a page's forms, and the redirects that
// follow them, reach a redirect URI: its origin, or for a native app's
// private-use URI scheme (RFC 8252 §7.1), which has no origin, the scheme.
func origin(uri string) string {
	u, err := url.Parse(uri)
	switch {
	case err != nil || u.Scheme == "":
		return ""
	case !webScheme(u.Scheme):
		return u.Scheme + ":"
	case u.Host == "":
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func webScheme(scheme string) bool { return scheme == "https" || scheme == "http" }
