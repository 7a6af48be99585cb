package storagetest

import (
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

// AccessState reads the token's revocation, its grant's status and the times
// of the grant's session together; whatever is missing is nil, never an error.
func testGrantsAccessState(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	f := setup(t, s, "a")
	live := f.session

	// A session-bound grant on a live session.
	bound := newGrant("bound", f.client.ID, "a", live.SID)
	mustCreateGrant(t, s, bound, nil)

	// A grant without a session (e.g. refreshed offline access).
	detached := newGrant("detached", f.client.ID, "a", "")
	detached.SessionBound = false
	mustCreateGrant(t, s, detached, nil)

	// A revoked grant.
	revokedAt := t0.Add(time.Hour)
	revoked := newGrant("revoked", f.client.ID, "a", live.SID)
	mustCreateGrant(t, s, revoked, nil)
	wantErr(t, "RevokeGrant", s.RevokeGrant(ctx, revoked.ID, revokedAt), nil)
	revoked.RevokedAt = revokedAt

	// Two grants naming a session that is then deleted: the bound one is
	// revoked with it, the other one stays active but loses its session.
	gone := newSession("a", "sid-gone")
	mustCreateSession(t, s, gone)
	orphan := newGrant("orphan", f.client.ID, "a", gone.SID)
	mustCreateGrant(t, s, orphan, nil)
	named := newGrant("named", f.client.ID, "a", gone.SID)
	named.SessionBound = false
	mustCreateGrant(t, s, named, nil)
	endedAt := t0.Add(2 * time.Hour)
	_, err := s.DeleteSession(ctx, gone.IDHash, endedAt)
	wantErr(t, "DeleteSession", err, nil)
	orphan.RevokedAt = endedAt

	// One revoked access token, remembered until expiry.
	const revokedKey = "revoked-at:jti-1"
	expiry := t0.Add(3 * time.Hour)
	wantErr(t, "Remember", s.Remember(ctx, revokedKey, expiry, t0), nil)

	cases := []struct {
		name    string
		key     string
		grantID string
		now     time.Time
		want    storage.AccessState
	}{
		{"no-grant", "revoked-at:jti-2", "", t0, storage.AccessState{}},
		{"no-grant/revoked-jti", revokedKey, "", t0, storage.AccessState{Revoked: true}},
		{"revoked-jti", revokedKey, bound.ID, t0,
			storage.AccessState{Revoked: true, Grant: status(bound), Session: times(live)}},
		{"revoked-jti/last-instant", revokedKey, bound.ID, expiry.Add(-time.Nanosecond),
			storage.AccessState{Revoked: true, Grant: status(bound), Session: times(live)}},
		{"revoked-jti/expired", revokedKey, bound.ID, expiry,
			storage.AccessState{Grant: status(bound), Session: times(live)}},
		{"unknown-grant", "revoked-at:jti-2", "nope", t0, storage.AccessState{}},
		{"unknown-grant/revoked-jti", revokedKey, "nope", t0, storage.AccessState{Revoked: true}},
		{"revoked-grant", "revoked-at:jti-2", revoked.ID, t0,
			storage.AccessState{Grant: status(revoked), Session: times(live)}},
		{"grant-without-session", "revoked-at:jti-2", detached.ID, t0, storage.AccessState{Grant: status(detached)}},
		{"session-bound/live", "revoked-at:jti-2", bound.ID, t0,
			storage.AccessState{Grant: status(bound), Session: times(live)}},
		{"session-bound/deleted", "revoked-at:jti-2", orphan.ID, t0, storage.AccessState{Grant: status(orphan)}},
		{"not-bound/session-deleted", "revoked-at:jti-2", named.ID, t0, storage.AccessState{Grant: status(named)}},
	}
	for _, c := range cases {
		got, err := s.AccessState(ctx, c.key, c.grantID, c.now)
		wantErr(t, "AccessState("+c.name+")", err, nil)
		wantEqual(t, "AccessState("+c.name+")", got, c.want)
	}
}

func status(g storage.Grant) *storage.GrantStatus {
	st := g.Status()
	return &st
}

func times(s storage.Session) *storage.SessionTimes {
	t := s.Times()
	return &t
}
