package sqlstore

import (
	"context"
	"time"
)

// probeRetention is how long the row of a node that stopped probing stays.
const probeRetention = 24 * time.Hour

func (s *Store) ProbeWrite(ctx context.Context, node string, now time.Time) error {
	// A transaction like any other write: on SQLite it goes through the
	// committer and its single writer connection, as sign-ins and token
	// requests do.
	return s.inTx(ctx, func(t *tx) error {
		if _, err := t.exec(`INSERT INTO write_probes (node, written_at) VALUES (?, ?)
			ON CONFLICT (node) DO UPDATE SET written_at = excluded.written_at`, node, ts(now)); err != nil {
			return err
		}
		_, err := t.exec(`DELETE FROM write_probes WHERE written_at < ?`, ts(now.Add(-probeRetention)))
		return err
	})
}
