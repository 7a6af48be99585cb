package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/config"
)

func TestBFFRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bff.yaml")
	yaml := "client_id: app\nclient_secret: short\nroutes: [{path: api, upstream: http://127.0.0.1:7001/}]\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := cli(t, "", "bff", "--config", path)
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("got %v (%T), want *config.Error", err, err)
	}
	msg := err.Error()
	for _, want := range []string{path, "client_secret: too short", "routes[0].path: want a path prefix"} {
		if !strings.Contains(msg, want) {
			t.Errorf("got %q, want it to contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("got %q, want one line", msg)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("got %d files in the directory, want only the config (nothing opened or created)", len(entries))
	}
}

// The gateway starts without its provider (discovery waits for the first
// sign-in), answers /healthz, and stops cleanly when told to.
func TestBFFServesAndShutsDown(t *testing.T) {
	dir := t.TempDir()
	cfg := config.DefaultBFF()
	cfg.Listen = "127.0.0.1:0"
	cfg.Issuer = "http://127.0.0.1:1" // nobody listens there
	cfg.ClientID, cfg.ClientSecret = "app", strings.Repeat("s", 32)
	cfg.Storage = "sqlite://" + filepath.Join(dir, "bff.db")
	cfg.KeyFile = filepath.Join(dir, "bff.key")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serveBFF(ctx, &cfg, slog.New(slog.DiscardHandler), bffServing{ready: func(a string) { addr <- a }})
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("serveBFF: %v", err)
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("GET /healthz: got %d %q, want 200 ok", resp.StatusCode, body)
	}
	// Sign-in needs the provider: a clear 503, not a crash.
	resp, err = http.Get(base + "/bff/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /bff/login without a provider: got %d, want 503", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serveBFF after cancel: got %v, want nil", err)
	}
	if fi, err := os.Stat(cfg.KeyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: got %v, %v; want created with mode 0600", fi, err)
	}
}
