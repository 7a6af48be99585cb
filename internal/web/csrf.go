package web

import (
	"encoding/base64"
	"net/http"

	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/seal"
)

// CSRFField is the hidden form field that carries the token.
const CSRFField = "csrf_token"

// CSRF protects forms with tokens bound to the browser: a random cookie
// (HttpOnly, SameSite=Lax, __Host- under https) and, in each form, an HMAC of it
// under a key derived from the master key. A page on another site can neither
// read the cookie nor compute the HMAC, so it cannot forge a form post (login
// CSRF included); a token copied from another browser does not match this
// browser's cookie. Stateless, so it works on every node.
type CSRF struct {
	mac    seal.MAC
	secure bool
}

// NewCSRF returns the CSRF scheme.
func NewCSRF(master *seal.Key, secure bool) *CSRF {
	return &CSRF{mac: master.NewMAC("csrf"), secure: secure}
}

// CookieName is the browser-binding cookie's name.
func (c *CSRF) CookieName() string {
	if c.secure {
		return "__Host-castellan_csrf"
	}
	return "castellan_csrf"
}

// Browser returns the browser-binding value of r, setting a new cookie on w if
// it has none. Other browser-bound state (pending authorization requests) binds
// to the same value.
func (c *CSRF) Browser(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(c.CookieName()); err == nil && opaque.Wellformed(ck.Value) {
		return ck.Value
	}
	v := opaque.New()
	http.SetCookie(w, &http.Cookie{Name: c.CookieName(), Value: v, Path: "/", HttpOnly: true,
		Secure: c.secure, SameSite: http.SameSiteLaxMode})
	// Later reads in this request see the cookie just set, not a malformed
	// one it replaces (r.Cookie returns the first of a name): otherwise each
	// read would mint another value and state bound to the first be lost.
	replaceCookie(r, c.CookieName(), v)
	return v
}

// replaceCookie makes value the only cookie called name that r carries.
func replaceCookie(r *http.Request, name, value string) {
	others := r.Cookies()
	r.Header.Del("Cookie")
	for _, ck := range others {
		if ck.Name != name {
			r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value, Quoted: ck.Quoted})
		}
	}
	r.AddCookie(&http.Cookie{Name: name, Value: value})
}

// BrowserOf returns the browser-binding value of r without setting one ("" if none).
func (c *CSRF) BrowserOf(r *http.Request) string {
	ck, err := r.Cookie(c.CookieName())
	if err != nil || !opaque.Wellformed(ck.Value) {
		return ""
	}
	return ck.Value
}

// Token returns the form token for this browser, setting the cookie if needed.
func (c *CSRF) Token(w http.ResponseWriter, r *http.Request) string {
	return c.tokenFor(c.Browser(w, r))
}

func (c *CSRF) tokenFor(browser string) string {
	return base64.RawURLEncoding.EncodeToString(c.mac.Sum([]byte(browser)))
}

// Valid reports whether the submitted token matches this browser's cookie.
// Compared in constant time.
func (c *CSRF) Valid(r *http.Request, submitted string) bool {
	b := c.BrowserOf(r)
	if b == "" || submitted == "" {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(submitted)
	if err != nil {
		return false
	}
	return seal.Equal(got, c.mac.Sum([]byte(b)))
}

// ConstantTimeEqual compares two digests without leaking where they differ.
func ConstantTimeEqual(a, b []byte) bool { return seal.Equal(a, b) }
