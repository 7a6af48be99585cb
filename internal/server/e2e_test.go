package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// relyingParty is a real OpenID Connect client: go-oidc for discovery and ID
// token verification, x/oauth2 for the code flow with PKCE and refreshes.
type relyingParty struct {
	env      *servertest.Env
	ctx      context.Context
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
}

func newRelyingParty(t *testing.T, env *servertest.Env, clientID, secret, redirect string, scopes ...string) *relyingParty {
	t.Helper()
	ctx := oidc.ClientContext(context.Background(), env.HTTP.Client())
	provider, err := oidc.NewProvider(ctx, env.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &relyingParty{
		env: env, ctx: ctx, provider: provider,
		verifier: provider.Verifier(&oidc.Config{ClientID: clientID, Now: env.Clock.Now}),
		oauth: oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: provider.Endpoint(),
			RedirectURL: redirect, Scopes: scopes},
	}
}

// signIn runs the authorization request in a browser agent and returns the
// code, having checked state and iss.
func (rp *relyingParty) signIn(t *testing.T, agent *servertest.Agent, verifier, nonce string, extra ...oauth2.AuthCodeOption) string {
	t.Helper()
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}, extra...)
	last, err := agent.Follow(rp.oauth.AuthCodeURL("state-123", opts...))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(last.Location, rp.oauth.RedirectURL) {
		t.Fatalf("flow ended at %d %q, want a redirect to %s\n%s", last.Status, last.Location, rp.oauth.RedirectURL, last.Body)
	}
	p := servertest.Params(last.Location)
	if p.Get("state") != "state-123" || p.Get("iss") != rp.env.URL {
		t.Fatalf("response state %q iss %q, want state-123 and %s", p.Get("state"), p.Get("iss"), rp.env.URL)
	}
	if p.Get("code") == "" {
		t.Fatalf("no code in %s", last.Location)
	}
	return p.Get("code")
}

func (rp *relyingParty) verifyID(t *testing.T, tok *oauth2.Token, nonce string) *oidc.IDToken {
	t.Helper()
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		t.Fatal("no id_token in the token response")
	}
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

func introspect(t *testing.T, env *servertest.Env, token string) map[string]any {
	t.Helper()
	form := url.Values{"token": {token}, "client_id": {"svc"}, "client_secret": {servertest.SvcSecret}}
	resp, err := http.PostForm(env.URL+"/introspect", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("introspect: status %d", resp.StatusCode)
	}
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return out
}

func retrieveError(t *testing.T, err error) string {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want an OAuth error response", err)
	}
	return re.ErrorCode
}

// TestCodeFlowWithRealClients is the whole life of a public client's grant:
// sign-in → code → tokens → ID token verified by go-oidc → userinfo → refresh
// (rotated) → the old refresh token reused → family revoked → revocation →
// introspection says inactive.
func TestCodeFlowWithRealClients(t *testing.T) {
	cfg := servertest.WithClients(servertest.Config())
	cfg.Tokens.RefreshTokenGrace = 0 // the rotated-out token comes back at once: reuse
	env := servertest.New(t, servertest.Options{Config: cfg})
	rp := newRelyingParty(t, env, "spa", "", servertest.SPARedirect, oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess)
	agent := env.Agent("alice")

	verifier := oauth2.GenerateVerifier()
	code := rp.signIn(t, agent, verifier, "n-0S6_WzA2Mj")
	tok, err := rp.oauth.Exchange(rp.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if tok.RefreshToken == "" || tok.TokenType != "Bearer" {
		t.Fatalf("token response: refresh %q type %q", tok.RefreshToken, tok.TokenType)
	}
	id := rp.verifyID(t, tok, "n-0S6_WzA2Mj")
	var claims struct {
		Email string `json:"email"`
		Name  string `json:"name"`
		SID   string `json:"sid"`
		AMR   []string
	}
	id.Claims(&claims)
	if claims.Email != "alice@example.com" || claims.SID == "" {
		t.Errorf("ID token claims: %+v", claims)
	}

	info, err := rp.provider.UserInfo(rp.ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if info.Subject != id.Subject || info.Email != "alice@example.com" || !info.EmailVerified {
		t.Errorf("userinfo: sub %q email %q verified %v", info.Subject, info.Email, info.EmailVerified)
	}

	// Refresh: the token rotates.
	old := tok.RefreshToken
	expired := &oauth2.Token{RefreshToken: old, Expiry: time.Now().Add(-time.Minute)}
	tok2, err := rp.oauth.TokenSource(rp.ctx, expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if tok2.RefreshToken == "" || tok2.RefreshToken == old {
		t.Fatal("public client's refresh token did not rotate")
	}
	if id2 := rp.verifyID(t, tok2, ""); id2.Subject != id.Subject {
		t.Errorf("refreshed ID token subject %q, want %q", id2.Subject, id.Subject)
	}
	if got := introspect(t, env, tok2.AccessToken); got["active"] != true {
		t.Fatalf("refreshed access token inactive: %v", got)
	}

	// The rotated-out token comes back: reuse, the family is revoked.
	_, err = rp.oauth.TokenSource(rp.ctx, expired).Token()
	if code := retrieveError(t, err); code != "invalid_grant" {
		t.Fatalf("reused refresh token: got %q, want invalid_grant", code)
	}
	_, err = rp.oauth.TokenSource(rp.ctx, &oauth2.Token{RefreshToken: tok2.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
	if code := retrieveError(t, err); code != "invalid_grant" {
		t.Fatalf("newest member of a revoked family: got %q, want invalid_grant", code)
	}
	for _, at := range []string{tok.AccessToken, tok2.AccessToken} {
		if got := introspect(t, env, at); len(got) != 1 || got["active"] != false {
			t.Fatalf("access token of a revoked family: got %v, want exactly {active:false}", got)
		}
	}
	if _, err := rp.provider.UserInfo(rp.ctx, oauth2.StaticTokenSource(tok2)); err == nil {
		t.Fatal("userinfo accepted an access token of a revoked family")
	}

	// A new sign-in (the SSO session is still alive: no page this time), then
	// revocation of its refresh token.
	verifier = oauth2.GenerateVerifier()
	steps := len(agent.Steps)
	code = rp.signIn(t, agent, verifier, "second")
	if len(agent.Steps)-steps != 1 {
		t.Errorf("silent re-authorization took %d responses, want 1 (no page)", len(agent.Steps)-steps)
	}
	tok3, err := rp.oauth.Exchange(rp.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.PostForm(env.URL+"/revoke", url.Values{"token": {tok3.RefreshToken}, "client_id": {"spa"}, "token_type_hint": {"refresh_token"}})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	if got := introspect(t, env, tok3.AccessToken); got["active"] != false {
		t.Fatalf("access token after its refresh token was revoked: %v", got)
	}
	_, err = rp.oauth.TokenSource(rp.ctx, &oauth2.Token{RefreshToken: tok3.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
	if code := retrieveError(t, err); code != "invalid_grant" {
		t.Fatalf("revoked refresh token: got %q, want invalid_grant", code)
	}
}

// TestConfidentialClientWithConsent: client_secret_basic, the consent page,
// consent remembered for the next request.
func TestConfidentialClientWithConsent(t *testing.T) {
	env := servertest.New(t, servertest.Options{Config: servertest.WithClients(servertest.Config())})
	rp := newRelyingParty(t, env, "web", servertest.WebSecret, servertest.WebRedirect, oidc.ScopeOpenID, "profile", "api:read")
	agent := env.Agent("bob")
	verifier := oauth2.GenerateVerifier()
	code := rp.signIn(t, agent, verifier, "n1")
	sawConsent := false
	for _, s := range agent.Steps {
		sawConsent = sawConsent || strings.Contains(s.Body, `value="allow"`)
	}
	if !sawConsent {
		t.Fatal("no consent page for a client without skip_consent")
	}
	tok, err := rp.oauth.Exchange(rp.ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	rp.verifyID(t, tok, "n1")
	if tok.RefreshToken == "" {
		// Session-bound: it needs no offline_access.
		t.Error("no refresh token without offline_access")
	}
	if tok.Extra("scope") != "openid profile api:read" {
		t.Errorf("scope: got %v", tok.Extra("scope"))
	}
	// Consent is remembered.
	n := len(agent.Steps)
	rp.signIn(t, agent, oauth2.GenerateVerifier(), "n2")
	if len(agent.Steps)-n != 1 {
		t.Errorf("second authorization took %d responses, want 1 (consent remembered)", len(agent.Steps)-n)
	}
}

// TestClientCredentials: a service authenticates and gets a JWT access token
// that introspects active until revoked.
func TestClientCredentials(t *testing.T) {
	env := servertest.New(t, servertest.Options{Config: servertest.WithClients(servertest.Config())})
	resp, err := http.PostForm(env.URL+"/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"},
		"client_secret": {servertest.SvcSecret}, "scope": {"api:read"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		Scope        string `json:"scope"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	if resp.StatusCode != 200 || tok.AccessToken == "" || tok.RefreshToken != "" || tok.Scope != "api:read" {
		t.Fatalf("client credentials: %d %+v", resp.StatusCode, tok)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Error("token response without Cache-Control: no-store")
	}
	got := introspect(t, env, tok.AccessToken)
	if got["active"] != true || got["sub"] != "svc" || got["client_id"] != "svc" {
		t.Fatalf("introspection: %v", got)
	}
	r2, _ := http.PostForm(env.URL+"/revoke", url.Values{"token": {tok.AccessToken}, "client_id": {"svc"}, "client_secret": {servertest.SvcSecret}})
	r2.Body.Close()
	if got := introspect(t, env, tok.AccessToken); got["active"] != false {
		t.Fatalf("revoked client-credentials token: %v", got)
	}
}
