package clientkeys_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/castellan-auth/castellan/internal/clientkeys"
	"github.com/castellan-auth/castellan/internal/clock"
)

func set(t *testing.T, keys ...jose.JSONWebKey) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestParse is what a registered key set may hold: public asymmetric
// signing keys only.
func TestParse(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	cases := []struct {
		name string
		set  string
		ok   bool
	}{
		{"ok/public-ec", set(t, jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "k"}), true},
		{"ok/use-sig", set(t, jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "k", Use: "sig"}), true},
		{"fail/private-key", set(t, jose.JSONWebKey{Key: ec, KeyID: "p"}), false},
		{"fail/symmetric", set(t, jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "h", Algorithm: "HS256"}), false},
		{"fail/rsa-1024", set(t, jose.JSONWebKey{Key: &small.PublicKey, KeyID: "w"}), false},
		{"fail/use-enc", set(t, jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "e", Use: "enc"}), false},
		{"fail/empty", `{"keys":[]}`, false},
		{"fail/not-json", `keys`, false},
		{"fail/single-key-not-a-set", `{"kty":"EC"}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := clientkeys.Parse([]byte(c.set))
			if (err == nil) != c.ok {
				t.Fatalf("got %v, want ok=%t", err, c.ok)
			}
		})
	}
}

// TestFetcher is the jwks_uri cache: fresh sets come from memory, a refetch
// is rate limited, a failing server leaves the last good set in use, and
// oversized or redirected answers are refused.
func TestFetcher(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good := set(t, jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "k1"})
	var body atomic.Value
	body.Store(good)
	var status atomic.Int32
	status.Store(200)
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.WriteHeader(int(status.Load()))
		w.Write([]byte(body.Load().(string)))
	}))
	t.Cleanup(srv.Close)
	clk := clock.NewFake(time.Unix(1_800_000_000, 0))
	f := clientkeys.NewFetcher(clk)
	ctx := context.Background()
	get := func(refetch bool) (int, error) {
		s, err := f.Keys(ctx, srv.URL, refetch)
		return len(s.Keys), err
	}

	if n, err := get(false); n != 1 || err != nil || fetches.Load() != 1 {
		t.Fatalf("first: %d keys, %v, %d fetches", n, err, fetches.Load())
	}
	if get(false); fetches.Load() != 1 {
		t.Fatalf("fresh set fetched again (%d fetches)", fetches.Load())
	}
	if get(true); fetches.Load() != 1 {
		t.Fatalf("refetch inside MinRefetch went out (%d fetches)", fetches.Load())
	}
	clk.Advance(31 * time.Second)
	if get(true); fetches.Load() != 2 {
		t.Fatalf("refetch after MinRefetch: %d fetches, want 2", fetches.Load())
	}
	status.Store(500)
	clk.Advance(11 * time.Minute)
	if n, err := get(false); n != 1 || err != nil || fetches.Load() != 3 {
		t.Fatalf("stale set with the server failing: %d keys, %v, %d fetches; want the last good set", n, err, fetches.Load())
	}

	t.Run("oversized", func(t *testing.T) {
		huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write(bytes.Repeat([]byte(" "), 70<<10))
		}))
		t.Cleanup(huge.Close)
		if _, err := clientkeys.NewFetcher(clk).Keys(ctx, huge.URL, false); err == nil {
			t.Fatal("a 70 KiB answer was accepted")
		}
	})
	t.Run("redirect-not-followed", func(t *testing.T) {
		hop := httptest.NewServer(http.RedirectHandler(srv.URL, http.StatusFound))
		t.Cleanup(hop.Close)
		if _, err := clientkeys.NewFetcher(clk).Keys(ctx, hop.URL, false); err == nil {
			t.Fatal("a redirect was followed")
		}
	})
	t.Run("failure-is-remembered", func(t *testing.T) {
		var n atomic.Int32
		down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
		}))
		t.Cleanup(down.Close)
		f := clientkeys.NewFetcher(clk)
		for i := 0; i < 3; i++ {
			if _, err := f.Keys(ctx, down.URL, true); err == nil {
				t.Fatal("a failing server gave keys")
			}
		}
		if n.Load() != 1 {
			t.Fatalf("%d fetches of a failing server inside MinRefetch, want 1", n.Load())
		}
	})
}
