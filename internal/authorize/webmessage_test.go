package authorize_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// spaOrigin is the spa client's one allowed origin (and its redirect URI's).
const spaOrigin = "http://127.0.0.1:9100"

var webMessageCall = regexp.MustCompile(`postMessage\(\{type: "authorization_response", response: (\{[^}]*\})\}, "([^"]*)"\)`)

// webMessage reads the response and target origin out of a web_message page.
func webMessage(t *testing.T, s servertest.Step) (map[string]string, string) {
	t.Helper()
	if s.Status != http.StatusOK || !strings.HasPrefix(s.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("want a web_message page, got %d %q", s.Status, s.Location)
	}
	m := webMessageCall.FindStringSubmatch(s.Body)
	if m == nil {
		t.Fatalf("no postMessage call in the page:\n%s", s.Body)
	}
	var resp map[string]string
	if err := json.Unmarshal([]byte(m[1]), &resp); err != nil {
		t.Fatalf("response %s: %v", m[1], err)
	}
	var target string
	json.Unmarshal([]byte(`"`+m[2]+`"`), &target)
	return resp, target
}

// frameAncestors returns the frame-ancestors directive of a response's CSP.
func frameAncestors(s servertest.Step) string {
	for _, d := range strings.Split(s.Header.Get("Content-Security-Policy"), ";") {
		if d = strings.TrimSpace(d); strings.HasPrefix(d, "frame-ancestors") {
			return strings.TrimSpace(strings.TrimPrefix(d, "frame-ancestors"))
		}
	}
	return ""
}

// response_mode=web_message (the iframe-friendly answer of silent renewal):
// a page that posts the response to the registered origin only, framable by
// the client's allowed_origins only when the request is silent.
func TestWebMessage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	alice := f.signedIn(t, "alice")

	t.Run("silent answer with a code", func(t *testing.T) {
		s := get(t, alice, f.authorize(with(request("spa"), "prompt", "none", "response_mode", "web_message")))
		resp, target := webMessage(t, s)
		if target != spaOrigin {
			t.Errorf("posted to %q, want %q", target, spaOrigin)
		}
		if resp["state"] != "st-spa" || resp["iss"] != f.env.URL || resp["code"] == "" {
			t.Fatalf("response %v: want code, state st-spa and iss", resp)
		}
		if got := frameAncestors(s); got != spaOrigin {
			t.Errorf("frame-ancestors %q, want %q", got, spaOrigin)
		}
		if xfo := s.Header.Get("X-Frame-Options"); xfo != "" {
			t.Errorf("X-Frame-Options %q on a framable answer", xfo)
		}
		if cc := s.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", cc)
		}
		if tok := f.exchange(t, "spa", resp["code"], true); tok.AccessToken == "" {
			t.Error("the code did not redeem")
		}
	})

	t.Run("silent error", func(t *testing.T) {
		s := get(t, f.agent("alice"), f.authorize(with(request("spa"), "prompt", "none", "response_mode", "web_message")))
		resp, target := webMessage(t, s)
		if target != spaOrigin || resp["error"] != "login_required" || resp["state"] != "st-spa" || resp["iss"] != f.env.URL {
			t.Errorf("got %v to %q, want login_required with state and iss to %q", resp, target, spaOrigin)
		}
		if got := frameAncestors(s); got != spaOrigin {
			t.Errorf("frame-ancestors %q, want %q", got, spaOrigin)
		}
	})

	t.Run("interactive answer is not framable", func(t *testing.T) {
		s := get(t, alice, f.authorize(with(request("spa"), "response_mode", "web_message")))
		if resp, _ := webMessage(t, s); resp["code"] == "" {
			t.Errorf("response %v, want a code", resp)
		}
		expectNotFramable(t, s)
	})

	t.Run("client without allowed_origins", func(t *testing.T) {
		f.consent(t, "alice", "web", "openid profile")
		s := get(t, alice, f.authorize(with(request("web"), "prompt", "none", "response_mode", "web_message")))
		p := servertest.Params(s.Location)
		if s.Status != http.StatusSeeOther || !strings.HasPrefix(s.Location, servertest.WebRedirect+"?") || p.Get("error") != "invalid_request" {
			t.Fatalf("got %d %q, want invalid_request at the redirect URI", s.Status, s.Location)
		}
		if p.Get("state") != "st-web" || p.Get("code") != "" {
			t.Errorf("params %v: want state and no code", p)
		}
		if got := frameAncestors(s); got != "'none'" {
			t.Errorf("frame-ancestors %q for a client without allowed_origins, want 'none'", got)
		}
	})

	t.Run("silent redirect is framable by allowed origins only", func(t *testing.T) {
		s := get(t, alice, f.authorize(with(request("spa"), "prompt", "none")))
		if s.Status != http.StatusSeeOther || servertest.Params(s.Location).Get("code") == "" {
			t.Fatalf("got %d %q, want a code", s.Status, s.Location)
		}
		if got := frameAncestors(s); got != spaOrigin {
			t.Errorf("frame-ancestors %q, want %q", got, spaOrigin)
		}
		s = get(t, alice, f.authorize(request("spa")))
		expectNotFramable(t, s)
	})

	t.Run("silent form_post is framable by allowed origins only", func(t *testing.T) {
		s := get(t, alice, f.authorize(with(request("spa"), "prompt", "none", "response_mode", "form_post")))
		if got := frameAncestors(s); s.Status != http.StatusOK || got != spaOrigin {
			t.Errorf("got %d with frame-ancestors %q, want the form_post page framable by %q", s.Status, got, spaOrigin)
		}
		s = get(t, alice, f.authorize(with(request("spa"), "prompt", "none login", "response_mode", "form_post")))
		expectNotFramable(t, s)
	})

	t.Run("sign-in page is never framable", func(t *testing.T) {
		s := get(t, f.agent("alice"), f.authorize(with(request("spa"), "response_mode", "web_message")))
		if s.Status == http.StatusSeeOther {
			s = get(t, f.agent("alice"), s.Location)
		}
		expectNotFramable(t, s)
	})
}
