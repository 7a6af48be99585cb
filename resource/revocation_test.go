package resource_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/server/servertest"
	"github.com/castellan-auth/castellan/resource"
)

const introspectPath = "/introspect"

// TestRevocationCheck: with the online check, signing out at the provider is
// visible at the API within the cache period, and the check caches both
// answers.
func TestRevocationCheck(t *testing.T) {
	t.Parallel()
	env := newProvider(t)
	ctx := context.Background()
	v, w := newVerifier(t, env, func(c *resource.Config) {
		c.RevocationCheck = &resource.RevocationCheck{ClientID: "svc", ClientSecret: servertest.SvcSecret,
			AuthMethod: resource.AuthClientSecretPost}
	})
	local, _ := newVerifier(t, env, nil)
	agent := env.Agent("alice")
	tok := env.CodeFlow(t, agent, servertest.Authz{}).AccessToken

	for i := range 3 {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("verify %d: %v", i, err)
		}
	}
	if got := w.count(introspectPath); got != 1 {
		t.Fatalf("introspection requests for one token: got %d, want 1 (cached)", got)
	}

	env.SignOut(t, agent)
	if _, err := v.Verify(ctx, tok); err != nil {
		t.Fatalf("within the cache period: %v", err)
	}
	env.Clock.Advance(resource.DefaultRevocationCacheTTL)
	_, err := v.Verify(ctx, tok)
	if !errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("after sign-out: got %v, want ErrInvalidToken", err)
	}
	if _, err := v.Verify(ctx, tok); !errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("after sign-out, again: got %v, want ErrInvalidToken", err)
	}
	if got := w.count(introspectPath); got != 2 {
		t.Fatalf("introspection requests: got %d, want 2 (inactive is cached)", got)
	}
	// The trade-off: without the check, the token is still good until exp.
	if _, err := local.Verify(ctx, tok); err != nil {
		t.Fatalf("local check of a signed-out token: %v, want accepted", err)
	}
}

// TestRevocationCheckNoCache: a negative CacheTTL asks every time, so
// sign-out is visible at once; client_secret_basic works too.
func TestRevocationCheckNoCache(t *testing.T) {
	t.Parallel()
	env := newProvider(t)
	ctx := context.Background()
	v, w := newVerifier(t, env, func(c *resource.Config) {
		c.RevocationCheck = &resource.RevocationCheck{ClientID: "web", ClientSecret: servertest.WebSecret, CacheTTL: -1}
	})
	agent := env.Agent("alice")
	tok := env.CodeFlow(t, agent, servertest.Authz{}).AccessToken
	for i := range 2 {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("verify %d: %v", i, err)
		}
	}
	if got := w.count(introspectPath); got != 2 {
		t.Fatalf("introspection requests: got %d, want 2", got)
	}
	env.SignOut(t, agent)
	if _, err := v.Verify(ctx, tok); !errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("right after sign-out: got %v, want ErrInvalidToken", err)
	}
}

// TestRevocationCheckFailsClosed: when the check cannot be made, the token is
// not accepted, and the error says the provider, not the token, is at fault.
func TestRevocationCheckFailsClosed(t *testing.T) {
	t.Parallel()
	env := newProvider(t)
	tok := serviceToken(t, env, "")
	tests := []struct {
		name  string
		check resource.RevocationCheck
	}{
		{name: "fail/wrong-secret", check: resource.RevocationCheck{ClientID: "svc", ClientSecret: "wrong-0123456789abcdef0123456789", AuthMethod: resource.AuthClientSecretPost}},
		// svc is strict: Basic is not its method (one secret two ways is for
		// clients that do not say so).
		{name: "fail/wrong-method", check: resource.RevocationCheck{ClientID: "svc", ClientSecret: servertest.SvcSecret}},
		{name: "fail/public-client", check: resource.RevocationCheck{ClientID: "spa", ClientSecret: "x", AuthMethod: resource.AuthClientSecretPost}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, _ := newVerifier(t, env, func(c *resource.Config) { c.RevocationCheck = &tc.check })
			_, err := v.Verify(context.Background(), tok)
			if !errors.Is(err, resource.ErrUnavailable) || errors.Is(err, resource.ErrInvalidToken) {
				t.Fatalf("got %v, want ErrUnavailable only", err)
			}
		})
	}

	// The provider goes away after the keys were cached.
	v, w := newVerifier(t, env, func(c *resource.Config) {
		c.RevocationCheck = &resource.RevocationCheck{ClientID: "svc", ClientSecret: servertest.SvcSecret,
			AuthMethod: resource.AuthClientSecretPost}
	})
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	w.down.Store(true)
	env.Clock.Advance(time.Minute)
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, resource.ErrUnavailable) {
		t.Fatalf("introspection unreachable: got %v, want ErrUnavailable", err)
	}
}
