package sqlstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/castellan-auth/castellan/internal/storage"
)

// On PostgreSQL a refresh is two round trips instead of five. The locking
// transaction (BEGIN, SELECT … FOR UPDATE, UPDATE, INSERT, COMMIT) becomes a
// read, the decision in Go, and one statement that applies the decision only
// if the token and its grant are still as they were read: compare-and-set
// instead of a lock. A statement is atomic on its own, so the rotation (mark
// the token used, insert its child) still happens whole or not at all, and
// single use still holds: of two rotations of one token the second one's
// UPDATE waits for the first's row lock, re-checks its condition against the
// committed row (READ COMMITTED re-evaluation), finds used_at changed and
// matches nothing. The loser then reads again and decides on what the winner
// left (grace window or reuse), as if it had come second under the lock.
//
// SQLite keeps the transaction: there it costs no round trips, and its writes
// are committed in batches (commit.go).

// maxRefreshRaces bounds how often one call re-reads after losing a race. A
// token changes at most a few times in a burst (rotated once, then revoked),
// so running out means something keeps rewriting it.
const maxRefreshRaces = 8

var errRefreshContended = errors.New("refresh token changed under every attempt to use it")

// refreshUnchanged is the condition on a refresh_tokens row that it and its
// grant are as they were read: used_at, expires_at and the grant's revoked_at
// are all that change after creation.
const refreshUnchanged = `hash = ? AND used_at = ? AND expires_at = ?
	AND EXISTS (SELECT 1 FROM grants WHERE id = ? AND revoked_at = ?)`

// rotateIfUnchanged marks the token used and inserts its child in one
// statement; the INSERT takes its one row from the UPDATE, so nothing is
// inserted when the UPDATE matched nothing.
const rotateIfUnchanged = `WITH used AS (
	UPDATE refresh_tokens SET used_at = ?, child_hash = ? WHERE ` + refreshUnchanged + `
	RETURNING grant_id)
	INSERT INTO refresh_tokens (` + refreshColumns + `)
	SELECT ?::bytea, grant_id, ?::integer, ?::bigint, ?::bigint, ?::bigint, ?::bytea FROM used`

const keepIfUnchanged = `UPDATE refresh_tokens SET expires_at = ? WHERE ` + refreshUnchanged

func (s *Store) useRefreshCompareAndSet(ctx context.Context, hash []byte, decide storage.RefreshFunc) (storage.RefreshToken, storage.Grant, storage.User, error) {
	for range maxRefreshRaces {
		read, err := scanRefreshForUse(s.queryRow(ctx, refreshForUse, hash))
		if err != nil {
			return storage.RefreshToken{}, storage.Grant{}, storage.User{}, s.mapErr(err)
		}
		r, g := read.token, read.grant
		applied, err := s.applyRefresh(ctx, r, g, decide(r, g, read.session))
		if err != nil || applied {
			return r, g, read.user, err
		}
	}
	return storage.RefreshToken{}, storage.Grant{}, storage.User{}, errRefreshContended
}

// applyRefresh applies d to the token r of grant g as read. applied is false
// when r or g changed since (nothing was written): decide again.
func (s *Store) applyRefresh(ctx context.Context, r storage.RefreshToken, g storage.Grant, d storage.RefreshDecision) (applied bool, err error) {
	unchanged := []any{r.Hash, ts(r.UsedAt), ts(r.ExpiresAt), g.ID, ts(g.RevokedAt)}
	switch d.Action {
	case storage.RefreshRotate:
		if d.Next == nil || d.Next.GrantID != g.ID {
			return false, fmt.Errorf("refresh rotation without a child of grant %q", g.ID)
		}
		n := d.Next
		args := append(append([]any{ts(n.CreatedAt), n.Hash}, unchanged...),
			n.Hash, n.Generation, ts(n.CreatedAt), ts(n.ExpiresAt), ts(n.UsedAt), n.ChildHash)
		return s.execChanged(ctx, rotateIfUnchanged, args...)
	case storage.RefreshKeep:
		if d.Next == nil {
			return true, nil
		}
		return s.execChanged(ctx, keepIfUnchanged, append([]any{ts(d.Next.ExpiresAt)}, unchanged...)...)
	case storage.RefreshReturnChild:
		return true, nil
	case storage.RefreshRevoke:
		if _, err := s.exec(ctx, `UPDATE grants SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, ts(d.RevokeAt), g.ID); err != nil {
			return false, err
		}
		// Fail closed: a refusal must never read as success to the caller.
		return true, cmp.Or(d.Err, storage.ErrRevoked)
	case storage.RefreshReject:
		return true, cmp.Or(d.Err, errRejected)
	default:
		return false, fmt.Errorf("unknown refresh action %d", d.Action)
	}
}

// execChanged runs a conditional write and reports whether it matched a row.
func (s *Store) execChanged(ctx context.Context, query string, args ...any) (bool, error) {
	res, err := s.exec(ctx, query, args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}
