package authorize_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
)

// TestImplicit covers the legacy implicit grant (opt-in per client): tokens in
// the fragment, an ID token bound to the nonce and the access token, never a
// refresh token; refused for clients that do not list it.
func TestImplicit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	a := f.signedIn(t, "alice")
	signedInAt := f.env.Clock.Now().Unix()

	t.Run("id_token-token/fragment", func(t *testing.T) {
		req := with(request("imp"), "scope", "openid profile email offline_access", "nonce", "n-0S6_WzA2Mj")
		p := f.outcome(t, get(t, a, f.authorize(req)), req, want{kind: fragment})
		expectKeys(t, p, "access_token", "expires_in", "id_token", "iss", "scope", "state", "token_type")
		if p.Get("token_type") != "Bearer" || p.Get("expires_in") != "3600" {
			t.Errorf("token_type %q expires_in %q, want Bearer and 3600", p.Get("token_type"), p.Get("expires_in"))
		}
		// OIDC Core §11: offline_access is ignored outside the code flow.
		if p.Get("scope") != "openid profile email" {
			t.Errorf("scope: got %q, want %q", p.Get("scope"), "openid profile email")
		}
		at := p.Get("access_token")
		c, alg := f.verifyID(t, "imp", p.Get("id_token"), at)
		if alg != "RS256" {
			t.Errorf("ID token alg %s, want RS256 (the client's id_token_signed_response_alg)", alg)
		}
		if c.Nonce != "n-0S6_WzA2Mj" || c.AtHash == "" || c.Azp != "imp" || c.AuthTime != signedInAt || c.SID == "" {
			t.Errorf("ID token claims: %+v", c)
		}
		// With an access token, the profile and email claims come from userinfo
		// (OIDC Core §5.4).
		if c.Email != "" || c.Name != "" {
			t.Errorf("ID token carries user claims %q %q next to an access token", c.Name, c.Email)
		}
		f.verifyAccessToken(t, at)
		if info := f.userinfo(t, at); info["email"] != "alice@example.com" || info["name"] != "Alice Liddell" || info["sub"] != c.Subject {
			t.Errorf("userinfo with the implicit access token: %v", info)
		}
	})

	t.Run("id_token/fragment-with-claims", func(t *testing.T) {
		req := with(request("imp"), "response_type", "id_token", "scope", "openid profile email")
		p := f.outcome(t, get(t, a, f.authorize(req)), req, want{kind: fragment})
		expectKeys(t, p, "id_token", "iss", "state")
		c, _ := f.verifyID(t, "imp", p.Get("id_token"), "")
		if c.Nonce != "n-imp" || c.AtHash != "" {
			t.Errorf("nonce %q at_hash %q, want n-imp and none", c.Nonce, c.AtHash)
		}
		// OIDC Core §5.4: with no access token the claims travel in the ID token.
		if c.Email != "alice@example.com" || c.Name != "Alice Liddell" {
			t.Errorf("ID token claims: name %q email %q", c.Name, c.Email)
		}
	})

	t.Run("token/fragment", func(t *testing.T) {
		req := with(request("imp"), "response_type", "token", "scope", "profile")
		p := f.outcome(t, get(t, a, f.authorize(req)), req, want{kind: fragment})
		expectKeys(t, p, "access_token", "expires_in", "iss", "scope", "state", "token_type")
		f.verifyAccessToken(t, p.Get("access_token"))
	})

	t.Run("never-a-refresh-token", func(t *testing.T) {
		for _, rt := range []string{"token", "id_token token", "token id_token"} {
			req := with(request("imp"), "response_type", rt, "scope", "openid offline_access", "prompt", "consent")
			p := f.outcome(t, get(t, a, f.authorize(req)), req, want{kind: fragment})
			if p.Get("refresh_token") != "" || p.Get("code") != "" || strings.Contains(p.Get("scope"), "offline_access") {
				t.Errorf("%s: %v", rt, p)
			}
		}
	})

	t.Run("new-tokens-each-time", func(t *testing.T) {
		req := request("imp")
		p1 := f.outcome(t, get(t, a, f.authorize(req)), req, want{kind: fragment})
		p2 := f.outcome(t, get(t, a, f.authorize(req)), req, want{kind: fragment})
		if p1.Get("access_token") == p2.Get("access_token") {
			t.Error("the same access token twice")
		}
	})

	t.Run("sign-in-then-fragment", func(t *testing.T) {
		b := f.agent("bob")
		req := request("imp")
		toLogin := get(t, b, f.authorize(req))
		f.outcome(t, toLogin, req, want{kind: login})
		p := f.outcome(t, f.signInAt(t, b, toLogin, "bob"), req, want{kind: fragment})
		c, _ := f.verifyID(t, "imp", p.Get("id_token"), p.Get("access_token"))
		if c.AuthTime != f.env.Clock.Now().Unix() || c.Nonce != "n-imp" {
			t.Errorf("ID token claims: %+v", c)
		}
	})

	t.Run("form_post", func(t *testing.T) {
		req := with(request("imp"), "response_mode", "form_post")
		p := f.outcome(t, get(t, a, f.authorize(req)), req, want{kind: formPost})
		expectKeys(t, p, "access_token", "expires_in", "id_token", "iss", "scope", "state", "token_type")
		f.verifyID(t, "imp", p.Get("id_token"), p.Get("access_token"))
	})

	t.Run("unauthorized_client-in-the-fragment", func(t *testing.T) {
		for _, client := range []string{"spa", "web", "native"} {
			for _, rt := range []string{"token", "id_token token", "id_token"} {
				req := with(request(client), "response_type", rt)
				f.outcome(t, get(t, a, f.authorize(req)), req, want{kind: fragment, err: "unauthorized_client"})
			}
		}
	})

	// OIDC Core §3.2.2.1 asks for a nonce when an ID token is returned;
	// RFC 6749 §4.2 has none: the legacy OAuth 2.0 implicit grant, an access
	// token alone, is answered without one.
	t.Run("nonce-only-with-an-id_token", func(t *testing.T) {
		for _, tc := range []struct {
			rt, scope string
			err       string
		}{
			{"id_token token", "openid profile", "invalid_request"},
			{"id_token", "openid profile", "invalid_request"},
			{"token", "openid profile", ""},
			{"token", "profile", ""},
		} {
			req := minus(with(request("imp"), "response_type", tc.rt, "scope", tc.scope), "nonce")
			p := f.outcome(t, get(t, a, f.authorize(req)), req, want{kind: fragment, err: tc.err})
			if tc.err == "" {
				expectKeys(t, p, "access_token", "expires_in", "iss", "scope", "state", "token_type")
			}
		}
	})

	t.Run("tokens-never-in-a-query", func(t *testing.T) {
		for _, rt := range []string{"token", "id_token token", "id_token"} {
			req := with(request("imp"), "response_type", rt, "response_mode", "query")
			f.outcome(t, get(t, a, f.authorize(req)), req, want{kind: fragment, err: "invalid_request"})
		}
	})

	t.Run("prompt-none-no-session-login_required-in-the-fragment", func(t *testing.T) {
		req := with(request("imp"), "prompt", "none")
		f.outcome(t, get(t, f.agent("alice"), f.authorize(req)), req, want{kind: fragment, err: "login_required"})
	})
}

// expectKeys checks the response has exactly these parameters.
func expectKeys(t *testing.T, p url.Values, keys ...string) {
	t.Helper()
	var got []string
	for k := range p {
		got = append(got, k)
	}
	sort.Strings(got)
	sort.Strings(keys)
	if strings.Join(got, " ") != strings.Join(keys, " ") {
		t.Errorf("response parameters: got %v, want %v", got, keys)
	}
}

// verifyAccessToken checks an access token's signature against the JWKS and
// its type (RFC 9068 at+jwt).
func (f *fixture) verifyAccessToken(t *testing.T, at string) {
	t.Helper()
	keys := oidc.NewRemoteKeySet(f.ctx, f.env.URL+"/jwks")
	if _, err := keys.VerifySignature(f.ctx, at); err != nil {
		t.Errorf("access token signature: %v", err)
	}
	if h := jwtHeader(t, at); h.Typ != "at+jwt" {
		t.Errorf("access token typ %q, want at+jwt", h.Typ)
	}
}

// userinfo calls the userinfo endpoint with an access token.
func (f *fixture) userinfo(t *testing.T, at string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.env.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+at)
	resp, err := f.env.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo: %d", resp.StatusCode)
	}
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return out
}
