package web

import (
	"bytes"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/seal"
)

// FuzzCSRF feeds a raw Cookie header and a submitted form token to the CSRF
// check. Invariants: a token is valid only for a well-formed browser cookie
// and only if it decodes to that cookie's MAC (so it cannot be made without
// the server key, nor carried to another browser); the token the server
// hands out for a cookie is always valid with it.
func FuzzCSRF(f *testing.F) {
	master, _ := seal.New(bytes.Repeat([]byte{3}, 32))
	c := NewCSRF(master, true)
	cookie := opaque.New()
	good := c.tokenFor(cookie)
	for _, s := range [][2]string{
		{"__Host-castellan_csrf=" + cookie, good},
		{"__Host-castellan_csrf=" + cookie, good + "A"},
		{"__Host-castellan_csrf=" + cookie, good[:len(good)-1]},
		{"__Host-castellan_csrf=" + cookie, ""},
		{"__Host-castellan_csrf=" + cookie + "; __Host-castellan_csrf=" + opaque.New(), good},
		{"castellan_csrf=" + cookie, good},
		{"__Host-castellan_csrf=", good},
		{"__Host-castellan_csrf=\"" + cookie + "\"", good},
		{"", "AAAA"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, cookieHeader, submitted string) {
		r := httptest.NewRequest(http.MethodPost, "https://id.example/login", nil)
		r.Header.Set("Cookie", cookieHeader)
		browser := c.BrowserOf(r)
		if browser != "" && !opaque.Wellformed(browser) {
			t.Fatalf("BrowserOf(%q) = %q, not a value the server makes", cookieHeader, browser)
		}
		valid := c.Valid(r, submitted)
		if valid {
			got, err := base64.RawURLEncoding.DecodeString(submitted)
			want, _ := base64.RawURLEncoding.DecodeString(c.tokenFor(browser))
			if browser == "" || err != nil || !bytes.Equal(got, want) {
				t.Fatalf("Valid(%q, %q) without the browser's MAC", cookieHeader, submitted)
			}
		}
		if browser != "" && !c.Valid(r, c.tokenFor(browser)) {
			t.Fatalf("the token handed out for %q is refused", browser)
		}
		// Token always leaves the request with a usable browser binding.
		w := httptest.NewRecorder()
		tok := c.Token(w, r)
		if b := c.BrowserOf(r); !opaque.Wellformed(b) || tok != c.tokenFor(b) || (browser != "" && b != browser) {
			t.Fatalf("Token(%q): browser %q token %q", cookieHeader, b, tok)
		}
	})
}

// FuzzClientIP feeds forwarding headers to ClientIP. Invariants: with no
// trusted proxy, or from an untrusted peer, the headers change nothing (no
// spoofing of the address sign-in throttling counts against); the answer is
// always an address that was in the request.
func FuzzClientIP(f *testing.F) {
	for _, s := range [][3]string{
		{"10.1.2.3:5555", "198.51.100.7", ""},
		{"10.1.2.3:5555", "6.6.6.6, 198.51.100.7, 10.9.9.9", ""},
		{"10.1.2.3:5555", "", `for="[2001:db8::1]:4711";proto=https, for=10.2.2.2`},
		{"203.0.113.9:5555", "1.2.3.4", ""},
		{"[::ffff:10.0.0.1]:1", "not-an-ip", ""},
		{"10.1.2.3:5555", "", `for=unknown, for="_hidden"`},
		{"garbage", "1.2.3.4", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	trusted := NewClientIP([]string{"10.0.0.0/8", "192.168.1.1"})
	none := NewClientIP(nil)
	f.Fuzz(func(t *testing.T, remote, xff, fwd string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		if fwd != "" {
			r.Header.Set("Forwarded", fwd)
		}
		host, _, err := net.SplitHostPort(remote)
		if err != nil {
			host = remote
		}
		peer, perr := netip.ParseAddr(host)
		got := none.Of(r)
		if perr != nil && got != host {
			t.Fatalf("unparseable peer %q: got %q", remote, got)
		}
		if perr == nil && got != peer.Unmap().String() {
			t.Fatalf("no trusted proxies: peer %q, got %q from headers %q %q", remote, got, xff, fwd)
		}
		got = trusted.Of(r)
		if perr == nil && !trusted.isTrusted(peer) && got != peer.Unmap().String() {
			t.Fatalf("untrusted peer %q: got %q from headers %q %q", remote, got, xff, fwd)
		}
		if perr == nil {
			if _, err := netip.ParseAddr(got); err != nil {
				t.Fatalf("Of(%q, %q, %q) = %q, not an address", remote, xff, fwd, got)
			}
		}
	})
}
