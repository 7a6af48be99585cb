package storagetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

func testKeys(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	got, err := s.ListSigningKeys(ctx)
	wantErr(t, "ListSigningKeys(empty)", err, nil)
	if len(got) != 0 {
		t.Fatalf("ListSigningKeys(empty): got %d keys, want 0", len(got))
	}

	current := storage.SigningKey{KID: "k1", Algorithm: "ES256", Sealed: []byte("sealed-1"), CreatedAt: t0,
		ActivatesAt: t0, RetiresAt: t0.Add(30 * 24 * time.Hour), ExpiresAt: t0.Add(31 * 24 * time.Hour)}
	next := storage.SigningKey{KID: "k2", Algorithm: "RS256", Sealed: []byte("sealed-2"), CreatedAt: t0.Add(time.Nanosecond),
		ActivatesAt: t0.Add(24 * time.Hour)}
	for _, k := range []storage.SigningKey{current, next} {
		wantErr(t, "CreateSigningKey("+k.KID+")", s.CreateSigningKey(ctx, k), nil)
	}
	wantErr(t, "CreateSigningKey(same kid)", s.CreateSigningKey(ctx, current), storage.ErrConflict)
	kid := func(k storage.SigningKey) string { return k.KID }
	got, err = s.ListSigningKeys(ctx)
	wantErr(t, "ListSigningKeys", err, nil)
	wantEqual(t, "ListSigningKeys", sortBy(got, kid), []storage.SigningKey{current, next})

	// UpdateSigningKey sets the schedule and nothing else.
	up := storage.SigningKey{KID: "k2", Algorithm: "changed", Sealed: []byte("changed"), CreatedAt: t0.Add(time.Hour),
		ActivatesAt: t0.Add(2 * time.Hour), RetiresAt: t0.Add(3 * time.Hour), ExpiresAt: t0.Add(4 * time.Hour)}
	wantErr(t, "UpdateSigningKey", s.UpdateSigningKey(ctx, up), nil)
	next.ActivatesAt, next.RetiresAt, next.ExpiresAt = up.ActivatesAt, up.RetiresAt, up.ExpiresAt
	got, err = s.ListSigningKeys(ctx)
	wantErr(t, "ListSigningKeys", err, nil)
	wantEqual(t, "ListSigningKeys after update", sortBy(got, kid), []storage.SigningKey{current, next})
	up.KID = "nope"
	wantErr(t, "UpdateSigningKey(unknown)", s.UpdateSigningKey(ctx, up), storage.ErrNotFound)

	wantErr(t, "DeleteSigningKey", s.DeleteSigningKey(ctx, "k1"), nil)
	wantErr(t, "DeleteSigningKey(again)", s.DeleteSigningKey(ctx, "k1"), storage.ErrNotFound)
	got, err = s.ListSigningKeys(ctx)
	wantErr(t, "ListSigningKeys", err, nil)
	wantEqual(t, "ListSigningKeys after delete", got, []storage.SigningKey{next})
}

func newKey(kid, alg string, activates time.Time) storage.SigningKey {
	return storage.SigningKey{KID: kid, Algorithm: alg, Sealed: []byte("sealed-" + kid), CreatedAt: activates, ActivatesAt: activates}
}

// retiring is k with the schedule a rotation at activates gives it.
func retiring(k storage.SigningKey, activates time.Time) storage.SigningKey {
	k.RetiresAt, k.ExpiresAt = activates, activates.Add(time.Hour)
	return k
}

// ScheduleSigningKey lets an algorithm have one key that has not retired: the
// current one, or (during a rotation) the next one.
func testKeysSchedule(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	kid := func(k storage.SigningKey) string { return k.KID }
	wantKeys := func(what string, want ...storage.SigningKey) {
		t.Helper()
		got, err := s.ListSigningKeys(ctx)
		wantErr(t, "ListSigningKeys", err, nil)
		wantEqual(t, what, sortBy(got, kid), sortBy(want, kid))
	}
	const propagation = 2 * time.Minute

	e1 := newKey("e1", "ES256", t0)
	wantErr(t, "Schedule(first ES256)", s.ScheduleSigningKey(ctx, e1, nil, t0), nil)
	wantErr(t, "Schedule(second first ES256)", s.ScheduleSigningKey(ctx, newKey("e1b", "ES256", t0), nil, t0), storage.ErrConflict)
	r1 := newKey("r1", "RS256", t0)
	wantErr(t, "Schedule(first RS256)", s.ScheduleSigningKey(ctx, r1, nil, t0), nil)
	wantKeys("keys after the first ones", e1, r1)

	// Rotation: e2 is published now and signs after the propagation delay.
	now := t0.Add(90 * 24 * time.Hour)
	e2 := newKey("e2", "ES256", now.Add(propagation))
	e1r := retiring(e1, e2.ActivatesAt)
	wantErr(t, "Schedule(e2 retiring e1)", s.ScheduleSigningKey(ctx, e2, &e1r, now), nil)
	wantKeys("keys after the rotation", e1r, e2, r1)

	// While e2 waits, no second rotation: not of e1 again, not of e2.
	e3 := newKey("e3", "ES256", now.Add(2*propagation))
	wantErr(t, "Schedule(e3 retiring e1 again)", s.ScheduleSigningKey(ctx, e3, &e1r, now), storage.ErrConflict)
	e2r := retiring(e2, e3.ActivatesAt)
	wantErr(t, "Schedule(e3 retiring e2, e2 not signing yet)", s.ScheduleSigningKey(ctx, e3, &e2r, now.Add(propagation-time.Nanosecond)), storage.ErrConflict)
	wantErr(t, "Schedule(e3 without retiring)", s.ScheduleSigningKey(ctx, e3, nil, now.Add(propagation)), storage.ErrConflict)
	r1r := retiring(r1, e3.ActivatesAt)
	wantErr(t, "Schedule(e3 retiring a RS256 key)", s.ScheduleSigningKey(ctx, e3, &r1r, now.Add(propagation)), storage.ErrConflict)
	wantKeys("keys after refused rotations", e1r, e2, r1)

	// Once e1 has retired, e2 can be rotated in turn.
	wantErr(t, "Schedule(e3 retiring e2)", s.ScheduleSigningKey(ctx, e3, &e2r, now.Add(propagation)), nil)
	wantKeys("keys after the second rotation", e1r, e2r, e3, r1)

	ghost := newKey("ghost", "EdDSA", t0)
	wantErr(t, "Schedule(retiring an unknown key)", s.ScheduleSigningKey(ctx, newKey("d1", "EdDSA", t0), &ghost, t0), storage.ErrNotFound)
	wantKeys("keys after retiring an unknown key", e1r, e2r, e3, r1)
}

// A rotation whose new key cannot be stored leaves the old key signing.
func testKeysScheduleRolledBack(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	e1 := newKey("e1", "ES256", t0)
	wantErr(t, "Schedule(e1)", s.ScheduleSigningKey(ctx, e1, nil, t0), nil)
	r1 := newKey("r1", "RS256", t0)
	wantErr(t, "Schedule(r1)", s.ScheduleSigningKey(ctx, r1, nil, t0), nil)
	dup := newKey("r1", "ES256", t0.Add(time.Hour)) // kid taken
	e1r := retiring(e1, dup.ActivatesAt)
	wantErr(t, "Schedule(duplicate kid)", s.ScheduleSigningKey(ctx, dup, &e1r, t0), storage.ErrConflict)
	got, err := s.ListSigningKeys(ctx)
	wantErr(t, "ListSigningKeys", err, nil)
	wantEqual(t, "keys after a failed rotation", sortBy(got, func(k storage.SigningKey) string { return k.KID }), []storage.SigningKey{e1, r1})
}

// Nodes rotating the same key at once: exactly one new key.
func testKeysScheduleConcurrent(t *testing.T, open func() storage.Storage) {
	ctx := t.Context()
	nodes := []storage.Storage{open(), open()}
	for _, n := range nodes {
		race(concurrency, func(int) error { return n.Ping(ctx) }) // open the pools' connections
	}
	first := race(concurrency, func(i int) error {
		return nodes[i%2].ScheduleSigningKey(ctx, newKey(fmt.Sprintf("first-%d", i), "ES256", t0), nil, t0)
	})
	w := oneWinner(t, "Schedule(first key)", first, storage.ErrConflict)
	cur := newKey(fmt.Sprintf("first-%d", w), "ES256", t0)

	now := t0.Add(time.Hour)
	next := race(concurrency, func(i int) error {
		k := newKey(fmt.Sprintf("next-%d", i), "ES256", now.Add(time.Minute))
		r := retiring(cur, k.ActivatesAt)
		return nodes[i%2].ScheduleSigningKey(ctx, k, &r, now)
	})
	w = oneWinner(t, "Schedule(next key)", next, storage.ErrConflict)
	got, err := nodes[0].ListSigningKeys(ctx)
	wantErr(t, "ListSigningKeys", err, nil)
	kid := func(k storage.SigningKey) string { return k.KID }
	wantEqual(t, "keys after concurrent rotations", sortBy(got, kid),
		sortBy([]storage.SigningKey{retiring(cur, now.Add(time.Minute)), newKey(fmt.Sprintf("next-%d", w), "ES256", now.Add(time.Minute))}, kid))
}
