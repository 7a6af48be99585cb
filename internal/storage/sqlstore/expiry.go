package sqlstore

import (
	"context"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

var errConflict = storage.ErrConflict

// usedCodeRetention keeps redeemed codes past their expiry so that a late second
// use is still recognised as reuse and revokes what the first use issued.
const usedCodeRetention = time.Hour

// throttleRetention drops failure counters nobody has touched for a day.
const throttleRetention = 24 * time.Hour

// DeleteExpired removes what can no longer matter. Rotated refresh tokens stay
// as long as their grant, so that a reused one is recognised (and revokes the
// family) however late it comes back; they go with the grant (ON DELETE CASCADE).
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	err := s.inTx(ctx, func(t *tx) error {
		for _, st := range []struct {
			query  string
			before time.Time
		}{
			{`DELETE FROM auth_codes WHERE expires_at < ?`, now.Add(-usedCodeRetention)},
			{`DELETE FROM pending_requests WHERE expires_at <= ?`, now},
			{`DELETE FROM refresh_tokens WHERE expires_at <= ? AND used_at = 0`, now},
			{`DELETE FROM grants WHERE expires_at <> 0 AND expires_at <= ?`, now},
			{`DELETE FROM replay_cache WHERE expires_at <= ?`, now},
			{`DELETE FROM throttles WHERE last_failure_at < ?`, now.Add(-throttleRetention)},
		} {
			res, err := t.exec(st.query, ts(st.before))
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			total += n
		}
		return nil
	})
	return total, err
}
