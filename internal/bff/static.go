package bff

import (
	"errors"
	"io/fs"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path"
	"strings"

	"github.com/castellan-auth/castellan/internal/config"
)

// spaHandler serves the SPA: files from static_dir, or a proxy to a dev
// server (spa_upstream), or nothing. Either way the answers say who may
// frame them (frame_ancestors).
func (g *Gateway) spaHandler() (http.Handler, error) {
	frames := frameOptions(g.cfg.FrameAncestors)
	switch {
	case g.cfg.StaticDir != "":
		files := staticFiles(os.DirFS(g.cfg.StaticDir))
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			frames.set(w.Header())
			files.ServeHTTP(w, r)
		}), nil
	case g.cfg.SPAUpstream != "":
		target, err := url.Parse(g.cfg.SPAUpstream)
		if err != nil {
			return nil, err
		}
		return &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Host = pr.In.Host // dev servers check Host for hot reload
				pr.Out.Header.Del("Cookie")
				pr.Out.Header.Del("Authorization")
			},
			ModifyResponse: func(resp *http.Response) error {
				frames.set(resp.Header)
				return nil
			},
			Transport:     g.upstreamTransport(),
			FlushInterval: -1,
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				g.log.Warn("bff: spa upstream failed", "err", err)
				http.Error(w, "SPA upstream unavailable", http.StatusBadGateway)
			},
		}, nil
	}
	return http.NotFoundHandler(), nil
}

// frameHeaders are the headers that tell browsers who may frame the SPA
// (clickjacking: RFC 9700 §4.16, CSP Level 3 frame-ancestors).
type frameHeaders struct {
	// csp is a policy of its own: added beside any policy the SPA's files or
	// dev server send, since browsers enforce every policy they get.
	csp string
	// xfo is X-Frame-Options for browsers without frame-ancestors; it can
	// say only DENY or SAMEORIGIN, so it is left out for a list of origins.
	xfo string
}

// frameOptions builds the headers of frame_ancestors, which config
// validation allows to hold only keywords and origins.
func frameOptions(ancestors []string) frameHeaders {
	f := frameHeaders{csp: "frame-ancestors " + strings.Join(ancestors, " ")}
	switch {
	case len(ancestors) == 1 && ancestors[0] == config.FrameNone:
		f.xfo = "DENY"
	case len(ancestors) == 1 && ancestors[0] == config.FrameSelf:
		f.xfo = "SAMEORIGIN"
	}
	return f
}

func (f frameHeaders) set(h http.Header) {
	h.Add("Content-Security-Policy", f.csp)
	h.Del("X-Frame-Options")
	if f.xfo != "" {
		h.Set("X-Frame-Options", f.xfo)
	}
}

// staticFiles serves files from root without directory listings. A path with
// no file extension that names no file gets index.html, so that the SPA's
// client-side routes survive a reload.
func staticFiles(root fs.FS) http.Handler {
	files := http.FileServerFS(root)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name == "" {
			name = "."
		}
		fi, err := fs.Stat(root, name)
		switch {
		case err == nil && fi.IsDir():
			if _, err := fs.Stat(root, path.Join(name, "index.html")); err != nil {
				http.NotFound(w, r)
				return
			}
		case errors.Is(err, fs.ErrNotExist) && path.Ext(name) == "":
			if _, err := fs.Stat(root, "index.html"); err != nil {
				http.NotFound(w, r)
				return
			}
			http.ServeFileFS(w, r, root, "index.html")
			return
		}
		files.ServeHTTP(w, r)
	})
}
