package sqlstore

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/castellan-auth/castellan/internal/storage"
)

// TestSQLiteDiskFullClassified: SQLITE_FULL always means a full disk; an I/O
// error (the -shm file that cannot grow, what a start on a full disk meets as
// "disk I/O error (4874)") only when the file system has no room left;
// anything else never.
func TestSQLiteDiskFullClassified(t *testing.T) {
	statfsFails := errors.New("statfs failed")
	for _, tc := range []struct {
		name  string
		code  int
		left  bool
		err   error
		full  bool
		asked bool
	}{
		{"full", sqlite3.SQLITE_FULL, true, nil, true, false},
		{"shm-cannot-grow/no-space", sqlite3.SQLITE_IOERR_SHMSIZE, false, nil, true, true},
		{"shm-cannot-grow/space-left", sqlite3.SQLITE_IOERR_SHMSIZE, true, nil, false, true},
		{"write/no-space", sqlite3.SQLITE_IOERR_WRITE, false, nil, true, true},
		{"fsync/no-space", sqlite3.SQLITE_IOERR_FSYNC, false, nil, true, true},
		{"shm-open/no-space", sqlite3.SQLITE_IOERR_SHMOPEN, false, nil, true, true},
		{"cannot-create-file/no-inode", sqlite3.SQLITE_CANTOPEN, false, nil, true, true},
		{"io-error/free-space-unknown", sqlite3.SQLITE_IOERR_SHMSIZE, false, statfsFails, false, true},
		{"busy/no-space", sqlite3.SQLITE_BUSY, false, nil, false, false},
		{"constraint/no-space", sqlite3.SQLITE_CONSTRAINT_UNIQUE, false, nil, false, false},
		{"corrupt/no-space", sqlite3.SQLITE_CORRUPT, false, nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked := false
			got := sqliteDiskFull(tc.code, func() (bool, error) { asked = true; return tc.left, tc.err })
			if got != tc.full {
				t.Errorf("code %d: got full %t, want %t", tc.code, got, tc.full)
			}
			if asked != tc.asked {
				t.Errorf("code %d: asked the file system %t, want %t", tc.code, asked, tc.asked)
			}
		})
	}
}

// TestPostgresDiskFullClassified: SQLSTATE 53100 (disk_full) is a full disk,
// with the server's message; other errors are not.
func TestPostgresDiskFullClassified(t *testing.T) {
	s := &Store{flavor: flavorPostgres}
	full := &pgconn.PgError{Severity: "ERROR", Code: "53100", Message: `could not extend file "base/16384/16402": No space left on device`}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"disk-full", full, storage.ErrDiskFull},
		{"disk-full/wrapped", fmt.Errorf("commit: %w", full), storage.ErrDiskFull},
		{"unique-violation", &pgconn.PgError{Code: "23505"}, storage.ErrConflict},
		{"out-of-memory", &pgconn.PgError{Code: "53200", Message: "out of memory"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.mapErr(tc.err)
			if tc.want == nil {
				if errors.Is(err, storage.ErrDiskFull) {
					t.Errorf("got %v, want no disk full", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.want == storage.ErrDiskFull && !strings.Contains(err.Error(), `base/16384/16402": No space left on device`) {
				t.Errorf("got %q, want the server's message in it", err)
			}
		})
	}
}

// TestSQLiteDiskFull: a write that finds no room (here: a page limit the
// database reaches, which SQLite reports as SQLITE_FULL as it does a full
// disk) fails with storage.ErrDiskFull and a message naming the file, not
// with the driver's code; Open says the same alone.
func TestSQLiteDiskFull(t *testing.T) {
	ctx := t.Context()
	dsn := backends[0].dsn(t)
	s := openStore(t, dsn, Options{})
	var pages int
	if err := s.w.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	// The writer pool's one connection keeps the limit.
	if _, err := s.w.ExecContext(ctx, fmt.Sprintf(`PRAGMA max_page_count = %d`, pages+4)); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = s.CreateUser(ctx, storage.User{ID: fmt.Sprint("u", i), Username: fmt.Sprint("user", i), PasswordHash: "x",
			Name: strings.Repeat("n", 8<<10), CreatedAt: now, UpdatedAt: now})
	}
	if !errors.Is(err, storage.ErrDiskFull) {
		t.Fatalf("got %v, want %v", err, storage.ErrDiskFull)
	}
	if msg := err.Error(); !strings.Contains(msg, "disk full: sqlite "+s.path+": no space left") {
		t.Errorf("got %q, want it to say disk full and name %s", msg, s.path)
	}
	// What Open reports for the same error.
	var raw error
	_, raw = s.w.ExecContext(ctx, `INSERT INTO users (id, username, username_key, password_hash, name, created_at, updated_at) VALUES ('x', 'x', 'x', 'x', ?, 0, 0)`,
		strings.Repeat("n", 64<<10))
	if err := s.classifyOpenErr("connect to", raw); !errors.Is(err, storage.ErrDiskFull) || strings.HasPrefix(err.Error(), "connect to") {
		t.Errorf("Open's error: got %v, want the disk-full error alone", err)
	}
}
