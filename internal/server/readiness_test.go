package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/castellan-auth/castellan/internal/server"
	"github.com/castellan-auth/castellan/internal/server/servertest"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
	"github.com/castellan-auth/castellan/internal/web"
)

// syncBuffer is a log destination that several request goroutines share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// errorLines returns the error lines logged since the last call.
func (b *syncBuffer) errorLines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(b.buf.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["level"] == "ERROR" {
			out = append(out, m)
		}
	}
	b.buf.Reset()
	return out
}

func get(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestReadyzFailsWhenWritesFail: a node whose database answers reads but
// takes no writes (here the same SQLite file opened read-only; a full disk
// looks the same to a request) is alive (/healthz 200) but not ready
// (/readyz 503), and the same storage error from request after request is
// logged once, then once per interval with the count of lines left out.
func TestReadyzFailsWhenWritesFail(t *testing.T) {
	// A provider that writes: alice signs in to the spa client.
	env := servertest.New(t, servertest.Options{Config: servertest.WithClients(servertest.Config())})
	tokens := env.CodeFlow(t, env.Agent("alice"), servertest.Authz{})
	if got := get(t, env.URL+"/readyz"); got != http.StatusOK {
		t.Fatalf("GET /readyz on a writable database: got %d, want 200", got)
	}

	// The same database, opened read-only by a second node. Its config
	// declares nothing, so starting writes nothing.
	ctx := context.Background()
	ro, err := sqlstore.Open(ctx, env.Config.Storage, sqlstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ro.Close() })
	cfg := servertest.Config()
	cfg.Users = nil
	cfg.Issuer, cfg.Storage, cfg.KeyFile = env.Config.Issuer, env.Config.Storage, env.Config.KeyFile
	var logs syncBuffer
	log := slog.New(web.LimitRepeatedErrors(slog.NewJSONHandler(&logs, nil), web.RepeatedErrorInterval, env.Clock))
	srv, err := server.New(ctx, server.Deps{Config: cfg, Store: ro, Master: env.Master, Clock: env.Clock, Log: log})
	if err != nil {
		t.Fatalf("start on the read-only database: %v", err)
	}
	node := httptest.NewServer(srv.Handler())
	t.Cleanup(node.Close)

	if got := get(t, node.URL+"/healthz"); got != http.StatusOK {
		t.Errorf("GET /healthz: got %d, want 200 (the process and its reads are fine)", got)
	}
	if got := get(t, node.URL+"/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("GET /readyz: got %d, want 503", got)
	}
	logs.errorLines(t)

	// Every refresh fails on the write of its rotation.
	const n = 50
	refresh := func() int {
		resp, err := http.PostForm(node.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens.RefreshToken}, "client_id": {"spa"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range n {
		if got := refresh(); got != http.StatusInternalServerError {
			t.Fatalf("refresh on the read-only database: got %d, want 500", got)
		}
	}
	first := logs.errorLines(t)
	// One line from the token endpoint with the storage error, one access
	// log line for the 500.
	if len(first) != 2 {
		t.Fatalf("%d failing refreshes logged %d error lines, want 2: %v", n, len(first), first)
	}
	env.Clock.Advance(web.RepeatedErrorInterval)
	refresh()
	again := logs.errorLines(t)
	if len(again) != 2 {
		t.Fatalf("after the interval: %d error lines, want 2: %v", len(again), again)
	}
	for _, l := range again {
		if l["suppressed"] != float64(n-1) {
			t.Errorf("line %v: suppressed %v, want %d", l["msg"], l["suppressed"], n-1)
		}
	}
}
