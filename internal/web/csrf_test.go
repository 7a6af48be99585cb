package web

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/seal"
)

// TestCSRFBrowserBinding: one browser-binding value per request, whatever
// cookie the browser sent. Found by FuzzCSRF: with a malformed cookie, every
// read minted another value, so state bound to the first (a pending
// authorization request) no longer matched the cookie the browser kept.
func TestCSRFBrowserBinding(t *testing.T) {
	master, _ := seal.New(bytes.Repeat([]byte{5}, 32))
	c := NewCSRF(master, false)
	good := opaque.New()
	for _, tc := range []struct {
		name, cookie string
		keeps        bool // the browser's value is kept
	}{
		{"ok/well-formed-kept", "castellan_csrf=" + good, true},
		{"new/none", "", false},
		{"new/empty-value", "castellan_csrf=", false},
		{"new/malformed-value", "castellan_csrf=short", false},
		{"new/malformed-first-of-two", "castellan_csrf=bad; castellan_csrf=" + opaque.New(), false},
		{"ok/other-cookies-survive", "a=1; castellan_csrf=" + good + "; b=2", true},
		{"new/other-cookies-survive-replacement", "a=1; castellan_csrf=bad; b=2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/login", nil)
			if tc.cookie != "" {
				r.Header.Set("Cookie", tc.cookie)
			}
			w := httptest.NewRecorder()
			first := c.Browser(w, r)
			token := c.Token(w, r)
			if c.BrowserOf(r) != first || c.Browser(w, r) != first || !c.Valid(r, token) {
				t.Fatalf("the binding changed within one request: %q, then %q", first, c.BrowserOf(r))
			}
			if ck, err := r.Cookie("a"); strings.Contains(tc.cookie, "a=1") && (err != nil || ck.Value != "1") {
				t.Fatal("another cookie was lost")
			}
			set := w.Result().Cookies()
			if tc.keeps {
				if first != good || len(set) != 0 {
					t.Fatalf("got %q and %d new cookies, want the browser's value kept", first, len(set))
				}
				return
			}
			if len(set) != 1 || set[0].Value != first {
				t.Fatalf("Set-Cookie %v, want exactly one cookie with %q", set, first)
			}
		})
	}
}
