package resource_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/jwstest"
	"github.com/castellan-auth/castellan/internal/server/servertest"
	"github.com/castellan-auth/castellan/resource"
)

// apiAudience is the audience of the test API: every servertest client of
// newProvider names it.
const apiAudience = "https://api.example"

// newProvider starts a real Castellan with the servertest clients (see
// withAPIAudience).
func newProvider(t *testing.T) *servertest.Env {
	t.Helper()
	return servertest.New(t, servertest.Options{Config: withAPIAudience(servertest.WithClients(servertest.Config()))})
}

// withAPIAudience registers every client of cfg with apiAudience, and holds
// svc to its client_secret_post, so that a resource server using the wrong
// method is refused (TestRevocationCheckFailsClosed).
func withAPIAudience(cfg *config.Config) *config.Config {
	for i := range cfg.Clients {
		cfg.Clients[i].Audience = []string{apiAudience}
		if cfg.Clients[i].ClientID == "svc" {
			cfg.Clients[i].StrictTokenEndpointAuthMethod = true
		}
	}
	return cfg
}

// wire counts the requests a verifier makes to the provider, by path, and can
// cut the provider off.
type wire struct {
	base http.RoundTripper
	down atomic.Bool
	mu   sync.Mutex
	hits map[string]int
}

var errDown = errors.New("provider unreachable (test)")

func (w *wire) RoundTrip(r *http.Request) (*http.Response, error) {
	w.mu.Lock()
	w.hits[r.URL.Path]++
	w.mu.Unlock()
	if w.down.Load() {
		return nil, errDown
	}
	return w.base.RoundTrip(r)
}

// count returns how many requests went to path.
func (w *wire) count(path string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.hits[path]
}

// newVerifier returns a verifier of env's tokens on env's clock, and its wire.
func newVerifier(t *testing.T, env *servertest.Env, edit func(*resource.Config)) (*resource.Verifier, *wire) {
	t.Helper()
	w := &wire{base: env.HTTP.Client().Transport, hits: map[string]int{}}
	cfg := resource.Config{
		Issuer: env.URL, Audience: apiAudience,
		HTTPClient: &http.Client{Transport: w},
		Now:        env.Clock.Now,
	}
	if edit != nil {
		edit(&cfg)
	}
	v, err := resource.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v, w
}

// serviceToken gets an access token for the svc client (client credentials).
func serviceToken(t *testing.T, env *servertest.Env, scope string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		form.Set("scope", scope)
	}
	r := env.Post(t, "/token", form, servertest.SvcClient)
	if r.Status != http.StatusOK || r.Str("access_token") == "" {
		t.Fatalf("client credentials: %d %s", r.Status, r.Body)
	}
	return r.Str("access_token")
}

// resign signs the claims of token, changed by edit, with the provider's
// current key of alg and the given typ: a token Castellan's keys really signed,
// with claims it would never write.
func resign(t *testing.T, env *servertest.Env, token, alg, typ string, edit func(map[string]any)) string {
	t.Helper()
	claims := servertest.Claims(token)
	if claims == nil {
		t.Fatalf("not a JWT: %q", token)
	}
	if edit != nil {
		edit(claims)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := env.Server.Keys.Sign(alg, typ, payload)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// signWith signs claims with key (any algorithm, any headers).
func signWith(t *testing.T, alg jose.SignatureAlgorithm, key any, headers map[jose.HeaderKey]any, claims map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{}}
	for k, v := range headers {
		opts.ExtraHeaders[k] = v
	}
	return jwstest.SignClaims(t, alg, key, opts, claims)
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// publishedKeys returns the provider's JWKS.
func publishedKeys(t *testing.T, env *servertest.Env) jose.JSONWebKeySet {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(env.Server.Keys.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	return set
}

// kidOf returns the "kid" header of a JWT.
func kidOf(token string) string {
	kid, _ := servertest.Header(token)["kid"].(string)
	return kid
}

// verifyAll verifies token from n goroutines at once and returns the errors.
func verifyAll(v *resource.Verifier, token string, n int) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = v.Verify(context.Background(), token)
		}()
	}
	wg.Wait()
	return errs
}

// eventually polls cond for a background fetch to finish (real time, bounded).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
