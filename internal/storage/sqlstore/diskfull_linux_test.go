//go:build linux

package sqlstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

// tinyDisk mounts a 2 MiB tmpfs for the test, or skips where mounting is
// not allowed (it needs CAP_SYS_ADMIN).
func tinyDisk(t *testing.T) string {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): the full-disk cases run as root", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill takes the rest of the file system holding dir.
func fill(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := make([]byte, 4096)
	for {
		if _, err := f.Write(block); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatal(err)
		}
	}
}

// TestSQLiteStartOnFullDisk: on a real full disk, a start and a write say
// "disk full" and name the database file, where the driver says "disk I/O
// error (4874)" (the -shm file cannot grow) or "database or disk is full".
func TestSQLiteStartOnFullDisk(t *testing.T) {
	dir := tinyDisk(t)
	path := filepath.Join(dir, "castellan.db")
	ctx := t.Context()

	// A database stopped cleanly (no -wal, no -shm), then the disk filled.
	openStore(t, "sqlite://"+path, Options{}).Close()
	fill(t, dir)
	s, err := Open(ctx, "sqlite://"+path, Options{})
	if err == nil {
		s.Close()
		t.Fatal("start on a full disk: got no error")
	}
	if !errors.Is(err, storage.ErrDiskFull) || !strings.Contains(err.Error(), "disk full: sqlite "+path) {
		t.Errorf("start on a full disk: got %v, want %v naming %s", err, storage.ErrDiskFull, path)
	}

	// A running store whose disk fills.
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, "sqlite://"+path, Options{})
	fill(t, dir)
	now := time.Now()
	err = nil
	for i := 0; i < 100 && err == nil; i++ {
		err = s.CreateUser(ctx, storage.User{ID: fmt.Sprint("u", i), Username: fmt.Sprint("user", i), PasswordHash: "x",
			Name: strings.Repeat("n", 8<<10), CreatedAt: now, UpdatedAt: now})
	}
	if !errors.Is(err, storage.ErrDiskFull) || !strings.Contains(err.Error(), path) {
		t.Errorf("write on a full disk: got %v, want %v naming %s", err, storage.ErrDiskFull, path)
	}
	s.Close()
}
