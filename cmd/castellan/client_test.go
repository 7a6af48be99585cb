package main

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/client"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
)

func TestClient(t *testing.T) {
	cfgPath, dsn := installation(t)
	clientCLI := func(stdin string, args ...string) (string, error) {
		t.Helper()
		out, errOut, err := cli(t, stdin, append([]string{"client"}, append(args, "--config", cfgPath)...)...)
		return out + errOut, err
	}
	must := func(stdin string, args ...string) string {
		t.Helper()
		out, err := clientCLI(stdin, args...)
		if err != nil {
			t.Fatalf("client %s: got %v, want no error\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	refused := func(want, stdin string, args ...string) {
		t.Helper()
		out, err := clientCLI(stdin, args...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("client %s: got %v (%s), want an error containing %q", strings.Join(args, " "), err, out, want)
		}
	}

	must("", "add", "spa", "--auth-method", "none", "--redirect-uri", "http://127.0.0.1:9100/callback",
		"--grant-type", "authorization_code", "--grant-type", "refresh_token", "--scope", "openid profile", "--skip-consent", "--require-par")
	show := must("", "show", "spa")
	for _, want := range []string{"token_endpoint_auth_method  none", "redirect_uris  http://127.0.0.1:9100/callback",
		"grant_types  authorization_code refresh_token", "require_pushed_authorization_requests  true", "client_secret  -"} {
		if !strings.Contains(regexp.MustCompile(` {2,}`).ReplaceAllString(show, "  "), want) {
			t.Errorf("show: want %q in\n%s", want, show)
		}
	}

	// A confidential client gets a generated secret, shown once, that works.
	out := must("", "add", "web", "--auth-method", "client_secret_basic", "--redirect-uri", "https://web.example/cb")
	m := regexp.MustCompile(`client secret \(shown once, store it now\): (\S+)`).FindStringSubmatch(out)
	if m == nil || len(m[1]) < 43 {
		t.Fatalf("add web: got %q, want a generated secret", out)
	}
	secretWorks := func(id, secret string) bool {
		t.Helper()
		store, err := sqlstore.Open(t.Context(), dsn, sqlstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		master, _, err := seal.LoadOrCreate(filepath.Join(filepath.Dir(cfgPath), "master.key"))
		if err != nil {
			t.Fatal(err)
		}
		c, err := store.GetClient(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		return client.NewSecrets(master).Check(secret, c.SecretDigest)
	}
	if !secretWorks("web", m[1]) || secretWorks("web", m[1]+"x") {
		t.Fatal("the generated secret is not the stored one")
	}
	if strings.Contains(must("", "show", "web"), m[1]) || strings.Contains(must("", "list"), m[1]) {
		t.Fatal("the secret is shown again")
	}

	// A secret of the operator's choosing, from stdin.
	const secret = "0123456789abcdef0123456789abcdef-svc"
	must(secret+"\n", "add", "svc", "--auth-method", "client_secret_post", "--grant-type", "client_credentials", "--scope", "api:read", "--secret-stdin")
	if !secretWorks("svc", secret) {
		t.Fatal("the secret read from stdin is not the stored one")
	}
	refused("too short", "short\n", "add", "svc2", "--auth-method", "client_secret_post", "--grant-type", "client_credentials", "--secret-stdin")
	refused("has no secret", "x\n", "add", "pub", "--auth-method", "none", "--redirect-uri", "https://a.example/cb", "--secret-stdin")
	refused("already exists", "", "add", "spa", "--auth-method", "none", "--redirect-uri", "https://a.example/cb")
	refused("redirect_uris: required", "", "add", "nocb", "--auth-method", "none")
	refused("redirect_uris[0]: http on a non-loopback host", "", "add", "plain", "--auth-method", "none", "--redirect-uri", "http://a.example/cb")

	// private_key_jwt: keys from a file; a private key is refused.
	dir := t.TempDir()
	pub := filepath.Join(dir, "pub.json")
	priv := filepath.Join(dir, "priv.json")
	os.WriteFile(pub, []byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"}]}`), 0o600)
	os.WriteFile(priv, []byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"k1","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","d":"870MB6gfuTJ4HtUnUvYMyJpr5eUZNP4Bk43bVdj3eAE"}]}`), 0o600)
	refused("publish public keys only", "", "add", "keyed", "--auth-method", "private_key_jwt", "--grant-type", "client_credentials", "--jwks-file", priv)
	out = must("", "add", "keyed", "--auth-method", "private_key_jwt", "--grant-type", "client_credentials", "--jwks-file", pub)
	if strings.Contains(out, "client secret") {
		t.Errorf("a private_key_jwt client got a secret: %s", out)
	}
	if !strings.Contains(must("", "show", "keyed"), "jwks (inline)") {
		t.Error("show keyed: no inline jwks")
	}

	// The whole client as YAML, on stdin.
	yaml := "client_id: yaml-app\nclient_name: From YAML\ntoken_endpoint_auth_method: private_key_jwt\njwks_uri: https://yaml.example/jwks\n" +
		"redirect_uris: [https://yaml.example/cb]\nscope: openid email\n"
	must(yaml, "add", "--from-yaml", "-")
	if s := must("", "show", "yaml-app"); !strings.Contains(s, "From YAML") || !strings.Contains(s, "jwks_uri https://yaml.example/jwks") {
		t.Errorf("show yaml-app:\n%s", s)
	}
	// The access tokens' audience and the strict secret method, from YAML.
	apiYAML := filepath.Join(t.TempDir(), "api.yaml")
	os.WriteFile(apiYAML, []byte("client_id: orders-svc\ntoken_endpoint_auth_method: client_secret_post\nstrict_token_endpoint_auth_method: true\n"+
		"grant_types: [client_credentials]\nscope: orders:read\naudience: [https://orders.example/, billing]\n"), 0o600)
	must("0123456789abcdef0123456789abcdef-api\n", "add", "--from-yaml", apiYAML, "--secret-stdin")
	show = regexp.MustCompile(` {2,}`).ReplaceAllString(must("", "show", "orders-svc"), "  ")
	for _, want := range []string{"strict_token_endpoint_auth_method  true", "audience  https://orders.example/ billing"} {
		if !strings.Contains(show, want) {
			t.Errorf("show orders-svc: want %q in\n%s", want, show)
		}
	}
	refused("audience[0]: must not be empty", "client_id: bad-aud\ntoken_endpoint_auth_method: client_secret_post\ngrant_types: [client_credentials]\naudience: [\"\"]\n",
		"add", "--from-yaml", "-")
	refused("unknown key", "client_id: x\nclient_secrett: abc\n", "add", "--from-yaml", "-")
	refused("give no other client flags", "client_id: x\n", "add", "--from-yaml", "-", "--scope", "openid")

	list := must("", "list")
	for _, id := range []string{"spa", "web", "svc", "keyed", "yaml-app"} {
		if !regexp.MustCompile(`(?m)^` + id + ` `).MatchString(list) {
			t.Errorf("list: no row for %s\n%s", id, list)
		}
	}

	must("", "rm", "web")
	refused(`no client "web"`, "", "show", "web")
	refused(`no client "web"`, "", "rm", "web")

	if _, err := clientCLI("", "frobnicate"); !errors.Is(err, errUsage) {
		t.Errorf("unknown verb: got %v, want usage", err)
	}
	if _, err := clientCLI("", "show"); !errors.Is(err, errUsage) {
		t.Errorf("show without id: got %v, want usage", err)
	}
}
