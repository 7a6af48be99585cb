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
