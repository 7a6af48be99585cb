package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/config"
)

// freeAddr returns a loopback address nobody listens on at the moment.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func fetch(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsListen: with metrics_listen, /metrics is served on that
// listener only, not on the public one; without it, on the public one as
// before.
func TestMetricsListen(t *testing.T) {
	metricsAddr := freeAddr(t)
	public := startProvider(t, defaultLimits, func(c *config.Config) { c.MetricsListen = metricsAddr })
	if status, _ := fetch(t, "http://"+public+"/metrics"); status != http.StatusNotFound {
		t.Errorf("GET /metrics on the public listener with metrics_listen: got %d, want 404", status)
	}
	if status, body := fetch(t, "http://"+metricsAddr+"/metrics"); status != http.StatusOK || !strings.Contains(body, "castellan_") {
		t.Errorf("GET /metrics on metrics_listen: got %d, want 200 with castellan_ metrics", status)
	}
	if status, _ := fetch(t, "http://"+metricsAddr+"/healthz"); status != http.StatusNotFound {
		t.Errorf("GET /healthz on metrics_listen: got %d, want 404 (metrics only)", status)
	}

	compat := startProvider(t, defaultLimits, nil)
	fetch(t, "http://"+compat+"/healthz") // something to count
	if status, body := fetch(t, "http://"+compat+"/metrics"); status != http.StatusOK || !strings.Contains(body, "castellan_") {
		t.Errorf("GET /metrics on the public listener without metrics_listen: got %d, want 200", status)
	}
}
