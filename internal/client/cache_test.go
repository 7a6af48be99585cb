package client_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/client"
	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
)

func openCacheStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "c.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func cacheClient(id string, scopes ...string) storage.Client {
	now := time.Now().UTC()
	return storage.Client{ID: id, Name: id, TokenEndpointAuthMethod: "none", GrantTypes: []string{"authorization_code"},
		RedirectURIs: []string{"https://" + id + ".example/cb"}, Scopes: scopes, CreatedAt: now, UpdatedAt: now}
}

// TestCache: a client read once is served from memory until the TTL passes;
// a change made behind the cache's back (another node) shows after the TTL, a
// change through the cache at once; unknown clients are never remembered.
func TestCache(t *testing.T) {
	ctx := context.Background()
	store := openCacheStore(t)
	clk := clock.NewFake(time.Now())
	c := client.NewCache(store, clk, 5*time.Second)

	if err := store.UpsertClient(ctx, cacheClient("spa", "openid")); err != nil {
		t.Fatal(err)
	}
	scopes := func() []string {
		t.Helper()
		got, err := c.GetClient(ctx, "spa")
		if err != nil {
			t.Fatal(err)
		}
		return got.Scopes
	}
	if got := scopes(); len(got) != 1 {
		t.Fatalf("first read: got %v", got)
	}

	// Another node changes the client: this node keeps its copy within the TTL…
	if err := store.UpsertClient(ctx, cacheClient("spa", "openid", "profile")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(4 * time.Second)
	if got := scopes(); len(got) != 1 {
		t.Errorf("within the TTL: got %v, want the cached [openid]", got)
	}
	// …and reads the change once it passed.
	clk.Advance(2 * time.Second)
	if got := scopes(); len(got) != 2 {
		t.Errorf("after the TTL: got %v, want [openid profile]", got)
	}

	// A change through the cache is seen at once.
	if err := c.UpsertClient(ctx, cacheClient("spa", "openid", "profile", "email")); err != nil {
		t.Fatal(err)
	}
	if got := scopes(); len(got) != 3 {
		t.Errorf("after UpsertClient through the cache: got %v, want 3 scopes", got)
	}
	if err := c.DeleteClient(ctx, "spa"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetClient(ctx, "spa"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("after DeleteClient through the cache: got %v, want ErrNotFound", err)
	}

	// An unknown client is looked up every time: creating it is seen at once.
	if _, err := c.GetClient(ctx, "late"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown client: got %v", err)
	}
	if err := store.UpsertClient(ctx, cacheClient("late", "openid")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetClient(ctx, "late"); err != nil {
		t.Errorf("client created after a miss: got %v", err)
	}

	// Purge forgets everything.
	if err := store.UpsertClient(ctx, cacheClient("late", "openid", "email")); err != nil {
		t.Fatal(err)
	}
	c.Purge()
	if got, _ := c.GetClient(ctx, "late"); len(got.Scopes) != 2 {
		t.Errorf("after Purge: got %v, want [openid email]", got.Scopes)
	}
}

// TestCacheCopies: what GetClient returns is the caller's own; changing it
// changes neither the cache nor what the next caller gets.
func TestCacheCopies(t *testing.T) {
	ctx := context.Background()
	store := openCacheStore(t)
	c := client.NewCache(store, clock.System{}, time.Minute)
	if err := store.UpsertClient(ctx, cacheClient("spa", "openid", "profile")); err != nil {
		t.Fatal(err)
	}
	first, err := c.GetClient(ctx, "spa")
	if err != nil {
		t.Fatal(err)
	}
	first.Scopes[0] = "admin"
	first.RedirectURIs[0] = "https://evil.example/cb"
	second, err := c.GetClient(ctx, "spa")
	if err != nil {
		t.Fatal(err)
	}
	if second.Scopes[0] != "openid" || second.RedirectURIs[0] != "https://spa.example/cb" {
		t.Errorf("a caller's change leaked into the cache: %v %v", second.Scopes, second.RedirectURIs)
	}
}
