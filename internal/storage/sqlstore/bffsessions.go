package sqlstore

import (
	"context"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

const bffSessionColumns = `id_hash, subject, sid, tokens, access_expires_at, created_at, last_active_at, expires_at`

func scanBFFSession(row interface{ Scan(...any) error }) (storage.BFFSession, error) {
	var x storage.BFFSession
	var access, created, active, expires int64
	err := row.Scan(&x.IDHash, &x.Subject, &x.SID, &x.Tokens, &access, &created, &active, &expires)
	x.AccessExpiresAt, x.CreatedAt, x.LastActiveAt, x.ExpiresAt = tm(access), tm(created), tm(active), tm(expires)
	return x, err
}

func (s *Store) CreateBFFSession(ctx context.Context, x storage.BFFSession) error {
	_, err := s.exec(ctx, `INSERT INTO bff_sessions (`+bffSessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		x.IDHash, x.Subject, x.SID, x.Tokens, ts(x.AccessExpiresAt), ts(x.CreatedAt), ts(x.LastActiveAt), ts(x.ExpiresAt))
	return err
}

func (s *Store) GetBFFSession(ctx context.Context, idHash []byte) (storage.BFFSession, error) {
	x, err := scanBFFSession(s.queryRow(ctx, `SELECT `+bffSessionColumns+` FROM bff_sessions WHERE id_hash = ?`, idHash))
	return x, s.mapErr(err)
}

func (s *Store) UpdateBFFSessionTokens(ctx context.Context, idHash, tokens []byte, accessExpiresAt time.Time) error {
	return mustAffect(s.exec(ctx, `UPDATE bff_sessions SET tokens = ?, access_expires_at = ? WHERE id_hash = ?`,
		tokens, ts(accessExpiresAt), idHash))
}

func (s *Store) TouchBFFSession(ctx context.Context, idHash []byte, at time.Time) error {
	// As TouchSession: the condition lives in SET so that an older touch of a
	// live session is not mistaken for an unknown one.
	return mustAffect(s.exec(ctx, `UPDATE bff_sessions SET last_active_at = CASE WHEN last_active_at < ? THEN ? ELSE last_active_at END WHERE id_hash = ?`,
		ts(at), ts(at), idHash))
}

func (s *Store) DeleteBFFSession(ctx context.Context, idHash []byte) error {
	return mustAffect(s.execDurable(ctx, `DELETE FROM bff_sessions WHERE id_hash = ?`, idHash))
}

func (s *Store) DeleteBFFSessionsBySID(ctx context.Context, sid string) (int64, error) {
	if sid == "" {
		return 0, nil // sessions without a sid must not all match an empty one
	}
	return affected(s.execDurable(ctx, `DELETE FROM bff_sessions WHERE sid = ?`, sid))
}

func (s *Store) DeleteBFFSessionsBySubject(ctx context.Context, subject string) (int64, error) {
	if subject == "" {
		return 0, nil
	}
	return affected(s.execDurable(ctx, `DELETE FROM bff_sessions WHERE subject = ?`, subject))
}

func (s *Store) DeleteExpiredBFFSessions(ctx context.Context, idleAt, now time.Time, limit int) (int64, error) {
	return affected(s.exec(ctx, `DELETE FROM bff_sessions WHERE id_hash IN (
		SELECT id_hash FROM bff_sessions WHERE last_active_at <= ? OR expires_at <= ? LIMIT ?)`, ts(idleAt), ts(now), limit))
}

func affected(res interface{ RowsAffected() (int64, error) }, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
