package storagetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

func testGrantsCreateGet(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	f := setup(t, s, "a")
	g := newGrant("g", f.client.ID, "a", f.session.SID)
	rt := newRefresh("g", "rt", 0)
	mustCreateGrant(t, s, g, &rt)

	wantEqual(t, "GetGrant", mustGetGrant(t, s, "g"), g)
	r, rg := mustGetRefresh(t, s, rt.Hash)
	wantEqual(t, "GetRefreshToken", r, rt)
	wantEqual(t, "GetRefreshToken grant", rg, g)

	// Without a refresh token, and with the optional fields empty.
	bare := storage.Grant{ID: "bare", ClientID: f.client.ID, UserID: "a", Scopes: []string{"openid"}, AuthTime: t0, CreatedAt: t0}
	mustCreateGrant(t, s, bare, nil)
	wantEqual(t, "GetGrant(bare)", mustGetGrant(t, s, "bare"), bare)
	if !mustGetGrant(t, s, "bare").Active(t0.Add(100 * 365 * 24 * time.Hour)) {
		t.Errorf("grant without ExpiresAt: not active, want active forever")
	}

	_, err := s.GetGrant(ctx, "nope")
	wantErr(t, "GetGrant(unknown)", err, storage.ErrNotFound)
	_, _, err = s.GetRefreshToken(ctx, h("nope"))
	wantErr(t, "GetRefreshToken(unknown)", err, storage.ErrNotFound)
	wantErr(t, "CreateGrant(same id)", s.CreateGrant(ctx, g, nil), storage.ErrConflict)
	if err := s.CreateGrant(ctx, newGrant("g-nouser", f.client.ID, "nobody", ""), nil); err == nil {
		t.Errorf("CreateGrant(unknown user): got nil error, want one")
	}
}

// CreateGrant stores the grant and its first refresh token together or not at all.
func testGrantsCreateAtomic(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	f := setup(t, s, "a")
	g := newGrant("g", f.client.ID, "a", f.session.SID)
	rt := newRefresh("g", "rt", 0)
	mustCreateGrant(t, s, g, &rt)

	// The refresh token's hash is taken: the new grant must not stay behind.
	g2 := newGrant("g2", f.client.ID, "a", f.session.SID)
	rt2 := rt
	rt2.GrantID = "g2"
	wantErr(t, "CreateGrant(duplicate refresh hash)", s.CreateGrant(ctx, g2, &rt2), storage.ErrConflict)
	_, err := s.GetGrant(ctx, "g2")
	wantErr(t, "GetGrant(g2)", err, storage.ErrNotFound)

	// A refresh token naming another grant is refused.
	rt3 := newRefresh("g", "rt3", 0)
	if err := s.CreateGrant(ctx, newGrant("g3", f.client.ID, "a", f.session.SID), &rt3); err == nil {
		t.Errorf("CreateGrant(refresh token of another grant): got nil error, want one")
	}
	_, err = s.GetGrant(ctx, "g3")
	wantErr(t, "GetGrant(g3)", err, storage.ErrNotFound)
}

func testGrantsRevoke(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	f := setup(t, s, "a")
	mustCreateGrant(t, s, newGrant("g", f.client.ID, "a", f.session.SID), nil)

	now := t0.Add(time.Hour)
	wantErr(t, "RevokeGrant", s.RevokeGrant(ctx, "g", now), nil)
	wantRevokedAt(t, s, "g", now)
	if mustGetGrant(t, s, "g").Active(now) {
		t.Errorf("revoked grant: Active, want not")
	}
	// Revoking twice is no error and keeps the first time.
	wantErr(t, "RevokeGrant(again)", s.RevokeGrant(ctx, "g", now.Add(time.Hour)), nil)
	wantRevokedAt(t, s, "g", now)
	wantErr(t, "RevokeGrant(unknown)", s.RevokeGrant(ctx, "nope", now), nil)
}

func testGrantsListByUser(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	a := setup(t, s, "a")
	b := setup(t, s, "b")
	g1 := newGrant("g1", a.client.ID, "a", a.session.SID)
	g2 := newGrant("g2", b.client.ID, "a", "")
	g2.SessionBound, g2.CreatedAt, g2.RevokedAt = false, t0.Add(time.Hour), t0.Add(2*time.Hour)
	for _, g := range []storage.Grant{g1, g2, newGrant("g3", b.client.ID, "b", b.session.SID)} {
		mustCreateGrant(t, s, g, nil)
	}
	got, err := s.ListGrantsByUser(ctx, "a")
	wantErr(t, "ListGrantsByUser", err, nil)
	id := func(g storage.Grant) string { return g.ID }
	wantEqual(t, "ListGrantsByUser", sortBy(got, id), []storage.Grant{g1, g2})

	got, err = s.ListGrantsByUser(ctx, "nobody")
	wantErr(t, "ListGrantsByUser(unknown)", err, nil)
	if len(got) != 0 {
		t.Errorf("ListGrantsByUser(unknown): got %d grants, want 0", len(got))
	}
}

// refreshFixture is a grant with its first refresh token.
func refreshFixture(t *testing.T, s storage.Storage) (storage.Grant, storage.RefreshToken) {
	t.Helper()
	f := setup(t, s, "a")
	g := newGrant("g", f.client.ID, "a", f.session.SID)
	rt := newRefresh("g", "rt0", 0)
	mustCreateGrant(t, s, g, &rt)
	return g, rt
}

// child is the next member of rt's family.
func child(rt storage.RefreshToken, name string) storage.RefreshToken {
	c := newRefresh(rt.GrantID, name, rt.Generation+1)
	c.CreatedAt = rt.CreatedAt.Add(time.Hour + time.Nanosecond)
	c.ExpiresAt = c.CreatedAt.Add(24 * time.Hour)
	return c
}

// decision returns a RefreshFunc that records what it saw and answers d.
func decision(seenR *storage.RefreshToken, seenG *storage.Grant, d storage.RefreshDecision) storage.RefreshFunc {
	return func(r storage.RefreshToken, g storage.Grant, _ *storage.Session) storage.RefreshDecision {
		*seenR, *seenG = r, g
		return d
	}
}

// The RefreshFunc gets the session the grant names, read in its transaction,
// and nil once that session is gone or for a grant that names none.
func testRefreshSeesSession(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	f := setup(t, s, "a")
	bound := newGrant("bound", f.client.ID, "a", f.session.SID)
	boundRT := newRefresh("bound", "rt-bound", 0)
	mustCreateGrant(t, s, bound, &boundRT)
	offline := newGrant("offline", f.client.ID, "a", "")
	offline.SessionBound = false
	offlineRT := newRefresh("offline", "rt-offline", 0)
	mustCreateGrant(t, s, offline, &offlineRT)

	seen := func(name string, hash []byte) *storage.Session {
		t.Helper()
		var got *storage.Session
		_, _, _, err := s.UseRefreshToken(ctx, hash, func(_ storage.RefreshToken, _ storage.Grant, x *storage.Session) storage.RefreshDecision {
			got = x
			return storage.RefreshDecision{Action: storage.RefreshReject, Err: errSeen}
		})
		wantErr(t, "UseRefreshToken("+name+")", err, errSeen)
		return got
	}
	if got := seen("session-bound", boundRT.Hash); got == nil {
		t.Errorf("session-bound grant: RefreshFunc got no session, want %q", f.session.SID)
	} else {
		wantEqual(t, "session seen by RefreshFunc", *got, f.session)
	}
	if got := seen("no session", offlineRT.Hash); got != nil {
		t.Errorf("grant naming no session: RefreshFunc got session %q, want nil", got.SID)
	}
	if _, err := s.DeleteSession(ctx, f.session.IDHash, t0.Add(time.Hour)); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if got := seen("session deleted", boundRT.Hash); got != nil {
		t.Errorf("session deleted: RefreshFunc got session %q, want nil", got.SID)
	}
}

var errSeen = errors.New("seen")

// wantUnchanged checks that a token and its grant are still as given.
func wantUnchanged(t *testing.T, s storage.Storage, rt storage.RefreshToken, g storage.Grant) {
	t.Helper()
	r, rg := mustGetRefresh(t, s, rt.Hash)
	wantEqual(t, "refresh token", r, rt)
	wantEqual(t, "grant", rg, g)
}

func testRefreshUnknown(t *testing.T, s storage.Storage) {
	refreshFixture(t, s)
	_, _, _, err := s.UseRefreshToken(t.Context(), h("nope"), func(storage.RefreshToken, storage.Grant, *storage.Session) storage.RefreshDecision {
		t.Errorf("RefreshFunc called for an unknown token, want not called")
		return storage.RefreshDecision{Action: storage.RefreshKeep}
	})
	wantErr(t, "UseRefreshToken(unknown)", err, storage.ErrNotFound)
}

func testRefreshRotate(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	g, rt := refreshFixture(t, s)
	next := child(rt, "rt1")

	var seenR storage.RefreshToken
	var seenG storage.Grant
	r, rg, ru, err := s.UseRefreshToken(ctx, rt.Hash, decision(&seenR, &seenG, storage.RefreshDecision{Action: storage.RefreshRotate, Next: &next}))
	wantErr(t, "UseRefreshToken(rotate)", err, nil)
	wantEqual(t, "token seen by RefreshFunc", seenR, rt)
	wantEqual(t, "grant seen by RefreshFunc", seenG, g)
	// It returns the token as presented, before rotation, with its grant and user.
	wantEqual(t, "UseRefreshToken token", r, rt)
	wantEqual(t, "UseRefreshToken grant", rg, g)
	u, err := s.GetUser(ctx, g.UserID)
	wantErr(t, "GetUser", err, nil)
	wantEqual(t, "UseRefreshToken user", ru, u)

	parent, _ := mustGetRefresh(t, s, rt.Hash)
	if parent.UsedAt.IsZero() {
		t.Errorf("parent UsedAt after rotation: got zero, want set")
	}
	wantEqual(t, "parent ChildHash", parent.ChildHash, next.Hash)
	gotNext, gotG := mustGetRefresh(t, s, next.Hash)
	wantEqual(t, "child", gotNext, next)
	wantEqual(t, "child's grant", gotG, g)

	// The child rotates in turn.
	next2 := child(next, "rt2")
	_, _, _, err = s.UseRefreshToken(ctx, next.Hash, decision(&seenR, &seenG, storage.RefreshDecision{Action: storage.RefreshRotate, Next: &next2}))
	wantErr(t, "UseRefreshToken(rotate child)", err, nil)
	gotNext2, _ := mustGetRefresh(t, s, next2.Hash)
	if gotNext2.Generation != 2 {
		t.Errorf("grandchild Generation: got %d, want 2", gotNext2.Generation)
	}
}

// A rotation that cannot be stored leaves the parent unused.
func testRefreshRotateFailure(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	g, rt := refreshFixture(t, s)
	other := newGrant("g-other", g.ClientID, g.UserID, g.SID)
	otherRT := newRefresh("g-other", "rt-other", 0)
	mustCreateGrant(t, s, other, &otherRT)

	wrongGrant := child(rt, "rt1")
	wrongGrant.GrantID = "g-other"
	taken := child(rt, "rt1")
	taken.Hash = otherRT.Hash
	for _, tc := range []struct {
		name string
		next *storage.RefreshToken
		want error // nil: any error
	}{
		{"no child", nil, nil},
		{"child of another grant", &wrongGrant, nil},
		{"child hash taken", &taken, storage.ErrConflict},
	} {
		_, _, _, err := s.UseRefreshToken(ctx, rt.Hash, func(storage.RefreshToken, storage.Grant, *storage.Session) storage.RefreshDecision {
			return storage.RefreshDecision{Action: storage.RefreshRotate, Next: tc.next}
		})
		switch {
		case err == nil:
			t.Errorf("UseRefreshToken(rotate, %s): got nil error, want one", tc.name)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("UseRefreshToken(rotate, %s): got error %v, want %v", tc.name, err, tc.want)
		}
		wantUnchanged(t, s, rt, g)
	}
	_, _, err := s.GetRefreshToken(ctx, h("refresh:rt1"))
	wantErr(t, "GetRefreshToken(child of failed rotation)", err, storage.ErrNotFound)
	wantUnchanged(t, s, otherRT, other)
}

func testRefreshKeep(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	g, rt := refreshFixture(t, s)

	// Without Next nothing changes.
	_, _, _, err := s.UseRefreshToken(ctx, rt.Hash, func(storage.RefreshToken, storage.Grant, *storage.Session) storage.RefreshDecision {
		return storage.RefreshDecision{Action: storage.RefreshKeep}
	})
	wantErr(t, "UseRefreshToken(keep)", err, nil)
	wantUnchanged(t, s, rt, g)

	// With Next, only the idle expiry moves; the token stays unused and childless.
	ext := rt
	ext.ExpiresAt = rt.ExpiresAt.Add(6*time.Hour + time.Nanosecond)
	for range 2 {
		_, _, _, err = s.UseRefreshToken(ctx, rt.Hash, func(storage.RefreshToken, storage.Grant, *storage.Session) storage.RefreshDecision {
			return storage.RefreshDecision{Action: storage.RefreshKeep, Next: &storage.RefreshToken{ExpiresAt: ext.ExpiresAt}}
		})
		wantErr(t, "UseRefreshToken(keep, extend)", err, nil)
		wantUnchanged(t, s, ext, g)
	}
}

func testRefreshReturnChild(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	g, rt := refreshFixture(t, s)
	next := child(rt, "rt1")
	_, _, _, err := s.UseRefreshToken(ctx, rt.Hash, func(storage.RefreshToken, storage.Grant, *storage.Session) storage.RefreshDecision {
		return storage.RefreshDecision{Action: storage.RefreshRotate, Next: &next}
	})
	wantErr(t, "UseRefreshToken(rotate)", err, nil)
	rotated, _ := mustGetRefresh(t, s, rt.Hash)

	// Within the grace window the parent is presented again: the caller gets the
	// stored child's hash back, and nothing changes.
	r, rg, _, err := s.UseRefreshToken(ctx, rt.Hash, func(r storage.RefreshToken, _ storage.Grant, _ *storage.Session) storage.RefreshDecision {
		return storage.RefreshDecision{Action: storage.RefreshReturnChild}
	})
	wantErr(t, "UseRefreshToken(return child)", err, nil)
	wantEqual(t, "UseRefreshToken(return child) token", r, rotated)
	wantEqual(t, "UseRefreshToken(return child) grant", rg, g)
	wantUnchanged(t, s, rotated, g)
	wantUnchanged(t, s, next, g)
}

func testRefreshReject(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	g, rt := refreshFixture(t, s)
	errExpired := errors.New("refresh token expired")
	next := child(rt, "rt1")
	_, _, _, err := s.UseRefreshToken(ctx, rt.Hash, func(storage.RefreshToken, storage.Grant, *storage.Session) storage.RefreshDecision {
		// Next and RevokeAt are ignored on reject.
		return storage.RefreshDecision{Action: storage.RefreshReject, Err: errExpired, Next: &next, RevokeAt: t0}
	})
	wantErr(t, "UseRefreshToken(reject)", err, errExpired)
	wantUnchanged(t, s, rt, g)
	_, _, err = s.GetRefreshToken(ctx, next.Hash)
	wantErr(t, "GetRefreshToken(child of rejected)", err, storage.ErrNotFound)
}

// RefreshRevoke both stores the revocation and returns the decision's error.
func testRefreshRevoke(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	g, rt := refreshFixture(t, s)
	errReuse := errors.New("refresh token reused")
	revokeAt := t0.Add(3*time.Hour + time.Nanosecond)
	_, _, _, err := s.UseRefreshToken(ctx, rt.Hash, func(storage.RefreshToken, storage.Grant, *storage.Session) storage.RefreshDecision {
		return storage.RefreshDecision{Action: storage.RefreshRevoke, RevokeAt: revokeAt, Err: errReuse}
	})
	wantErr(t, "UseRefreshToken(revoke)", err, errReuse)
	g.RevokedAt = revokeAt
	wantUnchanged(t, s, rt, g)
}

// The RefreshFunc sees the grant as it is now, revocation included, so the
// domain can refuse tokens of a revoked family.
func testRefreshSeesGrant(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	g, rt := refreshFixture(t, s)
	wantErr(t, "RevokeGrant", s.RevokeGrant(ctx, g.ID, t0.Add(time.Hour)), nil)
	var seenR storage.RefreshToken
	var seenG storage.Grant
	_, _, _, err := s.UseRefreshToken(ctx, rt.Hash, decision(&seenR, &seenG, storage.RefreshDecision{Action: storage.RefreshReject, Err: storage.ErrRevoked}))
	wantErr(t, "UseRefreshToken(revoked grant)", err, storage.ErrRevoked)
	if !seenG.RevokedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("grant seen by RefreshFunc: RevokedAt got %v, want %v", fmtTime(seenG.RevokedAt), fmtTime(t0.Add(time.Hour)))
	}
}

// Of concurrent rotations of one token exactly one wins: the RefreshFunc of
// every other call must see the token already used.
func testRefreshConcurrentRotation(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	g, rt := refreshFixture(t, s)
	errUsed := errors.New("refresh token already used")
	children := make([]storage.RefreshToken, concurrency)
	for i := range children {
		children[i] = child(rt, fmt.Sprintf("rt1-%d", i))
	}
	errs := concurrently(s, concurrency, func(i int) error {
		_, _, _, err := s.UseRefreshToken(ctx, rt.Hash, func(r storage.RefreshToken, _ storage.Grant, _ *storage.Session) storage.RefreshDecision {
			if !r.UsedAt.IsZero() {
				return storage.RefreshDecision{Action: storage.RefreshReject, Err: errUsed}
			}
			return storage.RefreshDecision{Action: storage.RefreshRotate, Next: &children[i]}
		})
		return err
	})
	winner := oneWinner(t, "UseRefreshToken(rotate)", errs, errUsed)

	parent, _ := mustGetRefresh(t, s, rt.Hash)
	wantEqual(t, "parent ChildHash", parent.ChildHash, children[winner].Hash)
	for i, c := range children {
		_, _, err := s.GetRefreshToken(ctx, c.Hash)
		want := storage.ErrNotFound
		if i == winner {
			want = nil
		}
		wantErr(t, fmt.Sprintf("GetRefreshToken(child %d)", i), err, want)
	}
	wantRevokedAt(t, s, g.ID, time.Time{})
}
