package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/config"
)

// secretClient is a confidential client for cases that add one field.
const secretClient = "clients:\n  - client_id: svc\n    client_secret: " + secret32 + "\n    grant_types: [client_credentials]\n"

// TestClientAudienceAndStrictAuth loads the client fields that name what a
// client's access tokens are for (audience) and how strictly its secret is
// held to one way of sending it, and client_assertion.max_lifetime: each
// from the file and the environment, and each bad value refused with its key.
func TestClientAudienceAndStrictAuth(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		env   []string
		want  string // "" loads, else a part of the one-line error
		check func(t *testing.T, c *config.Config)
	}{
		{name: "ok/default", yaml: secretClient, check: func(t *testing.T, c *config.Config) {
			eq(t, "client_assertion.max_lifetime", c.ClientAssertion.MaxLifetime.D(), time.Hour)
			eq(t, "strict_token_endpoint_auth_method", c.Clients[0].StrictTokenEndpointAuthMethod, false)
			eq(t, "audience", len(c.Clients[0].Audience), 0)
		}},
		{name: "ok/file", yaml: secretClient + "    strict_token_endpoint_auth_method: true\n    audience: [https://api.example/, orders-api, \"urn:example:billing\"]\n" +
			"client_assertion: { max_lifetime: 5m }\n", check: func(t *testing.T, c *config.Config) {
			eq(t, "client_assertion.max_lifetime", c.ClientAssertion.MaxLifetime.D(), 5*time.Minute)
			eq(t, "strict_token_endpoint_auth_method", c.Clients[0].StrictTokenEndpointAuthMethod, true)
			eq(t, "audience", c.Clients[0].Audience, []string{"https://api.example/", "orders-api", "urn:example:billing"})
		}},
		{name: "ok/env", yaml: secretClient, env: []string{"CASTELLAN_CLIENTS_0_AUDIENCE=https://a.example,b-api",
			"CASTELLAN_CLIENTS_0_STRICT_TOKEN_ENDPOINT_AUTH_METHOD=true", "CASTELLAN_CLIENT_ASSERTION_MAX_LIFETIME=10m"},
			check: func(t *testing.T, c *config.Config) {
				eq(t, "client_assertion.max_lifetime", c.ClientAssertion.MaxLifetime.D(), 10*time.Minute)
				eq(t, "strict_token_endpoint_auth_method", c.Clients[0].StrictTokenEndpointAuthMethod, true)
				eq(t, "audience", c.Clients[0].Audience, []string{"https://a.example", "b-api"})
			}},
		{name: "fail/audience-empty-string", yaml: secretClient + "    audience: [\"\"]\n", want: "clients[0].audience[0]: must not be empty"},
		{name: "fail/audience-space", yaml: secretClient + "    audience: [\"orders api\"]\n", want: "clients[0].audience[0]: must not hold white space"},
		{name: "fail/audience-relative-with-colon", yaml: secretClient + "    audience: [\"://x\"]\n", want: "clients[0].audience[0]: want an absolute URI"},
		{name: "fail/audience-fragment", yaml: secretClient + "    audience: [\"https://api.example/#x\"]\n", want: "clients[0].audience[0]: want an absolute URI"},
		{name: "fail/audience-too-long", yaml: secretClient + "    audience: [" + strings.Repeat("a", config.MaxAudienceLength+1) + "]\n", want: "clients[0].audience[0]: longer than"},
		{name: "fail/audience-twice", yaml: secretClient + "    audience: [a, a]\n", want: "clients[0].audience[1]: \"a\" listed twice"},
		{name: "fail/strict-public-client", yaml: "clients:\n" + spa + "    strict_token_endpoint_auth_method: true\n",
			want: "clients[0].strict_token_endpoint_auth_method: only for client_secret_basic and client_secret_post"},
		{name: "fail/max-lifetime-zero", yaml: "client_assertion: { max_lifetime: 0s }\n", want: "client_assertion.max_lifetime: want a positive duration"},
		{name: "fail/max-lifetime-too-long", yaml: "client_assertion: { max_lifetime: 25h }\n", want: "client_assertion.max_lifetime: at most 24h0m0s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "castellan.yaml", tc.yaml)
			cfg, err := config.Load(path, tc.env)
			if tc.want != "" {
				checkRefusal(t, err, path, tc.want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg)
		})
	}
}
