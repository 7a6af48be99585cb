package web_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
	"github.com/castellan-auth/castellan/internal/web"
)

// countedProbes counts the probes that reach a real store.
type countedProbes struct {
	*sqlstore.Store
	n atomic.Int32
}

func (c *countedProbes) ProbeWrite(ctx context.Context, node string, now time.Time) error {
	c.n.Add(1)
	return c.Store.ProbeWrite(ctx, node, now)
}

// TestReadyzProbesOncePerInterval: /readyz is unauthenticated, so a flood of
// it must not become a flood of writes: one probe answers every request of
// its interval.
func TestReadyzProbesOncePerInterval(t *testing.T) {
	store, err := sqlstore.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "c.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	probes := &countedProbes{Store: store}
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	h := web.NewReadiness(probes, clk, slog.New(slog.DiscardHandler))

	flood := func() {
		var wg sync.WaitGroup
		for range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
				if rec.Code != http.StatusOK {
					t.Errorf("GET /readyz: got %d, want 200", rec.Code)
				}
			}()
		}
		wg.Wait()
	}
	flood()
	if n := probes.n.Load(); n != 1 {
		t.Errorf("100 requests in one interval: %d probes, want 1", n)
	}
	clk.Advance(time.Second)
	flood()
	if n := probes.n.Load(); n != 2 {
		t.Errorf("after the interval: %d probes in all, want 2", n)
	}
}
