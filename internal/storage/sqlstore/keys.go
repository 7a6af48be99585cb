package sqlstore

import (
	"context"

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
