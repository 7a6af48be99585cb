package servertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/jwstest"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/opaque"
)

// ClientKey is the ES256 key pair of a private_key_jwt client (RFC 7523).
type ClientKey struct {
	KID string
	Key *ecdsa.PrivateKey
}

// NewClientKey makes a fresh key.
func NewClientKey(t testing.TB, kid string) ClientKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return ClientKey{KID: kid, Key: k}
}

// JWKS is the public key set to register (config jwks, or a jwks_uri's body).
func (k ClientKey) JWKS() config.JSON {
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.Key.PublicKey, KeyID: k.KID, Algorithm: "ES256", Use: "sig"}}})
	return config.JSON(b)
}

// Sign signs claims as a compact JWS with typ JWT.
func (k ClientKey) Sign(t testing.TB, claims any) string {
	t.Helper()
	return jwstest.SignClaims(t, jose.ES256, jose.JSONWebKey{Key: k.Key, KeyID: k.KID}, (&jose.SignerOptions{}).WithType("JWT"), claims)
}

// AssertionClaims are good claims for clientID's assertion to aud at now,
// with a fresh jti and a one-minute lifetime.
func AssertionClaims(clientID, aud string, now time.Time) map[string]any {
	return map[string]any{"iss": clientID, "sub": clientID, "aud": aud, "jti": opaque.ID(),
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
}

// KeyClient is a ClientAuth for a private_key_jwt client whose assertions k
// signs for the issuer, at the env's (fake) time; each request gets a new one.
func (e *Env) KeyClient(t testing.TB, clientID string, k ClientKey) ClientAuth {
	return ClientAuth{ID: clientID, Method: oauth.AuthPrivateKeyJWT, Assertion: func() string {
		return k.Sign(t, AssertionClaims(clientID, e.URL, e.Clock.Now()))
	}}
}
