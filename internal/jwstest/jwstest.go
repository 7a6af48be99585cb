// Package jwstest signs JWS for tests that need tokens the provider did not
// issue: forged, foreign, or with headers it would never write.
package jwstest

import (
	"encoding/json"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// Sign signs payload with key under alg and opts (nil for none) and returns
// the compact serialization; it fails t if any step fails.
func Sign(t testing.TB, alg jose.SignatureAlgorithm, key any, opts *jose.SignerOptions, payload []byte) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// SignClaims is Sign of claims marshalled as JSON: a JWT with whatever
// claims and headers a test needs.
func SignClaims(t testing.TB, alg jose.SignatureAlgorithm, key any, opts *jose.SignerOptions, claims any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return Sign(t, alg, key, opts, payload)
}
