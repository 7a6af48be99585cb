package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

const sessionColumns = `id_hash, sid, user_id, auth_time, amr, created_at, last_active_at, expires_at`

func scanSession(row interface{ Scan(...any) error }) (storage.Session, error) {
	var x storage.Session
	var amr string
	var auth, created, active, expires int64
	err := row.Scan(&x.IDHash, &x.SID, &x.UserID, &auth, &amr, &created, &active, &expires)
	x.AuthTime, x.CreatedAt, x.LastActiveAt, x.ExpiresAt = tm(auth), tm(created), tm(active), tm(expires)
	x.AMR = splitList(amr)
	return x, err
}

func (s *Store) CreateSession(ctx context.Context, x storage.Session) error {
	_, err := s.exec(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		x.IDHash, x.SID, x.UserID, ts(x.AuthTime), joinList(x.AMR), ts(x.CreatedAt), ts(x.LastActiveAt), ts(x.ExpiresAt))
	return err
}

func (s *Store) GetSession(ctx context.Context, idHash []byte) (storage.Session, error) {
	x, err := scanSession(s.queryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id_hash = ?`, idHash))
	return x, s.mapErr(err)
}

// sessionAndUser reads a session and its user; every session has its user (a
// foreign key).
var sessionAndUser = `SELECT ` + qualified("s", sessionColumns) + `, ` + qualified("u", userColumns) + `
	FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?`

func (s *Store) GetSessionAndUser(ctx context.Context, idHash []byte) (storage.Session, storage.User, error) {
	var u userDest
	x, err := scanSession(scanFirst{row: s.queryRow(ctx, sessionAndUser, idHash), rest: u.dest()})
	if err != nil {
		return storage.Session{}, storage.User{}, s.mapErr(err)
	}
	return x, u.user(), nil
}

func (s *Store) GetSessionBySID(ctx context.Context, sid string) (storage.Session, error) {
	x, err := scanSession(s.queryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE sid = ?`, sid))
	return x, s.mapErr(err)
}

func (s *Store) ListSessionsByUser(ctx context.Context, userID string) ([]storage.Session, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+sessionColumns+` FROM sessions WHERE user_id = ? ORDER BY created_at`), userID)
	if err != nil {
		return nil, s.mapErr(err)
	}
	return collectSessions(s, rows)
}

func (s *Store) TouchSession(ctx context.Context, idHash []byte, at time.Time) error {
	// Never move the clock back: two requests may touch out of order. The
	// condition lives in SET, not WHERE, so that an older touch of a live
	// session is not mistaken for an unknown one.
	return mustAffect(s.exec(ctx, `UPDATE sessions SET last_active_at = CASE WHEN last_active_at < ? THEN ? ELSE last_active_at END WHERE id_hash = ?`,
		ts(at), ts(at), idHash))
}

func (s *Store) DeleteSession(ctx context.Context, idHash []byte, now time.Time) (storage.Session, error) {
	var ended storage.Session
	err := s.inDurableTx(ctx, func(t *tx) error {
		var err error
		ended, err = scanSession(t.queryRow(`DELETE FROM sessions WHERE id_hash = ? RETURNING `+sessionColumns, idHash))
		if err != nil {
			return t.s.mapErr(err)
		}
		return t.sessionEnded(ended, now)
	})
	return ended, err
}

func (s *Store) DeleteExpiredSessions(ctx context.Context, idleAt, now time.Time, limit int) ([]storage.Session, error) {
	var ended []storage.Session
	err := s.inTx(ctx, func(t *tx) error {
		rows, err := t.query(`DELETE FROM sessions WHERE id_hash IN (
			SELECT id_hash FROM sessions WHERE last_active_at <= ? OR expires_at <= ? LIMIT ?)
			RETURNING `+sessionColumns, ts(idleAt), ts(now), limit)
		if err != nil {
			return err
		}
		if ended, err = collectSessions(t.s, rows); err != nil {
			return err
		}
		for _, x := range ended {
			if err := t.sessionEnded(x, now); err != nil {
				return err
			}
		}
		return nil
	})
	return ended, err
}

// sessionEnded revokes the grants bound to a session that ended and queues
// its logout notices.
func (t *tx) sessionEnded(x storage.Session, now time.Time) error {
	if _, err := t.exec(`UPDATE grants SET revoked_at = ? WHERE sid = ? AND session_bound = true AND revoked_at = 0`, ts(now), x.SID); err != nil {
		return err
	}
	return t.queueLogoutNotices(now, x)
}

func (t *tx) sessionsOf(userID string) ([]storage.Session, error) {
	rows, err := t.query(`SELECT `+sessionColumns+` FROM sessions WHERE user_id = ?`, userID)
	if err != nil {
		return nil, err
	}
	return collectSessions(t.s, rows)
}

func collectSessions(s *Store, rows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}) ([]storage.Session, error) {
	defer rows.Close()
	var out []storage.Session
	for rows.Next() {
		x, err := scanSession(rows)
		if err != nil {
			return nil, s.mapErr(err)
		}
		out = append(out, x)
	}
	return out, s.mapErr(rows.Err())
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
