package identity

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"time"
)

// ErrBusy means every hashing slot stayed taken for the whole queue timeout:
// the server is overloaded with sign-ins and says so (503 + Retry-After) instead
// of queueing without bound.
var ErrBusy = errors.New("password hashing is saturated")

// Hasher runs argon2id under a bounded pool. Each hash takes Params.MemoryKiB,
// so the number of slots is at most the memory budget divided by that: a flood
// of sign-ins can use no more memory than configured, and waits at most the
// queue timeout for a slot. It is also at most the cores the hashes may use,
// all but one (GOMAXPROCS − 1, ÷ Parallelism, at least one slot): more slots
// add no throughput, only memory and goroutines that crowd the cores, and the
// core left over keeps token, authorization and introspection requests
// answered quickly during a sign-in flood.
type Hasher struct {
	params       Params
	slots        chan struct{}
	queueTimeout time.Duration
	// dummy is a hash of nothing, verified for unknown users so that a wrong
	// username costs as much time as a wrong password.
	dummy string

	running, peak atomic.Int64
}

// NewHasher returns a hasher that keeps concurrent hashes within memoryLimitKiB.
func NewHasher(p Params, memoryLimitKiB int, queueTimeout time.Duration) *Hasher {
	n := min(memoryLimitKiB/int(p.MemoryKiB), (runtime.GOMAXPROCS(0)-1)/max(int(p.Parallelism), 1))
	if n < 1 {
		n = 1
	}
	return &Hasher{
		params:       p,
		slots:        make(chan struct{}, n),
		queueTimeout: queueTimeout,
		dummy:        dummyPHC(p),
	}
}

// Slots is how many hashes may run at once.
func (h *Hasher) Slots() int { return cap(h.slots) }

// Params are the parameters for new hashes.
func (h *Hasher) Params() Params { return h.params }

// Peak is the most hashes that ran at once since start (never above Slots).
func (h *Hasher) Peak() int { return int(h.peak.Load()) }

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		h.started()
		return nil
	default:
	}
	t := time.NewTimer(h.queueTimeout)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		h.started()
		return nil
	case <-t.C:
		return ErrBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) started() {
	n := h.running.Add(1)
	for {
		p := h.peak.Load()
		if n <= p || h.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (h *Hasher) release() {
	h.running.Add(-1)
	<-h.slots
}

// Hash hashes a new password.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return HashPassword(password, h.params), nil
}

// Verify checks password against encoded (an argon2id PHC string). An empty
// encoded verifies against a dummy hash and always fails, at the same cost.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, stale bool, err error) {
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	if encoded == "" {
		verifyPassword(password, h.dummy, h.params)
		return false, false, nil
	}
	return verifyPassword(password, encoded, h.params)
}
