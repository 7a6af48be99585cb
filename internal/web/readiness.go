package web

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/castellan-auth/castellan/internal/clock"
)

// readinessInterval is how long one probe's result answers /readyz: a
// balancer probing every few seconds gets a fresh answer, and a flood of
// /readyz costs at most one write per interval.
const readinessInterval = time.Second

// readinessTimeout bounds one probe: a database that takes longer to
// commit a tiny write is not ready for traffic either.
const readinessTimeout = 2 * time.Second

// WriteProber commits one small write for node (storage.WriteProbe).
type WriteProber interface {
	ProbeWrite(ctx context.Context, node string, now time.Time) error
}

// Readiness answers GET /readyz: whether the node can take traffic, which
// /healthz (liveness: the process answers and storage answers reads)
// cannot tell. A full disk or a read-only database still answers reads
// while every sign-in and token request fails; Readiness commits a tiny
// write, and answers 503 when it fails.
type Readiness struct {
	store WriteProber
	clock clock.Clock
	log   *slog.Logger
	// node names this node's probe row.
	node string

	mu    sync.Mutex
	at    time.Time // when the last probe ran
	err   error     // and what it found
	valid bool
}

// NewReadiness probes store, logging a failed probe to log.
func NewReadiness(store WriteProber, clk clock.Clock, log *slog.Logger) *Readiness {
	node, err := os.Hostname()
	if err != nil || node == "" {
		node = "castellan"
	}
	return &Readiness{store: store, clock: clk, log: log, node: node}
}

// check probes storage, or answers with the last probe if it is recent.
// Callers arriving during a probe wait for it and share its answer.
func (rd *Readiness) check(ctx context.Context) error {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	now := rd.clock.Now()
	if rd.valid && !now.Before(rd.at) && now.Sub(rd.at) < readinessInterval {
		return rd.err
	}
	// The probe's answer serves others too: a caller that gives up does
	// not cut it short.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readinessTimeout)
	defer cancel()
	rd.err = rd.store.ProbeWrite(pctx, rd.node, now)
	rd.at, rd.valid = now, true
	if rd.err != nil {
		rd.log.Error("readiness: storage does not take writes", "err", rd.err)
	}
	return rd.err
}

// ServeHTTP answers 200 when a write commits, else 503.
func (rd *Readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if err := rd.check(r.Context()); err != nil {
		http.Error(w, "storage does not take writes", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}
