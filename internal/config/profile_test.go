package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/config"
)

// fapiClient is a client that conforms to profile fapi2 with nothing to spare.
func fapiClient() config.Client {
	return config.Client{
		ClientID: "bank", Profile: config.ProfileFAPI2, TokenEndpointAuthMethod: "private_key_jwt",
		JWKS:                        config.JSON(`{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"` + ecX + `","y":"` + ecY + `"}]}`),
		TokenEndpointAuthSigningAlg: "ES256", IDTokenSignedResponseAlg: "ES256",
		RedirectURIs: []string{"https://bank.example/cb"}, GrantTypes: []string{"authorization_code", "refresh_token"},
	}
}

// TestProfileFAPI2 checks what profile fapi2 refuses, one rule per case, and
// that a conforming client turns on PKCE, PAR and DPoP without writing them.
func TestProfileFAPI2(t *testing.T) {
	tests := []struct {
		name string
		edit func(*config.Config, *config.Client)
		want []string // the problems expected (their beginnings), in order
	}{
		{"ok", func(*config.Config, *config.Client) {}, nil},
		{"ok/eddsa-and-ps256", func(cfg *config.Config, c *config.Client) {
			cfg.Signing.Algorithms = append(cfg.Signing.Algorithms, "EdDSA")
			c.TokenEndpointAuthSigningAlg, c.IDTokenSignedResponseAlg = "PS256", "EdDSA"
		}, nil},
		{"unknown-profile", func(_ *config.Config, c *config.Client) { c.Profile = "fapi1" },
			[]string{`clients[0].profile: want fapi2 (or nothing), got "fapi1"`}},
		{"secret-client", func(_ *config.Config, c *config.Client) {
			c.TokenEndpointAuthMethod, c.JWKS, c.TokenEndpointAuthSigningAlg = "client_secret_basic", "", ""
			c.ClientSecret = strings.Repeat("s", 40)
		}, []string{"clients[0].token_endpoint_auth_method: profile fapi2 needs private_key_jwt"}},
		{"assertion-alg-not-pinned", func(_ *config.Config, c *config.Client) { c.TokenEndpointAuthSigningAlg = "" },
			[]string{`clients[0].token_endpoint_auth_signing_alg: profile fapi2 needs one of PS256, ES256, EdDSA, got ""`}},
		{"assertion-rs256", func(_ *config.Config, c *config.Client) { c.TokenEndpointAuthSigningAlg = "RS256" },
			[]string{`clients[0].token_endpoint_auth_signing_alg: profile fapi2 needs one of PS256, ES256, EdDSA, got "RS256"`}},
		{"id-token-default-rs256", func(_ *config.Config, c *config.Client) { c.IDTokenSignedResponseAlg = "" },
			[]string{"clients[0].id_token_signed_response_alg: profile fapi2 needs one of PS256, ES256, EdDSA"}},
		{"implicit", func(_ *config.Config, c *config.Client) {
			c.GrantTypes = append(c.GrantTypes, "implicit")
		}, []string{`clients[0].grant_types[2]: profile fapi2 allows authorization_code, refresh_token and client_credentials, got "implicit"`}},
		{"token-response", func(_ *config.Config, c *config.Client) {
			c.GrantTypes, c.ResponseTypes = append(c.GrantTypes, "implicit"), []string{"code", "id_token token"}
		}, []string{`clients[0].grant_types[2]: profile fapi2 allows`, `clients[0].response_types[1]: profile fapi2 allows only code, got "id_token token"`}},
		{"http-redirect", func(_ *config.Config, c *config.Client) {
			c.RedirectURIs = append(c.RedirectURIs, "http://127.0.0.1:8080/cb")
		}, []string{`clients[0].redirect_uris[1]: profile fapi2 needs https, got "http://127.0.0.1:8080/cb"`}},
		{"rotation", func(_ *config.Config, c *config.Client) { c.RotateRefreshTokens = true },
			[]string{"clients[0].rotate_refresh_tokens: profile fapi2: a confidential client's refresh tokens do not rotate"}},
		{"long-codes", func(cfg *config.Config, _ *config.Client) {
			cfg.Tokens.AuthorizationCodeTTL = config.Duration(2 * time.Minute)
		},
			[]string{"clients[0].profile: fapi2 needs tokens.authorization_code_ttl of at most 60s, got 2m0s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Default()
			c := fapiClient()
			tc.edit(&cfg, &c)
			cfg.Clients = []config.Client{c}
			problems := cfg.Validate()
			ok := len(problems) == len(tc.want)
			for i := 0; ok && i < len(problems); i++ {
				ok = strings.HasPrefix(problems[i], tc.want[i])
			}
			if !ok {
				t.Fatalf("got problems %q, want %q", problems, tc.want)
			}
		})
	}

	c := fapiClient()
	if pkce, par, dpop := c.Requires(); !pkce || !par || !dpop {
		t.Errorf("profile fapi2 requires pkce %v, par %v, dpop %v; want all", pkce, par, dpop)
	}
	c.Profile = ""
	if pkce, par, dpop := c.Requires(); pkce || par || dpop {
		t.Errorf("no profile and no switches requires pkce %v, par %v, dpop %v; want none", pkce, par, dpop)
	}
}
