package server_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// TestPrivateKeyJWTWithRealClients is a confidential client without a shared
// secret, driven by go-oidc and x/oauth2: its keys are published at a
// jwks_uri, it pushes its authorization request (RFC 9126) with a client
// assertion, sends the browser with the request_uri, and redeems the code
// with another assertion (RFC 7523) through x/oauth2's Exchange.
func TestPrivateKeyJWTWithRealClients(t *testing.T) {
	key := servertest.NewClientKey(t, "rp-2026")
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write([]byte(key.JWKS()))
	}))
	t.Cleanup(keys.Close)
	const redirect = "https://rp.example/callback"
	cfg := servertest.Config()
	cfg.Clients = []config.Client{{
		ClientID: "rp", TokenEndpointAuthMethod: "private_key_jwt", JWKSURI: keys.URL + "/jwks",
		TokenEndpointAuthSigningAlg: "ES256", RedirectURIs: []string{redirect},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scope: "openid profile email", SkipConsent: true,
	}}
	env := servertest.New(t, servertest.Options{Config: cfg})
	rp := newRelyingParty(t, env, "rp", "", redirect, oidc.ScopeOpenID, "email")
	rp.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInParams

	var meta struct {
		PAR        string   `json:"pushed_authorization_request_endpoint"`
		AuthMethod []string `json:"token_endpoint_auth_methods_supported"`
		AuthAlgs   []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	}
	if err := rp.provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	if meta.PAR != env.URL+"/par" || !oauth.Contains(meta.AuthMethod, "private_key_jwt") || !oauth.Contains(meta.AuthAlgs, "ES256") || oauth.Contains(meta.AuthAlgs, "HS256") {
		t.Fatalf("discovery: %+v", meta)
	}
	assertion := func() string { return key.Sign(t, servertest.AssertionClaims("rp", env.URL, env.Clock.Now())) }

	// Push what x/oauth2 would have put in the URL.
	verifier := oauth2.GenerateVerifier()
	authURL, _ := url.Parse(rp.oauth.AuthCodeURL("state-123", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n-rp")))
	form := authURL.Query()
	form.Set("client_assertion_type", oauth.ClientAssertionJWT)
	form.Set("client_assertion", assertion())
	pushed := env.Post(t, "/par", form, servertest.ClientAuth{})
	if pushed.Status != http.StatusCreated {
		t.Fatalf("push: %d %s", pushed.Status, pushed.Body)
	}
	agent := env.Agent("alice")
	last, err := agent.Follow(rp.provider.Endpoint().AuthURL + "?" + url.Values{"client_id": {"rp"}, "request_uri": {pushed.Str("request_uri")}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	p := servertest.Params(last.Location)
	if p.Get("state") != "state-123" || p.Get("iss") != env.URL || p.Get("code") == "" {
		t.Fatalf("authorization response %q", last.Location)
	}

	tok, err := rp.oauth.Exchange(rp.ctx, p.Get("code"), oauth2.VerifierOption(verifier),
		oauth2.SetAuthURLParam("client_assertion_type", oauth.ClientAssertionJWT),
		oauth2.SetAuthURLParam("client_assertion", assertion()))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	id := rp.verifyID(t, tok, "n-rp")
	if id.Audience[0] != "rp" {
		t.Errorf("aud %v", id.Audience)
	}

	// A secret is no way in for this client, even the empty one x/oauth2 sends by default.
	rp.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInHeader
	_, err = rp.oauth.Exchange(rp.ctx, "whatever", oauth2.VerifierOption(verifier))
	if code := retrieveError(t, err); code != oauth.ErrInvalidClient {
		t.Fatalf("Basic with an empty secret: got %q, want invalid_client", code)
	}
}
