package resource_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/castellan-auth/castellan/resource"
)

// fakeIssuer serves a discovery document and a JWKS whose contents and
// Cache-Control the test controls, for what a real provider never does:
// critical headers, odd key sets, odd caching.
type fakeIssuer struct {
	t   *testing.T
	srv *httptest.Server
	key *ecdsa.PrivateKey

	mu           sync.Mutex
	now          time.Time
	keys         []any // JWKS members
	cacheControl string
	jwksHits     int
}

func newFakeIssuer(t *testing.T) *fakeIssuer {
	f := &fakeIssuer{t: t, key: newECKey(t), now: time.Now().Truncate(time.Second), cacheControl: "max-age=300"}
	f.keys = []any{jose.JSONWebKey{Key: &f.key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+discoveryPath, func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": f.srv.URL, "jwks_uri": f.srv.URL + jwksPath})
	})
	mux.HandleFunc("GET "+jwksPath, func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.jwksHits++
		w.Header().Set("Cache-Control", f.cacheControl)
		json.NewEncoder(w).Encode(map[string]any{"keys": f.keys})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIssuer) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeIssuer) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func (f *fakeIssuer) hits() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.jwksHits
}

func (f *fakeIssuer) verifier() *resource.Verifier {
	v, err := resource.New(resource.Config{Issuer: f.srv.URL, Audience: "api", HTTPClient: f.srv.Client(), Now: f.Now})
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

func (f *fakeIssuer) claims() map[string]any {
	now := f.Now()
	return map[string]any{"iss": f.srv.URL, "aud": "api", "sub": "alice", "client_id": "spa", "jti": "j1",
		"scope": "openid", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

// sign signs the issuer's claims with its key and the given headers (kid k1
// and typ at+jwt unless overridden; a nil value leaves the header out).
func (f *fakeIssuer) sign(headers map[jose.HeaderKey]any) string {
	h := map[jose.HeaderKey]any{"kid": "k1", "typ": "at+jwt"}
	for k, v := range headers {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	return signWith(f.t, jose.ES256, f.key, h, f.claims())
}

// TestVerifyHeaders covers the JOSE headers a Castellan provider never
// writes.
func TestVerifyHeaders(t *testing.T) {
	t.Parallel()
	f := newFakeIssuer(t)
	second := newECKey(t)
	f.keys = append(f.keys,
		jose.JSONWebKey{Key: &second.PublicKey, KeyID: "enc1", Algorithm: "ECDH-ES", Use: "enc"},
		jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "oct1", Algorithm: "HS256"},
		map[string]string{"kty": "unknown-type", "kid": "weird"},
	)
	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{name: "ok/plain", token: f.sign(nil)},
		{name: "fail/crit", token: f.sign(map[jose.HeaderKey]any{"crit": []string{"exp"}, "exp": 1}), reason: "critical header"},
		{name: "fail/crit-b64", token: f.sign(map[jose.HeaderKey]any{"crit": []string{"b64"}, "b64": true}), reason: "critical header"},
		{name: "fail/b64", token: f.sign(map[jose.HeaderKey]any{"b64": true}), reason: "b64"},
		{name: "fail/no-kid", token: f.sign(map[jose.HeaderKey]any{"kid": nil}), reason: "names no key"},
		{name: "fail/no-typ", token: f.sign(map[jose.HeaderKey]any{"typ": nil}), reason: "not an access token"},
		{name: "fail/typ-not-a-string", token: f.sign(map[jose.HeaderKey]any{"typ": 1}), reason: "not an access token"},
		{name: "fail/encryption-key", token: signWith(t, jose.ES256, second, map[jose.HeaderKey]any{"kid": "enc1", "typ": "at+jwt"}, f.claims()),
			reason: "not signed by a key of the issuer"},
		{name: "fail/symmetric-key-in-jwks", token: signWith(t, jose.ES256, second, map[jose.HeaderKey]any{"kid": "oct1", "typ": "at+jwt"}, f.claims()),
			reason: "not signed by a key of the issuer"},
	}
	v := f.verifier()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tc.token)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("got %v, want the token accepted", err)
				}
				return
			}
			if !errors.Is(err, resource.ErrInvalidToken) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("got %v, want ErrInvalidToken saying %q", err, tc.reason)
			}
		})
	}
}

// TestKeysCacheControl: the JWKS's max-age decides when keys are refreshed,
// within bounds.
func TestKeysCacheControl(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cacheControl string
		fresh        time.Duration // no refresh just before this, one just after
	}{
		{"public, max-age=120", 2 * time.Minute},
		{"max-age=1", time.Minute},          // too short: raised
		{"max-age=86400", 15 * time.Minute}, // too long: cut
		{"no-store", time.Minute},           // as short as allowed
		{"", 5 * time.Minute},               // none: the default
		{"max-age=oops", 5 * time.Minute},   // unreadable: the default
		{"Max-Age=600, public", 10 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.cacheControl, func(t *testing.T) {
			f := newFakeIssuer(t)
			f.cacheControl = tc.cacheControl
			v := f.verifier()
			tok := f.sign(nil)
			verify := func() {
				t.Helper()
				if _, err := v.Verify(context.Background(), tok); err != nil {
					t.Fatal(err)
				}
			}
			verify()
			f.advance(tc.fresh - time.Second)
			verify()
			if got := f.hits(); got != 1 {
				t.Fatalf("JWKS fetches within %s: got %d, want 1", tc.fresh, got)
			}
			f.advance(2 * time.Second)
			verify()
			eventually(t, "a refresh", func() bool { return f.hits() == 2 })
		})
	}
}
