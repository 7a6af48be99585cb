package resource_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/castellan-auth/castellan/resource"
)

const (
	jwksPath      = "/jwks"
	discoveryPath = "/.well-known/openid-configuration"
)

// TestUnknownKidRefetchIsRateLimited: a token naming a key not in the cached
// JWKS makes the verifier fetch the JWKS once; more unknown keys right after
// (a flood of garbage) fetch nothing until the rate limit has passed.
func TestUnknownKidRefetchIsRateLimited(t *testing.T) {
	t.Parallel()
	env := newProvider(t)
	v, w := newVerifier(t, env, nil)
	ctx := context.Background()
	good := serviceToken(t, env, "")
	if _, err := v.Verify(ctx, good); err != nil {
		t.Fatal(err)
	}
	if got := w.count(jwksPath); got != 1 {
		t.Fatalf("JWKS fetches after the first token: got %d, want 1", got)
	}
	// Keys fetched a moment ago are not fetched again for any reason.
	env.Clock.Advance(10 * time.Second)

	claims := map[string]any{"iss": env.URL, "aud": env.URL, "sub": "x", "client_id": "x", "jti": "j",
		"iat": env.Clock.Now().Unix(), "exp": env.Clock.Now().Add(time.Hour).Unix()}
	garbage := func(kid string) string {
		return signWith(t, jose.ES256, newECKey(t), map[jose.HeaderKey]any{"kid": kid, "typ": "at+jwt"}, claims)
	}
	if _, err := v.Verify(ctx, garbage("unknown-1")); !errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("unknown kid: got %v, want ErrInvalidToken", err)
	}
	if got := w.count(jwksPath); got != 2 {
		t.Fatalf("JWKS fetches after an unknown kid: got %d, want 2", got)
	}
	for _, err := range verifyAll(v, garbage("unknown-2"), 50) {
		if !errors.Is(err, resource.ErrInvalidToken) {
			t.Fatalf("flood of unknown kids: got %v, want ErrInvalidToken", err)
		}
	}
	if got := w.count(jwksPath); got != 2 {
		t.Fatalf("JWKS fetches after a flood of unknown kids: got %d, want still 2", got)
	}
	if _, err := v.Verify(ctx, good); err != nil {
		t.Fatalf("known key during the flood: %v", err)
	}

	env.Clock.Advance(10 * time.Second)
	if _, err := v.Verify(ctx, garbage("unknown-3")); !errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("unknown kid: got %v, want ErrInvalidToken", err)
	}
	if got := w.count(jwksPath); got != 3 {
		t.Fatalf("JWKS fetches after the rate limit: got %d, want 3", got)
	}
	if got := w.count(discoveryPath); got != 1 {
		t.Fatalf("discovery fetches: got %d, want 1", got)
	}
}

// TestConcurrentFirstUse: many requests arriving together before any key is
// cached share one fetch.
func TestConcurrentFirstUse(t *testing.T) {
	t.Parallel()
	env := newProvider(t)
	v, w := newVerifier(t, env, nil)
	for _, err := range verifyAll(v, serviceToken(t, env, ""), 50) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if d, j := w.count(discoveryPath), w.count(jwksPath); d != 1 || j != 1 {
		t.Fatalf("fetches: got discovery %d, JWKS %d, want 1 and 1", d, j)
	}
}

// TestKeyRotation rotates the provider's key: the new key is published first,
// signs after the propagation delay, and the verifier picks it up on the first
// token that names it, while tokens of the previous key stay valid.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	env := newProvider(t)
	v, w := newVerifier(t, env, nil)
	ctx := context.Background()
	old := serviceToken(t, env, "")
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatal(err)
	}

	next, err := env.Server.Keys.Rotate(ctx, "ES256")
	if err != nil {
		t.Fatal(err)
	}
	if !next.ActivatesAt.After(env.Clock.Now()) {
		t.Fatalf("the new key signs at once (%s), want after a propagation delay", next.ActivatesAt)
	}
	if tok := serviceToken(t, env, ""); kidOf(tok) != kidOf(old) {
		t.Fatalf("a token signed before the new key activates names %s, want the old key %s", kidOf(tok), kidOf(old))
	}
	env.Clock.Set(next.ActivatesAt.Add(time.Second))
	fresh := serviceToken(t, env, "")
	if kidOf(fresh) != next.KID {
		t.Fatalf("token after activation names %s, want the new key %s", kidOf(fresh), next.KID)
	}
	if _, err := v.Verify(ctx, fresh); err != nil {
		t.Fatalf("token of the new key: %v", err)
	}
	if got := w.count(jwksPath); got != 2 {
		t.Fatalf("JWKS fetches: got %d, want 2 (the first, and one for the new kid)", got)
	}
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatalf("token of the previous key: %v", err)
	}
	if got := w.count(jwksPath); got != 2 {
		t.Fatalf("JWKS fetches after the previous key's token: got %d, want still 2", got)
	}
}

// TestProviderUnreachable: cached keys keep serving while the provider is
// down (for a bounded time), refreshes are retried in the background, and
// without cached keys tokens cannot be checked (ErrUnavailable, not
// ErrInvalidToken).
func TestProviderUnreachable(t *testing.T) {
	t.Parallel()
	env := newProvider(t)
	ctx := context.Background()
	tok := serviceToken(t, env, "")
	// A token that outlives the stale window.
	long := resign(t, env, tok, "ES256", "at+jwt", func(c map[string]any) {
		c["exp"] = env.Clock.Now().Add(24 * time.Hour).Unix()
	})

	cold, cw := newVerifier(t, env, nil)
	cw.down.Store(true)
	if _, err := cold.Verify(ctx, tok); !errors.Is(err, resource.ErrUnavailable) || errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("no keys, provider down: got %v, want ErrUnavailable only", err)
	}

	v, w := newVerifier(t, env, nil)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	w.down.Store(true)
	env.Clock.Advance(6 * time.Minute) // the JWKS said max-age=300
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("stale keys, provider down: %v", err)
	}
	eventually(t, "a background refresh", func() bool { return w.count(jwksPath) == 2 })
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("stale keys after a failed refresh: %v", err)
	}

	env.Clock.Advance(7 * time.Hour)
	if _, err := v.Verify(ctx, long); !errors.Is(err, resource.ErrUnavailable) {
		t.Fatalf("keys stale for hours, provider down: got %v, want ErrUnavailable", err)
	}

	// The provider is back: keys that stale are refreshed before use.
	w.down.Store(false)
	env.Clock.Advance(10 * time.Second)
	before := w.count(jwksPath)
	if _, err := v.Verify(ctx, long); err != nil {
		t.Fatalf("provider back: %v", err)
	}
	if got := w.count(jwksPath); got != before+1 {
		t.Fatalf("JWKS fetches: got %d, want %d", got, before+1)
	}
}

// TestDiscoveryIssuerMismatch: a discovery document for another issuer is
// not used (OpenID Connect Discovery §4.3).
func TestDiscoveryIssuerMismatch(t *testing.T) {
	t.Parallel()
	env := newProvider(t)
	v, w := newVerifier(t, env, func(c *resource.Config) { c.Issuer = env.URL + "/" })
	_, err := v.Verify(context.Background(), serviceToken(t, env, ""))
	if !errors.Is(err, resource.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	if got := w.count(jwksPath); got != 0 {
		t.Fatalf("JWKS fetched %d times from a mismatched discovery document, want 0", got)
	}
}
