// Package login serves the sign-in page: it checks the CSRF token,
// throttles guessing per account and per address, verifies the password under
// the bounded hashing pool, and starts a new SSO session (a new id every time,
// so a session id planted before sign-in is worthless after it).
package login

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/castellan-auth/castellan/internal/identity"
	"github.com/castellan-auth/castellan/internal/metrics"
	"github.com/castellan-auth/castellan/internal/session"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/throttle"
	"github.com/castellan-auth/castellan/internal/web"
)

// Pending is what the sign-in page needs from a pending authorization request
// (implemented by the authorization endpoint). A nil Pending means sign-in is
// only for Castellan's own pages.
type Pending interface {
	// Describe returns what the page shows about pending request id, if it exists
	// and belongs to this browser.
	Describe(r *http.Request, id string) (PendingInfo, bool)
	// Resume is where the browser goes after signing in for request id.
	Resume(id string) string
	// Cancel abandons request id (the person declined to sign in) and answers the
	// client with access_denied.
	Cancel(w http.ResponseWriter, r *http.Request, id string)
}

// PendingInfo describes a pending request on the sign-in page.
type PendingInfo struct {
	ClientName string
	LoginHint  string
	// RedirectOrigin is the client's redirect origin, which the page's
	// form-action must allow.
	RedirectOrigin string
}

// Handler serves /login, /login/cancel and the home page. (Sign-out is the
// logout package's.)
type Handler struct {
	Directory *identity.Directory
	Sessions  *session.Manager
	Cookie    session.Cookie
	Throttle  *throttle.Limiter
	CSRF      *web.CSRF
	Pages     *web.Pages
	ClientIP  web.ClientIP
	Metrics   *metrics.Metrics
	Log       *slog.Logger
	Pending   Pending
	Base      string // issuer path prefix
}

type loginPage struct {
	Username   string
	Error      string
	Pending    string
	Cancel     string
	ClientName string
}

// Mount registers the routes on mux.
func (h *Handler) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /login", h.form)
	mux.HandleFunc("POST /login", h.signIn)
	mux.HandleFunc("POST /login/cancel", h.cancel)
	mux.HandleFunc("GET /{$}", h.home)
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, p loginPage) {
	opt := web.PageOptions{}
	if p.Pending != "" && h.Pending != nil {
		if info, ok := h.Pending.Describe(r, p.Pending); ok {
			p.ClientName = info.ClientName
			if p.Username == "" {
				p.Username = info.LoginHint
			}
			p.Cancel = p.Pending
			if info.RedirectOrigin != "" {
				opt.FormActions = []string{info.RedirectOrigin}
			}
		} else {
			p.Pending = ""
		}
	}
	h.Pages.Render(w, r, status, "login", web.View{Title: "Sign in", CSRF: h.CSRF.Token(w, r), Page: p}, opt)
}

func (h *Handler) form(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, loginPage{Pending: r.URL.Query().Get("authz")})
}

// forbidden answers a form post whose CSRF token is missing or wrong.
func (h *Handler) forbidden(w http.ResponseWriter, r *http.Request) {
	h.Pages.Error(w, r, http.StatusForbidden, "Request refused", web.ErrorPage{
		Message: "This form has expired or did not come from this site. Go back, reload the page and try again.",
	})
}

func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.Pages.Error(w, r, http.StatusBadRequest, "Bad request", web.ErrorPage{Message: "The form could not be read."})
		return
	}
	if !h.CSRF.Valid(r, r.PostForm.Get(web.CSRFField)) {
		h.Metrics.SignIns.WithLabelValues("csrf").Inc()
		h.forbidden(w, r)
		return
	}
	username, password := r.PostForm.Get("username"), r.PostForm.Get("password")
	page := loginPage{Username: username, Pending: r.PostForm.Get("authz")}
	ctx := r.Context()

	account, address := h.Throttle.Account(username), h.Throttle.Address(h.ClientIP.Of(r))
	wait, err := h.Throttle.Wait(ctx, account, address)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if wait > 0 {
		h.Metrics.SignIns.WithLabelValues("throttled").Inc()
		h.tooMany(w, r, wait)
		return
	}

	user, err := h.Directory.Authenticate(ctx, username, password)
	switch {
	case errors.Is(err, identity.ErrBadCredentials):
		h.Metrics.SignIns.WithLabelValues("failure").Inc()
		h.Log.Info("sign-in failed", "request_id", web.RequestID(ctx), "address", h.ClientIP.Of(r))
		if wait, err := h.Throttle.Fail(ctx, account, address); err != nil {
			h.fail(w, r, err)
			return
		} else if wait > 0 {
			h.tooMany(w, r, wait)
			return
		}
		page.Error = identity.ErrBadCredentials.Error()
		h.render(w, r, http.StatusUnauthorized, page)
		return
	case errors.Is(err, identity.ErrBusy):
		h.Metrics.SignIns.WithLabelValues("busy").Inc()
		w.Header().Set("Retry-After", "2")
		h.Pages.Error(w, r, http.StatusServiceUnavailable, "Busy", web.ErrorPage{
			Message: "Too many people are signing in right now.", RetryAfter: "a few seconds"})
		return
	case err != nil:
		h.fail(w, r, err)
		return
	}

	if err := h.Throttle.Succeed(ctx, account); err != nil {
		h.Log.Warn("could not clear sign-in throttle", "err", err)
	}
	// A new session with a new id every time; whatever session this browser had
	// before (perhaps planted by someone else) ends.
	if old := h.Cookie.Read(r); old != "" {
		if s, err := h.Sessions.Lookup(ctx, old); err == nil {
			h.Sessions.End(ctx, s.IDHash, "replaced")
		}
	}
	value, s, err := h.Sessions.Start(ctx, user.ID, []string{"pwd"})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.Cookie.Set(w, value, s.ExpiresAt.Sub(s.CreatedAt))
	h.Metrics.SignIns.WithLabelValues("success").Inc()
	h.Metrics.Sessions.WithLabelValues("started", "signin").Inc()
	h.Log.Info("signed in", "request_id", web.RequestID(ctx), "user_id", user.ID, "sid", s.SID)

	next := h.Base + "/"
	if page.Pending != "" && h.Pending != nil {
		next = h.Pending.Resume(page.Pending)
	}
	// It sets the session cookie: no cache may keep it.
	web.NoStore(w)
	// 303: the browser follows with GET and never re-posts the credentials (RFC 9700 §4.12).
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Handler) cancel(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || !h.CSRF.Valid(r, r.PostForm.Get(web.CSRFField)) {
		h.forbidden(w, r)
		return
	}
	if h.Pending == nil {
		http.Redirect(w, r, h.Base+"/", http.StatusSeeOther)
		return
	}
	h.Pending.Cancel(w, r, r.PostForm.Get("authz"))
}

func (h *Handler) tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	h.Pages.Error(w, r, http.StatusTooManyRequests, "Too many attempts", web.ErrorPage{
		Message:    "Too many failed sign-in attempts.",
		RetryAfter: humanDuration(secs),
	})
}

func humanDuration(secs int) string {
	switch {
	case secs <= 1:
		return "1 second"
	case secs < 120:
		return fmt.Sprintf("%d seconds", secs)
	default:
		return fmt.Sprintf("%d minutes", (secs+59)/60)
	}
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	h.Metrics.SignIns.WithLabelValues("error").Inc()
	h.Log.Error("sign-in", "request_id", web.RequestID(r.Context()), "err", err)
	h.Pages.Error(w, r, http.StatusInternalServerError, "Something went wrong", web.ErrorPage{Message: "Please try again in a moment."})
}

type homePage struct {
	Username  string
	AuthTime  string
	ExpiresAt string
}

func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	var p homePage
	if s, user, ok := h.current(r); ok {
		// Visiting Castellan itself is activity.
		if err := h.Sessions.Touch(r.Context(), s); err != nil {
			h.Log.Warn("touch session", "err", err)
		}
		p = homePage{Username: user.Username, AuthTime: s.AuthTime.Format(time.RFC3339),
			ExpiresAt: h.Sessions.IdleExpiresAt(s).Format(time.RFC3339)}
	}
	h.Pages.Render(w, r, http.StatusOK, "home", web.View{Title: "Castellan", CSRF: h.CSRF.Token(w, r), Page: p}, web.PageOptions{})
}

// current returns the live session of r and its user.
func (h *Handler) current(r *http.Request) (storage.Session, storage.User, bool) {
	v := h.Cookie.Read(r)
	if v == "" {
		return storage.Session{}, storage.User{}, false
	}
	s, err := h.Sessions.Lookup(r.Context(), v)
	if err != nil {
		return storage.Session{}, storage.User{}, false
	}
	u, err := h.Directory.User(r.Context(), s.UserID)
	if err != nil || u.Disabled {
		return storage.Session{}, storage.User{}, false
	}
	return s, u, true
}
