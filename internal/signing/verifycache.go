package signing

import (
	"crypto/sha256"

	"github.com/castellan-auth/castellan/internal/recent"
)

// verifyCacheSize is how many verified tokens one generation of the cache
// holds; the cache holds at most two generations.
const verifyCacheSize = 4096

// tokenDigest names a token in the verification cache: the SHA-256 of its
// exact bytes. It must stay a cryptographic hash of the whole token: two
// tokens with the same digest share a cache entry, so a digest an attacker
// could collide (a non-cryptographic hash, a prefix) would let a forged token
// through on the strength of a genuine one.
type tokenDigest [sha256.Size]byte

// verified is what a successful verification established about a token. Only
// kid and alg can stop being acceptable later (the key retires, the caller
// allows other algorithms); Verify re-checks them on every hit.
type verified struct {
	payload []byte // shared by every hit: read-only
	typ     string
	kid     string
	alg     string
}

// The verification cache (Keyset.verified) remembers the tokens that
// verified, so that a resource server introspecting the same access token again
// and again costs a hash instead of a JWS parse and a signature check.
//
// Why this is safe: a JWS signature covers exactly the bytes of the header and
// payload, so a token with identical bytes verifies identically every time;
// what can change is only whether the key that signed it is still published
// and whether its algorithm is still allowed, and Verify checks both again on
// every hit. Failed verifications are never stored, so a bad token cannot
// occupy or poison an entry. Memory is bounded by recent.Map's two
// generations of verifyCacheSize entries.
type verifyCache = recent.Map[tokenDigest, verified]

func newVerifyCache(size int) *verifyCache { return recent.New[tokenDigest, verified](size) }
