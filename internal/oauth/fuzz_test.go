package oauth_test

import (
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/oauth"
)

// FuzzMatchRedirectURI: an accepted redirect_uri is exactly a registered one,
// or differs from a registered http loopback IP-literal URI in its port and
// nothing else (RFC 8252 §7.3). Anything else accepted is an open redirect.
func FuzzMatchRedirectURI(f *testing.F) {
	for _, s := range [][2]string{
		{"https://web.example/callback", "https://web.example/callback"},
		{"http://127.0.0.1:51234/callback", "http://127.0.0.1/callback"},
		{"http://[::1]:8080/cb", "http://[::1]/cb"},
		{"http://127.0.0.1:9/q?x=1", "http://127.0.0.1/q?x=1"},
		{"https://web.example/CALLBACK", "https://web.example/callback"},
		{"https://web.example/x/../callback", "https://web.example/callback"},
		{"https://web.example/%2e%2e/callback", "https://web.example/callback"},
		{"https://web.example/callback%252f", "https://web.example/callback"},
		{"https://web.example:443/callback", "https://web.example/callback"},
		{"https://web.example/callback?x=1", "https://web.example/callback"},
		{"https://web.example/callback#f", "https://web.example/callback"},
		{"https://web.example@evil.example/callback", "https://web.example/callback"},
		{"http://localhost:80@evil.example/callback", "http://localhost/callback"},
		{"http://evil@127.0.0.1:5/callback", "http://127.0.0.1/callback"},
		{"http://127.0.0.1:5@evil.example/callback", "http://127.0.0.1/callback"},
		{"http://127.0.0.1.evil.example:5/callback", "http://127.0.0.1/callback"},
		{`http://127.0.0.1:5\@evil.example/callback`, "http://127.0.0.1/callback"},
		{"http://web.example/callback", "https://web.example/callback"},
		{"https://127.0.0.1:5/callback", "http://127.0.0.1/callback"},
		{"http://localhost:5/callback", "http://localhost/callback"},
		{"http://127.0.0.2:5/callback", "http://127.0.0.1/callback"},
		{"http://127.0.0.1:abc/callback", "http://127.0.0.1/callback"},
		{"http://127.0.0.1:5/callback?", "http://127.0.0.1/callback"},
		{"http://[::ffff:127.0.0.1]:5/callback", "http://127.0.0.1/callback"},
		{"http://127.0.0.1:5/q?x=2", "http://127.0.0.1/q?x=1"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, requested, registered string) {
		list := []string{registered, "https://fixed.example/cb"}
		if !oauth.MatchRedirectURI(requested, list) {
			return
		}
		if requested == registered || requested == list[1] {
			return
		}
		// Only the loopback port exception is left.
		reqAuth, reqRest, ok1 := splitHTTP(requested)
		regAuth, regRest, ok2 := splitHTTP(registered)
		if !ok1 || !ok2 {
			t.Fatalf("accepted %q for %q: not both http", requested, registered)
		}
		if reqRest != regRest {
			t.Fatalf("accepted %q for %q: path or query differs", requested, registered)
		}
		reqHost, regHost := hostOf(reqAuth), hostOf(regAuth)
		if reqHost != regHost || strings.ContainsAny(reqAuth, "@\\#?/") {
			t.Fatalf("accepted %q for %q: other host", requested, registered)
		}
		ip := net.ParseIP(strings.Trim(reqHost, "[]"))
		if ip == nil || !ip.IsLoopback() {
			t.Fatalf("accepted %q for %q: port exception for a host that is not a loopback IP", requested, registered)
		}
		if u, err := url.Parse(requested); err != nil || u.Fragment != "" || u.User != nil {
			t.Fatalf("accepted %q for %q: %v", requested, registered, err)
		}
	})
}

// splitHTTP splits "http://authority/rest" into authority and rest.
func splitHTTP(u string) (authority, rest string, ok bool) {
	s, ok := strings.CutPrefix(u, "http://")
	if !ok {
		return "", "", false
	}
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		return s[:i], s[i:], true
	}
	return s, "", true
}

// hostOf drops an all-digit ":port" from an authority.
func hostOf(authority string) string {
	i := strings.LastIndex(authority, ":")
	if i < 0 || strings.HasSuffix(authority, "]") {
		return authority
	}
	for _, c := range authority[i+1:] {
		if c < '0' || c > '9' {
			return authority
		}
	}
	return authority[:i]
}

// FuzzParseScope: a scope parses exactly when every character is a space or
// NQCHAR (RFC 6749 §3.3); the tokens are distinct, non-empty, in the input,
// and JoinScope → ParseScope gives them back.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"", "   ", "openid", "email openid", "openid openid profile", " openid  profile ",
		"api:read https://x.example/a <b>", "OpenID openid", `a"b`, `a\b`, "a\tb", "a\nb", "é", "a\x7fb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := oauth.ParseScope(s)
		valid := true
		for i := 0; i < len(s); i++ {
			if c := s[i]; c != ' ' && (c < 0x21 || c == '"' || c == '\\' || c > 0x7e) {
				valid = false
			}
		}
		if ok != valid {
			t.Fatalf("ParseScope(%q) ok=%v, want %v", s, ok, valid)
		}
		if !ok {
			if got != nil {
				t.Fatalf("ParseScope(%q) refused but returned %q", s, got)
			}
			return
		}
		seen := map[string]bool{}
		for _, tok := range got {
			if tok == "" || strings.Contains(tok, " ") || seen[tok] || !strings.Contains(s, tok) {
				t.Fatalf("ParseScope(%q): bad token %q in %q", s, tok, got)
			}
			seen[tok] = true
		}
		if len(seen) != len(strings.Fields(strings.Join(dedupe(strings.Split(s, " ")), " "))) {
			t.Fatalf("ParseScope(%q) = %q: lost or invented tokens", s, got)
		}
		again, ok := oauth.ParseScope(oauth.JoinScope(got))
		if !ok || strings.Join(again, " ") != strings.Join(got, " ") {
			t.Fatalf("round trip of %q: %q", got, again)
		}
		if !oauth.Subset(got, got) || (len(got) > 0 && oauth.Subset(got, got[1:])) {
			t.Fatalf("Subset wrong for %q", got)
		}
	})
}

func dedupe(in []string) []string {
	var out []string
	for _, s := range in {
		if s != "" && !oauth.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// FuzzPKCE: a verifier verifies only against its own S256 challenge, and
// only when it is a well-formed verifier (RFC 7636 §4.1, §4.6).
func FuzzPKCE(f *testing.F) {
	v := "dBjftJeZ4CVP-mJ92K9zQa3xX1oAHbvoEtQ0nLp29Oo"
	f.Add(v, oauth.S256Challenge(v))
	f.Add(v, v)
	f.Add("short", oauth.S256Challenge("short"))
	f.Add(strings.Repeat("a", 129), oauth.S256Challenge(strings.Repeat("a", 129)))
	f.Add(v+"*", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
	f.Fuzz(func(t *testing.T, verifier, challenge string) {
		c := oauth.S256Challenge(verifier)
		if !oauth.ValidChallenge(c) {
			t.Fatalf("S256Challenge(%q) = %q is not a valid challenge", verifier, c)
		}
		if oauth.ValidChallenge(challenge) && len(challenge) != 43 {
			t.Fatalf("ValidChallenge(%q) with length %d", challenge, len(challenge))
		}
		if oauth.VerifyPKCE(verifier, challenge) && (challenge != c || !oauth.ValidVerifier(verifier)) {
			t.Fatalf("VerifyPKCE(%q, %q) accepted", verifier, challenge)
		}
		if oauth.ValidVerifier(verifier) && !oauth.VerifyPKCE(verifier, c) {
			t.Fatalf("VerifyPKCE(%q) refuses its own challenge", verifier)
		}
	})
}

// FuzzSingle: a parameter set is accepted only with no repeated name, and
// then every value is kept exactly (RFC 6749 §3.1).
func FuzzSingle(f *testing.F) {
	for _, s := range []string{"a=1&b=2", "a=1&a=1", "grant_type=x&grant_type=y", "a", "a=&b", "%zz=1", "a=1;b=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, _ := url.ParseQuery(raw)
		got, dup := oauth.Single(v)
		if dup != "" {
			if len(v[dup]) < 2 || got != nil {
				t.Fatalf("Single(%q): %q named repeated", raw, dup)
			}
			return
		}
		for k, vals := range v {
			if k == "" {
				if _, kept := got[""]; kept {
					t.Fatalf("Single(%q) kept an empty parameter name", raw)
				}
				continue
			}
			if len(vals) > 1 {
				t.Fatalf("Single(%q): %q repeated but accepted", raw, k)
			}
			if len(vals) == 1 && got[k] != vals[0] {
				t.Fatalf("Single(%q)[%q] = %q, want %q", raw, k, got[k], vals[0])
			}
		}
	})
}
