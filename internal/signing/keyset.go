// Package signing keeps Castellan's JOSE signing keys: it generates them
// (ES256 by default, RS256 and EdDSA available), stores them sealed with the
// master key, decrypts each once into memory, signs with the current key of an
// algorithm, publishes next, current and previous keys as a JWKS, and rotates
// on a schedule that lets every node publish a key before any node signs with
// it. Every JOSE operation goes through go-jose/v4.
package signing

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/storage"
)

// Policy schedules keys.
type Policy struct {
	// Algorithms are the algorithms to keep a current key for.
	Algorithms []string
	// RotationPeriod is how long a key signs before its successor takes over.
	RotationPeriod time.Duration
	// Propagation is how long a new key is published before it signs: at least
	// the interval at which every node re-reads keys.
	Propagation time.Duration
	// MaxTokenLifetime is how long a retired key stays published so that the
	// tokens it signed can still be verified.
	MaxTokenLifetime time.Duration
}

// Store is what a Keyset needs from storage: the keys, and a lock that lets
// one node at a time change them.
type Store interface {
	storage.SigningKeys
	storage.Locker
}

// Keyset is the set of signing keys, cached in memory.
type Keyset struct {
	store  Store
	master *seal.Key
	clock  clock.Clock
	policy Policy
	log    *slog.Logger

	mu     sync.RWMutex
	keys   map[string]*key // by kid
	jwks   []byte          // published JWKS, rebuilt on change
	signer map[signerKey]jose.Signer

	// verified remembers tokens that verified (see verifyCache).
	verified *verifyCache
}

type key struct {
	rec  storage.SigningKey
	jwk  jose.JSONWebKey // private
	pub  jose.JSONWebKey
	alg  jose.SignatureAlgorithm
	sign crypto.Signer
}

type signerKey struct {
	kid, typ string
}

// New returns an empty keyset; call Load (or Ensure) before use.
func New(store Store, master *seal.Key, clk clock.Clock, p Policy, log *slog.Logger) *Keyset {
	return &Keyset{store: store, master: master, clock: clk, policy: p, log: log,
		keys: map[string]*key{}, signer: map[signerKey]jose.Signer{}, verified: newVerifyCache(verifyCacheSize)}
}

// Ensure loads the keys and creates a current key for every configured
// algorithm that has none (first start, or an algorithm newly configured).
// Nodes starting together against an empty database create one key per
// algorithm between them: each waits for the maintenance lock and looks again.
func (ks *Keyset) Ensure(ctx context.Context) error {
	if err := ks.Load(ctx); err != nil {
		return err
	}
	if len(ks.missing(ks.clock.Now())) == 0 {
		return nil
	}
	unlock, err := ks.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := ks.Load(ctx); err != nil {
		return err
	}
	now := ks.clock.Now()
	for _, alg := range ks.missing(now) {
		// Pending: another node created it after all (it had lost the lock).
		if _, err := ks.rotate(ctx, alg, now); err != nil && !errors.Is(err, ErrRotationPending) {
			return err
		}
	}
	return ks.Load(ctx)
}

// missing lists the configured algorithms with neither a current key nor a
// next one. (A next key without a current one is a first key created by a node
// whose clock is ahead by more than firstKeySkew: it signs soon.)
func (ks *Keyset) missing(now time.Time) []string {
	var out []string
	for _, alg := range ks.policy.Algorithms {
		if ks.current(alg, now) == nil && ks.next(alg, now) == nil {
			out = append(out, alg)
		}
	}
	return out
}

// Load re-reads the keys from storage, decrypting only keys not seen before.
func (ks *Keyset) Load(ctx context.Context) error {
	recs, err := ks.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	ks.mu.RLock()
	old := ks.keys
	ks.mu.RUnlock()
	next := make(map[string]*key, len(recs))
	for _, rec := range recs {
		if k, ok := old[rec.KID]; ok {
			cp := *k
			cp.rec = rec // schedule fields may have changed
			next[rec.KID] = &cp
			continue
		}
		k, err := ks.open(rec)
		if err != nil {
			return err
		}
		next[rec.KID] = k
	}
	jwks, err := publish(next, ks.clock.Now())
	if err != nil {
		return err
	}
	ks.mu.Lock()
	ks.keys, ks.jwks = next, jwks
	for sk := range ks.signer {
		if _, ok := next[sk.kid]; !ok {
			delete(ks.signer, sk)
		}
	}
	ks.mu.Unlock()
	return nil
}

// OpenKey unseals a stored signing key with the master key: its private JWK.
// Tests use it to sign, with a key the provider's clients trust, what the
// provider itself never would.
func OpenKey(master *seal.Key, rec storage.SigningKey) (jose.JSONWebKey, error) {
	var jwk jose.JSONWebKey
	plain, err := master.Open(rec.Sealed, "signing-key:"+rec.KID)
	if err != nil {
		return jwk, fmt.Errorf("signing key %s: %w (was key_file replaced?)", rec.KID, err)
	}
	if err := jwk.UnmarshalJSON(plain); err != nil {
		return jwk, fmt.Errorf("signing key %s: %w", rec.KID, err)
	}
	return jwk, nil
}

func (ks *Keyset) open(rec storage.SigningKey) (*key, error) {
	jwk, err := OpenKey(ks.master, rec)
	if err != nil {
		return nil, err
	}
	signer, ok := jwk.Key.(crypto.Signer)
	if !ok || jwk.IsPublic() {
		return nil, fmt.Errorf("signing key %s: not a private key", rec.KID)
	}
	return &key{rec: rec, jwk: jwk, pub: jwk.Public(), alg: jose.SignatureAlgorithm(rec.Algorithm), sign: signer}, nil
}

// newKey generates and seals a key; it is stored by ScheduleSigningKey.
func (ks *Keyset) newKey(alg string, now, activates time.Time) (storage.SigningKey, error) {
	priv, err := generate(alg)
	if err != nil {
		return storage.SigningKey{}, err
	}
	jwk := jose.JSONWebKey{Key: priv, Algorithm: alg, Use: "sig"}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return storage.SigningKey{}, err
	}
	// RFC 7638 thumbprint as kid: stable, unique, and says nothing secret.
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	plain, err := jwk.MarshalJSON()
	if err != nil {
		return storage.SigningKey{}, err
	}
	return storage.SigningKey{
		KID:         jwk.KeyID,
		Algorithm:   alg,
		Sealed:      ks.master.Seal(plain, "signing-key:"+jwk.KeyID),
		CreatedAt:   now,
		ActivatesAt: activates,
	}, nil
}

func generate(alg string) (crypto.Signer, error) {
	switch alg {
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "EdDSA":
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("unsupported signing algorithm %q", alg)
}

// current is the key that signs for alg now: active, not retired, the newest.
func (ks *Keyset) current(alg string, now time.Time) *key {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	var best *key
	for _, k := range ks.keys {
		if k.rec.Algorithm != alg || now.Before(k.rec.ActivatesAt) || (!k.rec.RetiresAt.IsZero() && !now.Before(k.rec.RetiresAt)) {
			continue
		}
		if best == nil || k.rec.ActivatesAt.After(best.rec.ActivatesAt) {
			best = k
		}
	}
	return best
}

// publish builds the JWKS: every key not yet expired (next, current, previous).
func publish(keys map[string]*key, now time.Time) ([]byte, error) {
	var set jose.JSONWebKeySet
	for _, k := range keys {
		if !k.rec.ExpiresAt.IsZero() && !now.Before(k.rec.ExpiresAt) {
			continue
		}
		set.Keys = append(set.Keys, k.pub)
	}
	sort.Slice(set.Keys, func(i, j int) bool { return set.Keys[i].KeyID < set.Keys[j].KeyID })
	return json.Marshal(set)
}

// JWKS returns the published key set as JSON.
func (ks *Keyset) JWKS() []byte {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.jwks
}

// ErrNoKey means no key can sign with the requested algorithm.
var ErrNoKey = errors.New("no current signing key")

// Sign signs payload with the current key of alg as a compact JWS whose "typ"
// header is typ (e.g. "at+jwt", "JWT", "logout+jwt").
func (ks *Keyset) Sign(alg, typ string, payload []byte) (string, error) {
	k := ks.current(alg, ks.clock.Now())
	if k == nil {
		return "", fmt.Errorf("%w for %s", ErrNoKey, alg)
	}
	s, err := ks.signerFor(k, typ)
	if err != nil {
		return "", err
	}
	jws, err := s.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

func (ks *Keyset) signerFor(k *key, typ string) (jose.Signer, error) {
	sk := signerKey{k.rec.KID, typ}
	ks.mu.RLock()
	s, ok := ks.signer[sk]
	ks.mu.RUnlock()
	if ok {
		return s, nil
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.jwk},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		return nil, err
	}
	ks.mu.Lock()
	ks.signer[sk] = s
	ks.mu.Unlock()
	return s, nil
}

// Algorithms returns the configured algorithms; the first signs access tokens.
func (ks *Keyset) Algorithms() []string { return ks.policy.Algorithms }

// Verify checks a compact JWS signed by one of this keyset's published keys
// with one of the allowed algorithms, and returns its payload and "typ" header.
// It does not check claims.
//
// A token that verified once is remembered by the SHA-256 of its bytes (see
// verifyCache): presented again, it is not parsed or checked again, but its key
// must still be published and its algorithm allowed. The payload returned may
// therefore be shared between callers and must not be modified.
func (ks *Keyset) Verify(token string, allowed []string) ([]byte, string, error) {
	// One hash per call: it is the lookup key and, on a miss, the key to store.
	digest := tokenDigest(sha256.Sum256([]byte(token)))
	if v, ok := ks.verified.Get(digest); ok {
		// The bytes verified before; only what may have changed since is checked.
		if !slices.Contains(allowed, v.alg) {
			return nil, "", errors.New("algorithm not allowed")
		}
		if _, err := ks.verifyingKey(v.kid, v.alg); err != nil {
			return nil, "", err
		}
		return v.payload, v.typ, nil
	}
	v, err := ks.verify(token, allowed)
	if err != nil {
		return nil, "", err // never cached
	}
	ks.verified.Put(digest, v)
	return v.payload, v.typ, nil
}

// verify is Verify without the cache: it parses the token and checks its
// header and signature.
func (ks *Keyset) verify(token string, allowed []string) (verified, error) {
	algs := make([]jose.SignatureAlgorithm, 0, len(allowed))
	for _, a := range allowed {
		algs = append(algs, jose.SignatureAlgorithm(a))
	}
	// Compact serialization only: the JSON forms carry unprotected headers.
	jws, err := jose.ParseSignedCompact(token, algs)
	if err != nil {
		return verified{}, err
	}
	if len(jws.Signatures) != 1 {
		return verified{}, errors.New("want exactly one signature")
	}
	h := jws.Signatures[0].Protected
	// RFC 7515 §4.1.11: Castellan understands no extension, so a token naming
	// one critical is refused. go-jose would accept crit ["b64"] (RFC 7797,
	// unencoded payload); a token we issued never has either header.
	if _, ok := h.ExtraHeaders["crit"]; ok {
		return verified{}, errors.New("critical header not understood")
	}
	if _, ok := h.ExtraHeaders["b64"]; ok {
		return verified{}, errors.New("b64 header not allowed")
	}
	k, err := ks.verifyingKey(h.KeyID, h.Algorithm)
	if err != nil {
		return verified{}, err
	}
	payload, err := jws.Verify(k.pub)
	if err != nil {
		return verified{}, err
	}
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	return verified{payload: payload, typ: typ, kid: h.KeyID, alg: h.Algorithm}, nil
}

// verifyingKey returns the key that may verify a token whose header names kid
// and alg: one of ours, still published (not expired), of that algorithm.
// Keys are named by the RFC 7638 thumbprint of their public key (newKey), so a
// kid cannot come to name other key material while a token is cached.
func (ks *Keyset) verifyingKey(kid, alg string) (*key, error) {
	ks.mu.RLock()
	k, ok := ks.keys[kid]
	ks.mu.RUnlock()
	now := ks.clock.Now()
	if !ok || (!k.rec.ExpiresAt.IsZero() && !now.Before(k.rec.ExpiresAt)) {
		return nil, errors.New("unknown signing key")
	}
	if string(k.alg) != alg {
		return nil, errors.New("algorithm does not match the key")
	}
	return k, nil
}
