package config_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/config"
)

// designBFFExample is the BFF config of DESIGN.md, verbatim but for
// static_dir, which must exist.
const designBFFExample = `listen: 127.0.0.1:9200
public_url: http://127.0.0.1:9200       # the SPA's origin; callback is {public_url}/bff/callback
issuer: http://127.0.0.1:9000            # discovered
client_id: backend
client_secret: 8f3c1e0d9b7a4c2e6f5a1b3d7c9e0f2a
scope: openid profile email offline_access
storage: sqlite:///var/lib/castellan/bff.db
key_file: /var/lib/castellan/bff.key
static_dir: STATIC                   # or spa_upstream: http://127.0.0.1:5173
routes:
  - { path: /api/, upstream: http://127.0.0.1:7001/ }
`

func TestLoadBFF(t *testing.T) {
	static := t.TempDir()
	// A valid base the failing cases add one bad line to.
	base := "client_id: app\nclient_secret: " + secret32 + "\n"
	tests := []struct {
		name  string
		yaml  string
		env   []string
		want  []string
		check func(t *testing.T, c *config.BFF)
	}{
		{
			name: "ok/design-example",
			yaml: strings.Replace(designBFFExample, "STATIC", static, 1),
			check: func(t *testing.T, c *config.BFF) {
				eq(t, "listen", c.Listen, "127.0.0.1:9200")
				eq(t, "public_url", c.PublicURL, "http://127.0.0.1:9200")
				eq(t, "issuer", c.Issuer, "http://127.0.0.1:9000")
				eq(t, "client_id", c.ClientID, "backend")
				eq(t, "client_secret", c.ClientSecret, "8f3c1e0d9b7a4c2e6f5a1b3d7c9e0f2a")
				eq(t, "scope", c.Scope, "openid profile email offline_access")
				eq(t, "storage", c.Storage, "sqlite:///var/lib/castellan/bff.db")
				eq(t, "key_file", c.KeyFile, "/var/lib/castellan/bff.key")
				eq(t, "static_dir", c.StaticDir, static)
				eq(t, "routes", c.Routes, []config.BFFRoute{{Path: "/api/", Upstream: "http://127.0.0.1:7001/"}})
				eq(t, "session.idle_timeout", c.Session.IdleTimeout.D(), 30*time.Minute)
				eq(t, "session.absolute_timeout", c.Session.AbsoluteTimeout.D(), 12*time.Hour)
				eq(t, "refresh_before", c.RefreshBefore.D(), time.Minute)
			},
		},
		{
			name: "ok/env-overrides",
			yaml: base,
			env: []string{"CASTELLAN_PUBLIC_URL=https://app.example", "CASTELLAN_ROUTES_0_PATH=/orders/",
				"CASTELLAN_ROUTES_0_UPSTREAM=https://orders.internal/", "CASTELLAN_SESSION_IDLE_TIMEOUT=5m",
				"CASTELLAN_SPA_UPSTREAM=http://127.0.0.1:5173"},
			check: func(t *testing.T, c *config.BFF) {
				eq(t, "public_url", c.PublicURL, "https://app.example")
				eq(t, "routes", c.Routes, []config.BFFRoute{{Path: "/orders/", Upstream: "https://orders.internal/"}})
				eq(t, "session.idle_timeout", c.Session.IdleTimeout.D(), 5*time.Minute)
				eq(t, "spa_upstream", c.SPAUpstream, "http://127.0.0.1:5173")
			},
		},
		{name: "fail/unknown-key", yaml: base + "clients: []\n", want: []string{"clients: line 3: unknown key"}},
		{name: "fail/no-client", yaml: "client_secret: " + secret32 + "\n", want: []string{"client_id: required"}},
		{name: "fail/no-secret", yaml: "client_id: app\n", want: []string{"client_secret: required"}},
		{name: "fail/short-secret", yaml: "client_id: app\nclient_secret: short\n", want: []string{"client_secret: too short"}},
		{name: "fail/private-key-jwt-without-key", yaml: "client_id: app\ntoken_endpoint_auth_method: private_key_jwt\n", want: []string{"private_key_file: required"}},
		{name: "fail/private-key-jwt-with-secret", yaml: "client_id: app\ntoken_endpoint_auth_method: private_key_jwt\nprivate_key_file: k.pem\nclient_secret: " + secret32 + "\n", want: []string{"client_secret: not used with private_key_jwt"}},
		{name: "fail/key-file-with-secret-method", yaml: base + "private_key_file: k.pem\n", want: []string{"private_key_file: only with token_endpoint_auth_method private_key_jwt"}},
		{name: "fail/unknown-auth-method", yaml: base + "token_endpoint_auth_method: client_secret_post\n", want: []string{"token_endpoint_auth_method: want client_secret_basic or private_key_jwt"}},
		{name: "fail/no-openid", yaml: base + "scope: profile offline_access\n", want: []string{"scope: must include openid"}},
		{name: "fail/public-url-path-slash", yaml: base + "public_url: https://app.example/\n", want: []string{"public_url: must not end with /"}},
		{name: "fail/public-url-http-remote", yaml: base + "public_url: http://app.example\n", want: []string{"public_url: http on a non-loopback host"}},
		{name: "fail/issuer-query", yaml: base + "issuer: https://id.example?x=1\n", want: []string{"issuer: must not have a query"}},
		{name: "fail/issuer-relative", yaml: base + "issuer: /auth\n", want: []string{"issuer: want an absolute http(s) URL"}},
		{name: "fail/both-spa-sources", yaml: base + "static_dir: " + static + "\nspa_upstream: http://127.0.0.1:5173\n", want: []string{"static_dir: give static_dir or spa_upstream, not both"}},
		{name: "fail/static-dir-missing", yaml: base + "static_dir: " + filepath.Join(static, "nope") + "\n", want: []string{"static_dir: not a directory"}},
		{name: "fail/route-no-slash", yaml: base + "routes: [{path: /api, upstream: http://127.0.0.1:7001/}]\n", want: []string{"routes[0].path: want a path prefix"}},
		{name: "fail/route-dotdot", yaml: base + "routes: [{path: /a/../bff/, upstream: http://127.0.0.1:7001/}]\n", want: []string{"routes[0].path: want a plain path prefix"}},
		{name: "fail/route-own-path", yaml: base + "routes: [{path: /bff/x/, upstream: http://127.0.0.1:7001/}]\n", want: []string{"routes[0].path: \"/bff/x/\" is the gateway's own"}},
		{name: "fail/route-duplicate", yaml: base + "routes: [{path: /a/, upstream: http://127.0.0.1:7001/}, {path: /a/, upstream: http://127.0.0.1:7002/}]\n", want: []string{"routes[1].path: duplicate path"}},
		{name: "fail/route-http-remote", yaml: base + "routes: [{path: /a/, upstream: http://api.example/}]\n", want: []string{"routes[0].upstream: http on a non-loopback host"}},
		{name: "fail/route-no-upstream", yaml: base + "routes: [{path: /a/}]\n", want: []string{"routes[0].upstream: required"}},
		{name: "fail/idle-over-absolute", yaml: base + "session: {idle_timeout: 13h}\n", want: []string{"session.idle_timeout: longer than session.absolute_timeout"}},
		{name: "fail/storage", yaml: base + "storage: mysql://x\n", want: []string{"storage: want sqlite:PATH or postgres://"}},
		{name: "fail/env-named", yaml: base, env: []string{"CASTELLAN_SESSION_IDLE_TIMEOUT=0s"}, want: []string{"session.idle_timeout (CASTELLAN_SESSION_IDLE_TIMEOUT): want a positive duration"}},
		{name: "fail/every-problem-at-once", yaml: "public_url: ftp://x\nscope: email\n", want: []string{"public_url:", "client_id: required", "client_secret: required", "scope: must include openid"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "bff.yaml", tc.yaml)
			cfg, err := config.LoadBFF(path, tc.env)
			if len(tc.want) > 0 {
				checkRefusal(t, err, path, tc.want...)
				if cfg != nil {
					t.Errorf("got a config with the error, want nil")
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if tc.check != nil {
				tc.check(t, cfg)
			}
		})
	}
}

// The secret never appears in a refusal, even when it is what is wrong.
func TestLoadBFFSecretNotInMessage(t *testing.T) {
	_, err := config.LoadBFF("", []string{"CASTELLAN_CLIENT_ID=app", "CASTELLAN_CLIENT_SECRET=hunter2-short"})
	ce := checkRefusal(t, err, "environment", "client_secret (CASTELLAN_CLIENT_SECRET): too short")
	if strings.Contains(ce.Error(), "hunter2") {
		t.Errorf("got %q, want the secret left out", ce.Error())
	}
}

// TestBFFDefaultScope: the gateway asks for no offline_access unless told,
// so its refresh token is bound to the provider's session and dies at
// sign-out.
func TestBFFDefaultScope(t *testing.T) {
	eq(t, "default scope", config.DefaultBFF().Scope, "openid profile email")
}
