package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
)

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// oauthCode is the error code of err ("" for none, "plain" for a non-OAuth error).
func oauthCode(err error) string {
	var oe *oauth.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &oe):
		return oe.Code
	}
	return "plain"
}

// TestCredentials is the parsing of client credentials (RFC 6749 §2.3.1):
// which method a request uses, with what id and secret, and what is refused.
func TestCredentials(t *testing.T) {
	cases := []struct {
		name   string
		auth   string            // Authorization header
		form   map[string]string // single-valued form parameters
		method string
		id     string
		secret string
		err    string // OAuth error code
	}{
		{name: "basic", auth: basic("web", "s3cret"), method: oauth.AuthClientSecretBasic, id: "web", secret: "s3cret"},
		{name: "basic/form-encoded-parts", auth: basic(url.QueryEscape("a:b c"), url.QueryEscape("p+q%r:s/é")),
			method: oauth.AuthClientSecretBasic, id: "a:b c", secret: "p+q%r:s/é"},
		{name: "basic/plus-is-a-space", auth: basic("web", "a+b"), method: oauth.AuthClientSecretBasic, id: "web", secret: "a b"},
		{name: "basic/colon-in-secret", auth: basic("web", "a:b"), method: oauth.AuthClientSecretBasic, id: "web", secret: "a:b"},
		{name: "basic/empty-secret", auth: basic("web", ""), method: oauth.AuthClientSecretBasic, id: "web", secret: ""},
		{name: "basic/scheme-case", auth: "bAsIc " + base64.StdEncoding.EncodeToString([]byte("web:x")), method: oauth.AuthClientSecretBasic, id: "web", secret: "x"},
		{name: "basic/extra-spaces", auth: "Basic   " + base64.StdEncoding.EncodeToString([]byte("web:x")) + " ", method: oauth.AuthClientSecretBasic, id: "web", secret: "x"},
		{name: "basic/same-client-id-in-body", auth: basic("web", "x"), form: map[string]string{"client_id": "web"},
			method: oauth.AuthClientSecretBasic, id: "web", secret: "x"},
		{name: "basic/other-client-id-in-body", auth: basic("web", "x"), form: map[string]string{"client_id": "spa"}, err: oauth.ErrInvalidRequest},
		{name: "basic/secret-in-body-too", auth: basic("web", "x"), form: map[string]string{"client_secret": "x"}, err: oauth.ErrInvalidRequest},
		{name: "basic/empty-id", auth: basic("", "x"), err: oauth.ErrInvalidClient},
		{name: "basic/no-colon", auth: "Basic " + base64.StdEncoding.EncodeToString([]byte("web")), err: oauth.ErrInvalidClient},
		{name: "basic/not-base64", auth: "Basic ***", err: oauth.ErrInvalidClient},
		{name: "basic/url-safe-base64", auth: "Basic " + base64.URLEncoding.EncodeToString([]byte("web:>>>")) /* d2ViOj4-Pg== */, err: oauth.ErrInvalidClient},
		{name: "basic/bad-percent-encoding-id", auth: basic("w%zz", "x"), err: oauth.ErrInvalidClient},
		{name: "basic/bad-percent-encoding-secret", auth: basic("web", "%g0"), err: oauth.ErrInvalidClient},
		{name: "basic/no-payload", auth: "Basic", err: oauth.ErrInvalidClient},
		{name: "bearer-scheme", auth: "Bearer abc", err: oauth.ErrInvalidClient},
		{name: "dpop-scheme", auth: "DPoP abc", err: oauth.ErrInvalidClient},
		{name: "post", form: map[string]string{"client_id": "svc", "client_secret": "s"}, method: oauth.AuthClientSecretPost, id: "svc", secret: "s"},
		{name: "post/empty-secret-is-none", form: map[string]string{"client_id": "svc", "client_secret": ""}, method: oauth.AuthNone, id: "svc"},
		{name: "post/secret-without-id", form: map[string]string{"client_secret": "s"}, err: oauth.ErrInvalidClient},
		{name: "none", form: map[string]string{"client_id": "spa"}, method: oauth.AuthNone, id: "spa"},
		{name: "nothing", err: oauth.ErrInvalidClient},
		// Client assertions never reach credentials: Authenticate hands them
		// to private_key_jwt (TestAssertion covers them).
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/token", nil)
			if c.auth != "" {
				r.Header.Set("Authorization", c.auth)
			}
			method, id, secret, err := credentials(r, c.form)
			if got := oauthCode(err); got != c.err {
				t.Fatalf("error: got %q (%v), want %q", got, err, c.err)
			}
			if c.err == "" && (method != c.method || id != c.id || secret != c.secret) {
				t.Fatalf("got %q %q %q, want %q %q %q", method, id, secret, c.method, c.id, c.secret)
			}
		})
	}
}

// authEnv is an authenticator over a real SQLite file holding declared,
// logging to log.
func authEnv(t *testing.T, declared []config.Client, log *slog.Logger) (*Authenticator, Secrets) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "c.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	master, _ := seal.New(bytes.Repeat([]byte{3}, 32))
	secrets := NewSecrets(master)
	if err := Provision(ctx, st, declared, secrets, clock.NewFake(time.Unix(0, 0))); err != nil {
		t.Fatal(err)
	}
	return NewAuthenticator(st, secrets, log), secrets
}

const testSecret = "0123456789abcdef0123456789abcdef-x"

// authClients are the clients TestAuthenticate and TestOneSecretTwoWays use.
var authClients = []config.Client{
	{ClientID: "spa", TokenEndpointAuthMethod: "none", RedirectURIs: []string{"http://127.0.0.1/cb"}},
	{ClientID: "web", ClientSecret: testSecret, TokenEndpointAuthMethod: "client_secret_basic"},
	{ClientID: "svc", ClientSecret: testSecret, TokenEndpointAuthMethod: "client_secret_post", GrantTypes: []string{"client_credentials"}},
	{ClientID: "dflt", ClientSecret: testSecret}, // default method: client_secret_basic
	{ClientID: "hashed", ClientSecretHash: "sha256:" + sha256Hex(testSecret), TokenEndpointAuthMethod: "client_secret_post"},
	{ClientID: "web-strict", ClientSecret: testSecret, TokenEndpointAuthMethod: "client_secret_basic", StrictTokenEndpointAuthMethod: true},
	{ClientID: "svc-strict", ClientSecret: testSecret, TokenEndpointAuthMethod: "client_secret_post", StrictTokenEndpointAuthMethod: true,
		GrantTypes: []string{"client_credentials"}},
	{ClientID: "jwt", TokenEndpointAuthMethod: "private_key_jwt", JWKS: `{"keys":[]}`, GrantTypes: []string{"client_credentials"}},
}

type authCase struct {
	name string
	auth string
	form map[string]string
	id   string // client expected
	err  string
	// desc, for a refusal, is a part of the error_description.
	desc string
}

func runAuthCases(t *testing.T, a *Authenticator, cases []authCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/token", nil)
			if c.auth != "" {
				r.Header.Set("Authorization", c.auth)
			}
			form := c.form
			if form == nil {
				form = map[string]string{}
			}
			got, err := a.Authenticate(context.Background(), r, form)
			if code := oauthCode(err); code != c.err {
				t.Fatalf("error: got %q (%v), want %q", code, err, c.err)
			}
			if c.err == "" && got.ID != c.id {
				t.Fatalf("client %q, want %q", got.ID, c.id)
			}
			var oe *oauth.Error
			if errors.As(err, &oe) {
				if oe.Code == oauth.ErrInvalidClient && oe.HTTPStatus() != http.StatusUnauthorized {
					t.Errorf("invalid_client with status %d, want 401", oe.HTTPStatus())
				}
				if !strings.Contains(oe.Description, c.desc) {
					t.Errorf("error_description %q, want it to contain %q", oe.Description, c.desc)
				}
				if strings.Contains(oe.Description, testSecret) {
					t.Errorf("error_description %q holds the secret", oe.Description)
				}
			}
		})
	}
}

// TestAuthenticate checks credentials against stored clients: secrets
// compared exactly, a public client never with a secret, a confidential one
// never without, unknown clients refused alike.
func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	a, secrets := authEnv(t, authClients, slog.New(slog.DiscardHandler))
	const secret = testSecret
	runAuthCases(t, a, []authCase{
		{name: "none", form: map[string]string{"client_id": "spa"}, id: "spa"},
		{name: "none/with-secret", form: map[string]string{"client_id": "spa", "client_secret": secret}, err: oauth.ErrInvalidClient, desc: "this client is public"},
		{name: "none/with-basic", auth: basic("spa", ""), err: oauth.ErrInvalidClient, desc: "this client is public"},
		{name: "basic", auth: basic("web", secret), id: "web"},
		{name: "basic/wrong-secret", auth: basic("web", secret+"x"), err: oauth.ErrInvalidClient, desc: "client authentication failed"},
		{name: "basic/secret-prefix", auth: basic("web", secret[:len(secret)-1]), err: oauth.ErrInvalidClient, desc: "client authentication failed"},
		{name: "basic/id-only", form: map[string]string{"client_id": "web"}, err: oauth.ErrInvalidClient, desc: "must authenticate with its client secret"},
		{name: "basic/default-method", auth: basic("dflt", secret), id: "dflt"},
		{name: "post", form: map[string]string{"client_id": "svc", "client_secret": secret}, id: "svc"},
		{name: "post/wrong-secret", form: map[string]string{"client_id": "svc", "client_secret": "x"}, err: oauth.ErrInvalidClient, desc: "client authentication failed"},
		{name: "post/client-secret-hash", form: map[string]string{"client_id": "hashed", "client_secret": secret}, id: "hashed"},
		{name: "post/client-secret-hash-wrong", form: map[string]string{"client_id": "hashed", "client_secret": sha256Hex(secret)}, err: oauth.ErrInvalidClient},
		{name: "private-key-jwt/with-basic", auth: basic("jwt", secret), err: oauth.ErrInvalidClient, desc: "must authenticate with private_key_jwt"},
		{name: "private-key-jwt/with-post", form: map[string]string{"client_id": "jwt", "client_secret": secret}, err: oauth.ErrInvalidClient, desc: "must authenticate with private_key_jwt"},
		{name: "unknown/basic", auth: basic("nobody", secret), err: oauth.ErrInvalidClient, desc: "client authentication failed"},
		{name: "unknown/none", form: map[string]string{"client_id": "nobody"}, err: oauth.ErrInvalidClient, desc: "client authentication failed"},
		{name: "id-differs-in-case", auth: basic("WEB", secret), err: oauth.ErrInvalidClient},
	})
	t.Run("storage-failure-is-not-invalid-client", func(t *testing.T) {
		broken, _ := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "b.db"), sqlstore.Options{})
		broken.Close()
		r := httptest.NewRequest(http.MethodPost, "/token", nil)
		_, err := NewAuthenticator(broken, secrets, slog.New(slog.DiscardHandler)).Authenticate(ctx, r, map[string]string{"client_id": "spa"})
		if oauthCode(err) != "plain" {
			t.Fatalf("got %v, want a plain (server) error", err)
		}
	})
}

// TestOneSecretTwoWays is a client registered with client_secret_basic
// sending its secret in the form and one registered with client_secret_post
// sending it with Basic, as zitadel/oidc's relying party does (Basic for the
// code exchange and introspection, the form for refresh and revocation):
// accepted, the secret still checked, unless the client is strict, which is
// refused naming the method it registered.
func TestOneSecretTwoWays(t *testing.T) {
	a, _ := authEnv(t, authClients, slog.New(slog.DiscardHandler))
	const secret = testSecret
	runAuthCases(t, a, []authCase{
		{name: "basic-client/post", form: map[string]string{"client_id": "web", "client_secret": secret}, id: "web"},
		{name: "basic-client/post-wrong-secret", form: map[string]string{"client_id": "web", "client_secret": secret + "x"}, err: oauth.ErrInvalidClient, desc: "client authentication failed"},
		{name: "post-client/basic", auth: basic("svc", secret), id: "svc"},
		{name: "post-client/basic-wrong-secret", auth: basic("svc", "x"), err: oauth.ErrInvalidClient, desc: "client authentication failed"},
		{name: "hashed-post-client/basic", auth: basic("hashed", secret), id: "hashed"},
		{name: "strict-basic-client/basic", auth: basic("web-strict", secret), id: "web-strict"},
		{name: "strict-basic-client/post", form: map[string]string{"client_id": "web-strict", "client_secret": secret}, err: oauth.ErrInvalidClient,
			desc: "this client must authenticate with client_secret_basic"},
		{name: "strict-post-client/post", form: map[string]string{"client_id": "svc-strict", "client_secret": secret}, id: "svc-strict"},
		{name: "strict-post-client/basic", auth: basic("svc-strict", secret), err: oauth.ErrInvalidClient,
			desc: "this client must authenticate with client_secret_post"},
		{name: "strict-post-client/id-only", form: map[string]string{"client_id": "svc-strict"}, err: oauth.ErrInvalidClient,
			desc: "this client must authenticate with client_secret_post"},
	})
}

// TestAuthRefusalIsLogged checks that every refusal leaves a debug line with
// the client, the method and the reason, the wrong secret included, and that
// no line holds a credential.
func TestAuthRefusalIsLogged(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, _ := authEnv(t, authClients, log)
	cases := []struct {
		name   string
		auth   string
		form   map[string]string
		reason string
	}{
		{name: "wrong-secret", auth: basic("web", testSecret+"-wrong"), reason: `reason="wrong secret"`},
		{name: "unknown", form: map[string]string{"client_id": "nobody", "client_secret": testSecret}, reason: `reason="unknown client"`},
		{name: "strict", auth: basic("svc-strict", testSecret), reason: `reason="sent client_secret_basic, registered client_secret_post"`},
		{name: "two-methods", auth: basic("web", testSecret), form: map[string]string{"client_secret": testSecret}, reason: "use one client authentication method"},
		{name: "assertion-disabled", form: map[string]string{"client_assertion_type": oauth.ClientAssertionJWT, "client_assertion": "a.b.c"}, reason: "are not enabled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			buf.Reset()
			r := httptest.NewRequest(http.MethodPost, "/token", nil)
			if c.auth != "" {
				r.Header.Set("Authorization", c.auth)
			}
			form := c.form
			if form == nil {
				form = map[string]string{}
			}
			if _, err := a.Authenticate(context.Background(), r, form); err == nil {
				t.Fatal("authenticated, want a refusal")
			}
			line := buf.String()
			if !strings.Contains(line, "level=DEBUG") || !strings.Contains(line, "client authentication refused") || !strings.Contains(line, c.reason) {
				t.Fatalf("log %q, want a debug line with %q", line, c.reason)
			}
			if strings.Contains(line, testSecret) || strings.Contains(line, base64.StdEncoding.EncodeToString([]byte("web:"+testSecret))) {
				t.Fatalf("log holds a credential: %q", line)
			}
		})
	}
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestSecrets(t *testing.T) {
	m1, _ := seal.New(bytes.Repeat([]byte{1}, 32))
	m2, _ := seal.New(bytes.Repeat([]byte{2}, 32))
	s1, s2 := NewSecrets(m1), NewSecrets(m2)
	d := s1.Digest("secret")
	switch {
	case !s1.Check("secret", d):
		t.Error("the right secret is refused")
	case s1.Check("secret ", d), s1.Check("Secret", d), s1.Check("", d):
		t.Error("a wrong secret is accepted")
	case s2.Check("secret", d):
		t.Error("a digest is valid under another master key")
	case s1.Check("", nil), s1.Check("secret", nil):
		t.Error("a client without a stored digest is accepted")
	case bytes.Contains(d, []byte("secret")):
		t.Error("the digest holds the secret")
	}
}
