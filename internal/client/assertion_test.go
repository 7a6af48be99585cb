package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/castellan-auth/castellan/internal/clientkeys"
	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/jwstest"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
)

const (
	testIssuer   = "https://id.example"
	testTokenURL = "https://id.example/token"
)

// signingKey is a client's private key with its kid and alg.
type signingKey struct {
	kid string
	alg jose.SignatureAlgorithm
	key crypto.Signer
}

func newKey(t testing.TB, kid string, alg jose.SignatureAlgorithm) signingKey {
	t.Helper()
	var k crypto.Signer
	var err error
	switch alg {
	case jose.ES256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, alg: alg, key: k}
}

func (k signingKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.key.Public(), KeyID: k.kid, Use: "sig"}
}

// jwksOf is the public JSON Web Key Set of keys.
func jwksOf(t testing.TB, keys ...signingKey) string {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.public())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assertionClaimsFor are good claims of clientID at now.
func assertionClaimsFor(clientID string, now time.Time) map[string]any {
	return map[string]any{
		"iss": clientID, "sub": clientID, "aud": testIssuer,
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": base64.RawURLEncoding.EncodeToString(randomBytes(12)),
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// sign makes a compact JWS of claims with k, with extra header fields.
func sign(t testing.TB, k signingKey, claims map[string]any, header map[jose.HeaderKey]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	for name, v := range header {
		opts = opts.WithHeader(name, v)
	}
	return jwstest.SignClaims(t, k.alg, jose.JSONWebKey{Key: k.key, KeyID: k.kid}, opts, claims)
}

// unsigned is an alg=none JWT of claims.
func unsigned(claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	p, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

// hmacWithPublicKey is the key-confusion forgery: HS256 keyed with the
// client's public key, which anyone can read.
func hmacWithPublicKey(t testing.TB, k signingKey, claims map[string]any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return jwstest.SignClaims(t, jose.HS256, der, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.kid), claims)
}

type assertionEnv struct {
	auth *Authenticator
	clk  *clock.Fake
}

func newAssertionEnv(t *testing.T, path string, declared []config.Client) assertionEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite://"+path, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	master, _ := seal.New(bytes.Repeat([]byte{3}, 32))
	secrets := NewSecrets(master)
	clk := clock.NewFake(time.Unix(1_800_000_000, 0))
	if err := Provision(ctx, st, declared, secrets, clk); err != nil {
		t.Fatal(err)
	}
	a := NewAuthenticator(st, secrets, slog.New(slog.DiscardHandler))
	a.Assertions = &Assertions{Issuer: testIssuer, TokenEndpoint: testTokenURL, MaxLifetime: time.Hour,
		Replay: st, Keys: clientkeys.NewFetcher(clk), Clock: clk}
	return assertionEnv{auth: a, clk: clk}
}

func (e assertionEnv) authenticate(assertion string, form map[string]string, authz string) (string, error) {
	return e.authenticateAt("/token", assertion, form, authz)
}

// authenticateAt authenticates a request to the endpoint at path.
func (e assertionEnv) authenticateAt(path, assertion string, form map[string]string, authz string) (string, error) {
	r := httptest.NewRequest(http.MethodPost, path, nil)
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	f := map[string]string{"client_assertion_type": oauth.ClientAssertionJWT, "client_assertion": assertion}
	for k, v := range form {
		if v == "-" {
			delete(f, k)
		} else {
			f[k] = v
		}
	}
	c, err := e.auth.Authenticate(context.Background(), r, f)
	return c.ID, err
}

// TestAssertion is private_key_jwt (RFC 7523 §3, OIDC Core §9) against
// clients with inline key sets: which assertions authenticate, and that every
// bad one is invalid_client (ADVERSARIAL.md 33).
func TestAssertion(t *testing.T) {
	es := newKey(t, "es", jose.ES256)
	ed := newKey(t, "ed", jose.EdDSA)
	rs := newKey(t, "rs", jose.RS256)
	ps := signingKey{kid: "rs", alg: jose.PS256, key: rs.key} // the same RSA key, PSS padding
	stranger := newKey(t, "es", jose.ES256)                   // same kid, not registered
	pinned := newKey(t, "pinned", jose.ES256)
	declared := []config.Client{
		{ClientID: "jwt", TokenEndpointAuthMethod: "private_key_jwt", GrantTypes: []string{"client_credentials"},
			JWKS: config.JSON(jwksOf(t, es, ed, rs))},
		{ClientID: "pinned", TokenEndpointAuthMethod: "private_key_jwt", GrantTypes: []string{"client_credentials"},
			JWKS: config.JSON(jwksOf(t, pinned)), TokenEndpointAuthSigningAlg: "PS256"},
		{ClientID: "web", ClientSecret: "0123456789abcdef0123456789abcdef-x", TokenEndpointAuthMethod: "client_secret_basic"},
	}
	env := newAssertionEnv(t, filepath.Join(t.TempDir(), "a.db"), declared)
	now := env.clk.Now()
	good := func() map[string]any { return assertionClaimsFor("jwt", now) }
	with := func(k string, v any) map[string]any {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	without := func(c map[string]any, k string) map[string]any {
		delete(c, k)
		return c
	}
	replayed := sign(t, es, good(), nil)
	if _, err := env.authenticate(replayed, nil, ""); err != nil {
		t.Fatalf("first use of an assertion: %v", err)
	}

	cases := []struct {
		name      string
		assertion string
		form      map[string]string
		authz     string
		want      string // client id, or the error code
	}{
		{name: "ok/es256", assertion: sign(t, es, good(), nil), want: "jwt"},
		{name: "ok/eddsa", assertion: sign(t, ed, good(), nil), want: "jwt"},
		{name: "ok/rs256", assertion: sign(t, rs, good(), nil), want: "jwt"},
		{name: "ok/ps256", assertion: sign(t, ps, good(), nil), want: "jwt"},
		{name: "ok/aud-issuer", assertion: sign(t, es, with("aud", testIssuer), nil), want: "jwt"},
		{name: "ok/client-id-in-form", assertion: sign(t, es, good(), nil), form: map[string]string{"client_id": "jwt"}, want: "jwt"},
		{name: "ok/no-kid", assertion: sign(t, signingKey{alg: jose.ES256, key: es.key}, good(), nil), want: "jwt"},
		{name: "ok/no-iat", assertion: sign(t, es, with("iat", nil), nil), want: "jwt"},
		{name: "ok/nbf-8s-ahead", assertion: sign(t, es, with("nbf", now.Add(8*time.Second).Unix()), nil), want: "jwt"},
		{name: "ok/exp-at-5m", assertion: sign(t, es, with("exp", now.Add(5*time.Minute).Unix()), nil), want: "jwt"},
		{name: "ok/exp-at-max-lifetime", assertion: sign(t, es, with("exp", now.Add(time.Hour).Unix()), nil), want: "jwt"},
		{name: "ok/no-iat-exp-at-max-lifetime", assertion: sign(t, es, without(with("exp", now.Add(time.Hour).Unix()), "iat"), nil), want: "jwt"},
		{name: "ok/aud-token-endpoint", assertion: sign(t, es, with("aud", testTokenURL), nil), want: "jwt"},
		{name: "ok/aud-array-of-issuer", assertion: sign(t, es, with("aud", []string{testIssuer}), nil), want: "jwt"},
		{name: "ok/aud-array-of-issuer-and-token-endpoint", assertion: sign(t, es, with("aud", []string{testIssuer, testTokenURL}), nil), want: "jwt"},
		{name: "ok/typ-client-authentication", assertion: sign(t, es, good(), map[jose.HeaderKey]any{"typ": "client-authentication+jwt"}), want: "jwt"},

		{name: "fail/alg-none", assertion: unsigned(good()), want: oauth.ErrInvalidClient},
		{name: "fail/hs256-keyed-with-public-key", assertion: hmacWithPublicKey(t, es, good()), want: oauth.ErrInvalidClient},
		{name: "fail/hs256-keyed-with-public-rsa-key", assertion: hmacWithPublicKey(t, rs, good()), want: oauth.ErrInvalidClient},
		{name: "fail/expired", assertion: sign(t, es, with("exp", now.Add(-5*time.Minute).Unix()), nil), want: oauth.ErrInvalidClient},
		{name: "fail/no-exp", assertion: sign(t, es, with("exp", nil), nil), want: oauth.ErrInvalidClient},
		{name: "fail/lifetime-too-long", assertion: sign(t, es, with("exp", now.Add(time.Hour+time.Second).Unix()), nil), want: oauth.ErrInvalidClient},
		{name: "fail/exp-minus-iat-too-long", assertion: sign(t, es, with("iat", now.Add(-time.Hour).Unix()), nil), want: oauth.ErrInvalidClient},
		{name: "fail/no-iat-exp-too-far", assertion: sign(t, es, without(with("exp", now.Add(time.Hour+AssertionLeeway+time.Second).Unix()), "iat"), nil), want: oauth.ErrInvalidClient},
		{name: "fail/nbf-over-60s-ahead", assertion: sign(t, es, with("nbf", now.Add(61*time.Second).Unix()), nil), want: oauth.ErrInvalidClient},
		{name: "fail/iat-over-60s-ahead", assertion: sign(t, es, with("iat", now.Add(61*time.Second).Unix()), nil), want: oauth.ErrInvalidClient},
		// Only values that name this server (no audience injection; the
		// fapi2 rule is TestAssertionAudienceOfThirdPartyClients').
		{name: "fail/wrong-aud", assertion: sign(t, es, with("aud", "https://other.example"), nil), want: oauth.ErrInvalidClient},
		{name: "fail/aud-par-endpoint-at-token", assertion: sign(t, es, with("aud", "https://id.example/par"), nil), want: oauth.ErrInvalidClient},
		{name: "fail/aud-array-with-issuer", assertion: sign(t, es, with("aud", []string{"https://other.example", testIssuer}), nil), want: oauth.ErrInvalidClient},
		{name: "fail/aud-empty-array", assertion: sign(t, es, with("aud", []string{}), nil), want: oauth.ErrInvalidClient},
		{name: "fail/aud-array-with-empty", assertion: sign(t, es, with("aud", []string{testIssuer, ""}), nil), want: oauth.ErrInvalidClient},
		{name: "fail/aud-number", assertion: sign(t, es, with("aud", 1), nil), want: oauth.ErrInvalidClient},
		{name: "fail/aud-token-endpoint-other-case", assertion: sign(t, es, with("aud", "https://ID.example/token"), nil), want: oauth.ErrInvalidClient},
		{name: "fail/aud-issuer-with-slash", assertion: sign(t, es, with("aud", testIssuer+"/"), nil), want: oauth.ErrInvalidClient},
		{name: "fail/aud-empty", assertion: sign(t, es, with("aud", ""), nil), want: oauth.ErrInvalidClient},
		{name: "fail/no-aud", assertion: sign(t, es, with("aud", nil), nil), want: oauth.ErrInvalidClient},
		{name: "fail/iss-not-sub", assertion: sign(t, es, with("iss", "web"), nil), want: oauth.ErrInvalidClient},
		{name: "fail/no-iss", assertion: sign(t, es, with("iss", nil), nil), want: oauth.ErrInvalidClient},
		{name: "fail/no-sub", assertion: sign(t, es, with("sub", nil), nil), want: oauth.ErrInvalidClient},
		{name: "fail/no-jti", assertion: sign(t, es, with("jti", nil), nil), want: oauth.ErrInvalidClient},
		{name: "fail/replayed-jti", assertion: replayed, want: oauth.ErrInvalidClient},
		{name: "fail/key-not-registered", assertion: sign(t, stranger, good(), nil), want: oauth.ErrInvalidClient},
		{name: "fail/unknown-kid", assertion: sign(t, signingKey{kid: "nope", alg: jose.ES256, key: es.key}, good(), nil), want: oauth.ErrInvalidClient},
		{name: "fail/typ-dpop", assertion: sign(t, es, good(), map[jose.HeaderKey]any{"typ": "dpop+jwt"}), want: oauth.ErrInvalidClient},
		{name: "fail/crit-empty", assertion: sign(t, es, good(), map[jose.HeaderKey]any{"crit": []string{}}), want: oauth.ErrInvalidClient},
		{name: "fail/crit-b64", assertion: sign(t, es, good(), map[jose.HeaderKey]any{"crit": []string{"b64"}, "b64": true}), want: oauth.ErrInvalidClient},
		{name: "fail/client-id-differs", assertion: sign(t, es, good(), nil), form: map[string]string{"client_id": "web"}, want: oauth.ErrInvalidClient},
		{name: "fail/wrong-assertion-type", assertion: sign(t, es, good(), nil), form: map[string]string{"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"}, want: oauth.ErrInvalidClient},
		{name: "fail/type-without-assertion", form: map[string]string{"client_assertion": "-", "client_id": "jwt"}, want: oauth.ErrInvalidClient},
		{name: "fail/assertion-without-type", assertion: sign(t, es, good(), nil), form: map[string]string{"client_assertion_type": "-"}, want: oauth.ErrInvalidClient},
		// RFC 6749 §2.3: two methods in one request are invalid_request, as in credentials.
		{name: "fail/with-basic-too", assertion: sign(t, es, good(), nil), authz: basic("jwt", "x"), want: oauth.ErrInvalidRequest},
		{name: "fail/with-secret-too", assertion: sign(t, es, good(), nil), form: map[string]string{"client_secret": "x"}, want: oauth.ErrInvalidRequest},
		{name: "fail/json-serialization", assertion: `{"payload":"e30","signatures":[]}`, want: oauth.ErrInvalidClient},
		{name: "fail/garbage", assertion: "a.b.c", want: oauth.ErrInvalidClient},
		{name: "fail/secret-client", assertion: sign(t, es, assertionClaimsFor("web", now), nil), want: oauth.ErrInvalidClient},
		{name: "fail/unknown-client", assertion: sign(t, es, assertionClaimsFor("nobody", now), nil), want: oauth.ErrInvalidClient},
		{name: "fail/alg-not-the-registered-one", assertion: sign(t, pinned, assertionClaimsFor("pinned", now), nil), want: oauth.ErrInvalidClient},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, err := env.authenticate(c.assertion, c.form, c.authz)
			got := id
			if err != nil {
				got = oauthCode(err)
				t.Log(err)
			}
			if got != c.want {
				t.Fatalf("got %q (%v), want %q", got, err, c.want)
			}
			if oe, ok := err.(*oauth.Error); ok && oe.Code == oauth.ErrInvalidClient && oe.HTTPStatus() != http.StatusUnauthorized {
				t.Errorf("invalid_client with status %d, want 401", oe.HTTPStatus())
			}
		})
	}
}

// TestAssertionReplayAcrossNodes presents one assertion to two
// authenticators on one database, as two nodes would see it: the second is
// refused, because the jti is remembered in storage, not in memory.
func TestAssertionReplayAcrossNodes(t *testing.T) {
	k := newKey(t, "k", jose.ES256)
	declared := []config.Client{{ClientID: "jwt", TokenEndpointAuthMethod: "private_key_jwt",
		GrantTypes: []string{"client_credentials"}, JWKS: config.JSON(jwksOf(t, k))}}
	db := filepath.Join(t.TempDir(), "shared.db")
	node1 := newAssertionEnv(t, db, declared)
	node2 := newAssertionEnv(t, db, declared)
	a := sign(t, k, assertionClaimsFor("jwt", node1.clk.Now()), nil)
	if _, err := node1.authenticate(a, nil, ""); err != nil {
		t.Fatalf("node 1: %v", err)
	}
	if _, err := node2.authenticate(a, nil, ""); oauthCode(err) != oauth.ErrInvalidClient {
		t.Fatalf("node 2: got %v, want invalid_client (replay)", err)
	}
}

// TestAssertionJWKSURI fetches a client's keys from its jwks_uri: cached,
// fetched again when an unknown kid shows up (key rotation), but not more
// often than MinRefetch allows.
func TestAssertionJWKSURI(t *testing.T) {
	old := newKey(t, "2026-01", jose.ES256)
	next := newKey(t, "2026-02", jose.EdDSA)
	var published atomic.Value
	published.Store(jwksOf(t, old))
	var fetches atomic.Int32
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Write([]byte(published.Load().(string)))
	}))
	t.Cleanup(keys.Close)
	declared := []config.Client{{ClientID: "jwt", TokenEndpointAuthMethod: "private_key_jwt",
		GrantTypes: []string{"client_credentials"}, JWKSURI: keys.URL + "/jwks"}}
	env := newAssertionEnv(t, filepath.Join(t.TempDir(), "u.db"), declared)
	try := func(k signingKey) error {
		_, err := env.authenticate(sign(t, k, assertionClaimsFor("jwt", env.clk.Now()), nil), nil, "")
		return err
	}

	if err := try(old); err != nil {
		t.Fatalf("current key: %v", err)
	}
	if err := try(old); err != nil || fetches.Load() != 1 {
		t.Fatalf("second assertion: %v after %d fetches, want success from the cache (1 fetch)", err, fetches.Load())
	}
	// The client rotates: the new kid is unknown to the cache. The last fetch
	// was just now, so the refetch waits for MinRefetch.
	published.Store(jwksOf(t, next))
	if err := try(next); oauthCode(err) != oauth.ErrInvalidClient || fetches.Load() != 1 {
		t.Fatalf("new key within MinRefetch: %v after %d fetches, want invalid_client and no fetch", err, fetches.Load())
	}
	env.clk.Advance(31 * time.Second)
	if err := try(next); err != nil || fetches.Load() != 2 {
		t.Fatalf("new key after MinRefetch: %v after %d fetches, want success after a second fetch", err, fetches.Load())
	}
	if err := try(old); oauthCode(err) != oauth.ErrInvalidClient {
		t.Fatalf("retired key: got %v, want invalid_client", err)
	}

	t.Run("unreachable", func(t *testing.T) {
		down := httptest.NewServer(http.NotFoundHandler())
		down.Close()
		env := newAssertionEnv(t, filepath.Join(t.TempDir(), "d.db"), []config.Client{{ClientID: "jwt", TokenEndpointAuthMethod: "private_key_jwt",
			GrantTypes: []string{"client_credentials"}, JWKSURI: down.URL + "/jwks"}})
		_, err := env.authenticate(sign(t, old, assertionClaimsFor("jwt", env.clk.Now()), nil), nil, "")
		if oauthCode(err) != oauth.ErrInvalidClient {
			t.Fatalf("got %v, want invalid_client", err)
		}
	})
}

// TestAssertionAudienceOfThirdPartyClients presents the assertions that
// common client libraries sign, at the endpoints they sign them for: every
// value that names this server is accepted from an ordinary client (RFC 7523
// §3, RFC 9126 §2), and only the issuer as a string from a profile fapi2
// client (FAPI 2.0 Security Profile §5.3.2.1). No value naming another
// server is accepted anywhere.
func TestAssertionAudienceOfThirdPartyClients(t *testing.T) {
	k := newKey(t, "k", jose.ES256)
	const (
		parURL        = testIssuer + "/par"
		revokeURL     = testIssuer + "/revoke"
		introspectURL = testIssuer + "/introspect"
	)
	declared := []config.Client{
		{ClientID: "rp", TokenEndpointAuthMethod: "private_key_jwt", GrantTypes: []string{"client_credentials"}, JWKS: config.JSON(jwksOf(t, k))},
		{ClientID: "bank", Profile: config.ProfileFAPI2, TokenEndpointAuthMethod: "private_key_jwt", TokenEndpointAuthSigningAlg: "ES256",
			IDTokenSignedResponseAlg: "ES256", GrantTypes: []string{"client_credentials"}, JWKS: config.JSON(jwksOf(t, k))},
	}
	env := newAssertionEnv(t, filepath.Join(t.TempDir(), "aud.db"), declared)
	now := env.clk.Now()
	// claims are an assertion of client with aud, signed at iat for life.
	claims := func(client string, aud any, life time.Duration) map[string]any {
		c := assertionClaimsFor(client, now)
		c["aud"], c["exp"] = aud, now.Add(life).Unix()
		return c
	}
	cases := []struct {
		name   string
		client string
		path   string // endpoint called
		aud    any
		life   time.Duration
		ok     bool
	}{
		{name: "oauth2c/token-endpoint-url", client: "rp", path: "/token", aud: testTokenURL, life: time.Minute, ok: true},
		{name: "authlib/token-endpoint-url-for-an-hour", client: "rp", path: "/token", aud: testTokenURL, life: time.Hour, ok: true},
		{name: "zitadel/issuer-array-for-an-hour", client: "rp", path: "/token", aud: []string{testIssuer}, life: time.Hour, ok: true},
		{name: "zitadel/issuer-array-at-revoke", client: "rp", path: "/revoke", aud: []string{testIssuer}, life: time.Hour, ok: true},
		{name: "zitadel/issuer-array-at-introspect", client: "rp", path: "/introspect", aud: []string{testIssuer}, life: time.Hour, ok: true},
		{name: "issuer-string", client: "rp", path: "/token", aud: testIssuer, life: time.Minute, ok: true},
		{name: "par/par-endpoint-url", client: "rp", path: "/par", aud: parURL, life: time.Minute, ok: true},
		{name: "par/token-endpoint-url", client: "rp", path: "/par", aud: testTokenURL, life: time.Minute, ok: true},
		{name: "revoke/revocation-endpoint-url", client: "rp", path: "/revoke", aud: revokeURL, life: time.Minute, ok: true},
		{name: "introspect/introspection-endpoint-url", client: "rp", path: "/introspect", aud: introspectURL, life: time.Minute, ok: true},
		{name: "array/all-of-this-server", client: "rp", path: "/par", aud: []string{testIssuer, testTokenURL, parURL}, life: time.Minute, ok: true},

		{name: "fail/revocation-url-at-token", client: "rp", path: "/token", aud: revokeURL, life: time.Minute},
		{name: "fail/par-url-at-revoke", client: "rp", path: "/revoke", aud: parURL, life: time.Minute},
		{name: "fail/other-server-token-endpoint", client: "rp", path: "/token", aud: "https://other.example/token", life: time.Minute},
		{name: "fail/array-with-other-server", client: "rp", path: "/token", aud: []string{testIssuer, "https://other.example"}, life: time.Minute},
		{name: "fail/authlib-over-max-lifetime", client: "rp", path: "/token", aud: testTokenURL, life: 2 * time.Hour},

		{name: "fapi2/issuer-string", client: "bank", path: "/token", aud: testIssuer, life: time.Minute, ok: true},
		{name: "fapi2/issuer-string-at-par", client: "bank", path: "/par", aud: testIssuer, life: time.Minute, ok: true},
		{name: "fail/fapi2-token-endpoint-url", client: "bank", path: "/token", aud: testTokenURL, life: time.Minute},
		{name: "fail/fapi2-issuer-array", client: "bank", path: "/token", aud: []string{testIssuer}, life: time.Minute},
		{name: "fail/fapi2-par-endpoint-url", client: "bank", path: "/par", aud: parURL, life: time.Minute},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, err := env.authenticateAt(c.path, sign(t, k, claims(c.client, c.aud, c.life), nil), nil, "")
			switch {
			case c.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case c.ok && id != c.client:
				t.Fatalf("client %q, want %q", id, c.client)
			case !c.ok && oauthCode(err) != oauth.ErrInvalidClient:
				t.Fatalf("got %v, want invalid_client", err)
			}
		})
	}
}

// TestAssertionReplayForItsWholeLife uses an hour-long assertion once and
// presents it again just before it expires: the jti is still remembered, on
// another node too, so the assertion is never accepted twice.
func TestAssertionReplayForItsWholeLife(t *testing.T) {
	k := newKey(t, "k", jose.ES256)
	declared := []config.Client{{ClientID: "rp", TokenEndpointAuthMethod: "private_key_jwt",
		GrantTypes: []string{"client_credentials"}, JWKS: config.JSON(jwksOf(t, k))}}
	db := filepath.Join(t.TempDir(), "life.db")
	node1 := newAssertionEnv(t, db, declared)
	node2 := newAssertionEnv(t, db, declared)
	c := assertionClaimsFor("rp", node1.clk.Now())
	c["exp"] = node1.clk.Now().Add(time.Hour).Unix()
	a := sign(t, k, c, nil)
	if _, err := node1.authenticate(a, nil, ""); err != nil {
		t.Fatalf("first use: %v", err)
	}
	for _, n := range []assertionEnv{node1, node2} {
		n.clk.Advance(time.Hour + AssertionLeeway - time.Second)
	}
	for i, n := range []assertionEnv{node1, node2} {
		if _, err := n.authenticate(a, nil, ""); oauthCode(err) != oauth.ErrInvalidClient || !strings.Contains(err.Error(), "jti replayed") {
			t.Fatalf("node %d, a second before the assertion expires: got %v, want invalid_client (jti replayed)", i+1, err)
		}
	}
}
