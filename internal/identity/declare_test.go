package identity

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
)

// fixture is a Directory on a real SQLite file with a fake clock.
type fixture struct {
	t     *testing.T
	dir   *Directory
	store *sqlstore.Store
	clock *clock.Fake
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	store, err := sqlstore.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "castellan.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	clk := clock.NewFake(time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC))
	return &fixture{t: t, store: store, clock: clk,
		dir: NewDirectory(store, NewHasher(cheap, 64*1024, time.Second), clk, slog.New(slog.DiscardHandler))}
}

// start is what a start of the server does with one declared user, a minute
// after whatever happened before.
func (f *fixture) start(d Declaration) Declared {
	f.t.Helper()
	f.clock.Advance(time.Minute)
	res, err := f.dir.Declare(f.t.Context(), d)
	if err != nil {
		f.t.Fatalf("Declare(%s): %v", d.Username, err)
	}
	return res
}

func (f *fixture) user(name string) storage.User {
	f.t.Helper()
	u, err := f.dir.Lookup(f.t.Context(), name)
	if err != nil {
		f.t.Fatalf("Lookup(%s): %v", name, err)
	}
	return u
}

// signsIn reports whether password signs name in.
func (f *fixture) signsIn(name, password string) bool {
	f.t.Helper()
	_, err := f.dir.Authenticate(f.t.Context(), name, password)
	if err != nil && !errors.Is(err, ErrBadCredentials) {
		f.t.Fatalf("Authenticate(%s): %v", name, err)
	}
	return err == nil
}

func alice() Declaration {
	return Declaration{
		Profile:  Profile{Username: "alice", Email: "alice@example.com", EmailVerified: true, Name: "Alice Liddell"},
		Password: "wonderland",
	}
}

// TestDeclaredUserKeepsAdministratorsChange: a start with the same config
// never undoes what an administrator changed since (disable, enable, passwd),
// and the fields the administrator did not touch still follow the config.
func TestDeclaredUserKeepsAdministratorsChange(t *testing.T) {
	const newPassword = "looking-glass"
	for _, tc := range []struct {
		name string
		// declared is the config at the first start, admin the change made
		// after it, restart the config at the next start (declared if nil).
		declared func() Declaration
		admin    func(f *fixture, id string) (Change, error)
		restart  func() Declaration
		// undeclared is the field the change takes from the config.
		undeclared storage.UserFields
		check      func(f *fixture, res Declared)
	}{
		{
			name:       "disable-then-restart-keeps-disabled",
			declared:   alice,
			admin:      func(f *fixture, id string) (Change, error) { return f.dir.Disable(f.t.Context(), id) },
			undeclared: storage.FieldDisabled,
			check: func(f *fixture, res Declared) {
				if !f.user("alice").Disabled {
					f.t.Error("after a restart: alice is enabled again, want her disabled")
				}
				if f.signsIn("alice", "wonderland") {
					f.t.Error("after a restart: a disabled alice signs in")
				}
				if res.Kept != storage.FieldDisabled {
					f.t.Errorf("kept: got %q, want disabled", res.Kept)
				}
			},
		},
		{
			name: "enable-then-restart-keeps-enabled",
			declared: func() Declaration {
				d := alice()
				d.Disabled = true
				return d
			},
			admin:      func(f *fixture, id string) (Change, error) { return f.dir.Enable(f.t.Context(), id) },
			undeclared: storage.FieldDisabled,
			check: func(f *fixture, res Declared) {
				if !f.signsIn("alice", "wonderland") {
					f.t.Error("after a restart: alice is disabled again, want her enabled")
				}
			},
		},
		{
			name:       "passwd-then-restart-keeps-new-password",
			declared:   alice,
			admin:      func(f *fixture, id string) (Change, error) { return f.dir.SetPassword(f.t.Context(), id, newPassword) },
			undeclared: storage.FieldPassword,
			check: func(f *fixture, res Declared) {
				if f.signsIn("alice", "wonderland") {
					f.t.Error("after a restart: the declared old password signs in, want it refused")
				}
				if !f.signsIn("alice", newPassword) {
					f.t.Error("after a restart: the password set with passwd is refused")
				}
				if res.Kept != storage.FieldPassword {
					f.t.Errorf("kept: got %q, want password", res.Kept)
				}
			},
		},
		{
			name: "passwd-then-restart-keeps-new-password-over-declared-hash",
			declared: func() Declaration {
				d := alice()
				d.Password, d.PasswordHash = "", HashPassword("wonderland", cheap)
				return d
			},
			admin:      func(f *fixture, id string) (Change, error) { return f.dir.SetPassword(f.t.Context(), id, newPassword) },
			undeclared: storage.FieldPassword,
			check: func(f *fixture, res Declared) {
				if f.signsIn("alice", "wonderland") || !f.signsIn("alice", newPassword) {
					f.t.Error("after a restart: want the password set with passwd, not the declared hash")
				}
			},
		},
		{
			name:     "disable-then-config-changes-email-applies-email-only",
			declared: alice,
			admin:    func(f *fixture, id string) (Change, error) { return f.dir.Disable(f.t.Context(), id) },
			restart: func() Declaration {
				d := alice()
				d.Email, d.Name = "alice@wonderland.example", "Alice"
				return d
			},
			undeclared: storage.FieldDisabled,
			check: func(f *fixture, res Declared) {
				u := f.user("alice")
				if u.Email != "alice@wonderland.example" || u.Name != "Alice" {
					f.t.Errorf("after a restart: got email %q, name %q; want the config's new ones", u.Email, u.Name)
				}
				if !u.Disabled {
					f.t.Error("after a restart: alice is enabled again, want her disabled")
				}
				if want := storage.FieldEmail | storage.FieldName; res.Applied != want {
					f.t.Errorf("applied: got %q, want %q", res.Applied, want)
				}
			},
		},
		{
			name:     "passwd-then-config-changes-password-keeps-passwd",
			declared: alice,
			admin:    func(f *fixture, id string) (Change, error) { return f.dir.SetPassword(f.t.Context(), id, newPassword) },
			restart: func() Declaration {
				d := alice()
				d.Password = "through the looking glass"
				return d
			},
			undeclared: storage.FieldPassword,
			check: func(f *fixture, res Declared) {
				if !f.signsIn("alice", newPassword) || f.signsIn("alice", "through the looking glass") {
					f.t.Error("after a restart: want the password set with passwd to stand")
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			first := f.start(tc.declared())
			if !first.Created || first.User.Declared.Fields != storage.AllUserFields {
				t.Fatalf("first start: got created %t, declared %q; want a new user with every field declared", first.Created, first.User.Declared.Fields)
			}
			f.clock.Advance(time.Minute)
			ch, err := tc.admin(f, first.User.ID)
			if err != nil {
				t.Fatal(err)
			}
			if ch.Undeclared != tc.undeclared {
				t.Errorf("the change took %q from the config, want %q", ch.Undeclared, tc.undeclared)
			}
			if got := f.user("alice").Declared.Fields; got != storage.AllUserFields&^tc.undeclared {
				t.Errorf("declared after the change: got %q, want %q", got, storage.AllUserFields&^tc.undeclared)
			}
			restart := tc.restart
			if restart == nil {
				restart = tc.declared
			}
			res := f.start(restart())
			if res.Applied&tc.undeclared != 0 {
				t.Errorf("the restart applied %q, want the administrator's change kept", res.Applied&tc.undeclared)
			}
			tc.check(f, res)
			// And the start after it still keeps it.
			again := f.start(restart())
			if again.Applied != 0 || !again.User.UpdatedAt.Equal(res.User.UpdatedAt) {
				t.Errorf("a further start: applied %q, updated_at %v → %v; want nothing changed", again.Applied, res.User.UpdatedAt, again.User.UpdatedAt)
			}
		})
	}
}

// TestDeclaredFieldChangeApplies: a field the config governs takes the
// declared value at the next start, the password included.
func TestDeclaredFieldChangeApplies(t *testing.T) {
	f := newFixture(t)
	f.start(alice())
	d := alice()
	d.Email, d.EmailVerified, d.GivenName, d.Disabled = "a@example.org", false, "Alice", true
	d.Password = "a new declared password"
	res := f.start(d)
	want := storage.FieldEmail | storage.FieldEmailVerified | storage.FieldGivenName | storage.FieldDisabled | storage.FieldPassword
	if res.Applied != want || res.Kept != 0 {
		t.Errorf("applied %q, kept %q; want %q and nothing kept", res.Applied, res.Kept, want)
	}
	u := f.user("alice")
	if u.Email != "a@example.org" || u.EmailVerified || u.GivenName != "Alice" || !u.Disabled {
		t.Errorf("got %+v, want the declared profile", u)
	}
	d.Disabled = false
	f.start(d)
	if f.signsIn("alice", "wonderland") || !f.signsIn("alice", "a new declared password") {
		t.Error("want the newly declared password, not the old one")
	}
}

// TestDeclareUnchangedWritesNothing: a start with an unchanged config writes
// nothing, so updated_at stays where it was: for a plain-text password, for a
// declared hash, and after a sign-in upgraded the stored hash to new parameters.
func TestDeclareUnchangedWritesNothing(t *testing.T) {
	old := Params{MemoryKiB: 512, Iterations: 1, Parallelism: 1} // not the hasher's: sign-in upgrades it
	for _, tc := range []struct {
		name string
		decl Declaration
	}{
		{"plain-password", alice()},
		{"password-hash", func() Declaration {
			d := alice()
			d.Password, d.PasswordHash = "", HashPassword("wonderland", cheap)
			return d
		}()},
		{"password-hash-upgraded-at-sign-in", func() Declaration {
			d := alice()
			d.Password, d.PasswordHash = "", HashPassword("wonderland", old)
			return d
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			created := f.start(tc.decl)
			if !f.signsIn("alice", "wonderland") { // upgrades a hash with old parameters
				t.Fatal("alice does not sign in")
			}
			before := f.user("alice")
			for range 2 {
				res := f.start(tc.decl)
				if res.Applied != 0 || res.Kept != 0 {
					t.Errorf("applied %q, kept %q; want nothing", res.Applied, res.Kept)
				}
			}
			after := f.user("alice")
			if after != before {
				t.Errorf("after two starts: got %+v, want it unchanged: %+v", after, before)
			}
			if tc.name != "password-hash-upgraded-at-sign-in" && !after.UpdatedAt.Equal(created.User.UpdatedAt) {
				t.Errorf("updated_at: got %v, want %v (creation)", after.UpdatedAt, created.User.UpdatedAt)
			}
			if tc.name == "password-hash-upgraded-at-sign-in" && after.PasswordHash == tc.decl.PasswordHash {
				t.Error("the hash with old parameters was not upgraded at sign-in, or a start put it back")
			}
		})
	}
}

// TestDeclareTakesOverAgreeingFields: a user who exists without a declaration
// (added with the CLI, or stored by an older version) is taken over in the
// fields that agree with the config, and left as they are in the others.
func TestDeclareTakesOverAgreeingFields(t *testing.T) {
	f := newFixture(t)
	if _, err := f.dir.Add(t.Context(), Profile{Username: "alice", Email: "alice@example.com", Name: "Alice"}, "wonderland"); err != nil {
		t.Fatal(err)
	}
	d := alice() // email agrees, email_verified and name do not; the password agrees
	res := f.start(d)
	wantKept := storage.FieldEmailVerified | storage.FieldName
	if res.Created || res.Applied != 0 || res.Kept != wantKept {
		t.Errorf("got created %t, applied %q, kept %q; want an existing user, nothing applied, %q kept", res.Created, res.Applied, res.Kept, wantKept)
	}
	u := f.user("alice")
	if u.Name != "Alice" || u.EmailVerified {
		t.Errorf("got name %q, verified %t; want the ones added with the CLI", u.Name, u.EmailVerified)
	}
	if got := u.Declared.Fields; got != storage.AllUserFields&^wantKept {
		t.Errorf("declared: got %q, want %q", got, storage.AllUserFields&^wantKept)
	}
	// Now governed, the password follows the config.
	d.Password = "a new declared password"
	f.start(d)
	if !f.signsIn("alice", "a new declared password") {
		t.Error("the declared password, once governed, did not apply")
	}
}

// TestDeclareGovernsAgainOnceAgreeing: after an administrator's change, the
// config takes the field back when the two agree again.
func TestDeclareGovernsAgainOnceAgreeing(t *testing.T) {
	f := newFixture(t)
	id := f.start(alice()).User.ID
	if _, err := f.dir.Disable(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := f.dir.Enable(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if res := f.start(alice()); res.User.Declared.Fields != storage.AllUserFields || res.Applied != 0 {
		t.Fatalf("declared %q, applied %q; want every field governed again and nothing applied", res.User.Declared.Fields, res.Applied)
	}
	d := alice()
	d.Disabled = true
	if res := f.start(d); res.Applied != storage.FieldDisabled || !res.User.Disabled {
		t.Errorf("applied %q, disabled %t; want the config to disable alice", res.Applied, res.User.Disabled)
	}
}

// TestUpgradeHashKeepsNewPassword: a sign-in that read the user before an
// administrator changed the password must not write a rehash of the old one.
func TestUpgradeHashKeepsNewPassword(t *testing.T) {
	f := newFixture(t)
	stale := Params{MemoryKiB: 512, Iterations: 1, Parallelism: 1}
	u := f.start(Declaration{Profile: Profile{Username: "alice"}, PasswordHash: HashPassword("wonderland", stale)}).User
	if _, err := f.dir.SetPassword(t.Context(), u.ID, "looking-glass"); err != nil {
		t.Fatal(err)
	}
	f.dir.upgradeHash(t.Context(), u, "wonderland") // the sign-in that read u
	if f.signsIn("alice", "wonderland") || !f.signsIn("alice", "looking-glass") {
		t.Error("the rehash of the old password replaced the new one")
	}
}

func TestDeclareRefuses(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		decl Declaration
	}{
		{"fail/bad-username", Declaration{Profile: Profile{Username: " alice"}, Password: "wonderland"}},
		{"fail/bad-password-hash", Declaration{Profile: Profile{Username: "alice"}, PasswordHash: "$argon2id$nonsense"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.dir.Declare(context.Background(), tc.decl); err == nil {
				t.Error("got no error, want a refusal")
			}
		})
	}
}
