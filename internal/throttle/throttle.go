// Package throttle slows down password guessing: failed sign-ins are counted
// per account and per client address in storage (so every node sees them), and
// past a threshold each further attempt must wait a delay that doubles with
// every failure, up to a ceiling. It delays instead of locking out, so an
// attacker cannot lock a person out of their own account for long.
package throttle

import (
	"context"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/storage"
)

// Policy sets the thresholds and delays.
type Policy struct {
	AccountFailures int
	AddressFailures int
	BaseDelay       time.Duration
	MaxDelay        time.Duration
	ResetAfter      time.Duration
}

// Key is one counter: an account or an address.
type Key struct {
	name      string
	threshold int
}

// Limiter checks and counts failures.
type Limiter struct {
	store  storage.Throttles
	clock  clock.Clock
	policy Policy
}

// New returns a limiter.
func New(store storage.Throttles, clk clock.Clock, p Policy) *Limiter {
	return &Limiter{store: store, clock: clk, policy: p}
}

// Account is the counter of one username (case-insensitive).
func (l *Limiter) Account(username string) Key {
	return Key{name: "account:" + strings.ToLower(strings.TrimSpace(username)), threshold: l.policy.AccountFailures}
}

// Address is the counter of one client address.
func (l *Limiter) Address(ip string) Key {
	return Key{name: "address:" + ip, threshold: l.policy.AddressFailures}
}

// delay is how long to wait after failures, given a threshold.
func (l *Limiter) delay(failures, threshold int) time.Duration {
	if failures < threshold {
		return 0
	}
	n := failures - threshold
	if n > 30 {
		return l.policy.MaxDelay
	}
	d := time.Duration(float64(l.policy.BaseDelay) * math.Pow(2, float64(n)))
	if d > l.policy.MaxDelay || d <= 0 {
		return l.policy.MaxDelay
	}
	return d
}

// Wait returns how long the caller must still wait before trying again (0: go
// ahead), the longest over keys.
func (l *Limiter) Wait(ctx context.Context, keys ...Key) (time.Duration, error) {
	now := l.clock.Now()
	var longest time.Duration
	for _, k := range keys {
		st, err := l.store.GetThrottle(ctx, k.name)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if now.Sub(st.LastFailureAt) >= l.policy.ResetAfter {
			continue
		}
		if wait := st.LastFailureAt.Add(l.delay(st.Failures, k.threshold)).Sub(now); wait > longest {
			longest = wait
		}
	}
	return longest, nil
}

// Fail counts a failure against every key and returns the wait now imposed.
func (l *Limiter) Fail(ctx context.Context, keys ...Key) (time.Duration, error) {
	now := l.clock.Now()
	var longest time.Duration
	for _, k := range keys {
		st, err := l.store.AddFailure(ctx, k.name, now, now.Add(-l.policy.ResetAfter))
		if err != nil {
			return 0, err
		}
		if d := l.delay(st.Failures, k.threshold); d > longest {
			longest = d
		}
	}
	return longest, nil
}

// Succeed forgets the failures of an account after a successful sign-in. The
// address counter stays: one account's success must not clear guessing at others.
func (l *Limiter) Succeed(ctx context.Context, account Key) error {
	return l.store.ClearThrottle(ctx, account.name)
}
