// Package identity manages the people who sign in: their records, their
// argon2id password hashes (x/crypto) and the bounded pool that computes them.
package identity

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"unicode"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/storage"
)

// ErrBadCredentials is the one answer to a failed sign-in, whatever the reason
// (unknown user, wrong password, disabled account): the page must not tell them apart.
var ErrBadCredentials = errors.New("wrong username or password")

// Store is what the directory needs from storage.
type Store interface {
	storage.Users
}

// Directory finds and authenticates users.
type Directory struct {
	store  Store
	hasher *Hasher
	clock  clock.Clock
	log    *slog.Logger
}

// NewDirectory returns a directory over store.
func NewDirectory(store Store, hasher *Hasher, clk clock.Clock, log *slog.Logger) *Directory {
	return &Directory{store: store, hasher: hasher, clock: clk, log: log}
}

// Hasher returns the password hasher.
func (d *Directory) Hasher() *Hasher { return d.hasher }

// Authenticate checks a username and password. It returns ErrBadCredentials for
// every kind of refusal, ErrBusy when hashing is saturated, and other errors only
// when storage fails.
func (d *Directory) Authenticate(ctx context.Context, username, password string) (storage.User, error) {
	u, err := d.store.GetUserByUsername(ctx, strings.TrimSpace(username))
	if errors.Is(err, storage.ErrNotFound) {
		if _, _, err := d.hasher.Verify(ctx, password, ""); err != nil {
			return storage.User{}, err
		}
		return storage.User{}, ErrBadCredentials
	}
	if err != nil {
		return storage.User{}, err
	}
	ok, stale, err := d.hasher.Verify(ctx, password, u.PasswordHash)
	if err != nil {
		if errors.Is(err, ErrBusy) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return storage.User{}, err
		}
		d.log.Error("stored password hash unreadable", "user_id", u.ID, "err", err)
		return storage.User{}, ErrBadCredentials
	}
	if !ok || u.Disabled {
		return storage.User{}, ErrBadCredentials
	}
	if stale {
		d.upgradeHash(ctx, u, password)
	}
	return u, nil
}

// upgradeHash rehashes with the current parameters after a successful sign-in,
// so raising the cost in config reaches every account over time.
func (d *Directory) upgradeHash(ctx context.Context, u storage.User, password string) {
	h, err := d.hasher.Hash(ctx, password)
	if err != nil {
		return
	}
	u.PasswordHash = h
	u.UpdatedAt = d.clock.Now()
	if err := d.store.UpdateUser(ctx, u); err != nil {
		d.log.Warn("could not upgrade password hash", "user_id", u.ID, "err", err)
	}
}

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

// ValidUsername reports whether a username is acceptable: 1 to 128 printable
// characters without white space at either end.
func ValidUsername(u string) bool {
	if u == "" || len(u) > 128 || strings.TrimSpace(u) != u {
		return false
	}
	for _, r := range u {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Put creates the user named by p.Username, or updates the profile of the one
// that exists (matched case-insensitively). passwordHash, when not empty,
// replaces the stored hash. It returns the stored user and whether it was created.
func (d *Directory) Put(ctx context.Context, p Profile, passwordHash string) (storage.User, bool, error) {
	if !ValidUsername(p.Username) {
		return storage.User{}, false, errors.New("invalid username")
	}
	now := d.clock.Now()
	u, err := d.store.GetUserByUsername(ctx, p.Username)
	created := errors.Is(err, storage.ErrNotFound)
	switch {
	case created:
		if passwordHash == "" {
			return storage.User{}, false, errors.New("a new user needs a password")
		}
		u = storage.User{ID: opaque.ID(), CreatedAt: now}
	case err != nil:
		return storage.User{}, false, err
	}
	wasDisabled := u.Disabled
	u.Username, u.Email, u.EmailVerified = p.Username, p.Email, p.EmailVerified
	u.Name, u.GivenName, u.FamilyName = p.Name, p.GivenName, p.FamilyName
	u.UpdatedAt = now
	if passwordHash != "" {
		u.PasswordHash = passwordHash
	}
	if created {
		u.Disabled = p.Disabled
		return u, true, d.store.CreateUser(ctx, u)
	}
	if err := d.store.UpdateUser(ctx, u); err != nil {
		return storage.User{}, false, err
	}
	// Disabling goes through DisableUser so that sessions end and grants are revoked.
	if p.Disabled && !wasDisabled {
		if _, err := d.store.DisableUser(ctx, u.ID, now); err != nil {
			return storage.User{}, false, err
		}
		u.Disabled = true
	} else if !p.Disabled && wasDisabled {
		if err := d.store.EnableUser(ctx, u.ID, now); err != nil {
			return storage.User{}, false, err
		}
		u.Disabled = false
	}
	return u, false, nil
}

// User returns the user with id.
func (d *Directory) User(ctx context.Context, id string) (storage.User, error) {
	return d.store.GetUser(ctx, id)
}
