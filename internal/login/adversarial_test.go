package login_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// signInCase is one attack on the sign-in forms and the exact answer.
type signInCase struct {
	name string
	// send runs the attack in browser c and returns the answer to judge.
	send func(t *testing.T, env *servertest.Env, c *http.Client) page
	// status and location are exact; location "" means no redirect.
	status   int
	location string
	// aliceSessions is how many sessions alice has afterwards.
	aliceSessions int
	// then checks anything else the case implies.
	then func(t *testing.T, env *servertest.Env, c *http.Client, p page)
}

// TestAdversarialSignIn covers ADVERSARIAL 62–68 (sign-in and consent forms)
// and the RFC 9700 attacks on them: login CSRF (§4.4.1.8), session fixation,
// open redirect through a return path (§4.11), 307 after a credential POST
// (§4.12). Consent (65) is in internal/authorize (TestSessionRule consent/*),
// the lookalike failures and throttling of 66 in TestFailedSignInsLookAlike
// and TestThrottling, the cookie under https of 64 in internal/server
// TestHTTPSIssuer.
func TestAdversarialSignIn(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	creds := func(extra ...string) url.Values {
		v := url.Values{"username": {"alice"}, "password": {servertest.Password}}
		for i := 0; i+1 < len(extra); i += 2 {
			v.Set(extra[i], extra[i+1])
		}
		return v
	}
	withToken := func(c *http.Client, v url.Values) url.Values {
		v.Set("csrf_token", csrfOf(t, get(t, c, env.URL+"/login")))
		return v
	}
	crossSite := func(t *testing.T, c *http.Client, u string, form url.Values) page {
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		return do(t, c, req)
	}
	cases := []signInCase{
		{name: "adv62/post-without-csrf-token", send: func(t *testing.T, env *servertest.Env, c *http.Client) page {
			get(t, c, env.URL+"/login")
			return post(t, c, env.URL+"/login", creds())
		}, status: 403},
		{name: "adv62/post-with-another-browsers-token", send: func(t *testing.T, env *servertest.Env, c *http.Client) page {
			get(t, c, env.URL+"/login")
			return post(t, c, env.URL+"/login", withToken(env.Browser(), creds()))
		}, status: 403},
		{name: "adv62/login-csrf-attackers-account-auto-submitted", send: func(t *testing.T, env *servertest.Env, c *http.Client) page {
			// The attacker's page posts the attacker's own credentials and a
			// token from the attacker's browser into the victim's browser.
			form := withToken(env.Browser(), url.Values{"username": {"bob"}, "password": {servertest.Password}})
			return crossSite(t, c, env.URL+"/login", form)
		}, status: 403, then: func(t *testing.T, env *servertest.Env, c *http.Client, p page) {
			if n := len(sessionsOf(t, env, "bob")); n != 0 {
				t.Errorf("bob has %d sessions: the victim was signed in to the attacker's account", n)
			}
		}},
		{name: "adv62/cancel-without-csrf-token", send: func(t *testing.T, env *servertest.Env, c *http.Client) page {
			return post(t, c, env.URL+"/login/cancel", url.Values{"authz": {opaque.New()}})
		}, status: 403},
		{name: "adv63/planted-cookie-value-is-replaced", send: func(t *testing.T, env *servertest.Env, c *http.Client) page {
			u, _ := url.Parse(env.URL)
			c.Jar.SetCookies(u, []*http.Cookie{{Name: "castellan_session", Value: "planted-by-attacker-0123456789abcdefghijklm", Path: "/"}})
			return post(t, c, env.URL+"/login", withToken(c, creds()))
		}, status: 303, location: "/", aliceSessions: 1, then: func(t *testing.T, env *servertest.Env, c *http.Client, p page) {
			if ck := sessionCookie(c, env.URL); ck == nil || ck.Value == "planted-by-attacker-0123456789abcdefghijklm" || !opaque.Wellformed(ck.Value) {
				t.Errorf("session cookie after sign-in: %v", ck)
			}
		}},
		{name: "adv63/attackers-own-session-planted-ends-at-sign-in", send: func(t *testing.T, env *servertest.Env, c *http.Client) page {
			attacker := env.Browser()
			signIn(t, env, attacker, "bob", servertest.Password)
			planted := sessionCookie(attacker, env.URL)
			u, _ := url.Parse(env.URL)
			c.Jar.SetCookies(u, []*http.Cookie{{Name: "castellan_session", Value: planted.Value, Path: "/"}})
			return post(t, c, env.URL+"/login", withToken(c, creds()))
		}, status: 303, location: "/", aliceSessions: 1, then: func(t *testing.T, env *servertest.Env, c *http.Client, p page) {
			if n := len(sessionsOf(t, env, "bob")); n != 0 {
				t.Errorf("the planted session survived the victim's sign-in (%d sessions of bob)", n)
			}
			if home := get(t, c, env.URL+"/"); !strings.Contains(home.body, "<strong>alice</strong>") {
				t.Errorf("the browser is not alice's after sign-in")
			}
		}},
		{name: "adv64/cookie-flags-over-http", send: func(t *testing.T, env *servertest.Env, c *http.Client) page {
			return post(t, c, env.URL+"/login", withToken(c, creds()))
		}, status: 303, location: "/", aliceSessions: 1, then: func(t *testing.T, env *servertest.Env, c *http.Client, p page) {
			for _, ck := range p.Cookies() {
				if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" {
					t.Errorf("cookie %s: HttpOnly=%v SameSite=%v Path=%q Domain=%q", ck.Name, ck.HttpOnly, ck.SameSite, ck.Path, ck.Domain)
				}
			}
		}},
		{name: "adv67/external-url-as-authz", send: func(t *testing.T, env *servertest.Env, c *http.Client) page {
			return post(t, c, env.URL+"/login", withToken(c, creds("authz", "https://evil.example/x")))
		}, status: 303, location: "/authorize/resume?authz=https%3A%2F%2Fevil.example%2Fx", aliceSessions: 1,
			then: func(t *testing.T, env *servertest.Env, c *http.Client, p page) {
				if next := get(t, c, env.URL+p.Header.Get("Location")); next.StatusCode != 400 || next.Header.Get("Location") != "" {
					t.Errorf("resume of a foreign authz: %d Location %q, want the 400 page", next.StatusCode, next.Header.Get("Location"))
				}
			}},
		{name: "adv67/protocol-relative-authz", send: func(t *testing.T, env *servertest.Env, c *http.Client) page {
			return post(t, c, env.URL+"/login", withToken(c, creds("authz", "//evil.example")))
		}, status: 303, location: "/authorize/resume?authz=%2F%2Fevil.example", aliceSessions: 1},
		{name: "adv67/next-return_to-returnUrl-redirect_uri-ignored", send: func(t *testing.T, env *servertest.Env, c *http.Client) page {
			return post(t, c, env.URL+"/login", withToken(c, creds("next", "https://evil.example", "return_to", "//evil.example",
				"returnUrl", "https://evil.example", "redirect_uri", "https://evil.example/cb", "continue", "https://evil.example")))
		}, status: 303, location: "/", aliceSessions: 1},
		{name: "adv67/login-page-query-return-ignored", send: func(t *testing.T, env *servertest.Env, c *http.Client) page {
			tok := csrfOf(t, get(t, c, env.URL+"/login?next=https%3A%2F%2Fevil.example&return_to=https%3A%2F%2Fevil.example"))
			return post(t, c, env.URL+"/login?next=https%3A%2F%2Fevil.example", url.Values{"csrf_token": {tok}, "username": {"alice"}, "password": {servertest.Password}})
		}, status: 303, location: "/", aliceSessions: 1},
		{name: "adv67/cancel-with-external-authz", send: func(t *testing.T, env *servertest.Env, c *http.Client) page {
			tok := csrfOf(t, get(t, c, env.URL+"/login"))
			return post(t, c, env.URL+"/login/cancel", url.Values{"csrf_token": {tok}, "authz": {"https://evil.example/x"}})
		}, status: 400},
		{name: "adv68/credential-post-answered-303", send: func(t *testing.T, env *servertest.Env, c *http.Client) page {
			return post(t, c, env.URL+"/login", withToken(c, creds()))
		}, status: 303, location: "/", aliceSessions: 1, then: func(t *testing.T, env *servertest.Env, c *http.Client, p page) {
			// The answer sets the session cookie: never cached.
			if got := p.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
		}},
		{name: "adv68/failed-credential-post-not-redirected", send: func(t *testing.T, env *servertest.Env, c *http.Client) page {
			return post(t, c, env.URL+"/login", withToken(c, creds("password", "wrong")))
		}, status: 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Each case starts from no session of alice (or bob).
			for _, name := range []string{"alice", "bob"} {
				for _, s := range sessionsOf(t, env, name) {
					env.Server.Sessions.End(t.Context(), s.IDHash, "test")
				}
			}
			c := env.Browser()
			p := tc.send(t, env, c)
			if p.StatusCode != tc.status || p.Header.Get("Location") != tc.location {
				t.Fatalf("got %d Location %q, want %d %q", p.StatusCode, p.Header.Get("Location"), tc.status, tc.location)
			}
			if n := len(sessionsOf(t, env, "alice")); n != tc.aliceSessions {
				t.Errorf("alice has %d sessions, want %d", n, tc.aliceSessions)
			}
			if tc.then != nil {
				tc.then(t, env, c, p)
			}
		})
	}
}
