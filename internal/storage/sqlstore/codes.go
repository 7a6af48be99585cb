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

func (s *Store) RedeemAuthCode(ctx context.Context, codeHash []byte, now time.Time, issue storage.RedeemFunc) (storage.AuthCode, error) {
	var code storage.AuthCode
	err := s.inTx(ctx, func(t *tx) error {
		var err error
		code, err = scanCode(t.queryRow(`SELECT `+codeColumns+` FROM auth_codes WHERE code_hash = ?`+t.s.forUpdate(), codeHash))
		if err != nil {
			return t.s.mapErr(err)
		}
		if !code.UsedAt.IsZero() {
			// RFC 6749 §4.1.2: a code used twice revokes what it issued.
			if _, err := t.exec(`UPDATE grants SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, ts(now), code.GrantID); err != nil {
				return err
			}
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
	return code, err
}
