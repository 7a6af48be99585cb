package authorize_test

import (
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// TestNativeApps covers the redirect URIs of native apps (RFC 8252): the port
// of a loopback IP literal may vary (§7.3), "localhost" gets no such
// exception (§8.3), and a private-use URI scheme (§7.1) works through the
// sign-in and consent pages, whose form-action must allow it.
func TestNativeApps(t *testing.T) {
	t.Parallel()
	f, a := casesFixture(t)
	for _, c := range []authzCase{
		{name: "loopback/ipv4-any-port", client: "native", set: map[string]string{"redirect_uri": "http://127.0.0.1:51234/callback"}, want: want{kind: query}},
		{name: "loopback/ipv4-registered-form", client: "native", want: want{kind: query}},
		{name: "loopback/error-to-the-requested-port", client: "native", set: map[string]string{"redirect_uri": "http://127.0.0.1:51234/callback", "code_challenge_method": "plain"}, want: want{kind: query, err: "invalid_request"}},
		{name: "loopback/localhost-port-may-not-vary", client: "native", set: map[string]string{"redirect_uri": "http://localhost:51234/callback"}, want: want{kind: page}},
		{name: "loopback/other-loopback-address", client: "native", set: map[string]string{"redirect_uri": "http://[::1]:51234/callback"}, want: want{kind: page}},
		{name: "loopback/path-must-match", client: "native", set: map[string]string{"redirect_uri": "http://127.0.0.1:51234/other"}, want: want{kind: page}},
		{name: "private-use-scheme/code", client: "native", set: map[string]string{"redirect_uri": nativeScheme}, want: want{kind: query}},
		{name: "private-use-scheme/other-scheme", client: "native", set: map[string]string{"redirect_uri": "com.evil.app:/oauth2redirect"}, want: want{kind: page}},
		// A browser cannot post a form to a private-use scheme.
		{name: "private-use-scheme/no-form_post", client: "native", set: map[string]string{"redirect_uri": nativeScheme, "response_mode": "form_post"}, want: want{kind: query, err: "invalid_request"}},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, f, a) })
	}

	t.Run("private-use-scheme/allowed-by-form-action", func(t *testing.T) {
		b := f.agent("alice")
		req := with(request("native"), "redirect_uri", nativeScheme)
		toLogin := get(t, b, f.authorize(req))
		page := get(t, b, toLogin.Location)
		expectFormAction(t, page, "com.example.app:")
		f.outcome(t, f.signInAt(t, b, toLogin, "alice"), req, want{kind: query})
	})

	t.Run("form-action/consent-and-form_post-pages-allow-the-redirect-origin", func(t *testing.T) {
		b := f.signedIn(t, "bob")
		expectFormAction(t, get(t, b, f.authorize(request("html"))), "https://html.example")
		req := with(request("spa"), "response_mode", "form_post")
		expectFormAction(t, get(t, b, f.authorize(req)), "http://127.0.0.1:9100")
	})
}

// expectFormAction checks a page's CSP lets its forms (and the redirects that
// follow them) go to source.
func expectFormAction(t *testing.T, s servertest.Step, source string) {
	t.Helper()
	csp := s.Header.Get("Content-Security-Policy")
	for _, d := range strings.Split(csp, ";") {
		f := strings.Fields(d)
		if len(f) > 0 && f[0] == "form-action" {
			for _, x := range f[1:] {
				if x == source {
					return
				}
			}
		}
	}
	t.Errorf("CSP %q does not allow form-action %s", csp, source)
}
