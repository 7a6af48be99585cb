// Package identity manages the people who sign in: their records, their
// argon2id password hashes (x/crypto) and the bounded pool that computes them.
//
// The Directory is the one owner of a user's lifecycle. The admin CLI adds,
// disables, enables, re-passwords and deletes users through it, the server
// provisions the users the config file declares through it, and sign-in
// upgrades stale hashes through it; nothing else writes users.
package identity

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/storage"
)

// ErrBadCredentials is the one answer to a failed sign-in, whatever the reason
// (unknown user, wrong password, disabled account): the page must not tell them apart.
var ErrBadCredentials = errors.New("wrong username or password")

// Store is what the directory needs from storage.
type Store interface {
	storage.Users
}

// Directory finds, authenticates and changes users.
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
// so raising the cost in config reaches every account over time. It changes
// nothing if the password was changed since it was read: the new password
// must not be overwritten by a rehash of the old one.
func (d *Directory) upgradeHash(ctx context.Context, u storage.User, password string) {
	h, err := d.hasher.Hash(ctx, password)
	if err != nil {
		return
	}
	_, _, err = d.store.ModifyUser(ctx, u.ID, d.clock.Now(), func(cur storage.User) (storage.User, error) {
		if cur.PasswordHash != u.PasswordHash {
			return cur, nil
		}
		cur.PasswordHash = h
		return cur, nil
	})
	if err != nil {
		d.log.Warn("could not upgrade password hash", "user_id", u.ID, "err", err)
	}
}

// User returns the user with id.
func (d *Directory) User(ctx context.Context, id string) (storage.User, error) {
	return d.store.GetUser(ctx, id)
}
