package bff_test

import (
	"bufio"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// rawGet sends target exactly as written (no client-side parsing or
// cleaning) as a signed-in browser's API call, and returns the answer.
func (b *browser) rawGet(t *testing.T, target string) *http.Response {
	t.Helper()
	u, _ := url.Parse(b.s.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET " + target + " HTTP/1.1\r\nHost: " + u.Host + "\r\nX-CSRF: 1\r\nCookie: castellan-bff=" + b.sessionCookie() + "\r\nConnection: close\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestProxyRefusesPathTricks: a path that an upstream could read as
// climbing out of its route (dot segments hidden behind ";", percent-encoding
// once, twice or more, overlong UTF-8, look-alike characters, trailing dots,
// backslashes, control characters) is refused with 400 before any route
// matches, and never reaches an upstream with the session's token. Ordinary
// paths, encoded slashes included, still pass.
func TestProxyRefusesPathTricks(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.browser("alice")
	b.login(t, "/")

	refused := []string{
		// Path parameters: Tomcat, Jetty and Spring read "..;" as "..".
		"/echo/..;/admin",
		"/api/..;/admin",
		"/echo/.;/admin",
		"/echo/a/..;/..;/admin",
		"/echo/%2e%2e;/admin",
		"/echo/..%3b/admin",
		"/echo/..%3B/admin",
		"/echo/%2e%2e%3b/admin",
		"/echo/admin;jsessionid=1",
		"/echo/;/admin",
		// Dot segments, plain and encoded, in any case.
		"/echo/../admin",
		"/echo/./admin",
		"/echo/a/..",
		"/echo/%2e%2e/admin",
		"/echo/%2E%2E/admin",
		"/echo/%2e%2E/admin",
		"/echo/.%2e/admin",
		"/echo/%2e./admin",
		"/echo/%2e/admin",
		"/echo/a/%2E%2E/%2E%2E/admin",
		// Encoded slashes that carry dot segments.
		"/echo/..%2Fadmin",
		"/echo/a%2f..%2f..%2fadmin",
		"/echo/a%2F%2e%2e%2Fadmin",
		// Twice (and more) encoded: an upstream that decodes again.
		"/echo/%252e%252e/admin",
		"/echo/%252E%252E/admin",
		"/echo/%252e%252e%252fadmin",
		"/echo/..%253b/admin",
		"/echo/%25252e%25252e/admin",
		"/echo/%2525252e%2525252e/admin",
		// Overlong UTF-8 for "." (old IIS, some Java decoders) and
		// characters that Unicode normalization turns into "." or "/".
		"/echo/%c0%ae%c0%ae/admin",
		"/echo/%C0%AE%C0%AE/admin",
		"/echo/%e0%80%ae%e0%80%ae/admin",
		"/echo/%c0%af..%c0%afadmin",
		"/echo/%ef%bc%8e%ef%bc%8e/admin",
		"/echo/%ef%bc%8f..%ef%bc%8fadmin",
		"/echo/%e2%80%a4%e2%80%a4/admin",
		"/echo/%ff",
		// Trailing dots and spaces (Windows drops them: "..." and ".. " are "..").
		"/echo/.../admin",
		"/echo/..../admin",
		"/echo/..%20/admin",
		"/echo/.%20./admin",
		"/echo/a/..%2e",
		// Backslashes, which some servers read as "/".
		"/echo/%5c..%5cadmin",
		"/echo/%5C..%5Cadmin",
		"/echo/a%5cb",
		"/echo/%255c..%255cadmin",
		// Control characters: a NUL ends the path in C.
		"/echo/..%00/admin",
		"/echo/a%00b",
		"/echo/a%0d%0ab",
		"/echo/%7f",
	}
	for _, target := range refused {
		t.Run("fail"+target, func(t *testing.T) {
			before := s.upstreamCount()
			resp := b.rawGet(t, target)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("GET %s: got %d, want 400", target, resp.StatusCode)
			}
			if s.upstreamCount() != before {
				t.Errorf("GET %s reached the upstream as %q", target, s.lastUpstream(t).URL.EscapedPath())
			}
		})
	}

	passed := []struct{ target, upstream string }{
		{"/echo/things", "/echo/things"},
		{"/echo/v1.2/file.txt", "/echo/v1.2/file.txt"},
		{"/echo/.well-known/x", "/echo/.well-known/x"},
		{"/echo/a..b/c.", "/echo/a..b/c."},
		{"/echo/a%2Fb", "/echo/a%2Fb"},
		{"/echo/100%25", "/echo/100%25"},
		{"/echo/caf%C3%A9", "/echo/caf%C3%A9"},
		{"/echo/a%20b", "/echo/a%20b"},
		{"/echo/x?path=../..;", "/echo/x"},
	}
	for _, tc := range passed {
		t.Run("ok"+tc.target, func(t *testing.T) {
			before := s.upstreamCount()
			resp := b.rawGet(t, tc.target)
			if resp.StatusCode != http.StatusOK || s.upstreamCount() != before+1 {
				t.Fatalf("GET %s: got %d, want 200 from the upstream", tc.target, resp.StatusCode)
			}
			if got := s.lastUpstream(t).URL.EscapedPath(); !strings.EqualFold(got, tc.upstream) {
				t.Errorf("GET %s: upstream got %q, want %q", tc.target, got, tc.upstream)
			}
		})
	}
}
