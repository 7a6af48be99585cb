package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/storage"
)

// Profile is what an administrator or the config declares about a user.
type Profile struct {
	Username      string
	Email         string
	EmailVerified bool
	Name          string
	GivenName     string
	FamilyName    string
	Disabled      bool
}

// maxUsernameLength bounds a username (in bytes).
const maxUsernameLength = 128

// ValidUsername reports whether a username is acceptable: 1 to 128 printable
// characters without white space at either end.
func ValidUsername(u string) bool {
	if u == "" || len(u) > maxUsernameLength || strings.TrimSpace(u) != u {
		return false
	}
	for _, r := range u {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Bounds of a password an administrator sets. The minimum follows NIST SP
// 800-63B §3.1.1.2 for passwords chosen by people; the maximum keeps one
// hash from costing more than it should.
const (
	MinPasswordLength = 8    // characters
	MaxPasswordLength = 1024 // bytes
)

// CheckPassword says what is wrong with a new password, or nil.
func CheckPassword(pw string) error {
	if len([]rune(pw)) < MinPasswordLength {
		return fmt.Errorf("password too short: at least %d characters", MinPasswordLength)
	}
	if len(pw) > MaxPasswordLength {
		return fmt.Errorf("password too long: at most %d bytes", MaxPasswordLength)
	}
	return nil
}

// ErrNoUser means no user has the name or id asked for.
var ErrNoUser = errors.New("no such user")

// Lookup returns the user called username (case-insensitively).
func (d *Directory) Lookup(ctx context.Context, username string) (storage.User, error) {
	u, err := d.store.GetUserByUsername(ctx, username)
	if errors.Is(err, storage.ErrNotFound) {
		return u, ErrNoUser
	}
	return u, err
}

// List returns every user, ordered by username.
func (d *Directory) List(ctx context.Context) ([]storage.User, error) {
	return d.store.ListUsers(ctx)
}

// Add creates a user with p and password. The user is not declared: the
// config governs none of their fields unless it declares them and finds
// them as declared (see Declare).
func (d *Directory) Add(ctx context.Context, p Profile, password string) (storage.User, error) {
	if !ValidUsername(p.Username) {
		return storage.User{}, fmt.Errorf("invalid username %q: 1 to %d printable characters, no leading or trailing space", p.Username, maxUsernameLength)
	}
	if err := CheckPassword(password); err != nil {
		return storage.User{}, err
	}
	hash, err := d.hasher.Hash(ctx, password)
	if err != nil {
		return storage.User{}, err
	}
	now := d.clock.Now()
	u := storage.User{
		ID: opaque.ID(), Username: p.Username, PasswordHash: hash, Email: p.Email, EmailVerified: p.EmailVerified,
		Name: p.Name, GivenName: p.GivenName, FamilyName: p.FamilyName, Disabled: p.Disabled, CreatedAt: now, UpdatedAt: now,
	}
	if err := d.store.CreateUser(ctx, u); errors.Is(err, storage.ErrConflict) {
		return storage.User{}, fmt.Errorf("user %q already exists (usernames ignore case)", p.Username)
	} else if err != nil {
		return storage.User{}, err
	}
	return u, nil
}

// Change is what an administrator's change did to a user.
type Change struct {
	// User is the user as stored after the change (before it, for Delete).
	User storage.User
	// Ended are the sessions that ended with the change.
	Ended []storage.Session
	// Undeclared are the fields the config governed until this change: from
	// now on a start leaves them as they are (see Declare). For Delete, every
	// field the config governed: a start with the same config creates the
	// user again, as a new account.
	Undeclared storage.UserFields
}

// Disable disables the user: their sessions end and their grants are
// revoked at once. The config no longer decides whether they are disabled.
func (d *Directory) Disable(ctx context.Context, id string) (Change, error) {
	return d.administer(ctx, id, storage.FieldDisabled, func(u *storage.User) { u.Disabled = true })
}

// Enable lets a disabled user sign in again (their grants stay revoked). The
// config no longer decides whether they are disabled.
func (d *Directory) Enable(ctx context.Context, id string) (Change, error) {
	return d.administer(ctx, id, storage.FieldDisabled, func(u *storage.User) { u.Disabled = false })
}

// SetPassword gives the user a new password. The config no longer changes it.
// Sessions and grants stay: disable the user to end them.
func (d *Directory) SetPassword(ctx context.Context, id, password string) (Change, error) {
	if err := CheckPassword(password); err != nil {
		return Change{}, err
	}
	hash, err := d.hasher.Hash(ctx, password)
	if err != nil {
		return Change{}, err
	}
	return d.administer(ctx, id, storage.FieldPassword, func(u *storage.User) { u.PasswordHash = hash })
}

// Delete removes the user with their sessions, consents and grants.
func (d *Directory) Delete(ctx context.Context, id string) (Change, error) {
	u, err := d.store.GetUser(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return Change{}, ErrNoUser
	}
	if err != nil {
		return Change{}, err
	}
	ended, err := d.store.DeleteUser(ctx, id, d.clock.Now())
	if errors.Is(err, storage.ErrNotFound) {
		return Change{}, ErrNoUser
	}
	if err != nil {
		return Change{}, err
	}
	return Change{User: u, Ended: ended, Undeclared: u.Declared.Fields}, nil
}

// administer applies an administrator's change of field to the user and
// takes that field from the config, in one transaction: a start that
// re-applied the config's value would undo the administrator's decision.
func (d *Directory) administer(ctx context.Context, id string, field storage.UserFields, change func(*storage.User)) (Change, error) {
	var undeclared storage.UserFields
	u, ended, err := d.store.ModifyUser(ctx, id, d.clock.Now(), func(u storage.User) (storage.User, error) {
		undeclared = u.Declared.Fields & field
		change(&u)
		undeclare(&u, field)
		return u, nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return Change{}, ErrNoUser
	}
	if err != nil {
		return Change{}, err
	}
	return Change{User: u, Ended: ended, Undeclared: undeclared}, nil
}

// undeclare takes fields from the config's governance.
func undeclare(u *storage.User, fields storage.UserFields) {
	u.Declared.Fields &^= fields
	if u.Declared.Fields&storage.FieldPassword == 0 {
		// Nothing compares the config's password with it any more.
		u.Declared.PasswordHash = ""
	}
}
