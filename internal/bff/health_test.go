package bff_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/castellan-auth/castellan/internal/bff"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
)

// TestBFFReadyzFailsWhenWritesFail: /healthz says the gateway runs;
// /readyz that its storage takes writes, which a gateway on a read-only (or
// full) database does not, though it still reads.
func TestBFFReadyzFailsWhenWritesFail(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.browser("alice")
	if resp, _ := b.do(t, http.MethodGet, "/readyz", false, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz on a writable database: got %d, want 200", resp.StatusCode)
	}

	ro, err := sqlstore.Open(t.Context(), s.cfg.Storage, sqlstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ro.Close() })
	master, _, err := seal.LoadOrCreate(s.cfg.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := bff.New(t.Context(), s.cfg, bff.Deps{Store: ro, Master: master, Clock: s.env.Clock})
	if err != nil {
		t.Fatal(err)
	}
	node := httptest.NewServer(gw.Handler())
	t.Cleanup(node.Close)
	for path, want := range map[string]int{"/healthz": http.StatusOK, "/readyz": http.StatusServiceUnavailable} {
		resp, err := http.Get(node.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s on a read-only database: got %d, want %d", path, resp.StatusCode, want)
		}
	}
}
