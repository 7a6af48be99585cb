package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

const pendingColumns = `id_hash, browser_hash, client_id, request, created_at, expires_at`

func scanPending(row interface{ Scan(...any) error }) (storage.PendingRequest, error) {
	var p storage.PendingRequest
	var created, expires int64
	err := row.Scan(&p.IDHash, &p.BrowserHash, &p.ClientID, &p.Request, &created, &expires)
	p.CreatedAt, p.ExpiresAt = tm(created), tm(expires)
	return p, err
}

func (s *Store) CreatePendingRequest(ctx context.Context, p storage.PendingRequest) error {
	_, err := s.exec(ctx, `INSERT INTO pending_requests (`+pendingColumns+`) VALUES (?, ?, ?, ?, ?, ?)`,
		p.IDHash, p.BrowserHash, p.ClientID, p.Request, ts(p.CreatedAt), ts(p.ExpiresAt))
	return err
}

func (s *Store) GetPendingRequest(ctx context.Context, idHash []byte, now time.Time) (storage.PendingRequest, error) {
	p, err := scanPending(s.queryRow(ctx, `SELECT `+pendingColumns+` FROM pending_requests WHERE id_hash = ? AND expires_at > ?`, idHash, ts(now)))
	return p, s.mapErr(err)
}

func (s *Store) ConsumePendingRequest(ctx context.Context, idHash []byte, now time.Time) (storage.PendingRequest, error) {
	// One DELETE … RETURNING: of two concurrent consumers exactly one gets the row.
	var p storage.PendingRequest
	err := s.writeRow(ctx, func(row *sql.Row) (err error) {
		p, err = scanPending(row)
		return err
	}, `DELETE FROM pending_requests WHERE id_hash = ? AND expires_at > ? RETURNING `+pendingColumns, idHash, ts(now))
	return p, err
}
