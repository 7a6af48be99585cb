package storagetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

func testSessionsCreateGet(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	f := setup(t, s, "a")

	got, err := s.GetSession(ctx, f.session.IDHash)
	wantErr(t, "GetSession", err, nil)
	wantEqual(t, "GetSession", got, f.session)
	got, err = s.GetSessionBySID(ctx, f.session.SID)
	wantErr(t, "GetSessionBySID", err, nil)
	wantEqual(t, "GetSessionBySID", got, f.session)

	gotS, gotU, err := s.GetSessionAndUser(ctx, f.session.IDHash)
	wantErr(t, "GetSessionAndUser", err, nil)
	wantEqual(t, "GetSessionAndUser session", gotS, f.session)
	wantEqual(t, "GetSessionAndUser user", gotU, f.user)

	_, err = s.GetSession(ctx, h("nope"))
	wantErr(t, "GetSession(unknown)", err, storage.ErrNotFound)
	_, _, err = s.GetSessionAndUser(ctx, h("nope"))
	wantErr(t, "GetSessionAndUser(unknown)", err, storage.ErrNotFound)
	_, err = s.GetSessionBySID(ctx, "nope")
	wantErr(t, "GetSessionBySID(unknown)", err, storage.ErrNotFound)
}

func testSessionsConstraints(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	f := setup(t, s, "a")

	dupHash := newSession("a", "sid-other")
	dupHash.IDHash = f.session.IDHash
	wantErr(t, "CreateSession(same id hash)", s.CreateSession(ctx, dupHash), storage.ErrConflict)
	dupSID := newSession("a", f.session.SID)
	dupSID.IDHash = h("other")
	wantErr(t, "CreateSession(same sid)", s.CreateSession(ctx, dupSID), storage.ErrConflict)

	if err := s.CreateSession(ctx, newSession("nobody", "sid-nobody")); err == nil {
		t.Errorf("CreateSession(unknown user): got nil error, want one")
	}
}

func testSessionsTouch(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	f := setup(t, s, "a")
	later := f.session.LastActiveAt.Add(time.Minute)

	wantErr(t, "TouchSession", s.TouchSession(ctx, f.session.IDHash, later), nil)
	want := f.session
	want.LastActiveAt = later
	got, err := s.GetSession(ctx, f.session.IDHash)
	wantErr(t, "GetSession", err, nil)
	wantEqual(t, "GetSession after touch", got, want)

	// Two requests may touch out of order: the older one neither fails nor moves the clock back.
	for _, at := range []time.Time{later, later.Add(-time.Second)} {
		wantErr(t, "TouchSession(not newer)", s.TouchSession(ctx, f.session.IDHash, at), nil)
	}
	got, err = s.GetSession(ctx, f.session.IDHash)
	wantErr(t, "GetSession", err, nil)
	wantEqual(t, "GetSession after older touch", got, want)

	wantErr(t, "TouchSession(unknown)", s.TouchSession(ctx, h("nope"), later), storage.ErrNotFound)
}

func testSessionsListByUser(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	a := setup(t, s, "a")
	setup(t, s, "b")
	a2 := newSession("a", "sid-a2")
	a2.CreatedAt = t0.Add(time.Hour)
	mustCreateSession(t, s, a2)

	got, err := s.ListSessionsByUser(ctx, "a")
	wantErr(t, "ListSessionsByUser", err, nil)
	sid := func(x storage.Session) string { return x.SID }
	wantEqual(t, "ListSessionsByUser", sortBy(got, sid), sortBy([]storage.Session{a.session, a2}, sid))

	got, err = s.ListSessionsByUser(ctx, "nobody")
	wantErr(t, "ListSessionsByUser(unknown)", err, nil)
	if len(got) != 0 {
		t.Errorf("ListSessionsByUser(unknown): got %d sessions, want 0", len(got))
	}
}

func testSessionsDelete(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	a := setup(t, s, "a")
	other := newSession("a", "sid-other")
	mustCreateSession(t, s, other)

	bound := newGrant("g-bound", a.client.ID, "a", a.session.SID)
	offline := newGrant("g-offline", a.client.ID, "a", a.session.SID)
	offline.SessionBound = false
	elsewhere := newGrant("g-elsewhere", a.client.ID, "a", other.SID)
	earlier := newGrant("g-earlier", a.client.ID, "a", a.session.SID)
	earlier.RevokedAt = t0.Add(time.Minute)
	for _, g := range []storage.Grant{bound, offline, elsewhere, earlier} {
		mustCreateGrant(t, s, g, nil)
	}

	now := t0.Add(time.Hour)
	ended, err := s.DeleteSession(ctx, a.session.IDHash, now)
	wantErr(t, "DeleteSession", err, nil)
	wantEqual(t, "DeleteSession ended", ended, a.session)

	_, err = s.GetSession(ctx, a.session.IDHash)
	wantErr(t, "GetSession(deleted)", err, storage.ErrNotFound)
	_, err = s.GetSession(ctx, other.IDHash)
	wantErr(t, "GetSession(other)", err, nil)
	wantRevokedAt(t, s, "g-bound", now)
	wantRevokedAt(t, s, "g-offline", time.Time{})
	wantRevokedAt(t, s, "g-elsewhere", time.Time{})
	wantRevokedAt(t, s, "g-earlier", earlier.RevokedAt)

	_, err = s.DeleteSession(ctx, a.session.IDHash, now)
	wantErr(t, "DeleteSession(again)", err, storage.ErrNotFound)
}

func testSessionsDeleteExpired(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u := newUser("a", "alice")
	mustCreateUser(t, s, u)
	c := newClient("spa")
	mustUpsertClient(t, s, c)

	now := t0.Add(10 * time.Hour)
	idleAt := now.Add(-30 * time.Minute)
	mk := func(sid string, lastActive, expires time.Time) storage.Session {
		x := newSession("a", sid)
		x.LastActiveAt, x.ExpiresAt = lastActive, expires
		mustCreateSession(t, s, x)
		g := newGrant("g-"+sid, c.ID, "a", sid)
		mustCreateGrant(t, s, g, nil)
		return x
	}
	idle := mk("idle", idleAt, now.Add(time.Hour))                // LastActiveAt not after idleAt
	mk("recent", idleAt.Add(time.Nanosecond), now.Add(time.Hour)) // active just after idleAt
	dead := mk("dead", now, now)                                  // ExpiresAt not after now
	mk("alive", now, now.Add(time.Nanosecond))
	offline := newGrant("g-idle-offline", c.ID, "a", "idle")
	offline.SessionBound = false
	mustCreateGrant(t, s, offline, nil)

	var ended []storage.Session
	for i, limit := range []int{1, 10, 10} {
		got, err := s.DeleteExpiredSessions(ctx, idleAt, now, limit)
		wantErr(t, "DeleteExpiredSessions", err, nil)
		if want := []int{1, 1, 0}[i]; len(got) != want {
			t.Fatalf("DeleteExpiredSessions call %d (limit %d): got %d sessions, want %d", i+1, limit, len(got), want)
		}
		ended = append(ended, got...)
	}
	sid := func(x storage.Session) string { return x.SID }
	wantEqual(t, "DeleteExpiredSessions ended", sortBy(ended, sid), sortBy([]storage.Session{idle, dead}, sid))

	for _, x := range []struct {
		sid       string
		revokedAt time.Time
	}{{"idle", now}, {"dead", now}, {"recent", time.Time{}}, {"alive", time.Time{}}} {
		_, err := s.GetSessionBySID(ctx, x.sid)
		want := error(nil)
		if !x.revokedAt.IsZero() {
			want = storage.ErrNotFound
		}
		wantErr(t, "GetSessionBySID("+x.sid+")", err, want)
		wantRevokedAt(t, s, "g-"+x.sid, x.revokedAt)
	}
	wantRevokedAt(t, s, "g-idle-offline", time.Time{})
}

// Every node sweeps expired sessions on its own schedule: an expired session
// ends (and is announced) exactly once, whichever node finds it.
func testSessionsSweepAcrossNodes(t *testing.T, open func() storage.Storage) {
	ctx := t.Context()
	nodes := []storage.Storage{open(), open()}
	s := nodes[0]
	mustCreateUser(t, s, newUser("a", "alice"))
	const expired = 30
	for i := range expired {
		x := newSession("a", fmt.Sprintf("sid-%02d", i))
		x.ExpiresAt = t0.Add(time.Hour)
		mustCreateSession(t, s, x)
	}
	now := t0.Add(2 * time.Hour)
	var mu sync.Mutex
	seen := map[string]int{}
	errs := race(concurrency, func(i int) error {
		for {
			got, err := nodes[i%2].DeleteExpiredSessions(ctx, t0, now, 4)
			if err != nil || len(got) == 0 {
				return err
			}
			mu.Lock()
			for _, x := range got {
				seen[x.SID]++
			}
			mu.Unlock()
		}
	})
	for i, err := range errs {
		wantErr(t, fmt.Sprintf("DeleteExpiredSessions #%d", i), err, nil)
	}
	if len(seen) != expired {
		t.Errorf("sweepers ended %d distinct sessions, want %d", len(seen), expired)
	}
	for sid, n := range seen {
		if n != 1 {
			t.Errorf("session %s ended %d times, want once", sid, n)
		}
	}
}
