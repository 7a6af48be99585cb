package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// DefaultNoncePeriod is how long a nonce is current when NewNonces is given
// no period. A nonce is accepted during its period and the next one.
const DefaultNoncePeriod = 5 * time.Minute

// Nonces are stateless server nonces (RFC 9449 §8, §9): a nonce is the number
// of a time period with an HMAC of it, so every server holding the same key
// accepts every other's nonces without sharing state, and a nonce stops
// working two periods after it was issued.
type Nonces struct {
	key    []byte
	period time.Duration
}

// NewNonces returns nonces under key (at least 32 bytes of secret; Castellan
// derives it from its master key) that change every period.
func NewNonces(key []byte, period time.Duration) *Nonces {
	if period <= 0 {
		period = DefaultNoncePeriod
	}
	return &Nonces{key: append([]byte(nil), key...), period: period}
}

const nonceMACSize = 16

// Current is the nonce to hand out at now.
func (n *Nonces) Current(now time.Time) string {
	return n.make(n.index(now))
}

// Valid reports whether nonce is the current or the previous period's.
func (n *Nonces) Valid(nonce string, now time.Time) bool {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 8+nonceMACSize {
		return false
	}
	i := binary.BigEndian.Uint64(b[:8])
	cur := n.index(now)
	if i != cur && i+1 != cur {
		return false
	}
	return hmac.Equal(b[8:], n.mac(i))
}

func (n *Nonces) index(now time.Time) uint64 {
	return uint64(now.UnixNano() / int64(n.period))
}

func (n *Nonces) mac(i uint64) []byte {
	m := hmac.New(sha256.New, n.key)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	m.Write([]byte("dpop-nonce\x00"))
	m.Write(b[:])
	return m.Sum(nil)[:nonceMACSize]
}

func (n *Nonces) make(i uint64) string {
	b := make([]byte, 8, 8+nonceMACSize)
	binary.BigEndian.PutUint64(b, i)
	return base64.RawURLEncoding.EncodeToString(append(b, n.mac(i)...))
}
