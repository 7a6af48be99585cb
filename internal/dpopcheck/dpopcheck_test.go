package dpopcheck_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/dpop/dpoptest"
	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/dpopcheck"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
	"github.com/castellan-auth/castellan/internal/storage/storagetest"
)

const issuer = "https://id.example.com/base"

// nodes are two Castellan nodes on one database with one master key.
func nodes(t *testing.T, dsn string, requireNonce bool) ([2]*dpopcheck.Checker, *clock.Fake) {
	t.Helper()
	master, _ := seal.New(bytes.Repeat([]byte{7}, 32))
	clk := clock.NewFake(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	var out [2]*dpopcheck.Checker
	for i := range out {
		st, err := sqlstore.Open(t.Context(), dsn, sqlstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		c, err := dpopcheck.New(dpopcheck.Config{Issuer: issuer, RequireNonce: requireNonce, Store: st, Master: master, Clock: clk})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = c
	}
	return out, clk
}

func eachBackend(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, "sqlite://"+filepath.Join(t.TempDir(), "c.db")) })
	t.Run("postgres", func(t *testing.T) { fn(t, storagetest.PostgresDSN(t)) })
}

// request is a token request as a handler sees it: the issuer's path prefix
// already stripped.
func request(proofs ...string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/token", nil)
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	return r
}

func code(err error) string {
	var oe *oauth.Error
	if errors.As(err, &oe) {
		return oe.Code
	}
	return ""
}

// TestReplayAcrossNodes: a proof accepted by one node is refused by the other.
func TestReplayAcrossNodes(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		n, clk := nodes(t, dsn, false)
		k := dpoptest.NewKey("ES256")
		k.Now = clk.Now
		p := k.Proof("POST", issuer+"/token", "")
		got, err := n[0].Check(context.Background(), request(p), "")
		if err != nil || got.JKT != k.JKT() {
			t.Fatalf("node 0: %v", err)
		}
		if _, err := n[1].Check(context.Background(), request(p), ""); code(err) != oauth.ErrInvalidDPoPProof {
			t.Fatalf("node 1 accepted a replayed proof: %v", err)
		}
	})
}

// TestNoncesAcrossNodes: any node accepts any node's nonce, until it is stale.
func TestNoncesAcrossNodes(t *testing.T) {
	eachBackend(t, func(t *testing.T, dsn string) {
		n, clk := nodes(t, dsn, true)
		k := dpoptest.NewKey("ES256")
		k.Now = clk.Now
		if _, err := n[0].Check(context.Background(), request(k.Proof("POST", issuer+"/token", "")), ""); code(err) != oauth.ErrUseDPoPNonce {
			t.Fatalf("no nonce: %v", err)
		}
		w := httptest.NewRecorder()
		n[0].SetNonce(w)
		k.Nonce = w.Header().Get("DPoP-Nonce")
		if _, err := n[1].Check(context.Background(), request(k.Proof("POST", issuer+"/token", "")), ""); err != nil {
			t.Fatalf("node 1 refused node 0's nonce: %v", err)
		}
		clk.Advance(11 * time.Minute)
		if _, err := n[1].Check(context.Background(), request(k.Proof("POST", issuer+"/token", "")), ""); code(err) != oauth.ErrUseDPoPNonce {
			t.Fatalf("stale nonce: %v", err)
		}
	})
}

// TestIssuerPath: proofs name the URL under the issuer, path prefix included.
func TestIssuerPath(t *testing.T) {
	n, clk := nodes(t, "sqlite://"+filepath.Join(t.TempDir(), "c.db"), false)
	k := dpoptest.NewKey("ES256")
	k.Now = clk.Now
	if _, err := n[0].Check(context.Background(), request(k.Proof("POST", "https://id.example.com/token", "")), ""); code(err) != oauth.ErrInvalidDPoPProof {
		t.Fatalf("htu without the issuer path accepted: %v", err)
	}
	if _, err := n[0].Check(context.Background(), request(k.Proof("POST", issuer+"/token", "")), ""); err != nil {
		t.Fatal(err)
	}
}
