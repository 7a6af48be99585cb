package sqlstore

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/castellan-auth/castellan/internal/storage"
)

// A full disk must say so. SQLite's unix VFS reports ENOSPC as SQLITE_FULL
// only from write(2); growing the -shm file (SQLITE_IOERR_SHMSIZE, "disk I/O
// error (4874)", what a start on a full disk meets first), syncing or
// creating a file report a plain I/O error whatever the cause. So an I/O
// error counts as a full disk when the database's file system has almost no
// space (or no inode) left when it is reported.

// minFreeBytes is the free space below which an I/O error of SQLite is taken
// for a full disk: less than the 32 KiB the -shm grows by, with room for the
// WAL frames of one batch of commits.
const minFreeBytes = 1 << 20

// postgresDiskFull is PostgreSQL's SQLSTATE disk_full (Appendix A, class 53).
const postgresDiskFull = "53100"

// diskFull returns the error to report when err says the database's disk is
// full (wrapping storage.ErrDiskFull, naming the file or server), or nil.
func (s *Store) diskFull(err error) error {
	switch s.flavor {
	case flavorSQLite:
		var e *sqlite.Error
		if errors.As(err, &e) && sqliteDiskFull(e.Code(), func() (bool, error) { return spaceLeft(filepath.Dir(s.path)) }) {
			return fmt.Errorf("%w: sqlite %s: no space left for the database or its -wal and -shm files (%v)", storage.ErrDiskFull, s.path, e)
		}
	case flavorPostgres:
		var e *pgconn.PgError
		if errors.As(err, &e) && e.Code == postgresDiskFull {
			return fmt.Errorf("%w: postgres: the database server has no space left (%s)", storage.ErrDiskFull, e.Message)
		}
	}
	return nil
}

// sqliteDiskFull reports whether a SQLite result code means a full disk;
// spaceLeft says whether the database's file system still has room (asked
// only for an I/O error, which may have another cause).
func sqliteDiskFull(code int, spaceLeft func() (bool, error)) bool {
	switch {
	case code == sqlite3.SQLITE_FULL:
		return true
	case code&0xff == sqlite3.SQLITE_IOERR, code&0xff == sqlite3.SQLITE_CANTOPEN:
		left, err := spaceLeft()
		return err == nil && !left
	}
	return false
}

// classifyOpenErr is the error Open reports for err met while connecting or
// migrating: a full disk says so alone, anything else says what failed.
func (s *Store) classifyOpenErr(what string, err error) error {
	if full := s.diskFull(err); full != nil {
		return full
	}
	return fmt.Errorf("%s %s: %w", what, s.flavor, err)
}
