package authorize_test

import (
	"net/url"
	"strings"
	"testing"
)

// TestReflectedIntoPagesEscaped is ADVERSARIAL 69 for the pages of the
// authorization endpoint: whatever a request or a client registration puts
// into a page (client name, scope, login_hint, state, error_description,
// client_id, pending id) comes out HTML-escaped.
func TestReflectedIntoPagesEscaped(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const (
		nameEscaped  = `&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt; &amp; &#39;Co&#39;`
		scopeEscaped = `&lt;b&gt;x&lt;/b&gt;`
		payload      = `"><script>alert(1)</script><img src=x onerror=alert(2)>`
	)
	unescaped := []string{`<script>alert("name")`, `<script>alert(1)`, `<img src=x`, `<b>x</b>`}
	clean := func(t *testing.T, body string) {
		t.Helper()
		for _, u := range unescaped {
			if strings.Contains(body, u) {
				t.Errorf("page contains %q unescaped", u)
			}
		}
	}

	t.Run("adv69/client-name-and-login_hint-on-sign-in-page", func(t *testing.T) {
		a := f.agent("alice")
		page := get(t, a, get(t, a, f.authorize(with(request("html"), "login_hint", payload))).Location)
		if !isLoginPage(page) || !strings.Contains(page.Body, nameEscaped) {
			t.Errorf("sign-in page does not show the escaped client name:\n%s", page.Body)
		}
		clean(t, page.Body)
	})

	t.Run("adv69/client-name-and-scope-on-consent-page", func(t *testing.T) {
		a := f.signedIn(t, "alice")
		page := get(t, a, f.authorize(with(request("html"), "scope", "openid "+htmlScope)))
		if !isConsentPage(page) || !strings.Contains(page.Body, nameEscaped) || !strings.Contains(page.Body, scopeEscaped) {
			t.Errorf("consent page does not show the escaped client name and scope:\n%s", page.Body)
		}
		clean(t, page.Body)
	})

	t.Run("adv69/state-and-error_description-on-form_post-page", func(t *testing.T) {
		a := f.signedIn(t, "alice")
		for _, set := range [][]string{
			{"state", payload},
			{"state", payload, "scope", "openid api:write"},
			{"state", payload, "prompt", "none login"},
		} {
			req := with(request("spa"), append([]string{"response_mode", "form_post"}, set...)...)
			s := get(t, a, f.authorize(req))
			p := f.response(t, s, formPost, req.Get("redirect_uri"))
			if p.Get("state") != payload {
				t.Errorf("state came back as %q", p.Get("state"))
			}
			clean(t, s.Body)
			if n := strings.Count(s.Body, "<script"); n != 1 {
				t.Errorf("form_post page has %d scripts, want only its own", n)
			}
		}
	})

	t.Run("adv69/request-values-on-error-page", func(t *testing.T) {
		a := f.agent("alice")
		for _, u := range []string{
			f.authorize(with(request("spa"), "client_id", payload)),
			f.authorize(with(request("spa"), "redirect_uri", "https://x.example/"+payload)),
			f.env.URL + "/authorize/resume?authz=" + url.QueryEscape(payload),
		} {
			s := get(t, a, u)
			expectPage(t, s)
			clean(t, s.Body)
		}
	})
}
