package dpop_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/castellan-auth/castellan/dpop"
	"github.com/castellan-auth/castellan/dpop/dpoptest"
)

const target = "https://id.example.com/token"

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func validator(t *testing.T, requireNonce bool) (*dpop.Validator, *dpop.Nonces) {
	t.Helper()
	nonces := dpop.NewNonces([]byte("0123456789abcdef0123456789abcdef"), time.Minute)
	now := func() time.Time { return t0 }
	v, err := dpop.New(dpop.Config{
		Replay: &dpop.MemoryReplayCache{Now: now}, Nonces: nonces, RequireNonce: requireNonce, Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v, nonces
}

func TestCheck(t *testing.T) {
	es := dpoptest.NewKey("ES256")
	es.Now = func() time.Time { return t0 }
	other := dpoptest.NewKey("ES256")
	otherPriv := other.Private.(*ecdsa.PrivateKey)
	private := jose.JSONWebKey{Key: es.Private, Algorithm: "ES256"}
	const at = "the-access-token"
	ok := func(m, u string) dpoptest.Claims { return dpoptest.Claims{HTM: m, HTU: u} }
	nonces := dpop.NewNonces([]byte("0123456789abcdef0123456789abcdef"), time.Minute)
	foreign := dpop.NewNonces([]byte("another key, another deployment!"), time.Minute)

	cases := []struct {
		name   string
		proof  func() []string
		req    dpop.Request
		nonce  bool   // validator requires nonces
		want   string // "" accepted, else the error code
		reason string // a part of the reason
	}{
		{name: "valid ES256", proof: one(es.Sign(ok("POST", target), nil))},
		{name: "valid EdDSA", proof: func() []string { k := key("EdDSA"); return []string{k.Sign(ok("POST", target), nil)} }},
		{name: "valid RS256", proof: func() []string { k := key("RS256"); return []string{k.Sign(ok("POST", target), nil)} }},
		{name: "valid PS256", proof: func() []string { k := key("PS256"); return []string{k.Sign(ok("POST", target), nil)} }},
		// ADVERSARIAL 47: accepted variations.
		{name: "47 htu with query and fragment", proof: one(es.Sign(ok("POST", target+"?a=b#frag"), nil))},
		{name: "47 request with query", proof: one(es.Sign(ok("POST", target), nil)), req: dpop.Request{Method: "POST", URL: target + "?x=1"}},
		{name: "47 case-insensitive scheme and host", proof: one(es.Sign(ok("POST", "HTTPS://ID.Example.COM/token"), nil))},
		{name: "47 default port", proof: one(es.Sign(ok("POST", "https://id.example.com:443/token"), nil))},
		{name: "47 percent-encoded unreserved", proof: one(es.Sign(ok("POST", "https://id.example.com/%74oken"), nil))},
		{name: "47 extra claims", proof: one(es.Sign(dpoptest.Claims{HTM: "POST", HTU: target, Extra: map[string]any{"foo": "bar", "n": 1}}, nil))},
		{name: "iat 10 s in the past", proof: one(es.Sign(dpoptest.Claims{HTM: "POST", HTU: target, IAT: t0.Unix() - 10}, nil))},
		{name: "iat 10 s in the future", proof: one(es.Sign(dpoptest.Claims{HTM: "POST", HTU: target, IAT: t0.Unix() + 10}, nil))},
		{name: "ath matches", proof: one(es.Sign(dpoptest.Claims{HTM: "GET", HTU: target, ATH: dpop.AccessTokenHash(at)}, nil)),
			req: dpop.Request{Method: "GET", URL: target, AccessToken: at}},
		{name: "current nonce", nonce: true, proof: one(es.Sign(dpoptest.Claims{HTM: "POST", HTU: target, Nonce: nonces.Current(t0)}, nil))},
		{name: "previous period's nonce", nonce: true, proof: one(es.Sign(dpoptest.Claims{HTM: "POST", HTU: target, Nonce: nonces.Current(t0.Add(-time.Minute))}, nil))},

		// ADVERSARIAL 44 and the DPoP negative modules.
		{name: "44 typ jwt", want: dpop.CodeInvalidProof, reason: "typ", proof: one(es.Sign(ok("POST", target), map[string]any{"typ": "JWT"}))},
		{name: "44 no typ", want: dpop.CodeInvalidProof, reason: "typ", proof: one(es.Sign(ok("POST", target), map[string]any{"typ": nil}))},
		{name: "44 alg none", want: dpop.CodeInvalidProof, proof: one(es.Unsigned(ok("POST", target)))},
		{name: "44 HS256 with the public key's bytes", want: dpop.CodeInvalidProof,
			proof: one(es.SignWith(jose.HS256, elliptic.Marshal(elliptic.P256(), otherPriv.X, otherPriv.Y), ok("POST", target), nil))},
		{name: "44 private key in jwk", want: dpop.CodeInvalidProof, proof: one(es.Sign(ok("POST", target), map[string]any{"jwk": private}))},
		{name: "RSA key under 2048 bits", want: dpop.CodeInvalidProof, reason: "2048", proof: func() []string {
			small, err := rsa.GenerateKey(rand.Reader, 1024)
			if err != nil {
				panic(err)
			}
			k := &dpoptest.Key{Alg: jose.RS256, Private: small, Now: es.Now}
			return []string{k.Sign(ok("POST", target), nil)}
		}},
		{name: "no jwk", want: dpop.CodeInvalidProof, reason: "jwk", proof: one(es.Sign(ok("POST", target), map[string]any{"jwk": nil}))},
		{name: "jwk of another key (bad signature)", want: dpop.CodeInvalidProof, reason: "signature",
			proof: one(es.Sign(ok("POST", target), map[string]any{"jwk": other.Public()}))},
		{name: "tampered payload", want: dpop.CodeInvalidProof, reason: "signature", proof: func() []string {
			a := strings.Split(es.Sign(ok("POST", target), nil), ".")
			b := strings.Split(es.Sign(ok("GET", target), nil), ".")
			return []string{a[0] + "." + b[1] + "." + a[2]}
		}},
		{name: "44 wrong htm", want: dpop.CodeInvalidProof, reason: "htm", proof: one(es.Sign(ok("GET", target), nil))},
		{name: "htm lower case", want: dpop.CodeInvalidProof, reason: "htm", proof: one(es.Sign(ok("post", target), nil))},
		{name: "44 foreign htu", want: dpop.CodeInvalidProof, reason: "htu", proof: one(es.Sign(ok("POST", "https://rs.example.com/token"), nil))},
		{name: "htu other path", want: dpop.CodeInvalidProof, reason: "htu", proof: one(es.Sign(ok("POST", "https://id.example.com/userinfo"), nil))},
		{name: "htu other port", want: dpop.CodeInvalidProof, reason: "htu", proof: one(es.Sign(ok("POST", "https://id.example.com:8443/token"), nil))},
		{name: "htu http for https", want: dpop.CodeInvalidProof, reason: "htu", proof: one(es.Sign(ok("POST", "http://id.example.com/token"), nil))},
		{name: "htu relative", want: dpop.CodeInvalidProof, reason: "htu", proof: one(es.Sign(ok("POST", "/token"), nil))},
		{name: "44 iat 1 h ago", want: dpop.CodeInvalidProof, reason: "iat", proof: one(es.Sign(dpoptest.Claims{HTM: "POST", HTU: target, IAT: t0.Add(-time.Hour).Unix()}, nil))},
		{name: "44 iat in 1 h", want: dpop.CodeInvalidProof, reason: "iat", proof: one(es.Sign(dpoptest.Claims{HTM: "POST", HTU: target, IAT: t0.Add(time.Hour).Unix()}, nil))},
		{name: "no htm", want: dpop.CodeInvalidProof, proof: one(es.Sign(dpoptest.Claims{HTU: target}, nil))},
		{name: "jti too long", want: dpop.CodeInvalidProof, reason: "jti", proof: one(es.Sign(dpoptest.Claims{HTM: "POST", HTU: target, JTI: strings.Repeat("j", 300)}, nil))},
		{name: "44 two DPoP headers", want: dpop.CodeInvalidProof, reason: "exactly one", proof: func() []string {
			return []string{es.Sign(ok("POST", target), nil), es.Sign(ok("POST", target), nil)}
		}},
		{name: "44 malformed", want: dpop.CodeInvalidProof, proof: one("not-a-jwt")},
		{name: "44 JSON serialization", want: dpop.CodeInvalidProof, proof: one(`{"payload":"e30","signatures":[]}`)},
		{name: "crit header", want: dpop.CodeInvalidProof, reason: "critical", proof: one(es.Sign(ok("POST", target), map[string]any{"crit": []string{"exp"}, "exp": 1}))},
		{name: "51 missing ath", want: dpop.CodeInvalidProof, reason: "ath", proof: one(es.Sign(ok("GET", target), nil)),
			req: dpop.Request{Method: "GET", URL: target, AccessToken: at}},
		{name: "51 wrong ath", want: dpop.CodeInvalidProof, reason: "ath", proof: one(es.Sign(dpoptest.Claims{HTM: "GET", HTU: target, ATH: dpop.AccessTokenHash("another token")}, nil)),
			req: dpop.Request{Method: "GET", URL: target, AccessToken: at}},
		{name: "45 nonce missing", nonce: true, want: dpop.CodeUseNonce, proof: one(es.Sign(ok("POST", target), nil))},
		{name: "45 nonce stale", nonce: true, want: dpop.CodeUseNonce, proof: one(es.Sign(dpoptest.Claims{HTM: "POST", HTU: target, Nonce: nonces.Current(t0.Add(-2 * time.Minute))}, nil))},
		{name: "nonce of another deployment", want: dpop.CodeUseNonce, proof: one(es.Sign(dpoptest.Claims{HTM: "POST", HTU: target, Nonce: foreign.Current(t0)}, nil))},
		{name: "nonce garbage", want: dpop.CodeUseNonce, proof: one(es.Sign(dpoptest.Claims{HTM: "POST", HTU: target, Nonce: "x"}, nil))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, _ := validator(t, tc.nonce)
			req := tc.req
			if req.Method == "" {
				req = dpop.Request{Method: "POST", URL: target}
			}
			p, err := v.Check(context.Background(), tc.proof(), req)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if p.JKT == "" {
					t.Fatal("no thumbprint")
				}
				return
			}
			t.Log(err)
			var de *dpop.Error
			if !errors.As(err, &de) {
				t.Fatalf("got %v (%T), want a *dpop.Error %s", err, err, tc.want)
			}
			if de.Code != tc.want || !strings.Contains(de.Error(), tc.reason) {
				t.Fatalf("got %v, want %s (%s)", err, tc.want, tc.reason)
			}
		})
	}
}

func TestReplayRefused(t *testing.T) {
	v, _ := validator(t, false)
	k := dpoptest.NewKey("ES256")
	k.Now = func() time.Time { return t0 }
	proof := k.Proof("POST", target, "")
	req := dpop.Request{Method: "POST", URL: target}
	p, err := v.Check(context.Background(), []string{proof}, req)
	if err != nil {
		t.Fatal(err)
	}
	if p.JKT != k.JKT() {
		t.Fatalf("jkt %s, want %s", p.JKT, k.JKT())
	}
	_, err = v.Check(context.Background(), []string{proof}, req)
	var de *dpop.Error
	if !errors.As(err, &de) || de.Code != dpop.CodeInvalidProof || !strings.Contains(de.Reason, "already used") {
		t.Fatalf("replay: %v", err)
	}
	// A refused proof does not use its jti up.
	fresh := k.Sign(dpoptest.Claims{HTM: "GET", HTU: target, JTI: "j-1"}, nil)
	if _, err := v.Check(context.Background(), []string{fresh}, req); err == nil {
		t.Fatal("wrong htm accepted")
	}
	fixed := k.Sign(dpoptest.Claims{HTM: "POST", HTU: target, JTI: "j-1"}, nil)
	if _, err := v.Check(context.Background(), []string{fixed}, req); err != nil {
		t.Fatalf("jti of a refused proof now refused: %v", err)
	}
}

type failingCache struct{}

func (failingCache) Use(context.Context, string, time.Time) error { return errors.New("database down") }

func TestCacheFailureIsNotInvalid(t *testing.T) {
	v, err := dpop.New(dpop.Config{Replay: failingCache{}})
	if err != nil {
		t.Fatal(err)
	}
	k := dpoptest.NewKey("ES256")
	_, err = v.Check(context.Background(), []string{k.Proof("POST", target, "")}, dpop.Request{Method: "POST", URL: target})
	var de *dpop.Error
	if err == nil || errors.As(err, &de) {
		t.Fatalf("got %v, want a cache error that is not a refusal", err)
	}
}

func TestNewRefusesSymmetricAlgorithms(t *testing.T) {
	for _, alg := range []string{"none", "HS256", "HS512", ""} {
		algs := []string{alg}
		if _, err := dpop.New(dpop.Config{Algorithms: algs, Replay: &dpop.MemoryReplayCache{}}); err == nil {
			t.Errorf("%q accepted", alg)
		}
	}
	if _, err := dpop.New(dpop.Config{}); err == nil {
		t.Error("no replay cache accepted")
	}
	if _, err := dpop.New(dpop.Config{Replay: &dpop.MemoryReplayCache{}, RequireNonce: true}); err == nil {
		t.Error("RequireNonce without Nonces accepted")
	}
}

func TestAlgorithmAllowList(t *testing.T) {
	v, err := dpop.New(dpop.Config{Algorithms: []string{"ES256"}, Replay: &dpop.MemoryReplayCache{}})
	if err != nil {
		t.Fatal(err)
	}
	k := key("EdDSA")
	_, err = v.Check(context.Background(), []string{k.Proof("POST", target, "")}, dpop.Request{Method: "POST", URL: target})
	if err == nil {
		t.Fatal("EdDSA accepted by an ES256-only validator")
	}
}

func TestSameURI(t *testing.T) {
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"https://a.example/x", "https://a.example/x", true},
		{"https://a.example", "https://a.example/", true},
		{"http://a.example:80/x", "http://A.EXAMPLE/x", true},
		{"https://a.example/a/../x", "https://a.example/x", true},
		{"https://a.example/%7Euser", "https://a.example/~user", true},
		{"https://a.example/a%2Fb", "https://a.example/a/b", false},
		{"https://a.example/x", "https://a.example/X", false},
		{"https://a.example/x", "https://b.example/x", false},
		{"https://user@a.example/x", "https://a.example/x", false},
		{"ftp://a.example/x", "ftp://a.example/x", false},
		{"https://[::1]:443/x", "https://[::1]/x", true},
	} {
		if got := dpop.SameURI(c.a, c.b); got != c.same {
			t.Errorf("SameURI(%q, %q) = %v", c.a, c.b, got)
		}
	}
}

func TestChallenge(t *testing.T) {
	got := dpop.Challenge("api", []string{"ES256", "EdDSA"}, "invalid_token", `bad "x"`)
	want := `DPoP realm="api", error="invalid_token", error_description="bad \"x\"", algs="ES256 EdDSA"`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestValidThumbprint(t *testing.T) {
	k := dpoptest.NewKey("ES256")
	if !dpop.ValidThumbprint(k.JKT()) || dpop.ValidThumbprint("abc") || dpop.ValidThumbprint(k.JKT()+"A") {
		t.Fatal("ValidThumbprint wrong")
	}
}

func one(p string) func() []string { return func() []string { return []string{p} } }

func key(alg string) *dpoptest.Key {
	k := dpoptest.NewKey(alg)
	k.Now = func() time.Time { return t0 }
	return k
}

func TestCompact(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln-_", true},
		{"a.b.c", true},
		{"a..c", true}, // an empty part is still the compact shape; the JWS check refuses it
		{"", false},
		{"a.b", false},
		{"a.b.c.d.e", false}, // JWE compact
		{"a.b.c=", false},    // padding is not base64url
		{"a+/.b.c", false},   // base64, not base64url
		{" a.b.c", false},
		{"a.b.c\n", false},
		{"a.b\x00.c", false},
		{"a.b.\xc3\xa9", false},
		{`{"payload":"a"}`, false}, // the JSON serialization
	} {
		if got := dpop.Compact(c.in); got != c.want {
			t.Errorf("Compact(%q) = %v, want %v", c.in, got, c.want)
		}
	}
	// Every byte on its own: only the base64url alphabet is allowed between the dots.
	for b := 0; b < 256; b++ {
		c := byte(b)
		want := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		if got := dpop.Compact("a." + string([]byte{c}) + ".b"); got != want {
			t.Errorf("Compact with byte %#02x = %v, want %v", c, got, want)
		}
	}
}

// countingCache is a ReplayCache that counts what it is asked to store.
type countingCache struct {
	dpop.MemoryReplayCache
	uses int
}

func (c *countingCache) Use(ctx context.Context, key string, expiresAt time.Time) error {
	c.uses++
	return c.MemoryReplayCache.Use(ctx, key, expiresAt)
}

// TestVerifyWritesNothing: Verify checks a proof without storing its jti,
// so a server can authenticate the request before anything is written; Use
// stores it once, and a second Use of the proof (or of a copy verified again)
// is refused. Check is both.
func TestVerifyWritesNothing(t *testing.T) {
	cache := &countingCache{MemoryReplayCache: dpop.MemoryReplayCache{Now: func() time.Time { return t0 }}}
	v, err := dpop.New(dpop.Config{Replay: cache, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	k := dpoptest.NewKey("ES256")
	k.Now = func() time.Time { return t0 }
	proof := []string{k.Proof("POST", target, "")}
	req := dpop.Request{Method: "POST", URL: target}

	p, err := v.Verify(proof, req)
	if err != nil || p.JKT != k.JKT() {
		t.Fatalf("Verify: %v", err)
	}
	if _, err := v.Verify(proof, req); err != nil || cache.uses != 0 {
		t.Fatalf("Verify twice: %v, %d replay-cache writes, want none", err, cache.uses)
	}
	if used, err := v.Used(context.Background(), p); err != nil || used || cache.uses != 0 {
		t.Fatalf("Used before Use: %v, %v, %d writes; want false and none", used, err, cache.uses)
	}
	if err := v.Use(context.Background(), p); err != nil || cache.uses != 1 {
		t.Fatalf("Use: %v (%d writes)", err, cache.uses)
	}
	if used, err := v.Used(context.Background(), p); err != nil || !used || cache.uses != 1 {
		t.Fatalf("Used after Use: %v, %v, %d writes; want true and no more", used, err, cache.uses)
	}
	again, _ := v.Verify(proof, req)
	var de *dpop.Error
	if err := v.Use(context.Background(), again); !errors.As(err, &de) || de.Code != dpop.CodeInvalidProof {
		t.Fatalf("Use of a replayed proof: got %v, want invalid_dpop_proof", err)
	}
	if _, err := v.Check(context.Background(), proof, req); !errors.As(err, &de) {
		t.Fatalf("Check of a used proof: got %v, want invalid_dpop_proof", err)
	}
	if err := v.Use(context.Background(), &dpop.Proof{JKT: p.JKT, JTI: p.JTI}); !errors.As(err, &de) {
		t.Fatalf("Use of a proof Verify never saw: got %v, want a refusal", err)
	}
	before := cache.uses
	bad, err := v.Verify([]string{k.Proof("GET", target, "")}, req)
	if err == nil || bad != nil || cache.uses != before {
		t.Fatalf("Verify of a proof for another method: %v, %d writes", err, cache.uses)
	}
}
