package resource_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/server/servertest"
	"github.com/castellan-auth/castellan/resource"
)

// TestVerifierAcceptsOnlyItsAudience is a provider with a single-page app
// (code flow) and a legacy implicit client registered for the orders API, a
// machine client for the billing API and a machine client with no audience
// of its own. Every access token used to name the issuer, so a verifier
// with that audience took all of them alike; now each token names what it
// is for, the orders API's verifier takes only the orders clients' tokens,
// and a verifier for the issuer cannot be made without saying so.
func TestVerifierAcceptsOnlyItsAudience(t *testing.T) {
	t.Parallel()
	const (
		orders  = "https://orders.example/"
		billing = "urn:example:billing"
		legacyR = "http://127.0.0.1:9100/legacy"
	)
	machine := servertest.ClientAuth{ID: "billing-job", Secret: "billing-job-secret-0123456789abcdef01", Method: "client_secret_basic"}
	plain := servertest.ClientAuth{ID: "plain-job", Secret: "plain-job-secret-0123456789abcdef0123", Method: "client_secret_basic"}
	cfg := servertest.WithClients(servertest.Config())
	for i := range cfg.Clients {
		if cfg.Clients[i].ClientID == "spa" {
			cfg.Clients[i].Audience = []string{orders}
			cfg.Clients[i].Scope += " orders:read"
		}
	}
	cfg.Clients = append(cfg.Clients,
		config.Client{ClientID: "legacy", TokenEndpointAuthMethod: "none", RedirectURIs: []string{legacyR},
			GrantTypes: []string{"implicit"}, ResponseTypes: []string{"id_token token"}, Scope: "openid orders:read",
			SkipConsent: true, Audience: []string{orders}},
		config.Client{ClientID: machine.ID, ClientSecret: machine.Secret, GrantTypes: []string{"client_credentials"},
			Scope: "invoices:write", Audience: []string{billing}},
		config.Client{ClientID: plain.ID, ClientSecret: plain.Secret, GrantTypes: []string{"client_credentials"}, Scope: "jobs"},
	)
	env := servertest.New(t, servertest.Options{Config: cfg})
	agent := env.Agent("alice")

	spa := env.CodeFlow(t, agent, servertest.Authz{Scope: "openid orders:read"}).AccessToken
	last, err := agent.Follow(env.AuthorizeURL(servertest.Authz{Client: servertest.ClientAuth{ID: "legacy"}, RedirectURI: legacyR,
		Scope: "openid orders:read", NoPKCE: true, Extra: url.Values{"response_type": {"id_token token"}}}))
	if err != nil {
		t.Fatal(err)
	}
	implicit := servertest.Params(last.Location).Get("access_token")
	if implicit == "" {
		t.Fatalf("implicit flow ended at %d %q", last.Status, last.Location)
	}
	machineToken := func(c servertest.ClientAuth) string {
		r := env.Post(t, "/token", url.Values{"grant_type": {"client_credentials"}}, c)
		if r.Status != http.StatusOK {
			t.Fatalf("client credentials of %s: %d %s", c.ID, r.Status, r.Body)
		}
		return r.Str("access_token")
	}
	tokens := map[string]string{"spa": spa, "legacy": implicit, machine.ID: machineToken(machine), plain.ID: machineToken(plain)}

	// What each token names.
	for client, want := range map[string]any{"spa": orders, "legacy": orders, machine.ID: billing, plain.ID: env.URL} {
		if got := servertest.Claims(tokens[client])["aud"]; got != want {
			t.Errorf("aud of %s's token: got %v, want %v", client, got, want)
		}
	}

	verifier := func(aud string, allowIssuer bool) *resource.Verifier {
		v, _ := newVerifier(t, env, func(c *resource.Config) { c.Audience, c.AllowIssuerAudience = aud, allowIssuer })
		return v
	}
	cases := []struct {
		api      *resource.Verifier
		name     string
		accepted []string
	}{
		{verifier(orders, false), "orders", []string{"spa", "legacy"}},
		{verifier(billing, false), "billing", []string{machine.ID}},
		{verifier(env.URL, true), "issuer-allowed", []string{plain.ID}},
	}
	for _, c := range cases {
		for client, tok := range tokens {
			_, err := c.api.Verify(context.Background(), tok)
			want := false
			for _, a := range c.accepted {
				want = want || a == client
			}
			if got := err == nil; got != want {
				t.Errorf("%s API, %s's token: accepted %v (%v), want %v", c.name, client, got, err, want)
			}
			if err != nil && !errors.Is(err, resource.ErrInvalidToken) {
				t.Errorf("%s API, %s's token: %v, want ErrInvalidToken", c.name, client, err)
			}
		}
	}
	if _, err := resource.New(resource.Config{Issuer: env.URL, Audience: env.URL}); err == nil {
		t.Fatal("a verifier for the issuer's audience was made without AllowIssuerAudience")
	}

	// Castellan's own userinfo takes the OpenID Connect tokens, whatever API
	// they name.
	for _, client := range []string{"spa", "legacy"} {
		if r := env.Userinfo(t, http.MethodGet, tokens[client]); r.Status != http.StatusOK {
			t.Errorf("userinfo with %s's token (aud %s): %d %s", client, orders, r.Status, r.Body)
		}
	}
}
