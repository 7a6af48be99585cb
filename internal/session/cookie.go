package session

import (
	"net/http"
	"time"
)

// Cookie writes and reads the SSO session cookie. Under an https issuer it is
// "__Host-" prefixed and Secure, so no subdomain or plain-http page can set or
// overwrite it; always HttpOnly (no script reads it) and SameSite=Lax (sent on
// top-level navigations from a client, which is how people arrive at the
// authorization endpoint, but not on cross-site subresource requests or POSTs).
type Cookie struct {
	Secure bool
}

// Name is the cookie's name.
func (c Cookie) Name() string {
	if c.Secure {
		return "__Host-castellan_session"
	}
	return "castellan_session"
}

// Set writes the session cookie, kept by the browser for lifetime. (Max-Age,
// relative, rather than Expires: the server's clock and the browser's need not agree.)
func (c Cookie) Set(w http.ResponseWriter, value string, lifetime time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: c.Name(), Value: value, Path: "/", MaxAge: int(lifetime.Seconds()),
		Secure: c.Secure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

// Clear removes the session cookie.
func (c Cookie) Clear(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: c.Name(), Value: "", Path: "/", MaxAge: -1,
		Secure: c.Secure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

// Read returns the cookie's value, or "" when absent.
func (c Cookie) Read(r *http.Request) string {
	ck, err := r.Cookie(c.Name())
	if err != nil {
		return ""
	}
	return ck.Value
}
