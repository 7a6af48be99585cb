package sqlstore

import (
	"context"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

const codeColumns = `code_hash, client_id, user_id, sid, redirect_uri, scopes, nonce, code_challenge, code_challenge_method,
	auth_time, amr, grant_id, dpop_jkt, created_at, expires_at, used_at`

func scanCode(row interface{ Scan(...any) error }) (storage.AuthCode, error) {
	var c storage.AuthCode
	var scopes, amr string
	var auth, created, expires, used int64
	err := row.Scan(&c.CodeHash, &c.ClientID, &c.UserID, &c.SID, &c.RedirectURI, &scopes, &c.Nonce, &c.CodeChallenge,
		&c.CodeChallengeMethod, &auth, &amr, &c.GrantID, &c.DPoPJKT, &created, &expires, &used)
	c.Scopes, c.AMR = splitList(scopes), splitList(amr)
	c.AuthTime, c.CreatedAt, c.ExpiresAt, c.UsedAt = tm(auth), tm(created), tm(expires), tm(used)
	return c, err
}

func (s *Store) CreateAuthCode(ctx context.Context, c storage.AuthCode) error {
	_, err := s.exec(ctx, `INSERT INTO auth_codes (`+codeColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.CodeHash, c.ClientID, c.UserID, c.SID, c.RedirectURI, joinList(c.Scopes), c.Nonce, c.CodeChallenge,
		c.CodeChallengeMethod, ts(c.AuthTime), joinList(c.AMR), c.GrantID, c.DPoPJKT, ts(c.CreatedAt), ts(c.ExpiresAt), ts(c.UsedAt))
	return err
}

// codeWithUser selects a code joined with its user, whose claims go into the
// first ID token and whose disabled flag the token endpoint checks: read with
// the code instead of in another round trip after the redemption.
//
// auth_codes.user_id has no foreign key, so a code outlives its deleted user;
// the inner join then finds no row and the code is ErrNotFound (invalid_grant).
// Nothing is lost by not marking such a code used: its grant could not be
// stored (grants.user_id is a foreign key), and a deleted user's grants are
// deleted with them, so a replay has nothing to revoke.
var codeWithUser = `SELECT ` + qualified("c", codeColumns) + `, ` + qualified("u", userColumns) + `
	FROM auth_codes c JOIN users u ON u.id = c.user_id WHERE c.code_hash = ?`

// codeWithUserLock is the row-lock suffix of codeWithUser (PostgreSQL only:
// SQLite write transactions are exclusive). The code row is locked for update,
// so that of two concurrent redemptions exactly one finds it unused. The user
// row is locked too, but only shared, which lets redemptions for the same user
// run concurrently: it is needed because the token endpoint decides on the
// user read here. Without it, DisableUser (or DeleteUser) could commit between
// this read and our commit; its UPDATE of the user's grants would not see the
// grant we are inserting, and the tokens would go out on a stale "not
// disabled" user with a live grant. With it, a concurrent disable either waits
// for our commit (and then revokes the new grant) or commits first (and this
// SELECT then reads the disabled user, or no row for a deleted one). The lock
// order, user then session (createGrant), is the one DisableUser takes.
const codeWithUserLock = ` FOR UPDATE OF c FOR SHARE OF u`

func (s *Store) RedeemAuthCode(ctx context.Context, codeHash []byte, now time.Time, issue storage.RedeemFunc) (storage.AuthCode, storage.User, error) {
	var code storage.AuthCode
	var user userDest
	lock := ""
	if s.flavor == flavorPostgres {
		lock = codeWithUserLock
	}
	err := s.inTx(ctx, func(t *tx) error {
		var err error
		code, err = scanCode(scanFirst{row: t.queryRow(codeWithUser+lock, codeHash), rest: user.dest()})
		if err != nil {
			return t.s.mapErr(err)
		}
		if !code.UsedAt.IsZero() {
			// RFC 6749 §4.1.2: a code used twice revokes what it issued.
			if _, err := t.exec(`UPDATE grants SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, ts(now), code.GrantID); err != nil {
				return err
			}
			t.syncOnCommit()
			return &keepErr{storage.ErrAlreadyUsed}
		}
		// Checked after reuse: a used code replayed late must still revoke.
		if !now.Before(code.ExpiresAt) {
			return storage.ErrNotFound
		}
		if _, err := t.exec(`UPDATE auth_codes SET used_at = ? WHERE code_hash = ?`, ts(now), codeHash); err != nil {
			return err
		}
		g, rt, err := issue(code)
		if err != nil {
			return &keepErr{err}
		}
		return t.createGrant(g, rt)
	})
	return code, user.user(), err
}
