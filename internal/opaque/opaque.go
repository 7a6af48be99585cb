// Package opaque makes the high-entropy random strings Castellan hands out
// (session cookies, authorization codes, refresh tokens, client secrets,
// identifiers) and the digests under which they are stored.
//
// A value is 256 random bits in unpadded base64url; only its SHA-256 is stored,
// so a database leak yields nothing that can be presented back. Lookups are by
// the full digest: a truncated or padded value never matches by prefix.
package opaque

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// Size is the number of random bytes in a value.
const Size = 32

// New returns a fresh 256-bit value, base64url-encoded without padding (43 characters).
func New() string {
	b := make([]byte, Size)
	rand.Read(b) // never returns an error (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ID returns a shorter random identifier (128 bits, 22 characters) for things
// that are names, not secrets: user ids, session ids in tokens, grant ids, jti.
func ID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Hash is the storage digest of a presented value.
func Hash(v string) []byte {
	h := sha256.Sum256([]byte(v))
	return h[:]
}

// Wellformed reports whether v looks like a value made by New: exactly 43
// base64url characters. It is a cheap filter before a lookup, not a check of
// authenticity.
func Wellformed(v string) bool {
	if len(v) != 43 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
