// Package demo is Castellan's demo single-page app: plain JavaScript modules
// with no build step (renewal.js is the reusable part), embedded in the binary
// and served on an origin of its own by `castellan dev`. The app learns its
// setup — issuer, client per renewal strategy, API — from /config.json, which
// Handler writes from a Config.
package demo

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
)

//go:embed *.html *.js *.css
var files embed.FS

// Files are the app's static files (for a server that serves them itself,
// such as a Backend-for-Frontend).
var Files fs.FS = files

// Strategy kinds.
const (
	// KindToken: the tokens live in the browser; renewal.js renews them.
	KindToken = "token"
	// KindBFF: a Backend-for-Frontend on its own origin (URL) keeps them.
	KindBFF = "bff"
)

// Renewal methods of token strategies (renewal.js's "method" option).
const (
	MethodRefresh = "refresh"
	MethodIframe  = "iframe"
)

// Strategy is one way for the app to get its next access token.
type Strategy struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Title   string `json:"title"`
	Summary string `json:"summary"`
	// Token strategies.
	ClientID     string `json:"clientId,omitempty"`
	Method       string `json:"method,omitempty"`
	ResponseType string `json:"responseType,omitempty"`
	Scope        string `json:"scope,omitempty"`
	// URL is where a strategy of another kind runs the app.
	URL string `json:"url,omitempty"`
}

// Config is what the app reads from /config.json.
type Config struct {
	// Issuer is the provider's issuer (discovery is fetched from it).
	Issuer string `json:"issuer"`
	// API is the demo API's origin; the app calls {API}/api/profile.
	API string `json:"api"`
	// APIPollSeconds is how often the app calls the API.
	APIPollSeconds int `json:"apiPollSeconds"`
	// ActivitySeconds is the least time between two activity signals.
	ActivitySeconds int `json:"activitySeconds"`
	// SessionEvents turns the session-ended stream on.
	SessionEvents bool `json:"sessionEvents"`
	// SilentCallbackPage makes silent iframe renewals come back through the
	// app's silent.html even where the provider offers web_message.
	SilentCallbackPage bool `json:"silentCallbackPage,omitempty"`
	// RenewAt is the share of a token's lifetime after which it is renewed.
	RenewAt         float64    `json:"renewAt"`
	DefaultStrategy string     `json:"defaultStrategy"`
	Strategies      []Strategy `json:"strategies"`
	// Home is set where the app runs on a Backend-for-Frontend's origin: the
	// app's own origin, where its token strategies run (the picker links
	// there).
	Home string `json:"home,omitempty"`
}

// Handler serves the app and /config.json, with a Content-Security-Policy
// that lets the app's scripts talk only to its own origin, the provider and
// the API, and frame only the provider (the silent-renewal iframe) and itself.
func Handler(cfg Config) http.Handler {
	configJSON, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		panic(err) // a Config always marshals
	}
	connect := []string{"'self'"}
	frames := []string{"'self'"}
	for _, u := range []string{cfg.Issuer, cfg.API} {
		if o := origin(u); o != "" {
			connect = append(connect, o)
		}
	}
	if o := origin(cfg.Issuer); o != "" {
		frames = append(frames, o)
	}
	csp := strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' data:",
		"connect-src " + strings.Join(connect, " "),
		"frame-src " + strings.Join(frames, " "),
		"frame-ancestors 'self'",
		"form-action 'none'",
		"base-uri 'none'",
	}, "; ")
	static := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		// The callback URL carries the authorization code: never in a Referer.
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path == "/config.json" {
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "no-store")
			w.Write(configJSON)
			return
		}
		static.ServeHTTP(w, r)
	})
}

func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
