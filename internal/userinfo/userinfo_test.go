package userinfo_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/jwstest"
	"github.com/castellan-auth/castellan/internal/mint"
	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// call is one request to the userinfo endpoint.
type call struct {
	method string
	query  string      // raw query
	header http.Header // request headers
	body   string      // form body (Content-Type form-urlencoded when set)
}

type reply struct {
	status int
	header http.Header
	body   string
	json   map[string]any
}

func do(t *testing.T, env *servertest.Env, c call) reply {
	t.Helper()
	u := env.URL + "/userinfo"
	if c.query != "" {
		u += "?" + c.query
	}
	req, err := http.NewRequest(c.method, u, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := env.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
	json.Unmarshal(b, &r.json)
	return r
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// challenge is the WWW-Authenticate header of an RFC 6750 §3 error.
func challenge(code string) string {
	if code == "" {
		return `Bearer realm="castellan"`
	}
	return `Bearer realm="castellan", error="` + code + `"`
}

func keysOf(m map[string]any) string {
	var k []string
	for key := range m {
		k = append(k, key)
	}
	sort.Strings(k)
	return strings.Join(k, " ")
}

// fixture has alice signed in to the spa client.
type fixture struct {
	env   *servertest.Env
	alice *servertest.Agent
}

func newFixture(t *testing.T, adjust ...func(*config.Config)) *fixture {
	cfg := servertest.WithClients(servertest.Config())
	for _, f := range adjust {
		f(cfg)
	}
	env := servertest.New(t, servertest.Options{Config: cfg})
	return &fixture{env: env, alice: env.Agent("alice")}
}

func (f *fixture) token(t *testing.T, scope string) servertest.Tokens {
	t.Helper()
	a := servertest.Authz{Scope: scope}
	if !strings.Contains(scope, "openid") {
		a.OmitRedirect = true
	}
	return f.env.CodeFlow(t, f.alice, a)
}

// foreignToken is an access token in Castellan's shape signed by a key
// Castellan does not know.
func foreignToken(t *testing.T, env *servertest.Env) string {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := env.Clock.Now()
	claims := map[string]any{"iss": env.URL, "sub": "x", "aud": env.URL, "client_id": "spa", "scope": "openid",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": opaque.ID()}
	return jwstest.SignClaims(t, jose.ES256, jose.JSONWebKey{Key: k, KeyID: "foreign"}, (&jose.SignerOptions{}).WithType("at+jwt"), claims)
}

// TestUserinfo is OIDC Core §5.3 with RFC 6750 bearer tokens (ADVERSARIAL 48–50).
func TestUserinfo(t *testing.T) {
	f := newFixture(t)
	all := f.token(t, "openid profile email offline_access")
	ctx := context.Background()
	enc := base64.RawURLEncoding.EncodeToString

	type tc struct {
		name      string
		call      func(t *testing.T) call
		status    int
		challenge string // exact WWW-Authenticate prefix ("" for none)
		keys      string // exact claim names of a 200 answer
		then      func(t *testing.T, r reply)
	}
	withToken := func(tok func(t *testing.T) string) func(t *testing.T) call {
		return func(t *testing.T) call { return call{method: http.MethodGet, header: bearer(tok(t))} }
	}
	fixed := func(s string) func(t *testing.T) string { return func(*testing.T) string { return s } }
	scoped := func(scope string) func(t *testing.T) string {
		return func(t *testing.T) string { return f.token(t, scope).AccessToken }
	}
	profileKeys := "family_name given_name name preferred_username sub updated_at"
	cases := []tc{
		{name: "get", call: withToken(fixed(all.AccessToken)), status: 200,
			keys: "email email_verified " + profileKeys,
			then: func(t *testing.T, r reply) {
				if r.json["sub"] != servertest.Claims(all.IDToken)["sub"] || r.json["email"] != "alice@example.com" ||
					r.json["email_verified"] != true || r.json["name"] != "Alice Liddell" || r.json["preferred_username"] != "alice" {
					t.Errorf("claims: %s", r.body)
				}
				if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Content-Type") != "application/json" {
					t.Errorf("headers: %v", r.header)
				}
			}},
		{name: "post-header", call: func(*testing.T) call { return call{method: http.MethodPost, header: bearer(all.AccessToken)} },
			status: 200, keys: "email email_verified " + profileKeys},
		{name: "post-header-with-empty-form", call: func(*testing.T) call {
			return call{method: http.MethodPost, header: bearer(all.AccessToken), body: "x=1"}
		}, status: 200, keys: "email email_verified " + profileKeys},
		{name: "scheme-case-insensitive", call: func(*testing.T) call {
			return call{method: http.MethodGet, header: http.Header{"Authorization": {"bearer " + all.AccessToken}}}
		}, status: 200, keys: "email email_verified " + profileKeys},
		{name: "claims/openid-only", call: withToken(scoped("openid")), status: 200, keys: "sub"},
		{name: "claims/profile-only", call: withToken(scoped("openid profile")), status: 200, keys: profileKeys},
		{name: "claims/email-only", call: withToken(scoped("openid email")), status: 200, keys: "email email_verified sub"},
		{name: "insufficient-scope/no-openid", call: withToken(scoped("profile email")), status: 403, challenge: challenge("insufficient_scope")},
		{name: "insufficient-scope/client-credentials", call: withToken(func(t *testing.T) string {
			r := f.env.Post(t, "/token", url.Values{"grant_type": {"client_credentials"}}, servertest.SvcClient)
			return r.Tokens().AccessToken
		}), status: 403, challenge: challenge("insufficient_scope")},

		{name: "adv48/no-token", call: func(*testing.T) call { return call{method: http.MethodGet} }, status: 401, challenge: challenge(""),
			then: func(t *testing.T, r reply) {
				// §3.1: no error code when the request has no authentication at all.
				if r.header.Get("WWW-Authenticate") != challenge("") || r.json["error"] != nil {
					t.Errorf("want a bare challenge, got %q %s", r.header.Get("WWW-Authenticate"), r.body)
				}
			}},
		{name: "adv48/other-scheme", call: func(*testing.T) call {
			return call{method: http.MethodGet, header: http.Header{"Authorization": {servertest.BasicHeader("spa", "x")}}}
		}, status: 401, challenge: challenge(""), then: func(t *testing.T, r reply) {
			if r.header.Get("WWW-Authenticate") != challenge("") {
				t.Errorf("want a bare challenge, got %q", r.header.Get("WWW-Authenticate"))
			}
		}},
		{name: "adv48/bearer-without-token", call: func(*testing.T) call {
			return call{method: http.MethodGet, header: http.Header{"Authorization": {"Bearer "}}}
		}, status: 400, challenge: challenge("invalid_request")},
		{name: "adv48/bearer-with-two-tokens", call: func(*testing.T) call {
			return call{method: http.MethodGet, header: http.Header{"Authorization": {"Bearer " + all.AccessToken + " " + all.AccessToken}}}
		}, status: 400, challenge: challenge("invalid_request")},
		{name: "adv48/two-authorization-headers", call: func(*testing.T) call {
			return call{method: http.MethodGet, header: http.Header{"Authorization": {"Bearer " + all.AccessToken, "Bearer " + all.AccessToken}}}
		}, status: 400, challenge: challenge("invalid_request")},
		{name: "adv48/garbage-token", call: withToken(fixed("not-a-token")), status: 401, challenge: challenge("invalid_token")},
		{name: "adv48/opaque-token", call: withToken(fixed(opaque.New())), status: 401, challenge: challenge("invalid_token")},
		{name: "adv48/refresh-token", call: withToken(fixed(all.RefreshToken)), status: 401, challenge: challenge("invalid_token")},
		{name: "adv48/truncated-token", call: withToken(fixed(all.AccessToken[:len(all.AccessToken)-1])), status: 401, challenge: challenge("invalid_token")},
		{name: "adv48/padded-token", call: withToken(fixed(all.AccessToken + "A")), status: 401, challenge: challenge("invalid_token")},
		{name: "adv48/padded-equals-token", call: withToken(fixed(all.AccessToken + "=")), status: 401, challenge: challenge("invalid_token")},
		{name: "adv48/foreign-signature", call: withToken(func(t *testing.T) string { return foreignToken(t, f.env) }),
			status: 401, challenge: challenge("invalid_token")},
		{name: "adv48/alg-none", call: withToken(func(t *testing.T) string {
			p := strings.Split(all.AccessToken, ".")[1]
			return enc([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + p + "."
		}), status: 401, challenge: challenge("invalid_token")},
		{name: "adv48/revoked-access-token", call: withToken(func(t *testing.T) string {
			tk := f.token(t, "openid profile offline_access")
			f.env.Post(t, "/revoke", url.Values{"token": {tk.AccessToken}}, servertest.SPAClient)
			return tk.AccessToken
		}), status: 401, challenge: challenge("invalid_token")},
		{name: "adv48/revoked-grant", call: withToken(func(t *testing.T) string {
			tk := f.token(t, "openid profile offline_access")
			f.env.Post(t, "/revoke", url.Values{"token": {tk.RefreshToken}}, servertest.SPAClient)
			return tk.AccessToken
		}), status: 401, challenge: challenge("invalid_token")},
		{name: "adv49/id-token-as-access-token", call: withToken(fixed(all.IDToken)), status: 401, challenge: challenge("invalid_token")},
		{name: "adv49/logout-token-as-access-token", call: withToken(func(t *testing.T) string {
			now := f.env.Clock.Now()
			lt, err := f.env.Server.Mint.Sign("ES256", mint.TypeLogoutToken, map[string]any{"iss": f.env.URL, "sub": "x", "aud": "spa",
				"client_id": "spa", "scope": "openid", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": opaque.ID(),
				"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}})
			if err != nil {
				t.Fatal(err)
			}
			return lt
		}), status: 401, challenge: challenge("invalid_token")},
		{name: "adv49/dpop-bound-token-as-bearer", call: withToken(func(t *testing.T) string {
			c := servertest.Claims(all.AccessToken)
			now := f.env.Clock.Now()
			tok, _, err := f.env.Server.Mint.NewAccess(mint.AccessParams{ClientID: "spa", Subject: c["sub"].(string), Scopes: []string{"openid"},
				GrantID: c["grant"].(string), SID: c["sid"].(string), IssuedAt: now, Expiry: now.Add(time.Hour), JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"})
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}), status: 401, challenge: challenge("invalid_token")},
		{name: "adv50/token-in-query", call: func(*testing.T) call {
			return call{method: http.MethodGet, query: "access_token=" + all.AccessToken}
		}, status: 400, challenge: challenge("invalid_request")},
		{name: "adv50/token-in-query-and-header", call: func(*testing.T) call {
			return call{method: http.MethodGet, query: "access_token=" + all.AccessToken, header: bearer(all.AccessToken)}
		}, status: 400, challenge: challenge("invalid_request")},
		{name: "adv50/token-in-query-of-post", call: func(*testing.T) call {
			return call{method: http.MethodPost, query: "access_token=" + all.AccessToken}
		}, status: 400, challenge: challenge("invalid_request")},
		{name: "adv50/token-in-form-body", call: func(*testing.T) call {
			return call{method: http.MethodPost, body: "access_token=" + all.AccessToken}
		}, status: 400, challenge: challenge("invalid_request")},
		{name: "adv50/token-in-form-body-and-header", call: func(*testing.T) call {
			return call{method: http.MethodPost, body: "access_token=" + all.AccessToken, header: bearer(all.AccessToken)}
		}, status: 400, challenge: challenge("invalid_request")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, f.env, c.call(t))
			if r.status != c.status {
				t.Fatalf("status: got %d, want %d\n%v %s", r.status, c.status, r.header, r.body)
			}
			got := r.header.Get("WWW-Authenticate")
			if c.challenge == "" && got != "" || !strings.HasPrefix(got, c.challenge) {
				t.Errorf("WWW-Authenticate: got %q, want %q…", got, c.challenge)
			}
			if r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control: %q", r.header.Get("Cache-Control"))
			}
			if c.status == 200 && keysOf(r.json) != c.keys {
				t.Errorf("claims: got %q, want %q\n%s", keysOf(r.json), c.keys, r.body)
			}
			if c.status != 200 && c.challenge != challenge("") {
				// The body repeats the error code of the challenge.
				if code, _ := r.json["error"].(string); !strings.Contains(c.challenge, `"`+code+`"`) {
					t.Errorf("body error %q does not match the challenge %q", code, c.challenge)
				}
			}
			if c.then != nil {
				c.then(t, r)
			}
		})
	}

	t.Run("adv48/user-disabled", func(t *testing.T) {
		tk := f.token(t, "openid profile")
		u, err := f.env.Store.GetUserByUsername(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.env.Store.DisableUser(ctx, u.ID, f.env.Clock.Now()); err != nil {
			t.Fatal(err)
		}
		if r := do(t, f.env, call{method: http.MethodGet, header: bearer(tk.AccessToken)}); r.status != 401 ||
			!strings.HasPrefix(r.header.Get("WWW-Authenticate"), challenge("invalid_token")) {
			t.Fatalf("got %d %q", r.status, r.header.Get("WWW-Authenticate"))
		}
	})
}

// TestUserinfoExpiry: a token is good until its exp and not at it (ADVERSARIAL 48).
func TestUserinfoExpiry(t *testing.T) {
	// The session outlives the token: a token naming an ended session is
	// refused anyway (TestUserinfoInactiveAfterSessionEnds).
	f := newFixture(t, func(cfg *config.Config) { cfg.Session.IdleTimeout = config.Duration(2 * time.Hour) })
	tk := f.env.CodeFlow(t, f.alice, servertest.Authz{Client: servertest.WebClient, Scope: "openid offline_access"})
	f.env.Clock.Advance(time.Hour - time.Second)
	if r := do(t, f.env, call{method: http.MethodGet, header: bearer(tk.AccessToken)}); r.status != 200 {
		t.Fatalf("before exp: %d %s", r.status, r.body)
	}
	f.env.Clock.Advance(time.Second)
	r := do(t, f.env, call{method: http.MethodGet, header: bearer(tk.AccessToken)})
	if r.status != 401 || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), challenge("invalid_token")) {
		t.Fatalf("at exp: %d %q", r.status, r.header.Get("WWW-Authenticate"))
	}
}

// TestUserinfoEndsWithSession: the access token of a session-bound grant is
// refused once the person signs out (ADVERSARIAL 48, 61).
func TestUserinfoEndsWithSession(t *testing.T) {
	f := newFixture(t)
	tk := f.token(t, "openid profile")
	if r := do(t, f.env, call{method: http.MethodGet, header: bearer(tk.AccessToken)}); r.status != 200 {
		t.Fatalf("before sign-out: %d", r.status)
	}
	f.env.SignOut(t, f.alice)
	if r := do(t, f.env, call{method: http.MethodGet, header: bearer(tk.AccessToken)}); r.status != 401 {
		t.Fatalf("after sign-out: %d", r.status)
	}
}

// TestUserinfoInactiveAfterSessionEnds: the access token of an offline grant
// names the session it was issued in and is refused once that session ends,
// like any other; the grant outlives the session, and the access token it
// issues afterwards names none and is accepted.
func TestUserinfoInactiveAfterSessionEnds(t *testing.T) {
	f := newFixture(t)
	tk := f.env.CodeFlow(t, f.alice, servertest.Authz{Client: servertest.WebClient, Scope: "openid profile offline_access"})
	if r := do(t, f.env, call{method: http.MethodGet, header: bearer(tk.AccessToken)}); r.status != 200 {
		t.Fatalf("before sign-out: %d %s", r.status, r.body)
	}
	f.env.SignOut(t, f.alice)
	r := do(t, f.env, call{method: http.MethodGet, header: bearer(tk.AccessToken)})
	if r.status != 401 || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), challenge("invalid_token")) {
		t.Fatalf("offline grant's access token after sign-out: %d %q, want 401 invalid_token", r.status, r.header.Get("WWW-Authenticate"))
	}
	next := f.env.Refresh(t, servertest.WebClient, tk.RefreshToken, "").Tokens()
	if next.AccessToken == "" {
		t.Fatal("the offline grant did not refresh after sign-out")
	}
	if r := do(t, f.env, call{method: http.MethodGet, header: bearer(next.AccessToken)}); r.status != 200 {
		t.Fatalf("access token refreshed after sign-out: %d %s, want 200", r.status, r.body)
	}
}
