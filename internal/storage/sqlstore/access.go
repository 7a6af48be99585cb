package sqlstore

import (
	"context"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

// accessStateQuery answers AccessState in one statement, so introspection and
// userinfo pay one round trip (and on SQLite one prepared statement) instead
// of three, and it reads only the columns the decision needs: the call is on
// every introspection, and scanning a whole grant and session cost more than
// the query itself. The one-row derived table makes the outer joins return a
// row even when neither the grant nor its session exists; the IS NOT NULL
// columns say which did. The conditions against the empty string keep a token
// without a grant, and a grant without a session, from ever matching a row.
const accessStateQuery = `SELECT
	EXISTS (SELECT 1 FROM replay_cache WHERE key = ? AND expires_at > ?),
	g.id IS NOT NULL, COALESCE(g.session_bound, FALSE), COALESCE(g.expires_at, 0), COALESCE(g.revoked_at, 0),
	s.sid IS NOT NULL, COALESCE(s.last_active_at, 0), COALESCE(s.expires_at, 0)
	FROM (SELECT 1 AS one) one
	LEFT JOIN grants g ON g.id = ? AND g.id <> ''
	LEFT JOIN sessions s ON s.sid = g.sid AND g.sid <> ''`

func (s *Store) AccessState(ctx context.Context, revokedKey, grantID string, now time.Time) (storage.AccessState, error) {
	var (
		out                      storage.AccessState
		hasGrant, bound, hasSess bool
		gExpires, gRevoked       int64
		sActive, sExpires        int64
	)
	err := s.queryRow(ctx, accessStateQuery, revokedKey, ts(now), grantID).
		Scan(&out.Revoked, &hasGrant, &bound, &gExpires, &gRevoked, &hasSess, &sActive, &sExpires)
	if err != nil {
		return storage.AccessState{}, s.mapErr(err)
	}
	if hasGrant {
		out.Grant = &storage.GrantStatus{SessionBound: bound, ExpiresAt: tm(gExpires), RevokedAt: tm(gRevoked)}
	}
	if hasSess {
		out.Session = &storage.SessionTimes{LastActiveAt: tm(sActive), ExpiresAt: tm(sExpires)}
	}
	return out, nil
}
