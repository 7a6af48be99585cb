package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

const pendingColumns = `id_hash, browser_hash, client_id, request, created_at, expires_at, address_hash`

func scanPending(row interface{ Scan(...any) error }) (storage.PendingRequest, error) {
	var p storage.PendingRequest
	var created, expires int64
	err := row.Scan(&p.IDHash, &p.BrowserHash, &p.ClientID, &p.Request, &created, &expires, &p.AddressHash)
	p.CreatedAt, p.ExpiresAt = tm(created), tm(expires)
	if len(p.AddressHash) == 0 {
		p.AddressHash = nil // rows from before addresses were kept, and empty blobs read back as either
	}
	return p, err
}

// expiredInWay is what createPending finds when a limit is reached but
// expired requests count toward it: they are to be deleted (all of them, or
// those of address) and the creation tried again.
type expiredInWay struct {
	address []byte // nil: the total is reached
}

func (*expiredInWay) Error() string { return "pending requests: expired ones in the way" }

// CreatePendingRequest counts and inserts in one transaction. Expired
// requests in the way are deleted in a statement of their own, between two
// tries, never inside that transaction: on PostgreSQL the transaction holds
// the lock of the total's row while it counts, and every delete (a consumed
// request, the expiry sweep) locks its rows before the trigger locks the
// total, so deleting rows while holding the total could deadlock.
func (s *Store) CreatePendingRequest(ctx context.Context, p storage.PendingRequest, limits storage.PendingLimits) error {
	create := func() error { return s.inTx(ctx, func(t *tx) error { return t.createPending(p, limits) }) }
	err := create()
	var in *expiredInWay
	if !errors.As(err, &in) {
		return err
	}
	if err := s.deleteExpiredPending(ctx, in.address, p.CreatedAt); err != nil {
		return err
	}
	err = create()
	if errors.As(err, &in) {
		// Expired again in the meantime: a limit is reached all the same.
		return &storage.FullError{Err: fullKind(in.address), RetryAt: p.CreatedAt}
	}
	return err
}

func fullKind(address []byte) error {
	if address != nil {
		return storage.ErrAddressFull
	}
	return storage.ErrFull
}

func (t *tx) createPending(p storage.PendingRequest, limits storage.PendingLimits) error {
	if limits.Total > 0 || limits.PerAddress > 0 {
		// Lock the total first, even without a limit on it: concurrent
		// creations then count one after the other, on every node.
		var n int64
		if err := t.queryRow(`SELECT n FROM pending_request_total WHERE id = 1` + t.s.forUpdate()).Scan(&n); err != nil {
			return t.s.mapErr(err)
		}
		if limits.Total > 0 && n >= int64(limits.Total) {
			return t.pendingFull(nil, p.CreatedAt)
		}
	}
	if limits.PerAddress > 0 {
		var n int64
		if err := t.queryRow(`SELECT COUNT(*) FROM pending_requests WHERE address_hash = ?`, addressValue(p.AddressHash)).Scan(&n); err != nil {
			return t.s.mapErr(err)
		}
		if n >= int64(limits.PerAddress) {
			return t.pendingFull(addressValue(p.AddressHash), p.CreatedAt)
		}
	}
	_, err := t.exec(`INSERT INTO pending_requests (`+pendingColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		p.IDHash, p.BrowserHash, p.ClientID, p.Request, ts(p.CreatedAt), ts(p.ExpiresAt), addressValue(p.AddressHash))
	return err
}

// pendingFull explains a reached limit (of address, or the total for nil):
// expired requests in the way, or a FullError with the earliest expiry.
func (t *tx) pendingFull(address []byte, now time.Time) error {
	query, args := `SELECT MIN(expires_at) FROM pending_requests`, []any(nil)
	if address != nil {
		query, args = query+` WHERE address_hash = ?`, []any{address}
	}
	var first sql.NullInt64
	if err := t.queryRow(query, args...).Scan(&first); err != nil {
		return t.s.mapErr(err)
	}
	if first.Valid && first.Int64 <= ts(now) {
		return &expiredInWay{address: address}
	}
	retry := now
	if first.Valid {
		retry = tm(first.Int64)
	}
	return &storage.FullError{Err: fullKind(address), RetryAt: retry}
}

// deleteExpiredPending removes the expired requests of address (nil: of
// everyone) at now.
func (s *Store) deleteExpiredPending(ctx context.Context, address []byte, now time.Time) error {
	if address != nil {
		_, err := s.exec(ctx, `DELETE FROM pending_requests WHERE address_hash = ? AND expires_at <= ?`, address, ts(now))
		return err
	}
	_, err := s.exec(ctx, `DELETE FROM pending_requests WHERE expires_at <= ?`, ts(now))
	return err
}

// addressValue stores a missing address as the empty value (the column is
// NOT NULL), one address among others.
func addressValue(a []byte) []byte {
	if a == nil {
		return []byte{}
	}
	return a
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

func (s *Store) PendingRequestUsage(ctx context.Context) (storage.PendingUsage, error) {
	// Every byte of every value (client_id as bytes, not characters), plus
	// the two times.
	clientID := `LENGTH(CAST(client_id AS BLOB))`
	if s.flavor == flavorPostgres {
		clientID = `OCTET_LENGTH(client_id)`
	}
	var u storage.PendingUsage
	err := s.queryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(LENGTH(id_hash) + LENGTH(browser_hash) + LENGTH(address_hash) + LENGTH(request) + `+
		clientID+` + 16), 0) FROM pending_requests`).Scan(&u.Rows, &u.Bytes)
	return u, s.mapErr(err)
}
