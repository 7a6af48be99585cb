package signing_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/jwstest"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/signing"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
)

type fixture struct {
	store  *sqlstore.Store
	master *seal.Key
	clock  *clock.Fake
	policy signing.Policy
}

func setup(tb testing.TB, algs ...string) (*signing.Keyset, fixture) {
	tb.Helper()
	st, err := sqlstore.Open(context.Background(), "sqlite://"+filepath.Join(tb.TempDir(), "k.db"), sqlstore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	master, _ := seal.New(bytes.Repeat([]byte{1}, 32))
	f := fixture{store: st, master: master, clock: clock.NewFake(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)),
		policy: signing.Policy{Algorithms: algs, RotationPeriod: 90 * 24 * time.Hour, Propagation: 2 * time.Minute, MaxTokenLifetime: time.Hour}}
	ks := f.keyset()
	if err := ks.Ensure(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return ks, f
}

func (f fixture) keyset() *signing.Keyset {
	return signing.New(f.store, f.master, f.clock, f.policy, slog.New(slog.DiscardHandler))
}

func jwks(t *testing.T, ks *signing.Keyset) jose.JSONWebKeySet {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(ks.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	return set
}

func TestSignVerifyEachAlgorithm(t *testing.T) {
	ks, _ := setup(t, "ES256", "RS256", "EdDSA")
	set := jwks(t, ks)
	if len(set.Keys) != 3 {
		t.Fatalf("JWKS keys: got %d, want 3", len(set.Keys))
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Fatalf("JWKS holds a private key: %s", k.KeyID)
		}
	}
	for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
		tok, err := ks.Sign(alg, "at+jwt", []byte(`{"sub":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		// Verified by go-jose against the published JWKS alone.
		jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
		if err != nil {
			t.Fatal(err)
		}
		keys := set.Key(jws.Signatures[0].Header.KeyID)
		if len(keys) != 1 {
			t.Fatalf("%s: kid %q not in JWKS", alg, jws.Signatures[0].Header.KeyID)
		}
		if _, err := jws.Verify(keys[0]); err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		payload, typ, err := ks.Verify(tok, []string{alg})
		if err != nil || typ != "at+jwt" || string(payload) != `{"sub":"x"}` {
			t.Fatalf("%s: Verify got %q %q %v", alg, payload, typ, err)
		}
		if _, _, err := ks.Verify(tok, []string{"HS256"}); err == nil {
			t.Errorf("%s token verified with an allow-list that excludes it", alg)
		}
	}
}

func TestVerifyRefusesForeignKey(t *testing.T) {
	ks, _ := setup(t, "ES256")
	foreign, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tok, _ := ks.Sign("ES256", "JWT", []byte(`{}`))
	kid := jwks(t, ks).Keys[0].KeyID
	forged := jwstest.Sign(t, jose.ES256, jose.JSONWebKey{Key: foreign, KeyID: kid}, nil, []byte(`{}`))
	if _, _, err := ks.Verify(forged, []string{"ES256"}); err == nil {
		t.Error("token signed by a foreign key under our kid verified")
	}
	if _, _, err := ks.Verify(tok[:len(tok)-2], []string{"ES256"}); err == nil {
		t.Error("truncated token verified")
	}
}

func TestKeysSurviveRestartSealed(t *testing.T) {
	ks, f := setup(t, "ES256")
	tok, _ := ks.Sign("ES256", "JWT", []byte(`{}`))
	// A second node (or a restart) reads the same keys from storage.
	again := f.keyset()
	if err := again.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(jwks(t, again).Keys) != 1 {
		t.Fatal("restart created another key")
	}
	if _, _, err := again.Verify(tok, []string{"ES256"}); err != nil {
		t.Fatal(err)
	}
	recs, _ := f.store.ListSigningKeys(context.Background())
	if bytes.Contains(recs[0].Sealed, []byte(`"d"`)) {
		t.Error("private key stored in the clear")
	}
	wrong, _ := seal.New(bytes.Repeat([]byte{2}, 32))
	if err := signing.New(f.store, wrong, f.clock, f.policy, slog.New(slog.DiscardHandler)).Load(context.Background()); err == nil {
		t.Error("keys opened with another master key")
	}
}

func TestRotationSchedule(t *testing.T) {
	ks, f := setup(t, "ES256")
	ctx := context.Background()
	old, _ := ks.Sign("ES256", "JWT", []byte(`{}`))
	oldKid := jwks(t, ks).Keys[0].KeyID

	next, err := ks.Rotate(ctx, "ES256")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(jwks(t, ks).Keys); n != 2 {
		t.Fatalf("JWKS after rotate: got %d keys, want 2 (current and next)", n)
	}
	// Until the propagation delay passes the old key still signs.
	tok, _ := ks.Sign("ES256", "JWT", []byte(`{}`))
	if kidOf(t, tok) != oldKid {
		t.Error("new key signs before every node could publish it")
	}
	f.clock.Advance(f.policy.Propagation)
	tok, _ = ks.Sign("ES256", "JWT", []byte(`{}`))
	if kidOf(t, tok) != next.KID {
		t.Error("new key does not sign after the propagation delay")
	}
	// The previous key stays published while tokens it signed are valid.
	if _, _, err := ks.Verify(old, []string{"ES256"}); err != nil {
		t.Fatalf("token of the previous key: %v", err)
	}
	f.clock.Advance(f.policy.MaxTokenLifetime)
	if err := ks.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if set := jwks(t, ks); len(set.Keys) != 1 || set.Keys[0].KeyID != next.KID {
		t.Fatalf("JWKS after the previous key expired: got %d keys", len(set.Keys))
	}
	if _, _, err := ks.Verify(old, []string{"ES256"}); err == nil {
		t.Error("token of an expired key still verifies")
	}
}

func TestMaintainRotatesAfterPeriod(t *testing.T) {
	ks, f := setup(t, "ES256")
	ctx := context.Background()
	if err := ks.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(jwks(t, ks).Keys); n != 1 {
		t.Fatalf("rotated early: %d keys", n)
	}
	f.clock.Advance(f.policy.RotationPeriod)
	ks.Maintain(ctx)
	ks.Maintain(ctx) // a second pass must not schedule yet another key
	if n := len(jwks(t, ks).Keys); n != 2 {
		t.Fatalf("after the rotation period: got %d keys, want 2", n)
	}
}

func kidOf(t *testing.T, tok string) string {
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID
}

func BenchmarkSignES256(b *testing.B) {
	ks, _ := setup(b, "ES256")
	payload := []byte(`{"iss":"https://id.example","sub":"u","aud":"api","exp":1700000000}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ks.Sign("ES256", "at+jwt", payload); err != nil {
			b.Fatal(err)
		}
	}
}
