package authorize_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// The OpenID conformance suite's OP modules (CONFORMANCE.md) whose behaviour
// is the authorization endpoint's, for the Basic, Implicit, Form Post and
// Config profiles. Each module runs in every profile it belongs to.
//
// Not applicable here, and why:
//   - Dynamic registration: oidcc-3rd_party-init-login, -nohttps,
//     oidcc-registration-jwks-uri, -logo-uri, -policy-uri, -sector-bad,
//     -sector-uri, -tos-uri, oidcc-redirect-uri-regfrag (clients are declared
//     in the config; config validation refuses fragments in redirect URIs).
//   - Request objects by reference that must succeed: oidcc-request-uri-signed-rs256,
//     oidcc-request-uri-unsigned (Dynamic profile; request_uri is not supported
//     and discovery says request_uri_parameter_supported: false; the "or rejected
//     as unsupported" variants are covered below).
//   - Claims parameter: oidcc-claims-essential only in so far as the parameter
//     is ignored without error (claims_parameter_supported: false).
//   - Scopes Castellan does not have (the suite skips them when scopes_supported
//     lacks them): oidcc-scope-address, oidcc-scope-phone, oidcc-scope-all.
//   - Hybrid flow (code id_token, code token, code id_token token): not
//     implemented, answered unsupported_response_type (TestValidation).
//   - oidcc-idtoken-unsigned: Castellan never signs with alg none.
//   - oidcc-userinfo-rs256: signed userinfo responses are not implemented.
//   - oidcc-ensure-client-assertion-with-iss-aud-succeeds, oidcc-refresh-token-rp-key-rotation:
//     private_key_jwt is not implemented.
//   - Token endpoint, userinfo and keys (tested by their packages):
//     oidcc-codereuse, oidcc-codereuse-30seconds, oidcc-refresh-token,
//     oidcc-server-client-secret-post, oidcc-userinfo-get, -post-header,
//     -post-body, oidcc-server-rotate-keys.
//   - Logout and session management (the logout issue): oidcc-rp-initiated-logout*,
//     oidcc-backchannel-*, oidcc-frontchannel-*, oidcc-session-management-*.

// profile is a conformance test plan's client and response type.
type profile struct {
	name   string
	client string
	set    []string // response_type / response_mode
	mode   kind
}

var (
	basic         = profile{name: "basic", client: "web", set: []string{"response_type", "code"}, mode: query}
	implicitIDTok = profile{name: "implicit-id_token", client: "imp", set: []string{"response_type", "id_token"}, mode: fragment}
	implicitBoth  = profile{name: "implicit-id_token-token", client: "imp", set: []string{"response_type", "id_token token"}, mode: fragment}
	formpostBasic = profile{name: "formpost-basic", client: "web", set: []string{"response_type", "code", "response_mode", "form_post"}, mode: formPost}
	allProfiles   = []profile{basic, implicitIDTok, implicitBoth, formpostBasic}
	codeProfiles  = []profile{basic, formpostBasic}
	implicitOnly  = []profile{implicitIDTok, implicitBoth}
)

func (pr profile) request(kv ...string) url.Values {
	return with(with(request(pr.client), pr.set...), kv...)
}

// result is what a successful authorization gave the relying party.
type result struct {
	params url.Values
	claims idClaims
	alg    string
	raw    string // the ID token
	at     string // the access token ("" for response_type=id_token)
}

// finish checks a successful answer and verifies its ID token (redeeming the
// code first in the code flow).
func (pr profile) finish(t *testing.T, f *fixture, s servertest.Step, req url.Values) result {
	t.Helper()
	p := f.outcome(t, s, req, want{kind: pr.mode})
	raw, at := p.Get("id_token"), p.Get("access_token")
	if code := p.Get("code"); code != "" {
		tok := f.exchange(t, pr.client, code, req.Get("code_challenge") != "")
		raw, at = tok.IDToken, tok.AccessToken
	}
	c, alg := f.verifyID(t, pr.client, raw, at)
	if want := req.Get("nonce"); c.Nonce != want {
		t.Errorf("nonce: got %q, want %q", c.Nonce, want)
	}
	if c.Subject == "" || c.AuthTime == 0 {
		t.Errorf("ID token lacks sub or auth_time: %+v", c)
	}
	return result{params: p, claims: c, alg: alg, raw: raw, at: at}
}

// flow runs a whole authorization in browser a (signing in and consenting).
func (pr profile) flow(t *testing.T, f *fixture, a *servertest.Agent, req url.Values) result {
	t.Helper()
	return pr.finish(t, f, follow(t, a, f.authorize(req)), req)
}

// userClaims are the claims the relying party gets: from userinfo when it has
// an access token, else from the ID token (OIDC Core §5.4).
func (r result) userClaims(t *testing.T, f *fixture) map[string]any {
	t.Helper()
	if r.at != "" {
		return f.userinfo(t, r.at)
	}
	return map[string]any{"name": r.claims.Name, "email": r.claims.Email}
}

// The test plans run in parallel, each against its own provider.
func TestConformanceBasic(t *testing.T) {
	t.Parallel()
	conformance(t, []profile{basic}, true)
}

func TestConformanceImplicit(t *testing.T) {
	t.Parallel()
	conformance(t, implicitOnly, false)
}

func TestConformanceFormPost(t *testing.T) {
	t.Parallel()
	conformance(t, []profile{formpostBasic}, false)
}

// conformance runs every module for the profiles of plan that the module
// belongs to, and (once) the modules that are about one request or discovery.
func conformance(t *testing.T, plan []profile, once bool) {
	f := newFixture(t)
	each := func(name string, profiles []profile, fn func(t *testing.T, pr profile)) {
		for _, pr := range profiles {
			for _, in := range plan {
				if in.name == pr.name {
					t.Run(name+"/"+pr.name, func(t *testing.T) { fn(t, pr) })
				}
			}
		}
	}

	each("oidcc-server", allProfiles, func(t *testing.T, pr profile) {
		r := pr.flow(t, f, f.agent("alice"), pr.request())
		if pr.client == "imp" && pr.set[1] == "id_token" && r.params.Get("access_token") != "" {
			t.Error("response_type=id_token returned an access token")
		}
	})

	each("oidcc-response-type-missing", []profile{basic, implicitBoth}, func(t *testing.T, pr profile) {
		req := minus(pr.request(), "response_type")
		f.outcome(t, get(t, f.agent("alice"), f.authorize(req)), req, want{kind: query, err: "invalid_request"})
	})

	each("oidcc-ensure-request-without-nonce-succeeds-for-code-flow", codeProfiles, func(t *testing.T, pr profile) {
		req := minus(pr.request(), "nonce")
		r := pr.flow(t, f, f.agent("alice"), req)
		if r.claims.Nonce != "" {
			t.Errorf("nonce %q in the ID token of a request without one", r.claims.Nonce)
		}
	})

	each("oidcc-ensure-request-without-nonce-fails", implicitOnly, func(t *testing.T, pr profile) {
		req := minus(pr.request(), "nonce")
		f.outcome(t, get(t, f.signedIn(t, "alice"), f.authorize(req)), req, want{kind: fragment, err: "invalid_request"})
	})

	each("oidcc-scope-profile", allProfiles, func(t *testing.T, pr profile) {
		r := pr.flow(t, f, f.agent("alice"), pr.request("scope", "openid profile"))
		if c := r.userClaims(t, f); c["name"] != "Alice Liddell" || c["email"] != nil && c["email"] != "" {
			t.Errorf("profile scope claims: %v", c)
		}
	})

	each("oidcc-scope-email", allProfiles, func(t *testing.T, pr profile) {
		r := pr.flow(t, f, f.agent("alice"), pr.request("scope", "openid email"))
		if c := r.userClaims(t, f); c["email"] != "alice@example.com" || c["name"] != nil && c["name"] != "" {
			t.Errorf("email scope claims: %v", c)
		}
	})

	each("oidcc-ensure-other-scope-order-succeeds", allProfiles, func(t *testing.T, pr profile) {
		r := pr.flow(t, f, f.agent("alice"), pr.request("scope", "email openid"))
		if c := r.userClaims(t, f); c["email"] != "alice@example.com" {
			t.Errorf("claims: %v", c)
		}
	})

	for _, display := range []string{"page", "popup"} {
		each("oidcc-display-"+display, allProfiles, func(t *testing.T, pr profile) {
			a := f.agent("alice") // no cookies: a fresh sign-in page
			req := pr.request("display", display)
			toLogin := get(t, a, f.authorize(req))
			f.outcome(t, toLogin, req, want{kind: login})
			pr.finish(t, f, follow(t, a, toLogin.Location), req)
		})
	}

	each("oidcc-prompt-login", allProfiles, func(t *testing.T, pr profile) {
		a := f.agent("alice")
		first := pr.flow(t, f, a, pr.request())
		f.env.Clock.Advance(time.Minute)
		req := pr.request("prompt", "login")
		toLogin := get(t, a, f.authorize(req))
		f.outcome(t, toLogin, req, want{kind: login})
		second := pr.finish(t, f, follow(t, a, toLogin.Location), req)
		if second.claims.AuthTime <= first.claims.AuthTime || second.claims.Subject != first.claims.Subject {
			t.Errorf("auth_time %d then %d, sub %q then %q", first.claims.AuthTime, second.claims.AuthTime, first.claims.Subject, second.claims.Subject)
		}
	})

	each("oidcc-prompt-none-not-logged-in", allProfiles, func(t *testing.T, pr profile) {
		req := pr.request("prompt", "none")
		f.outcome(t, get(t, f.agent("alice"), f.authorize(req)), req, want{kind: pr.mode, err: "login_required"})
	})

	each("oidcc-prompt-none-logged-in", allProfiles, func(t *testing.T, pr profile) {
		a := f.agent("alice")
		first := pr.flow(t, f, a, pr.request())
		f.env.Clock.Advance(5 * time.Second)
		req := pr.request("prompt", "none")
		second := pr.finish(t, f, get(t, a, f.authorize(req)), req) // one response, no page
		if second.claims.AuthTime != first.claims.AuthTime || second.claims.Subject != first.claims.Subject {
			t.Errorf("auth_time %d then %d, sub %q then %q", first.claims.AuthTime, second.claims.AuthTime, first.claims.Subject, second.claims.Subject)
		}
	})

	each("oidcc-max-age-1", allProfiles, func(t *testing.T, pr profile) {
		a := f.agent("alice")
		first := pr.flow(t, f, a, pr.request())
		f.env.Clock.Advance(1500 * time.Millisecond) // "waits 1 second", plus the round trip
		req := pr.request("max_age", "1")
		toLogin := get(t, a, f.authorize(req))
		f.outcome(t, toLogin, req, want{kind: login})
		second := pr.finish(t, f, follow(t, a, toLogin.Location), req)
		if second.claims.AuthTime <= first.claims.AuthTime {
			t.Errorf("auth_time %d then %d, want a later one", first.claims.AuthTime, second.claims.AuthTime)
		}
	})

	each("oidcc-max-age-10000", allProfiles, func(t *testing.T, pr profile) {
		a := f.agent("alice")
		first := pr.flow(t, f, a, pr.request("max_age", "15000"))
		f.env.Clock.Advance(time.Minute)
		req := pr.request("max_age", "10000")
		second := pr.finish(t, f, get(t, a, f.authorize(req)), req)
		if second.claims.AuthTime != first.claims.AuthTime || second.claims.Subject != first.claims.Subject {
			t.Errorf("auth_time %d then %d, sub %q then %q", first.claims.AuthTime, second.claims.AuthTime, first.claims.Subject, second.claims.Subject)
		}
	})

	each("oidcc-ensure-request-with-unknown-parameter-succeeds", allProfiles, func(t *testing.T, pr profile) {
		pr.flow(t, f, f.agent("alice"), pr.request("extra", "foobar"))
	})

	each("oidcc-id-token-hint", allProfiles, func(t *testing.T, pr profile) {
		a := f.agent("alice")
		first := pr.flow(t, f, a, pr.request())
		f.env.Clock.Advance(5 * time.Second)
		req := pr.request("prompt", "none", "id_token_hint", first.raw)
		second := pr.finish(t, f, get(t, a, f.authorize(req)), req)
		if second.claims.AuthTime != first.claims.AuthTime || second.claims.Subject != first.claims.Subject {
			t.Errorf("auth_time %d then %d, sub %q then %q", first.claims.AuthTime, second.claims.AuthTime, first.claims.Subject, second.claims.Subject)
		}
	})

	each("oidcc-login-hint", allProfiles, func(t *testing.T, pr profile) {
		a := f.agent("alice")
		hint := "buffy@" + strings.TrimPrefix(f.env.URL, "http://")
		req := pr.request("login_hint", hint)
		page := get(t, a, get(t, a, f.authorize(req)).Location)
		if !isLoginPage(page) || !strings.Contains(page.Body, `value="`+hint+`"`) {
			t.Fatalf("sign-in page not pre-filled with %s:\n%s", hint, page.Body)
		}
		s := submitLogin(t, a, f.env, page, "alice") // the person corrects the username
		pr.finish(t, f, follow(t, a, s.Location), req)
	})

	each("oidcc-ui-locales", allProfiles, func(t *testing.T, pr profile) {
		pr.flow(t, f, f.agent("alice"), pr.request("ui_locales", "se"))
	})

	each("oidcc-claims-locales", allProfiles, func(t *testing.T, pr profile) {
		pr.flow(t, f, f.agent("alice"), pr.request("claims_locales", "se"))
	})

	each("oidcc-ensure-request-with-acr-values-succeeds", allProfiles, func(t *testing.T, pr profile) {
		r := pr.flow(t, f, f.agent("alice"), pr.request("acr_values", "1 2"))
		var c struct {
			ACR string `json:"acr"`
		}
		decodeClaims(t, r, &c)
		if c.ACR != "1" && c.ACR != "2" {
			t.Logf("acr %q is none of the requested values (a warning in the suite)", c.ACR)
		}
	})

	each("oidcc-claims-essential", allProfiles, func(t *testing.T, pr profile) {
		claims := `{"userinfo":{"name":{"essential":true}}}`
		if pr.name == implicitIDTok.name {
			claims = `{"id_token":{"name":{"essential":true}}}`
		}
		r := pr.flow(t, f, f.agent("alice"), pr.request("claims", claims))
		if c := r.userClaims(t, f); c["name"] != "Alice Liddell" {
			t.Logf("name not returned (a warning in the suite): %v", c)
		}
	})

	each("oidcc-ensure-request-with-valid-pkce-succeeds", codeProfiles, func(t *testing.T, pr profile) {
		pr.flow(t, f, f.agent("alice"), pr.request()) // web is confidential; PKCE offered and checked
	})

	each("oidcc-ensure-post-request-succeeds", allProfiles, func(t *testing.T, pr profile) {
		a := f.signedIn(t, "alice")
		req := pr.request()
		pr.finish(t, f, post(t, a, f.env.URL+"/authorize", req), req)
	})

	each("oidcc-alternate-happy-flow", allProfiles, func(t *testing.T, pr profile) {
		a := f.agent("alice")
		req := pr.request("scope", "email profile openid") // reversed
		// The parameters in another order than url.Values.Encode's.
		order := []string{"state", "scope", "nonce", "redirect_uri", "code_challenge_method", "response_mode", "response_type", "code_challenge", "client_id"}
		var parts []string
		for _, k := range order {
			if v, ok := req[k]; ok {
				parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(v[0]))
			}
		}
		if len(parts) != len(req) {
			t.Fatalf("order names %d of %d parameters", len(parts), len(req))
		}
		s := follow(t, a, f.env.URL+"/authorize?"+strings.Join(parts, "&"))
		r := pr.finish(t, f, s, req)
		if c := r.userClaims(t, f); c["email"] != "alice@example.com" || c["name"] != "Alice Liddell" {
			t.Errorf("claims: %v", c)
		}
	})

	each("oidcc-prompt-consent", []profile{basic, formpostBasic}, func(t *testing.T, pr profile) {
		a := f.agent("alice")
		pr.flow(t, f, a, pr.request()) // consent known now
		req := pr.request("prompt", "consent")
		page := get(t, a, f.authorize(req))
		f.outcome(t, page, req, want{kind: consent})
		pr.finish(t, f, decide(t, a, f.env, page, "allow"), req)
	})

	// Config profile: ID token signing.
	each("oidcc-idtoken-rs256", implicitOnly, func(t *testing.T, pr profile) {
		// imp registers id_token_signed_response_alg RS256.
		if r := pr.flow(t, f, f.agent("alice"), pr.request()); r.alg != "RS256" {
			t.Errorf("alg %s, want RS256", r.alg)
		}
	})
	each("oidcc-idtoken-signature", []profile{basic}, func(t *testing.T, pr profile) {
		// web registers no algorithm: RS256 is the default (OIDC Registration §2).
		if r := pr.flow(t, f, f.agent("alice"), pr.request()); r.alg != "RS256" {
			t.Errorf("alg %s, want RS256", r.alg)
		}
	})

	if !once {
		return
	}

	t.Run("oidcc-ensure-registered-redirect-uri", func(t *testing.T) {
		req := with(basic.request(), "redirect_uri", "https://conformance.example/test/a/castellan/callback")
		expectPage(t, get(t, f.agent("alice"), f.authorize(req)), req.Get("redirect_uri"))
	})

	t.Run("oidcc-ensure-redirect-uri-in-authorization-request", func(t *testing.T) {
		req := minus(basic.request(), "redirect_uri") // web registers two
		expectPage(t, get(t, f.agent("alice"), f.authorize(req)))
	})

	t.Run("oidcc-redirect-uri-query-OK", func(t *testing.T) {
		req := request("query")
		r := profile{name: "query", client: "query", mode: query}.flow(t, f, f.agent("alice"), req)
		if r.params.Get("code") == "" {
			t.Fatal("no code")
		}
	})

	t.Run("oidcc-redirect-uri-query-mismatch", func(t *testing.T) {
		req := with(request("query"), "redirect_uri", "https://q.example/cb?tenant=b")
		expectPage(t, get(t, f.agent("alice"), f.authorize(req)), req.Get("redirect_uri"))
	})

	t.Run("oidcc-redirect-uri-query-added", func(t *testing.T) {
		req := with(basic.request(), "redirect_uri", servertest.WebRedirect+"?foo=bar")
		expectPage(t, get(t, f.agent("alice"), f.authorize(req)), req.Get("redirect_uri"))
	})

	// The server neither uses the request object's redirect_uri nor shows an
	// error about it: request objects are refused (request_not_supported)
	// at the registered redirect_uri of the plain parameters.
	t.Run("oidcc-ensure-request-object-with-redirect-uri", func(t *testing.T) {
		obj := unsignedJWT(map[string]any{"client_id": "web", "redirect_uri": "https://web.example/other", "response_type": "code",
			"scope": "openid", "state": "st-web", "nonce": "n-web"})
		req := with(basic.request(), "request", obj)
		p := f.outcome(t, get(t, f.signedIn(t, "alice"), f.authorize(req)), req, want{kind: query, err: "request_not_supported"})
		if p.Get("code") != "" {
			t.Error("a code for a request object")
		}
	})

	t.Run("oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported", func(t *testing.T) {
		req := with(basic.request(), "request", unsignedJWT(map[string]any{"client_id": "web", "response_type": "code", "scope": "openid"}))
		f.outcome(t, get(t, f.signedIn(t, "alice"), f.authorize(req)), req, want{kind: query, err: "request_not_supported"})
	})

	t.Run("oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported", func(t *testing.T) {
		req := with(basic.request(), "request_uri", "https://conformance.example/requests/abc.jwt")
		f.outcome(t, get(t, f.signedIn(t, "alice"), f.authorize(req)), req, want{kind: query, err: "request_uri_not_supported"})
	})

	// Config profile: what discovery says about the authorization endpoint is
	// what it does.
	t.Run("oidcc-discovery-endpoint-verification/authorization-endpoint", func(t *testing.T) {
		resp, err := http.Get(f.env.URL + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var md map[string]json.RawMessage
		if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
			t.Fatal(err)
		}
		var endpoint string
		json.Unmarshal(md["authorization_endpoint"], &endpoint)
		if endpoint != f.env.URL+"/authorize" {
			t.Errorf("authorization_endpoint %q", endpoint)
		}
		for key, want := range map[string][]string{
			"response_types_supported":         {"code", "id_token", "id_token token", "token"},
			"response_modes_supported":         {"query", "fragment", "form_post", "web_message"},
			"code_challenge_methods_supported": {"S256"},
			"prompt_values_supported":          {"none", "login", "consent", "select_account"},
			"scopes_supported":                 {"openid", "profile", "email", "offline_access"},
		} {
			var got []string
			json.Unmarshal(md[key], &got)
			sort.Strings(got)
			sort.Strings(want)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("%s: got %q, want %q", key, got, want)
			}
		}
		for key, want := range map[string]bool{
			"request_parameter_supported":                    false,
			"request_uri_parameter_supported":                false, // must be explicit: its default is true
			"claims_parameter_supported":                     false,
			"authorization_response_iss_parameter_supported": true,
		} {
			var got *bool
			if json.Unmarshal(md[key], &got) != nil || got == nil || *got != want {
				t.Errorf("%s: got %s, want %v", key, md[key], want)
			}
		}
	})
}

// decodeClaims reads the (verified) ID token of a result into v.
func decodeClaims(t *testing.T, r result, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(r.raw, ".")[1])
	if err != nil || json.Unmarshal(b, v) != nil {
		t.Fatalf("ID token claims of %q", trim(r.raw))
	}
}

// unsignedJWT is a request object with alg none.
func unsignedJWT(claims map[string]any) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`))
	b, _ := json.Marshal(claims)
	return h + "." + base64.RawURLEncoding.EncodeToString(b) + "."
}
