package bff_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/castellan-auth/castellan/internal/bff"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
	"github.com/castellan-auth/castellan/internal/storage/storagetest"
)

// Two gateway nodes on one PostgreSQL with one key file serve the same
// sessions: signed in at one, known at the other, signed out everywhere.
func TestNodesShareSessionsOnPostgres(t *testing.T) {
	dsn := storagetest.PostgresDSN(t)
	s := newStack(t, stackOptions{bff: func(c *bff.Config) { c.Storage = dsn }})

	master, _, err := seal.LoadOrCreate(s.cfg.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlstore.Open(t.Context(), dsn, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	other, err := bff.New(t.Context(), s.cfg, bff.Deps{Store: store, Master: master, Clock: s.env.Clock})
	if err != nil {
		t.Fatal(err)
	}
	otherHS := httptest.NewServer(other.Handler())
	t.Cleanup(otherHS.Close)

	b := s.browser("alice")
	b.login(t, "/")
	// The browser's cookie jar sends the cookie to both nodes (same host).
	call := func(base, method, path string) int {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		req.Header.Set("X-CSRF", "1")
		resp, err := b.agent.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := call(otherHS.URL, http.MethodGet, "/bff/user"); got != http.StatusOK {
		t.Fatalf("GET /bff/user at the other node: got %d, want 200", got)
	}
	s.env.Clock.Advance(accessTTL)
	if got := call(otherHS.URL, http.MethodGet, "/api/profile"); got != http.StatusOK {
		t.Fatalf("GET /api/profile at the other node after expiry: got %d, want 200", got)
	}
	if got := call(s.URL, http.MethodGet, "/api/profile"); got != http.StatusOK {
		t.Fatalf("GET /api/profile at the first node: got %d, want 200", got)
	}
	if got := s.refreshRequests(t); got != 1 {
		t.Errorf("refresh requests: got %v, want 1 (the first node uses the token the other stored)", got)
	}
	cookie := b.sessionCookie()
	if got := call(otherHS.URL, http.MethodPost, "/bff/logout"); got != http.StatusOK {
		t.Fatalf("POST /bff/logout at the other node: got %d, want 200", got)
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/bff/user", nil)
	req.Header.Set("X-CSRF", "1")
	req.AddCookie(&http.Cookie{Name: "castellan-bff", Value: cookie})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /bff/user at the first node after logout at the other: got %d, want 401", resp.StatusCode)
	}
}
