package sqlstore

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

const userColumns = `id, username, password_hash, email, email_verified, name, given_name, family_name, disabled, created_at, updated_at, declared, declared_password_hash`

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
		&u.GivenName, &u.FamilyName, &u.Disabled, &d.created, &d.updated, &u.Declared.Fields, &u.Declared.PasswordHash}
}

func (d *userDest) user() storage.User {
	u := d.u
	u.CreatedAt, u.UpdatedAt = tm(d.created), tm(d.updated)
	return u
}

func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	_, err := s.exec(ctx, `INSERT INTO users (id, username, username_key, password_hash, email, email_verified, name, given_name, family_name,
			disabled, created_at, updated_at, declared, declared_password_hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Username, usernameKey(u.Username), u.PasswordHash, u.Email, u.EmailVerified, u.Name,
		u.GivenName, u.FamilyName, u.Disabled, ts(u.CreatedAt), ts(u.UpdatedAt), u.Declared.Fields, u.Declared.PasswordHash)
	return err
}

// updateUser is the statement that replaces every field but id and created_at.
const updateUser = `UPDATE users SET username = ?, username_key = ?, password_hash = ?, email = ?, email_verified = ?,
	name = ?, given_name = ?, family_name = ?, disabled = ?, updated_at = ?, declared = ?, declared_password_hash = ? WHERE id = ?`

// updateArgs are the arguments of updateUser for u.
func updateArgs(u storage.User) []any {
	return []any{u.Username, usernameKey(u.Username), u.PasswordHash, u.Email, u.EmailVerified, u.Name,
		u.GivenName, u.FamilyName, u.Disabled, ts(u.UpdatedAt), u.Declared.Fields, u.Declared.PasswordHash, u.ID}
}

func (s *Store) UpdateUser(ctx context.Context, u storage.User) error {
	return mustAffect(s.exec(ctx, updateUser, updateArgs(u)...))
}

// errUserChangedKey is what a change func returned when it tried to change
// what identifies the user.
var errUserChangedKey = errors.New("sqlstore: ModifyUser may not change a user's ID or CreatedAt")

func (s *Store) ModifyUser(ctx context.Context, id string, now time.Time, change func(storage.User) (storage.User, error)) (storage.User, []storage.Session, error) {
	var stored storage.User
	var ended []storage.Session
	err := s.inDurableTx(ctx, func(t *tx) error {
		// FOR UPDATE on PostgreSQL; SQLite's write transactions are exclusive.
		u, err := scanUser(t.queryRow(`SELECT `+userColumns+` FROM users WHERE id = ?`+s.forUpdate(), id))
		if err != nil {
			return t.s.mapErr(err)
		}
		next, err := change(u)
		if err != nil {
			return err
		}
		if next.ID != u.ID || !next.CreatedAt.Equal(u.CreatedAt) {
			return errUserChangedKey
		}
		if next == u {
			stored = u
			return nil
		}
		next.UpdatedAt = now
		if err := mustAffect(t.exec(updateUser, updateArgs(next)...)); err != nil {
			return err
		}
		stored = next
		if next.Disabled {
			ended, err = t.endUserSessions(id, now)
		}
		return err
	})
	if err != nil {
		return storage.User{}, nil, err
	}
	return stored, ended, nil
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
	err := s.inDurableTx(ctx, func(t *tx) error {
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
	err := s.inDurableTx(ctx, func(t *tx) error {
		if err := mustAffect(t.exec(`UPDATE users SET disabled = true, updated_at = ? WHERE id = ?`, ts(now), id)); err != nil {
			return err
		}
		var err error
		ended, err = t.endUserSessions(id, now)
		return err
	})
	return ended, err
}

// endUserSessions ends every session of the user, revokes all their grants
// (session-bound or not) and queues the logout notices, returning the
// sessions that ended: what disabling a user means.
func (t *tx) endUserSessions(id string, now time.Time) ([]storage.Session, error) {
	ended, err := t.sessionsOf(id)
	if err != nil {
		return nil, err
	}
	if _, err := t.exec(`DELETE FROM sessions WHERE user_id = ?`, id); err != nil {
		return nil, err
	}
	if _, err = t.exec(`UPDATE grants SET revoked_at = ? WHERE user_id = ? AND revoked_at = 0`, ts(now), id); err != nil {
		return nil, err
	}
	return ended, t.queueLogoutNotices(now, ended...)
}

func (s *Store) EnableUser(ctx context.Context, id string, now time.Time) error {
	return mustAffect(s.execDurable(ctx, `UPDATE users SET disabled = false, updated_at = ? WHERE id = ?`, ts(now), id))
}
