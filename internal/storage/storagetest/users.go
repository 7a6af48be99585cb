package storagetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

func testUsersCreateGetUpdate(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u := newUser("u1", "Alice")
	// A non-UTC input must come back as the same instant, in UTC.
	u.CreatedAt = t0.In(time.FixedZone("UTC+5", 5*3600))
	u.Declared = storage.Declaration{Fields: storage.AllUserFields, PasswordHash: u.PasswordHash}
	mustCreateUser(t, s, u)

	got, err := s.GetUser(ctx, "u1")
	wantErr(t, "GetUser", err, nil)
	wantEqual(t, "GetUser", got, u)

	got, err = s.GetUserByUsername(ctx, "aLiCe")
	wantErr(t, "GetUserByUsername", err, nil)
	wantEqual(t, "GetUserByUsername", got, u)

	// UpdateUser replaces every field but ID and CreatedAt.
	up := storage.User{
		ID:           "u1",
		Username:     "Alice2",
		PasswordHash: "$argon2id$new",
		Email:        "new@example.com",
		Name:         "New Name",
		GivenName:    "New",
		FamilyName:   "Name",
		Disabled:     true,
		CreatedAt:    t0.Add(99 * time.Hour),
		UpdatedAt:    t0.Add(time.Hour + time.Nanosecond),
		Declared:     storage.Declaration{Fields: storage.FieldEmail | storage.FieldName, PasswordHash: "$argon2id$declared"},
	}
	wantErr(t, "UpdateUser", s.UpdateUser(ctx, up), nil)
	want := up
	want.CreatedAt = u.CreatedAt
	got, err = s.GetUser(ctx, "u1")
	wantErr(t, "GetUser after update", err, nil)
	wantEqual(t, "GetUser after update", got, want)

	up.ID = "nobody"
	up.Username = "nobody"
	wantErr(t, "UpdateUser(unknown)", s.UpdateUser(ctx, up), storage.ErrNotFound)
}

func testUsersUnknown(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	_, err := s.GetUser(ctx, "nobody")
	wantErr(t, "GetUser", err, storage.ErrNotFound)
	_, err = s.GetUserByUsername(ctx, "nobody")
	wantErr(t, "GetUserByUsername", err, storage.ErrNotFound)
	_, err = s.DeleteUser(ctx, "nobody", t0)
	wantErr(t, "DeleteUser", err, storage.ErrNotFound)
	_, err = s.DisableUser(ctx, "nobody", t0)
	wantErr(t, "DisableUser", err, storage.ErrNotFound)
	wantErr(t, "EnableUser", s.EnableUser(ctx, "nobody", t0), storage.ErrNotFound)
}

func testUsersUsernameUnique(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	mustCreateUser(t, s, newUser("u1", "Alice"))
	mustCreateUser(t, s, newUser("u2", "Émile"))

	for _, name := range []string{"Alice", "alice", "ALICE", "aLiCe"} {
		err := s.CreateUser(ctx, newUser("u-"+name, name))
		wantErr(t, "CreateUser("+name+")", err, storage.ErrConflict)
	}
	wantErr(t, "CreateUser(émile)", s.CreateUser(ctx, newUser("u3", "émile")), storage.ErrConflict)
	wantErr(t, "CreateUser(same id)", s.CreateUser(ctx, newUser("u1", "other")), storage.ErrConflict)

	// Renaming onto a taken name conflicts too, and changes nothing.
	u2 := newUser("u2", "ALICE")
	wantErr(t, "UpdateUser(ALICE)", s.UpdateUser(ctx, u2), storage.ErrConflict)
	got, err := s.GetUser(ctx, "u2")
	wantErr(t, "GetUser(u2)", err, nil)
	if got.Username != "Émile" {
		t.Errorf("Username after failed rename: got %q, want %q", got.Username, "Émile")
	}

	// The name is kept as entered.
	got, err = s.GetUserByUsername(ctx, "ÉMILE")
	wantErr(t, "GetUserByUsername(ÉMILE)", err, nil)
	if got.ID != "u2" || got.Username != "Émile" {
		t.Errorf("GetUserByUsername(ÉMILE): got %q %q, want u2 %q", got.ID, got.Username, "Émile")
	}

	// Changing only the case of one's own name is no conflict.
	u1 := newUser("u1", "ALICE")
	wantErr(t, "UpdateUser(own name, new case)", s.UpdateUser(ctx, u1), nil)
	got, err = s.GetUserByUsername(ctx, "alice")
	wantErr(t, "GetUserByUsername(alice)", err, nil)
	if got.Username != "ALICE" {
		t.Errorf("Username: got %q, want %q", got.Username, "ALICE")
	}
}

func testUsersRename(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	mustCreateUser(t, s, newUser("u1", "Alice"))
	wantErr(t, "UpdateUser", s.UpdateUser(ctx, newUser("u1", "Alicia")), nil)

	_, err := s.GetUserByUsername(ctx, "alice")
	wantErr(t, "GetUserByUsername(old name)", err, storage.ErrNotFound)
	got, err := s.GetUserByUsername(ctx, "ALICIA")
	wantErr(t, "GetUserByUsername(new name)", err, nil)
	if got.ID != "u1" {
		t.Errorf("GetUserByUsername(new name): got ID %q, want u1", got.ID)
	}
	// The old name is free again.
	mustCreateUser(t, s, newUser("u2", "alice"))
}

func testUsersList(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	got, err := s.ListUsers(ctx)
	wantErr(t, "ListUsers(empty)", err, nil)
	if len(got) != 0 {
		t.Fatalf("ListUsers(empty): got %d users, want 0", len(got))
	}
	want := []storage.User{newUser("u1", "carol"), newUser("u2", "Alice"), newUser("u3", "bob")}
	want[1].Disabled = true
	for _, u := range want {
		mustCreateUser(t, s, u)
	}
	got, err = s.ListUsers(ctx)
	wantErr(t, "ListUsers", err, nil)
	id := func(u storage.User) string { return u.ID }
	wantEqual(t, "ListUsers", sortBy(got, id), sortBy(want, id))
}

func testUsersDeleteCascades(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	a := setup(t, s, "a")
	b := setup(t, s, "b")
	a2 := newSession("a", "sid-a2")
	mustCreateSession(t, s, a2)

	for _, f := range []fixture{a, b} {
		// Consents and grants at both clients: the user goes, not the client.
		for _, c := range []string{"client-a", "client-b"} {
			wantErr(t, "SaveConsent", s.SaveConsent(ctx, storage.Consent{UserID: f.user.ID, ClientID: c, Scopes: []string{"openid"}, GrantedAt: t0}), nil)
		}
		rt := newRefresh("g-"+f.user.ID, "rt-"+f.user.ID, 0)
		mustCreateGrant(t, s, newGrant("g-"+f.user.ID, "client-a", f.user.ID, f.session.SID), &rt)
	}

	ended, err := s.DeleteUser(ctx, "a", t0)
	wantErr(t, "DeleteUser", err, nil)
	sid := func(x storage.Session) string { return x.SID }
	wantEqual(t, "DeleteUser ended sessions", sortBy(ended, sid), sortBy([]storage.Session{a.session, a2}, sid))

	_, err = s.GetUser(ctx, "a")
	wantErr(t, "GetUser(deleted)", err, storage.ErrNotFound)
	for _, x := range []storage.Session{a.session, a2} {
		_, err = s.GetSession(ctx, x.IDHash)
		wantErr(t, "GetSession("+x.SID+")", err, storage.ErrNotFound)
	}
	if l, err := s.ListSessionsByUser(ctx, "a"); err != nil || len(l) != 0 {
		t.Errorf("ListSessionsByUser(deleted): got %d sessions, %v; want 0, nil", len(l), err)
	}
	for _, c := range []string{"client-a", "client-b"} {
		_, err = s.GetConsent(ctx, "a", c)
		wantErr(t, "GetConsent(a, "+c+")", err, storage.ErrNotFound)
	}
	_, err = s.GetGrant(ctx, "g-a")
	wantErr(t, "GetGrant(g-a)", err, storage.ErrNotFound)
	_, _, err = s.GetRefreshToken(ctx, h("refresh:rt-a"))
	wantErr(t, "GetRefreshToken(rt-a)", err, storage.ErrNotFound)
	if l, err := s.ListGrantsByUser(ctx, "a"); err != nil || len(l) != 0 {
		t.Errorf("ListGrantsByUser(deleted): got %d grants, %v; want 0, nil", len(l), err)
	}

	// The other user keeps everything.
	_, err = s.GetUser(ctx, "b")
	wantErr(t, "GetUser(b)", err, nil)
	_, err = s.GetSession(ctx, b.session.IDHash)
	wantErr(t, "GetSession(b)", err, nil)
	_, err = s.GetConsent(ctx, "b", "client-a")
	wantErr(t, "GetConsent(b, client-a)", err, nil)
	wantRevokedAt(t, s, "g-b", time.Time{})
	mustGetRefresh(t, s, h("refresh:rt-b"))
	_, err = s.GetClient(ctx, "client-a")
	wantErr(t, "GetClient(client-a)", err, nil)

	_, err = s.DeleteUser(ctx, "a", t0)
	wantErr(t, "DeleteUser(again)", err, storage.ErrNotFound)
}

func testUsersDisable(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	a := setup(t, s, "a")
	b := setup(t, s, "b")
	a2 := newSession("a", "sid-a2")
	mustCreateSession(t, s, a2)

	bound := newGrant("g-bound", a.client.ID, "a", a.session.SID)
	offline := newGrant("g-offline", a.client.ID, "a", a2.SID)
	offline.SessionBound = false
	earlier := newGrant("g-earlier", a.client.ID, "a", a.session.SID)
	earlier.RevokedAt = t0.Add(time.Minute)
	other := newGrant("g-other", b.client.ID, "b", b.session.SID)
	for _, g := range []storage.Grant{bound, offline, earlier, other} {
		mustCreateGrant(t, s, g, nil)
	}

	now := t0.Add(time.Hour)
	ended, err := s.DisableUser(ctx, "a", now)
	wantErr(t, "DisableUser", err, nil)
	sid := func(x storage.Session) string { return x.SID }
	wantEqual(t, "DisableUser ended sessions", sortBy(ended, sid), sortBy([]storage.Session{a.session, a2}, sid))

	u, err := s.GetUser(ctx, "a")
	wantErr(t, "GetUser", err, nil)
	if !u.Disabled {
		t.Errorf("Disabled after DisableUser: got false, want true")
	}
	for _, x := range []storage.Session{a.session, a2} {
		_, err = s.GetSession(ctx, x.IDHash)
		wantErr(t, "GetSession("+x.SID+")", err, storage.ErrNotFound)
	}
	// Every grant of the user ends, session-bound or not; an earlier revocation stands.
	wantRevokedAt(t, s, "g-bound", now)
	wantRevokedAt(t, s, "g-offline", now)
	wantRevokedAt(t, s, "g-earlier", earlier.RevokedAt)
	wantRevokedAt(t, s, "g-other", time.Time{})
	_, err = s.GetSession(ctx, b.session.IDHash)
	wantErr(t, "GetSession(other user)", err, nil)

	// A disabled user can still be looked up (sign-in says "disabled" itself).
	_, err = s.GetUserByUsername(ctx, a.user.Username)
	wantErr(t, "GetUserByUsername(disabled)", err, nil)

	wantErr(t, "EnableUser", s.EnableUser(ctx, "a", now.Add(time.Minute)), nil)
	u, err = s.GetUser(ctx, "a")
	wantErr(t, "GetUser", err, nil)
	if u.Disabled {
		t.Errorf("Disabled after EnableUser: got true, want false")
	}
	// Enabling does not bring grants back.
	wantRevokedAt(t, s, "g-bound", now)
}

// ModifyUser stores what the change makes of the user, with UpdatedAt moved
// to now; a change that changes nothing writes nothing; a failing change
// writes nothing either.
func testUsersModify(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u := newUser("u1", "alice")
	u.Declared = storage.Declaration{Fields: storage.AllUserFields, PasswordHash: u.PasswordHash}
	mustCreateUser(t, s, u)
	now := t0.Add(time.Hour)

	got, ended, err := s.ModifyUser(ctx, "u1", now, func(x storage.User) (storage.User, error) {
		wantEqual(t, "ModifyUser: the user passed to change", x, u)
		x.PasswordHash = "$argon2id$new"
		x.Declared = storage.Declaration{Fields: storage.AllUserFields &^ storage.FieldPassword}
		return x, nil
	})
	wantErr(t, "ModifyUser", err, nil)
	if len(ended) != 0 {
		t.Errorf("ModifyUser of an active user: got %d ended sessions, want 0", len(ended))
	}
	want := u
	want.PasswordHash, want.UpdatedAt = "$argon2id$new", now
	want.Declared = storage.Declaration{Fields: storage.AllUserFields &^ storage.FieldPassword}
	wantEqual(t, "ModifyUser: returned", got, want)
	stored, err := s.GetUser(ctx, "u1")
	wantErr(t, "GetUser", err, nil)
	wantEqual(t, "ModifyUser: stored", stored, want)

	// Nothing changed: nothing written, UpdatedAt stays.
	got, _, err = s.ModifyUser(ctx, "u1", now.Add(time.Hour), func(x storage.User) (storage.User, error) { return x, nil })
	wantErr(t, "ModifyUser(no change)", err, nil)
	wantEqual(t, "ModifyUser(no change): returned", got, want)
	stored, _ = s.GetUser(ctx, "u1")
	wantEqual(t, "ModifyUser(no change): stored", stored, want)

	// A failing change is returned as it is and writes nothing.
	refused := errors.New("refused")
	_, _, err = s.ModifyUser(ctx, "u1", now.Add(2*time.Hour), func(x storage.User) (storage.User, error) {
		x.Email = "changed@example.com"
		return x, refused
	})
	wantErr(t, "ModifyUser(change fails)", err, refused)
	stored, _ = s.GetUser(ctx, "u1")
	wantEqual(t, "ModifyUser(change fails): stored", stored, want)

	// What identifies the user cannot change.
	for name, f := range map[string]func(storage.User) storage.User{
		"id":         func(x storage.User) storage.User { x.ID = "u2"; return x },
		"created-at": func(x storage.User) storage.User { x.CreatedAt = x.CreatedAt.Add(time.Second); return x },
	} {
		_, _, err = s.ModifyUser(ctx, "u1", now.Add(3*time.Hour), func(x storage.User) (storage.User, error) { return f(x), nil })
		if err == nil {
			t.Errorf("ModifyUser changing the %s: got no error, want a refusal", name)
		}
	}
	stored, _ = s.GetUser(ctx, "u1")
	wantEqual(t, "ModifyUser(key changed): stored", stored, want)

	mustCreateUser(t, s, newUser("u2", "bob"))
	_, _, err = s.ModifyUser(ctx, "u1", now, func(x storage.User) (storage.User, error) { x.Username = "BOB"; return x, nil })
	wantErr(t, "ModifyUser(rename onto a taken name)", err, storage.ErrConflict)
	_, _, err = s.ModifyUser(ctx, "nobody", now, func(x storage.User) (storage.User, error) {
		t.Error("ModifyUser(unknown): change called, want not")
		return x, nil
	})
	wantErr(t, "ModifyUser(unknown)", err, storage.ErrNotFound)
}

// A ModifyUser that disables the user does all DisableUser does, in the same
// transaction: their sessions end, their grants are revoked, the clients are
// owed logout notices.
func testUsersModifyDisables(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	a := setup(t, s, "a")
	b := setup(t, s, "b")
	sessionAtClients(t, s, a, "rp-a")
	offline := newGrant("g-offline", a.client.ID, "a", "")
	offline.SessionBound = false
	mustCreateGrant(t, s, offline, nil)

	now := t0.Add(time.Hour)
	got, ended, err := s.ModifyUser(ctx, "a", now, func(x storage.User) (storage.User, error) {
		x.Disabled = true
		x.Declared.Fields &^= storage.FieldDisabled
		return x, nil
	})
	wantErr(t, "ModifyUser(disable)", err, nil)
	if !got.Disabled {
		t.Error("ModifyUser(disable): got an active user, want disabled")
	}
	sid := func(x storage.Session) string { return x.SID }
	wantEqual(t, "ModifyUser(disable): ended", sortBy(ended, sid), []storage.Session{a.session})
	_, err = s.GetSession(ctx, a.session.IDHash)
	wantErr(t, "GetSession(disabled user)", err, storage.ErrNotFound)
	wantRevokedAt(t, s, "g-offline", now)
	wantRevokedAt(t, s, fmt.Sprintf("g-%s-rp-a", a.session.SID), now)
	_, err = s.GetSession(ctx, b.session.IDHash)
	wantErr(t, "GetSession(other user)", err, nil)
	want := []storage.LogoutNotice{notice(a, "rp-a", now)}
	want[0].DueAt = now.Add(time.Minute) // claimAll leases for a minute
	wantEqual(t, "ModifyUser(disable): notices", claimAll(t, s, now), want)

	// Changing another field of a disabled user ends nothing more, and the
	// disabled user is written as changed.
	got, ended, err = s.ModifyUser(ctx, "a", now.Add(time.Minute), func(x storage.User) (storage.User, error) {
		x.Email = "new@example.com"
		return x, nil
	})
	wantErr(t, "ModifyUser(disabled user's email)", err, nil)
	if !got.Disabled || got.Email != "new@example.com" || len(ended) != 0 {
		t.Errorf("ModifyUser(disabled user's email): got disabled %t, email %q, %d ended; want true, new@example.com, 0",
			got.Disabled, got.Email, len(ended))
	}
}

// Concurrent ModifyUser calls on one user each see what the others wrote:
// none is lost.
func testUsersModifyConcurrent(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u := newUser("u1", "alice")
	u.Name = ""
	mustCreateUser(t, s, u)
	errs := concurrently(s, concurrency, func(i int) error {
		_, _, err := s.ModifyUser(ctx, "u1", t0.Add(time.Duration(i+1)*time.Second), func(x storage.User) (storage.User, error) {
			x.Name += "x"
			return x, nil
		})
		return err
	})
	for _, err := range errs {
		wantErr(t, "ModifyUser", err, nil)
	}
	got, err := s.GetUser(ctx, "u1")
	wantErr(t, "GetUser", err, nil)
	if len(got.Name) != concurrency {
		t.Errorf("Name after %d concurrent appends: got %d characters, want %d", concurrency, len(got.Name), concurrency)
	}
}
