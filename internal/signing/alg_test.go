package signing_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/castellan-auth/castellan/internal/jwstest"
)

// TestVerifyAlgorithmAndHeaderPolicy is the algorithm allow-list of every
// place Castellan accepts a JWS it signed (access tokens at userinfo,
// introspection and revocation; id_token_hint at the authorization and
// end-session endpoints all go through Keyset.Verify): "none", HS* keyed with
// a public key, a key of another algorithm, and unknown critical headers are
// refused even when the signature is made with a key the keyset trusts.
func TestVerifyAlgorithmAndHeaderPolicy(t *testing.T) {
	ks, _ := setup(t, "ES256", "RS256")
	set := jwks(t, ks)
	kidOf := map[string]string{}
	for _, k := range set.Keys {
		kidOf[k.Algorithm] = k.KeyID
	}
	es, _ := ks.PrivateJWK(kidOf["ES256"])
	rs, _ := ks.PrivateJWK(kidOf["RS256"])
	enc := base64.RawURLEncoding.EncodeToString
	payload := []byte(`{"sub":"x"}`)

	sign := func(t *testing.T, alg jose.SignatureAlgorithm, key any, opts *jose.SignerOptions) string {
		t.Helper()
		return jwstest.Sign(t, alg, key, opts, payload)
	}
	headers := func(kv ...any) *jose.SignerOptions {
		o := (&jose.SignerOptions{}).WithType("at+jwt")
		for i := 0; i+1 < len(kv); i += 2 {
			o = o.WithHeader(jose.HeaderKey(kv[i].(string)), kv[i+1])
		}
		return o
	}
	esPublicJSON, _ := json.Marshal(es.Public())
	foreign, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	foreignJWK := jose.JSONWebKey{Key: foreign.Public(), Algorithm: "ES256"}

	cases := []struct {
		name    string
		token   string
		allowed []string
		ok      bool
	}{
		{"ok/ES256", sign(t, jose.ES256, es, headers()), []string{"ES256", "RS256"}, true},
		{"ok/RS256", sign(t, jose.RS256, rs, headers()), []string{"ES256", "RS256"}, true},
		{"alg-none", enc([]byte(`{"alg":"none","typ":"at+jwt","kid":"`+es.KeyID+`"}`)) + "." + enc(payload) + ".", []string{"ES256", "RS256", "none"}, false},
		{"alg-none-uppercase", enc([]byte(`{"alg":"NONE","kid":"`+es.KeyID+`"}`)) + "." + enc(payload) + ".", []string{"ES256"}, false},
		// The classic confusion: HMAC keyed with the published public key.
		{"HS256-keyed-with-public-jwk", sign(t, jose.HS256, esPublicJSON, headers("kid", es.KeyID)), []string{"ES256", "RS256"}, false},
		{"HS256-even-if-allowed", sign(t, jose.HS256, esPublicJSON, headers("kid", es.KeyID)), []string{"ES256", "HS256"}, false},
		{"algorithm-not-in-allow-list", sign(t, jose.RS256, rs, headers()), []string{"ES256"}, false},
		{"PS256-with-the-RS256-key", sign(t, jose.PS256, rs, headers()), []string{"ES256", "RS256", "PS256"}, false},
		{"crit-unknown", sign(t, jose.ES256, es, headers("crit", []string{"exp"}, "exp", 1)), []string{"ES256"}, false},
		{"crit-empty", sign(t, jose.ES256, es, headers("crit", []string{})), []string{"ES256"}, false},
		{"crit-b64-unencoded-payload", sign(t, jose.ES256, es, headers().WithBase64(false)), []string{"ES256"}, false},
		{"b64-true-not-critical", sign(t, jose.ES256, es, headers("b64", true)), []string{"ES256"}, false},
		{"foreign-key-embedded-as-jwk", sign(t, jose.ES256, foreign, (&jose.SignerOptions{EmbedJWK: true}).WithType("at+jwt")), []string{"ES256"}, false},
		{"foreign-key-with-our-kid", sign(t, jose.ES256, jose.JSONWebKey{Key: foreign, KeyID: es.KeyID}, headers()), []string{"ES256"}, false},
		{"foreign-key-with-jwk-header-and-our-kid", sign(t, jose.ES256, jose.JSONWebKey{Key: foreign, KeyID: es.KeyID}, headers("jwk", foreignJWK)), []string{"ES256"}, false},
		{"unknown-kid", sign(t, jose.ES256, jose.JSONWebKey{Key: es.Key, KeyID: "nope"}, headers()), []string{"ES256"}, false},
		{"no-kid", sign(t, jose.ES256, es.Key, headers()), []string{"ES256"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, typ, err := ks.Verify(c.token, c.allowed)
			if c.ok {
				if err != nil || string(got) != string(payload) || typ != "at+jwt" {
					t.Fatalf("got %q %q %v, want the payload", got, typ, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("verified (%q), want refused", got)
			}
		})
	}
}
