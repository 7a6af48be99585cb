package token_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// The OpenID conformance suite's OP modules (../shared/CONFORMANCE.md) that
// concern the token endpoint, each reproduced here under its module name with
// real client libraries (x/oauth2, go-oidc) as the relying party. The userinfo
// modules are in internal/userinfo.
//
// Not applicable to Castellan's token endpoint, and why:
//   - oidcc-refresh-token-rp-key-rotation, oidcc-ensure-client-assertion-with-iss-aud-succeeds:
//     need private_key_jwt client authentication, which Castellan does not offer yet
//     (token_endpoint_auth_methods_supported lists none, client_secret_basic,
//     client_secret_post; every client_assertion is invalid_client, see
//     TestTokenRequestShape/adv33).
//   - oidcc-idtoken-unsigned: Castellan never signs with "none" and does not list it in
//     id_token_signing_alg_values_supported, so the module is skipped.
//   - oidcc-registration-*, oidcc-3rd_party-init-login*, oidcc-redirect-uri-regfrag:
//     there is no dynamic registration endpoint; clients are declared in the config.
//   - fapi2-* modules about DPoP, PAR, mTLS, private_key_jwt and request objects: not
//     implemented yet (issue 8).
//
// Covered by other packages' tests: the authorization-endpoint modules (prompt, max_age,
// id_token_hint, login_hint, display, ui_locales, claims_locales, redirect URI checks,
// request objects, nonce for implicit), discovery and key rotation (server, signing),
// and the logout modules (logout).

// relyingParty is a real OpenID Connect client of the test provider.
type relyingParty struct {
	ctx      context.Context
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
}

func newRelyingParty(t *testing.T, env *servertest.Env, c servertest.ClientAuth, redirect string, scopes ...string) *relyingParty {
	t.Helper()
	ctx := oidc.ClientContext(context.Background(), env.HTTP.Client())
	provider, err := oidc.NewProvider(ctx, env.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	style := oauth2.AuthStyleInHeader
	if c.Method != "client_secret_basic" {
		style = oauth2.AuthStyleInParams
	}
	ep := provider.Endpoint()
	ep.AuthStyle = style
	return &relyingParty{ctx: ctx, provider: provider,
		// go-oidc's default: RS256 only, the OIDC default algorithm.
		verifier: provider.Verifier(&oidc.Config{ClientID: c.ID, Now: env.Clock.Now}),
		oauth:    oauth2.Config{ClientID: c.ID, ClientSecret: c.Secret, Endpoint: ep, RedirectURL: redirect, Scopes: scopes}}
}

// code runs the authorization request in the agent's browser.
func (rp *relyingParty) code(t *testing.T, agent *servertest.Agent, verifier, nonce string, opts ...oauth2.AuthCodeOption) string {
	t.Helper()
	opts = append(opts, oauth2.S256ChallengeOption(verifier))
	if nonce != "" {
		opts = append(opts, oidc.Nonce(nonce))
	}
	last, err := agent.Follow(rp.oauth.AuthCodeURL("state-1", opts...))
	if err != nil {
		t.Fatal(err)
	}
	p := servertest.Params(last.Location)
	if p.Get("code") == "" || p.Get("state") != "state-1" {
		t.Fatalf("authorization ended at %d %q\n%s", last.Status, last.Location, last.Body)
	}
	return p.Get("code")
}

// exchange redeems a code and verifies the ID token with go-oidc.
func (rp *relyingParty) exchange(t *testing.T, code, verifier, nonce string) (*oauth2.Token, *oidc.IDToken) {
	t.Helper()
	tok, err := rp.oauth.Exchange(rp.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	return tok, rp.verify(t, tok, nonce)
}

func (rp *relyingParty) verify(t *testing.T, tok *oauth2.Token, nonce string) *oidc.IDToken {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	id, err := rp.verifier.Verify(rp.ctx, raw)
	if err != nil {
		t.Fatalf("go-oidc rejects the ID token: %v", err)
	}
	if id.Nonce != nonce {
		t.Errorf("nonce: got %q, want %q", id.Nonce, nonce)
	}
	if err := id.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	return id
}

func oauthError(t *testing.T, err error) string {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want an OAuth error response", err)
	}
	return re.ErrorCode
}

// post is a confidential client using client_secret_post for the code flow.
var post = servertest.ClientAuth{ID: "post", Secret: "post-secret-0123456789abcdef01234567", Method: "client_secret_post"}

const postRedirect = "https://post.example/cb"

func withPostClient(cfg *config.Config) {
	cfg.Clients = append(cfg.Clients, config.Client{
		ClientID: post.ID, ClientSecret: post.Secret, TokenEndpointAuthMethod: "client_secret_post",
		RedirectURIs: []string{postRedirect}, GrantTypes: []string{"authorization_code", "refresh_token"},
		Scope: "openid profile email offline_access",
	})
}

func TestConformanceTokenEndpoint(t *testing.T) {
	f := newFixture(t, withRS256, withPostClient)
	env := f.env

	// oidcc-server: the happy flow, client_secret_basic (the default method).
	t.Run("oidcc-server", func(t *testing.T) {
		rp := newRelyingParty(t, env, servertest.WebClient, servertest.WebRedirect, oidc.ScopeOpenID, "profile")
		v := oauth2.GenerateVerifier()
		tok, id := rp.exchange(t, rp.code(t, f.alice, v, "n-server"), v, "n-server")
		if tok.TokenType != "Bearer" || tok.Expiry.IsZero() {
			t.Errorf("token: %+v", tok)
		}
		info, err := rp.provider.UserInfo(rp.ctx, oauth2.StaticTokenSource(tok))
		if err != nil || info.Subject != id.Subject {
			t.Fatalf("userinfo: %v %+v", err, info)
		}
	})
	t.Run("oidcc-server-client-secret-post", func(t *testing.T) {
		rp := newRelyingParty(t, env, post, postRedirect, oidc.ScopeOpenID, "email")
		v := oauth2.GenerateVerifier()
		tok, id := rp.exchange(t, rp.code(t, f.alice, v, "n-post"), v, "n-post")
		info, err := rp.provider.UserInfo(rp.ctx, oauth2.StaticTokenSource(tok))
		if err != nil || info.Subject != id.Subject || info.Email != "alice@example.com" {
			t.Fatalf("userinfo: %v %+v", err, info)
		}
		// The same client presenting its secret the other way is accepted:
		// it is the same secret (strict_token_endpoint_auth_method refuses it).
		basic := rp.oauth
		basic.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
		if _, err = basic.Exchange(rp.ctx, rp.code(t, f.alice, v, ""), oauth2.VerifierOption(v)); err != nil {
			t.Fatalf("client_secret_post client using Basic: %v", err)
		}
	})
	t.Run("oidcc-alternate-happy-flow", func(t *testing.T) {
		// Scope values reversed and parameters in another order (RFC 6749 §3.3).
		v := oauth2.GenerateVerifier()
		q := url.Values{"state": {"state-1"}, "code_challenge_method": {"S256"}, "nonce": {"n-alt"},
			"code_challenge": {oauth2.S256ChallengeFromVerifier(v)}, "redirect_uri": {servertest.WebRedirect},
			"scope": {"profile openid"}, "response_type": {"code"}, "client_id": {"web"}}
		last, err := f.alice.Follow(env.URL + "/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		rp := newRelyingParty(t, env, servertest.WebClient, servertest.WebRedirect)
		tok, _ := rp.exchange(t, servertest.Params(last.Location).Get("code"), v, "n-alt")
		if s, _ := tok.Extra("scope").(string); !sameScope(s, "openid profile") {
			t.Errorf("scope %q", s)
		}
	})
	t.Run("oidcc-codereuse", func(t *testing.T) {
		rp := newRelyingParty(t, env, servertest.WebClient, servertest.WebRedirect, oidc.ScopeOpenID)
		v := oauth2.GenerateVerifier()
		code := rp.code(t, f.alice, v, "n")
		first, _ := rp.exchange(t, code, v, "n")
		_, err := rp.oauth.Exchange(rp.ctx, code, oauth2.VerifierOption(v))
		if c := oauthError(t, err); c != "invalid_grant" {
			t.Fatalf("second use: %q, want invalid_grant", c)
		}
		inactive(t, env, servertest.SvcClient, first.AccessToken)
	})
	t.Run("oidcc-codereuse-30seconds", func(t *testing.T) {
		rp := newRelyingParty(t, env, servertest.WebClient, servertest.WebRedirect, oidc.ScopeOpenID)
		v := oauth2.GenerateVerifier()
		code := rp.code(t, f.alice, v, "n")
		first, _ := rp.exchange(t, code, v, "n")
		env.Clock.Advance(30 * time.Second)
		_, err := rp.oauth.Exchange(rp.ctx, code, oauth2.VerifierOption(v))
		if c := oauthError(t, err); c != "invalid_grant" {
			t.Fatalf("use after 30 s: %q, want invalid_grant", c)
		}
		// RFC 6749 §4.1.2: the access token of the first use is revoked.
		inactive(t, env, servertest.SvcClient, first.AccessToken)
		if _, err := rp.provider.UserInfo(rp.ctx, oauth2.StaticTokenSource(first)); err == nil {
			t.Error("userinfo accepts the first access token after the code was reused")
		}
	})
	t.Run("oidcc-refresh-token", func(t *testing.T) {
		rp := newRelyingParty(t, env, servertest.WebClient, servertest.WebRedirect, oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
		v := oauth2.GenerateVerifier()
		tok, id := rp.exchange(t, rp.code(t, f.alice, v, "n-rt"), v, "n-rt")
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token for offline_access")
		}
		stale := &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}
		tok2, err := rp.oauth.TokenSource(rp.ctx, stale).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if id2 := rp.verify(t, tok2, ""); id2.Subject != id.Subject || id2.IssuedAt.Before(id.IssuedAt) {
			t.Errorf("refreshed ID token: sub %q", id2.Subject)
		}
		// Bound to its client: another client, or this one without authentication, is refused.
		r := env.Refresh(t, post, tok.RefreshToken, "")
		checkReply(t, r, 400, "invalid_grant")
		r = env.Refresh(t, servertest.ClientAuth{ID: "web", Method: "none"}, tok.RefreshToken, "")
		checkReply(t, r, 401, "invalid_client")
		r = env.Refresh(t, servertest.NoClient, tok.RefreshToken, "")
		checkReply(t, r, 401, "invalid_client")
	})
	t.Run("oidcc-ensure-request-with-valid-pkce-succeeds", func(t *testing.T) {
		rp := newRelyingParty(t, env, servertest.WebClient, servertest.WebRedirect, oidc.ScopeOpenID)
		v := oauth2.GenerateVerifier()
		rp.exchange(t, rp.code(t, f.alice, v, "n"), v, "n")
	})
	t.Run("oidcc-ensure-request-without-nonce-succeeds-for-code-flow", func(t *testing.T) {
		rp := newRelyingParty(t, env, servertest.WebClient, servertest.WebRedirect, oidc.ScopeOpenID)
		v := oauth2.GenerateVerifier()
		tok, id := rp.exchange(t, rp.code(t, f.alice, v, ""), v, "")
		if _, ok := servertest.Claims(tok.Extra("id_token").(string))["nonce"]; ok || id.Nonce != "" {
			t.Error("ID token carries a nonce nobody sent")
		}
	})
	t.Run("oidcc-idtoken-signature", func(t *testing.T) {
		// No id_token_signed_response_alg registered: RS256, the OIDC default.
		tk := f.tokens(t, web("openid"))
		if h := servertest.Header(tk.IDToken); h["alg"] != "RS256" || h["kid"] == nil {
			t.Errorf("ID token header %v, want alg RS256 with a kid", h)
		}
	})
	t.Run("oidcc-idtoken-rs256", func(t *testing.T) {
		rp := newRelyingParty(t, env, servertest.WebClient, servertest.WebRedirect, oidc.ScopeOpenID)
		rs256 := rp.provider.Verifier(&oidc.Config{ClientID: "web", Now: env.Clock.Now, SupportedSigningAlgs: []string{oidc.RS256}})
		v := oauth2.GenerateVerifier()
		tok, _ := rp.exchange(t, rp.code(t, f.alice, v, "n"), v, "n")
		if _, err := rs256.Verify(rp.ctx, tok.Extra("id_token").(string)); err != nil {
			t.Fatal(err)
		}
		// A client registered for ES256 gets ES256.
		if h := servertest.Header(f.tokens(t, servertest.Authz{}).IDToken); h["alg"] != "ES256" {
			t.Errorf("spa ID token alg %v, want its registered ES256", h["alg"])
		}
	})

	// FAPI 2.0 modules whose token-endpoint behaviour Castellan shares.
	t.Run("fapi2-security-profile-final-ensure-pkce-code-verifier-required", func(t *testing.T) {
		for _, c := range []servertest.ClientAuth{servertest.SPAClient, servertest.WebClient} {
			code, a := f.code(t, servertest.Authz{Client: c})
			body := servertest.RedeemForm(code, a)
			body.Del("code_verifier")
			checkReply(t, f.token(t, body, c), 400, "invalid_grant")
		}
	})
	t.Run("fapi2-security-profile-final-incorrect-pkce-code-verifier-rejected", func(t *testing.T) {
		rp := newRelyingParty(t, env, servertest.WebClient, servertest.WebRedirect, oidc.ScopeOpenID)
		code := rp.code(t, f.alice, oauth2.GenerateVerifier(), "n")
		_, err := rp.oauth.Exchange(rp.ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
		if c := oauthError(t, err); c != "invalid_grant" {
			t.Fatalf("got %q, want invalid_grant", c)
		}
	})
	t.Run("fapi2-security-profile-final-attempt-reuse-authorization-code-after-one-second", func(t *testing.T) {
		code, a := f.code(t, web("openid"))
		first := mustToken(t, f.env.Redeem(t, code, a))
		env.Clock.Advance(time.Second)
		checkReply(t, f.env.Redeem(t, code, a), 400, "invalid_grant")
		inactive(t, env, servertest.SvcClient, first.AccessToken)
	})
	t.Run("fapi2-security-profile-final-ensure-token-endpoint-fails-with-expired-auth-code", func(t *testing.T) {
		code, a := f.code(t, web("openid"))
		env.Clock.Advance(60 * time.Second)
		checkReply(t, f.env.Redeem(t, code, a), 400, "invalid_grant")
	})
	t.Run("fapi2-security-profile-final-refresh-token", func(t *testing.T) {
		tk := f.tokens(t, web("openid offline_access"))
		checkReply(t, f.env.Refresh(t, servertest.ClientAuth{ID: "web", Method: "none"}, tk.RefreshToken, ""), 401, "invalid_client")
		checkReply(t, f.env.Refresh(t, servertest.SPAClient, tk.RefreshToken, ""), 400, "invalid_grant")
		mustToken(t, f.env.Refresh(t, servertest.WebClient, tk.RefreshToken, ""))
	})
}

func sameScope(a, b string) bool {
	x, y := strings.Fields(a), strings.Fields(b)
	if len(x) != len(y) {
		return false
	}
	for _, s := range x {
		if !strings.Contains(" "+b+" ", " "+s+" ") {
			return false
		}
	}
	return true
}
