package config_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/config"
)

// designExample is the provider config of DESIGN.md, verbatim: every key it
// shows must load.
const designExample = `issuer: http://127.0.0.1:9000        # public base URL
listen: 127.0.0.1:9000
storage: sqlite:///var/lib/castellan/castellan.db   # or postgres://user@host/db
key_file: /var/lib/castellan/master.key             # created 0600 if missing
session:   { idle_timeout: 30m, absolute_timeout: 12h }
tokens:    { access_token_ttl: 1h, refresh_token_idle_ttl: 24h, refresh_token_absolute_ttl: 720h,
             refresh_token_grace: 0s, authorization_code_ttl: 60s }
clients:
  - client_id: spa
    token_endpoint_auth_method: none          # none | client_secret_basic | client_secret_post | private_key_jwt
    redirect_uris: [http://127.0.0.1:9100/callback]
    post_logout_redirect_uris: [http://127.0.0.1:9100/]
    allowed_origins: [http://127.0.0.1:9100]  # CORS and frame-ancestors for silent renew
    grant_types: [authorization_code, refresh_token]   # implicit and client_credentials only when listed
    response_types: [code]                    # "token" / "id_token token" only when listed
    scope: openid profile email offline_access
    skip_consent: true                        # first-party app
    dpop_bound_access_tokens: false
  - client_id: backend
    client_secret: 8f3c1e0d9b7a4c2e6f5a1b3d7c9e0f2a   # or client_secret_hash (see below)
    token_endpoint_auth_method: client_secret_basic
    grant_types: [client_credentials, authorization_code, refresh_token]
    redirect_uris: [http://127.0.0.1:9200/bff/callback]
    backchannel_logout_uri: http://127.0.0.1:9200/bff/backchannel-logout
users:
  - username: alice
    password: wonderland                      # or password_hash (argon2id PHC string)
    email: alice@example.com
    email_verified: true
    name: Alice Liddell
`

// spa is a valid public client, for cases that add one bad field.
const spa = `  - client_id: spa
    redirect_uris: [http://127.0.0.1:9100/callback]
`

const secret32 = "0123456789abcdef0123456789abcdef"

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkRefusal asserts the contract of a refusal to start: a *config.Error on
// one line that names the source and every wanted key.
func checkRefusal(t *testing.T, err error, source string, want ...string) *config.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one naming %q", want)
	}
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("got %T (%v), want *config.Error", err, err)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("got a message of several lines, want one: %q", msg)
	}
	if !strings.HasPrefix(msg, "config "+source+": ") {
		t.Errorf("got %q, want it to start with %q", msg, "config "+source+": ")
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("got %q, want it to contain %q", msg, w)
		}
	}
	return ce
}

// An EC P-256 key of RFC 7517 Appendix A.1 and A.2.
const (
	ecX = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4"
	ecY = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"
	ecD = "870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		// want, for a failing case, are substrings of the message: the key
		// path first, as "key: " or "key (VARIABLE): ".
		want  []string
		check func(t *testing.T, c *config.Config)
	}{
		{
			name: "ok/design-example",
			yaml: designExample,
			check: func(t *testing.T, c *config.Config) {
				eq(t, "issuer", c.Issuer, "http://127.0.0.1:9000")
				eq(t, "listen", c.Listen, "127.0.0.1:9000")
				eq(t, "storage", c.Storage, "sqlite:///var/lib/castellan/castellan.db")
				eq(t, "key_file", c.KeyFile, "/var/lib/castellan/master.key")
				eq(t, "session.idle_timeout", c.Session.IdleTimeout.D(), 30*time.Minute)
				eq(t, "session.absolute_timeout", c.Session.AbsoluteTimeout.D(), 12*time.Hour)
				eq(t, "tokens.access_token_ttl", c.Tokens.AccessTokenTTL.D(), time.Hour)
				eq(t, "tokens.refresh_token_idle_ttl", c.Tokens.RefreshTokenIdleTTL.D(), 24*time.Hour)
				eq(t, "tokens.refresh_token_absolute_ttl", c.Tokens.RefreshTokenAbsoluteTTL.D(), 720*time.Hour)
				eq(t, "tokens.refresh_token_grace", c.Tokens.RefreshTokenGrace.D(), time.Duration(0))
				eq(t, "tokens.authorization_code_ttl", c.Tokens.AuthorizationCodeTTL.D(), 60*time.Second)
				// Keys the file leaves out keep their defaults.
				eq(t, "tokens.id_token_ttl", c.Tokens.IDTokenTTL.D(), time.Hour)
				eq(t, "signing.algorithms", c.Signing.Algorithms, []string{"ES256", "RS256"})
				eq(t, "database.migrate", c.Database.Migrate, true)

				if len(c.Clients) != 2 {
					t.Fatalf("got %d clients, want 2", len(c.Clients))
				}
				s := c.Clients[0]
				eq(t, "clients[0].client_id", s.ClientID, "spa")
				eq(t, "clients[0].token_endpoint_auth_method", s.TokenEndpointAuthMethod, "none")
				eq(t, "clients[0].redirect_uris", s.RedirectURIs, []string{"http://127.0.0.1:9100/callback"})
				eq(t, "clients[0].post_logout_redirect_uris", s.PostLogoutRedirectURIs, []string{"http://127.0.0.1:9100/"})
				eq(t, "clients[0].allowed_origins", s.AllowedOrigins, []string{"http://127.0.0.1:9100"})
				eq(t, "clients[0].grant_types", s.GrantTypes, []string{"authorization_code", "refresh_token"})
				eq(t, "clients[0].response_types", s.ResponseTypes, []string{"code"})
				eq(t, "clients[0].scope", s.Scope, "openid profile email offline_access")
				eq(t, "clients[0].skip_consent", s.SkipConsent, true)
				eq(t, "clients[0].dpop_bound_access_tokens", s.DPoPBoundAccessTokens, false)
				b := c.Clients[1]
				eq(t, "clients[1].client_id", b.ClientID, "backend")
				eq(t, "clients[1].client_secret", b.ClientSecret, "8f3c1e0d9b7a4c2e6f5a1b3d7c9e0f2a")
				eq(t, "clients[1].token_endpoint_auth_method", b.TokenEndpointAuthMethod, "client_secret_basic")
				eq(t, "clients[1].grant_types", b.GrantTypes, []string{"client_credentials", "authorization_code", "refresh_token"})
				eq(t, "clients[1].redirect_uris", b.RedirectURIs, []string{"http://127.0.0.1:9200/bff/callback"})
				eq(t, "clients[1].backchannel_logout_uri", b.BackchannelLogoutURI, "http://127.0.0.1:9200/bff/backchannel-logout")
				eq(t, "clients[1].skip_consent", b.SkipConsent, false)

				if len(c.Users) != 1 {
					t.Fatalf("got %d users, want 1", len(c.Users))
				}
				u := c.Users[0]
				eq(t, "users[0]", u, config.User{Username: "alice", Password: "wonderland", Email: "alice@example.com",
					EmailVerified: true, Name: "Alice Liddell"})
			},
		},
		{
			name: "ok/empty-file",
			yaml: "# nothing here\n",
			check: func(t *testing.T, c *config.Config) {
				if !reflect.DeepEqual(*c, config.Default()) {
					t.Errorf("got %+v, want the defaults %+v", *c, config.Default())
				}
			},
		},
		{
			name:  "ok/http-issuer-loopback",
			yaml:  "issuer: http://localhost:9000\nlisten: '[::1]:9000'\n",
			check: func(t *testing.T, c *config.Config) { eq(t, "issuer", c.Issuer, "http://localhost:9000") },
		},
		{
			name: "ok/pprof-on-loopback",
			yaml: "debug: {pprof_listen: '127.0.0.1:6060'}\n",
			check: func(t *testing.T, c *config.Config) {
				eq(t, "debug.pprof_listen", c.Debug.PprofListen, "127.0.0.1:6060")
			},
		},
		{
			name: "ok/http-issuer-ipv6-loopback",
			yaml: "issuer: http://[::1]:9000/castellan\n",
		},
		{
			name:  "ok/insecure-http",
			yaml:  "issuer: http://auth.internal:9000\ninsecure_http: true\nclients:\n  - client_id: spa\n    redirect_uris: [http://app.internal/callback]\n",
			check: func(t *testing.T, c *config.Config) { eq(t, "insecure_http", c.InsecureHTTP, true) },
		},
		{
			name: "ok/https-issuer-with-path",
			yaml: "issuer: https://example.com/auth\n",
		},
		{
			name: "ok/lists-as-strings",
			yaml: "signing: {algorithms: 'EdDSA, ES256'}\ntrusted_proxies: 10.0.0.0/8 192.168.1.1\nclients:\n" +
				"  - client_id: legacy\n    redirect_uris: https://a.example/cb\n    grant_types: [implicit]\n    response_types: [id_token token, token]\n",
			check: func(t *testing.T, c *config.Config) {
				eq(t, "signing.algorithms", c.Signing.Algorithms, []string{"EdDSA", "ES256"})
				eq(t, "trusted_proxies", c.TrustedProxies, []string{"10.0.0.0/8", "192.168.1.1"})
				eq(t, "clients[0].redirect_uris", c.Clients[0].RedirectURIs, []string{"https://a.example/cb"})
				eq(t, "clients[0].response_types", c.Clients[0].ResponseTypes, []string{"id_token token", "token"})
			},
		},
		{
			name: "ok/secret-hash",
			yaml: "clients:\n  - client_id: svc\n    client_secret_hash: sha256:" + strings.Repeat("ab", 32) + "\n    grant_types: [client_credentials]\n",
		},
		{
			name: "ok/null-keeps-default",
			yaml: "session:\n  idle_timeout:\n",
			check: func(t *testing.T, c *config.Config) {
				eq(t, "session.idle_timeout", c.Session.IdleTimeout.D(), 30*time.Minute)
			},
		},

		{name: "fail/unknown-key", yaml: "issuer: http://127.0.0.1:9000\nsesion:\n  idle_timeout: 10m\n", want: []string{"sesion: line 2: unknown key"}},
		{name: "fail/unknown-nested-key", yaml: "session:\n  idle_timout: 10m\n", want: []string{"session.idle_timout: line 2: unknown key"}},
		{name: "fail/unknown-client-key", yaml: "clients:\n" + spa + "  - client_id: b\n    redirect_uri: https://b.example/cb\n",
			want: []string{"clients[1].redirect_uri: line 5: unknown key"}},
		{name: "fail/duplicate-yaml-key", yaml: "issuer: http://127.0.0.1:9000\nissuer: http://127.0.0.1:9001\n", want: []string{"issuer: line 2: duplicate key (first at line 1)"}},
		{name: "fail/not-a-mapping", yaml: "- issuer\n", want: []string{"top level: line 1: want a mapping"}},
		{name: "fail/section-not-a-mapping", yaml: "session: 30m\n", want: []string{"session: line 1: want a mapping"}},
		{name: "fail/clients-not-a-list", yaml: "clients: {client_id: spa}\n", want: []string{"clients: line 1: want a list"}},
		{name: "fail/not-yaml", yaml: "issuer: [\n", want: []string{"yaml"}},
		{name: "fail/key-with-newline", yaml: "\"ses\\nsion\": 1\n", want: []string{"ses sion: line 1: unknown key"}},

		{name: "fail/http-issuer-non-loopback", yaml: "issuer: http://auth.example.com\n", want: []string{"issuer: http on a non-loopback host needs insecure_http: true"}},
		{name: "fail/issuer-trailing-slash", yaml: "issuer: https://auth.example.com/\n", want: []string{"issuer: must not end with /"}},
		{name: "fail/issuer-with-query", yaml: "issuer: https://auth.example.com?tenant=a\n", want: []string{"issuer: must not have a query"}},
		{name: "fail/issuer-with-empty-query", yaml: "issuer: https://auth.example.com?\n", want: []string{"issuer: must not have a query"}},
		{name: "fail/issuer-with-fragment", yaml: "issuer: 'https://auth.example.com#x'\n", want: []string{"issuer: must not have a query, fragment"}},
		{name: "fail/issuer-not-a-url", yaml: "issuer: auth.example.com\n", want: []string{"issuer: want an absolute http(s) URL"}},
		{name: "fail/issuer-empty", yaml: "issuer: ''\n", want: []string{"issuer: required"}},
		{name: "fail/bad-listen", yaml: "listen: 9000\n", want: []string{"listen: want host:port"}},
		{name: "fail/bad-storage", yaml: "storage: mysql://db\n", want: []string{"storage: want sqlite:PATH or postgres://"}},
		{name: "fail/bad-trusted-proxy", yaml: "trusted_proxies: [10.0.0.0/8, proxy.local]\n", want: []string{"trusted_proxies[1]: want an IP address or CIDR"}},
		{name: "fail/bad-log-level", yaml: "log: {level: verbose}\n", want: []string{"log.level: want debug, info, warn or error"}},
		{name: "fail/pprof-not-loopback", yaml: "debug: {pprof_listen: '0.0.0.0:6060'}\n", want: []string{"debug.pprof_listen: profiles expose the process's internals: want a loopback address"}},
		{name: "fail/pprof-no-port", yaml: "debug: {pprof_listen: '127.0.0.1'}\n", want: []string{"debug.pprof_listen: want host:port"}},

		{name: "fail/bad-duration", yaml: "session:\n  idle_timeout: 30\n", want: []string{"session.idle_timeout: line 2: want a duration like 30s, 15m or 12h"}},
		{name: "fail/duration-in-days", yaml: "tokens:\n  refresh_token_absolute_ttl: 30d\n", want: []string{"tokens.refresh_token_absolute_ttl: line 2: want a duration"}},
		{name: "fail/negative-duration", yaml: "tokens:\n  access_token_ttl: -1h\n", want: []string{"tokens.access_token_ttl: line 2: want a duration that is not negative"}},
		{name: "fail/zero-duration", yaml: "session: {absolute_timeout: 0s}\n", want: []string{"session.absolute_timeout: want a positive duration"}},
		{name: "fail/idle-longer-than-absolute", yaml: "session: {idle_timeout: 13h, absolute_timeout: 12h}\n", want: []string{"session.idle_timeout: longer than session.absolute_timeout"}},
		{name: "fail/refresh-idle-longer-than-absolute", yaml: "tokens: {refresh_token_idle_ttl: 48h, refresh_token_absolute_ttl: 24h}\n", want: []string{"tokens.refresh_token_idle_ttl: longer than"}},
		{name: "fail/code-ttl-over-10m", yaml: "tokens:\n  authorization_code_ttl: 11m\n", want: []string{"tokens.authorization_code_ttl: at most 10m"}},
		{name: "fail/refresh-grace-over-1m", yaml: "tokens: {refresh_token_grace: 5m}\n", want: []string{"tokens.refresh_token_grace: at most 1m"}},
		{name: "fail/bad-bool", yaml: "insecure_http: yes\n", want: []string{"insecure_http: line 1: want true or false"}},
		{name: "fail/bad-int", yaml: "passwords: {iterations: two}\n", want: []string{"passwords.iterations: line 1: want a whole number"}},
		{name: "fail/argon-iterations-unverifiable", yaml: "passwords: {iterations: 65}\n", want: []string{"passwords.iterations: want 1 to 64"}},
		{name: "fail/argon-memory-too-small", yaml: "passwords: {memory_kib: 512}\n", want: []string{"passwords.memory_kib: want 1024 to"}},
		{name: "fail/throttle-base-over-max", yaml: "throttle: {base_delay: 1h, max_delay: 1m}\n", want: []string{"throttle.base_delay: longer than throttle.max_delay"}},

		{name: "fail/unknown-signing-alg", yaml: "signing:\n  algorithms: [ES256, HS256]\n", want: []string{"signing.algorithms[1]: want one of ES256, RS256, EdDSA, got \"HS256\""}},
		{name: "fail/signing-alg-twice", yaml: "signing:\n  algorithms: [ES256, ES256]\n", want: []string{"signing.algorithms[1]: ES256 listed twice"}},
		{name: "fail/no-signing-alg", yaml: "signing:\n  algorithms: []\n", want: []string{"signing.algorithms: list at least one"}},
		{name: "fail/id-token-alg-not-configured", yaml: "signing: {algorithms: [ES256]}\nclients:\n" + spa + "    id_token_signed_response_alg: RS256\n",
			want: []string{"clients[0].id_token_signed_response_alg: \"RS256\" is not in signing.algorithms"}},

		{name: "fail/duplicate-client-id", yaml: "clients:\n" + spa + spa, want: []string{"clients[1].client_id: duplicate client id \"spa\" (also clients[0])"}},
		{name: "fail/missing-client-id", yaml: "clients:\n  - redirect_uris: [https://a.example/cb]\n", want: []string{"clients[0].client_id: required"}},
		{name: "fail/bad-redirect-uri", yaml: "clients:\n" + spa + "  - client_id: b\n    redirect_uris: [https://b.example/cb, /callback]\n",
			want: []string{"clients[1].redirect_uris[1]: want an absolute URI"}},
		{name: "fail/redirect-uri-fragment", yaml: "clients:\n  - client_id: a\n    redirect_uris: ['https://a.example/cb#x']\n", want: []string{"clients[0].redirect_uris[0]: must not have a fragment"}},
		{name: "fail/redirect-uri-http-non-loopback", yaml: "clients:\n  - client_id: a\n    redirect_uris: [http://a.example/cb]\n", want: []string{"clients[0].redirect_uris[0]: http on a non-loopback host"}},
		{name: "fail/redirect-uri-no-host", yaml: "clients:\n  - client_id: a\n    redirect_uris: ['http:/cb']\n", want: []string{"clients[0].redirect_uris[0]: missing host"}},
		{name: "fail/redirect-uri-javascript", yaml: "clients:\n  - client_id: a\n    redirect_uris: ['javascript:alert(1)']\n", want: []string{"clients[0].redirect_uris[0]: scheme \"javascript\" is not allowed"}},
		{name: "fail/bad-post-logout-uri", yaml: "clients:\n" + spa + "    post_logout_redirect_uris: [../]\n", want: []string{"clients[0].post_logout_redirect_uris[0]: want an absolute URI"}},
		{name: "fail/missing-redirect-uris", yaml: "clients:\n  - client_id: a\n", want: []string{"clients[0].redirect_uris: required for authorization_code"}},
		{name: "fail/bad-backchannel-logout-uri", yaml: "clients:\n" + spa + "    backchannel_logout_uri: /logout\n", want: []string{"clients[0].backchannel_logout_uri: want an absolute http(s) URL"}},
		{name: "fail/short-client-secret", yaml: "clients:\n  - client_id: svc\n    client_secret: tooshort\n    grant_types: [client_credentials]\n",
			want: []string{"clients[0].client_secret: too short: at least 32 characters"}},
		{name: "fail/confidential-without-secret", yaml: "clients:\n  - client_id: svc\n    token_endpoint_auth_method: client_secret_post\n    grant_types: [client_credentials]\n",
			want: []string{"clients[0].client_secret: required for client_secret_post"}},
		{name: "fail/secret-and-hash", yaml: "clients:\n  - client_id: svc\n    client_secret: " + secret32 + "\n    client_secret_hash: sha256:" + strings.Repeat("ab", 32) + "\n    grant_types: [client_credentials]\n",
			want: []string{"clients[0].client_secret: give client_secret or client_secret_hash, not both"}},
		{name: "fail/bad-secret-hash", yaml: "clients:\n  - client_id: svc\n    client_secret_hash: md5:abc\n    grant_types: [client_credentials]\n",
			want: []string{"clients[0].client_secret_hash: want sha256:<64 hex digits>"}},
		{name: "fail/public-client-with-secret", yaml: "clients:\n" + spa + "    token_endpoint_auth_method: none\n    client_secret: " + secret32 + "\n",
			want: []string{"clients[0].client_secret: a public client"}},
		{name: "fail/public-client-with-secret-hash", yaml: "clients:\n" + spa + "    token_endpoint_auth_method: none\n    client_secret_hash: sha256:" + strings.Repeat("ab", 32) + "\n",
			want: []string{"clients[0].client_secret_hash: a public client"}},
		{name: "fail/unknown-auth-method", yaml: "clients:\n" + spa + "    token_endpoint_auth_method: tls_client_auth\n", want: []string{"clients[0].token_endpoint_auth_method: want none"}},
		{name: "fail/client-credentials-public", yaml: "clients:\n  - client_id: svc\n    grant_types: [client_credentials]\n", want: []string{"clients[0].grant_types: client_credentials needs a confidential client"}},
		{name: "fail/unknown-grant-type", yaml: "clients:\n" + spa + "    grant_types: [authorization_code, password]\n", want: []string{"clients[0].grant_types[1]: want one of"}},
		{name: "fail/bad-origin", yaml: "clients:\n" + spa + "    allowed_origins: [http://127.0.0.1:9100/]\n", want: []string{"clients[0].allowed_origins[0]: want an origin"}},
		{name: "fail/origin-with-path", yaml: "clients:\n" + spa + "    allowed_origins: [https://a.example, https://a.example/app]\n", want: []string{"clients[0].allowed_origins[1]: want an origin"}},
		{name: "fail/implicit-response-type-without-grant", yaml: "clients:\n" + spa + "    response_types: [code, token]\n",
			want: []string{"clients[0].response_types[1]: \"token\" needs grant_types to list implicit"}},
		{name: "fail/code-response-type-without-grant", yaml: "clients:\n" + spa + "    grant_types: [implicit]\n    response_types: [code]\n",
			want: []string{"clients[0].response_types[0]: code needs grant_types to list authorization_code"}},
		{name: "fail/bad-scope", yaml: "clients:\n" + spa + "    scope: 'openid \"profile\"'\n", want: []string{"clients[0].scope: holds a character not allowed"}},
		{name: "fail/bad-client-bool", yaml: "clients:\n" + spa + "    skip_consent: maybe\n", want: []string{"clients[0].skip_consent: line 4: want true or false"}},

		{name: "ok/private-key-jwt-jwks-mapping", yaml: "clients:\n  - client_id: svc\n    token_endpoint_auth_method: private_key_jwt\n    grant_types: [client_credentials]\n" +
			"    token_endpoint_auth_signing_alg: ES256\n    jwks:\n      keys:\n        - {kty: EC, crv: P-256, kid: k1, x: " + ecX + ", y: " + ecY + "}\n",
			check: func(t *testing.T, c *config.Config) {
				eq(t, "clients[0].jwks", string(c.Clients[0].JWKS), `{"keys":[{"crv":"P-256","kid":"k1","kty":"EC","x":"`+ecX+`","y":"`+ecY+`"}]}`)
			}},
		{name: "ok/private-key-jwt-jwks-json", yaml: "clients:\n  - client_id: svc\n    token_endpoint_auth_method: private_key_jwt\n    grant_types: [client_credentials]\n" +
			"    jwks: '{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" + ecX + "\",\"y\":\"" + ecY + "\"}]}'\n"},
		{name: "ok/private-key-jwt-jwks-uri", yaml: "clients:\n  - client_id: svc\n    token_endpoint_auth_method: private_key_jwt\n    grant_types: [client_credentials]\n    jwks_uri: https://svc.example/jwks\n"},
		{name: "ok/par", yaml: "par: {required: true}\nclients:\n" + spa + "    require_pushed_authorization_requests: true\n",
			check: func(t *testing.T, c *config.Config) {
				eq(t, "par.required", c.PAR.Required, true)
				eq(t, "clients[0].require_pushed_authorization_requests", c.Clients[0].RequirePushedAuthorizationRequests, true)
			}},
		{name: "ok/authorize-limits", yaml: "authorize: {pending_ttl: 5m, max_pending: 50000, max_pending_per_address: 5000}\n",
			check: func(t *testing.T, c *config.Config) {
				eq(t, "authorize.pending_ttl", c.Authorize.PendingTTL.D(), 5*time.Minute)
				eq(t, "authorize.max_pending", c.Authorize.MaxPending, 50000)
				eq(t, "authorize.max_pending_per_address", c.Authorize.MaxPendingPerAddress, 5000)
			}},
		{name: "fail/client-id-over-limit", yaml: "clients:\n  - client_id: " + strings.Repeat("c", 257) + "\n    grant_types: [client_credentials]\n    client_secret: " + secret32 + "\n",
			want: []string{"clients[0].client_id: longer than 256 bytes"}},
		{name: "fail/redirect-uri-over-limit", yaml: "clients:\n  - client_id: spa\n    redirect_uris: [https://app.example/" + strings.Repeat("p", 2048) + "]\n",
			want: []string{"clients[0].redirect_uris[0]: longer than 2048 bytes"}},
		{name: "fail/authorize-pending-ttl-too-long", yaml: "authorize: {pending_ttl: 2h}\n", want: []string{"authorize.pending_ttl: want 1m0s to 1h0m0s"}},
		{name: "fail/authorize-pending-ttl-too-short", yaml: "authorize: {pending_ttl: 10s}\n", want: []string{"authorize.pending_ttl: want 1m0s to 1h0m0s"}},
		{name: "fail/authorize-max-pending-zero", yaml: "authorize: {max_pending: 0}\n", want: []string{"authorize.max_pending: want at least 1"}},
		{name: "fail/authorize-per-address-over-total", yaml: "authorize: {max_pending: 10, max_pending_per_address: 11}\n",
			want: []string{"authorize.max_pending_per_address: more than authorize.max_pending (10)"}},
		{name: "fail/private-key-jwt-without-keys", yaml: "clients:\n  - client_id: svc\n    token_endpoint_auth_method: private_key_jwt\n    grant_types: [client_credentials]\n",
			want: []string{"clients[0].jwks: private_key_jwt needs jwks or jwks_uri"}},
		{name: "fail/private-key-jwt-jwks-and-uri", yaml: "clients:\n  - client_id: svc\n    token_endpoint_auth_method: private_key_jwt\n    grant_types: [client_credentials]\n" +
			"    jwks_uri: https://svc.example/jwks\n    jwks: {keys: [{kty: EC, crv: P-256, x: " + ecX + ", y: " + ecY + "}]}\n",
			want: []string{"clients[0].jwks: give jwks or jwks_uri, not both"}},
		{name: "fail/private-key-jwt-with-secret", yaml: "clients:\n  - client_id: svc\n    token_endpoint_auth_method: private_key_jwt\n    grant_types: [client_credentials]\n" +
			"    client_secret: " + secret32 + "\n    jwks_uri: https://svc.example/jwks\n",
			want: []string{"clients[0].client_secret: a private_key_jwt client has no secret"}},
		{name: "fail/private-key-jwt-private-key", yaml: "clients:\n  - client_id: svc\n    token_endpoint_auth_method: private_key_jwt\n    grant_types: [client_credentials]\n" +
			"    jwks: {keys: [{kty: EC, crv: P-256, x: " + ecX + ", y: " + ecY + ", d: " + ecD + "}]}\n",
			want: []string{"clients[0].jwks: key 0", "publish public keys only"}},
		{name: "fail/private-key-jwt-symmetric-key", yaml: "clients:\n  - client_id: svc\n    token_endpoint_auth_method: private_key_jwt\n    grant_types: [client_credentials]\n" +
			"    jwks: {keys: [{kty: oct, k: AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow}]}\n",
			want: []string{"clients[0].jwks: key 0", "symmetric keys are not allowed"}},
		{name: "fail/private-key-jwt-hs256", yaml: "clients:\n  - client_id: svc\n    token_endpoint_auth_method: private_key_jwt\n    grant_types: [client_credentials]\n" +
			"    jwks_uri: https://svc.example/jwks\n    token_endpoint_auth_signing_alg: HS256\n",
			want: []string{"clients[0].token_endpoint_auth_signing_alg: want one of ES256, EdDSA, RS256, PS256"}},
		{name: "fail/private-key-jwt-http-jwks-uri", yaml: "clients:\n  - client_id: svc\n    token_endpoint_auth_method: private_key_jwt\n    grant_types: [client_credentials]\n    jwks_uri: http://svc.example/jwks\n",
			want: []string{"clients[0].jwks_uri: http on a non-loopback host"}},
		{name: "fail/jwks-on-secret-client", yaml: "clients:\n  - client_id: svc\n    client_secret: " + secret32 + "\n    grant_types: [client_credentials]\n    jwks_uri: https://svc.example/jwks\n",
			want: []string{"clients[0].jwks_uri: only for token_endpoint_auth_method: private_key_jwt"}},

		{name: "fail/duplicate-username-case-insensitive", yaml: "users:\n  - {username: alice, password: wonderland}\n  - {username: Alice, password: looking-glass}\n",
			want: []string{"users[1].username: duplicate username \"Alice\" (also users[0]"}},
		{name: "fail/username-with-space-around", yaml: "users:\n  - {username: ' alice', password: wonderland}\n", want: []string{"users[0].username: must not start or end with white space"}},
		{name: "fail/username-too-long", yaml: "users:\n  - {username: " + strings.Repeat("a", 129) + ", password: wonderland}\n", want: []string{"users[0].username: want 1 to 128 printable characters"}},
		{name: "fail/user-without-password", yaml: "users:\n  - {username: alice}\n", want: []string{"users[0].password: give password or password_hash"}},
		{name: "fail/user-bad-password-hash", yaml: "users:\n  - {username: alice, password_hash: '$2y$10$abc'}\n", want: []string{"users[0].password_hash: want an argon2id PHC string"}},

		{
			name: "fail/every-problem-at-once",
			yaml: "issuer: http://auth.example.com\nsession: {idle_timeout: 13h}\nclients:\n" + spa + spa,
			want: []string{"issuer: http on", "; session.idle_timeout: longer", "; clients[1].client_id: duplicate"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, "castellan.yaml", tt.yaml)
			cfg, err := config.Load(path, nil)
			if strings.HasPrefix(tt.name, "ok/") {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				if tt.check != nil {
					tt.check(t, cfg)
				}
				return
			}
			checkRefusal(t, err, path, tt.want...)
			if cfg != nil {
				t.Errorf("got a config with the error, want nil")
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := config.Load(path, nil)
	checkRefusal(t, err, path, "no such file")
}

func TestDefaultIsValid(t *testing.T) {
	c := config.Default()
	if problems := c.Validate(); len(problems) > 0 {
		t.Errorf("got problems %q with the defaults, want none", problems)
	}
}

func TestEnvOverrides(t *testing.T) {
	file := "clients:\n  - client_id: backend\n    client_secret: " + secret32 + "\n    grant_types: [client_credentials]\n"
	path := writeFile(t, "castellan.yaml", file)
	otherSecret := strings.Repeat("s", 40)
	cfg, err := config.Load(path, []string{
		"CASTELLAN_SESSION_IDLE_TIMEOUT=10m",
		"CASTELLAN_CLIENTS_0_CLIENT_SECRET=" + otherSecret,
		"CASTELLAN_SIGNING_ALGORITHMS=ES256,EdDSA",
		"CASTELLAN_INSECURE_HTTP=true",
		"CASTELLAN_PASSWORDS_ITERATIONS=3",
		"CASTELLAN_FOO=bar",              // unrelated: ignored
		"CASTELLAN_CLIENTS_0_FOO=bar",    // names no key of a client: ignored
		"CASTELLAN_BFF_STATIC_DIR=./web", // another program's: ignored
		"HOME=/root",                     // not ours
		"CASTELLAN_LOG_LEVEL",            // no "=": ignored
	})
	if err != nil {
		t.Fatalf("got %v, want no error", err)
	}
	eq(t, "session.idle_timeout", cfg.Session.IdleTimeout.D(), 10*time.Minute)
	eq(t, "session.absolute_timeout", cfg.Session.AbsoluteTimeout.D(), 12*time.Hour)
	eq(t, "clients[0].client_secret", cfg.Clients[0].ClientSecret, otherSecret)
	eq(t, "clients[0].client_id", cfg.Clients[0].ClientID, "backend")
	eq(t, "signing.algorithms", cfg.Signing.Algorithms, []string{"ES256", "EdDSA"})
	eq(t, "insecure_http", cfg.InsecureHTTP, true)
	eq(t, "passwords.iterations", cfg.Passwords.Iterations, 3)
	eq(t, "clients", len(cfg.Clients), 1)
}

func TestEnvListSeparators(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  []string
	}{
		{"ES256,EdDSA", []string{"ES256", "EdDSA"}},
		{"ES256, EdDSA", []string{"ES256", "EdDSA"}},
		{"ES256 EdDSA", []string{"ES256", "EdDSA"}},
		{" RS256 ", []string{"RS256"}},
	} {
		cfg, err := config.Load("", []string{"CASTELLAN_SIGNING_ALGORITHMS=" + tt.value})
		if err != nil {
			t.Errorf("%q: got %v, want no error", tt.value, err)
			continue
		}
		eq(t, tt.value, cfg.Signing.Algorithms, tt.want)
	}
	// With commas, an element may hold a space: the response type "id_token token".
	cfg, err := config.Load("", []string{
		"CASTELLAN_CLIENTS_0_CLIENT_ID=legacy",
		"CASTELLAN_CLIENTS_0_REDIRECT_URIS=https://a.example/cb",
		"CASTELLAN_CLIENTS_0_GRANT_TYPES=implicit",
		"CASTELLAN_CLIENTS_0_RESPONSE_TYPES=id_token token,token",
	})
	if err != nil {
		t.Fatalf("got %v, want no error", err)
	}
	eq(t, "clients[0].response_types", cfg.Clients[0].ResponseTypes, []string{"id_token token", "token"})
}

func TestEnvOnly(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Load("", []string{
		"CASTELLAN_ISSUER=https://auth.example.com",
		"CASTELLAN_LISTEN=:8443",
		"CASTELLAN_STORAGE=sqlite://" + filepath.Join(dir, "c.db"),
		"CASTELLAN_KEY_FILE=" + filepath.Join(dir, "master.key"),
		"CASTELLAN_TOKENS_AUTHORIZATION_CODE_TTL=30s",
		"CASTELLAN_DATABASE_MIGRATE=false",
		// Lists of clients and users can come from the environment alone.
		"CASTELLAN_CLIENTS_0_CLIENT_ID=spa",
		"CASTELLAN_CLIENTS_0_REDIRECT_URIS=https://app.example.com/cb https://app.example.com/cb2",
		"CASTELLAN_CLIENTS_0_SKIP_CONSENT=true",
		"CASTELLAN_CLIENTS_1_CLIENT_ID=svc",
		"CASTELLAN_CLIENTS_1_CLIENT_SECRET=" + secret32,
		"CASTELLAN_CLIENTS_1_GRANT_TYPES=client_credentials",
		"CASTELLAN_USERS_0_USERNAME=alice",
		"CASTELLAN_USERS_0_PASSWORD=wonderland",
	})
	if err != nil {
		t.Fatalf("got %v, want no error", err)
	}
	eq(t, "issuer", cfg.Issuer, "https://auth.example.com")
	eq(t, "listen", cfg.Listen, ":8443")
	eq(t, "tokens.authorization_code_ttl", cfg.Tokens.AuthorizationCodeTTL.D(), 30*time.Second)
	eq(t, "database.migrate", cfg.Database.Migrate, false)
	want := []config.Client{
		{ClientID: "spa", RedirectURIs: []string{"https://app.example.com/cb", "https://app.example.com/cb2"}, SkipConsent: true},
		{ClientID: "svc", ClientSecret: secret32, GrantTypes: []string{"client_credentials"}},
	}
	eq(t, "clients", cfg.Clients, want)
	eq(t, "users", cfg.Users, []config.User{{Username: "alice", Password: "wonderland"}})
}

func TestEnvOnlyGapInList(t *testing.T) {
	_, err := config.Load("", []string{
		"CASTELLAN_CLIENTS_1_CLIENT_ID=spa",
		"CASTELLAN_CLIENTS_1_REDIRECT_URIS=https://app.example.com/cb",
	})
	checkRefusal(t, err, "environment", "clients[0].client_id: required")
}

func TestEnvListIndexTooLarge(t *testing.T) {
	_, err := config.Load("", []string{"CASTELLAN_USERS_5000_USERNAME=alice"})
	checkRefusal(t, err, "environment", "users[5000] (CASTELLAN_USERS_5000_USERNAME): list index too large")
}

func TestEnvBadValue(t *testing.T) {
	path := writeFile(t, "castellan.yaml", "session: {idle_timeout: 20m}\n")
	tests := []struct {
		name string
		env  string
		want string
	}{
		{"fail/bad-duration", "CASTELLAN_SESSION_IDLE_TIMEOUT=ten minutes", "session.idle_timeout (CASTELLAN_SESSION_IDLE_TIMEOUT): want a duration"},
		{"fail/bad-bool", "CASTELLAN_INSECURE_HTTP=sure", "insecure_http (CASTELLAN_INSECURE_HTTP): want true or false"},
		{"fail/bad-int", "CASTELLAN_THROTTLE_ACCOUNT_FAILURES=many", "throttle.account_failures (CASTELLAN_THROTTLE_ACCOUNT_FAILURES): want a whole number"},
		// Valid syntax, refused by validation: the message still names the variable.
		{"fail/invalid-after-validation", "CASTELLAN_SESSION_IDLE_TIMEOUT=13h", "session.idle_timeout (CASTELLAN_SESSION_IDLE_TIMEOUT): longer than session.absolute_timeout"},
		{"fail/invalid-list-element", "CASTELLAN_SIGNING_ALGORITHMS=ES256,HS256", "signing.algorithms[1] (CASTELLAN_SIGNING_ALGORITHMS): want one of"},
		{"fail/http-issuer", "CASTELLAN_ISSUER=http://auth.example.com", "issuer (CASTELLAN_ISSUER): http on a non-loopback host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(path, []string{tt.env})
			checkRefusal(t, err, path, tt.want)
		})
	}
}

func TestEnvSecretNotInMessage(t *testing.T) {
	secret := "short-but-secret"
	_, err := config.Load("", []string{
		"CASTELLAN_CLIENTS_0_CLIENT_ID=svc",
		"CASTELLAN_CLIENTS_0_CLIENT_SECRET=" + secret,
		"CASTELLAN_CLIENTS_0_GRANT_TYPES=client_credentials",
	})
	checkRefusal(t, err, "environment", "clients[0].client_secret (CASTELLAN_CLIENTS_0_CLIENT_SECRET): too short")
	if strings.Contains(err.Error(), secret) {
		t.Errorf("got %q, want the secret left out", err)
	}
}

// TestDecode covers the decoding part alone, on another struct (as the BFF's
// config uses it): defaults kept, lists of structs, env, unknown keys.
func TestDecode(t *testing.T) {
	type route struct {
		Path     string `yaml:"path"`
		Upstream string `yaml:"upstream"`
	}
	type bff struct {
		Listen  string          `yaml:"listen"`
		Scope   string          `yaml:"scope"`
		Timeout config.Duration `yaml:"timeout"`
		Routes  []route         `yaml:"routes"`
	}
	path := writeFile(t, "bff.yaml", "listen: 127.0.0.1:9200\nroutes:\n  - { path: /api/, upstream: http://127.0.0.1:7001/ }\n")
	got := bff{Scope: "openid", Timeout: config.Duration(time.Second)}
	err := config.Decode(path, []string{"CASTELLAN_TIMEOUT=5s", "CASTELLAN_ROUTES_1_PATH=/b/", "CASTELLAN_ROUTES_1_UPSTREAM=http://127.0.0.1:7002/"}, &got)
	if err != nil {
		t.Fatalf("got %v, want no error", err)
	}
	want := bff{Listen: "127.0.0.1:9200", Scope: "openid", Timeout: config.Duration(5 * time.Second),
		Routes: []route{{"/api/", "http://127.0.0.1:7001/"}, {"/b/", "http://127.0.0.1:7002/"}}}
	eq(t, "bff", got, want)

	bad := writeFile(t, "bff.yaml", "listen: 127.0.0.1:9200\nroutes:\n  - { path: /api/, upstreams: x }\n")
	checkRefusal(t, config.Decode(bad, nil, &bff{}), bad, "routes[0].upstreams: line 3: unknown key")
}

func TestErrorIsOneLine(t *testing.T) {
	e := &config.Error{Source: "a.yaml", Problems: []string{"x: one\ntwo", "y: three"}}
	if got, want := e.Error(), "config a.yaml: x: one two; y: three"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParseSecretHash(t *testing.T) {
	sum := sha256.Sum256([]byte(secret32))
	hexSum := hex.EncodeToString(sum[:])
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"ok/lower-hex", "sha256:" + hexSum, true},
		{"ok/upper-hex", "sha256:" + strings.ToUpper(hexSum), true},
		{"fail/no-prefix", hexSum, false},
		{"fail/other-algorithm", "sha512:" + hexSum, false},
		{"fail/prefix-case", "SHA256:" + hexSum, false},
		{"fail/short", "sha256:" + hexSum[:62], false},
		{"fail/long", "sha256:" + hexSum + "00", false},
		{"fail/odd-length", "sha256:" + hexSum[:63], false},
		{"fail/not-hex", "sha256:" + strings.Repeat("zz", 32), false},
		{"fail/empty", "", false},
		{"fail/prefix-only", "sha256:", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := config.ParseSecretHash(tt.in)
			if !tt.ok {
				if err == nil {
					t.Fatalf("got %x, want an error", b)
				}
				if !strings.Contains(err.Error(), "sha256:<64 hex digits>") {
					t.Errorf("got %q, want it to say the expected form", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if !reflect.DeepEqual(b, sum[:]) {
				t.Errorf("got %x, want %x", b, sum)
			}
		})
	}
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: got %#v, want %#v", what, got, want)
	}
}

func TestDatabasePool(t *testing.T) {
	path := writeFile(t, "castellan.yaml", "storage: postgres://castellan@db.internal/castellan\n"+
		"database: {max_open_conns: 10, max_idle_conns: 4, conn_max_lifetime: 1h, migrate: false}\n")
	cfg, err := config.Load(path, []string{"CASTELLAN_DATABASE_CONN_MAX_IDLE_TIME=90s"})
	if err != nil {
		t.Fatalf("got %v, want no error", err)
	}
	eq(t, "database", cfg.Database, config.Database{MaxOpenConns: 10, MaxIdleConns: 4,
		ConnMaxLifetime: config.Duration(time.Hour), ConnMaxIdleTime: config.Duration(90 * time.Second), Migrate: false})
	eq(t, "default database.conn_max_idle_time", config.Default().Database.ConnMaxIdleTime.D(), 5*time.Minute)

	for _, tt := range []struct{ name, yaml, want string }{
		{"fail/idle-over-open", "database: {max_open_conns: 4, max_idle_conns: 8}\n", "database.max_idle_conns: more than database.max_open_conns (4)"},
		{"fail/negative-idle-time", "database: {conn_max_idle_time: -1m}\n", "database.conn_max_idle_time: line 1: want a duration that is not negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "castellan.yaml", tt.yaml)
			_, err := config.Load(path, nil)
			checkRefusal(t, err, path, tt.want)
		})
	}
}

// TestAuthorizeDefaults pins the documented bounds of pending requests and
// that each can come from the environment.
func TestAuthorizeDefaults(t *testing.T) {
	eq(t, "default authorize", config.Default().Authorize,
		config.Authorize{PendingTTL: config.Duration(10 * time.Minute), MaxPending: 10000, MaxPendingPerAddress: 1000})
	cfg, err := config.Load("", []string{"CASTELLAN_AUTHORIZE_PENDING_TTL=3m", "CASTELLAN_AUTHORIZE_MAX_PENDING=200",
		"CASTELLAN_AUTHORIZE_MAX_PENDING_PER_ADDRESS=20"})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "authorize from the environment", cfg.Authorize,
		config.Authorize{PendingTTL: config.Duration(3 * time.Minute), MaxPending: 200, MaxPendingPerAddress: 20})
}

// TestRefreshGraceDefault: a rotation whose response was lost must not sign
// the person out when the client retries, so the grace is on by default, a
// few seconds; 0s turns it off and 1m is the most.
func TestRefreshGraceDefault(t *testing.T) {
	eq(t, "default tokens.refresh_token_grace", config.Default().Tokens.RefreshTokenGrace.D(), 10*time.Second)
	for _, tt := range []struct {
		name, yaml string
		want       time.Duration
	}{
		{"ok/off", "tokens: {refresh_token_grace: 0s}\n", 0},
		{"ok/at-most", "tokens: {refresh_token_grace: 1m}\n", time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load(writeFile(t, "castellan.yaml", tt.yaml), nil)
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			eq(t, "tokens.refresh_token_grace", cfg.Tokens.RefreshTokenGrace.D(), tt.want)
		})
	}
}
