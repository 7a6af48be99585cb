package authorize

import (
	"errors"
	"net/http"

	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/web"
)

// scopeText says in words what a scope lets the client do.
var scopeText = map[string]string{
	oauth.ScopeOpenID:        "Know who you are",
	oauth.ScopeProfile:       "See your name and username",
	oauth.ScopeEmail:         "See your e-mail address",
	oauth.ScopeOfflineAccess: "Stay connected when you are not using it",
}

type consentPage struct {
	ClientName string
	Username   string
	Scopes     []string
	Pending    string
}

func (h *Handler) showConsent(w http.ResponseWriter, r *http.Request, f *flow, u storage.User) {
	p := consentPage{ClientName: f.client.Name, Username: u.Username, Pending: f.pending}
	for _, s := range f.req.Scopes {
		if t, ok := scopeText[s]; ok {
			p.Scopes = append(p.Scopes, t)
		} else {
			p.Scopes = append(p.Scopes, "Use the “"+s+"” permission")
		}
	}
	h.Pages.Render(w, r, http.StatusOK, "consent", web.View{Title: "Allow access?", CSRF: h.CSRF.Token(w, r), Page: p},
		web.PageOptions{FormActions: []string{origin(f.req.RedirectURI)}})
}

// consent takes the person's decision. The CSRF token and the browser-bound,
// single-use pending request make a replayed or cross-site decision fail.
func (h *Handler) consent(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || !h.CSRF.Valid(r, r.PostForm.Get(web.CSRFField)) {
		h.Pages.Error(w, r, http.StatusForbidden, "Request refused", web.ErrorPage{
			Message: "This form has expired or did not come from this site. Go back to the application and start again."})
		return
	}
	f, err := h.loadPending(r, r.PostForm.Get("authz"))
	if err != nil {
		h.showError(w, r, err)
		return
	}
	s, u, live, err := h.current(r)
	if err != nil {
		h.fail(w, r, f, err)
		return
	}
	if h.needsLogin(f.req, s, u, live) {
		// Signed out (or expired) while looking at the page, or a request that
		// still waits for the sign-in it asked for (prompt=login, max_age,
		// id_token_hint: its id is in the sign-in page's URL): sign in first. A
		// decision posted straight away must not get around re-authentication.
		h.proceed(w, r, f)
		return
	}
	switch r.PostForm.Get("decision") {
	case "allow":
		prev, err := h.Store.GetConsent(r.Context(), u.ID, f.client.ID)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			h.fail(w, r, f, err)
			return
		}
		scopes := append([]string(nil), prev.Scopes...)
		for _, sc := range f.req.Scopes {
			if !oauth.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
		if err := h.Store.SaveConsent(r.Context(), storage.Consent{UserID: u.ID, ClientID: f.client.ID, Scopes: scopes, GrantedAt: h.Clock.Now()}); err != nil {
			h.fail(w, r, f, err)
			return
		}
		h.issue(w, r, f, s, u)
	case "deny":
		if err := h.consume(r, f); err != nil {
			h.showError(w, r, err)
			return
		}
		h.fail(w, r, f, redirectError(oauth.ErrAccessDenied, "the user denied the request"))
	default:
		h.showError(w, r, pageError("no decision in the consent form"))
	}
}
