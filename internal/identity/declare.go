package identity

import (
	"context"
	"errors"
	"fmt"

	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/storage"
)

// Declaration is a user as the config file declares them.
type Declaration struct {
	Profile
	// Password is the password in plain text; PasswordHash an argon2id PHC
	// string instead. Exactly one is set.
	Password     string
	PasswordHash string
}

// Declared is what Declare did to a user.
type Declared struct {
	User    storage.User
	Created bool
	// Applied are the fields whose stored value changed to the declared one.
	Applied storage.UserFields
	// Kept are the declared fields left as they are: changed since by other
	// means (the admin CLI), and still different from the config.
	Kept storage.UserFields
}

// maxDeclareAttempts bounds how often Declare decides again when the user
// changes between its read and its write (an administrator at that moment).
const maxDeclareAttempts = 3

// errChangedMeanwhile makes Declare decide again on a fresh read.
var errChangedMeanwhile = errors.New("user changed while being declared")

// Declare creates the user the config declares, or brings an existing one in
// line with it, field by field, under one rule: the config governs a field
// until it is changed by other means (Disable, Enable, SetPassword), and
// governs it again once the stored value and the declared one agree. So:
//
//   - a new user is created with every field declared;
//   - a field the config governs takes the declared value;
//   - a field it does not govern is left as it is, and taken over if it
//     already holds the declared value (a user added with the admin CLI, or
//     stored before this rule, is taken over in the fields that agree);
//   - nothing is written when nothing changes, so UpdatedAt stays.
//
// The password is the one field that cannot be compared cheaply: Declare
// remembers the hash it set and recognises an unchanged declared password by
// it (one argon2id verification for a plain-text one, as a sign-in costs), so
// a sign-in that upgrades the stored hash is no change of the password.
func (d *Directory) Declare(ctx context.Context, decl Declaration) (Declared, error) {
	if !ValidUsername(decl.Username) {
		return Declared{}, errors.New("invalid username")
	}
	if decl.PasswordHash != "" {
		if err := ParsePHC(decl.PasswordHash); err != nil {
			return Declared{}, fmt.Errorf("password_hash: %w", err)
		}
	}
	for range maxDeclareAttempts {
		u, err := d.store.GetUserByUsername(ctx, decl.Username)
		if errors.Is(err, storage.ErrNotFound) {
			res, err := d.createDeclared(ctx, decl)
			if errors.Is(err, storage.ErrConflict) {
				continue // created meanwhile (castellan user add): declare that one
			}
			return res, err
		}
		if err != nil {
			return Declared{}, err
		}
		res, err := d.updateDeclared(ctx, u, decl)
		if errors.Is(err, errChangedMeanwhile) {
			continue
		}
		return res, err
	}
	return Declared{}, errors.New("the user kept changing while being declared")
}

// createDeclared stores a new user with every field declared.
func (d *Directory) createDeclared(ctx context.Context, decl Declaration) (Declared, error) {
	hash, err := d.declaredHash(ctx, decl)
	if err != nil {
		return Declared{}, err
	}
	now := d.clock.Now()
	p := decl.Profile
	u := storage.User{
		ID: opaque.ID(), Username: p.Username, PasswordHash: hash, Email: p.Email, EmailVerified: p.EmailVerified,
		Name: p.Name, GivenName: p.GivenName, FamilyName: p.FamilyName, Disabled: p.Disabled, CreatedAt: now, UpdatedAt: now,
		Declared: storage.Declaration{Fields: storage.AllUserFields, PasswordHash: hash},
	}
	if err := d.store.CreateUser(ctx, u); err != nil {
		return Declared{}, err
	}
	d.log.Info("declared user created", "username", u.Username, "user_id", u.ID)
	return Declared{User: u, Created: true, Applied: storage.AllUserFields}, nil
}

// declaredHash is the hash to store for the declared password.
func (d *Directory) declaredHash(ctx context.Context, decl Declaration) (string, error) {
	if decl.PasswordHash != "" {
		return decl.PasswordHash, nil
	}
	return d.hasher.Hash(ctx, decl.Password)
}

// passwordPlan is what Declare found out about the declared password before
// its transaction (hashing has no place inside one), and for which stored
// hashes it holds.
type passwordPlan struct {
	// What the plan was made for: the user's PasswordHash, Declared.PasswordHash
	// and whether the config governed the password.
	stored, declared string
	governed         bool
	// unchanged: the config governs the password and declares the one it set.
	unchanged bool
	// matches: the declared password is the stored one.
	matches bool
	// hash is the new hash to store, when the config changed its password.
	hash string
}

// planPassword compares the declared password with what u holds, with at
// most one argon2id verification, and one hash when the config changed it.
func (d *Directory) planPassword(ctx context.Context, u storage.User, decl Declaration) (passwordPlan, error) {
	p := passwordPlan{stored: u.PasswordHash, declared: u.Declared.PasswordHash, governed: u.Declared.Fields&storage.FieldPassword != 0}
	same := func(encoded string) (bool, error) {
		if encoded == "" {
			return false, nil
		}
		if decl.PasswordHash != "" {
			return decl.PasswordHash == encoded, nil
		}
		ok, _, err := d.hasher.Verify(ctx, decl.Password, encoded)
		if err != nil && (errors.Is(err, ErrBusy) || ctx.Err() != nil) {
			return false, err
		}
		return ok, nil // an unreadable hash matches nothing
	}
	var err error
	if !p.governed {
		p.matches, err = same(u.PasswordHash)
		return p, err
	}
	if p.unchanged, err = same(u.Declared.PasswordHash); err != nil || p.unchanged {
		return p, err
	}
	p.hash, err = d.declaredHash(ctx, decl)
	return p, err
}

// updateDeclared applies decl to the existing user u.
func (d *Directory) updateDeclared(ctx context.Context, u storage.User, decl Declaration) (Declared, error) {
	pw, err := d.planPassword(ctx, u, decl)
	if err != nil {
		return Declared{}, err
	}
	var res Declared
	stored, _, err := d.store.ModifyUser(ctx, u.ID, d.clock.Now(), func(cur storage.User) (storage.User, error) {
		if cur.PasswordHash != pw.stored || cur.Declared.PasswordHash != pw.declared ||
			(cur.Declared.Fields&storage.FieldPassword != 0) != pw.governed {
			return cur, errChangedMeanwhile
		}
		res.Applied, res.Kept = applyDeclaration(&cur, decl.Profile, pw)
		return cur, nil
	})
	if err != nil {
		return Declared{}, err
	}
	res.User = stored
	if res.Applied != 0 {
		d.log.Info("declared user updated from the config", "username", stored.Username, "user_id", stored.ID, "fields", res.Applied.String())
	}
	if res.Kept != 0 {
		d.log.Warn("declared values not applied: changed outside the config since (castellan user passwd, disable or enable)",
			"username", stored.Username, "user_id", stored.ID, "fields", res.Kept.String())
	}
	return res, nil
}

// applyDeclaration changes u as the rule of Declare says and returns the
// fields whose value changed and the declared fields it left differing.
func applyDeclaration(u *storage.User, p Profile, pw passwordPlan) (applied, kept storage.UserFields) {
	governed := &u.Declared.Fields
	apply := func(f storage.UserFields, differs bool, set func()) {
		switch {
		case *governed&f != 0 && differs:
			set()
			applied |= f
		case *governed&f != 0:
		case !differs:
			*governed |= f // the stored value agrees: the config governs it again
		default:
			kept |= f
		}
	}
	apply(storage.FieldUsername, u.Username != p.Username, func() { u.Username = p.Username })
	apply(storage.FieldEmail, u.Email != p.Email, func() { u.Email = p.Email })
	apply(storage.FieldEmailVerified, u.EmailVerified != p.EmailVerified, func() { u.EmailVerified = p.EmailVerified })
	apply(storage.FieldName, u.Name != p.Name, func() { u.Name = p.Name })
	apply(storage.FieldGivenName, u.GivenName != p.GivenName, func() { u.GivenName = p.GivenName })
	apply(storage.FieldFamilyName, u.FamilyName != p.FamilyName, func() { u.FamilyName = p.FamilyName })
	apply(storage.FieldDisabled, u.Disabled != p.Disabled, func() { u.Disabled = p.Disabled })

	switch {
	case *governed&storage.FieldPassword != 0 && pw.unchanged:
	case *governed&storage.FieldPassword != 0:
		u.PasswordHash, u.Declared.PasswordHash = pw.hash, pw.hash
		applied |= storage.FieldPassword
	case pw.matches:
		*governed |= storage.FieldPassword
		u.Declared.PasswordHash = u.PasswordHash
	default:
		kept |= storage.FieldPassword
	}
	return applied, kept
}
