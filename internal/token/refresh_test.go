package token_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// TestRefreshTokenGrant is grant_type=refresh_token (RFC 6749 §6, OAuth 2.1
// §4.3; ADVERSARIAL 35, 37, 38).
func TestRefreshTokenGrant(t *testing.T) {
	// Reuse is detected at once: no grace (TestConcurrentRefresh has it).
	f := newFixture(t, func(cfg *config.Config) { cfg.Tokens.RefreshTokenGrace = 0 })
	// Values carried from a case's send to its then.
	var before servertest.Tokens
	refresh := func(c servertest.ClientAuth, a servertest.Authz, scope string) func(t *testing.T, f *fixture) servertest.Reply {
		return func(t *testing.T, f *fixture) servertest.Reply {
			before = f.tokens(t, a)
			return f.env.Refresh(t, c, before.RefreshToken, scope)
		}
	}
	webAll := web("openid profile email offline_access api:read")
	cases := []tokenCase{
		{name: "public-client-rotates", send: refresh(servertest.SPAClient, servertest.Authz{}, ""), status: 200,
			then: func(t *testing.T, f *fixture, r servertest.Reply) {
				tk := mustToken(t, r)
				if tk.RefreshToken == "" || tk.RefreshToken == before.RefreshToken {
					t.Fatalf("public client's refresh token did not rotate: %s", r.Body)
				}
				if refreshActive(t, f.env, before.RefreshToken) || !refreshActive(t, f.env, tk.RefreshToken) {
					t.Error("after rotation the parent must be inactive and the child active")
				}
				if !f.env.Active(t, before.AccessToken) || !f.env.Active(t, tk.AccessToken) {
					t.Error("rotation must not revoke the family's access tokens")
				}
			}},
		{name: "adv35/rotated-token-reused-revokes-family",
			send: func(t *testing.T, f *fixture) servertest.Reply {
				before = f.tokens(t, servertest.Authz{})
				child := mustToken(t, f.env.Refresh(t, servertest.SPAClient, before.RefreshToken, ""))
				r := f.env.Refresh(t, servertest.SPAClient, before.RefreshToken, "")
				before.RefreshToken, before.AccessToken = child.RefreshToken, child.AccessToken
				return r
			},
			status: 400, err: "invalid_grant",
			then: func(t *testing.T, f *fixture, r servertest.Reply) {
				// The newest member of the family dies with it, and so do its access tokens.
				checkReply(t, f.env.Refresh(t, servertest.SPAClient, before.RefreshToken, ""), 400, "invalid_grant")
				inactive(t, f.env, servertest.SvcClient, before.AccessToken)
			}},
		{name: "adv35/rotating-confidential-client-reuse", send: func(t *testing.T, f *fixture) servertest.Reply {
			// web does not rotate: its token stays valid across uses.
			before = f.tokens(t, webAll)
			mustToken(t, f.env.Refresh(t, servertest.WebClient, before.RefreshToken, ""))
			return f.env.Refresh(t, servertest.WebClient, before.RefreshToken, "")
		}, status: 200},
		{name: "adv37/refresh-token-of-another-client", send: refresh(servertest.WebClient, servertest.Authz{}, ""),
			status: 400, err: "invalid_grant",
			then: func(t *testing.T, f *fixture, r servertest.Reply) {
				// The attempt changes nothing for the rightful client.
				mustToken(t, f.env.Refresh(t, servertest.SPAClient, before.RefreshToken, ""))
			}},
		{name: "adv37/confidential-client-without-auth", send: refresh(servertest.ClientAuth{ID: "web", Method: "none"}, webAll, ""),
			status: 401, err: "invalid_client", header: basicChallenge},
		{name: "adv37/confidential-client-wrong-secret", send: refresh(servertest.ClientAuth{ID: "web", Secret: servertest.SvcSecret, Method: "client_secret_basic"}, webAll, ""),
			status: 401, err: "invalid_client"},
		{name: "adv38/wider-scope", send: refresh(servertest.SPAClient, servertest.Authz{Scope: "openid offline_access"}, "openid offline_access email"),
			status: 400, err: "invalid_scope",
			then: func(t *testing.T, f *fixture, r servertest.Reply) {
				// A refused request does not use the token up.
				mustToken(t, f.env.Refresh(t, servertest.SPAClient, before.RefreshToken, ""))
			}},
		{name: "adv38/scope-unknown", send: refresh(servertest.SPAClient, servertest.Authz{}, "openid admin"),
			status: 400, err: "invalid_scope"},
		{name: "adv38/scope-malformed", send: refresh(servertest.SPAClient, servertest.Authz{}, `openid "email"`),
			status: 400, err: "invalid_scope"},
		{name: "narrower-scope-confidential", send: refresh(servertest.WebClient, webAll, "openid api:read"), status: 200,
			then: func(t *testing.T, f *fixture, r servertest.Reply) {
				tk := mustToken(t, r)
				if tk.Scope != "openid api:read" || servertest.Claims(tk.AccessToken)["scope"] != "openid api:read" {
					t.Errorf("narrowed refresh: scope %q, access token scope %v", tk.Scope, servertest.Claims(tk.AccessToken)["scope"])
				}
				// The grant keeps its scope (RFC 6749 §6: omitted means as originally granted).
				got := f.env.Introspect(t, servertest.WebClient, tk.RefreshToken)
				if got.Str("scope") != "openid profile email offline_access api:read" {
					t.Errorf("grant scope after narrowing: %s", got.Body)
				}
				again := mustToken(t, f.env.Refresh(t, servertest.WebClient, tk.RefreshToken, ""))
				if again.Scope != "openid profile email offline_access api:read" {
					t.Errorf("refresh without scope after narrowing: %q", again.Scope)
				}
			}},
		{name: "narrower-scope-public", send: refresh(servertest.SPAClient, servertest.Authz{}, "openid email"), status: 200,
			then: func(t *testing.T, f *fixture, r servertest.Reply) {
				tk := mustToken(t, r)
				if tk.Scope != "openid email" {
					t.Errorf("scope %q", tk.Scope)
				}
				u := f.env.Userinfo(t, http.MethodGet, tk.AccessToken)
				if u.Status != 200 || u.JSON["email"] == nil || u.JSON["name"] != nil {
					t.Errorf("userinfo with the narrowed token: %d %s", u.Status, u.Body)
				}
				again := mustToken(t, f.env.Refresh(t, servertest.SPAClient, tk.RefreshToken, ""))
				if again.Scope != "openid profile email offline_access" {
					t.Errorf("refresh without scope after narrowing: %q", again.Scope)
				}
			}},
		{name: "confidential-client-does-not-rotate", send: refresh(servertest.WebClient, webAll, ""), status: 200,
			then: func(t *testing.T, f *fixture, r servertest.Reply) {
				tk := mustToken(t, r)
				if tk.RefreshToken != before.RefreshToken {
					t.Errorf("non-rotating client got a new refresh token")
				}
				for i := 0; i < 2; i++ {
					next := mustToken(t, f.env.Refresh(t, servertest.WebClient, before.RefreshToken, ""))
					if !f.env.Active(t, next.AccessToken) {
						t.Error("access token from a kept refresh token is inactive")
					}
				}
				if !f.env.Active(t, before.AccessToken) {
					t.Error("refresh revoked the first access token")
				}
			}},
		{name: "id-token-from-refresh", send: refresh(servertest.SPAClient, servertest.Authz{Nonce: "first-nonce"}, ""), status: 200,
			then: func(t *testing.T, f *fixture, r servertest.Reply) {
				// OIDC Core §12.2: no nonce; iss, sub, aud, auth_time (and sid) as in the first one.
				tk := mustToken(t, r)
				was, now := servertest.Claims(before.IDToken), servertest.Claims(tk.IDToken)
				if was["nonce"] != "first-nonce" {
					t.Fatalf("first ID token nonce %v", was["nonce"])
				}
				if _, ok := now["nonce"]; ok {
					t.Errorf("refreshed ID token has a nonce: %v", now["nonce"])
				}
				for _, k := range []string{"iss", "sub", "aud", "auth_time", "sid", "azp"} {
					if now[k] == nil || now[k] != was[k] {
						t.Errorf("%s: got %v, want %v", k, now[k], was[k])
					}
				}
				if now["at_hash"] == nil || now["at_hash"] == was["at_hash"] {
					t.Errorf("refreshed ID token at_hash %v must bind the new access token", now["at_hash"])
				}
			}},
		{name: "no-id-token-without-openid", send: refresh(servertest.SPAClient, servertest.Authz{Scope: "profile offline_access", OmitRedirect: true}, ""), status: 200,
			then: func(t *testing.T, f *fixture, r servertest.Reply) {
				if tk := mustToken(t, r); tk.IDToken != "" {
					t.Error("ID token for a grant without openid")
				}
			}},
		{name: "refresh-token-missing", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.token(t, form("grant_type", "refresh_token"), servertest.SPAClient)
		}, status: 400, err: "invalid_request"},
		{name: "refresh-token-unknown", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.env.Refresh(t, servertest.SPAClient, "x", "")
		}, status: 400, err: "invalid_grant"},
		{name: "adv40/code-as-refresh-token", send: func(t *testing.T, f *fixture) servertest.Reply {
			code, _ := f.code(t, servertest.Authz{})
			return f.env.Refresh(t, servertest.SPAClient, code, "")
		}, status: 400, err: "invalid_grant"},
		{name: "adv40/access-token-as-refresh-token", send: func(t *testing.T, f *fixture) servertest.Reply {
			return f.env.Refresh(t, servertest.SPAClient, f.tokens(t, servertest.Authz{}).AccessToken, "")
		}, status: 400, err: "invalid_grant"},
		{name: "refresh-token-without-offline-access", send: func(t *testing.T, f *fixture) servertest.Reply {
			code, a := f.code(t, servertest.Authz{Scope: "openid profile"})
			return f.env.Redeem(t, code, a)
		}, status: 200, then: func(t *testing.T, f *fixture, r servertest.Reply) {
			// A session-bound refresh token needs no offline_access
			// (TestRefreshWithoutOfflineAccessIsSessionBound).
			if tk := mustToken(t, r); tk.RefreshToken == "" {
				t.Error("no refresh token without offline_access")
			}
		}},
	}
	runTokenCases(t, f, cases)
}

// TestRefreshLifetimes moves the clock over the refresh token's idle and
// absolute lifetimes (tokens.refresh_token_idle_ttl, _absolute_ttl).
func TestRefreshLifetimes(t *testing.T) {
	lifetimes := func(cfg *config.Config) {
		cfg.Tokens.RefreshTokenIdleTTL = config.Duration(24 * time.Hour)
		cfg.Tokens.RefreshTokenAbsoluteTTL = config.Duration(48 * time.Hour)
	}
	webAll := web("openid offline_access api:read")

	t.Run("idle-expiry", func(t *testing.T) {
		f := newFixture(t, lifetimes)
		tk := f.tokens(t, webAll)
		f.env.Clock.Advance(24*time.Hour - time.Second)
		mustToken(t, f.env.Refresh(t, servertest.WebClient, tk.RefreshToken, "")) // use extends the idle lifetime
		f.env.Clock.Advance(24*time.Hour - time.Second)
		mustToken(t, f.env.Refresh(t, servertest.WebClient, tk.RefreshToken, ""))
		f.env.Clock.Advance(24 * time.Hour)
		checkReply(t, f.env.Refresh(t, servertest.WebClient, tk.RefreshToken, ""), 400, "invalid_grant")
		inactive(t, f.env, servertest.WebClient, tk.RefreshToken)
	})
	t.Run("absolute-expiry", func(t *testing.T) {
		f := newFixture(t, lifetimes)
		tk := f.tokens(t, webAll)
		for i := 0; i < 2; i++ {
			f.env.Clock.Advance(23 * time.Hour)
			mustToken(t, f.env.Refresh(t, servertest.WebClient, tk.RefreshToken, ""))
		}
		f.env.Clock.Advance(time.Hour + 30*time.Minute)
		// 30 minutes are left of the family: the access token may not outlive it.
		last := mustToken(t, f.env.Refresh(t, servertest.WebClient, tk.RefreshToken, ""))
		if last.ExpiresIn != 1800 {
			t.Errorf("expires_in %d near the end of the family, want 1800", last.ExpiresIn)
		}
		if exp := int64(servertest.Claims(last.AccessToken)["exp"].(float64)); exp != servertest.Start.Add(48*time.Hour).Unix() {
			t.Errorf("access token exp %d, want the family's end %d", exp, servertest.Start.Add(48*time.Hour).Unix())
		}
		f.env.Clock.Advance(30 * time.Minute)
		checkReply(t, f.env.Refresh(t, servertest.WebClient, tk.RefreshToken, ""), 400, "invalid_grant")
		inactive(t, f.env, servertest.SvcClient, last.AccessToken)
	})
	t.Run("public-client-idle-expiry-within-session", func(t *testing.T) {
		f := newFixture(t, func(cfg *config.Config) { cfg.Tokens.RefreshTokenIdleTTL = config.Duration(10 * time.Minute) })
		tk := f.tokens(t, servertest.Authz{})
		f.env.Clock.Advance(10 * time.Minute)
		checkReply(t, f.env.Refresh(t, servertest.SPAClient, tk.RefreshToken, ""), 400, "invalid_grant")
	})
}

// TestCodeLifetime: a code is good for tokens.authorization_code_ttl (60 s)
// and not a second longer (ADVERSARIAL 27).
func TestCodeLifetime(t *testing.T) {
	f := newFixture(t)
	t.Run("adv27/code-expired", func(t *testing.T) {
		code, a := f.code(t, servertest.Authz{})
		f.env.Clock.Advance(61 * time.Second)
		checkReply(t, f.env.Redeem(t, code, a), 400, "invalid_grant")
	})
	t.Run("adv27/code-at-exactly-its-lifetime", func(t *testing.T) {
		code, a := f.code(t, servertest.Authz{})
		f.env.Clock.Advance(60 * time.Second)
		checkReply(t, f.env.Redeem(t, code, a), 400, "invalid_grant")
	})
	t.Run("code-just-before-expiry", func(t *testing.T) {
		code, a := f.code(t, servertest.Authz{})
		f.env.Clock.Advance(59 * time.Second)
		mustToken(t, f.env.Redeem(t, code, a))
	})
	t.Run("adv27/used-code-replayed-after-expiry-still-revokes", func(t *testing.T) {
		code, a := f.code(t, servertest.Authz{})
		tk := mustToken(t, f.env.Redeem(t, code, a))
		f.env.Clock.Advance(5 * time.Minute)
		checkReply(t, f.env.Redeem(t, code, a), 400, "invalid_grant")
		inactive(t, f.env, servertest.SvcClient, tk.AccessToken)
	})
}

// TestRefreshBoundToSession: a public client's refresh family lives only as
// long as the SSO session it was granted in (ADVERSARIAL 39, 61).
func TestRefreshBoundToSession(t *testing.T) {
	t.Run("adv39/sign-out", func(t *testing.T) {
		f := newFixture(t)
		tk := f.tokens(t, servertest.Authz{})
		// The rotated child is the live member; sign-out must reach it.
		tk = mustToken(t, f.env.Refresh(t, servertest.SPAClient, tk.RefreshToken, ""))
		other := f.tokens(t, servertest.Authz{Scope: "openid offline_access"})
		f.env.SignOut(t, f.alice)
		checkReply(t, f.env.Refresh(t, servertest.SPAClient, tk.RefreshToken, ""), 400, "invalid_grant")
		inactive(t, f.env, servertest.SvcClient, tk.AccessToken)
		// Every family of the session, not only the last one.
		checkReply(t, f.env.Refresh(t, servertest.SPAClient, other.RefreshToken, ""), 400, "invalid_grant")
	})
	t.Run("adv39/session-idle-timeout", func(t *testing.T) {
		f := newFixture(t)
		tk := f.tokens(t, servertest.Authz{})
		f.env.Clock.Advance(f.env.Config.Session.IdleTimeout.D() - time.Second)
		next := mustToken(t, f.env.Refresh(t, servertest.SPAClient, tk.RefreshToken, ""))
		// Refreshing is not activity at the SSO session (renewal_counts_as_activity is off).
		f.env.Clock.Advance(time.Second)
		checkReply(t, f.env.Refresh(t, servertest.SPAClient, next.RefreshToken, ""), 400, "invalid_grant")
		inactive(t, f.env, servertest.SvcClient, next.AccessToken)
	})
	t.Run("adv39/session-absolute-timeout", func(t *testing.T) {
		f := newFixture(t, func(cfg *config.Config) { cfg.Session.AbsoluteTimeout = config.Duration(2 * time.Hour) })
		tk := f.tokens(t, servertest.Authz{})
		step := f.env.Config.Session.IdleTimeout.D() - time.Minute
		for end := servertest.Start.Add(f.env.Config.Session.AbsoluteTimeout.D()); f.env.Clock.Now().Add(step).Before(end); {
			f.env.Clock.Advance(step)
			// Visiting the provider keeps the session from idling out.
			if s, err := f.alice.Get(f.env.URL + "/"); err != nil || s.Status != 200 {
				t.Fatal(err)
			}
			tk.RefreshToken = mustToken(t, f.env.Refresh(t, servertest.SPAClient, tk.RefreshToken, "")).RefreshToken
		}
		f.env.Clock.Set(servertest.Start.Add(f.env.Config.Session.AbsoluteTimeout.D()))
		checkReply(t, f.env.Refresh(t, servertest.SPAClient, tk.RefreshToken, ""), 400, "invalid_grant")
	})
	t.Run("adv39/user-disabled", func(t *testing.T) {
		f := newFixture(t)
		spa := f.tokens(t, servertest.Authz{})
		webTk := f.tokens(t, web("openid offline_access"))
		if _, err := f.env.Store.DisableUser(context.Background(), f.userID(t, "alice"), f.env.Clock.Now()); err != nil {
			t.Fatal(err)
		}
		checkReply(t, f.env.Refresh(t, servertest.SPAClient, spa.RefreshToken, ""), 400, "invalid_grant")
		// Not bound to the session, but a disabled user's grants end all the same.
		checkReply(t, f.env.Refresh(t, servertest.WebClient, webTk.RefreshToken, ""), 400, "invalid_grant")
		inactive(t, f.env, servertest.SvcClient, webTk.AccessToken)
		if u := f.env.Userinfo(t, http.MethodGet, webTk.AccessToken); u.Status != 401 {
			t.Errorf("userinfo for a disabled user: %d", u.Status)
		}
	})
	t.Run("confidential-offline-grant-outlives-session", func(t *testing.T) {
		f := newFixture(t)
		tk := f.tokens(t, web("openid offline_access"))
		online := f.tokens(t, web("openid"))
		f.env.SignOut(t, f.alice)
		mustToken(t, f.env.Refresh(t, servertest.WebClient, tk.RefreshToken, ""))
		// Without offline_access the grant is bound to the session like a browser app's.
		inactive(t, f.env, servertest.SvcClient, online.AccessToken)
	})
}

// TestCodeOfDisabledUser: a code issued before its user was disabled yields
// nothing afterwards, even for a grant that is not bound to the session
// (ADVERSARIAL 39).
func TestCodeOfDisabledUser(t *testing.T) {
	f := newFixture(t)
	for _, a := range []servertest.Authz{web("openid offline_access"), web("api:read offline_access"), {}} {
		code, a := f.code(t, a)
		bob := f.env.Agent("bob")
		other := f.env.CodeFlow(t, bob, servertest.Authz{})
		if _, err := f.env.Store.DisableUser(context.Background(), f.userID(t, "alice"), f.env.Clock.Now()); err != nil {
			t.Fatal(err)
		}
		checkReply(t, f.env.Redeem(t, code, a), 400, "invalid_grant")
		// Nor is anything left to use: the grant the redemption started is revoked.
		grants, err := f.env.Store.ListGrantsByUser(context.Background(), f.userID(t, "alice"))
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range grants {
			if g.RevokedAt.IsZero() {
				t.Errorf("grant %s of a disabled user is not revoked", g.ID)
			}
		}
		// Other people are not affected.
		mustToken(t, f.env.Refresh(t, servertest.SPAClient, other.RefreshToken, ""))
		if err := f.env.Store.EnableUser(context.Background(), f.userID(t, "alice"), f.env.Clock.Now()); err != nil {
			t.Fatal(err)
		}
		f.alice = f.env.Agent("alice")
	}
}

// TestCodeOfDeletedUser: a code outlives its deleted user in storage (no
// foreign key), but redeeming it is invalid_grant.
func TestCodeOfDeletedUser(t *testing.T) {
	f := newFixture(t)
	code, a := f.code(t, web("openid offline_access"))
	id := f.userID(t, "alice")
	if _, err := f.env.Store.DeleteUser(context.Background(), id, f.env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	checkReply(t, f.env.Redeem(t, code, a), 400, "invalid_grant")
	if grants, err := f.env.Store.ListGrantsByUser(context.Background(), id); err != nil || len(grants) != 0 {
		t.Errorf("grants of a deleted user: %v, %v; want none", grants, err)
	}
}

// TestRefreshWithoutOfflineAccessIsSessionBound: every client allowed the
// refresh_token grant gets a refresh token, with or without offline_access
// (oauth2-proxy's default scopes got none). Without offline_access, or for a
// client that may not hold offline tokens, the family is bound to the SSO
// session and dies at sign-out; offline_access alone asks for one that
// outlives it, and only a confidential client with offline_access in its
// scope or a public client with offline_refresh gets one.
func TestRefreshWithoutOfflineAccessIsSessionBound(t *testing.T) {
	publicOffline := servertest.ClientAuth{ID: "spa-offline", Method: "none"}
	f := newFixture(t, func(cfg *config.Config) {
		cfg.Clients = append(cfg.Clients, config.Client{
			ClientID: publicOffline.ID, TokenEndpointAuthMethod: "none", RedirectURIs: []string{servertest.SPARedirect},
			GrantTypes: []string{"authorization_code", "refresh_token"}, Scope: "openid profile offline_access",
			SkipConsent: true, OfflineRefresh: true,
		})
	})
	cases := []struct {
		name        string
		authz       servertest.Authz
		outlivesOut bool // the refresh token still works after sign-out
	}{
		{name: "confidential/openid", authz: web("openid profile")},
		{name: "confidential/no-openid", authz: web("api:read")},
		{name: "confidential/offline_access", authz: web("openid offline_access"), outlivesOut: true},
		{name: "confidential-rotating/openid", authz: servertest.Authz{Client: rotating, RedirectURI: servertest.WebRedirect, Scope: "openid"}},
		{name: "public/openid", authz: servertest.Authz{Client: servertest.SPAClient, Scope: "openid profile"}},
		{name: "public/offline_access-not-allowed", authz: servertest.Authz{Client: servertest.SPAClient, Scope: "openid offline_access"}},
		{name: "public-offline_refresh/openid", authz: servertest.Authz{Client: publicOffline, RedirectURI: servertest.SPARedirect, Scope: "openid"}},
		{name: "public-offline_refresh/offline_access", authz: servertest.Authz{Client: publicOffline, RedirectURI: servertest.SPARedirect, Scope: "openid offline_access"}, outlivesOut: true},
	}
	issued := make([]servertest.Tokens, len(cases))
	for i, c := range cases {
		issued[i] = f.tokens(t, c.authz)
		if issued[i].RefreshToken == "" {
			t.Fatalf("%s: no refresh token", c.name)
		}
	}
	f.env.SignOut(t, f.alice)
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := f.env.Refresh(t, c.authz.Client, issued[i].RefreshToken, "")
			if c.outlivesOut {
				mustToken(t, r)
				return
			}
			checkReply(t, r, http.StatusBadRequest, "invalid_grant")
		})
	}
}
