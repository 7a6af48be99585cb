package token_test

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/mint"
	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// TestIntrospection is RFC 7662 (ADVERSARIAL 52, 53).
func TestIntrospection(t *testing.T) {
	f := newFixture(t)
	spa := f.tokens(t, servertest.Authz{})
	webTk := f.tokens(t, web("openid profile offline_access api:read"))
	introspect := func(c servertest.ClientAuth, token string) func(t *testing.T, f *fixture) servertest.Reply {
		return func(t *testing.T, f *fixture) servertest.Reply {
			return f.env.Post(t, "/introspect", url.Values{"token": {token}}, c)
		}
	}
	exactlyInactive := func(t *testing.T, f *fixture, r servertest.Reply) {
		if strings.TrimSpace(r.Body) != `{"active":false}` {
			t.Errorf("got %s, want exactly {\"active\":false}", r.Body)
		}
	}
	keys := func(want ...string) func(t *testing.T, f *fixture, r servertest.Reply) {
		return func(t *testing.T, f *fixture, r servertest.Reply) {
			var got []string
			for k := range r.JSON {
				got = append(got, k)
			}
			sort.Strings(got)
			sort.Strings(want)
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("members: got %v, want %v\n%s", got, want, r.Body)
			}
		}
	}
	cases := []tokenCase{
		{name: "adv52/no-client-authentication", send: introspect(servertest.NoClient, spa.AccessToken),
			status: 401, err: "invalid_client", header: basicChallenge},
		{name: "adv52/public-client", send: introspect(servertest.SPAClient, spa.AccessToken),
			status: 401, err: "invalid_client", header: basicChallenge},
		{name: "adv52/wrong-secret", send: introspect(servertest.ClientAuth{ID: "svc", Secret: servertest.WebSecret, Method: "client_secret_post"}, spa.AccessToken),
			status: 401, err: "invalid_client"},
		{name: "token-missing", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.env.Post(t, "/introspect", url.Values{}, servertest.SvcClient)
		}, status: 400, err: "invalid_request"},
		{name: "wrong-content-type", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.raw(t, "/introspect", "application/json", `{"token":"x"}`, servertest.BasicHeader("web", servertest.WebSecret))
		}, status: 400, err: "invalid_request"},
		{name: "access-token-fields", send: introspect(servertest.SvcClient, spa.AccessToken), status: 200,
			then: func(t *testing.T, f *fixture, r servertest.Reply) {
				keys("active", "scope", "client_id", "token_type", "exp", "iat", "nbf", "sub", "aud", "iss", "jti", "sid", "auth_time")(t, f, r)
				at := servertest.Claims(spa.AccessToken)
				if r.JSON["active"] != true || r.Str("token_type") != "Bearer" || r.Str("client_id") != "spa" ||
					r.Str("scope") != "openid profile email offline_access" || r.Str("iss") != f.env.URL || r.Str("aud") != f.env.URL {
					t.Errorf("introspection: %s", r.Body)
				}
				for _, k := range []string{"sub", "exp", "iat", "jti", "sid", "auth_time"} {
					if r.JSON[k] != at[k] {
						t.Errorf("%s: got %v, want the token's %v", k, r.JSON[k], at[k])
					}
				}
			}},
		{name: "refresh-token-fields", send: introspect(servertest.WebClient, webTk.RefreshToken), status: 200,
			then: func(t *testing.T, f *fixture, r servertest.Reply) {
				keys("active", "scope", "client_id", "token_type", "exp", "iat", "sub", "iss", "sid", "auth_time")(t, f, r)
				at := servertest.Claims(webTk.AccessToken)
				if r.JSON["active"] != true || r.Str("token_type") != "refresh_token" || r.Str("client_id") != "web" ||
					r.Str("scope") != "openid profile offline_access api:read" || r.Str("iss") != f.env.URL ||
					r.JSON["sub"] != at["sub"] || r.JSON["sid"] != at["sid"] || r.JSON["auth_time"] != at["auth_time"] {
					t.Errorf("introspection: %s", r.Body)
				}
				wantExp := float64(f.env.Clock.Now().Add(f.env.Config.Tokens.RefreshTokenIdleTTL.D()).Unix())
				if r.JSON["exp"] != wantExp {
					t.Errorf("exp: got %v, want the idle expiry %v", r.JSON["exp"], wantExp)
				}
			}},
		{name: "client-credentials-token-fields", send: func(t *testing.T, f *fixture) servertest.Reply {
			tk := mustToken(t, f.token(t, form("grant_type", "client_credentials"), servertest.SvcClient))
			return f.env.Post(t, "/introspect", url.Values{"token": {tk.AccessToken}}, servertest.WebClient)
		}, status: 200, then: func(t *testing.T, f *fixture, r servertest.Reply) {
			keys("active", "scope", "client_id", "token_type", "exp", "iat", "nbf", "sub", "aud", "iss", "jti")(t, f, r)
			if r.Str("sub") != "svc" || r.Str("client_id") != "svc" {
				t.Errorf("introspection: %s", r.Body)
			}
		}},
		{name: "token-type-hint-is-only-a-hint", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.env.Post(t, "/introspect", url.Values{"token": {webTk.RefreshToken}, "token_type_hint": {"access_token"}}, servertest.WebClient)
		}, status: 200, then: func(t *testing.T, f *fixture, r servertest.Reply) {
			if r.JSON["active"] != true {
				t.Errorf("got %s", r.Body)
			}
		}},
		{name: "refresh-token-of-another-client", send: introspect(servertest.SvcClient, webTk.RefreshToken), status: 200, then: exactlyInactive},
		{name: "public-clients-refresh-token", send: introspect(servertest.WebClient, spa.RefreshToken), status: 200, then: exactlyInactive},
		{name: "adv53/unknown-token", send: introspect(servertest.SvcClient, opaque.New()), status: 200, then: exactlyInactive},
		{name: "adv53/garbage", send: introspect(servertest.SvcClient, "not a token"), status: 200, then: exactlyInactive},
		{name: "adv53/id-token", send: introspect(servertest.SvcClient, spa.IDToken), status: 200, then: exactlyInactive},
		{name: "adv53/code", send: func(t *testing.T, f *fixture) servertest.Reply {
			code, _ := f.code(t, servertest.Authz{})
			return f.env.Post(t, "/introspect", url.Values{"token": {code}}, servertest.SvcClient)
		}, status: 200, then: exactlyInactive},
		{name: "adv53/revoked-access-token", send: func(t *testing.T, f *fixture) servertest.Reply {
			tk := f.tokens(t, servertest.Authz{})
			revoke(t, f.env, servertest.SPAClient, tk.AccessToken)
			return f.env.Post(t, "/introspect", url.Values{"token": {tk.AccessToken}}, servertest.SvcClient)
		}, status: 200, then: exactlyInactive},
		{name: "adv53/rotated-out-refresh-token", send: func(t *testing.T, f *fixture) servertest.Reply {
			// A rotating confidential client's refresh token, so that its own client can ask.
			tk := f.tokens(t, servertest.Authz{Client: rotating, RedirectURI: servertest.WebRedirect})
			mustToken(t, f.env.Refresh(t, rotating, tk.RefreshToken, ""))
			return f.env.Post(t, "/introspect", url.Values{"token": {tk.RefreshToken}}, rotating)
		}, status: 200, then: exactlyInactive},
		{name: "adv53/logout-token", send: func(t *testing.T, f *fixture) servertest.Reply {
			lt, err := f.env.Server.Mint.Sign("ES256", mint.TypeLogoutToken, map[string]any{"iss": f.env.URL, "sub": "x", "aud": "spa",
				"iat": f.env.Clock.Now().Unix(), "exp": f.env.Clock.Now().Add(time.Minute).Unix(), "jti": opaque.ID(),
				"client_id": "spa", "events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}})
			if err != nil {
				t.Fatal(err)
			}
			return f.env.Post(t, "/introspect", url.Values{"token": {lt}}, servertest.SvcClient)
		}, status: 200, then: exactlyInactive},
	}
	for name, bad := range mutations(spa.AccessToken) {
		cases = append(cases, tokenCase{name: "adv53/access-token-" + name, send: introspect(servertest.SvcClient, bad), status: 200, then: exactlyInactive})
	}
	for name, bad := range mutations(webTk.RefreshToken) {
		cases = append(cases, tokenCase{name: "adv53/refresh-token-" + name, send: introspect(servertest.WebClient, bad), status: 200, then: exactlyInactive})
	}
	// A JWT whose signature is cut short, or whose payload is swapped.
	parts := strings.Split(spa.AccessToken, ".")
	cases = append(cases,
		tokenCase{name: "adv53/access-token-signature-truncated", send: introspect(servertest.SvcClient, parts[0]+"."+parts[1]+"."+parts[2][:len(parts[2])-2]), status: 200, then: exactlyInactive},
		tokenCase{name: "adv53/access-token-no-signature", send: introspect(servertest.SvcClient, parts[0]+"."+parts[1]+"."), status: 200, then: exactlyInactive},
		tokenCase{name: "adv53/access-token-payload-of-another", send: introspect(servertest.SvcClient,
			parts[0]+"."+strings.Split(webTk.AccessToken, ".")[1]+"."+parts[2]), status: 200, then: exactlyInactive},
	)
	runTokenCases(t, f, cases)
}

// TestIntrospectionOfExpiredToken: an access token past its exp is inactive
// (ADVERSARIAL 53).
func TestIntrospectionOfExpiredToken(t *testing.T) {
	// The session outlives the token: a token naming an ended session is
	// inactive anyway (TestIntrospectionInactiveAfterSessionEnds).
	f := newFixture(t, func(cfg *config.Config) { cfg.Session.IdleTimeout = config.Duration(2 * time.Hour) })
	tk := f.tokens(t, web("openid offline_access"))
	f.env.Clock.Advance(time.Hour - time.Second)
	if !f.env.Active(t, tk.AccessToken) {
		t.Fatal("access token inactive before its exp")
	}
	f.env.Clock.Advance(time.Second)
	inactive(t, f.env, servertest.SvcClient, tk.AccessToken)
}

// TestIntrospectionInactiveAfterSessionEnds: once the person signs out, every
// access token issued in the session is inactive at introspection, whatever
// its grant: a session-bound one, a confidential client's without
// offline_access, and an offline grant's, which names the ended sid. The
// offline grant itself outlives the session: its refresh token is active
// and works, without naming the ended session, and what it issues then
// names no session either (no sid in the access or ID token), so it is
// active.
func TestIntrospectionInactiveAfterSessionEnds(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name  string
		authz servertest.Authz
	}{
		{"public-session-bound", servertest.Authz{}},
		{"confidential-session-bound", web("openid profile")},
		{"confidential-offline", web("openid offline_access")},
	}
	issued := make([]servertest.Tokens, len(cases))
	for i, c := range cases {
		issued[i] = f.tokens(t, c.authz)
		if !f.env.Active(t, issued[i].AccessToken) || servertest.Claims(issued[i].AccessToken)["sid"] == nil {
			t.Fatalf("%s: access token inactive, or without sid, before sign-out", c.name)
		}
	}
	f.env.SignOut(t, f.alice)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inactive(t, f.env, servertest.SvcClient, issued[i].AccessToken)
		})
	}
	t.Run("offline-refresh-token", func(t *testing.T) {
		r := f.env.Introspect(t, servertest.WebClient, issued[2].RefreshToken)
		if r.JSON["active"] != true || r.JSON["sid"] != nil {
			t.Errorf("the offline grant's refresh token after sign-out: %s, want active and no sid", r.Body)
		}
	})
	t.Run("offline-refreshed-after-sign-out", func(t *testing.T) {
		tk := mustToken(t, f.env.Refresh(t, servertest.WebClient, issued[2].RefreshToken, ""))
		if sid, ok := servertest.Claims(tk.AccessToken)["sid"]; ok {
			t.Errorf("access token refreshed after the session ended names sid %v", sid)
		}
		if sid, ok := servertest.Claims(tk.IDToken)["sid"]; ok || tk.IDToken == "" {
			t.Errorf("ID token refreshed after the session ended: sid %v (present %v), id_token %v", sid, ok, tk.IDToken != "")
		}
		if !f.env.Active(t, tk.AccessToken) {
			t.Error("the offline grant's new access token is inactive")
		}
	})
}

func revoke(t testing.TB, env *servertest.Env, c servertest.ClientAuth, token string) {
	t.Helper()
	r := env.Post(t, "/revoke", url.Values{"token": {token}}, c)
	checkReply(t, r, http.StatusOK, "")
}

// TestRevocation is RFC 7009 (ADVERSARIAL 54, 55).
func TestRevocation(t *testing.T) {
	f := newFixture(t)
	var tk servertest.Tokens
	revokeAs := func(c servertest.ClientAuth, a servertest.Authz, which func(servertest.Tokens) string) func(t *testing.T, f *fixture) servertest.Reply {
		return func(t *testing.T, f *fixture) servertest.Reply {
			tk = f.tokens(t, a)
			return f.env.Post(t, "/revoke", url.Values{"token": {which(tk)}}, c)
		}
	}
	refreshOf := func(tk servertest.Tokens) string { return tk.RefreshToken }
	accessOf := func(tk servertest.Tokens) string { return tk.AccessToken }
	webAll := web("openid offline_access api:read")
	cases := []tokenCase{
		{name: "adv55/refresh-token-ends-family", send: revokeAs(servertest.SPAClient, servertest.Authz{}, refreshOf), status: 200,
			then: func(t *testing.T, f *fixture, r servertest.Reply) {
				if r.Body != "" {
					t.Errorf("revocation body %q, want empty", r.Body)
				}
				checkReply(t, f.env.Refresh(t, servertest.SPAClient, tk.RefreshToken, ""), 400, "invalid_grant")
				inactive(t, f.env, servertest.SvcClient, tk.AccessToken)
			}},
		{name: "adv55/rotated-refresh-token-ends-family", send: func(t *testing.T, f *fixture) servertest.Reply {
			first := f.tokens(t, servertest.Authz{})
			tk = mustToken(t, f.env.Refresh(t, servertest.SPAClient, first.RefreshToken, ""))
			return f.env.Post(t, "/revoke", url.Values{"token": {first.RefreshToken}}, servertest.SPAClient)
		}, status: 200, then: func(t *testing.T, f *fixture, r servertest.Reply) {
			checkReply(t, f.env.Refresh(t, servertest.SPAClient, tk.RefreshToken, ""), 400, "invalid_grant")
			inactive(t, f.env, servertest.SvcClient, tk.AccessToken)
		}},
		{name: "adv55/confidential-refresh-token", send: revokeAs(servertest.WebClient, webAll, refreshOf), status: 200,
			then: func(t *testing.T, f *fixture, r servertest.Reply) {
				inactive(t, f.env, servertest.WebClient, tk.RefreshToken)
				inactive(t, f.env, servertest.SvcClient, tk.AccessToken)
			}},
		{name: "access-token-alone", send: revokeAs(servertest.SPAClient, servertest.Authz{}, accessOf), status: 200,
			then: func(t *testing.T, f *fixture, r servertest.Reply) {
				inactive(t, f.env, servertest.SvcClient, tk.AccessToken)
				if u := f.env.Userinfo(t, http.MethodGet, tk.AccessToken); u.Status != 401 {
					t.Errorf("userinfo with a revoked access token: %d", u.Status)
				}
				// The grant lives on: the refresh token still works.
				next := mustToken(t, f.env.Refresh(t, servertest.SPAClient, tk.RefreshToken, ""))
				if !f.env.Active(t, next.AccessToken) {
					t.Error("new access token inactive")
				}
			}},
		{name: "access-token-twice", send: func(t *testing.T, f *fixture) servertest.Reply {
			tk = f.tokens(t, servertest.Authz{})
			revoke(t, f.env, servertest.SPAClient, tk.AccessToken)
			return f.env.Post(t, "/revoke", url.Values{"token": {tk.AccessToken}}, servertest.SPAClient)
		}, status: 200},
		{name: "token-type-hint-is-only-a-hint", send: func(t *testing.T, f *fixture) servertest.Reply {
			tk = f.tokens(t, servertest.Authz{})
			return f.env.Post(t, "/revoke", url.Values{"token": {tk.RefreshToken}, "token_type_hint": {"access_token"}}, servertest.SPAClient)
		}, status: 200, then: func(t *testing.T, f *fixture, r servertest.Reply) {
			checkReply(t, f.env.Refresh(t, servertest.SPAClient, tk.RefreshToken, ""), 400, "invalid_grant")
		}},
		{name: "unsupported-token-type-hint-ignored", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.env.Post(t, "/revoke", url.Values{"token": {opaque.New()}, "token_type_hint": {"something"}}, servertest.SPAClient)
		}, status: 200},
		{name: "adv54/other-client-revokes-refresh-token", send: revokeAs(servertest.SvcClient, webAll, refreshOf), status: 200,
			then: func(t *testing.T, f *fixture, r servertest.Reply) {
				mustToken(t, f.env.Refresh(t, servertest.WebClient, tk.RefreshToken, ""))
				if !f.env.Active(t, tk.AccessToken) {
					t.Error("another client's revocation reached the access token")
				}
			}},
		{name: "adv54/other-client-revokes-public-refresh-token", send: revokeAs(servertest.WebClient, servertest.Authz{}, refreshOf), status: 200,
			then: func(t *testing.T, f *fixture, r servertest.Reply) {
				mustToken(t, f.env.Refresh(t, servertest.SPAClient, tk.RefreshToken, ""))
			}},
		{name: "adv54/other-client-revokes-access-token", send: revokeAs(servertest.SvcClient, servertest.Authz{}, accessOf), status: 200,
			then: func(t *testing.T, f *fixture, r servertest.Reply) {
				if !f.env.Active(t, tk.AccessToken) {
					t.Error("another client revoked the access token")
				}
			}},
		{name: "unknown-token", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.env.Post(t, "/revoke", url.Values{"token": {opaque.New()}}, servertest.SPAClient)
		}, status: 200},
		{name: "adv40/truncated-refresh-token-leaves-real-one", send: func(t *testing.T, f *fixture) servertest.Reply {
			tk = f.tokens(t, servertest.Authz{})
			for _, bad := range mutations(tk.RefreshToken) {
				revoke(t, f.env, servertest.SPAClient, bad)
			}
			return f.env.Post(t, "/revoke", url.Values{"token": {tk.AccessToken[:len(tk.AccessToken)-3]}}, servertest.SPAClient)
		}, status: 200, then: func(t *testing.T, f *fixture, r servertest.Reply) {
			if !f.env.Active(t, tk.AccessToken) {
				t.Error("a truncated access token revoked the real one")
			}
			mustToken(t, f.env.Refresh(t, servertest.SPAClient, tk.RefreshToken, ""))
		}},
		{name: "token-missing", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.env.Post(t, "/revoke", url.Values{}, servertest.SPAClient)
		}, status: 400, err: "invalid_request"},
		{name: "no-client-identification", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.env.Post(t, "/revoke", url.Values{"token": {opaque.New()}}, servertest.NoClient)
		}, status: 401, err: "invalid_client", header: basicChallenge},
		{name: "confidential-client-without-secret", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.env.Post(t, "/revoke", url.Values{"token": {opaque.New()}}, servertest.ClientAuth{ID: "web", Method: "none"})
		}, status: 401, err: "invalid_client"},
		{name: "wrong-secret", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.env.Post(t, "/revoke", url.Values{"token": {opaque.New()}}, servertest.ClientAuth{ID: "web", Secret: "nope", Method: "client_secret_basic"})
		}, status: 401, err: "invalid_client"},
	}
	runTokenCases(t, f, cases)
}

// TestRevocationStorageFailure: when storage fails, revocation answers 5xx,
// never a 200 that would tell the client its token is dead (ADVERSARIAL 56).
func TestRevocationStorageFailure(t *testing.T) {
	f := newFixture(t)
	tk := f.tokens(t, servertest.Authz{})
	if err := f.env.Store.Close(); err != nil {
		t.Fatal(err)
	}
	for name, token := range map[string]string{"refresh-token": tk.RefreshToken, "access-token": tk.AccessToken} {
		t.Run("adv56/"+name, func(t *testing.T) {
			r := f.env.Post(t, "/revoke", url.Values{"token": {token}}, servertest.SPAClient)
			if r.Status < 500 || r.Code() != "server_error" {
				t.Fatalf("got %d %s, want 5xx server_error", r.Status, r.Body)
			}
			if r.Header.Get("Cache-Control") != "no-store" || strings.Contains(r.Body, "sqlite") {
				t.Errorf("error answer %v %s", r.Header, r.Body)
			}
		})
	}
}
