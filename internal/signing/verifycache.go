package signing

import (
	"crypto/sha256"
	"sync"
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

// verifyCache remembers the tokens that verified, so that a resource server
// introspecting the same access token again and again costs a hash instead of
// a JWS parse and a signature check.
//
// Why this is safe: a JWS signature covers exactly the bytes of the header and
// payload, so a token with identical bytes verifies identically every time;
// what can change is only whether the key that signed it is still published
// and whether its algorithm is still allowed, and Verify checks both again on
// every hit. Failed verifications are never stored, so a bad token cannot
// occupy or poison an entry.
//
// Memory is bounded by two generations of verifyCacheSize entries: when the
// current generation is full it becomes the previous one (dropping the one
// before), and a hit in the previous generation is copied into the current
// one, so tokens still in use survive. One mutex is enough on few cores: the
// critical sections are a map lookup or insert.
type verifyCache struct {
	mu        sync.Mutex
	size      int
	cur, prev map[tokenDigest]verified
}

func newVerifyCache(size int) *verifyCache {
	return &verifyCache{size: size, cur: make(map[tokenDigest]verified, size)}
}

func (c *verifyCache) get(d tokenDigest) (verified, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[d]; ok {
		return v, true
	}
	v, ok := c.prev[d]
	if ok {
		c.putLocked(d, v)
	}
	return v, ok
}

func (c *verifyCache) put(d tokenDigest, v verified) {
	c.mu.Lock()
	c.putLocked(d, v)
	c.mu.Unlock()
}

func (c *verifyCache) putLocked(d tokenDigest, v verified) {
	if len(c.cur) >= c.size {
		c.prev, c.cur = c.cur, make(map[tokenDigest]verified, c.size)
	}
	c.cur[d] = v
}

// len is how many entries the cache holds (both generations; a promoted entry
// counts twice until its old generation is dropped).
func (c *verifyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.prev)
}
