package web

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"

	"github.com/castellan-auth/castellan/internal/opaque"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Static serves the embedded stylesheet (and any other static asset). It
// serves files only: a directory is 404, never a listing of what is in it.
func Static() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if fi, err := fs.Stat(sub, name); name == "" || err != nil || fi.IsDir() {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// Pages renders the server-side pages.
type Pages struct {
	base string
	tmpl map[string]*template.Template
	log  *slog.Logger
}

// NewPages parses the embedded templates. base is the path prefix of the
// issuer (e.g. "/auth"), so pages link correctly under a sub-path.
func NewPages(base string, log *slog.Logger) (*Pages, error) {
	p := &Pages{base: strings.TrimSuffix(base, "/"), tmpl: map[string]*template.Template{}, log: log}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		p.tmpl[name] = t
	}
	return p, nil
}

// View is the data every page gets.
type View struct {
	Title     string
	Base      string
	CSRF      string
	RequestID string
	// Nonce allows the page's own inline script (CSP script-src 'nonce-…').
	Nonce string
	Page  any
}

// PageOptions adjust the headers of one page.
type PageOptions struct {
	// FormActions are the origins forms on the page may submit to (and redirects
	// after a submission may go to) besides 'self'.
	FormActions []string
	// Script allows the page's nonce-tagged inline script.
	Script bool
	// FrameSources are the origins the page may embed in iframes (front-channel logout).
	FrameSources []string
	// FrameAncestors, when set, are the origins that may frame the page instead
	// of none (only the silent-authentication answer).
	FrameAncestors []string
}

// Render writes a page with status. Pages are never cached and never framed.
func (p *Pages) Render(w http.ResponseWriter, r *http.Request, status int, name string, v View, opt PageOptions) {
	t, ok := p.tmpl[name]
	if !ok {
		p.log.Error("no such page template", "name", name)
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	v.Base = p.base
	v.RequestID = RequestID(r.Context())
	if opt.Script {
		v.Nonce = opaque.ID()
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		p.log.Error("render page", "name", name, "err", err)
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// form-action also governs redirects that follow a form submission, so a
	// sign-in that ends at a client's redirect URI must name that origin.
	formAction := "'self'"
	for _, o := range opt.FormActions {
		formAction += " " + o
	}
	csp := "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action " + formAction + "; base-uri 'none'"
	if opt.Script {
		csp += "; script-src 'nonce-" + v.Nonce + "'"
	}
	if len(opt.FrameSources) > 0 {
		csp += "; frame-src " + strings.Join(opt.FrameSources, " ")
	}
	if len(opt.FrameAncestors) > 0 {
		csp += "; frame-ancestors " + strings.Join(opt.FrameAncestors, " ")
		h.Del("X-Frame-Options")
	} else {
		csp += "; frame-ancestors 'none'"
	}
	h.Set("Content-Security-Policy", csp)
	NoStore(w)
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// ErrorPage is the data of the error page.
type ErrorPage struct {
	Message    string
	Detail     string
	RetryAfter string
}

// Error renders the error page.
func (p *Pages) Error(w http.ResponseWriter, r *http.Request, status int, title string, e ErrorPage) {
	p.Render(w, r, status, "error", View{Title: title, Page: e}, PageOptions{})
}
