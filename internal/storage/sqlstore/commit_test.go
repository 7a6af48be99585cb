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

// countSyncs replaces the committer's WAL sync with a counter that fails
// with fail (nil: succeeds).
func countSyncs(s *Store, fail error) *int {
	n := new(int)
	s.commit.sync = func() error { *n++; return fail }
	return n
}

// TestDurableWrites: the writes that end access (sign-out, revocation, a
// disabled or deleted user, an administrator's change, a remembered
// revocation) sync the WAL before they return; the hot path (new sessions,
// activity, refresh rotation, codes) does not pay for it.
func TestDurableWrites(t *testing.T) {
	ctx := t.Context()
	now := time.Unix(1_800_000_000, 0).UTC()
	for _, tc := range []struct {
		name    string
		durable bool
		write   func(s *Store, rt storage.RefreshToken) error
	}{
		{"create-session", false, func(s *Store, _ storage.RefreshToken) error {
			return s.CreateSession(ctx, storage.Session{IDHash: []byte("s2"), SID: "sid-2", UserID: "u", AuthTime: now,
				CreatedAt: now, LastActiveAt: now, ExpiresAt: now.Add(time.Hour)})
		}},
		{"touch-session", false, func(s *Store, _ storage.RefreshToken) error {
			return s.TouchSession(ctx, []byte("s1"), now.Add(time.Minute))
		}},
		{"refresh-rotation", false, func(s *Store, rt storage.RefreshToken) error {
			_, _, _, err := s.UseRefreshToken(ctx, rt.Hash, func(r storage.RefreshToken, g storage.Grant, _ *storage.Session) storage.RefreshDecision {
				return storage.RefreshDecision{Action: storage.RefreshRotate, Next: &storage.RefreshToken{Hash: []byte("rt-2"), GrantID: g.ID,
					Generation: r.Generation + 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}}
			})
			return err
		}},
		{"refresh-reuse-revokes", true, func(s *Store, rt storage.RefreshToken) error {
			_, _, _, err := s.UseRefreshToken(ctx, rt.Hash, func(storage.RefreshToken, storage.Grant, *storage.Session) storage.RefreshDecision {
				return storage.RefreshDecision{Action: storage.RefreshRevoke, RevokeAt: now}
			})
			if errors.Is(err, storage.ErrRevoked) {
				err = nil
			}
			return err
		}},
		{"sign-out", true, func(s *Store, _ storage.RefreshToken) error {
			_, err := s.DeleteSession(ctx, []byte("s1"), now)
			return err
		}},
		{"revoke-grant", true, func(s *Store, rt storage.RefreshToken) error { return s.RevokeGrant(ctx, rt.GrantID, now) }},
		{"revoke-access-token", true, func(s *Store, _ storage.RefreshToken) error {
			return s.RememberDurably(ctx, "revoked-at:jti", now.Add(time.Hour), now)
		}},
		{"remember-one-time-id", false, func(s *Store, _ storage.RefreshToken) error {
			return s.Remember(ctx, "dpop:jti", now.Add(time.Hour), now)
		}},
		{"disable-user", true, func(s *Store, _ storage.RefreshToken) error { _, err := s.DisableUser(ctx, "u", now); return err }},
		{"delete-user", true, func(s *Store, _ storage.RefreshToken) error { _, err := s.DeleteUser(ctx, "u", now); return err }},
		{"change-password", true, func(s *Store, _ storage.RefreshToken) error {
			_, _, err := s.ModifyUser(ctx, "u", now, func(u storage.User) (storage.User, error) { u.PasswordHash = "new"; return u, nil })
			return err
		}},
		{"delete-client", true, func(s *Store, _ storage.RefreshToken) error { return s.DeleteClient(ctx, "c") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, "sqlite://"+filepath.Join(t.TempDir(), "castellan.db"), Options{})
			rt := refreshFixture(t, s, now)
			if err := s.CreateSession(ctx, storage.Session{IDHash: []byte("s1"), SID: "sid-1", UserID: "u", AuthTime: now,
				CreatedAt: now, LastActiveAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			syncs := countSyncs(s, nil)
			if err := tc.write(s, rt); err != nil {
				t.Fatal(err)
			}
			if got := *syncs > 0; got != tc.durable {
				t.Errorf("synced %d times, want durable %t", *syncs, tc.durable)
			}
		})
	}
}

// TestCommitterSyncsOncePerBatch: one sync serves every durable request of a
// batch; a failed sync fails only the durable requests whose writes stand
// (committed, maybe not on disk), and a rolled-back request needs none.
func TestCommitterSyncsOncePerBatch(t *testing.T) {
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
	batch := func(reqs ...*writeRequest) []error {
		s.commit.commit(reqs)
		errs := make([]error, len(reqs))
		for i, r := range reqs {
			errs[i] = <-r.done
		}
		return errs
	}
	req := func(fn func(*tx) error, durable bool) *writeRequest {
		return &writeRequest{ctx: ctx, fn: fn, durable: durable, done: make(chan error, 1)}
	}

	syncs := countSyncs(s, nil)
	errs := batch(req(remember("a"), true), req(remember("b"), false), req(func(t *tx) error { t.syncOnCommit(); return remember("c")(t) }, false))
	if *syncs != 1 || errors.Join(errs...) != nil {
		t.Errorf("batch with two durable requests: %d syncs, errors %v; want 1 sync, none", *syncs, errs)
	}
	syncs = countSyncs(s, nil)
	errs = batch(req(func(t *tx) error { remember("d")(t); return refused }, true), req(remember("e"), false))
	if *syncs != 0 || !errors.Is(errs[0], refused) || errs[1] != nil {
		t.Errorf("batch whose durable request rolled back: %d syncs, errors %v; want none, [refused nil]", *syncs, errs)
	}

	failed := errors.New("fsync: input/output error")
	countSyncs(s, failed)
	errs = batch(req(remember("f"), true), req(remember("g"), false))
	if !errors.Is(errs[0], failed) || errs[1] != nil {
		t.Errorf("failed sync: got errors %v, want [the sync's error, nil]", errs)
	}

	// The real sync, on the real WAL file and its directory.
	s.commit.sync = s.commit.syncWAL
	if _, err := s.execDurable(ctx, `INSERT INTO replay_cache (key, expires_at) VALUES ('real-sync', 1)`); err != nil {
		t.Errorf("durable write with the real sync: %v", err)
	}
	if !s.commit.dirSynced {
		t.Error("the WAL's directory was not synced")
	}
}
