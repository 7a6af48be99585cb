package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/config"
)

// FuzzLoad feeds a config file and one CASTELLAN_* variable to Load.
// Invariants: no panic; a refusal is a *config.Error whose message is one line
// (it is logged and printed as is); an accepted config validates and loads
// the same way twice.
func FuzzLoad(f *testing.F) {
	for _, s := range [][3]string{
		{"# nothing here\n", "", ""},
		{"issuer: http://localhost:9000\nlisten: '[::1]:9000'\n", "", ""},
		{"issuer: https://example.com/auth\n", "SESSION_IDLE_TIMEOUT", "10m"},
		{"issuer: http://auth.internal:9000\ninsecure_http: true\nclients:\n  - client_id: spa\n    redirect_uris: [http://app.internal/callback]\n", "", ""},
		{"signing: {algorithms: 'EdDSA, ES256'}\ntrusted_proxies: 10.0.0.0/8 192.168.1.1\n", "SIGNING_ALGORITHMS", "none HS256"},
		{"clients:\n  - client_id: svc\n    client_secret_hash: sha256:" + strings.Repeat("ab", 32) + "\n    grant_types: [client_credentials]\n", "", ""},
		{"clients:\n  - client_id: spa\n    token_endpoint_auth_method: none\n    redirect_uris: ['https://a.example/cb#frag']\n", "CLIENTS_0_REDIRECT_URIS", "javascript:alert(1)"},
		{"session:\n  idle_timeout:\n", "", ""},
		{"issuer: http://127.0.0.1:9000\nissuer: http://127.0.0.1:9001\n", "", ""},
		{"- issuer\n", "", ""},
		{"session: 30m\n", "", ""},
		{"clients: {client_id: spa}\n", "", ""},
		{"issuer: [\n", "", ""},
		{"\"ses\\nsion\": 1\n", "", ""},
		{"issuer: 'https://auth.example.com#x'\n", "ISSUER", "https://a.example\nb"},
		{"a: &a [*a]\n", "", ""},
		{"session: {idle_timeout: 99999999999999999999h}\n", "SESSION_IDLE_TIMEOUT", "-1s"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, yaml, envKey, envValue string) {
		path := filepath.Join(t.TempDir(), "castellan.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		var environ []string
		if envKey != "" {
			environ = []string{"CASTELLAN_" + envKey + "=" + envValue}
		}
		cfg, err := config.Load(path, environ)
		if err != nil {
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Load: error of type %T: %v", err, err)
			}
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("Load: message of more than one line: %q", msg)
			}
			return
		}
		if problems := cfg.Validate(); len(problems) > 0 {
			t.Fatalf("Load accepted a config that does not validate: %q", problems)
		}
		again, err := config.Load(path, environ)
		if err != nil || !reflect.DeepEqual(cfg, again) {
			t.Fatalf("Load is not deterministic: %v", err)
		}
	})
}
