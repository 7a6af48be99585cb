package mint_test

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
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

// TestHalfHash checks at_hash and c_hash (OIDC Core §3.1.3.6, §3.3.2.11)
// against the examples of OIDC Core Appendix A.
func TestHalfHash(t *testing.T) {
	sha512Half := func(v string) string {
		s := sha512.Sum512([]byte(v))
		return base64.RawURLEncoding.EncodeToString(s[:32])
	}
	cases := []struct {
		name, alg, value, want string
	}{
		// A.3 "id_token token": access_token → at_hash (RS256).
		{"oidc-core-a3-at-hash", "RS256", "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "77QmUPtjPfzWtF2AnpK9RQ"},
		// A.4 "code id_token": code → c_hash (RS256).
		{"oidc-core-a4-c-hash", "RS256", "Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk", "LDktKdoQak3Pk0cnXxCltA"},
		// Every *256 algorithm uses SHA-256, so the same values.
		{"es256-same-as-rs256", "ES256", "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "77QmUPtjPfzWtF2AnpK9RQ"},
		{"ps256-same-as-rs256", "PS256", "Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk", "LDktKdoQak3Pk0cnXxCltA"},
		// Ed25519 signs with SHA-512: the left 256 bits of SHA-512.
		{"eddsa-sha512", "EdDSA", "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", sha512Half("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y")},
		{"empty-value", "RS256", "", "47DEQpj8HBSa-_TImW-5JA"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := mint.HalfHash(c.alg, c.value)
			if err != nil || got != c.want {
				t.Fatalf("got %q %v, want %q", got, err, c.want)
			}
			if c.alg != "EdDSA" && len(got) != 22 {
				t.Errorf("length %d, want 22 (128 bits)", len(got))
			}
		})
	}
	for _, alg := range []string{"none", "HS256", "ES384", "RS512", ""} {
		t.Run("unknown-"+alg, func(t *testing.T) {
			if _, err := mint.HalfHash(alg, "x"); err == nil {
				t.Fatalf("HalfHash(%q) did not fail", alg)
			}
		})
	}
}

func TestAudienceJSON(t *testing.T) {
	marshal := []struct {
		name string
		aud  mint.Audience
		want string
	}{
		{"one-is-a-string", mint.Audience{"spa"}, `"spa"`},
		{"two-are-an-array", mint.Audience{"spa", "https://api.example"}, `["spa","https://api.example"]`},
		{"empty-is-an-array", mint.Audience{}, `[]`},
		{"one-with-escapes", mint.Audience{`a"b<`}, `"a\"b\u003c"`},
	}
	for _, c := range marshal {
		t.Run("marshal/"+c.name, func(t *testing.T) {
			b, err := json.Marshal(c.aud)
			if err != nil || string(b) != c.want {
				t.Fatalf("got %s %v, want %s", b, err, c.want)
			}
		})
	}
	unmarshal := []struct {
		name, in string
		want     mint.Audience
		err      bool
	}{
		{"string", `"spa"`, mint.Audience{"spa"}, false},
		{"array", `["a","b"]`, mint.Audience{"a", "b"}, false},
		{"array-of-one", `["a"]`, mint.Audience{"a"}, false},
		{"empty-array", `[]`, mint.Audience{}, false},
		{"null-is-no-audience", `null`, nil, false},
		{"number", `42`, nil, true},
		{"object", `{"a":1}`, nil, true},
		{"array-with-number", `["a",1]`, nil, true},
		{"bool", `true`, nil, true},
	}
	for _, c := range unmarshal {
		t.Run("unmarshal/"+c.name, func(t *testing.T) {
			var got struct {
				Aud mint.Audience `json:"aud"`
			}
			err := json.Unmarshal([]byte(`{"aud":`+c.in+`}`), &got)
			if (err != nil) != c.err {
				t.Fatalf("error %v, want error %v", err, c.err)
			}
			if !c.err && (len(got.Aud) != len(c.want) || strings.Join(got.Aud, "|") != strings.Join(c.want, "|") || (c.want == nil) != (got.Aud == nil)) {
				t.Fatalf("got %#v, want %#v", got.Aud, c.want)
			}
		})
	}
	t.Run("round-trip-in-claims", func(t *testing.T) {
		in := mint.AccessClaims{Audience: mint.Audience{"x", "y"}}
		b, _ := json.Marshal(in)
		var out mint.AccessClaims
		if err := json.Unmarshal(b, &out); err != nil || !out.Audience.Contains("y") || out.Audience.Contains("") {
			t.Fatalf("round trip: %s → %#v %v", b, out.Audience, err)
		}
	})
	t.Run("null-does-not-contain-empty", func(t *testing.T) {
		var a mint.Audience
		if err := json.Unmarshal([]byte(`null`), &a); err != nil || a.Contains("") {
			t.Fatalf("null audience %#v contains the empty string", a)
		}
	})
}

// minter signs with real keys kept in a real SQLite store.
func minter(t *testing.T, issuer string) (*mint.Minter, *clock.Fake) {
	ks, clk := keyset(t)
	return mint.New(ks, issuer, []string{issuer}), clk
}

func keyset(t *testing.T) (*signing.Keyset, *clock.Fake) {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "m.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	master, _ := seal.New(bytes.Repeat([]byte{7}, 32))
	clk := clock.NewFake(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	ks := signing.New(st, master, clk, signing.Policy{Algorithms: []string{"ES256", "RS256"}, RotationPeriod: 90 * 24 * time.Hour,
		Propagation: time.Minute, MaxTokenLifetime: time.Hour}, slog.New(slog.DiscardHandler))
	if err := ks.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ks, clk
}

func TestParseAccess(t *testing.T) {
	ks, clk := keyset(t)
	m := mint.New(ks, "https://id.example", []string{"https://id.example"})
	now := clk.Now()
	tok, claims, err := m.NewAccess(mint.AccessParams{ClientID: "spa", Subject: "u1", Scopes: []string{"openid", "email"}, GrantID: "g1",
		SID: "s1", AuthTime: now.Add(-time.Minute), AMR: []string{"pwd"}, IssuedAt: now, Expiry: now.Add(time.Hour), JKT: ""})
	if err != nil {
		t.Fatal(err)
	}
	idTok, err := m.NewID("ES256", mint.IDParams{ClientID: "spa", Subject: "u1", IssuedAt: now, Expiry: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	flattened, _ := json.Marshal(map[string]string{"protected": parts[0], "payload": parts[1], "signature": parts[2]})
	other, _ := minter(t, "https://id.example")
	otherIssuer := mint.New(ks, "https://other.example", nil)

	cases := []struct {
		name  string
		token string
		at    time.Time
		err   error
	}{
		{"valid", tok, now, nil},
		{"valid-just-before-exp", tok, now.Add(time.Hour - time.Second), nil},
		{"expired-at-exp", tok, now.Add(time.Hour), mint.ErrExpired},
		{"id-token-is-not-an-access-token", idTok, now, mint.ErrInvalid},
		{"truncated", tok[:len(tok)-1], now, mint.ErrInvalid},
		{"padded", tok + "A", now, mint.ErrInvalid},
		{"trailing-space", tok + " ", now, mint.ErrInvalid},
		{"leading-space", " " + tok, now, mint.ErrInvalid},
		{"inner-newline", parts[0] + ".\n" + parts[1] + "." + parts[2], now, mint.ErrInvalid},
		{"padding-equals", tok + "=", now, mint.ErrInvalid},
		{"json-serialization", string(flattened), now, mint.ErrInvalid},
		{"four-parts", tok + ".x", now, mint.ErrInvalid},
		{"no-signature", parts[0] + "." + parts[1] + ".", now, mint.ErrInvalid},
		{"alg-none", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + parts[1] + ".", now, mint.ErrInvalid},
		{"huge", tok + strings.Repeat("A", 17<<10), now, mint.ErrInvalid},
		{"empty", "", now, mint.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := m.ParseAccess(c.token, c.at)
			if !errors.Is(err, c.err) || (c.err == nil && err != nil) {
				t.Fatalf("error: got %v, want %v", err, c.err)
			}
			if c.err == nil && (got.JTI != claims.JTI || got.Grant != "g1" || got.Scope != "openid email" || got.ClientID != "spa" ||
				got.SID != "s1" || got.AuthTime != now.Add(-time.Minute).Unix() || !got.Audience.Contains("https://id.example")) {
				t.Fatalf("claims: %+v", got)
			}
		})
	}
	t.Run("other-issuer", func(t *testing.T) {
		if _, err := otherIssuer.ParseAccess(tok, now); !errors.Is(err, mint.ErrInvalid) {
			t.Fatalf("got %v, want ErrInvalid", err)
		}
	})
	t.Run("signed-by-another-keyset", func(t *testing.T) {
		if _, err := other.ParseAccess(tok, now); !errors.Is(err, mint.ErrInvalid) {
			t.Fatalf("got %v, want ErrInvalid", err)
		}
	})
}

func TestIDToken(t *testing.T) {
	m, clk := minter(t, "https://id.example")
	now := clk.Now()
	for _, alg := range []string{"ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			tok, err := m.NewID(alg, mint.IDParams{ClientID: "spa", Subject: "u1", SID: "s1", Nonce: "n", AuthTime: now, ACR: "1",
				IssuedAt: now, Expiry: now.Add(time.Hour), AccessToken: "at-value", Code: "code-value",
				User: mint.UserClaims{Email: "a@example.com"}})
			if err != nil {
				t.Fatal(err)
			}
			// An expired ID token is still a usable hint.
			c, err := m.ParseIDTokenHint(tok)
			if err != nil {
				t.Fatal(err)
			}
			at, _ := mint.HalfHash(alg, "at-value")
			ch, _ := mint.HalfHash(alg, "code-value")
			if c.AccessTokenHash != at || c.CodeHash != ch || c.Nonce != "n" || c.AuthorizedParty != "spa" ||
				!c.Audience.Contains("spa") || len(c.Audience) != 1 || c.Email != "a@example.com" {
				t.Fatalf("claims: %+v", c)
			}
			var hdr map[string]any
			h, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
			json.Unmarshal(h, &hdr)
			if hdr["alg"] != alg || hdr["typ"] != mint.TypeIDToken || hdr["kid"] == nil {
				t.Errorf("header %v", hdr)
			}
			// aud is a plain string for one audience.
			var raw map[string]any
			p, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
			json.Unmarshal(p, &raw)
			if raw["aud"] != "spa" {
				t.Errorf("aud %v, want the string spa", raw["aud"])
			}
		})
	}
	t.Run("access-token-is-not-a-hint", func(t *testing.T) {
		tok, _, _ := m.NewAccess(mint.AccessParams{ClientID: "spa", Subject: "u1", IssuedAt: now, Expiry: now.Add(time.Hour)})
		if _, err := m.ParseIDTokenHint(tok); !errors.Is(err, mint.ErrInvalid) {
			t.Fatalf("got %v, want ErrInvalid", err)
		}
	})
	t.Run("unknown-alg", func(t *testing.T) {
		if _, err := m.NewID("HS256", mint.IDParams{ClientID: "spa", Subject: "u1", AccessToken: "x"}); err == nil {
			t.Fatal("HS256 ID token minted")
		}
	})
}

// Claims decoded once are remembered, but every caller gets its own copy: a
// caller changing its claims cannot change what the next call reads. Expiry
// is checked on every call (see TestParseAccess: the same token is valid and
// then expired).
func TestParseAccessCopiesRememberedClaims(t *testing.T) {
	m, clk := minter(t, "https://id.example")
	now := clk.Now()
	tok, _, err := m.NewAccess(mint.AccessParams{ClientID: "spa", Subject: "u1", Scopes: []string{"openid"}, GrantID: "g1",
		AMR: []string{"pwd"}, IssuedAt: now, Expiry: now.Add(time.Hour), JKT: "thumbprint"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := m.ParseAccess(tok, now)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(first)
	for i := range 3 {
		got, err := m.ParseAccess(tok, now)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := json.Marshal(got); !bytes.Equal(b, want) {
			t.Fatalf("call %d: got %s, want %s", i+2, b, want)
		}
		got.Audience[0], got.AMR[0], got.Confirmation.JKT = "changed", "changed", "changed"
	}
}

// TestAccessTokenAudienceOfItsClient: an access token names the client's
// own audience when it has one, else the minter's default (tokens.audience,
// or the issuer), and writes one audience as a string (RFC 9068 §3).
func TestAccessTokenAudienceOfItsClient(t *testing.T) {
	ks, clk := keyset(t)
	now := clk.Now()
	cases := []struct {
		name     string
		fallback []string
		client   []string
		want     string // aud as JSON
	}{
		{"client-audience", []string{"https://id.example"}, []string{"https://orders.example/"}, `"https://orders.example/"`},
		{"client-audiences", []string{"https://id.example"}, []string{"https://orders.example/", "billing"}, `["https://orders.example/","billing"]`},
		{"tokens-audience", []string{"https://default-api.example"}, nil, `"https://default-api.example"`},
		{"issuer", []string{"https://id.example"}, nil, `"https://id.example"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := mint.New(ks, "https://id.example", c.fallback)
			tok, _, err := m.NewAccess(mint.AccessParams{ClientID: "spa", Subject: "u1", IssuedAt: now, Expiry: now.Add(time.Hour), Audience: c.client})
			if err != nil {
				t.Fatal(err)
			}
			payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
			var raw map[string]json.RawMessage
			json.Unmarshal(payload, &raw)
			if got := string(raw["aud"]); got != c.want {
				t.Fatalf("aud %s, want %s", got, c.want)
			}
			parsed, err := m.ParseAccess(tok, now)
			if err != nil || len(parsed.Audience) == 0 {
				t.Fatalf("ParseAccess: %v %v", parsed.Audience, err)
			}
		})
	}
}
