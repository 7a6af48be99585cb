package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

// accessStateQuery answers AccessState in one statement, so introspection and
// userinfo pay one round trip (and on SQLite one prepared statement) instead
// of three. The one-row derived table makes the outer joins return a row even
// when neither the grant nor its session exists; their columns are then NULL.
// The conditions against the empty string keep a token without a grant, and a
// grant without a session, from ever matching a row.
var accessStateQuery = `SELECT
	EXISTS (SELECT 1 FROM replay_cache WHERE key = ? AND expires_at > ?),
	` + qualified("g", grantColumns) + `, ` + qualified("s", sessionColumns) + `
	FROM (SELECT 1 AS one) one
	LEFT JOIN grants g ON g.id = ? AND g.id <> ''
	LEFT JOIN sessions s ON s.sid = g.sid AND g.sid <> ''`

func (s *Store) AccessState(ctx context.Context, revokedKey, grantID string, now time.Time) (storage.AccessState, error) {
	var out storage.AccessState
	var g nullGrant
	var x nullSession
	dest := append(append([]any{&out.Revoked}, g.dest()...), x.dest()...)
	if err := s.queryRow(ctx, accessStateQuery, revokedKey, ts(now), grantID).Scan(dest...); err != nil {
		return storage.AccessState{}, s.mapErr(err)
	}
	out.Grant, out.Session = g.grant(), x.session()
	return out, nil
}

// nullGrant receives the grantColumns of an outer join: all NULL when there
// is no grant.
type nullGrant struct {
	id, clientID, userID, sid, scopes, amr, dpopJKT sql.NullString
	sessionBound                                    sql.NullBool
	auth, created, expires, revoked                 sql.NullInt64
}

// dest lists the fields in the order of grantColumns.
func (n *nullGrant) dest() []any {
	return []any{&n.id, &n.clientID, &n.userID, &n.sid, &n.sessionBound, &n.scopes, &n.auth, &n.amr, &n.dpopJKT,
		&n.created, &n.expires, &n.revoked}
}

func (n *nullGrant) grant() *storage.Grant {
	if !n.id.Valid {
		return nil
	}
	return &storage.Grant{
		ID: n.id.String, ClientID: n.clientID.String, UserID: n.userID.String, SID: n.sid.String,
		SessionBound: n.sessionBound.Bool, Scopes: splitList(n.scopes.String), AuthTime: tm(n.auth.Int64),
		AMR: splitList(n.amr.String), DPoPJKT: n.dpopJKT.String, CreatedAt: tm(n.created.Int64),
		ExpiresAt: tm(n.expires.Int64), RevokedAt: tm(n.revoked.Int64),
	}
}

// nullSession receives the sessionColumns of an outer join: all NULL when
// there is no session.
type nullSession struct {
	idHash                         []byte
	sid, userID, amr               sql.NullString
	auth, created, active, expires sql.NullInt64
}

// dest lists the fields in the order of sessionColumns.
func (n *nullSession) dest() []any {
	return []any{&n.idHash, &n.sid, &n.userID, &n.auth, &n.amr, &n.created, &n.active, &n.expires}
}

func (n *nullSession) session() *storage.Session {
	if !n.sid.Valid {
		return nil
	}
	return &storage.Session{
		IDHash: n.idHash, SID: n.sid.String, UserID: n.userID.String, AuthTime: tm(n.auth.Int64),
		AMR: splitList(n.amr.String), CreatedAt: tm(n.created.Int64), LastActiveAt: tm(n.active.Int64),
		ExpiresAt: tm(n.expires.Int64),
	}
}
