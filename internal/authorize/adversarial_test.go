package authorize_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// TestAdversarial covers cases 1–24 of ADVERSARIAL.md (the authorization
// endpoint), one named case (or group) per line of the catalogue.
func TestAdversarial(t *testing.T) {
	t.Parallel()
	f, a := casesFixture(t)
	web := servertest.WebRedirect
	spa := servertest.SPARedirect
	bad := func(name, client, uri string) authzCase {
		return authzCase{name: name, client: client, set: map[string]string{"redirect_uri": uri}, want: want{kind: page}}
	}
	state2K := twoKiloState()

	cases := []authzCase{
		bad("adv01/unregistered-redirect-uri", "spa", "https://evil.example/callback"),
		bad("adv01/unregistered-redirect-uri-confidential", "web", "https://evil.example/callback"),
		{name: "adv01/unregistered-redirect-uri-prompt-none", anon: true, set: map[string]string{"redirect_uri": "https://evil.example/callback", "prompt": "none"}, want: want{kind: page}},
		{name: "adv01/unregistered-redirect-uri-with-error", set: map[string]string{"redirect_uri": "https://evil.example/callback", "response_type": "bogus"}, want: want{kind: page}},
		bad("adv02/path-case", "web", "https://web.example/CALLBACK"),
		bad("adv02/host-case", "web", "https://WEB.example/callback"),
		bad("adv02/scheme-case", "web", "HTTPS://web.example/callback"),
		bad("adv02/loopback-path-case", "spa", "http://127.0.0.1:9100/Callback"),
		bad("adv03/trailing-slash", "web", web+"/"),
		bad("adv03/dot-dot-segment", "web", "https://web.example/x/../callback"),
		bad("adv03/dot-dot-after", "web", web+"/../callback"),
		bad("adv03/dot-segment", "web", "https://web.example/./callback"),
		bad("adv03/encoded-dot-dot", "web", "https://web.example/%2e%2e/callback"),
		bad("adv03/encoded-dot-dot-upper", "web", "https://web.example/callback/%2E%2E/callback"),
		bad("adv03/double-encoded-slash", "web", web+"%252f..%252fevil"),
		bad("adv03/encoded-slash", "web", "https://web.example%2fcallback"),
		bad("adv03/percent-encoded-letter", "web", "https://web.example/%63allback"),
		bad("adv03/default-port", "web", "https://web.example:443/callback"),
		bad("adv03/loopback-trailing-slash", "spa", spa+"/"),
		bad("adv03/loopback-dot-dot", "spa", "http://127.0.0.1:9100/x/../callback"),
		bad("adv03/loopback-other-port-dot-dot", "spa", "http://127.0.0.1:5555/x/../callback"),
		bad("adv03/loopback-encoded-letter", "spa", "http://127.0.0.1:5555/%63allback"),
		bad("adv04/query-added", "web", web+"?x=1"),
		bad("adv04/empty-query-added", "web", web+"?"),
		bad("adv04/fragment-added", "web", web+"#frag"),
		bad("adv04/empty-fragment-added", "web", web+"#"),
		bad("adv04/loopback-query-added", "spa", spa+"?x=1"),
		bad("adv04/loopback-other-port-fragment", "spa", "http://127.0.0.1:5555/callback#f"),
		bad("adv04/registered-query-changed", "query", "https://q.example/cb?tenant=b"),
		bad("adv04/registered-query-extended", "query", queryRedirect+"&x=1"),
		bad("adv04/registered-query-dropped", "query", "https://q.example/cb"),
		bad("adv05/userinfo-at-evil", "web", "https://web.example@evil.example/callback"),
		bad("adv05/userinfo-with-port-at-evil", "web", "https://web.example:443@evil.example/callback"),
		bad("adv05/localhost-userinfo-at-evil", "native", "http://localhost:80@evil.example/callback"),
		bad("adv05/loopback-userinfo-at-evil", "spa", "http://127.0.0.1:9100@evil.example/callback"),
		bad("adv05/loopback-userinfo-at-loopback", "native", "http://evil@127.0.0.1/callback"),
		bad("adv05/backslash-at-evil", "web", `https://evil.example\@web.example/callback`),
		bad("adv05/suffix-host", "web", "https://web.example.evil.example/callback"),
		bad("adv05/uri-in-path", "web", "https://evil.example/https://web.example/callback"),
		bad("adv05/loopback-dns-suffix", "spa", "http://127.0.0.1.evil.example:9100/callback"),
		bad("adv06/http-variant-of-https", "web", "http://web.example/callback"),
		bad("adv06/https-variant-of-loopback-http", "spa", "https://127.0.0.1:9100/callback"),
		{name: "adv07/omitted-two-registered", client: "web", del: []string{"redirect_uri"}, want: want{kind: page}},
		{name: "adv07/omitted-one-registered-is-used", client: "one", del: []string{"redirect_uri"}, set: map[string]string{"scope": "api:read"}, want: want{kind: query}},
		{name: "adv08/unknown-client_id", set: map[string]string{"client_id": "evil"}, want: want{kind: page}},
		{name: "adv08/unknown-client_id-with-evil-redirect", set: map[string]string{"client_id": "evil", "redirect_uri": "https://evil.example/cb"}, want: want{kind: page}},
		{name: "adv09/response_type-missing", del: []string{"response_type"}, want: want{kind: query, err: "invalid_request"}},
		{name: "adv09/response_type-missing-confidential", client: "web", del: []string{"response_type"}, want: want{kind: query, err: "invalid_request"}},
		{name: "adv10/public-client-without-code_challenge", del: []string{"code_challenge", "code_challenge_method"}, want: want{kind: query, err: "invalid_request"}},
		{name: "adv10/native-client-without-code_challenge", client: "native", del: []string{"code_challenge", "code_challenge_method"}, want: want{kind: query, err: "invalid_request"}},
		{name: "adv11/method-plain", set: map[string]string{"code_challenge_method": "plain"}, want: want{kind: query, err: "invalid_request"}},
		{name: "adv11/method-plain-with-verifier-as-challenge", set: map[string]string{"code_challenge_method": "plain", "code_challenge": verifier}, want: want{kind: query, err: "invalid_request"}},
		{name: "adv11/method-S512", set: map[string]string{"code_challenge_method": "S512"}, want: want{kind: query, err: "invalid_request"}},
		{name: "adv12/challenge-too-short", set: map[string]string{"code_challenge": challenge[:20]}, want: want{kind: query, err: "invalid_request"}},
		{name: "adv12/challenge-too-long", set: map[string]string{"code_challenge": strings.Repeat("A", 128)}, want: want{kind: query, err: "invalid_request"}},
		{name: "adv12/challenge-bad-alphabet", set: map[string]string{"code_challenge": challenge[:40] + "*!$"}, want: want{kind: query, err: "invalid_request"}},
		{name: "adv12/challenge-whitespace", set: map[string]string{"code_challenge": challenge[:42] + " "}, want: want{kind: query, err: "invalid_request"}},
		{name: "adv13/token-for-code-only-client", set: map[string]string{"response_type": "token"}, want: want{kind: fragment, err: "unauthorized_client"}},
		{name: "adv13/token-for-confidential-client", client: "web", set: map[string]string{"response_type": "token"}, want: want{kind: fragment, err: "unauthorized_client"}},
		{name: "adv13/id_token-for-code-only-client", set: map[string]string{"response_type": "id_token"}, want: want{kind: fragment, err: "unauthorized_client"}},
		{name: "adv14/implicit-without-nonce", client: "imp", del: []string{"nonce"}, want: want{kind: fragment, err: "invalid_request"}},
		{name: "adv14/implicit-id_token-without-nonce", client: "imp", set: map[string]string{"response_type": "id_token"}, del: []string{"nonce"}, want: want{kind: fragment, err: "invalid_request"}},
		// A nonce only with an ID token (OIDC Core §3.2.2.1): RFC 6749 §4.2 has none.
		{name: "adv14/implicit-token-only-without-nonce-answered", client: "imp", set: map[string]string{"response_type": "token", "scope": "profile"}, del: []string{"nonce"}, want: want{kind: fragment}},
		{name: "adv15/prompt-none-no-session", anon: true, set: map[string]string{"prompt": "none", "state": "exact-ßtate/+?&="}, want: want{kind: query, err: "login_required"}},
		{name: "adv15/prompt-none-no-session-confidential", client: "web", anon: true, set: map[string]string{"prompt": "none"}, want: want{kind: query, err: "login_required"}},
		{name: "adv15/prompt-none-no-session-implicit", client: "imp", anon: true, set: map[string]string{"prompt": "none"}, want: want{kind: fragment, err: "login_required"}},
		{name: "adv16/prompt-none-no-consent", client: "html", set: map[string]string{"prompt": "none"}, want: want{kind: query, err: "consent_required"}},
		{name: "adv16/prompt-none-consent-covers-scopes", client: "one", set: map[string]string{"prompt": "none", "scope": "openid profile"}, want: want{kind: query}},
		{name: "adv18/prompt-none-and-login", set: map[string]string{"prompt": "none login"}, want: want{kind: query, err: "invalid_request"}},
		{name: "adv18/prompt-none-and-consent", anon: true, set: map[string]string{"prompt": "consent none"}, want: want{kind: query, err: "invalid_request"}},
		{name: "adv20/duplicate-client_id", raw: "&client_id=spa", want: want{kind: page}},
		{name: "adv20/duplicate-client_id-different", raw: "&client_id=web", want: want{kind: page}},
		{name: "adv20/duplicate-redirect_uri", raw: "&redirect_uri=" + url.QueryEscape(spa), want: want{kind: page}},
		{name: "adv20/duplicate-redirect_uri-evil", raw: "&redirect_uri=" + url.QueryEscape("https://evil.example/cb"), want: want{kind: page}},
		{name: "adv21/2KB-state-echoed-exactly", set: map[string]string{"state": state2K}, want: want{kind: query}},
		{name: "adv21/2KB-state-echoed-exactly-fragment", client: "imp", set: map[string]string{"state": state2K}, want: want{kind: fragment}},
		{name: "adv21/2KB-state-echoed-exactly-form_post", set: map[string]string{"state": state2K, "response_mode": "form_post"}, want: want{kind: formPost}},
		{name: "adv21/2KB-state-echoed-exactly-on-error", anon: true, set: map[string]string{"state": state2K, "prompt": "none"}, want: want{kind: query, err: "login_required"}},
		{name: "adv21/state-4096-echoed", set: map[string]string{"state": strings.Repeat("x", 4096)}, want: want{kind: query}},
		{name: "adv21/state-4097-refused", set: map[string]string{"state": strings.Repeat("x", 4097)}, want: want{kind: query, err: "invalid_request", noState: true}},
		{name: "adv24/unknown-parameter", set: map[string]string{"extra": "foobar"}, want: want{kind: query}},
		{name: "adv24/display-page", set: map[string]string{"display": "page"}, want: want{kind: query}},
		{name: "adv24/display-popup", set: map[string]string{"display": "popup"}, want: want{kind: query}},
		{name: "adv24/display-unknown", set: map[string]string{"display": "hologram"}, want: want{kind: query}},
		{name: "adv24/ui_locales", set: map[string]string{"ui_locales": "se fr-CA"}, want: want{kind: query}},
		{name: "adv24/claims_locales", set: map[string]string{"claims_locales": "se"}, want: want{kind: query}},
		{name: "adv24/acr_values", set: map[string]string{"acr_values": "1 2 urn:mace:incommon:iap:silver"}, want: want{kind: query}},
		{name: "adv24/all-at-once", client: "imp", set: map[string]string{"display": "touch", "ui_locales": "de", "claims_locales": "de", "acr_values": "0", "foo": "bar", "claims": `{"id_token":{"email":null}}`}, want: want{kind: fragment}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, f, a) })
	}
	// adv20 for POST: a form whose redirect_uri appears twice is refused too.
	t.Run("adv20/duplicate-redirect_uri-in-post-body", func(t *testing.T) {
		form := with(request("web"))
		form.Add("redirect_uri", "https://evil.example/cb")
		expectPage(t, post(t, a, f.env.URL+"/authorize", form), "https://evil.example/cb")
	})

	t.Run("adv17/prompt-none-id_token_hint-other-subject", func(t *testing.T) {
		bob := f.rawIDToken(t, "bob")
		req := with(request("spa"), "prompt", "none", "id_token_hint", bob)
		s := get(t, a, f.authorize(req)) // a is alice's browser
		f.outcome(t, s, req, want{kind: query, err: "login_required"})
	})
	t.Run("adv17/prompt-none-id_token_hint-other-subject-implicit", func(t *testing.T) {
		bob := f.rawIDToken(t, "bob")
		req := with(request("imp"), "prompt", "none", "id_token_hint", bob)
		s := get(t, a, f.authorize(req))
		f.outcome(t, s, req, want{kind: fragment, err: "login_required"})
	})

	t.Run("adv19/prompt-none-max_age-1-two-seconds-later", func(t *testing.T) {
		b := f.signedIn(t, "alice")
		f.env.Clock.Advance(2 * time.Second)
		req := with(request("spa"), "prompt", "none", "max_age", "1")
		f.outcome(t, get(t, b, f.authorize(req)), req, want{kind: query, err: "login_required"})
		// One second is not "more than" max_age=1: the same session still answers.
		c := f.signedIn(t, "alice")
		f.env.Clock.Advance(time.Second)
		f.outcome(t, get(t, c, f.authorize(req)), req, want{kind: query})
	})

	t.Run("adv22/no-cors-on-authorization-endpoint", func(t *testing.T) {
		origin := http.Header{"Origin": {"http://127.0.0.1:9100"}} // spa's allowed origin
		for name, do := range map[string]func() *http.Response{
			"GET-redirect": func() *http.Response { return raw(t, a, http.MethodGet, f.authorize(request("spa")), nil, origin) },
			"GET-page": func() *http.Response {
				return raw(t, a, http.MethodGet, f.authorize(with(request("spa"), "client_id", "nope")), nil, origin)
			},
			"GET-login": func() *http.Response {
				return raw(t, f.agent("alice"), http.MethodGet, f.authorize(request("spa")), nil, origin)
			},
			"POST": func() *http.Response {
				return raw(t, a, http.MethodPost, f.env.URL+"/authorize", strings.NewReader(request("spa").Encode()),
					http.Header{"Origin": origin["Origin"], "Content-Type": {"application/x-www-form-urlencoded"}})
			},
			"OPTIONS-preflight": func() *http.Response {
				return raw(t, a, http.MethodOptions, f.env.URL+"/authorize", nil, http.Header{"Origin": origin["Origin"],
					"Access-Control-Request-Method": {"POST"}})
			},
		} {
			resp := do()
			for k := range resp.Header {
				if strings.HasPrefix(strings.ToLower(k), "access-control-") {
					t.Errorf("%s: %s: %q on the authorization endpoint", name, k, resp.Header.Get(k))
				}
			}
		}
	})

	t.Run("adv23/login-consent-error-pages-not-framable", func(t *testing.T) {
		b := f.agent("alice")
		toLogin := get(t, b, f.authorize(request("html")))
		loginPage := get(t, b, toLogin.Location)
		if !isLoginPage(loginPage) {
			t.Fatalf("want the sign-in page, got %d", loginPage.Status)
		}
		expectNotFramable(t, loginPage)
		consentPage := f.signInAt(t, b, toLogin, "alice")
		if !isConsentPage(consentPage) {
			t.Fatalf("want the consent page, got %d", consentPage.Status)
		}
		expectNotFramable(t, consentPage)
		expectNotFramable(t, get(t, b, f.authorize(with(request("spa"), "client_id", "nope"))))
		expectNotFramable(t, get(t, b, f.env.URL+"/authorize/resume?authz=nope"))
		expectNotFramable(t, get(t, b, f.authorize(with(request("spa"), "response_mode", "form_post"))))
		// Redirects carry it too.
		expectNotFramable(t, get(t, b, f.authorize(request("spa"))))
		// The prompt=none response that clients' allowed origins may frame, and
		// response_mode=web_message, belong to the silent-renewal issue.
	})
}

// twoKiloState is a 2 KB state of every kind of character a client might use.
func twoKiloState() string {
	var b strings.Builder
	for i := 0; b.Len() < 2048; i++ {
		b.WriteString(`ab/+=?&#%20"<>'é☃` + string(rune('A'+i%26)))
	}
	return b.String()
}

// raw sends one request with headers and returns the (drained) response.
func raw(t *testing.T, a *servertest.Agent, method, u string, body io.Reader, h http.Header) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, u, body)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := a.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// rawIDToken signs user in to spa in a fresh browser and returns the ID token
// the code flow yields.
func (f *fixture) rawIDToken(t *testing.T, user string) string {
	t.Helper()
	req := request("spa")
	last := follow(t, f.agent(user), f.authorize(req))
	p := f.outcome(t, last, req, want{kind: query})
	return f.exchange(t, "spa", p.Get("code"), true).IDToken
}

// casesFixture is a provider with alice signed in (the returned browser) and
// her consent to web and one granted.
func casesFixture(t *testing.T) (*fixture, *servertest.Agent) {
	t.Helper()
	f := newFixture(t)
	f.consent(t, "alice", "web", "openid profile email offline_access api:read")
	f.consent(t, "alice", "one", "openid profile email api:read")
	return f, f.signedIn(t, "alice")
}
