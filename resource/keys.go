package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Timing of the key cache. See the package documentation.
const (
	// refreshLimit is the least time between two fetches of the keys, whatever
	// asks for them: an unknown kid, expired keys, or a retry after a failure.
	refreshLimit = 10 * time.Second
	// defaultKeysAge is how long keys are fresh when the JWKS response has no
	// Cache-Control max-age; minKeysAge and maxKeysAge bound the max-age.
	defaultKeysAge = 5 * time.Minute
	minKeysAge     = time.Minute
	maxKeysAge     = 15 * time.Minute
	// maxStale is how long past their freshness cached keys are still used
	// while the provider does not answer.
	maxStale = 6 * time.Hour
	// fetchTimeout bounds one request to the provider.
	fetchTimeout = 10 * time.Second
	// maxDocument bounds a discovery, JWKS or introspection response.
	maxDocument = 1 << 20
)

// discoveryPath is where OpenID Connect Discovery §4 puts the metadata.
const discoveryPath = "/.well-known/openid-configuration"

// metadata is what the verifier reads from the discovery document.
type metadata struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

// keySet is the issuer's JWKS, fetched through discovery and cached.
type keySet struct {
	issuer string
	client *http.Client
	now    func() time.Time

	mu       sync.Mutex
	meta     *metadata // last good discovery document
	jwksURI  string    // "" until discovered, and again after a failed JWKS fetch
	keys     map[string][]jose.JSONWebKey
	loaded   bool      // keys were fetched at least once
	expires  time.Time // keys are fresh until then
	last     time.Time // last fetch started
	lastErr  error     // outcome of the last fetch
	inflight chan struct{}
}

// key returns the public key with kid for a token signed with alg. It fetches
// the keys when none are cached, when kid is unknown, or (in the background,
// serving the cached key meanwhile) when the cache is stale; at most one fetch
// runs at a time and at most one starts per refreshLimit.
func (ks *keySet) key(ctx context.Context, kid, alg string) (*jose.JSONWebKey, error) {
	for fetched := false; ; {
		ks.mu.Lock()
		now := ks.now()
		k, known := ks.find(kid, alg)
		if known && k == nil {
			ks.mu.Unlock()
			return nil, invalid("uses an algorithm that does not match its key")
		}
		fresh := ks.loaded && now.Before(ks.expires)
		usable := k != nil && now.Before(ks.expires.Add(maxStale))
		if k != nil && fresh {
			ks.mu.Unlock()
			return k, nil
		}
		if wait := ks.inflight; wait != nil {
			ks.mu.Unlock()
			if usable {
				return k, nil
			}
			select {
			case <-wait:
				fetched = true
				continue
			case <-ctx.Done():
				return nil, unavailable(ctx.Err())
			}
		}
		if fetched || (!ks.last.IsZero() && now.Sub(ks.last) < refreshLimit) {
			err := ks.settle(k, usable)
			ks.mu.Unlock()
			if err != nil {
				return nil, err
			}
			return k, nil
		}
		done := make(chan struct{})
		ks.inflight, ks.last = done, now
		ks.mu.Unlock()
		// The fetch serves every waiting caller: it must not end with the
		// request that happened to start it.
		fctx := context.WithoutCancel(ctx)
		if usable {
			go ks.refresh(fctx, done)
			return k, nil
		}
		ks.refresh(fctx, done)
		fetched = true
	}
}

// settle decides, when no fetch may start, whether the cached key k serves
// (nil) or why not. Called with mu held.
func (ks *keySet) settle(k *jose.JSONWebKey, usable bool) error {
	switch {
	case usable:
		return nil
	case k != nil:
		return unavailable(fmt.Errorf("signing keys are out of date (last fetch: %v)", ks.lastErr))
	case !ks.loaded && ks.lastErr == nil:
		return unavailable(errors.New("signing keys not fetched yet"))
	case ks.lastErr != nil:
		// Nothing fetched yet, or the key may be new: the provider does not
		// answer, which says nothing about the token.
		return unavailable(ks.lastErr)
	}
	return invalid("is not signed by a key of the issuer")
}

// find returns the key with kid usable with alg, and whether kid is known at
// all. Called with mu held.
func (ks *keySet) find(kid, alg string) (*jose.JSONWebKey, bool) {
	cands, ok := ks.keys[kid]
	for i := range cands {
		if cands[i].Algorithm == "" || cands[i].Algorithm == alg {
			return &cands[i], true
		}
	}
	return nil, ok
}

// refresh fetches the keys and closes done.
func (ks *keySet) refresh(ctx context.Context, done chan struct{}) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	keys, age, err := ks.fetch(ctx)
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if err == nil {
		ks.keys, ks.loaded, ks.expires = keys, true, ks.now().Add(age)
	}
	ks.lastErr = err
	ks.inflight = nil
	close(done)
}

// fetch discovers the jwks_uri if needed and reads the key set.
func (ks *keySet) fetch(ctx context.Context) (map[string][]jose.JSONWebKey, time.Duration, error) {
	ks.mu.Lock()
	jwksURI := ks.jwksURI
	ks.mu.Unlock()
	if jwksURI == "" {
		meta, err := ks.discover(ctx)
		if err != nil {
			return nil, 0, err
		}
		jwksURI = meta.JWKSURI
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	h, err := getJSON(ctx, ks.client, jwksURI, &raw)
	if err == nil && len(raw.Keys) == 0 {
		err = errors.New("no keys")
	}
	if err != nil {
		// Maybe the jwks_uri moved: discover again next time.
		ks.mu.Lock()
		ks.jwksURI = ""
		ks.mu.Unlock()
		return nil, 0, fmt.Errorf("jwks: %w", err)
	}
	keys := map[string][]jose.JSONWebKey{}
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil {
			continue // a key type this library does not know: not ours to use
		}
		pub := k.Public()
		if (k.Use != "" && k.Use != "sig") || k.KeyID == "" || !pub.IsPublic() || !pub.Valid() {
			continue
		}
		keys[k.KeyID] = append(keys[k.KeyID], pub)
	}
	if len(keys) == 0 {
		return nil, 0, errors.New("jwks: no usable signing key")
	}
	return keys, maxAge(h.Get("Cache-Control")), nil
}

// discover reads the issuer's discovery document.
func (ks *keySet) discover(ctx context.Context) (*metadata, error) {
	var m metadata
	if _, err := getJSON(ctx, ks.client, strings.TrimSuffix(ks.issuer, "/")+discoveryPath, &m); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	if m.Issuer != ks.issuer {
		// OpenID Connect Discovery §4.3: anything else is another provider's
		// document (or a misconfigured issuer).
		return nil, fmt.Errorf("discovery: issuer is %q, want %q", m.Issuer, ks.issuer)
	}
	if !httpURL(m.JWKSURI) {
		return nil, fmt.Errorf("discovery: jwks_uri %q is not an absolute http(s) URL", m.JWKSURI)
	}
	if m.IntrospectionEndpoint != "" && !httpURL(m.IntrospectionEndpoint) {
		m.IntrospectionEndpoint = ""
	}
	ks.mu.Lock()
	ks.meta, ks.jwksURI = &m, m.JWKSURI
	ks.mu.Unlock()
	return &m, nil
}

// introspectionEndpoint returns the discovered introspection endpoint,
// discovering it if no document was read yet.
func (ks *keySet) introspectionEndpoint(ctx context.Context) (string, error) {
	ks.mu.Lock()
	meta := ks.meta
	ks.mu.Unlock()
	if meta == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		defer cancel()
		var err error
		if meta, err = ks.discover(ctx); err != nil {
			return "", err
		}
	}
	if meta.IntrospectionEndpoint == "" {
		return "", errors.New("the provider has no introspection_endpoint")
	}
	return meta.IntrospectionEndpoint, nil
}

// maxAge is how long keys served with the Cache-Control header cc are fresh:
// its max-age (RFC 9111 §5.2.2.1), kept within [minKeysAge, maxKeysAge];
// no-store and no-cache count as the minimum.
func maxAge(cc string) time.Duration {
	age := defaultKeysAge
	for _, d := range strings.Split(cc, ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.ToLower(name) {
		case "no-store", "no-cache":
			return minKeysAge
		case "max-age":
			n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
			if err != nil || n < 0 {
				continue
			}
			age = time.Duration(min(n, int64(maxKeysAge/time.Second))) * time.Second
		}
	}
	return min(max(age, minKeysAge), maxKeysAge)
}

// getJSON GETs u and decodes a 200 JSON response into v.
func getJSON(ctx context.Context, client *http.Client, u string, v any) (http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxDocument))
		return nil, fmt.Errorf("%s: status %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDocument)).Decode(v); err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	return resp.Header, nil
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}
