package storagetest

import (
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

func testThrottles(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const key = "account:alice"
	_, err := s.GetThrottle(ctx, key)
	wantErr(t, "GetThrottle(unknown)", err, storage.ErrNotFound)

	resetBefore := t0.Add(-time.Hour)
	for i := 1; i <= 3; i++ {
		now := t0.Add(time.Duration(i) * time.Second)
		st, err := s.AddFailure(ctx, key, now, resetBefore)
		wantErr(t, "AddFailure", err, nil)
		wantEqual(t, "AddFailure", st, storage.ThrottleState{Key: key, Failures: i, LastFailureAt: now})
	}
	st, err := s.GetThrottle(ctx, key)
	wantErr(t, "GetThrottle", err, nil)
	wantEqual(t, "GetThrottle", st, storage.ThrottleState{Key: key, Failures: 3, LastFailureAt: t0.Add(3 * time.Second)})

	// Keys count separately.
	st, err = s.AddFailure(ctx, "ip:192.0.2.1", t0, resetBefore)
	wantErr(t, "AddFailure(other key)", err, nil)
	if st.Failures != 1 {
		t.Errorf("AddFailure(other key) Failures: got %d, want 1", st.Failures)
	}

	wantErr(t, "ClearThrottle", s.ClearThrottle(ctx, key), nil)
	_, err = s.GetThrottle(ctx, key)
	wantErr(t, "GetThrottle(cleared)", err, storage.ErrNotFound)
	// A successful sign-in clears whether or not anything failed before.
	wantErr(t, "ClearThrottle(unknown)", s.ClearThrottle(ctx, key), nil)
	st, err = s.GetThrottle(ctx, "ip:192.0.2.1")
	wantErr(t, "GetThrottle(other key)", err, nil)
	if st.Failures != 1 {
		t.Errorf("GetThrottle(other key) Failures: got %d, want 1", st.Failures)
	}
}

func testThrottlesReset(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const key = "account:alice"
	for range 2 {
		if _, err := s.AddFailure(ctx, key, t0, t0.Add(-time.Hour)); err != nil {
			t.Fatalf("AddFailure: %v", err)
		}
	}
	// A failure exactly at resetBefore is not before it: the count goes on.
	now := t0.Add(15 * time.Minute)
	st, err := s.AddFailure(ctx, key, now, t0)
	wantErr(t, "AddFailure(last == resetBefore)", err, nil)
	wantEqual(t, "AddFailure(last == resetBefore)", st, storage.ThrottleState{Key: key, Failures: 3, LastFailureAt: now})

	// After a quiet period the count starts over from one.
	later := now.Add(time.Hour)
	st, err = s.AddFailure(ctx, key, later, now.Add(time.Nanosecond))
	wantErr(t, "AddFailure(after quiet period)", err, nil)
	wantEqual(t, "AddFailure(after quiet period)", st, storage.ThrottleState{Key: key, Failures: 1, LastFailureAt: later})
}

func testThrottlesConcurrent(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const key = "account:alice"
	counts := make([]int, concurrency)
	errs := concurrently(s, concurrency, func(i int) error {
		st, err := s.AddFailure(ctx, key, t0, t0.Add(-time.Hour))
		counts[i] = st.Failures
		return err
	})
	for _, err := range errs {
		wantErr(t, "AddFailure", err, nil)
	}
	// Each call saw its own count: 1 … n, none lost, none repeated.
	seen := make(map[int]bool)
	for _, n := range counts {
		if n < 1 || n > concurrency || seen[n] {
			t.Errorf("AddFailure counts: got %v, want each of 1…%d once", counts, concurrency)
			break
		}
		seen[n] = true
	}
	st, err := s.GetThrottle(ctx, key)
	wantErr(t, "GetThrottle", err, nil)
	if st.Failures != concurrency {
		t.Errorf("Failures after %d concurrent AddFailure: got %d, want %d", concurrency, st.Failures, concurrency)
	}
}
