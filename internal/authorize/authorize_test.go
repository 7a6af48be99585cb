package authorize_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// authzCase is one authorization request and its exact answer.
type authzCase struct {
	name   string
	client string            // base request: request(client) (default spa)
	set    map[string]string // parameters set on the base request
	del    []string          // parameters removed from it
	raw    string            // appended to the query as is (repeated parameters)
	post   bool              // POST the parameters form-encoded (OIDC Core §3.1.2.1)
	anon   bool              // no SSO session (default: alice is signed in)
	want   want
}

func (c authzCase) params() url.Values {
	client := c.client
	if client == "" {
		client = "spa"
	}
	v := minus(request(client), c.del...)
	for k, x := range c.set {
		v.Set(k, x)
	}
	return v
}

// run sends the case from a (signed-in) or anon and checks the answer.
func (c authzCase) run(t *testing.T, f *fixture, signedIn *servertest.Agent) url.Values {
	t.Helper()
	a := signedIn
	if c.anon {
		a = f.agent("alice")
	}
	v := c.params()
	var s servertest.Step
	if c.post {
		s = post(t, a, f.env.URL+"/authorize", v)
	} else {
		s = get(t, a, f.authorize(v)+c.raw)
	}
	// Repeated parameters in raw are part of what was sent, for the leak check.
	if rv, err := url.ParseQuery(strings.TrimPrefix(c.raw, "&")); err == nil {
		for _, x := range rv["redirect_uri"] {
			v.Add("redirect_uri", x)
		}
	}
	if c.want.kind == page {
		expectPage(t, s, v["redirect_uri"]...)
		return nil
	}
	return f.outcome(t, s, v, c.want)
}

// runCases runs a table against one provider, with alice signed in and
// consent granted for every consent-needing client.
func runCases(t *testing.T, cases []authzCase) {
	f, a := casesFixture(t)
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate case name %s", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) { c.run(t, f, a) })
	}
}

const (
	q  = query
	fr = fragment
	fp = formPost
)

// TestValidation covers every rule of request.go and endpoint.go, in the order
// they are checked. The client and redirect URI come first and are answered on
// Castellan's own page (never redirected, RFC 6749 §4.1.2.1, RFC 9700 §4.1);
// every other error goes to the redirect URI with error, error_description,
// state and iss, in the response mode the request would have used.
func TestValidation(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 300)
	runCases(t, []authzCase{
		// identify: client_id and redirect_uri.
		{name: "page/client_id-missing", del: []string{"client_id"}, want: want{kind: page}},
		{name: "page/client_id-empty", set: map[string]string{"client_id": ""}, want: want{kind: page}},
		{name: "page/client_id-unknown", set: map[string]string{"client_id": "nope"}, want: want{kind: page}},
		{name: "page/client_id-repeated", raw: "&client_id=web", want: want{kind: page}},
		{name: "page/client_id-repeated-same", raw: "&client_id=spa", want: want{kind: page}},
		{name: "page/redirect_uri-repeated", raw: "&redirect_uri=" + url.QueryEscape(servertest.SPARedirect), want: want{kind: page}},
		{name: "page/client-without-authorization-endpoint", set: map[string]string{"client_id": "svc", "redirect_uri": "https://svc.example/cb"}, want: want{kind: page}},
		{name: "page/client-without-authorization-endpoint-no-redirect", set: map[string]string{"client_id": "svc"}, del: []string{"redirect_uri"}, want: want{kind: page}},
		{name: "page/redirect_uri-unregistered", set: map[string]string{"redirect_uri": "https://evil.example/callback"}, want: want{kind: page}},
		{name: "page/redirect_uri-of-another-client", set: map[string]string{"redirect_uri": servertest.WebRedirect}, want: want{kind: page}},
		{name: "page/redirect_uri-empty-several-registered", client: "web", set: map[string]string{"redirect_uri": ""}, want: want{kind: page}},
		{name: "page/redirect_uri-omitted-several-registered", client: "web", del: []string{"redirect_uri"}, want: want{kind: page}},
		{name: "page/redirect_uri-not-a-uri", set: map[string]string{"redirect_uri": "::not a uri"}, want: want{kind: page}},
		{name: "page/client-checked-before-everything", set: map[string]string{"client_id": "nope", "response_type": "bogus", "prompt": "none"}, want: want{kind: page}},
		{name: "page/redirect-checked-before-everything", set: map[string]string{"redirect_uri": "https://evil.example/cb", "response_type": "", "scope": "x\"y"}, want: want{kind: page}},
		{name: "redirect/redirect_uri-omitted-one-registered-oauth", client: "one", del: []string{"redirect_uri"}, set: map[string]string{"scope": "api:read"}, want: want{kind: q}},
		// OIDC Core §3.1.2.1: redirect_uri is required in OpenID requests; the
		// only registered URI is known to be the client's, so the error goes there.
		{name: "redirect/redirect_uri-omitted-one-registered-openid", client: "one", del: []string{"redirect_uri"}, want: want{kind: q, err: "invalid_request"}},
		{name: "redirect/second-registered-redirect_uri", client: "web", set: map[string]string{"redirect_uri": "https://web.example/other"}, want: want{kind: q}},

		// Repeated parameters (RFC 6749 §3.1); unrecognized ones are ignored.
		{name: "repeated/state", raw: "&state=other", want: want{kind: q, err: "invalid_request", noState: true}},
		{name: "repeated/scope", raw: "&scope=openid", want: want{kind: q, err: "invalid_request"}},
		{name: "repeated/response_type", raw: "&response_type=code", want: want{kind: q, err: "invalid_request"}},
		{name: "repeated/nonce", raw: "&nonce=x", want: want{kind: q, err: "invalid_request"}},
		{name: "repeated/code_challenge", raw: "&code_challenge=" + challenge, want: want{kind: q, err: "invalid_request"}},
		{name: "repeated/prompt", set: map[string]string{"prompt": "none"}, raw: "&prompt=login", want: want{kind: q, err: "invalid_request"}},
		{name: "repeated/response_mode-implicit", client: "imp", raw: "&response_mode=fragment&response_mode=form_post", want: want{kind: fr, err: "invalid_request"}},
		{name: "repeated/unknown-parameter-ignored", raw: "&extra=1&extra=2", want: want{kind: q}},
		{name: "repeated/resource-ignored", raw: "&resource=https%3A%2F%2Fa.example&resource=https%3A%2F%2Fb.example", want: want{kind: q}},

		// response_mode.
		{name: "response_mode/query-code", set: map[string]string{"response_mode": "query"}, want: want{kind: q}},
		{name: "response_mode/fragment-code", set: map[string]string{"response_mode": "fragment"}, want: want{kind: fr}},
		{name: "response_mode/form_post-code", set: map[string]string{"response_mode": "form_post"}, want: want{kind: fp}},
		{name: "response_mode/form_post-error", set: map[string]string{"response_mode": "form_post", "scope": "openid api:write"}, want: want{kind: fp, err: "invalid_scope"}},
		{name: "response_mode/fragment-error", set: map[string]string{"response_mode": "fragment", "code_challenge_method": "plain"}, want: want{kind: fr, err: "invalid_request"}},
		{name: "response_mode/unknown", set: map[string]string{"response_mode": "bogus"}, want: want{kind: q, err: "invalid_request"}},
		{name: "response_mode/web_message-origin-not-allowed", client: "web", set: map[string]string{"response_mode": "web_message"}, want: want{kind: q, err: "invalid_request"}},
		{name: "response_mode/web_message-implicit-origin-not-allowed", client: "imp", set: map[string]string{"response_mode": "web_message"}, want: want{kind: fr, err: "invalid_request"}},
		{name: "response_mode/unknown-implicit-fragment", client: "imp", set: map[string]string{"response_mode": "bogus"}, want: want{kind: fr, err: "invalid_request"}},
		// Multiple Response Type Encoding §5: tokens never travel in a query.
		{name: "response_mode/query-tokens-refused", client: "imp", set: map[string]string{"response_mode": "query"}, want: want{kind: fr, err: "invalid_request"}},
		{name: "response_mode/query-id_token-refused", client: "imp", set: map[string]string{"response_mode": "query", "response_type": "id_token"}, want: want{kind: fr, err: "invalid_request"}},
		{name: "response_mode/fragment-implicit", client: "imp", set: map[string]string{"response_mode": "fragment"}, want: want{kind: fr}},
		{name: "response_mode/form_post-implicit", client: "imp", set: map[string]string{"response_mode": "form_post"}, want: want{kind: fp}},

		// state.
		{name: "state/absent", del: []string{"state"}, want: want{kind: q, noState: true}},
		{name: "state/at-limit", set: map[string]string{"state": strings.Repeat("s", 4096)}, want: want{kind: q}},
		{name: "state/over-limit", set: map[string]string{"state": strings.Repeat("s", 4097)}, want: want{kind: q, err: "invalid_request", noState: true}},
		{name: "state/over-limit-form_post", set: map[string]string{"state": strings.Repeat("s", 4097), "response_mode": "form_post"}, want: want{kind: fp, err: "invalid_request", noState: true}},
		{name: "state/reserved-characters", set: map[string]string{"state": `a b&c=d#e?f/g+h%20"<>'`}, want: want{kind: q}},

		// response_type.
		{name: "response_type/missing", del: []string{"response_type"}, want: want{kind: q, err: "invalid_request"}},
		{name: "response_type/empty", set: map[string]string{"response_type": ""}, want: want{kind: q, err: "invalid_request"}},
		{name: "response_type/unknown", set: map[string]string{"response_type": "bogus"}, want: want{kind: q, err: "unsupported_response_type"}},
		{name: "response_type/none", set: map[string]string{"response_type": "none"}, want: want{kind: q, err: "unsupported_response_type"}},
		{name: "response_type/case-sensitive", set: map[string]string{"response_type": "CODE"}, want: want{kind: q, err: "unsupported_response_type"}},
		{name: "response_type/hybrid-code-id_token", set: map[string]string{"response_type": "code id_token"}, want: want{kind: fr, err: "unsupported_response_type"}},
		{name: "response_type/hybrid-code-token", set: map[string]string{"response_type": "code token"}, want: want{kind: fr, err: "unsupported_response_type"}},
		{name: "response_type/hybrid-all", set: map[string]string{"response_type": "code id_token token"}, want: want{kind: fr, err: "unsupported_response_type"}},
		{name: "response_type/token-not-registered", set: map[string]string{"response_type": "token"}, want: want{kind: fr, err: "unauthorized_client"}},
		{name: "response_type/id_token-token-not-registered", client: "web", set: map[string]string{"response_type": "id_token token"}, want: want{kind: fr, err: "unauthorized_client"}},
		{name: "response_type/code-not-registered", client: "imp", set: map[string]string{"response_type": "code"}, want: want{kind: q, err: "unauthorized_client"}},
		{name: "response_type/order-does-not-matter", client: "imp", set: map[string]string{"response_type": "token id_token"}, want: want{kind: fr}},
		{name: "response_type/extra-spaces", client: "imp", set: map[string]string{"response_type": " id_token  token "}, want: want{kind: fr}},

		// Request objects are not supported (discovery says so).
		{name: "request/request-object", set: map[string]string{"request": "eyJhbGciOiJub25lIn0.eyJzdGF0ZSI6IngifQ."}, want: want{kind: q, err: "request_not_supported"}},
		{name: "request/request_uri", set: map[string]string{"request_uri": "https://rp.example/req.jwt"}, want: want{kind: q, err: "request_uri_not_supported"}},
		// A request_uri of the urn:ietf:params:oauth:request_uri: form names a
		// pushed request (RFC 9126): internal/par's tests cover it.

		// scope.
		{name: "scope/missing", del: []string{"scope"}, want: want{kind: q, err: "invalid_scope"}},
		{name: "scope/only-spaces", set: map[string]string{"scope": "   "}, want: want{kind: q, err: "invalid_scope"}},
		{name: "scope/malformed-quote", set: map[string]string{"scope": `openid "profile"`}, want: want{kind: q, err: "invalid_scope"}},
		{name: "scope/malformed-backslash", set: map[string]string{"scope": `openid a\b`}, want: want{kind: q, err: "invalid_scope"}},
		{name: "scope/malformed-control", set: map[string]string{"scope": "openid\tprofile"}, want: want{kind: q, err: "invalid_scope"}},
		{name: "scope/not-allowed-for-client", set: map[string]string{"scope": "openid api:read"}, want: want{kind: q, err: "invalid_scope"}},
		{name: "scope/unknown", set: map[string]string{"scope": "openid address"}, want: want{kind: q, err: "invalid_scope"}},
		{name: "scope/case-sensitive", set: map[string]string{"scope": "OpenID"}, want: want{kind: q, err: "invalid_scope"}},
		{name: "scope/duplicate-values", set: map[string]string{"scope": "openid openid profile"}, want: want{kind: q}},
		{name: "scope/order-does-not-matter", set: map[string]string{"scope": "profile email openid"}, want: want{kind: q}},
		{name: "scope/oauth-only-no-openid", set: map[string]string{"scope": "profile"}, want: want{kind: q}},
		{name: "scope/id_token-needs-openid", client: "imp", set: map[string]string{"response_type": "id_token", "scope": "profile"}, want: want{kind: fr, err: "invalid_scope"}},
		{name: "scope/id_token-token-needs-openid", client: "imp", set: map[string]string{"scope": "profile email"}, want: want{kind: fr, err: "invalid_scope"}},
		{name: "scope/token-without-openid", client: "imp", set: map[string]string{"response_type": "token", "scope": "profile"}, want: want{kind: fr}},

		// nonce.
		{name: "nonce/optional-for-code", del: []string{"nonce"}, want: want{kind: q}},
		{name: "nonce/required-id_token-token", client: "imp", del: []string{"nonce"}, want: want{kind: fr, err: "invalid_request"}},
		{name: "nonce/required-id_token", client: "imp", set: map[string]string{"response_type": "id_token"}, del: []string{"nonce"}, want: want{kind: fr, err: "invalid_request"}},
		// RFC 6749 §4.2: an access token alone needs no nonce (OIDC Core §3.2.2.1 asks for one with an ID token).
		{name: "nonce/not-required-token", client: "imp", set: map[string]string{"response_type": "token"}, del: []string{"nonce"}, want: want{kind: fr}},
		{name: "nonce/not-required-token-oauth-only", client: "imp", set: map[string]string{"response_type": "token", "scope": "profile"}, del: []string{"nonce"}, want: want{kind: fr}},
		{name: "nonce/empty", client: "imp", set: map[string]string{"nonce": ""}, want: want{kind: fr, err: "invalid_request"}},

		// PKCE (RFC 7636, OAuth 2.1 §4.1.1).
		{name: "pkce/public-without-challenge", del: []string{"code_challenge", "code_challenge_method"}, want: want{kind: q, err: "invalid_request"}},
		{name: "pkce/method-without-challenge", del: []string{"code_challenge"}, want: want{kind: q, err: "invalid_request"}},
		{name: "pkce/challenge-without-method-is-plain", del: []string{"code_challenge_method"}, want: want{kind: q, err: "invalid_request"}},
		{name: "pkce/method-plain", set: map[string]string{"code_challenge_method": "plain"}, want: want{kind: q, err: "invalid_request"}},
		{name: "pkce/method-S512", set: map[string]string{"code_challenge_method": "S512"}, want: want{kind: q, err: "invalid_request"}},
		{name: "pkce/method-lowercase", set: map[string]string{"code_challenge_method": "s256"}, want: want{kind: q, err: "invalid_request"}},
		{name: "pkce/challenge-42-chars", set: map[string]string{"code_challenge": challenge[:42]}, want: want{kind: q, err: "invalid_request"}},
		{name: "pkce/challenge-44-chars", set: map[string]string{"code_challenge": challenge + "A"}, want: want{kind: q, err: "invalid_request"}},
		{name: "pkce/challenge-padded", set: map[string]string{"code_challenge": challenge[:42] + "="}, want: want{kind: q, err: "invalid_request"}},
		{name: "pkce/challenge-std-alphabet", set: map[string]string{"code_challenge": "+" + challenge[1:42] + "/"}, want: want{kind: q, err: "invalid_request"}},
		{name: "pkce/challenge-verifier-alphabet", set: map[string]string{"code_challenge": challenge[:42] + "~"}, want: want{kind: q, err: "invalid_request"}},
		{name: "pkce/require_pkce-confidential-without", client: "pkce", del: []string{"code_challenge", "code_challenge_method"}, want: want{kind: q, err: "invalid_request"}},
		{name: "pkce/require_pkce-confidential-with", client: "pkce", want: want{kind: q}},
		{name: "pkce/confidential-optional-without", client: "web", del: []string{"code_challenge", "code_challenge_method"}, want: want{kind: q}},
		{name: "pkce/confidential-offered-with", client: "web", want: want{kind: q}},
		{name: "pkce/confidential-plain-refused", client: "web", set: map[string]string{"code_challenge_method": "plain"}, want: want{kind: q, err: "invalid_request"}},
		{name: "pkce/ignored-for-implicit", client: "imp", set: map[string]string{"code_challenge": "x", "code_challenge_method": "plain"}, want: want{kind: fr}},

		// prompt (OIDC Core §3.1.2.1).
		{name: "prompt/none-with-login", set: map[string]string{"prompt": "none login"}, want: want{kind: q, err: "invalid_request"}},
		{name: "prompt/login-with-none", set: map[string]string{"prompt": "login none"}, want: want{kind: q, err: "invalid_request"}},
		{name: "prompt/none-with-consent", set: map[string]string{"prompt": "none consent"}, want: want{kind: q, err: "invalid_request"}},
		{name: "prompt/none-with-select_account", set: map[string]string{"prompt": "none select_account"}, want: want{kind: q, err: "invalid_request"}},
		{name: "prompt/none-repeated-value", set: map[string]string{"prompt": "none none"}, want: want{kind: q}},
		{name: "prompt/unknown-value-ignored", set: map[string]string{"prompt": "bogus"}, want: want{kind: q}},
		{name: "prompt/none-with-session", set: map[string]string{"prompt": "none"}, want: want{kind: q}},
		{name: "prompt/none-without-session", anon: true, set: map[string]string{"prompt": "none"}, want: want{kind: q, err: "login_required"}},
		{name: "prompt/login-with-session", set: map[string]string{"prompt": "login"}, want: want{kind: login}},
		{name: "prompt/select_account-is-login", set: map[string]string{"prompt": "select_account"}, want: want{kind: login}},
		{name: "prompt/consent-skip_consent-client", set: map[string]string{"prompt": "consent"}, want: want{kind: q}},
		{name: "prompt/consent-consent-client", client: "web", set: map[string]string{"prompt": "consent"}, want: want{kind: consent}},

		// max_age.
		{name: "max_age/not-a-number", set: map[string]string{"max_age": "abc"}, want: want{kind: q, err: "invalid_request"}},
		{name: "max_age/negative", set: map[string]string{"max_age": "-1"}, want: want{kind: q, err: "invalid_request"}},
		{name: "max_age/fraction", set: map[string]string{"max_age": "1.5"}, want: want{kind: q, err: "invalid_request"}},
		{name: "max_age/fresh-enough", set: map[string]string{"max_age": "3600"}, want: want{kind: q}},
		{name: "max_age/empty-is-absent", set: map[string]string{"max_age": ""}, want: want{kind: q}},

		// id_token_hint and login_hint.
		{name: "id_token_hint/garbage", set: map[string]string{"id_token_hint": "not-a-jwt"}, want: want{kind: q, err: "invalid_request"}},
		{name: "id_token_hint/alg-none", set: map[string]string{"id_token_hint": "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJpc3MiOiJ4Iiwic3ViIjoiYWxpY2UifQ."}, want: want{kind: q, err: "invalid_request"}},
		{name: "id_token_hint/checked-before-prompt-none", anon: true, set: map[string]string{"id_token_hint": "not-a-jwt", "prompt": "none"}, want: want{kind: q, err: "invalid_request"}},
		{name: "login_hint/accepted", set: map[string]string{"login_hint": "alice"}, want: want{kind: q}},
		{name: "login_hint/at-limit", set: map[string]string{"login_hint": long[:256]}, want: want{kind: q}},
		{name: "login_hint/too-long-refused", set: map[string]string{"login_hint": long}, want: want{kind: q, err: "invalid_request"}},

		// Session rule: no session → sign-in page.
		{name: "session/none-sign-in-page", anon: true, want: want{kind: login}},
		{name: "session/none-sign-in-page-implicit", client: "imp", anon: true, want: want{kind: login}},
		{name: "session/alive-skip_consent", want: want{kind: q}},
		{name: "session/alive-consent-known", client: "web", want: want{kind: q}},
		{name: "session/alive-consent-missing", client: "html", want: want{kind: consent}},

		// POST (OIDC Core §3.1.2.1) and the request body.
		{name: "post/form-encoded", post: true, want: want{kind: q}},
		{name: "post/error-redirected", post: true, del: []string{"response_type"}, want: want{kind: q, err: "invalid_request"}},
		{name: "post/bad-client-page", post: true, set: map[string]string{"client_id": "nope"}, want: want{kind: page}},
	})
}

// TestPostBodyLimits covers the POST-only paths: parameters only in the query
// of a POST are not read, and an oversized body is refused on the page.
func TestPostBodyLimits(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.signedIn(t, "alice")

	t.Run("page/post-with-query-only", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, f.authorize(request("spa")), strings.NewReader(""))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := a.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Fatalf("got %d %q, want a 400 page", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("page/post-body-too-large", func(t *testing.T) {
		v := with(request("spa"), "padding", strings.Repeat("p", 70<<10))
		s := post(t, a, f.env.URL+"/authorize", v)
		expectPage(t, s)
	})
	t.Run("method/put-not-allowed", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPut, f.authorize(request("spa")), nil)
		resp, err := a.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Location") != "" {
			t.Fatalf("PUT: got %d %q, want 405", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}
