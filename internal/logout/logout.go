// Package logout ends SSO sessions when asked — the sign-out button on
// Castellan's pages and OpenID Connect RP-Initiated Logout 1.0 — and tells the
// clients that received tokens in the session: Front-Channel Logout 1.0
// (iframes on the logged-out page) and Back-Channel Logout 1.0 (a signed logout
// token POSTed in the background, with retries, from notices that storage
// queues whenever a session ends: by sign-out, expiry or administration, in
// this process or another).
package logout

import (
	"errors"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/mint"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/session"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/web"
)

// Handler serves sign-out and the end-session endpoint.
type Handler struct {
	Issuer   string
	Base     string
	Store    Store
	Sessions *session.Manager
	Cookie   session.Cookie
	CSRF     *web.CSRF
	Pages    *web.Pages
	Mint     *mint.Minter
	Notifier *Notifier
	Clock    clock.Clock
	Log      *slog.Logger
}

// Mount registers the routes.
func (h *Handler) Mount(mux *http.ServeMux, endSessionPath string) {
	mux.HandleFunc("POST /logout", h.signOut)
	mux.HandleFunc("GET "+endSessionPath, h.endSession)
	mux.HandleFunc("POST "+endSessionPath, h.endSession)
}

func (h *Handler) forbidden(w http.ResponseWriter, r *http.Request) {
	h.Pages.Error(w, r, http.StatusForbidden, "Request refused", web.ErrorPage{
		Message: "This form has expired or did not come from this site. Go back, reload the page and try again.",
	})
}

// signOut is the sign-out button of Castellan's own pages.
func (h *Handler) signOut(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || !h.CSRF.Valid(r, r.PostForm.Get(web.CSRFField)) {
		h.forbidden(w, r)
		return
	}
	ended, err := h.end(w, r, "logout")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.loggedOut(w, r, ended, "", "")
}

// end ends the browser's session, if it has one, and clears the cookie.
func (h *Handler) end(w http.ResponseWriter, r *http.Request, reason string) (*storage.Session, error) {
	defer h.Cookie.Clear(w)
	v := h.Cookie.Read(r)
	if v == "" {
		return nil, nil
	}
	s, err := h.Sessions.Lookup(r.Context(), v)
	if errors.Is(err, session.ErrNoSession) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ended, err := h.Sessions.End(r.Context(), s.IDHash, reason)
	if errors.Is(err, session.ErrNoSession) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	h.Log.Info("signed out", "request_id", web.RequestID(r.Context()), "sid", ended.SID, "reason", reason)
	return &ended, nil
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	h.Log.Error("logout", "request_id", web.RequestID(r.Context()), "err", err)
	h.Pages.Error(w, r, http.StatusInternalServerError, "Something went wrong", web.ErrorPage{Message: "Please try again in a moment."})
}

// endRequest is a validated RP-initiated logout request.
type endRequest struct {
	client *storage.Client
	hint   *mint.IDClaims
	// redirect is the validated post_logout_redirect_uri ("" if none or not registered).
	redirect string
	state    string
}

// endSession is RP-Initiated Logout 1.0 §2. With a valid id_token_hint for the
// browser's current session the person is signed out at once; otherwise a
// confirmation page asks first, so a cross-site request cannot sign anybody out
// (§6: the OP SHOULD confirm). post_logout_redirect_uri is followed only when it
// exactly matches one registered for the client.
func (h *Handler) endSession(w http.ResponseWriter, r *http.Request) {
	params := r.URL.Query()
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			h.badRequest(w, r, "the request body could not be read")
			return
		}
		params = r.PostForm
	}
	p, dup := oauth.Single(params)
	if dup != "" {
		h.badRequest(w, r, dup+" is repeated")
		return
	}
	req, msg := h.validate(r, p)
	if msg != "" {
		h.badRequest(w, r, msg)
		return
	}
	confirmed := r.Method == http.MethodPost && p["decision"] == "logout" && h.CSRF.Valid(r, p[web.CSRFField])
	if !confirmed && !h.hintMatchesSession(r, req) {
		if _, ok := h.currentSession(r); ok {
			h.confirm(w, r, p)
			return
		}
		// No session: nothing to confirm, the person is already signed out.
	}
	ended, err := h.end(w, r, "rp_logout")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.loggedOut(w, r, ended, req.redirect, req.state)
}

func (h *Handler) badRequest(w http.ResponseWriter, r *http.Request, msg string) {
	h.Pages.Error(w, r, http.StatusBadRequest, "The logout request cannot be processed", web.ErrorPage{Message: msg + "."})
}

// validate checks the parameters; a message means the request is refused on
// Castellan's own page, with no redirect.
func (h *Handler) validate(r *http.Request, p map[string]string) (endRequest, string) {
	var req endRequest
	clientID := p["client_id"]
	if hint := p["id_token_hint"]; hint != "" {
		claims, err := h.Mint.ParseIDTokenHint(hint)
		if err != nil {
			return req, "id_token_hint is not an ID token issued here"
		}
		req.hint = &claims
		if len(claims.Audience) != 1 {
			return req, "id_token_hint has an unexpected audience"
		}
		if clientID != "" && clientID != claims.Audience[0] {
			return req, "client_id does not match the id_token_hint"
		}
		clientID = claims.Audience[0]
	}
	if clientID != "" {
		c, err := h.Store.GetClient(r.Context(), clientID)
		if err != nil {
			return req, "unknown client_id"
		}
		req.client = &c
	}
	if uri := p["post_logout_redirect_uri"]; uri != "" {
		if req.client == nil {
			// Without a client the URI cannot be checked: it is never followed,
			// and the person is asked to confirm (§3).
			return req, ""
		}
		if !oauth.Contains(req.client.PostLogoutRedirectURIs, uri) {
			return req, "post_logout_redirect_uri is not registered for this client"
		}
		req.redirect = uri
		req.state = p["state"]
	}
	return req, ""
}

func (h *Handler) currentSession(r *http.Request) (storage.Session, bool) {
	v := h.Cookie.Read(r)
	if v == "" {
		return storage.Session{}, false
	}
	s, err := h.Sessions.Lookup(r.Context(), v)
	return s, err == nil
}

// hintMatchesSession reports whether the id_token_hint was issued in the
// browser's current session, which shows the client asking is one the person
// used in this session.
func (h *Handler) hintMatchesSession(r *http.Request, req endRequest) bool {
	if req.hint == nil {
		return false
	}
	s, ok := h.currentSession(r)
	return ok && req.hint.SID != "" && req.hint.SID == s.SID && req.hint.Subject == s.UserID
}

type confirmPage struct {
	Fields []field
	Client string
}

type field struct{ Name, Value string }

// confirm asks the person whether to sign out, carrying the request's
// parameters (re-validated when the form comes back).
func (h *Handler) confirm(w http.ResponseWriter, r *http.Request, p map[string]string) {
	var page confirmPage
	for _, k := range []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state"} {
		if p[k] != "" {
			page.Fields = append(page.Fields, field{k, p[k]})
		}
	}
	if c := p["client_id"]; c != "" {
		if cl, err := h.Store.GetClient(r.Context(), c); err == nil {
			page.Client = cl.Name
		}
	}
	h.Pages.Render(w, r, http.StatusOK, "logout_confirm", web.View{Title: "Sign out?", CSRF: h.CSRF.Token(w, r), Page: page},
		web.PageOptions{FormActions: originsOf(p["post_logout_redirect_uri"])})
}

type loggedOutPage struct {
	FrontChannel []string
	Continue     string
}

// loggedOut shows the signed-out page with the front-channel logout iframes,
// then continues to the client's post-logout URI (if any) with state.
func (h *Handler) loggedOut(w http.ResponseWriter, r *http.Request, ended *storage.Session, redirect, state string) {
	target := redirect
	if target != "" && state != "" {
		u, _ := url.Parse(target)
		q := u.Query()
		q.Set("state", state)
		u.RawQuery = q.Encode()
		target = u.String()
	}
	var frames []string
	if ended != nil {
		frames = h.Notifier.FrontChannelURIs(r.Context(), *ended)
	}
	if len(frames) == 0 && target != "" {
		http.Redirect(w, r, target, http.StatusSeeOther)
		return
	}
	if target == "" {
		target = h.Base + "/"
	}
	var frameOrigins []string
	for _, f := range frames {
		frameOrigins = append(frameOrigins, originsOf(f)...)
	}
	h.Pages.Render(w, r, http.StatusOK, "logged_out", web.View{Title: "Signed out", Page: loggedOutPage{FrontChannel: frames, Continue: target}},
		web.PageOptions{Script: true, FrameSources: frameOrigins})
}

func originsOf(uri string) []string {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil
	}
	return []string{u.Scheme + "://" + u.Host}
}
