package seal_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/seal"
)

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "master.key")
	k1, created, err := seal.LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("first load: got created=%v err=%v, want true nil", created, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode: got %04o, want 0600", perm)
	}
	k2, created, err := seal.LoadOrCreate(path)
	if err != nil || created {
		t.Fatalf("second load: got created=%v err=%v, want false nil", created, err)
	}
	sealed := k1.Seal([]byte("secret"), "ctx")
	if pt, err := k2.Open(sealed, "ctx"); err != nil || string(pt) != "secret" {
		t.Fatalf("reloaded key does not open: %q %v", pt, err)
	}
}

func TestRefusesReadableKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	if _, _, err := seal.LoadOrCreate(path); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o644)
	_, _, err := seal.LoadOrCreate(path)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key: got %v, want a refusal naming chmod 600", err)
	}
}

func TestRefusesMalformedKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "master.key")
	os.WriteFile(path, []byte("not hex\n"), 0o600)
	if _, _, err := seal.LoadOrCreate(path); err == nil {
		t.Fatal("malformed key accepted")
	}
}

func TestSealBindsContext(t *testing.T) {
	k, _ := seal.New(bytes.Repeat([]byte{7}, 32))
	sealed := k.Seal([]byte("signing key"), "signing-key:a")
	if _, err := k.Open(sealed, "signing-key:b"); err == nil {
		t.Error("sealed value opened under another context")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := k.Open(sealed, "signing-key:a"); err == nil {
		t.Error("tampered value opened")
	}
	other, _ := seal.New(bytes.Repeat([]byte{8}, 32))
	if _, err := other.Open(k.Seal([]byte("x"), "c"), "c"); err == nil {
		t.Error("value opened with another master key")
	}
	if bytes.Equal(k.Derive("a"), k.Derive("b")) || bytes.Equal(k.NewMAC("a").Sum([]byte("x")), k.NewMAC("b").Sum([]byte("x"))) {
		t.Error("derived keys of different purposes are equal")
	}
}
