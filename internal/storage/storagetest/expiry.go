package storagetest

import (
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

// testDeleteExpired pins what DeleteExpired removes and what it must keep:
// used codes stay an hour past expiry (a late reuse still revokes), rotated
// refresh tokens stay with their grant (reuse is recognised however late),
// throttle counters go after a day of quiet, and sessions are left to
// DeleteExpiredSessions.
func testDeleteExpired(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := t0.Add(100 * time.Hour)
	u := newUser("a", "alice")
	mustCreateUser(t, s, u)
	cl := newClient("spa")
	mustUpsertClient(t, s, cl)
	sess := newSession("a", "sid")
	sess.ExpiresAt = now.Add(-time.Hour)
	mustCreateSession(t, s, sess)

	// Grants: one past its lifetime goes; one without a lifetime and a live one stay.
	grant := func(id string, expires time.Time, rt *storage.RefreshToken) {
		g := newGrant(id, cl.ID, u.ID, sess.SID)
		g.ExpiresAt = expires
		mustCreateGrant(t, s, g, rt)
	}
	grant("g-expired", now, nil)
	grant("g-forever", time.Time{}, nil)
	grant("g-live", now.Add(time.Hour), nil)

	// Refresh tokens, each the first of its own everlasting grant.
	refresh := func(name string, expires, used time.Time) []byte {
		rt := newRefresh("g-"+name, name, 0)
		rt.ExpiresAt, rt.UsedAt = expires, used
		if !used.IsZero() {
			rt.ChildHash = h("child:" + name)
		}
		grant("g-"+name, time.Time{}, &rt)
		return rt.Hash
	}
	rtExpired := refresh("rt-expired", now, time.Time{})
	rtRotated := refresh("rt-rotated", now.Add(-time.Hour), now.Add(-2*time.Hour))
	rtLive := refresh("rt-live", now.Add(time.Nanosecond), time.Time{})

	// Codes.
	code := func(name string, expires, used time.Time) []byte {
		c := newCode(name, cl.ID, u.ID, sess.SID, "g-code-"+name)
		c.ExpiresAt, c.UsedAt = expires, used
		mustCreateCode(t, s, c)
		return c.CodeHash
	}
	grant("g-code-recent-used", time.Time{}, nil) // what the recent code issued
	codeOldUnused := code("old-unused", now.Add(-2*time.Hour), time.Time{})
	codeOldUsed := code("old-used", now.Add(-61*time.Minute), now.Add(-62*time.Minute))
	codeRecentUsed := code("recent-used", now.Add(-30*time.Minute), now.Add(-31*time.Minute))
	codeLive := code("live", now.Add(time.Minute), time.Time{})

	// Pending requests.
	pExpired, pLive := newPending("expired"), newPending("live")
	pExpired.ExpiresAt, pLive.ExpiresAt = now, now.Add(time.Nanosecond)
	for _, p := range []storage.PendingRequest{pExpired, pLive} {
		wantErr(t, "CreatePendingRequest", s.CreatePendingRequest(ctx, p, storage.PendingLimits{}), nil)
	}

	// Replay entries.
	wantErr(t, "Remember", s.Remember(ctx, "expired", now, t0), nil)
	wantErr(t, "Remember", s.Remember(ctx, "live", now.Add(time.Nanosecond), t0), nil)

	// Throttles: a day of quiet ends a counter.
	for key, last := range map[string]time.Time{"stale": now.Add(-25 * time.Hour), "recent": now.Add(-23 * time.Hour)} {
		if _, err := s.AddFailure(ctx, key, last, t0); err != nil {
			t.Fatalf("AddFailure(%s): %v", key, err)
		}
	}

	n, err := s.DeleteExpired(ctx, now)
	wantErr(t, "DeleteExpired", err, nil)
	// g-expired, rt-expired, old-unused, old-used, pending expired, replay expired, throttle stale.
	if n != 7 {
		t.Errorf("DeleteExpired: got %d removed, want 7", n)
	}

	_, err = s.GetGrant(ctx, "g-expired")
	wantErr(t, "GetGrant(g-expired)", err, storage.ErrNotFound)
	for _, id := range []string{"g-forever", "g-live"} {
		mustGetGrant(t, s, id)
	}

	_, _, err = s.GetRefreshToken(ctx, rtExpired)
	wantErr(t, "GetRefreshToken(unused, expired)", err, storage.ErrNotFound)
	mustGetRefresh(t, s, rtRotated)
	mustGetRefresh(t, s, rtLive)

	for _, c := range [][]byte{codeOldUnused, codeOldUsed} {
		_, _, err = s.RedeemAuthCode(ctx, c, now, mustNotIssue(t))
		wantErr(t, "RedeemAuthCode(removed code)", err, storage.ErrNotFound)
	}
	_, _, err = s.RedeemAuthCode(ctx, codeRecentUsed, now, mustNotIssue(t))
	wantErr(t, "RedeemAuthCode(recently used code)", err, storage.ErrAlreadyUsed)
	wantRevokedAt(t, s, "g-code-recent-used", now)
	_, _, err = s.RedeemAuthCode(ctx, codeLive, now, func(c storage.AuthCode) (storage.Grant, *storage.RefreshToken, error) {
		return grantFor(c), nil, nil
	})
	wantErr(t, "RedeemAuthCode(live code)", err, nil)

	_, err = s.GetPendingRequest(ctx, pExpired.IDHash, t0)
	wantErr(t, "GetPendingRequest(expired, asked before expiry)", err, storage.ErrNotFound)
	_, err = s.GetPendingRequest(ctx, pLive.IDHash, now)
	wantErr(t, "GetPendingRequest(live)", err, nil)

	for key, want := range map[string]bool{"expired": false, "live": true} {
		// Asked at t0, an entry that was not removed still counts.
		ok, err := s.Remembered(ctx, key, t0)
		wantErr(t, "Remembered", err, nil)
		if ok != want {
			t.Errorf("Remembered(%s) after DeleteExpired: got %v, want %v", key, ok, want)
		}
	}

	_, err = s.GetThrottle(ctx, "stale")
	wantErr(t, "GetThrottle(stale)", err, storage.ErrNotFound)
	_, err = s.GetThrottle(ctx, "recent")
	wantErr(t, "GetThrottle(recent)", err, nil)

	_, err = s.GetSession(ctx, sess.IDHash)
	wantErr(t, "GetSession(expired session)", err, nil)

	n, err = s.DeleteExpired(ctx, now)
	wantErr(t, "DeleteExpired(again)", err, nil)
	if n != 0 {
		t.Errorf("DeleteExpired(again): got %d removed, want 0", n)
	}
}

// A grant past its lifetime takes its whole refresh family with it, rotated
// tokens included.
func testDeleteExpiredGrantCascade(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	g, rt := refreshFixture(t, s)
	next := child(rt, "rt1")
	_, _, _, err := s.UseRefreshToken(ctx, rt.Hash, func(storage.RefreshToken, storage.Grant, *storage.Session) storage.RefreshDecision {
		return storage.RefreshDecision{Action: storage.RefreshRotate, Next: &next}
	})
	wantErr(t, "UseRefreshToken(rotate)", err, nil)

	if _, err := s.DeleteExpired(ctx, g.ExpiresAt); err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
	_, err = s.GetGrant(ctx, g.ID)
	wantErr(t, "GetGrant(expired)", err, storage.ErrNotFound)
	for _, hash := range [][]byte{rt.Hash, next.Hash} {
		_, _, err = s.GetRefreshToken(ctx, hash)
		wantErr(t, "GetRefreshToken(of expired grant)", err, storage.ErrNotFound)
	}
}
