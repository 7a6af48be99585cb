package authorize_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// TestSessionRule covers the session rule and the pending request: no
// session → sign-in page, then back to the request; the pending request is
// kept server-side, bound to the browser, single use and short-lived; a live
// session with known consent is answered at once; consent is remembered per
// user, client and scopes.
func TestSessionRule(t *testing.T) {
	t.Parallel()
	f := newFixture(t)

	t.Run("no-session/sign-in-then-back-to-the-request", func(t *testing.T) {
		a := f.agent("alice")
		req := request("spa")
		toLogin := get(t, a, f.authorize(req))
		f.outcome(t, toLogin, req, want{kind: login})
		loginPage := get(t, a, toLogin.Location)
		if !isLoginPage(loginPage) || !strings.Contains(loginPage.Body, "Demo SPA") {
			t.Fatalf("sign-in page does not name the client:\n%s", loginPage.Body)
		}
		s := submitLogin(t, a, f.env, loginPage, "alice")
		if s.Status != http.StatusSeeOther || !strings.HasPrefix(s.Location, f.env.URL+"/authorize/resume?authz=") {
			t.Fatalf("after sign-in: got %d %q, want 303 (never 307) back to the request", s.Status, s.Location)
		}
		p := f.outcome(t, get(t, a, s.Location), req, want{kind: query})
		if c := f.idToken(t, "spa", p.Get("code"), true); c.Name != "Alice Liddell" || c.Nonce != "n-spa" {
			t.Errorf("ID token: name %q nonce %q", c.Name, c.Nonce)
		}
	})

	t.Run("session-alive-consent-known/answered-at-once", func(t *testing.T) {
		f.consent(t, "alice", "web", "openid profile")
		for _, client := range []string{"spa", "web"} {
			a := f.signedIn(t, "alice")
			n := len(a.Steps)
			req := request(client)
			f.outcome(t, follow(t, a, f.authorize(req)), req, want{kind: query})
			if got := len(a.Steps) - n; got != 1 {
				t.Errorf("%s: %d responses, want exactly 1 (no page)", client, got)
			}
		}
	})

	t.Run("pending/single-use-resume", func(t *testing.T) {
		a := f.agent("alice")
		req := request("spa")
		toLogin := get(t, a, f.authorize(req))
		loginPage := get(t, a, toLogin.Location)
		s := submitLogin(t, a, f.env, loginPage, "alice")
		resume := s.Location
		f.outcome(t, get(t, a, resume), req, want{kind: query})
		expectPage(t, get(t, a, resume))
		// The sign-in form of the completed request cannot start it again either.
		again := submitLogin(t, a, f.env, loginPage, "alice")
		expectPage(t, get(t, a, again.Location))
	})

	t.Run("pending/single-use-consent-post", func(t *testing.T) {
		a := f.agent("bob")
		req := request("web")
		consentPage := f.signInAt(t, a, get(t, a, f.authorize(req)), "bob")
		if !isConsentPage(consentPage) {
			t.Fatalf("want the consent page, got %d\n%s", consentPage.Status, consentPage.Body)
		}
		f.outcome(t, decide(t, a, f.env, consentPage, "allow"), req, want{kind: query})
		expectPage(t, decide(t, a, f.env, consentPage, "allow"))
		expectPage(t, decide(t, a, f.env, consentPage, "deny"))
	})

	t.Run("pending/concurrent-resume-one-code", func(t *testing.T) {
		a := f.agent("alice")
		toLogin := get(t, a, f.authorize(request("spa")))
		s := submitLogin(t, a, f.env, get(t, a, toLogin.Location), "alice")
		var (
			mu    sync.Mutex
			codes int
			wg    sync.WaitGroup
		)
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(http.MethodGet, s.Location, nil)
				resp, err := a.Client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if servertest.Params(resp.Header.Get("Location")).Get("code") != "" {
					mu.Lock()
					codes++
					mu.Unlock()
				} else if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("got %d %q, want a code or the error page", resp.StatusCode, resp.Header.Get("Location"))
				}
			}()
		}
		wg.Wait()
		if codes != 1 {
			t.Errorf("%d codes for one pending request, want 1", codes)
		}
	})

	t.Run("pending/bound-to-the-browser", func(t *testing.T) {
		victim := f.agent("alice")
		req := request("spa")
		toLogin := get(t, victim, f.authorize(req))
		id := authzOf(t, toLogin)
		resume := f.env.URL + "/authorize/resume?authz=" + url.QueryEscape(id)

		other := f.agent("bob")
		expectPage(t, get(t, other, resume))
		page := get(t, other, f.env.URL+"/login?authz="+url.QueryEscape(id))
		if !isLoginPage(page) || strings.Contains(page.Body, `name="authz"`) || strings.Contains(page.Body, "Demo SPA") {
			t.Errorf("another browser's sign-in page shows the pending request:\n%s", page.Body)
		}
		form := url.Values{"csrf_token": {servertest.CSRF(page.Body)}, "authz": {id}, "decision": {"allow"}}
		expectPage(t, post(t, other, f.env.URL+"/authorize/consent", form))
		expectPage(t, post(t, other, f.env.URL+"/login/cancel", form))
		if hasSession(f, other) {
			t.Fatal("another browser got a session from the pending request")
		}
		// Signing in there with the stolen id signs that browser in as itself,
		// and the request still does not answer it.
		form = url.Values{"csrf_token": {servertest.CSRF(page.Body)}, "authz": {id}, "username": {"bob"}, "password": {servertest.Password}}
		s := post(t, other, f.env.URL+"/login", form)
		if s.Status != http.StatusSeeOther {
			t.Fatalf("sign-in: %d", s.Status)
		}
		final := follow(t, other, s.Location)
		if final.Location != "" || servertest.Params(final.Location).Get("code") != "" {
			t.Fatalf("another browser got %d %q", final.Status, final.Location)
		}
		expectPage(t, final)

		// The browser that made the request still completes it, as alice.
		p := f.outcome(t, f.signInAt(t, victim, toLogin, "alice"), req, want{kind: query})
		if c := f.idToken(t, "spa", p.Get("code"), true); c.Name != "Alice Liddell" {
			t.Errorf("code for %q, want alice", c.Name)
		}
	})

	t.Run("pending/expires-after-authorize.pending_ttl", func(t *testing.T) {
		ttl := f.env.Config.Authorize.PendingTTL.D()
		for _, tc := range []struct {
			wait time.Duration
			ok   bool
		}{{ttl - time.Second, true}, {ttl, false}, {ttl + time.Minute, false}} {
			a := f.agent("alice")
			req := request("spa")
			toLogin := get(t, a, f.authorize(req))
			loginPage := get(t, a, toLogin.Location)
			f.env.Clock.Advance(tc.wait)
			s := submitLogin(t, a, f.env, loginPage, "alice")
			answer := get(t, a, s.Location)
			if tc.ok {
				f.outcome(t, answer, req, want{kind: query})
			} else {
				expectPage(t, answer)
			}
		}
	})

	t.Run("pending/unknown-or-malformed-id", func(t *testing.T) {
		a := f.signedIn(t, "alice")
		for _, id := range []string{"", "nope", strings.Repeat("A", 43), "../../etc/passwd", "<script>"} {
			s := get(t, a, f.env.URL+"/authorize/resume?authz="+url.QueryEscape(id))
			expectPage(t, s)
			if strings.Contains(s.Body, "<script>") {
				t.Error("pending id reflected unescaped")
			}
		}
	})

	t.Run("consent/remembered-per-user-client-and-scopes", func(t *testing.T) {
		alice := f.signedIn(t, "alice")
		bob := f.signedIn(t, "bob")
		narrow := with(request("one"), "scope", "openid profile")
		wide := with(request("one"), "scope", "openid profile email")
		step := func(a *servertest.Agent, req url.Values) servertest.Step { return get(t, a, f.authorize(req)) }

		f.outcome(t, step(alice, narrow), narrow, want{kind: consent})
		f.outcome(t, decide(t, alice, f.env, step(alice, narrow), "allow"), narrow, want{kind: query})
		f.outcome(t, step(alice, narrow), narrow, want{kind: query})                                                      // remembered
		f.outcome(t, step(alice, with(narrow, "scope", "openid")), narrow, want{kind: query})                             // narrower
		f.outcome(t, step(alice, with(narrow, "scope", "profile openid")), narrow, want{kind: query})                     // order
		f.outcome(t, step(alice, wide), wide, want{kind: consent})                                                        // wider asks again
		f.outcome(t, step(bob, narrow), narrow, want{kind: consent})                                                      // per user
		f.outcome(t, step(alice, with(request("html"), "scope", "openid profile")), request("html"), want{kind: consent}) // per client
		f.outcome(t, decide(t, alice, f.env, step(alice, wide), "allow"), wide, want{kind: query})
		f.outcome(t, step(alice, wide), wide, want{kind: query})
		f.outcome(t, step(alice, narrow), narrow, want{kind: query}) // the earlier grant is kept
		f.outcome(t, step(alice, with(wide, "prompt", "consent")), wide, want{kind: consent})
	})

	t.Run("consent/page-names-client-user-and-scopes", func(t *testing.T) {
		a := f.signedIn(t, "alice")
		s := get(t, a, f.authorize(with(request("one"), "scope", "openid profile email api:read")))
		if !isConsentPage(s) {
			t.Fatalf("want the consent page, got %d", s.Status)
		}
		for _, text := range []string{"One", "alice", "See your e-mail address", "See your name", "api:read"} {
			if !strings.Contains(s.Body, text) {
				t.Errorf("consent page lacks %q", text)
			}
		}
	})

	t.Run("consent/deny-access_denied", func(t *testing.T) {
		a := f.signedIn(t, "alice")
		req := with(request("html"), "state", "deny-state")
		p := f.outcome(t, decide(t, a, f.env, get(t, a, f.authorize(req)), "deny"), req, want{kind: query, err: "access_denied"})
		if p.Get("error_description") == "" {
			t.Error("no error_description")
		}
		// Nothing was remembered: the next request asks again.
		f.outcome(t, get(t, a, f.authorize(req)), req, want{kind: consent})
	})

	t.Run("consent/deny-form_post", func(t *testing.T) {
		a := f.signedIn(t, "alice")
		req := with(request("html"), "response_mode", "form_post")
		f.outcome(t, decide(t, a, f.env, get(t, a, f.authorize(req)), "deny"), req, want{kind: formPost, err: "access_denied"})
	})

	t.Run("consent/csrf", func(t *testing.T) {
		a := f.signedIn(t, "alice")
		page := get(t, a, f.authorize(request("html")))
		id := authzOf(t, page)
		other := f.signedIn(t, "alice")
		otherToken := servertest.CSRF(get(t, other, f.env.URL+"/login").Body)
		for name, token := range map[string]string{"missing": "", "other-browser": otherToken, "garbage": "x"} {
			s := post(t, a, f.env.URL+"/authorize/consent", url.Values{"csrf_token": {token}, "authz": {id}, "decision": {"allow"}})
			if s.Status != http.StatusForbidden || s.Location != "" {
				t.Errorf("%s CSRF token: got %d %q, want 403", name, s.Status, s.Location)
			}
		}
		// The pending request survived and still works with the right token.
		f.outcome(t, decide(t, a, f.env, page, "deny"), request("html"), want{kind: query, err: "access_denied"})
	})

	t.Run("consent/no-decision-page", func(t *testing.T) {
		a := f.signedIn(t, "alice")
		page := get(t, a, f.authorize(request("html")))
		for _, d := range []string{"", "maybe"} {
			expectPage(t, post(t, a, f.env.URL+"/authorize/consent", url.Values{
				"csrf_token": {servertest.CSRF(page.Body)}, "authz": {authzOf(t, page)}, "decision": {d}}))
		}
	})

	t.Run("consent/session-lost-sign-in-again", func(t *testing.T) {
		a := f.signedIn(t, "alice")
		req := request("html")
		page := get(t, a, f.authorize(req))
		dropSession(f, a)
		s := decide(t, a, f.env, page, "allow")
		f.outcome(t, s, req, want{kind: login})
		if authzOf(t, s) != authzOf(t, page) {
			t.Error("sign-in does not continue the same pending request")
		}
	})

	// A pending request made for a (re-)authentication has its id in the
	// sign-in page's URL; posting a decision for it straight away must not get
	// around that sign-in.
	t.Run("consent/post-cannot-skip-reauthentication", func(t *testing.T) {
		bobHint := f.rawIDToken(t, "bob")
		for name, set := range map[string][]string{
			"prompt=login":          {"prompt", "login"},
			"prompt=select_account": {"prompt", "select_account"},
			"max_age-exceeded":      {"max_age", "1"},
			"id_token_hint-bob":     {"id_token_hint", bobHint},
		} {
			for _, client := range []string{"spa", "web"} {
				a := f.signedIn(t, "alice")
				f.env.Clock.Advance(5 * time.Second)
				req := with(request(client), set...)
				toLogin := get(t, a, f.authorize(req))
				f.outcome(t, toLogin, req, want{kind: login})
				csrf := servertest.CSRF(get(t, a, toLogin.Location).Body)
				s := post(t, a, f.env.URL+"/authorize/consent", url.Values{"csrf_token": {csrf}, "authz": {authzOf(t, toLogin)}, "decision": {"allow"}})
				if servertest.Params(s.Location).Get("code") != "" {
					t.Fatalf("%s/%s: a consent post skipped the sign-in and got a code", name, client)
				}
				f.outcome(t, s, req, want{kind: login})
			}
		}
	})

	t.Run("login/cancel-access_denied", func(t *testing.T) {
		a := f.agent("alice")
		req := with(request("spa"), "state", "cancel-state")
		toLogin := get(t, a, f.authorize(req))
		page := get(t, a, toLogin.Location)
		form := url.Values{"csrf_token": {servertest.CSRF(page.Body)}, "authz": {authzOf(t, page)}}
		f.outcome(t, post(t, a, f.env.URL+"/login/cancel", form), req, want{kind: query, err: "access_denied"})
		expectPage(t, post(t, a, f.env.URL+"/login/cancel", form)) // single use
		expectPage(t, get(t, a, f.env.URL+"/authorize/resume?authz="+url.QueryEscape(authzOf(t, page))))
		if hasSession(f, a) {
			t.Error("cancelling created a session")
		}
	})

	t.Run("login/cancel-implicit-fragment", func(t *testing.T) {
		a := f.agent("alice")
		req := request("imp")
		page := get(t, a, get(t, a, f.authorize(req)).Location)
		form := url.Values{"csrf_token": {servertest.CSRF(page.Body)}, "authz": {authzOf(t, page)}}
		f.outcome(t, post(t, a, f.env.URL+"/login/cancel", form), req, want{kind: fragment, err: "access_denied"})
	})

	t.Run("login_hint/pre-fills-username", func(t *testing.T) {
		for hint, value := range map[string]string{
			"alice":                            `value="alice"`,
			`"><script>alert(1)</script>`:      `value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"`,
			"bob@example.com":                  `value="bob@example.com"`,
			strings.Repeat("h", 256):           `value="` + strings.Repeat("h", 256) + `"`,
			`' onfocus='alert(1)' autofocus='`: `value="&#39; onfocus=&#39;alert(1)&#39; autofocus=&#39;"`,
		} {
			a := f.agent("alice")
			toLogin := get(t, a, f.authorize(with(request("spa"), "login_hint", hint)))
			page := get(t, a, toLogin.Location)
			if !strings.Contains(page.Body, value) {
				t.Errorf("login_hint %q: sign-in page lacks %s", trim(hint), value)
			}
			if strings.Contains(page.Body, "<script>alert") || strings.Contains(page.Body, "' onfocus") {
				t.Errorf("login_hint %q reflected unescaped", trim(hint))
			}
		}
	})
}

// TestDisabledUser: disabling a user ends their sessions, so a browser that
// was signed in as them renews nothing silently afterwards; and a disabled
// user's session that is somehow still there is not honoured.
func TestDisabledUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.signedIn(t, "alice")
	req := request("spa")
	req.Set("prompt", "none")
	f.outcome(t, get(t, a, f.authorize(req)), req, want{kind: query})

	u, err := f.env.Store.GetUserByUsername(f.ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.env.Store.DisableUser(f.ctx, u.ID, f.env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	f.outcome(t, get(t, a, f.authorize(req)), req, want{kind: query, err: "login_required"})

	// A user record marked disabled by other means (the session left in place)
	// is refused all the same: the session is read with its user.
	b := f.signedIn(t, "bob")
	f.outcome(t, get(t, b, f.authorize(req)), req, want{kind: query})
	bob, err := f.env.Store.GetUserByUsername(f.ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	bob.Disabled = true
	if err := f.env.Store.UpdateUser(f.ctx, bob); err != nil {
		t.Fatal(err)
	}
	f.outcome(t, get(t, b, f.authorize(req)), req, want{kind: query, err: "login_required"})
}
