package sqlstore

import (
	"context"
	"strings"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

const userColumns = `id, username, password_hash, email, email_verified, name, given_name, family_name, disabled, created_at, updated_at`

// usernameKey is the case-insensitive identity of a username.
func usernameKey(u string) string { return strings.ToLower(u) }

func scanUser(row interface{ Scan(...any) error }) (storage.User, error) {
	var d userDest
	err := row.Scan(d.dest()...)
	return d.user(), err
}

// userDest receives the userColumns of a row that has other columns too.
type userDest struct {
	u                storage.User
	created, updated int64
}

// dest lists the fields in the order of userColumns.
func (d *userDest) dest() []any {
	u := &d.u
	return []any{&u.ID, &u.Username, &u.PasswordHash, &u.Email, &u.EmailVerified, &u.Name,
		&u.GivenName, &u.FamilyName, &u.Disabled, &d.created, &d.updated}
}

func (d *userDest) user() storage.User {
	u := d.u
	u.CreatedAt, u.UpdatedAt = tm(d.created), tm(d.updated)
	return u
}

func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	_, err := s.exec(ctx, `INSERT INTO users (id, username, username_key, password_hash, email, email_verified, name, given_name, family_name, disabled, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Username, usernameKey(u.Username), u.PasswordHash, u.Email, u.EmailVerified, u.Name,
		u.GivenName, u.FamilyName, u.Disabled, ts(u.CreatedAt), ts(u.UpdatedAt))
	return err
}

func (s *Store) UpdateUser(ctx context.Context, u storage.User) error {
	return mustAffect(s.exec(ctx, `UPDATE users SET username = ?, username_key = ?, password_hash = ?, email = ?, email_verified = ?,
		name = ?, given_name = ?, family_name = ?, disabled = ?, updated_at = ? WHERE id = ?`,
		u.Username, usernameKey(u.Username), u.PasswordHash, u.Email, u.EmailVerified, u.Name,
		u.GivenName, u.FamilyName, u.Disabled, ts(u.UpdatedAt), u.ID))
}

func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	u, err := scanUser(s.queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	return u, s.mapErr(err)
}

func (s *Store) GetUserByUsername(ctx context.Context, username string) (storage.User, error) {
	u, err := scanUser(s.queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE username_key = ?`, usernameKey(username)))
	return u, s.mapErr(err)
}

func (s *Store) ListUsers(ctx context.Context) ([]storage.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY username_key`)
	if err != nil {
		return nil, s.mapErr(err)
	}
	defer rows.Close()
	var out []storage.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, s.mapErr(err)
		}
		out = append(out, u)
	}
	return out, s.mapErr(rows.Err())
}

func (s *Store) DeleteUser(ctx context.Context, id string, now time.Time) ([]storage.Session, error) {
	var ended []storage.Session
	err := s.inTx(ctx, func(t *tx) error {
		var err error
		if ended, err = t.sessionsOf(id); err != nil {
			return err
		}
		// Before the grants go: they name the clients to notify.
		if err := t.queueLogoutNotices(now, ended...); err != nil {
			return err
		}
		// Sessions, consents, grants and refresh tokens follow by ON DELETE CASCADE.
		return mustAffect(t.exec(`DELETE FROM users WHERE id = ?`, id))
	})
	return ended, err
}

func (s *Store) DisableUser(ctx context.Context, id string, now time.Time) ([]storage.Session, error) {
	var ended []storage.Session
	err := s.inTx(ctx, func(t *tx) error {
		if err := mustAffect(t.exec(`UPDATE users SET disabled = true, updated_at = ? WHERE id = ?`, ts(now), id)); err != nil {
			return err
		}
		var err error
		if ended, err = t.sessionsOf(id); err != nil {
			return err
		}
		if _, err := t.exec(`DELETE FROM sessions WHERE user_id = ?`, id); err != nil {
			return err
		}
		if _, err = t.exec(`UPDATE grants SET revoked_at = ? WHERE user_id = ? AND revoked_at = 0`, ts(now), id); err != nil {
			return err
		}
		return t.queueLogoutNotices(now, ended...)
	})
	return ended, err
}

func (s *Store) EnableUser(ctx context.Context, id string, now time.Time) error {
	return mustAffect(s.exec(ctx, `UPDATE users SET disabled = false, updated_at = ? WHERE id = ?`, ts(now), id))
}
