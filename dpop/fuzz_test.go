package dpop_test

import (
	"context"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/dpop"
	"github.com/castellan-auth/castellan/dpop/dpoptest"
)

// FuzzValidatorCheck feeds arbitrary DPoP header values and request URLs to
// the validator: it must never panic, and what it accepts must be a proof
// with a thumbprint.
func FuzzValidatorCheck(f *testing.F) {
	k := dpoptest.NewKey("ES256")
	k.Now = func() time.Time { return t0 }
	f.Add(k.Proof("POST", target, ""), target, "")
	f.Add(k.Proof("GET", target, "tok"), target, "tok")
	f.Add(k.Unsigned(dpoptest.Claims{HTM: "POST", HTU: target}), target, "")
	f.Add("eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.", "https://[::1]:80/%2e%2e/x", "")
	f.Add("a.b.c", "http://a/b/../../c", "x")
	f.Fuzz(func(t *testing.T, proof, u, token string) {
		v, err := dpop.New(dpop.Config{Replay: &dpop.MemoryReplayCache{}, Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatal(err)
		}
		p, err := v.Check(context.Background(), []string{proof}, dpop.Request{Method: "POST", URL: u, AccessToken: token})
		if err == nil && (p == nil || len(p.JKT) != 43) {
			t.Fatalf("accepted without a thumbprint: %+v", p)
		}
		dpop.SameURI(proof, u)
	})
}
