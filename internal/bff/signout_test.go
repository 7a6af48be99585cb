package bff_test

import (
	"bytes"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/bff"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/server/servertest"
	"github.com/castellan-auth/castellan/internal/storage/storagetest"
)

// counter reads one sample of the provider's metrics (0 if absent); labels
// are name=value pairs the sample must carry.
func (s *stack) counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	families, err := s.env.Server.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					found = found || l.GetName() == labels[i] && l.GetValue() == labels[i+1]
				}
				if !found {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// waitFailedNotices waits until the provider's notifier has recorded n failed
// back-channel deliveries (each retry scheduled in storage). The notifier
// runs in the background, so this polls its counter; time itself only moves
// with the fake clock.
func (s *stack) waitFailedNotices(t *testing.T, n float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.counter(t, "castellan_logout_notice_attempts_total", "outcome", "failed") < n {
		if time.Now().After(deadline) {
			t.Fatalf("the provider did not record %v failed back-channel deliveries", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestProviderSignOutReachesBFFThatWasDown is the gateway's sign-out: a BFF
// with its default scope (no offline_access) is down — its back-channel URL
// refuses connections — for longer than the old retry window (five tries
// over about 15 s), the person signs out at the provider meanwhile, and the
// BFF comes back. The notice still arrives and ends the gateway's session,
// and the gateway's tokens are dead at the provider: its access token is
// inactive at introspection (already while the BFF is down) and its refresh
// token is invalid_grant.
func TestProviderSignOutReachesBFFThatWasDown(t *testing.T) {
	s := newStack(t, stackOptions{bff: func(c *bff.Config) { c.Scope = config.DefaultBFF().Scope + " api:read" }})
	b := s.browser("alice")
	b.login(t, "/")
	if resp, body := b.do(t, http.MethodGet, "/api/profile", true, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("API call before sign-out: %d %s", resp.StatusCode, body)
	}
	cookie := b.sessionCookie()
	access, refresh, err := s.gw.Tokens(t.Context(), cookie)
	if err != nil || refresh == "" {
		t.Fatalf("the gateway's session holds no refresh token without offline_access (%v)", err)
	}
	if !s.env.Active(t, access) {
		t.Fatal("the gateway's access token is inactive before sign-out")
	}

	// The BFF goes down: its address refuses connections.
	addr := s.gateway.Listener.Addr().String()
	s.gateway.Close()
	start := s.env.Clock.Now()
	s.env.SignOut(t, b.agent)
	if s.env.Active(t, access) {
		t.Error("the gateway's access token is active at introspection after the sign-out")
	}
	// Six failed deliveries, 1 s, 2 s, 4 s, 8 s and 16 s apart: the old
	// notifier gave up at the fifth.
	failed := 1.0
	s.waitFailedNotices(t, failed)
	for delay := time.Second; delay <= 16*time.Second; delay *= 2 {
		s.env.Clock.Advance(delay)
		s.env.Server.Notifier.Wake()
		failed++
		s.waitFailedNotices(t, failed)
	}
	if down := s.env.Clock.Now().Sub(start); down < 20*time.Second {
		t.Fatalf("the BFF was down for %v, want longer than the old window of about 15 s", down)
	}

	// The BFF comes back on the same address.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	delivered := make(chan int, 1)
	back := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/bff/backchannel-logout" {
			s.gw.Handler().ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		s.gw.Handler().ServeHTTP(rec, r)
		delivered <- rec.status
	})}
	go back.Serve(ln)
	t.Cleanup(func() { back.Close() })
	s.env.Clock.Advance(32 * time.Second)
	s.env.Server.Notifier.Wake()
	select {
	case status := <-delivered:
		if status != http.StatusOK {
			t.Fatalf("the BFF answered the logout token with %d", status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the logout notice never reached the BFF after it came back")
	}

	if code, _ := b.user(t); code != http.StatusUnauthorized {
		t.Errorf("GET /bff/user after the notice: %d, want 401 (the session is gone)", code)
	}
	if s.env.Active(t, access) {
		t.Error("the gateway's access token is active at introspection")
	}
	r := s.env.Refresh(t, servertest.ClientAuth{ID: bffClientID, Secret: bffSecret, Method: "client_secret_basic"}, refresh, "")
	if r.Status != http.StatusBadRequest || r.Code() != "invalid_grant" {
		t.Errorf("refresh with the gateway's refresh token: %d %s, want 400 invalid_grant", r.Status, r.Body)
	}
}

// lockedLog collects log lines from several goroutines.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWarnsRotationOnSharedStorage: a gateway whose sessions are in
// PostgreSQL (several nodes can share them) warns once, at the first
// refresh that shows the provider rotates its refresh tokens: two nodes
// refreshing one session at once then need the provider's refresh grace.
// On SQLite (one node), or without rotation, it does not.
func TestWarnsRotationOnSharedStorage(t *testing.T) {
	for _, tt := range []struct {
		name     string
		postgres bool
		rotate   bool
		warn     bool
	}{
		{"postgres/rotating", true, true, true},
		{"postgres/not-rotating", true, false, false},
		{"sqlite/rotating", false, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs lockedLog
			opt := stackOptions{
				log:    slog.New(slog.NewTextHandler(&logs, nil)),
				client: func(c *config.Client, _ string) { c.RotateRefreshTokens = tt.rotate },
			}
			if tt.postgres {
				dsn := storagetest.PostgresDSN(t)
				opt.bff = func(c *bff.Config) { c.Storage = dsn }
			}
			s := newStack(t, opt)
			b := s.browser("alice")
			b.login(t, "/")
			for range 2 {
				s.env.Clock.Advance(accessTTL)
				if resp, body := b.do(t, http.MethodGet, "/api/profile", true, nil); resp.StatusCode != http.StatusOK {
					t.Fatalf("API call after expiry: %d %s", resp.StatusCode, body)
				}
			}
			if got := s.refreshRequests(t); got != 2 {
				t.Fatalf("refresh requests: %v, want 2", got)
			}
			want := 0
			if tt.warn {
				want = 1
			}
			if warnings := strings.Count(logs.String(), "tokens.refresh_token_grace"); warnings != want {
				t.Errorf("got %d warnings, want %d\n%s", warnings, want, logs.String())
			}
		})
	}
}
