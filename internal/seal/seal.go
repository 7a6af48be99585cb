// Package seal holds Castellan's master key: the one secret on disk that
// encrypts signing keys (and BFF tokens) at rest and from which the keys for
// CSRF tokens, client-secret digests and refresh-token derivation are derived.
//
// The key file is created with mode 0600 when missing and refused when its
// group or other users have any permission on it. Every node of a cluster must
// use the same key file.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const keySize = 32

// Key is a loaded master key.
type Key struct {
	master []byte
	aead   cipher.AEAD
}

// LoadOrCreate reads the master key from path, creating it (mode 0600, 256
// random bits, hex) when the file does not exist. It refuses a file that
// anyone but its owner may read, write or execute (any bit of 0o077): the key
// decrypts the signing keys and derives every other secret.
func LoadOrCreate(path string) (*Key, bool, error) {
	created := false
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := create(path); err != nil {
			return nil, false, err
		}
		created = true
		f, err = os.Open(path)
	}
	if err != nil {
		return nil, false, fmt.Errorf("key_file %s: %w", path, err)
	}
	defer f.Close()
	// The mode of the file opened, not of whatever the path names a moment later.
	info, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("key_file %s: %w", path, err)
	}
	if err := checkPrivate("key_file", path, info.Mode()); err != nil {
		return nil, false, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize))
	if err != nil {
		return nil, false, fmt.Errorf("key_file %s: %w", path, err)
	}
	k, err := Parse(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, false, fmt.Errorf("key_file %s: %w", path, err)
	}
	return k, created, nil
}

// maxKeyFileSize bounds what is read of a key file: 64 hex digits and a newline
// fit many times over.
const maxKeyFileSize = 4096

// checkPrivate refuses a file whose mode gives its group or other users any
// permission, naming the config key, the file, its mode and the fix.
func checkPrivate(key, path string, mode fs.FileMode) error {
	perm := mode.Perm()
	if perm&0o077 == 0 {
		return nil
	}
	var what string
	switch {
	case perm&0o044 != 0:
		what = "lets other users read it"
	case perm&0o022 != 0:
		what = "lets other users change it"
	default:
		what = "gives other users access to it"
	}
	return fmt.Errorf("%s %s: mode %04o %s; run chmod 600 %s", key, path, perm, what, path)
}

func create(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("key_file %s: %w", path, err)
	}
	b := make([]byte, keySize)
	rand.Read(b)
	// O_EXCL: two processes starting at once never overwrite each other's key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("key_file %s: %w", path, err)
	}
	if _, err := fmt.Fprintln(f, hex.EncodeToString(b)); err != nil {
		f.Close()
		return fmt.Errorf("key_file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("key_file %s: %w", path, err)
	}
	return f.Close()
}

// Parse reads a hex-encoded 256-bit key.
func Parse(s string) (*Key, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != keySize {
		return nil, errors.New("want 64 hexadecimal characters (256 bits)")
	}
	return New(b)
}

// New wraps raw key bytes.
func New(master []byte) (*Key, error) {
	if len(master) != keySize {
		return nil, fmt.Errorf("master key: got %d bytes, want %d", len(master), keySize)
	}
	k := &Key{master: append([]byte(nil), master...)}
	block, err := aes.NewCipher(k.Derive("seal"))
	if err != nil {
		return nil, err
	}
	if k.aead, err = cipher.NewGCM(block); err != nil {
		return nil, err
	}
	return k, nil
}

// Derive returns a 256-bit subkey for one purpose (HKDF-SHA256), so that no two
// uses of the master key share key material.
func (k *Key) Derive(purpose string) []byte {
	out, err := hkdf.Key(sha256.New, k.master, nil, "castellan "+purpose, keySize)
	if err != nil {
		panic(err) // only for lengths HKDF cannot produce
	}
	return out
}

// Seal encrypts plaintext; context binds the ciphertext to its use (e.g. a key
// id), so a sealed value copied into another row does not open.
func (k *Key) Seal(plaintext []byte, context string) []byte {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	rand.Read(nonce)
	return k.aead.Seal(nonce, nonce, plaintext, []byte(context))
}

// Open decrypts what Seal produced with the same context.
func (k *Key) Open(sealed []byte, context string) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(sealed) < n+k.aead.Overhead() {
		return nil, errors.New("sealed value too short")
	}
	pt, err := k.aead.Open(nil, sealed[:n], sealed[n:], []byte(context))
	if err != nil {
		return nil, errors.New("sealed value does not open with this master key")
	}
	return pt, nil
}

// MAC is a keyed digest for one purpose.
type MAC struct{ key []byte }

// NewMAC returns the HMAC-SHA256 keyed for purpose.
func (k *Key) NewMAC(purpose string) MAC { return MAC{key: k.Derive("mac " + purpose)} }

// Sum returns HMAC-SHA256(key, parts joined by a zero byte).
func (m MAC) Sum(parts ...[]byte) []byte {
	h := hmac.New(sha256.New, m.key)
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write(p)
	}
	return h.Sum(nil)
}

// Equal compares two digests in constant time.
func Equal(a, b []byte) bool { return hmac.Equal(a, b) }
