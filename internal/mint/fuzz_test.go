package mint_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/mint"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/signing"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
)

// fuzzMinter is a minter over a real keyset (ES256 and RS256 in SQLite) with
// one access token and one ID token it issued.
func fuzzMinter(tb testing.TB) (m *mint.Minter, now time.Time, access, id string, jti string) {
	tb.Helper()
	st, err := sqlstore.Open(context.Background(), "sqlite://"+filepath.Join(tb.TempDir(), "f.db"), sqlstore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	master, _ := seal.New(bytes.Repeat([]byte{9}, 32))
	clk := clock.NewFake(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	ks := signing.New(st, master, clk, signing.Policy{Algorithms: []string{"ES256", "RS256"}, RotationPeriod: 90 * 24 * time.Hour,
		Propagation: time.Minute, MaxTokenLifetime: time.Hour}, slog.New(slog.DiscardHandler))
	if err := ks.Ensure(context.Background()); err != nil {
		tb.Fatal(err)
	}
	m = mint.New(ks, "https://id.example", []string{"https://id.example"})
	now = clk.Now()
	access, claims, err := m.NewAccess(mint.AccessParams{ClientID: "spa", Subject: "u1", Scopes: []string{"openid"}, GrantID: "g1",
		SID: "s1", AuthTime: now, AMR: []string{"pwd"}, IssuedAt: now, Expiry: now.Add(time.Hour)})
	if err != nil {
		tb.Fatal(err)
	}
	id, err = m.NewID("RS256", mint.IDParams{ClientID: "spa", Subject: "u1", IssuedAt: now, Expiry: now.Add(time.Hour)})
	if err != nil {
		tb.Fatal(err)
	}
	return m, now, access, id, claims.JTI
}

// jwsSeeds are the shapes of token worth mutating: the real ones, their
// parts rearranged, and the classic forgeries.
func jwsSeeds(f *testing.F, tokens ...string) {
	enc := base64.RawURLEncoding.EncodeToString
	for _, tok := range tokens {
		p := strings.Split(tok, ".")
		f.Add(tok)
		f.Add(tok[:len(tok)-1])
		f.Add(tok + "A")
		f.Add(p[0] + "." + p[1] + ".")
		f.Add(enc([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + p[1] + ".")
		f.Add(enc([]byte(`{"alg":"HS256","typ":"at+jwt"}`)) + "." + p[1] + "." + p[2])
		f.Add(enc([]byte(`{"alg":"ES256","typ":"at+jwt","crit":["b64"],"b64":false}`)) + "." + p[1] + "." + p[2])
		f.Add(`{"protected":"` + p[0] + `","payload":"` + p[1] + `","signature":"` + p[2] + `"}`)
	}
	f.Add("")
	f.Add("..")
	f.Add("a.b.c")
}

// FuzzParseAccess: only a token Castellan issued is accepted, with exactly
// the claims it was issued with (whatever bytes are fed: RFC 8725 §3.1, 3.2).
func FuzzParseAccess(f *testing.F) {
	m, now, access, id, jti := fuzzMinter(f)
	jwsSeeds(f, access, id)
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := m.ParseAccess(tok, now)
		if err != nil {
			if !errors.Is(err, mint.ErrInvalid) && !errors.Is(err, mint.ErrExpired) {
				t.Fatalf("ParseAccess(%q): unexpected error %v", tok, err)
			}
			return
		}
		if c.JTI != jti || c.Subject != "u1" || c.ClientID != "spa" || c.Grant != "g1" {
			t.Fatalf("ParseAccess(%q) accepted claims %+v that were never issued", tok, c)
		}
	})
}

// FuzzParseIDTokenHint: an id_token_hint is accepted only if it is an ID
// token Castellan signed (never an access token, never an unsigned one).
func FuzzParseIDTokenHint(f *testing.F) {
	m, _, access, id, _ := fuzzMinter(f)
	jwsSeeds(f, id, access)
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := m.ParseIDTokenHint(tok)
		if err != nil {
			if !errors.Is(err, mint.ErrInvalid) {
				t.Fatalf("ParseIDTokenHint(%q): unexpected error %v", tok, err)
			}
			return
		}
		if c.Subject != "u1" || c.Issuer != "https://id.example" || !c.Audience.Contains("spa") {
			t.Fatalf("ParseIDTokenHint(%q) accepted claims %+v that were never issued", tok, c)
		}
	})
}
