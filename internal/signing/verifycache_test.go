package signing_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/castellan-auth/castellan/internal/signing"
)

var es256 = []string{"ES256"}

func mustSign(tb testing.TB, ks *signing.Keyset, payload string) string {
	tb.Helper()
	tok, err := ks.Sign("ES256", "at+jwt", []byte(payload))
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

func TestVerifyCacheHitReturnsSamePayload(t *testing.T) {
	ks, _ := setup(t, "ES256")
	tok := mustSign(t, ks, `{"sub":"x"}`)
	for i := range 3 {
		payload, typ, err := ks.Verify(tok, es256)
		if err != nil || string(payload) != `{"sub":"x"}` || typ != "at+jwt" {
			t.Fatalf("verify #%d: %q %q %v", i+1, payload, typ, err)
		}
		if n := ks.VerifyCacheLen(); n != 1 {
			t.Fatalf("verify #%d: cache holds %d entries, want 1", i+1, n)
		}
	}
}

// A cached token is refused as soon as what made it acceptable is gone: its
// key removed or expired, or its algorithm no longer allowed by the caller.
func TestVerifyCacheRechecksKeyAndAlgorithm(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		allowed []string
		change  func(t *testing.T, ks *signing.Keyset, f fixture, kid string)
	}{
		{"key-deleted", es256, func(t *testing.T, ks *signing.Keyset, f fixture, kid string) {
			if err := f.store.DeleteSigningKey(ctx, kid); err != nil {
				t.Fatal(err)
			}
			if err := ks.Load(ctx); err != nil {
				t.Fatal(err)
			}
		}},
		{"key-expired", es256, func(t *testing.T, ks *signing.Keyset, f fixture, _ string) {
			if _, err := ks.Rotate(ctx, "ES256"); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(f.policy.Propagation + f.policy.MaxTokenLifetime)
			if err := ks.Maintain(ctx); err != nil {
				t.Fatal(err)
			}
		}},
		{"algorithm-not-allowed", []string{"RS256"}, func(*testing.T, *signing.Keyset, fixture, string) {}},
		{"no-algorithm-allowed", nil, func(*testing.T, *signing.Keyset, fixture, string) {}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ks, f := setup(t, "ES256")
			tok := mustSign(t, ks, `{"sub":"x"}`)
			if _, _, err := ks.Verify(tok, es256); err != nil {
				t.Fatal(err)
			}
			if ks.VerifyCacheLen() != 1 {
				t.Fatal("token not cached")
			}
			c.change(t, ks, f, kidOf(t, tok))
			if _, _, err := ks.Verify(tok, c.allowed); err == nil {
				t.Error("cached token still verifies")
			}
		})
	}
}

// A token that differs from a cached one in a single byte is verified on its
// own (and fails), and a token that fails is never cached.
func TestVerifyCacheKeyedByExactBytes(t *testing.T) {
	ks, _ := setup(t, "ES256")
	tok := mustSign(t, ks, `{"sub":"alice","scope":"openid"}`)
	if _, _, err := ks.Verify(tok, es256); err != nil {
		t.Fatal(err)
	}
	first, second := bytes.IndexByte([]byte(tok), '.'), bytes.LastIndexByte([]byte(tok), '.')
	// Positions in the middle of a part, so the change is never one of the
	// spare bits of a final base64 character.
	for name, i := range map[string]int{
		"header":    first / 2,
		"payload":   (first + second) / 2,
		"signature": (second + len(tok)) / 2,
	} {
		t.Run(name, func(t *testing.T) {
			b := []byte(tok)
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			tampered := string(b)
			for try := range 2 { // the second try must not find it cached either
				if _, _, err := ks.Verify(tampered, es256); err == nil {
					t.Fatalf("try %d: token with byte %d changed verifies", try+1, i)
				}
			}
			if n := ks.VerifyCacheLen(); n != 1 {
				t.Errorf("cache holds %d entries, want only the genuine token", n)
			}
		})
	}
	if _, _, err := ks.Verify(tok, es256); err != nil {
		t.Errorf("genuine token after the tampered ones: %v", err)
	}
}

func TestVerifyCacheBounded(t *testing.T) {
	const size = 4
	ks, _ := setup(t, "ES256")
	ks.SetVerifyCacheSize(size)
	var toks []string
	for i := range 5 * size {
		tok := mustSign(t, ks, fmt.Sprintf(`{"n":%d}`, i))
		toks = append(toks, tok)
		if _, _, err := ks.Verify(tok, es256); err != nil {
			t.Fatal(err)
		}
		if n := ks.VerifyCacheLen(); n > 2*size {
			t.Fatalf("after %d tokens the cache holds %d entries, want at most %d", i+1, n, 2*size)
		}
	}
	// The first tokens were evicted: they are verified again, and still good.
	for i, tok := range toks {
		payload, _, err := ks.Verify(tok, es256)
		if err != nil || string(payload) != fmt.Sprintf(`{"n":%d}`, i) {
			t.Fatalf("token %d after eviction: %q %v", i, payload, err)
		}
	}
	if n := ks.VerifyCacheLen(); n > 2*size {
		t.Fatalf("cache holds %d entries, want at most %d", n, 2*size)
	}
}

func BenchmarkVerifyCached(b *testing.B) {
	ks, _ := setup(b, "ES256")
	tok := mustSign(b, ks, `{"sub":"x","scope":"openid profile"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ks.Verify(tok, es256); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyUncached(b *testing.B) {
	ks, _ := setup(b, "ES256")
	tok := mustSign(b, ks, `{"sub":"x","scope":"openid profile"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ks.VerifyUncached(tok, es256); err != nil {
			b.Fatal(err)
		}
	}
}
