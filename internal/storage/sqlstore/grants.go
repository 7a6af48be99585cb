package sqlstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

const grantColumns = `id, client_id, user_id, sid, session_bound, scopes, auth_time, amr, dpop_jkt, created_at, expires_at, revoked_at`

const refreshColumns = `hash, grant_id, generation, created_at, expires_at, used_at, child_hash`

func scanGrant(row interface{ Scan(...any) error }) (storage.Grant, error) {
	var g storage.Grant
	var scopes, amr string
	var auth, created, expires, revoked int64
	err := row.Scan(&g.ID, &g.ClientID, &g.UserID, &g.SID, &g.SessionBound, &scopes, &auth, &amr, &g.DPoPJKT, &created, &expires, &revoked)
	g.Scopes, g.AMR = splitList(scopes), splitList(amr)
	g.AuthTime, g.CreatedAt, g.ExpiresAt, g.RevokedAt = tm(auth), tm(created), tm(expires), tm(revoked)
	return g, err
}

// refreshWithGrant selects a refresh token joined with its grant; the grant
// columns are prefixed so the join reads in one round trip.
var refreshWithGrant = `SELECT ` + qualified("r", refreshColumns) + `, ` + qualified("g", grantColumns) + `
	FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id WHERE r.hash = ?`

func scanRefreshWithGrant(row interface{ Scan(...any) error }) (storage.RefreshToken, storage.Grant, error) {
	var r storage.RefreshToken
	var g storage.Grant
	var rCreated, rExpires, rUsed int64
	var scopes, amr string
	var auth, created, expires, revoked int64
	err := row.Scan(&r.Hash, &r.GrantID, &r.Generation, &rCreated, &rExpires, &rUsed, &r.ChildHash,
		&g.ID, &g.ClientID, &g.UserID, &g.SID, &g.SessionBound, &scopes, &auth, &amr, &g.DPoPJKT, &created, &expires, &revoked)
	r.CreatedAt, r.ExpiresAt, r.UsedAt = tm(rCreated), tm(rExpires), tm(rUsed)
	g.Scopes, g.AMR = splitList(scopes), splitList(amr)
	g.AuthTime, g.CreatedAt, g.ExpiresAt, g.RevokedAt = tm(auth), tm(created), tm(expires), tm(revoked)
	return r, g, err
}

// refreshForUse is refreshWithGrant with the session the grant names, which
// decides whether a session-bound family may still refresh, and the user, whose
// claims go into the refreshed ID token: all read with the token instead of in
// more round trips after the rotation. Every grant has its user (a foreign key).
var refreshForUse = `SELECT ` + qualified("r", refreshColumns) + `, ` + qualified("g", grantColumns) + `,
	` + qualified("s", sessionColumns) + `, ` + qualified("u", userColumns) + `
	FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id JOIN users u ON u.id = g.user_id
	LEFT JOIN sessions s ON s.sid = g.sid AND g.sid <> ''
	WHERE r.hash = ?`

// refreshRead is what refreshForUse reads.
type refreshRead struct {
	token   storage.RefreshToken
	grant   storage.Grant
	session *storage.Session
	user    storage.User
}

func scanRefreshForUse(row interface{ Scan(...any) error }) (refreshRead, error) {
	var x nullSession
	var u userDest
	var out refreshRead
	var err error
	out.token, out.grant, err = scanRefreshWithGrant(scanFirst{row: row, rest: append(x.dest(), u.dest()...)})
	if err == nil {
		out.session, out.user = x.session(), u.user()
	}
	return out, err
}

// scanFirst lets a scanner of the leading columns read a row that has more:
// the extra destinations are appended to its Scan.
type scanFirst struct {
	row  interface{ Scan(...any) error }
	rest []any
}

func (f scanFirst) Scan(dest ...any) error { return f.row.Scan(append(dest, f.rest...)...) }

func (s *Store) CreateGrant(ctx context.Context, g storage.Grant, rt *storage.RefreshToken) error {
	return s.inTx(ctx, func(t *tx) error { return t.createGrant(g, rt) })
}

func (t *tx) createGrant(g storage.Grant, rt *storage.RefreshToken) error {
	if g.SessionBound {
		// The session must still exist when its grant is born: otherwise a code
		// issued just before sign-out would create a grant nothing revokes. The
		// shared row lock orders this against a concurrent DeleteSession.
		var one int
		err := t.queryRow(`SELECT 1 FROM sessions WHERE sid = ?`+t.s.forShare(), g.SID).Scan(&one)
		if err != nil {
			return t.s.mapErr(err)
		}
	}
	if _, err := t.exec(`INSERT INTO grants (`+grantColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		g.ID, g.ClientID, g.UserID, g.SID, g.SessionBound, joinList(g.Scopes), ts(g.AuthTime), joinList(g.AMR), g.DPoPJKT,
		ts(g.CreatedAt), ts(g.ExpiresAt), ts(g.RevokedAt)); err != nil {
		return err
	}
	if rt == nil {
		return nil
	}
	if rt.GrantID != g.ID {
		return fmt.Errorf("refresh token names grant %q, want %q", rt.GrantID, g.ID)
	}
	return t.insertRefresh(*rt)
}

func (t *tx) insertRefresh(rt storage.RefreshToken) error {
	_, err := t.exec(`INSERT INTO refresh_tokens (`+refreshColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		rt.Hash, rt.GrantID, rt.Generation, ts(rt.CreatedAt), ts(rt.ExpiresAt), ts(rt.UsedAt), rt.ChildHash)
	return err
}

func (s *Store) GetGrant(ctx context.Context, id string) (storage.Grant, error) {
	g, err := scanGrant(s.queryRow(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = ?`, id))
	return g, s.mapErr(err)
}

func (s *Store) RevokeGrant(ctx context.Context, id string, now time.Time) error {
	_, err := s.execDurable(ctx, `UPDATE grants SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, ts(now), id)
	return err
}

func (s *Store) ListGrantsByUser(ctx context.Context, userID string) ([]storage.Grant, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+grantColumns+` FROM grants WHERE user_id = ? ORDER BY created_at`), userID)
	if err != nil {
		return nil, s.mapErr(err)
	}
	defer rows.Close()
	var out []storage.Grant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, s.mapErr(err)
		}
		out = append(out, g)
	}
	return out, s.mapErr(rows.Err())
}

func (s *Store) GetRefreshToken(ctx context.Context, hash []byte) (storage.RefreshToken, storage.Grant, error) {
	r, g, err := scanRefreshWithGrant(s.queryRow(ctx, refreshWithGrant, hash))
	return r, g, s.mapErr(err)
}

// errRejected stands in when a RefreshFunc rejects a token without saying why.
var errRejected = errors.New("refresh token rejected")

func (s *Store) UseRefreshToken(ctx context.Context, hash []byte, decide storage.RefreshFunc) (storage.RefreshToken, storage.Grant, storage.User, error) {
	if s.flavor == flavorPostgres {
		return s.useRefreshCompareAndSet(ctx, hash, decide)
	}
	// SQLite: the write transaction is exclusive, so the read needs no lock.
	var read refreshRead
	err := s.inTx(ctx, func(t *tx) error {
		var err error
		read, err = scanRefreshForUse(t.queryRow(refreshForUse, hash))
		if err != nil {
			return t.s.mapErr(err)
		}
		r, g := read.token, read.grant
		d := decide(r, g, read.session)
		switch d.Action {
		case storage.RefreshRotate:
			if d.Next == nil || d.Next.GrantID != g.ID {
				return fmt.Errorf("refresh rotation without a child of grant %q", g.ID)
			}
			if _, err := t.exec(`UPDATE refresh_tokens SET used_at = ?, child_hash = ? WHERE hash = ?`, ts(d.Next.CreatedAt), d.Next.Hash, hash); err != nil {
				return err
			}
			return t.insertRefresh(*d.Next)
		case storage.RefreshKeep:
			if d.Next != nil {
				_, err := t.exec(`UPDATE refresh_tokens SET expires_at = ? WHERE hash = ?`, ts(d.Next.ExpiresAt), hash)
				return err
			}
			return nil
		case storage.RefreshReturnChild:
			return nil
		case storage.RefreshRevoke:
			if _, err := t.exec(`UPDATE grants SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, ts(d.RevokeAt), g.ID); err != nil {
				return err
			}
			t.syncOnCommit()
			// Fail closed: a refusal must never read as success to the caller.
			return &keepErr{cmp.Or(d.Err, storage.ErrRevoked)}
		case storage.RefreshReject:
			return cmp.Or(d.Err, errRejected)
		default:
			return fmt.Errorf("unknown refresh action %d", d.Action)
		}
	})
	return read.token, read.grant, read.user, err
}
