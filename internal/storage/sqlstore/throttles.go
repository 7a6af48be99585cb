package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

func (s *Store) GetThrottle(ctx context.Context, key string) (storage.ThrottleState, error) {
	st := storage.ThrottleState{Key: key}
	var last int64
	err := s.queryRow(ctx, `SELECT failures, last_failure_at FROM throttles WHERE key = ?`, key).Scan(&st.Failures, &last)
	st.LastFailureAt = tm(last)
	return st, s.mapErr(err)
}

func (s *Store) AddFailure(ctx context.Context, key string, now, resetBefore time.Time) (storage.ThrottleState, error) {
	st := storage.ThrottleState{Key: key}
	var last int64
	// One upsert: concurrent failures each count, none is lost.
	err := s.writeRow(ctx, func(row *sql.Row) error { return row.Scan(&st.Failures, &last) },
		`INSERT INTO throttles (key, failures, last_failure_at) VALUES (?, 1, ?)
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN throttles.last_failure_at < ? THEN 1 ELSE throttles.failures + 1 END,
			last_failure_at = excluded.last_failure_at
		RETURNING failures, last_failure_at`, key, ts(now), ts(resetBefore))
	st.LastFailureAt = tm(last)
	return st, err
}

func (s *Store) ClearThrottle(ctx context.Context, key string) error {
	_, err := s.exec(ctx, `DELETE FROM throttles WHERE key = ?`, key)
	return err
}
