package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

func openSQLite(path string, opts Options) (*Store, error) {
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("sqlite: create directory: %w", err)
		}
	}
	if err := prepareSQLiteFiles(path, opts.log()); err != nil {
		return nil, err
	}
	// WAL lets readers run beside the writer; synchronous=NORMAL in WAL mode keeps
	// the database consistent after a crash of the process (a power loss may drop
	// the last commits, never half of one; the writes that end access are synced
	// all the same: commit.go, Durability). BEGIN IMMEDIATE takes the write lock up
	// front so a transaction never fails half-way upgrading a read lock.
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	// Checkpoints run in the background (commit.go); SQLite's own, inside a
	// commit, only once the WAL holds this many pages (40 MiB at 4 KiB).
	q.Add("_pragma", "wal_autocheckpoint(10000)")
	q.Set("_txlock", "immediate")
	if opts.ReadOnly {
		q.Set("mode", "ro")
	}
	dsn := "file:" + uriPath.Replace(path) + "?" + q.Encode()

	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	n := opts.MaxOpenConns
	if n <= 0 {
		n = 8
	}
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(idle(opts, n))
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	locks, err := newFileLocker(path)
	if err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	s := &Store{flavor: flavorSQLite, path: path, w: w, r: r, locks: locks}
	s.commit = newCommitter(s)
	return s, nil
}

// uriPath escapes what SQLite's URI filenames would otherwise read as the
// start of the query (?), a fragment (#) or an escape (%).
var uriPath = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

func openPostgres(dsn string, opts Options) (*Store, error) {
	locks, err := newAdvisoryLocker(dsn)
	if err != nil {
		return nil, err
	}
	if opts.ReadOnly {
		dsn = withRuntimeParam(dsn, "default_transaction_read_only", "on")
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: %v", redactDSN(err.Error()))
	}
	n := opts.MaxOpenConns
	if n <= 0 {
		n = 20
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(idle(opts, n))
	life := opts.ConnMaxLifetime
	if life <= 0 {
		life = 30 * time.Minute
	}
	db.SetConnMaxLifetime(life)
	db.SetConnMaxIdleTime(max(opts.ConnMaxIdleTime, 0))
	return &Store{flavor: flavorPostgres, w: db, r: db, locks: locks}, nil
}

// withRuntimeParam adds a run-time parameter to a postgres:// DSN (pgx
// sends query parameters it does not know to the server as settings).
func withRuntimeParam(dsn, key, value string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn // sql.Open reports it
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func idle(opts Options, open int) int {
	if opts.MaxIdleConns > 0 && opts.MaxIdleConns <= open {
		return opts.MaxIdleConns
	}
	return open
}

func constraintKind(f flavor, err error) constraint {
	switch f {
	case flavorSQLite:
		var e *sqlite.Error
		if errors.As(err, &e) {
			switch e.Code() {
			case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
				return constraintUnique
			case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
				return constraintForeignKey
			}
		}
	case flavorPostgres:
		var e *pgconn.PgError
		if errors.As(err, &e) {
			switch e.Code {
			case "23505":
				return constraintUnique
			case "23503":
				return constraintForeignKey
			}
		}
	}
	return constraintNone
}
