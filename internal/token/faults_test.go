package token_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/server"
	"github.com/castellan-auth/castellan/internal/server/servertest"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
)

// faultyStore fails the writes that revocation makes, and nothing else,
// once broken is set.
type faultyStore struct {
	storage.Storage
	broken atomic.Bool
}

var errDisk = errors.New("disk I/O error")

func (s *faultyStore) RevokeGrant(ctx context.Context, id string, now time.Time) error {
	if s.broken.Load() {
		return errDisk
	}
	return s.Storage.RevokeGrant(ctx, id, now)
}

func (s *faultyStore) RememberDurably(ctx context.Context, key string, expiresAt, now time.Time) error {
	if s.broken.Load() {
		return errDisk
	}
	return s.Storage.RememberDurably(ctx, key, expiresAt, now)
}

// newFaultyEnv starts a provider as servertest.New does, over a store whose
// revocation writes can be made to fail.
func newFaultyEnv(t *testing.T) (*servertest.Env, *faultyStore) {
	t.Helper()
	cfg := servertest.WithClients(servertest.Config())
	cfg.Signing.Algorithms = []string{"ES256"}
	dir := t.TempDir()
	cfg.Storage = "sqlite://" + filepath.Join(dir, "castellan.db")
	cfg.KeyFile = filepath.Join(dir, "master.key")
	var h http.Handler = http.NotFoundHandler()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(hs.Close)
	cfg.Issuer, cfg.Listen = hs.URL, hs.Listener.Addr().String()
	ctx := context.Background()
	master, _, err := seal.LoadOrCreate(cfg.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(ctx, cfg.Storage, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fs := &faultyStore{Storage: st}
	clk := clock.NewFake(servertest.Start)
	srv, err := server.New(ctx, server.Deps{Config: cfg, Store: fs, Master: master, Clock: clk, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h = srv.Handler()
	return &servertest.Env{T: t, Server: srv, HTTP: hs, Store: fs, Clock: clk, Config: cfg, Master: master, URL: hs.URL}, fs
}

// TestRevocationWriteFailure: the client authenticates and the token is
// found, but storing the revocation fails → 5xx, never a 200 that tells the
// client its token is dead when it is not (ADVERSARIAL 56).
func TestRevocationWriteFailure(t *testing.T) {
	env, fs := newFaultyEnv(t)
	tk := env.CodeFlow(t, env.Agent("alice"), servertest.Authz{})
	fs.broken.Store(true)
	for _, c := range []struct{ name, token string }{
		{"adv56/refresh-token", tk.RefreshToken},
		{"adv56/access-token", tk.AccessToken},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := env.Post(t, "/revoke", url.Values{"token": {c.token}}, servertest.SPAClient)
			if r.Status != http.StatusInternalServerError || r.Code() != "server_error" {
				t.Fatalf("got %d %s, want 500 server_error", r.Status, r.Body)
			}
			if strings.Contains(r.Body, errDisk.Error()) || r.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("error answer leaks details or is cacheable: %v %s", r.Header, r.Body)
			}
		})
	}
	fs.broken.Store(false)
	// Nothing was revoked, and a retry succeeds.
	if !env.Active(t, tk.AccessToken) {
		t.Fatal("access token inactive after a failed revocation")
	}
	checkReply(t, env.Post(t, "/revoke", url.Values{"token": {tk.RefreshToken}}, servertest.SPAClient), 200, "")
	inactive(t, env, servertest.SvcClient, tk.AccessToken)
}
