package signing_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/signing"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
	"github.com/castellan-auth/castellan/internal/storage/storagetest"
)

// cluster is several keysets (nodes) on one database, each with a store of its
// own, sharing a fake clock and the master key.
type cluster struct {
	nodes  []*signing.Keyset
	stores []*sqlstore.Store
	clock  *clock.Fake
}

const nodeCount = 3

// eachBackend runs fn on SQLite and PostgreSQL (which skips without
// CASTELLAN_TEST_POSTGRES, or fails under CI=true).
func eachBackend(t *testing.T, fn func(t *testing.T, dsn func(t *testing.T) string)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "k.db") })
	})
	t.Run("postgres", func(t *testing.T) {
		storagetest.RequirePostgres(t)
		fn(t, func(t *testing.T) string { return storagetest.PostgresDSN(t) })
	})
}

func newCluster(t *testing.T, dsn string, algs ...string) *cluster {
	t.Helper()
	master, _ := seal.New(bytes.Repeat([]byte{1}, 32))
	c := &cluster{clock: clock.NewFake(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))}
	p := signing.Policy{Algorithms: algs, RotationPeriod: 90 * 24 * time.Hour, Propagation: 2 * time.Minute, MaxTokenLifetime: time.Hour}
	for range nodeCount {
		st, err := sqlstore.Open(t.Context(), dsn, sqlstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		c.stores = append(c.stores, st)
		c.nodes = append(c.nodes, signing.New(st, master, c.clock, p, slog.New(slog.DiscardHandler)))
	}
	return c
}

// all runs fn on every node at once and returns their errors.
func (c *cluster) all(fn func(ks *signing.Keyset) error) []error {
	errs := make([]error, len(c.nodes))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, ks := range c.nodes {
		wg.Go(func() {
			<-start
			errs[i] = fn(ks)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// states counts the stored keys of alg by state: next, current, previous.
func (c *cluster) states(t *testing.T, alg string) map[string]int {
	t.Helper()
	recs, err := c.stores[0].ListSigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	now := c.clock.Now()
	out := map[string]int{}
	for _, k := range recs {
		switch {
		case k.Algorithm != alg:
		case now.Before(k.ActivatesAt):
			out["next"]++
		case k.RetiresAt.IsZero() || now.Before(k.RetiresAt):
			out["current"]++
		default:
			out["previous"]++
		}
	}
	return out
}

func wantStates(t *testing.T, what string, got map[string]int, want map[string]int) {
	t.Helper()
	for _, s := range []string{"next", "current", "previous"} {
		if got[s] != want[s] {
			t.Errorf("%s: got %d %s keys, want %d (all: %v)", what, got[s], s, want[s], got)
		}
	}
}

// Nodes starting together on an empty database create one key per algorithm.
func TestEnsureAcrossNodes(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn func(t *testing.T) string) {
		c := newCluster(t, dsn(t), "ES256", "EdDSA")
		for i, err := range c.all(func(ks *signing.Keyset) error { return ks.Ensure(t.Context()) }) {
			if err != nil {
				t.Fatalf("node %d: Ensure: %v", i, err)
			}
		}
		for _, alg := range []string{"ES256", "EdDSA"} {
			wantStates(t, alg, c.states(t, alg), map[string]int{"current": 1})
		}
		// Every node signs with that key and verifies the others' tokens.
		for i, ks := range c.nodes {
			tok, err := ks.Sign("ES256", "JWT", []byte(`{}`))
			if err != nil {
				t.Fatalf("node %d: Sign: %v", i, err)
			}
			if _, _, err := c.nodes[(i+1)%nodeCount].Verify(tok, []string{"ES256"}); err != nil {
				t.Errorf("node %d's token on node %d: %v", i, (i+1)%nodeCount, err)
			}
		}
	})
}

// Nodes whose rotation period ends at the same moment schedule one next key
// between them, however often they run maintenance.
func TestMaintainAcrossNodes(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn func(t *testing.T) string) {
		c := newCluster(t, dsn(t), "ES256", "RS256")
		if err := c.nodes[0].Ensure(t.Context()); err != nil {
			t.Fatal(err)
		}
		c.clock.Advance(90 * 24 * time.Hour)
		for round := range 3 {
			for i, err := range c.all(func(ks *signing.Keyset) error { return ks.Maintain(t.Context()) }) {
				if err != nil {
					t.Fatalf("round %d: node %d: Maintain: %v", round, i, err)
				}
			}
		}
		for _, alg := range []string{"ES256", "RS256"} {
			wantStates(t, alg, c.states(t, alg), map[string]int{"next": 1, "current": 1})
		}
		// Nodes that lost the race learn the next key on their next pass.
		for i, err := range c.all(func(ks *signing.Keyset) error { return ks.Maintain(t.Context()) }) {
			if err != nil {
				t.Fatalf("node %d: Maintain: %v", i, err)
			}
		}
		want := string(c.nodes[0].JWKS())
		for i, ks := range c.nodes {
			if got := string(ks.JWKS()); got != want {
				t.Errorf("node %d JWKS: got %s, want %s", i, got, want)
			}
		}
	})
}

// Administrators rotating on several nodes at once schedule one key; the
// others are told a rotation is pending.
func TestRotateAcrossNodes(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn func(t *testing.T) string) {
		c := newCluster(t, dsn(t), "ES256")
		if err := c.nodes[0].Ensure(t.Context()); err != nil {
			t.Fatal(err)
		}
		var keys []storage.SigningKey
		var mu sync.Mutex
		errs := c.all(func(ks *signing.Keyset) error {
			k, err := ks.Rotate(t.Context(), "ES256")
			mu.Lock()
			keys = append(keys, k)
			mu.Unlock()
			return err
		})
		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, signing.ErrRotationPending):
				t.Errorf("node %d: Rotate: got %v, want nil or ErrRotationPending", i, err)
			}
		}
		if wins != 1 {
			t.Errorf("Rotate on %d nodes at once: got %d successes, want 1", nodeCount, wins)
		}
		wantStates(t, "ES256", c.states(t, "ES256"), map[string]int{"next": 1, "current": 1})
		for _, k := range keys {
			if k.KID != keys[0].KID {
				t.Errorf("Rotate returned keys %s and %s, want the one next key for every caller", keys[0].KID, k.KID)
			}
		}
	})
}

// Maintenance leaves the work to whoever holds the lock; an explicit rotation
// waits for it.
func TestMaintainLeavesWorkToLockHolder(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn func(t *testing.T) string) {
		c := newCluster(t, dsn(t), "ES256")
		ks, other := c.nodes[0], c.stores[1]
		if err := ks.Ensure(t.Context()); err != nil {
			t.Fatal(err)
		}
		c.clock.Advance(90 * 24 * time.Hour)
		unlock, ok, err := other.TryLock(t.Context(), "signing-keys")
		if err != nil || !ok {
			t.Fatalf("TryLock: got %v, %v; want the lock", ok, err)
		}
		if err := ks.Maintain(t.Context()); err != nil {
			t.Fatalf("Maintain while another node holds the lock: %v", err)
		}
		wantStates(t, "while locked", c.states(t, "ES256"), map[string]int{"current": 1})

		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		if _, err := ks.Rotate(ctx, "ES256"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Rotate while another node holds the lock: got %v, want it to wait until the deadline", err)
		}
		unlock()
		if err := ks.Maintain(t.Context()); err != nil {
			t.Fatal(err)
		}
		wantStates(t, "after unlock", c.states(t, "ES256"), map[string]int{"next": 1, "current": 1})
	})
}

// A second rotation while one is pending returns the pending key.
func TestRotateWhilePending(t *testing.T) {
	ks, f := setup(t, "ES256")
	next, err := ks.Rotate(t.Context(), "ES256")
	if err != nil {
		t.Fatal(err)
	}
	again, err := ks.Rotate(t.Context(), "ES256")
	if !errors.Is(err, signing.ErrRotationPending) || again.KID != next.KID {
		t.Errorf("Rotate again: got %s, %v; want %s, ErrRotationPending", again.KID, err, next.KID)
	}
	f.clock.Advance(f.policy.Propagation)
	third, err := ks.Rotate(t.Context(), "ES256")
	if err != nil || third.KID == next.KID {
		t.Errorf("Rotate once the next key signs: got %s, %v; want a new key", third.KID, err)
	}
}
