package web

import (
	"context"
	"net/http"
	"strings"
	"sync"
)

// CORS lets single-page apps call the endpoints made for them (token,
// userinfo, revocation, JWKS, discovery, activity, session events) from their
// own origin. Preflights are answered for the union of every client's
// allowed_origins (the preflight does not say which client is asking); each
// actual request is then checked against the calling client's own list.
// Credentials (cookies) are never allowed: these endpoints authenticate with
// tokens, not the SSO cookie.
type CORS struct {
	list func(ctx context.Context) ([]string, error)

	mu    sync.RWMutex
	union map[string]bool
}

// NewCORS returns a CORS policy whose union of origins comes from list.
func NewCORS(list func(ctx context.Context) ([]string, error)) *CORS {
	return &CORS{list: list, union: map[string]bool{}}
}

// Refresh re-reads the union of allowed origins (at start and periodically, so
// clients changed on another node are picked up).
func (c *CORS) Refresh(ctx context.Context) error {
	origins, err := c.list(ctx)
	if err != nil {
		return err
	}
	u := make(map[string]bool, len(origins))
	for _, o := range origins {
		u[o] = true
	}
	c.mu.Lock()
	c.union = u
	c.mu.Unlock()
	return nil
}

func (c *CORS) known(origin string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.union[origin]
}

// Preflight answers OPTIONS for an endpoint that allows methods.
func (c *CORS) Preflight(methods ...string) http.HandlerFunc {
	allow := strings.Join(append(methods, http.MethodOptions), ", ")
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if origin == "" || !c.known(origin) {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Methods", allow)
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, DPoP")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
	}
}

// Public allows any origin of the union to read a public document (JWKS,
// discovery). Requests without an Origin are not cross-origin and pass.
func (c *CORS) Public(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Origin")
	if origin := r.Header.Get("Origin"); origin != "" && c.known(origin) {
		c.allow(w, origin)
	}
}

// Check decides an actual cross-origin request of a client whose
// allowed_origins are allowed (call Public first, so that errors before the
// client is known are readable by allowed origins). It reports false when the
// request came from a browser on an origin the client did not register: the
// caller must refuse it, and the response is then unreadable to that origin.
func (c *CORS) Check(w http.ResponseWriter, r *http.Request, allowed []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, o := range allowed {
		if o == origin {
			c.allow(w, origin)
			return true
		}
	}
	w.Header().Del("Access-Control-Allow-Origin")
	w.Header().Del("Access-Control-Expose-Headers")
	return false
}

// Origin returns the Origin header ("" for same-origin and non-browser requests).
func Origin(r *http.Request) string { return r.Header.Get("Origin") }

func (c *CORS) allow(w http.ResponseWriter, origin string) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, DPoP-Nonce, Retry-After")
}
