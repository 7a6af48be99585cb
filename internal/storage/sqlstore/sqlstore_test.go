package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/storage/storagetest"
)

// backends names a DSN maker per flavor; PostgreSQL skips (or fails under CI)
// unless CASTELLAN_TEST_POSTGRES is set.
var backends = []struct {
	name string
	dsn  func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "castellan.db") }},
	{"postgres", func(t *testing.T) string { return storagetest.PostgresDSN(t) }},
}

// openStore opens a store on dsn and closes it when the test ends.
func openStore(t *testing.T, dsn string, opts Options) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dsn, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			if b.name == "postgres" {
				storagetest.RequirePostgres(t) // skip once, not in every subtest
			}
			storagetest.Run(t, func(t *testing.T) func() storage.Storage {
				dsn := b.dsn(t)
				return func() storage.Storage { return openStore(t, dsn, Options{}) }
			})
		})
	}
}

func TestSQLitePath(t *testing.T) {
	for _, tc := range []struct{ dsn, want string }{
		{"sqlite:///var/lib/castellan/castellan.db", "/var/lib/castellan/castellan.db"},
		{"sqlite://data/castellan.db", "data/castellan.db"},
		{"sqlite:castellan.db", "castellan.db"},
		{"sqlite:/abs.db", "/abs.db"},
		{"sqlite:./dir/../castellan.db", "castellan.db"},
		{"sqlite:////double.db", "/double.db"},
	} {
		if got := sqlitePath(tc.dsn); got != tc.want {
			t.Errorf("sqlitePath(%q): got %q, want %q", tc.dsn, got, tc.want)
		}
	}
}

func TestOpenRejectsUnknownScheme(t *testing.T) {
	_, err := Open(t.Context(), "mysql://root:hunter2@localhost/db", Options{})
	if err == nil {
		t.Fatal("Open(mysql://…): got nil error, want one")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Open error leaks the password: %v", err)
	}
}

// The SQLite file must be in WAL mode with foreign keys enforced on every
// connection, the writer's and each reader's.
func TestSQLitePragmas(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "castellan.db")
	s := openStore(t, "sqlite://"+path, Options{MaxOpenConns: 3})
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file: %v", err)
	}
	var conns []*sql.Conn
	for _, db := range []*sql.DB{s.w, s.r, s.r, s.r} { // hold three readers at once
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatalf("Conn: %v", err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	for i, c := range conns {
		for _, p := range []struct{ pragma, want string }{{"journal_mode", "wal"}, {"foreign_keys", "1"}} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+p.pragma).Scan(&got); err != nil {
				t.Fatalf("connection %d: PRAGMA %s: %v", i, p.pragma, err)
			}
			if got != p.want {
				t.Errorf("connection %d: PRAGMA %s: got %q, want %q", i, p.pragma, got, p.want)
			}
		}
	}
}

// A path with characters that mean something in a URI (?, #, %) names the
// file it says, not a truncated one.
func TestSQLiteSpecialPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odd ?#%41 dir", "castellan.db")
	s := openStore(t, "sqlite://"+path, Options{})
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file at %q: %v", path, err)
	}
}

func TestOpenAppliesMigrations(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			dsn := b.dsn(t)
			s := openStore(t, dsn, Options{SkipMigrations: true})
			wantApplied(t, s, false)
			s.Close()

			s = openStore(t, dsn, Options{})
			wantApplied(t, s, true)
			if _, err := s.ListUsers(ctx); err != nil {
				t.Errorf("ListUsers on the migrated schema: %v", err)
			}
			// Opening an up-to-date database again changes nothing.
			wantApplied(t, openStore(t, dsn, Options{}), true)
		})
	}
}

func wantApplied(t *testing.T, s *Store, want bool) {
	t.Helper()
	st, err := s.Migrations(t.Context())
	if err != nil {
		t.Fatalf("Migrations: %v", err)
	}
	if len(st) == 0 {
		t.Fatal("Migrations: got none, want the embedded ones")
	}
	for _, m := range st {
		if m.Applied != want {
			t.Errorf("migration %d (%s) applied: got %v, want %v", m.Version, m.Name, m.Applied, want)
		}
	}
}

// A database migrated by a newer Castellan is refused, with or without
// migrating: this binary does not know what the newer schema means.
func TestOpenRefusesNewerSchema(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := t.Context()
			dsn := b.dsn(t)
			s := openStore(t, dsn, Options{})
			st, err := s.Migrations(ctx)
			if err != nil {
				t.Fatalf("Migrations: %v", err)
			}
			newer := st[len(st)-1].Version + 1
			if _, err := s.exec(ctx, `INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, ?)`, newer, true); err != nil {
				t.Fatalf("record a newer version: %v", err)
			}
			s.Close()

			for _, opts := range []Options{{}, {SkipMigrations: true}} {
				s, err := Open(ctx, dsn, opts)
				if err == nil {
					s.Close()
					t.Fatalf("Open(%+v) of a newer schema: got nil error, want one", opts)
				}
				if !strings.Contains(err.Error(), "newer") {
					t.Errorf("Open(%+v) of a newer schema: got error %q, want it to mention \"newer\"", opts, err)
				}
			}
		})
	}
}

// A RefreshFunc that refuses without an error, or answers an action the store
// does not know, must not read as success: the caller would issue tokens.
func TestRefreshRefusalFailsClosed(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { testRefreshRefusalFailsClosed(t, openStore(t, b.dsn(t), Options{})) })
	}
}

// refreshFixture stores a user, a public client and a grant with one refresh token.
func refreshFixture(t *testing.T, s *Store, now time.Time) storage.RefreshToken {
	t.Helper()
	ctx := t.Context()
	if err := s.CreateUser(ctx, storage.User{ID: "u", Username: "u", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertClient(ctx, storage.Client{ID: "c", TokenEndpointAuthMethod: "none", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	rt := storage.RefreshToken{Hash: []byte("rt"), GrantID: "g", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateGrant(ctx, storage.Grant{ID: "g", ClientID: "c", UserID: "u", CreatedAt: now}, &rt); err != nil {
		t.Fatal(err)
	}
	return rt
}

func testRefreshRefusalFailsClosed(t *testing.T, s *Store) {
	ctx := t.Context()
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	rt := refreshFixture(t, s, now)
	for _, d := range []storage.RefreshDecision{
		{Action: storage.RefreshReject},
		{Action: storage.RefreshAction(99)},
		{Action: storage.RefreshRevoke, RevokeAt: now},
	} {
		_, _, _, err := s.UseRefreshToken(ctx, rt.Hash, func(storage.RefreshToken, storage.Grant, *storage.Session) storage.RefreshDecision { return d })
		if err == nil {
			t.Errorf("UseRefreshToken(action %d, no Err): got nil error, want one", d.Action)
		}
	}
	if _, g, _ := s.GetRefreshToken(ctx, rt.Hash); g.RevokedAt.IsZero() {
		t.Errorf("RefreshRevoke without Err: grant not revoked")
	}
}

// On PostgreSQL a refresh is decided on a read and applied only if nothing
// changed since (refresh_pg.go). Here the grant is revoked between the read
// and the write, as a concurrent sign-out would: the rotation must not be
// applied, and the decision must be taken again on the revoked grant.
func TestRefreshRaceDecidesAgain(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, storagetest.PostgresDSN(t), Options{})
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	rt := refreshFixture(t, s, now)
	next := storage.RefreshToken{Hash: []byte("rt-child"), GrantID: "g", Generation: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	errRevoked := errors.New("grant revoked")
	var seen []storage.Grant
	_, _, _, err := s.UseRefreshToken(ctx, rt.Hash, func(_ storage.RefreshToken, g storage.Grant, _ *storage.Session) storage.RefreshDecision {
		seen = append(seen, g)
		if len(seen) == 1 {
			// Breaks RefreshFunc's no-I/O rule on purpose: the race, made certain.
			if err := s.RevokeGrant(ctx, "g", now.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		if !g.RevokedAt.IsZero() {
			return storage.RefreshDecision{Action: storage.RefreshReject, Err: errRevoked}
		}
		return storage.RefreshDecision{Action: storage.RefreshRotate, Next: &next}
	})
	if !errors.Is(err, errRevoked) {
		t.Fatalf("UseRefreshToken: got error %v, want the second decision's %v", err, errRevoked)
	}
	if len(seen) != 2 || !seen[0].RevokedAt.IsZero() || seen[1].RevokedAt.IsZero() {
		t.Fatalf("decisions saw %d grants (%+v), want two: unrevoked, then revoked", len(seen), seen)
	}
	if r, _, err := s.GetRefreshToken(ctx, rt.Hash); err != nil || !r.UsedAt.IsZero() {
		t.Errorf("token after the lost race: used at %v (%v), want unused", r.UsedAt, err)
	}
	if _, _, err := s.GetRefreshToken(ctx, next.Hash); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("child after the lost race: got %v, want ErrNotFound", err)
	}
}

// goose holds its PostgreSQL advisory lock on a connection of the pool: Open
// must not need a second one, or a pool of one deadlocks.
func TestOpenPostgresSingleConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, storagetest.PostgresDSN(t), Options{MaxOpenConns: 1})
	if err != nil {
		t.Fatalf("Open with MaxOpenConns 1: %v", err)
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// A node that loses its connection loses its lock: the server releases it, so
// a crashed or cut-off node never blocks the others. Unlocking afterwards is
// harmless.
func TestPostgresLockReleasedWithConnection(t *testing.T) {
	ctx := t.Context()
	dsn := storagetest.PostgresDSN(t)
	a, b := openStore(t, dsn, Options{}), openStore(t, dsn, Options{})
	unlock, ok, err := a.TryLock(ctx, "maintenance")
	if err != nil || !ok {
		t.Fatalf("TryLock: got %v, %v; want the lock", ok, err)
	}
	defer unlock()
	// The server process holding the lock, found by its key (pg_locks shows a
	// bigint advisory key as classid, objid with objsubid 1).
	var killed int
	if err := b.w.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND objsubid = 1 AND granted
		AND ((classid::bigint << 32) | objid::bigint) = hashtextextended('castellan/' || current_schema() || '/lock/maintenance', 0)`).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d server processes holding the lock, want 1", killed)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		unlockB, ok, err := b.TryLock(ctx, "maintenance")
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			unlockB()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("lock still held 10s after its connection was terminated")
		}
		time.Sleep(20 * time.Millisecond)
	}
	unlock()
	unlock()
}

// The lock has a connection of its own: a pool of one connection still serves
// the work done under the lock.
func TestPostgresLockOutsidePool(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s := openStore(t, storagetest.PostgresDSN(t), Options{MaxOpenConns: 1})
	unlock, ok, err := s.TryLock(ctx, "signing-keys")
	if err != nil || !ok {
		t.Fatalf("TryLock: got %v, %v; want the lock", ok, err)
	}
	defer unlock()
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	k := storage.SigningKey{KID: "k", Algorithm: "ES256", Sealed: []byte("sealed"), CreatedAt: now, ActivatesAt: now}
	if err := s.ScheduleSigningKey(ctx, k, nil, now); err != nil {
		t.Fatalf("ScheduleSigningKey under the lock with a pool of one: %v", err)
	}
}

// TestSQLitePreparesStatements: on SQLite the hot queries run as prepared
// statements, inside write transactions too (reusing the statement prepared
// on the writer connection); PostgreSQL leaves it to pgx.
func TestSQLitePreparesStatements(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := openStore(t, b.dsn(t), Options{})
			ctx := t.Context()
			now := time.Now().UTC()
			c := storage.Client{ID: "spa", Name: "spa", TokenEndpointAuthMethod: "none", CreatedAt: now, UpdatedAt: now}
			for range 3 {
				if err := s.UpsertClient(ctx, c); err != nil {
					t.Fatal(err)
				}
				if _, err := s.GetClient(ctx, "spa"); err != nil {
					t.Fatal(err)
				}
				if err := s.DeleteClient(ctx, "spa"); err != nil {
					t.Fatal(err)
				}
			}
			reads, writes := s.prepared[poolRead].n.Load(), s.prepared[poolWrite].n.Load()
			if b.name == "postgres" {
				if reads != 0 || writes != 0 {
					t.Errorf("postgres prepared %d reads and %d writes, want none", reads, writes)
				}
				return
			}
			if reads == 0 || writes == 0 {
				t.Errorf("sqlite prepared %d reads and %d writes, want some of each", reads, writes)
			}
		})
	}
}

// TestProbeWriteFailsReadOnly: on a database that takes no writes, reads
// still answer (Ping) but the write probe fails, on both flavors; the same
// database opened for writing passes it.
func TestProbeWriteFailsReadOnly(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.dsn(t)
			rw := openStore(t, dsn, Options{})
			if err := rw.ProbeWrite(t.Context(), "node", time.Unix(1000, 0)); err != nil {
				t.Fatalf("probe on a writable database: %v", err)
			}
			ro := openStore(t, dsn, Options{ReadOnly: true})
			if err := ro.Ping(t.Context()); err != nil {
				t.Errorf("ping on a read-only database: got %v, want nil", err)
			}
			if err := ro.ProbeWrite(t.Context(), "node", time.Unix(2000, 0)); err == nil {
				t.Error("probe on a read-only database: got nil, want an error")
			} else {
				t.Logf("read-only probe: %v", err)
			}
		})
	}
}
