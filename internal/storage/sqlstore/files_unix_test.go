//go:build unix

package sqlstore

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

// permissiveUmask clears the process's umask for the test, as a service
// started with umask 0 would have it.
func permissiveUmask(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", filepath.Base(path), err)
	}
	if got := info.Mode().Perm(); got != want {
		t.Errorf("%s: got mode %04o, want %04o", filepath.Base(path), got, want)
	}
}

// TestSQLiteFilesPrivate: the database and its -wal and -shm files are
// created 0600, in a directory that already exists, whatever the umask.
func TestSQLiteFilesPrivate(t *testing.T) {
	permissiveUmask(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "castellan.db")
	s := openStore(t, "sqlite://"+path, Options{})
	// A write, so the WAL and its index exist.
	now := time.Now()
	if err := s.CreateUser(t.Context(), storage.User{ID: "u1", Username: "alice", PasswordHash: "x", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for _, p := range append([]string{path}, companions(path)...) {
		wantMode(t, p, 0o600)
	}
}

// TestSQLiteFilesTightened: a database left readable by other users (by an
// older version) is made owner-only at open, its -wal and -shm too, and the
// log says so, naming the file.
func TestSQLiteFilesTightened(t *testing.T) {
	permissiveUmask(t)
	path := filepath.Join(t.TempDir(), "castellan.db")
	openStore(t, "sqlite://"+path, Options{}).Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if _, err := os.Stat(p); os.IsNotExist(err) {
			// Closing removes the WAL files: leave them as a crash would.
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(p, 0o664); err != nil {
			t.Fatal(err)
		}
	}
	var logged bytes.Buffer
	s := openStore(t, "sqlite://"+path, Options{Log: slog.New(slog.NewTextHandler(&logged, nil))})
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, p := range append([]string{path}, companions(path)...) {
		wantMode(t, p, 0o600)
		if !strings.Contains(logged.String(), "file="+p+" was=0664 now=0600") {
			t.Errorf("log: got %q, want a warning naming %s and its old mode", logged.String(), p)
		}
	}
}
