package sqlstore

import (
	"context"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

const logoutNoticeColumns = `sid, client_id, user_id, created_at, attempts, due_at`

// queueLogoutNotices queues, inside the transaction that ends the sessions,
// a notice for every client holding a grant from each. It must run before the
// grants can go (DeleteUser's cascade). A notice already queued for the pair
// stays as it is.
func (t *tx) queueLogoutNotices(now time.Time, ended ...storage.Session) error {
	for _, x := range ended {
		if x.SID == "" {
			continue
		}
		if _, err := t.exec(`INSERT INTO logout_notices (`+logoutNoticeColumns+`)
			SELECT DISTINCT sid, client_id, user_id, CAST(? AS BIGINT), 0, 0 FROM grants WHERE sid = ?
			ON CONFLICT (sid, client_id) DO NOTHING`, ts(now), x.SID); err != nil {
			return err
		}
	}
	return nil
}

// ClaimLogoutNotices takes the due notices by moving their due time to the
// lease's end. The outer condition repeats "due": on PostgreSQL two nodes
// claiming at once both select the same rows, but the second UPDATE, after
// waiting for the first's row locks, re-checks its WHERE against the
// committed row (READ COMMITTED), finds it leased and skips it. On SQLite
// writers are serialized anyway.
func (s *Store) ClaimLogoutNotices(ctx context.Context, now, leaseUntil time.Time, limit int) ([]storage.LogoutNotice, error) {
	var out []storage.LogoutNotice
	err := s.inTx(ctx, func(t *tx) error {
		rows, err := t.query(`UPDATE logout_notices SET due_at = ?
			WHERE due_at <= ? AND (sid, client_id) IN (
				SELECT sid, client_id FROM logout_notices WHERE due_at <= ? ORDER BY due_at LIMIT ?)
			RETURNING `+logoutNoticeColumns, ts(leaseUntil), ts(now), ts(now), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n storage.LogoutNotice
			var created, due int64
			if err := rows.Scan(&n.SID, &n.ClientID, &n.UserID, &created, &n.Attempts, &due); err != nil {
				return t.s.mapErr(err)
			}
			n.CreatedAt, n.DueAt = tm(created), tm(due)
			out = append(out, n)
		}
		return t.s.mapErr(rows.Err())
	})
	return out, err
}

func (s *Store) RetryLogoutNotice(ctx context.Context, sid, clientID string, attempts int, dueAt time.Time) error {
	return mustAffect(s.exec(ctx, `UPDATE logout_notices SET attempts = ?, due_at = ? WHERE sid = ? AND client_id = ?`,
		attempts, ts(dueAt), sid, clientID))
}

func (s *Store) DeleteLogoutNotice(ctx context.Context, sid, clientID string) error {
	_, err := s.exec(ctx, `DELETE FROM logout_notices WHERE sid = ? AND client_id = ?`, sid, clientID)
	return err
}

func (s *Store) CountLogoutNotices(ctx context.Context) (storage.LogoutNoticeCounts, error) {
	var out storage.LogoutNoticeCounts
	err := s.queryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0) FROM logout_notices`).
		Scan(&out.Pending, &out.Failing)
	return out, s.mapErr(err)
}
