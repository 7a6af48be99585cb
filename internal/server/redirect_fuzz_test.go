package server_test

import (
	"html"
	"net"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/server/servertest"
)

var linkRE = regexp.MustCompile(`(?:action|href|src)="([^"]*)"`)

// FuzzOpenRedirect sends arbitrary query strings to every endpoint that
// takes a redirect-bearing parameter — /authorize (redirect_uri,
// response_mode), /end_session (post_logout_redirect_uri), /login and
// /authorize/resume (authz) — from a signed-in browser. Invariant (RFC 9700
// §4.11, ADVERSARIAL 1–7, 57, 67): every place the answer sends the browser
// (Location, a form_post action, a link, a frame) is Castellan itself or a
// URI registered for that purpose, with only a query or fragment added (and,
// for a loopback IP, another port: RFC 8252 §7.3).
func FuzzOpenRedirect(f *testing.F) {
	env := servertest.New(f, servertest.Options{Config: servertest.WithClients(servertest.Config())})
	alice := env.Agent("alice")
	tk := env.CodeFlow(f, alice, servertest.Authz{})
	authz, _ := url.Parse(env.AuthorizeURL(servertest.Authz{}))
	q := authz.RawQuery
	for _, s := range []struct {
		path uint8
		raw  string
	}{
		{0, q},
		{0, q + "&response_mode=form_post"},
		{0, q + "&response_mode=web_message"},
		{0, q + "&prompt=none"},
		{0, strings.Replace(q, url.QueryEscape(servertest.SPARedirect), url.QueryEscape("https://evil.example/cb"), 1)},
		{0, strings.Replace(q, url.QueryEscape(servertest.SPARedirect), url.QueryEscape("http://127.0.0.1:9100@evil.example/callback"), 1)},
		{0, strings.Replace(q, url.QueryEscape(servertest.SPARedirect), url.QueryEscape("http://127.0.0.1:5555/callback"), 1)},
		{0, "client_id=web&response_type=code&scope=openid&redirect_uri=" + url.QueryEscape(servertest.WebRedirect+"/../x")},
		{1, "id_token_hint=" + tk.IDToken + "&post_logout_redirect_uri=" + url.QueryEscape("http://127.0.0.1:9100/") + "&state=s"},
		{1, "client_id=spa&post_logout_redirect_uri=" + url.QueryEscape("https://evil.example/")},
		{1, "post_logout_redirect_uri=" + url.QueryEscape("http://127.0.0.1:9100/?x=1")},
		{2, "authz=" + url.QueryEscape("https://evil.example/")},
		{2, "next=" + url.QueryEscape("//evil.example")},
		{3, "authz=" + url.QueryEscape("//evil.example/x")},
	} {
		f.Add(s.path, s.raw)
	}
	paths := []string{"/authorize", "/end_session", "/login", "/authorize/resume"}
	redirects := []string{servertest.SPARedirect, servertest.WebRedirect, "https://web.example/other"}
	postLogout := []string{"http://127.0.0.1:9100/"}
	f.Fuzz(func(t *testing.T, path uint8, raw string) {
		p := paths[int(path)%len(paths)]
		if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '#' }) {
			return // not sent by a browser as is
		}
		if _, err := url.Parse(env.URL + p + "?" + raw); err != nil {
			return
		}
		s, err := alice.Get(env.URL + p + "?" + raw)
		if err != nil {
			return
		}
		alice.Steps = nil
		allowed := redirects
		if p == "/end_session" {
			allowed = postLogout
		}
		if s.Status >= 500 {
			t.Fatalf("GET %s?%s: %d", p, raw, s.Status)
		}
		if s.Location != "" && !internal(env.URL, s.Location) && !registered(s.Location, allowed) {
			t.Fatalf("GET %s?%s: redirect to %q", p, raw, s.Location)
		}
		for _, m := range linkRE.FindAllStringSubmatch(s.Body, -1) {
			u := html.UnescapeString(m[1])
			if !internal(env.URL, u) && !registered(u, allowed) && !registered(u, []string{"https://rp.example/frontchannel"}) {
				t.Fatalf("GET %s?%s: page sends the browser to %q", p, raw, u)
			}
		}
	})
}

// internal reports whether u stays on Castellan (the issuer, or a path).
func internal(issuer, u string) bool {
	if strings.HasPrefix(u, issuer+"/") || u == issuer {
		return true
	}
	return strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//") && !strings.HasPrefix(u, `/\`)
}

// registered reports whether u is one of the registered URIs with at most a
// query or fragment added, allowing another port for a loopback IP.
func registered(u string, list []string) bool {
	for _, r := range list {
		if withSuffix(u, r) || withSuffix(stripLoopbackPort(u), stripLoopbackPort(r)) {
			return true
		}
	}
	return false
}

func withSuffix(u, r string) bool {
	if !strings.HasPrefix(u, r) {
		return false
	}
	rest := u[len(r):]
	return rest == "" || rest[0] == '?' || rest[0] == '#' || (rest[0] == '&' && strings.Contains(r, "?"))
}

func stripLoopbackPort(u string) string {
	s, ok := strings.CutPrefix(u, "http://")
	if !ok {
		return u
	}
	i := strings.IndexAny(s, "/?#")
	if i < 0 {
		i = len(s)
	}
	host, _, err := net.SplitHostPort(s[:i])
	if err != nil || net.ParseIP(strings.Trim(host, "[]")) == nil || !net.ParseIP(strings.Trim(host, "[]")).IsLoopback() {
		return u
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return "http://" + host + s[i:]
}
