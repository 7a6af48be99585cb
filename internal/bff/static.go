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
)

// spaHandler serves the SPA: files from static_dir, or a proxy to a dev
// server (spa_upstream), or nothing.
func (g *Gateway) spaHandler() (http.Handler, error) {
	switch {
	case g.cfg.StaticDir != "":
		return staticFiles(os.DirFS(g.cfg.StaticDir)), nil
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
