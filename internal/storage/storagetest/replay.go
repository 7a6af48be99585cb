package storagetest

import (
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

func testReplayRemember(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const key = "dpop:jti-1"
	exp := t0.Add(5 * time.Minute)

	ok, err := s.Remembered(ctx, key, t0)
	wantErr(t, "Remembered(unknown)", err, nil)
	if ok {
		t.Errorf("Remembered(unknown): got true, want false")
	}
	wantErr(t, "Remember", s.Remember(ctx, key, exp, t0), nil)
	wantErr(t, "Remember(again)", s.Remember(ctx, key, exp.Add(time.Hour), t0.Add(time.Minute)), storage.ErrConflict)
	wantErr(t, "Remember(other key)", s.Remember(ctx, "dpop:jti-2", exp, t0), nil)
	// The durable variant shares the keys and the rule.
	wantErr(t, "RememberDurably(same key)", s.RememberDurably(ctx, key, exp, t0), storage.ErrConflict)
	wantErr(t, "RememberDurably", s.RememberDurably(ctx, "revoked-at:jti-3", exp, t0), nil)
	if ok, err := s.Remembered(ctx, "revoked-at:jti-3", t0); err != nil || !ok {
		t.Errorf("Remembered(durable key): got %v, %v; want true", ok, err)
	}

	for _, tc := range []struct {
		now  time.Time
		want bool
	}{{t0, true}, {exp.Add(-time.Nanosecond), true}, {exp, false}, {exp.Add(time.Hour), false}} {
		ok, err := s.Remembered(ctx, key, tc.now)
		wantErr(t, "Remembered", err, nil)
		if ok != tc.want {
			t.Errorf("Remembered at %v: got %v, want %v", fmtTime(tc.now), ok, tc.want)
		}
	}
}

// Once its entry expired, a key may be remembered anew (DeleteExpired may not have run).
func testReplayExpired(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const key = "jti"
	exp := t0.Add(time.Minute)
	wantErr(t, "Remember", s.Remember(ctx, key, exp, t0), nil)
	wantErr(t, "Remember(1ns before expiry)", s.Remember(ctx, key, exp.Add(time.Hour), exp.Add(-time.Nanosecond)), storage.ErrConflict)

	exp2 := exp.Add(time.Hour)
	wantErr(t, "Remember(at expiry)", s.Remember(ctx, key, exp2, exp), nil)
	ok, err := s.Remembered(ctx, key, exp2.Add(-time.Nanosecond))
	wantErr(t, "Remembered", err, nil)
	if !ok {
		t.Errorf("Remembered with the new expiry: got false, want true")
	}
	wantErr(t, "Remember(again)", s.Remember(ctx, key, exp2, exp), storage.ErrConflict)
}

func testReplayConcurrent(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	// Once for a fresh key and once for a key whose entry has expired.
	wantErr(t, "Remember", s.Remember(ctx, "old", t0, t0.Add(-time.Minute)), nil)
	for _, key := range []string{"fresh", "old"} {
		errs := concurrently(s, concurrency, func(int) error {
			return s.Remember(ctx, key, t0.Add(time.Minute), t0)
		})
		oneWinner(t, "Remember("+key+")", errs, storage.ErrConflict)
	}
}
