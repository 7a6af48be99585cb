package signing

import "github.com/go-jose/go-jose/v4"

// PrivateJWK hands tests the private key behind kid, so they can sign tokens
// the keyset would never produce (extra critical headers, unencoded payloads)
// with a key it trusts.
func (ks *Keyset) PrivateJWK(kid string) (jose.JSONWebKey, bool) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	k, ok := ks.keys[kid]
	if !ok {
		return jose.JSONWebKey{}, false
	}
	return k.jwk, true
}

// VerifyUncached is Verify without the verification cache, for benchmarks.
func (ks *Keyset) VerifyUncached(token string, allowed []string) ([]byte, string, error) {
	v, err := ks.verify(token, allowed)
	return v.payload, v.typ, err
}

// VerifyCacheLen is how many entries the verification cache holds.
func (ks *Keyset) VerifyCacheLen() int { return ks.verified.Len() }

// SetVerifyCacheSize empties the verification cache and bounds each of its
// generations to size entries, so a test can fill it quickly.
func (ks *Keyset) SetVerifyCacheSize(size int) { ks.verified = newVerifyCache(size) }
