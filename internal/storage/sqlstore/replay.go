package sqlstore

import (
	"context"
	"database/sql"
	"time"
)

func (s *Store) Remember(ctx context.Context, key string, expiresAt, now time.Time) error {
	return s.remember(ctx, key, expiresAt, now, s.exec)
}

// RememberDurably is Remember for what must not come back after a power
// loss: a revoked access token. One-time identifiers (DPoP proofs, client
// assertions) are not synced: a power loss could only let such a proof be
// replayed within its few minutes, and syncing each would slow every token
// request that carries one.
func (s *Store) RememberDurably(ctx context.Context, key string, expiresAt, now time.Time) error {
	return s.remember(ctx, key, expiresAt, now, s.execDurable)
}

func (s *Store) remember(ctx context.Context, key string, expiresAt, now time.Time,
	exec func(context.Context, string, ...any) (sql.Result, error)) error {
	// An expired entry is taken over; a live one makes the insert do nothing,
	// which RowsAffected reports as a conflict. One statement on every flavor.
	res, err := exec(ctx, `INSERT INTO replay_cache (key, expires_at) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE replay_cache.expires_at <= ?`,
		key, ts(expiresAt), ts(now))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return errConflict
	}
	return nil
}

func (s *Store) Remembered(ctx context.Context, key string, now time.Time) (bool, error) {
	var n int
	err := s.queryRow(ctx, `SELECT COUNT(*) FROM replay_cache WHERE key = ? AND expires_at > ?`, key, ts(now)).Scan(&n)
	return n > 0, s.mapErr(err)
}
