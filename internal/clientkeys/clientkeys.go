// Package clientkeys holds the public keys clients sign with (private_key_jwt,
// RFC 7523): a JSON Web Key Set registered inline (jwks) or published by the
// client at its jwks_uri. Fetched sets are cached; a key id the cache does not
// know triggers a refetch, at most once per MinRefetch for each URI, so that a
// client can rotate keys without anyone being able to make Castellan hammer its
// jwks_uri.
package clientkeys

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/castellan-auth/castellan/internal/clock"
)

// MinRSABits is the smallest RSA modulus accepted (NIST SP 800-131A).
const MinRSABits = 2048

// Parse reads a JSON Web Key Set and keeps it only if every key is a public,
// asymmetric signing key: a symmetric ("oct") key would let whoever sees the
// configuration forge assertions, and a private key does not belong in it.
func Parse(data []byte) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return set, fmt.Errorf("not a JSON Web Key Set: %v", err)
	}
	if len(set.Keys) == 0 {
		return set, errors.New("the key set holds no keys")
	}
	for i, k := range set.Keys {
		if err := checkKey(k); err != nil {
			return set, fmt.Errorf("key %d (kid %q): %v", i, k.KeyID, err)
		}
	}
	return set, nil
}

func checkKey(k jose.JSONWebKey) error {
	switch pub := k.Key.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey:
	case *rsa.PublicKey:
		if pub.N.BitLen() < MinRSABits {
			return fmt.Errorf("RSA key shorter than %d bits", MinRSABits)
		}
	case []byte:
		return errors.New("symmetric keys are not allowed: publish public keys only")
	default:
		if !k.IsPublic() {
			return errors.New("a private key: publish public keys only")
		}
		return fmt.Errorf("unsupported key type %T", k.Key)
	}
	if !k.Valid() {
		return errors.New("invalid key")
	}
	if k.Use != "" && k.Use != "sig" {
		return fmt.Errorf("use %q: want sig", k.Use)
	}
	return nil
}

// Fetcher fetches and caches the key sets at clients' jwks_uri.
type Fetcher struct {
	// HTTP fetches the sets; the default has a 5-second timeout.
	HTTP  *http.Client
	Clock clock.Clock
	// MaxAge is how long a fetched set is used before it is fetched again
	// (default 10 minutes).
	MaxAge time.Duration
	// MinRefetch is the least time between two fetches of one URI (default 30 s).
	MinRefetch time.Duration
	// MaxBytes bounds a response (default 64 KiB).
	MaxBytes int64

	mu      sync.Mutex
	entries map[string]*entry
}

type entry struct {
	mu        sync.Mutex // one fetch of a URI at a time
	set       jose.JSONWebKeySet
	fetchedAt time.Time // zero until a fetch succeeded
	triedAt   time.Time // last fetch attempt
	err       error     // of the last attempt
}

// NewFetcher returns a fetcher with the defaults.
func NewFetcher(clk clock.Clock) *Fetcher {
	return &Fetcher{Clock: clk}
}

// Keys returns the key set published at uri: from the cache while it is
// fresh, unless refetch asks for a new copy (an unknown kid), which is
// honoured at most once per MinRefetch.
func (f *Fetcher) Keys(ctx context.Context, uri string, refetch bool) (jose.JSONWebKeySet, error) {
	f.mu.Lock()
	if f.entries == nil {
		f.entries = map[string]*entry{}
	}
	e := f.entries[uri]
	if e == nil {
		e = &entry{}
		f.entries[uri] = e
	}
	f.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	now := f.Clock.Now()
	fresh := !e.fetchedAt.IsZero() && now.Sub(e.fetchedAt) < f.maxAge()
	recent := !e.triedAt.IsZero() && now.Sub(e.triedAt) < f.minRefetch()
	switch {
	case fresh && !refetch, recent && !e.fetchedAt.IsZero():
		return e.set, nil
	case recent:
		return e.set, e.err
	}
	e.triedAt = now
	set, err := f.fetch(ctx, uri)
	if err != nil {
		e.err = err
		if !e.fetchedAt.IsZero() {
			// Keep using the last good set: the client's server may be down
			// for a moment, its keys have not changed for that.
			return e.set, nil
		}
		return set, err
	}
	e.set, e.fetchedAt, e.err = set, now, nil
	return set, nil
}

func (f *Fetcher) fetch(ctx context.Context, uri string) (jose.JSONWebKeySet, error) {
	hc := f.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	// The result is shared by every request for MinRefetch: one caller giving
	// up must not cut the fetch short for all (the HTTP timeout still bounds it).
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, uri, nil)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks_uri: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks_uri: status %d", resp.StatusCode)
	}
	limit := f.MaxBytes
	if limit <= 0 {
		limit = 64 << 10
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks_uri: %w", err)
	}
	if int64(len(body)) > limit {
		return jose.JSONWebKeySet{}, fmt.Errorf("fetch jwks_uri: larger than %d bytes", limit)
	}
	set, err := Parse(body)
	if err != nil {
		return set, fmt.Errorf("jwks_uri: %w", err)
	}
	return set, nil
}

func (f *Fetcher) maxAge() time.Duration {
	if f.MaxAge > 0 {
		return f.MaxAge
	}
	return 10 * time.Minute
}

func (f *Fetcher) minRefetch() time.Duration {
	if f.MinRefetch > 0 {
		return f.MinRefetch
	}
	return 30 * time.Second
}

// defaultHTTP does not follow redirects: the registered URI is the one trusted.
var defaultHTTP = &http.Client{
	Timeout: 5 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}
