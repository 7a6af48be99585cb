package seal_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
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

// TestRefusesKeyFileOthersCanAccess: any permission for the group or other
// users refuses the key, with a message naming the file, its mode and the
// fix; the owner's own bits are the owner's business.
func TestRefusesKeyFileOthersCanAccess(t *testing.T) {
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
		says string
	}{
		{0o600, true, ""},
		{0o400, true, ""},
		{0o700, true, ""},
		{0o640, false, "lets other users read it"},
		{0o660, false, "lets other users read it"},
		{0o644, false, "lets other users read it"},
		{0o604, false, "lets other users read it"},
		{0o620, false, "lets other users change it"},
		{0o602, false, "lets other users change it"},
		{0o610, false, "gives other users access to it"},
		{0o601, false, "gives other users access to it"},
		{0o666, false, "lets other users read it"},
	} {
		t.Run(fmt.Sprintf("%04o", tc.mode), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "master.key")
			if _, _, err := seal.LoadOrCreate(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, _, err := seal.LoadOrCreate(path)
			if tc.ok {
				if err != nil {
					t.Errorf("got %v, want the key accepted", err)
				}
				return
			}
			want := fmt.Sprintf("key_file %s: mode %04o %s; run chmod 600 %s", path, tc.mode, tc.says, path)
			if err == nil || err.Error() != want {
				t.Errorf("got %v, want %q", err, want)
			}
		})
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
