package oauth_test

import (
	"testing"

	"github.com/castellan-auth/castellan/internal/oauth"
)

// TestMatchRedirectURI pins exact matching (OAuth 2.1 §2.3.1, RFC 9700
// §4.1.3) and its one exception, the port of an http loopback IP literal
// (RFC 8252 §7.3), against the bypasses of ADVERSARIAL 1–6.
func TestMatchRedirectURI(t *testing.T) {
	web := []string{"https://web.example/callback", "https://web.example/other"}
	loop := []string{"http://127.0.0.1/callback", "http://[::1]/cb", "http://localhost/callback"}
	withQuery := []string{"https://q.example/cb?tenant=a", "http://127.0.0.1/q?x=1"}
	for _, tc := range []struct {
		name       string
		requested  string
		registered []string
		ok         bool
	}{
		{"ok/exact", "https://web.example/callback", web, true},
		{"ok/exact-second", "https://web.example/other", web, true},
		{"ok/exact-with-query", "https://q.example/cb?tenant=a", withQuery, true},
		{"ok/loopback-ipv4-any-port", "http://127.0.0.1:51234/callback", loop, true},
		{"ok/loopback-ipv4-no-port", "http://127.0.0.1/callback", loop, true},
		{"ok/loopback-ipv6-any-port", "http://[::1]:8080/cb", loop, true},
		{"ok/loopback-with-query-any-port", "http://127.0.0.1:9/q?x=1", withQuery, true},
		{"ok/localhost-exact", "http://localhost/callback", loop, true},

		{"adv01/unregistered", "https://evil.example/callback", web, false},
		{"adv01/empty", "", web, false},
		{"adv02/path-case", "https://web.example/Callback", web, false},
		{"adv02/host-case", "https://Web.Example/callback", web, false},
		{"adv02/scheme-case", "HTTPS://web.example/callback", web, false},
		{"adv02/loopback-scheme-case", "HTTP://127.0.0.1:5/callback", loop, false},
		{"adv03/trailing-slash", "https://web.example/callback/", web, false},
		{"adv03/dot-dot", "https://web.example/x/../callback", web, false},
		{"adv03/encoded-dot-dot", "https://web.example/%2e%2e/callback", web, false},
		{"adv03/double-encoded-slash", "https://web.example/callback%252f", web, false},
		{"adv03/default-port", "https://web.example:443/callback", web, false},
		{"adv03/loopback-trailing-slash", "http://127.0.0.1:5/callback/", loop, false},
		{"adv03/loopback-dot-dot", "http://127.0.0.1:5/x/../callback", loop, false},
		{"adv03/loopback-encoded", "http://127.0.0.1:5/%63allback", loop, false},
		{"adv03/loopback-encoded-slash", "http://127.0.0.1:5/callback%2f", loop, false},
		{"adv03/loopback-empty-path", "http://127.0.0.1:5", loop, false},
		{"adv04/query-added", "https://web.example/callback?x=1", web, false},
		{"adv04/fragment-added", "https://web.example/callback#f", web, false},
		{"adv04/loopback-query-added", "http://127.0.0.1:5/callback?x=1", loop, false},
		{"adv04/loopback-fragment-added", "http://127.0.0.1:5/callback#f", loop, false},
		{"adv04/loopback-empty-fragment", "http://127.0.0.1:5/callback#", loop, false},
		{"adv04/loopback-empty-query", "http://127.0.0.1:5/callback?", loop, false},
		{"adv04/registered-query-changed", "https://q.example/cb?tenant=b", withQuery, false},
		{"adv04/loopback-registered-query-changed", "http://127.0.0.1:5/q?x=2", withQuery, false},
		{"adv04/loopback-registered-query-dropped", "http://127.0.0.1:5/q", withQuery, false},
		{"adv05/userinfo-at-evil", "https://web.example@evil.example/callback", web, false},
		{"adv05/localhost-userinfo-at-evil", "http://localhost:80@evil.example/callback", loop, false},
		{"adv05/loopback-userinfo", "http://evil@127.0.0.1:5/callback", loop, false},
		{"adv05/loopback-userinfo-at-evil", "http://127.0.0.1:5@evil.example/callback", loop, false},
		{"adv05/loopback-dns-suffix", "http://127.0.0.1.evil.example:5/callback", loop, false},
		{"adv05/backslash", `http://127.0.0.1:5\@evil.example/callback`, loop, false},
		{"adv06/http-variant-of-https", "http://web.example/callback", web, false},
		{"adv06/https-variant-of-loopback", "https://127.0.0.1:5/callback", loop, false},
		// RFC 8252 §8.3: no port exception for "localhost" (it may not resolve to loopback).
		{"loopback/localhost-other-port", "http://localhost:5/callback", loop, false},
		{"loopback/other-loopback-ip", "http://127.0.0.2:5/callback", loop, false},
		{"loopback/ipv4-for-ipv6", "http://127.0.0.1:5/cb", loop, false},
		{"loopback/bad-port", "http://127.0.0.1:abc/callback", loop, false},
		{"loopback/not-registered-as-loopback", "http://127.0.0.1:5/callback", web, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := oauth.MatchRedirectURI(tc.requested, tc.registered); got != tc.ok {
				t.Errorf("MatchRedirectURI(%q): got %v, want %v", tc.requested, got, tc.ok)
			}
		})
	}
}
