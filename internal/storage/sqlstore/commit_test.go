package sqlstore

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

// TestCommitterBatch runs one batch by hand, so that its makeup is certain:
// each transaction's writes stand or go on its own result, and each caller
// gets its own answer.
func TestCommitterBatch(t *testing.T) {
	s := openStore(t, "sqlite://"+filepath.Join(t.TempDir(), "castellan.db"), Options{})
	ctx := t.Context()
	now := time.Unix(1_800_000_000, 0)
	remember := func(key string) func(*tx) error {
		return func(t *tx) error {
			_, err := t.exec(`INSERT INTO replay_cache (key, expires_at) VALUES (?, ?)`, key, ts(now.Add(time.Hour)))
			return err
		}
	}
	refused := errors.New("refused after writing")
	decided := errors.New("decided and kept")
	cancelled, cancel := context.WithCancel(ctx)
	cancel()

	tests := []struct {
		key     string
		ctx     context.Context
		fn      func(*tx) error
		wantErr error
		stored  bool
	}{
		{"a", ctx, remember("a"), nil, true},
		// Writes, then fails: rolled back to its savepoint, the others stay.
		{"b", ctx, func(t *tx) error { remember("b")(t); return refused }, refused, false},
		// A decision that must be stored although the caller gets an error.
		{"c", ctx, func(t *tx) error { remember("c")(t); return &keepErr{decided} }, decided, true},
		// A statement that fails (the key "a" is taken) fails only its own transaction.
		{"d", ctx, func(t *tx) error { remember("d")(t); return remember("a")(t) }, storage.ErrConflict, false},
		// A bug that panics fails its own transaction only.
		{"p", ctx, func(t *tx) error { remember("p")(t); panic("bug") }, errTxPanicked, false},
		// A caller that gave up before its turn is not run.
		{"e", cancelled, remember("e"), context.Canceled, false},
		// Sees what the ones before it in the batch wrote.
		{"f", ctx, func(t *tx) error {
			var n int
			if err := t.queryRow(`SELECT COUNT(*) FROM replay_cache WHERE key IN ('a', 'c')`).Scan(&n); err != nil || n != 2 {
				return errors.Join(err, errors.New("earlier writes of the batch not visible"))
			}
			return remember("f")(t)
		}, nil, true},
	}
	batch := make([]*writeRequest, len(tests))
	for i, tc := range tests {
		batch[i] = &writeRequest{ctx: tc.ctx, fn: tc.fn, done: make(chan error, 1)}
	}
	s.commit.commit(batch)
	for i, tc := range tests {
		if err := <-batch[i].done; !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: got error %v, want %v", tc.key, err, tc.wantErr)
		}
		got, err := s.Remembered(ctx, tc.key, now)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.stored {
			t.Errorf("%s: stored %v, want %v", tc.key, got, tc.stored)
		}
	}
}

// TestCommitterConcurrent has many writers at once, so that batches form, and
// checks that every write that reported success is there and no other.
func TestCommitterConcurrent(t *testing.T) {
	s := openStore(t, "sqlite://"+filepath.Join(t.TempDir(), "castellan.db"), Options{})
	ctx := t.Context()
	now := time.Unix(1_800_000_000, 0)
	const writers, each = 16, 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := map[string]bool{}
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				// Every key twice: exactly one of the two inserts can succeed.
				key := string(rune('a'+w%8)) + "-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
				err := s.Remember(ctx, key, now.Add(time.Hour), now)
				mu.Lock()
				if err == nil {
					if ok[key] {
						t.Errorf("%s: remembered twice", key)
					}
					ok[key] = true
				} else if !errors.Is(err, storage.ErrConflict) {
					t.Errorf("%s: %v", key, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(ok) != 8*each {
		t.Errorf("%d keys remembered, want %d", len(ok), 8*each)
	}
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM replay_cache`).Scan(&n); err != nil || n != 8*each {
		t.Errorf("replay_cache holds %d rows (%v), want %d", n, err, 8*each)
	}
}

// TestCommitterCheckpoint: a commit marks the WAL for the background
// checkpoint, which runs once on a reader connection and clears the mark.
func TestCommitterCheckpoint(t *testing.T) {
	s := openStore(t, "sqlite://"+filepath.Join(t.TempDir(), "castellan.db"), Options{})
	ctx := t.Context()
	now := time.Unix(1_800_000_000, 0)
	s.commit.dirty.Store(false)
	if err := s.Remember(ctx, "k", now.Add(time.Hour), now); err != nil {
		t.Fatal(err)
	}
	// The ticker may have taken the mark already; either way one round runs clean.
	if err := s.commit.checkpoint(); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	if s.commit.dirty.Load() {
		t.Error("after a checkpoint the WAL is still marked")
	}
	// The WAL is in use and the database readable after it.
	var mode string
	if err := s.r.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode: %q (%v), want wal", mode, err)
	}
	if ok, err := s.Remembered(ctx, "k", now); err != nil || !ok {
		t.Errorf("Remembered after checkpoint: %v, %v", ok, err)
	}
}

// TestCommitterClosed: a write after Close fails instead of waiting forever.
func TestCommitterClosed(t *testing.T) {
	s, err := Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "castellan.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Remember(t.Context(), "k", time.Now().Add(time.Hour), time.Now()); err == nil {
		t.Fatal("write after Close succeeded")
	}
}
