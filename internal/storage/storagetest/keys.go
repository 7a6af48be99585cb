package storagetest

import (
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
