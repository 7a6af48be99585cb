package sqlstore

import (
	"context"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

func (s *Store) CreateSigningKey(ctx context.Context, k storage.SigningKey) error {
	_, err := s.exec(ctx, `INSERT INTO signing_keys (kid, algorithm, sealed, created_at, activates_at, retires_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		k.KID, k.Algorithm, k.Sealed, ts(k.CreatedAt), ts(k.ActivatesAt), ts(k.RetiresAt), ts(k.ExpiresAt))
	return err
}

func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT kid, algorithm, sealed, created_at, activates_at, retires_at, expires_at FROM signing_keys ORDER BY activates_at, kid`)
	if err != nil {
		return nil, s.mapErr(err)
	}
	defer rows.Close()
	var out []storage.SigningKey
	for rows.Next() {
		var k storage.SigningKey
		var created, activates, retires, expires int64
		if err := rows.Scan(&k.KID, &k.Algorithm, &k.Sealed, &created, &activates, &retires, &expires); err != nil {
			return nil, s.mapErr(err)
		}
		k.CreatedAt, k.ActivatesAt, k.RetiresAt, k.ExpiresAt = tm(created), tm(activates), tm(retires), tm(expires)
		out = append(out, k)
	}
	return out, s.mapErr(rows.Err())
}

func (s *Store) UpdateSigningKey(ctx context.Context, k storage.SigningKey) error {
	return mustAffect(s.exec(ctx, `UPDATE signing_keys SET activates_at = ?, retires_at = ?, expires_at = ? WHERE kid = ?`,
		ts(k.ActivatesAt), ts(k.RetiresAt), ts(k.ExpiresAt), k.KID))
}

func (s *Store) DeleteSigningKey(ctx context.Context, kid string) error {
	return mustAffect(s.exec(ctx, `DELETE FROM signing_keys WHERE kid = ?`, kid))
}

// ScheduleSigningKey stores next and retires the key it replaces in one
// transaction (see storage.SigningKeys). SQLite write transactions are already
// exclusive (BEGIN IMMEDIATE); on PostgreSQL a transaction-scoped advisory lock
// serializes them, so the check below sees every rotation committed before it.
// Unlike a session lock it cannot outlive the transaction: a node that dies
// mid-way leaves nothing behind, neither lock nor half a rotation.
func (s *Store) ScheduleSigningKey(ctx context.Context, next storage.SigningKey, retire *storage.SigningKey, now time.Time) error {
	return s.inTx(ctx, func(t *tx) error {
		if s.flavor == flavorPostgres {
			if _, err := t.exec(`SELECT pg_advisory_xact_lock(hashtextextended('castellan/' || coalesce(current_schema(), '') || '/tx/signing_keys', 0))`); err != nil {
				return err
			}
		}
		retireKID := ""
		if retire != nil {
			retireKID = retire.KID
		}
		var live int
		if err := t.queryRow(`SELECT COUNT(*) FROM signing_keys WHERE algorithm = ? AND kid <> ? AND (retires_at = 0 OR retires_at > ?)`,
			next.Algorithm, retireKID, ts(now)).Scan(&live); err != nil {
			return s.mapErr(err)
		}
		if live > 0 {
			return storage.ErrConflict
		}
		if retire != nil {
			var alg string
			var retires int64
			if err := t.queryRow(`SELECT algorithm, retires_at FROM signing_keys WHERE kid = ?`+s.forUpdate(), retire.KID).Scan(&alg, &retires); err != nil {
				return s.mapErr(err)
			}
			if alg != next.Algorithm || retires != 0 {
				return storage.ErrConflict
			}
			if _, err := t.exec(`UPDATE signing_keys SET retires_at = ?, expires_at = ? WHERE kid = ?`,
				ts(retire.RetiresAt), ts(retire.ExpiresAt), retire.KID); err != nil {
				return err
			}
		}
		_, err := t.exec(`INSERT INTO signing_keys (kid, algorithm, sealed, created_at, activates_at, retires_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			next.KID, next.Algorithm, next.Sealed, ts(next.CreatedAt), ts(next.ActivatesAt), ts(next.RetiresAt), ts(next.ExpiresAt))
		return err
	})
}
