package sqlstore

import (
	"context"
	"time"
)

func (s *Store) Remember(ctx context.Context, key string, expiresAt, now time.Time) error {
	// An expired entry is taken over; a live one makes the insert do nothing,
	// which RowsAffected reports as a conflict. One statement on every flavor.
	// Durable: a revoked access token must not come back after a power loss.
	res, err := s.execDurable(ctx, `INSERT INTO replay_cache (key, expires_at) VALUES (?, ?)
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
