package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
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

// TestAuthenticate checks credentials against stored clients: one method
// per client, secrets compared exactly, unknown clients refused alike.
func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "c.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	master, _ := seal.New(bytes.Repeat([]byte{3}, 32))
	secrets := NewSecrets(master)
	const secret = "0123456789abcdef0123456789abcdef-x"
	declared := []config.Client{
		{ClientID: "spa", TokenEndpointAuthMethod: "none", RedirectURIs: []string{"http://127.0.0.1/cb"}},
		{ClientID: "web", ClientSecret: secret, TokenEndpointAuthMethod: "client_secret_basic"},
		{ClientID: "svc", ClientSecret: secret, TokenEndpointAuthMethod: "client_secret_post", GrantTypes: []string{"client_credentials"}},
		{ClientID: "dflt", ClientSecret: secret}, // default method: client_secret_basic
		{ClientID: "hashed", ClientSecretHash: "sha256:" + sha256Hex(secret), TokenEndpointAuthMethod: "client_secret_post"},
	}
	if err := Provision(ctx, st, declared, secrets, clock.NewFake(time.Unix(0, 0))); err != nil {
		t.Fatal(err)
	}
	a := NewAuthenticator(st, secrets)
	cases := []struct {
		name string
		auth string
		form map[string]string
		id   string // client expected
		err  string
	}{
		{name: "none", form: map[string]string{"client_id": "spa"}, id: "spa"},
		{name: "none/with-secret", form: map[string]string{"client_id": "spa", "client_secret": secret}, err: oauth.ErrInvalidClient},
		{name: "none/with-basic", auth: basic("spa", ""), err: oauth.ErrInvalidClient},
		{name: "basic", auth: basic("web", secret), id: "web"},
		{name: "basic/wrong-secret", auth: basic("web", secret+"x"), err: oauth.ErrInvalidClient},
		{name: "basic/secret-prefix", auth: basic("web", secret[:len(secret)-1]), err: oauth.ErrInvalidClient},
		{name: "basic/as-post", form: map[string]string{"client_id": "web", "client_secret": secret}, err: oauth.ErrInvalidClient},
		{name: "basic/id-only", form: map[string]string{"client_id": "web"}, err: oauth.ErrInvalidClient},
		{name: "basic/default-method", auth: basic("dflt", secret), id: "dflt"},
		{name: "post", form: map[string]string{"client_id": "svc", "client_secret": secret}, id: "svc"},
		{name: "post/as-basic", auth: basic("svc", secret), err: oauth.ErrInvalidClient},
		{name: "post/wrong-secret", form: map[string]string{"client_id": "svc", "client_secret": "x"}, err: oauth.ErrInvalidClient},
		{name: "post/client-secret-hash", form: map[string]string{"client_id": "hashed", "client_secret": secret}, id: "hashed"},
		{name: "post/client-secret-hash-wrong", form: map[string]string{"client_id": "hashed", "client_secret": sha256Hex(secret)}, err: oauth.ErrInvalidClient},
		{name: "unknown/basic", auth: basic("nobody", secret), err: oauth.ErrInvalidClient},
		{name: "unknown/none", form: map[string]string{"client_id": "nobody"}, err: oauth.ErrInvalidClient},
		{name: "id-differs-in-case", auth: basic("WEB", secret), err: oauth.ErrInvalidClient},
	}
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
			got, err := a.Authenticate(ctx, r, form)
			if code := oauthCode(err); code != c.err {
				t.Fatalf("error: got %q (%v), want %q", code, err, c.err)
			}
			if c.err == "" && got.ID != c.id {
				t.Fatalf("client %q, want %q", got.ID, c.id)
			}
			var oe *oauth.Error
			if errors.As(err, &oe) && oe.HTTPStatus() != http.StatusUnauthorized && oe.Code == oauth.ErrInvalidClient {
				t.Errorf("invalid_client with status %d, want 401", oe.HTTPStatus())
			}
		})
	}
	t.Run("storage-failure-is-not-invalid-client", func(t *testing.T) {
		broken, _ := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "b.db"), sqlstore.Options{})
		broken.Close()
		r := httptest.NewRequest(http.MethodPost, "/token", nil)
		_, err := NewAuthenticator(broken, secrets).Authenticate(ctx, r, map[string]string{"client_id": "spa"})
		if oauthCode(err) != "plain" {
			t.Fatalf("got %v, want a plain (server) error", err)
		}
	})
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
