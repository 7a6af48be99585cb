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
	cur, err := h.currentSession(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ended, err := h.endCurrent(w, r, cur, "logout")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.loggedOut(w, r, ended, "", "")
}

// endCurrent ends the browser's session cur, if it has one, and clears the
// cookie.
func (h *Handler) endCurrent(w http.ResponseWriter, r *http.Request, cur *storage.Session, reason string) (*storage.Session, error) {
	h.Cookie.Clear(w)
	if cur == nil {
		return nil, nil
	}
	return h.endByHash(r, cur.IDHash, reason)
}

// endByHash ends the session whose cookie hash is idHash: its grants are
// revoked, its logout notices queued, and listeners told (metrics, the
// session-events streams). nil, nil if it ended meanwhile.
func (h *Handler) endByHash(r *http.Request, idHash []byte, reason string) (*storage.Session, error) {
	ended, err := h.Sessions.End(r.Context(), idHash, reason)
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
//
// A request that carries no live session cookie — a relying party calling
// from its server (zitadel's rp.EndSession, oauth2-proxy's backend logout
// URL), or a browser already signed out — is decided by the hint alone
// (endHinted): the session it names is ended when it is a live session of
// that client, and when it is alive but is not, the answer says that nothing
// was ended (400), never that it was.
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
	req, msg, err := h.validate(r, p)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if msg != "" {
		h.badRequest(w, r, msg)
		return
	}
	cur, err := h.currentSession(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var ended *storage.Session
	if cur != nil {
		confirmed := r.Method == http.MethodPost && p["decision"] == "logout" && h.CSRF.Valid(r, p[web.CSRFField])
		if !confirmed && !hintMatchesSession(req, *cur) {
			h.confirm(w, r, p)
			return
		}
		ended, err = h.endCurrent(w, r, cur, "rp_logout")
	} else {
		h.Cookie.Clear(w)
		var refusal string
		ended, refusal, err = h.endHinted(r, req)
		if err == nil && refusal != "" {
			h.Log.Info("end_session without a session cookie: nothing ended", "request_id", web.RequestID(r.Context()),
				"client_id", req.client.ID, "why", refusal)
			h.badRequest(w, r, "No session was ended: the id_token_hint does not belong to a sign-in session of this application")
			return
		}
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.loggedOut(w, r, ended, req.redirect, req.state)
}

// endHinted ends, for a request without a live session cookie, the session
// the id_token_hint names. It returns nil and no refusal when there is
// nothing alive to end: no hint, a hint without sid, or a session that has
// ended already (the person is signed out, which is what the client asked
// for). A live session is ended only when the hint is one of its own: the
// hint's subject is the session's user, it was issued after the session
// began, and the hint's client received tokens in that session (so the
// client asking is one the person used there). Otherwise it is left alone,
// and refusal says why (for the log).
//
// An expired hint is accepted (§2: the OP SHOULD accept ID tokens of a
// current or recent session even when exp has passed): its signature must
// verify with a key Castellan still publishes, and since it must name a
// live session that began before it was issued, it is never older than
// session.absolute_timeout.
func (h *Handler) endHinted(r *http.Request, req endRequest) (ended *storage.Session, refusal string, err error) {
	if req.hint == nil || req.hint.SID == "" {
		return nil, "", nil
	}
	ctx := r.Context()
	s, err := h.Sessions.LookupBySID(ctx, req.hint.SID)
	if errors.Is(err, session.ErrNoSession) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", err
	}
	switch {
	case req.hint.Subject != s.UserID:
		return nil, "the hint's subject is not the session's user", nil
	case req.hint.IssuedAt < s.CreatedAt.Unix():
		return nil, "the hint was issued before the session began", nil
	}
	used, err := h.clientUsed(r, s, req.client.ID)
	if err != nil {
		return nil, "", err
	}
	if !used {
		return nil, "the hint's client received no tokens in the session", nil
	}
	ended, err = h.endByHash(r, s.IDHash, "rp_logout")
	return ended, "", err
}

// clientUsed reports whether clientID was given tokens in session s (it
// holds a grant from it, revoked or not).
func (h *Handler) clientUsed(r *http.Request, s storage.Session, clientID string) (bool, error) {
	grants, err := h.Store.ListGrantsByUser(r.Context(), s.UserID)
	if err != nil {
		return false, err
	}
	for _, g := range grants {
		if g.SID == s.SID && g.ClientID == clientID {
			return true, nil
		}
	}
	return false, nil
}

func (h *Handler) badRequest(w http.ResponseWriter, r *http.Request, msg string) {
	h.Pages.Error(w, r, http.StatusBadRequest, "The logout request cannot be processed", web.ErrorPage{Message: msg + "."})
}

// validate checks the parameters; a message means the request is refused on
// Castellan's own page, with no redirect. An error is storage failing: the
// request can be neither accepted nor refused.
func (h *Handler) validate(r *http.Request, p map[string]string) (endRequest, string, error) {
	var req endRequest
	clientID := p["client_id"]
	if hint := p["id_token_hint"]; hint != "" {
		claims, err := h.Mint.ParseIDTokenHint(hint)
		if err != nil {
			return req, "id_token_hint is not an ID token issued here", nil
		}
		req.hint = &claims
		if len(claims.Audience) != 1 {
			return req, "id_token_hint has an unexpected audience", nil
		}
		if clientID != "" && clientID != claims.Audience[0] {
			return req, "client_id does not match the id_token_hint", nil
		}
		clientID = claims.Audience[0]
	}
	if clientID != "" {
		c, err := h.Store.GetClient(r.Context(), clientID)
		if errors.Is(err, storage.ErrNotFound) {
			return req, "unknown client_id", nil
		}
		if err != nil {
			return req, "", err
		}
		req.client = &c
	}
	if uri := p["post_logout_redirect_uri"]; uri != "" {
		if req.client == nil {
			// Without a client the URI cannot be checked: it is never followed,
			// and the person is asked to confirm (§3).
			return req, "", nil
		}
		if !oauth.Contains(req.client.PostLogoutRedirectURIs, uri) {
			return req, "post_logout_redirect_uri is not registered for this client", nil
		}
		req.redirect = uri
		req.state = p["state"]
	}
	return req, "", nil
}

// currentSession is the browser's live session, nil without one.
func (h *Handler) currentSession(r *http.Request) (*storage.Session, error) {
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
	return &s, nil
}

// hintMatchesSession reports whether the id_token_hint was issued in the
// browser's current session s, which shows the client asking is one the
// person used in this session.
func hintMatchesSession(req endRequest, s storage.Session) bool {
	return req.hint != nil && req.hint.SID != "" && req.hint.SID == s.SID && req.hint.Subject == s.UserID
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
	// Ended says a session was ended; without, the page says plainly that
	// nothing was (the browser was not signed in).
	Ended        bool
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
	title := "Signed out"
	if ended == nil {
		title = "Not signed in"
	}
	h.Pages.Render(w, r, http.StatusOK, "logged_out", web.View{Title: title, Page: loggedOutPage{Ended: ended != nil, FrontChannel: frames, Continue: target}},
		web.PageOptions{Script: true, FrameSources: frameOrigins})
}

func originsOf(uri string) []string {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil
	}
	return []string{u.Scheme + "://" + u.Host}
}
