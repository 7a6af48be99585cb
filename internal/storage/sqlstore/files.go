package sqlstore

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
)

// The database holds password hashes, sealed signing keys and session
// digests: no local user but the one running Castellan may read it.
//
// SQLite creates a missing database file with mode 0644 less the umask, so
// the store creates the file itself, 0600, before SQLite opens it. SQLite
// creates the -wal and -shm files with the mode of the database file
// (os_unix.c: findCreateFileMode, and robust_open sets that mode with fchmod
// whatever the umask), so they follow. An existing file that its group or
// other users may access (one made by an older version) is tightened to its
// owner's bits, with a warning: its contents may have been read already.

// sqliteCompanions are the files SQLite keeps beside the database in WAL mode.
var sqliteCompanions = []string{"-wal", "-shm"}

// prepareSQLiteFiles creates the database file at path with mode 0600 when it
// is missing, and takes the group's and others' permissions from it and its
// companions when they exist.
func prepareSQLiteFiles(path string, log *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		// The umask may have taken the owner's write bit: set the mode exactly.
		err = errors.Join(f.Chmod(0o600), f.Close())
		if err != nil {
			return fmt.Errorf("sqlite %s: %w", path, err)
		}
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("sqlite %s: %w", path, err)
	}
	for _, p := range append([]string{path}, companions(path)...) {
		if err := tighten(p, log); err != nil {
			return err
		}
	}
	return nil
}

func companions(path string) []string {
	out := make([]string, len(sqliteCompanions))
	for i, suffix := range sqliteCompanions {
		out[i] = path + suffix
	}
	return out
}

// tighten removes the group's and others' permissions from the file at path,
// if it exists.
func tighten(path string, log *slog.Logger) error {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlite %s: %w", path, err)
	}
	perm := info.Mode().Perm()
	if perm&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(path, perm&^0o077); err != nil {
		return fmt.Errorf("sqlite %s: mode %04o lets other users read it and cannot be changed (%v); run chmod 600 %s", path, perm, err, path)
	}
	log.Warn("database file was readable by other users: its mode is now owner-only; whoever could read it may have read password hashes",
		"file", path, "was", fmt.Sprintf("%04o", perm), "now", fmt.Sprintf("%04o", perm&^0o077))
	return nil
}
