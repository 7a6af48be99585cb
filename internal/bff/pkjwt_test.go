package bff_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/castellan-auth/castellan/internal/bff"
	"github.com/castellan-auth/castellan/internal/config"
)

// With private_key_jwt the gateway holds no shared secret: it signs a client
// assertion for every token and revocation request, and the provider reads
// its public key from {public_url}/bff/jwks. Sign-in, refresh and the
// revocation at logout all authenticate that way.
func TestPrivateKeyJWT(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "client.pem")
	s := newStack(t, stackOptions{
		client: func(c *config.Client, gatewayURL string) {
			c.ClientSecret, c.TokenEndpointAuthMethod = "", "private_key_jwt"
			c.JWKSURI = gatewayURL + "/bff/jwks"
		},
		bff: func(c *bff.Config) {
			c.ClientSecret, c.TokenEndpointAuthMethod, c.PrivateKeyFile = "", "private_key_jwt", keyFile
		},
	})
	if info, err := os.Stat(keyFile); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("the gateway's key file: %v, want created with mode 0600", err)
	}
	b := s.browser("alice")
	b.login(t, "/")
	resp, body := b.do(t, http.MethodGet, "/api/profile", true, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/profile: got %d %s, want 200", resp.StatusCode, body)
	}
	first := bearer(t, s.lastUpstream(t))

	s.env.Clock.Advance(accessTTL)
	if resp, body := b.do(t, http.MethodGet, "/api/profile", true, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/profile after expiry: got %d %s, want 200 (refresh with a client assertion)", resp.StatusCode, body)
	}
	second := bearer(t, s.lastUpstream(t))
	if second == first || s.refreshRequests(t) != 1 {
		t.Fatalf("after expiry: want one refresh and a new token upstream")
	}

	if resp, body := b.do(t, http.MethodPost, "/bff/logout", true, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /bff/logout: got %d %s", resp.StatusCode, body)
	}
	if s.env.Active(t, second) {
		t.Errorf("the access token is still active after logout: the revocation did not authenticate")
	}

	// A token request without the assertion is refused: the secret is gone.
	r, err := http.PostForm(s.env.URL+"/token", map[string][]string{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {bffClientID}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusUnauthorized {
		t.Errorf("token request as the gateway's client without an assertion: %d, want 401", r.StatusCode)
	}
}
