package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/config"
)

// testLimits are short limits, so that a test sees a slow client cut off
// quickly; the test itself never measures how long that takes.
var testLimits = serverLimits{
	ReadHeaderTimeout: 500 * time.Millisecond,
	ReadTimeout:       500 * time.Millisecond,
	WriteTimeout:      time.Second,
	IdleTimeout:       time.Second,
	MaxHeaderBytes:    8 << 10,
}

// startBFF runs castellan bff (without a provider) and returns its address.
func startBFF(t *testing.T, limits serverLimits) string {
	t.Helper()
	dir := t.TempDir()
	cfg := config.DefaultBFF()
	cfg.Listen = "127.0.0.1:0"
	cfg.Issuer = "http://127.0.0.1:1" // nobody listens there
	cfg.ClientID, cfg.ClientSecret = "app", strings.Repeat("s", 32)
	cfg.Storage = "sqlite://" + filepath.Join(dir, "bff.db")
	cfg.KeyFile = filepath.Join(dir, "bff.key")
	return start(t, func(ctx context.Context, ready func(string)) error {
		return serveBFF(ctx, &cfg, slog.New(slog.DiscardHandler), bffServing{ready: ready, limits: limits})
	})
}

// startProvider runs castellan serve and returns its address.
func startProvider(t *testing.T, limits serverLimits, adjust func(*config.Config)) string {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.Storage = "sqlite://" + filepath.Join(dir, "castellan.db")
	cfg.KeyFile = filepath.Join(dir, "master.key")
	cfg.Passwords.MemoryKiB, cfg.Passwords.Iterations, cfg.Passwords.MemoryLimitMiB = 1024, 1, 64
	if adjust != nil {
		adjust(&cfg)
	}
	return start(t, func(ctx context.Context, ready func(string)) error {
		return serve(ctx, &cfg, slog.New(slog.DiscardHandler), serving{ready: ready, limits: limits})
	})
}

// start runs a server until the test ends and returns its address.
func start(t *testing.T, run func(ctx context.Context, ready func(string)) error) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(a string) { addr <- a }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server after cancel: %v", err)
		}
	})
	select {
	case a := <-addr:
		return a
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
		return ""
	}
}

// TestSlowBodyCutOff: a client that sends its headers and then its body a
// trickle at a time (or not at all) is cut off by the server, on the BFF's
// unauthenticated back-channel endpoint as on the provider's token endpoint.
// The test waits for the server to close the connection; a generous guard
// of its own only keeps a server that never does from hanging the test.
func TestSlowBodyCutOff(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		start      func(t *testing.T) string
	}{
		{"bff/backchannel-logout", "/bff/backchannel-logout", func(t *testing.T) string { return startBFF(t, testLimits) }},
		{"bff/spa", "/", func(t *testing.T) string { return startBFF(t, testLimits) }},
		{"bff/api-route-without-session", "/api/x", func(t *testing.T) string { return startBFF(t, testLimits) }},
		{"serve/token", "/token", func(t *testing.T) string { return startProvider(t, testLimits, nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.start(t)
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_, err = io.WriteString(conn, "POST "+tc.path+" HTTP/1.1\r\nHost: "+addr+"\r\n"+
				"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 4096\r\n\r\nlogout_token=")
			if err != nil {
				t.Fatal(err)
			}
			// The rest of the body never comes. The server must close the
			// connection (with or without an answer) on its own.
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, err = io.Copy(io.Discard, conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server kept a connection with an unfinished body open")
			}
		})
	}
}

// TestOversizeBodyRefused: a body larger than any of the BFF's own endpoints
// takes is refused with 413 before it is read. (The provider refuses one in
// the format of the endpoint: invalid_request at /token, an error page at
// /authorize.)
func TestOversizeBodyRefused(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		start      func(t *testing.T) string
	}{
		{"bff/backchannel-logout", "/bff/backchannel-logout", func(t *testing.T) string { return startBFF(t, defaultLimits) }},
		{"bff/logout", "/bff/logout", func(t *testing.T) string { return startBFF(t, defaultLimits) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.start(t)
			body := "logout_token=" + strings.Repeat("a", 1<<20)
			req, _ := http.NewRequest(http.MethodPost, "http://"+addr+tc.path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-CSRF", "1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("POST %s with 1 MiB: got %d, want 413", tc.path, resp.StatusCode)
			}
		})
	}
}

// TestSlowHeadersCutOff: the same for a client that never finishes its
// headers.
func TestSlowHeadersCutOff(t *testing.T) {
	addr := startBFF(t, testLimits)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: "+addr+"\r\nX-Slow: ")
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = bufio.NewReader(conn).ReadString(0)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept a connection with unfinished headers open")
	}
}
