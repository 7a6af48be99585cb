package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

func newPending(name string) storage.PendingRequest {
	return storage.PendingRequest{
		IDHash:      h("pending:" + name),
		BrowserHash: h("browser:" + name),
		ClientID:    "spa",
		Request:     []byte(`{"response_type":"code","state":"` + name + `"}`),
		CreatedAt:   t0,
		ExpiresAt:   t0.Add(10 * time.Minute),
	}
}

func testPendingCreateGetConsume(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	p := newPending("p")
	wantErr(t, "CreatePendingRequest", s.CreatePendingRequest(ctx, p, storage.PendingLimits{}), nil)
	wantErr(t, "CreatePendingRequest(same id)", s.CreatePendingRequest(ctx, p, storage.PendingLimits{}), storage.ErrConflict)

	got, err := s.GetPendingRequest(ctx, p.IDHash, t0)
	wantErr(t, "GetPendingRequest", err, nil)
	wantEqual(t, "GetPendingRequest", got, p)
	// Reading does not consume.
	got, err = s.ConsumePendingRequest(ctx, p.IDHash, t0)
	wantErr(t, "ConsumePendingRequest", err, nil)
	wantEqual(t, "ConsumePendingRequest", got, p)

	_, err = s.GetPendingRequest(ctx, p.IDHash, t0)
	wantErr(t, "GetPendingRequest(consumed)", err, storage.ErrNotFound)
	_, err = s.ConsumePendingRequest(ctx, p.IDHash, t0)
	wantErr(t, "ConsumePendingRequest(again)", err, storage.ErrNotFound)
	_, err = s.GetPendingRequest(ctx, h("nope"), t0)
	wantErr(t, "GetPendingRequest(unknown)", err, storage.ErrNotFound)
}

func testPendingExpired(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	p := newPending("p")
	wantErr(t, "CreatePendingRequest", s.CreatePendingRequest(ctx, p, storage.PendingLimits{}), nil)

	before := p.ExpiresAt.Add(-time.Nanosecond)
	_, err := s.GetPendingRequest(ctx, p.IDHash, before)
	wantErr(t, "GetPendingRequest(1ns before expiry)", err, nil)
	for _, now := range []time.Time{p.ExpiresAt, p.ExpiresAt.Add(time.Hour)} {
		_, err = s.GetPendingRequest(ctx, p.IDHash, now)
		wantErr(t, "GetPendingRequest(expired)", err, storage.ErrNotFound)
		_, err = s.ConsumePendingRequest(ctx, p.IDHash, now)
		wantErr(t, "ConsumePendingRequest(expired)", err, storage.ErrNotFound)
	}
}

func testPendingConcurrentConsume(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	p := newPending("p")
	wantErr(t, "CreatePendingRequest", s.CreatePendingRequest(ctx, p, storage.PendingLimits{}), nil)
	errs := concurrently(s, concurrency, func(int) error {
		_, err := s.ConsumePendingRequest(ctx, p.IDHash, t0)
		return err
	})
	oneWinner(t, "ConsumePendingRequest", errs, storage.ErrNotFound)
}

// codeFixture is a user with a session at a client, and an unused code for them.
func codeFixture(t *testing.T, s storage.Storage) storage.AuthCode {
	t.Helper()
	f := setup(t, s, "a")
	c := newCode("c", f.client.ID, "a", f.session.SID, "g-c")
	mustCreateCode(t, s, c)
	return c
}

// issueGrant is the RedeemFunc of a successful redemption, with a first refresh token.
func issueGrant(c storage.AuthCode) (storage.Grant, *storage.RefreshToken, error) {
	rt := newRefresh(c.GrantID, "rt-"+c.GrantID, 0)
	return grantFor(c), &rt, nil
}

// mustNotIssue is the RedeemFunc for redemptions that must fail before issuing.
func mustNotIssue(t *testing.T) storage.RedeemFunc {
	return func(storage.AuthCode) (storage.Grant, *storage.RefreshToken, error) {
		t.Errorf("RedeemFunc called, want it not called")
		return storage.Grant{}, nil, errors.New("must not issue")
	}
}

func testCodesRedeem(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c := codeFixture(t, s)
	now := t0.Add(10 * time.Second)

	var seen storage.AuthCode
	got, gotUser, err := s.RedeemAuthCode(ctx, c.CodeHash, now, func(x storage.AuthCode) (storage.Grant, *storage.RefreshToken, error) {
		seen = x
		return issueGrant(x)
	})
	wantErr(t, "RedeemAuthCode", err, nil)
	// The RedeemFunc sees the code as stored, still unused.
	wantEqual(t, "code seen by RedeemFunc", seen, c)
	got.UsedAt = time.Time{} // not specified on success
	wantEqual(t, "RedeemAuthCode", got, c)
	// The code's user comes with it, as GetUser reads it.
	wantUser, err := s.GetUser(ctx, c.UserID)
	wantErr(t, "GetUser", err, nil)
	wantEqual(t, "RedeemAuthCode user", gotUser, wantUser)

	g, rtp, _ := issueGrant(c)
	wantEqual(t, "GetGrant", mustGetGrant(t, s, c.GrantID), g)
	r, rg := mustGetRefresh(t, s, rtp.Hash)
	wantEqual(t, "GetRefreshToken", r, *rtp)
	wantEqual(t, "GetRefreshToken grant", rg, g)

	// A RedeemFunc may issue no refresh token.
	c2 := newCode("c2", c.ClientID, c.UserID, c.SID, "g-c2")
	mustCreateCode(t, s, c2)
	_, _, err = s.RedeemAuthCode(ctx, c2.CodeHash, now, func(x storage.AuthCode) (storage.Grant, *storage.RefreshToken, error) {
		return grantFor(x), nil, nil
	})
	wantErr(t, "RedeemAuthCode(no refresh token)", err, nil)
	mustGetGrant(t, s, "g-c2")
}

// The token endpoint refuses a code whose user was disabled or deleted after it
// was issued, on the user RedeemAuthCode returns: a disabled user must come back
// as disabled, and a deleted user's code must issue nothing.
func testCodesUserGone(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := t0.Add(time.Second)

	c := codeFixture(t, s)
	_, err := s.DisableUser(ctx, c.UserID, now)
	wantErr(t, "DisableUser", err, nil)
	// Disabling ended the session, so only a grant not bound to it can be stored.
	_, u, err := s.RedeemAuthCode(ctx, c.CodeHash, now, func(x storage.AuthCode) (storage.Grant, *storage.RefreshToken, error) {
		g := grantFor(x)
		g.SessionBound = false
		return g, nil, nil
	})
	wantErr(t, "RedeemAuthCode(disabled user)", err, nil)
	if u.ID != c.UserID || !u.Disabled {
		t.Errorf("RedeemAuthCode(disabled user): got user %q disabled=%v, want %q disabled", u.ID, u.Disabled, c.UserID)
	}

	f := setup(t, s, "b")
	d := newCode("d", f.client.ID, "b", f.session.SID, "g-d")
	mustCreateCode(t, s, d)
	_, err = s.DeleteUser(ctx, "b", t0)
	wantErr(t, "DeleteUser", err, nil)
	_, _, err = s.RedeemAuthCode(ctx, d.CodeHash, now, mustNotIssue(t))
	wantErr(t, "RedeemAuthCode(deleted user)", err, storage.ErrNotFound)
	_, err = s.GetGrant(ctx, d.GrantID)
	wantErr(t, "GetGrant(deleted user's code)", err, storage.ErrNotFound)
}

func testCodesNotFound(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c := codeFixture(t, s)
	_, _, err := s.RedeemAuthCode(ctx, h("nope"), t0, mustNotIssue(t))
	wantErr(t, "RedeemAuthCode(unknown)", err, storage.ErrNotFound)

	for _, now := range []time.Time{c.ExpiresAt, c.ExpiresAt.Add(time.Hour)} {
		_, _, err = s.RedeemAuthCode(ctx, c.CodeHash, now, mustNotIssue(t))
		wantErr(t, "RedeemAuthCode(expired)", err, storage.ErrNotFound)
	}
	// Failing as expired did not use the code up.
	_, _, err = s.RedeemAuthCode(ctx, c.CodeHash, c.ExpiresAt.Add(-time.Nanosecond), issueGrant)
	wantErr(t, "RedeemAuthCode(1ns before expiry)", err, nil)
}

func testCodesRedeemTwice(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c := codeFixture(t, s)
	first, second := t0.Add(time.Second), t0.Add(2*time.Second)

	_, _, err := s.RedeemAuthCode(ctx, c.CodeHash, first, issueGrant)
	wantErr(t, "RedeemAuthCode(first)", err, nil)
	wantRevokedAt(t, s, c.GrantID, time.Time{})

	got, _, err := s.RedeemAuthCode(ctx, c.CodeHash, second, mustNotIssue(t))
	wantErr(t, "RedeemAuthCode(second)", err, storage.ErrAlreadyUsed)
	// The code comes back with the error, marked used by the first redemption.
	want := c
	want.UsedAt = first
	wantEqual(t, "RedeemAuthCode(second) code", got, want)
	// RFC 6749 §4.1.2: what the first redemption issued is revoked.
	wantRevokedAt(t, s, c.GrantID, second)

	// A third use keeps failing and keeps the first revocation time.
	_, _, err = s.RedeemAuthCode(ctx, c.CodeHash, second.Add(time.Second), mustNotIssue(t))
	wantErr(t, "RedeemAuthCode(third)", err, storage.ErrAlreadyUsed)
	wantRevokedAt(t, s, c.GrantID, second)
}

// A used code must be recognised as reused even after it expired (sqlstore
// keeps used codes past expiry for that), so a late replay still revokes.
func testCodesReuseAfterExpiry(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c := codeFixture(t, s)
	_, _, err := s.RedeemAuthCode(ctx, c.CodeHash, t0.Add(time.Second), issueGrant)
	wantErr(t, "RedeemAuthCode(first)", err, nil)

	late := c.ExpiresAt.Add(5 * time.Minute)
	_, _, err = s.RedeemAuthCode(ctx, c.CodeHash, late, mustNotIssue(t))
	wantErr(t, "RedeemAuthCode(after expiry)", err, storage.ErrAlreadyUsed)
	wantRevokedAt(t, s, c.GrantID, late)
}

// When the grant a RedeemFunc returns cannot be stored, the whole redemption
// rolls back: the code stays unused and a later valid attempt succeeds.
func testCodesRolledBack(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c := codeFixture(t, s)
	existing := newGrant("g-existing", c.ClientID, c.UserID, c.SID)
	mustCreateGrant(t, s, existing, nil)

	for _, tc := range []struct {
		name  string
		issue storage.RedeemFunc
		want  error // nil: any error
	}{
		{"duplicate grant id", func(x storage.AuthCode) (storage.Grant, *storage.RefreshToken, error) {
			g := grantFor(x)
			g.ID = existing.ID
			return g, nil, nil
		}, storage.ErrConflict},
		{"unknown client", func(x storage.AuthCode) (storage.Grant, *storage.RefreshToken, error) {
			g := grantFor(x)
			g.ClientID = "no-such-client"
			return g, nil, nil
		}, nil},
		{"unknown user", func(x storage.AuthCode) (storage.Grant, *storage.RefreshToken, error) {
			g := grantFor(x)
			g.UserID = "no-such-user"
			return g, nil, nil
		}, nil},
		{"refresh token of another grant", func(x storage.AuthCode) (storage.Grant, *storage.RefreshToken, error) {
			rt := newRefresh(existing.ID, "rt-wrong", 0)
			return grantFor(x), &rt, nil
		}, nil},
	} {
		_, _, err := s.RedeemAuthCode(ctx, c.CodeHash, t0.Add(time.Second), tc.issue)
		switch {
		case err == nil:
			t.Fatalf("RedeemAuthCode(%s): got nil error, want one", tc.name)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("RedeemAuthCode(%s): got error %v, want %v", tc.name, err, tc.want)
		}
		_, err = s.GetGrant(ctx, c.GrantID)
		wantErr(t, "GetGrant after "+tc.name, err, storage.ErrNotFound)
	}
	wantEqual(t, "existing grant", mustGetGrant(t, s, existing.ID), existing)
	_, _, err := s.GetRefreshToken(ctx, h("refresh:rt-wrong"))
	wantErr(t, "GetRefreshToken(rolled back)", err, storage.ErrNotFound)

	called := false
	_, _, err = s.RedeemAuthCode(ctx, c.CodeHash, t0.Add(2*time.Second), func(x storage.AuthCode) (storage.Grant, *storage.RefreshToken, error) {
		called = true
		return issueGrant(x)
	})
	wantErr(t, "RedeemAuthCode(valid after rollbacks)", err, nil)
	if !called {
		t.Errorf("RedeemFunc after rollbacks: not called, want called")
	}
	wantRevokedAt(t, s, c.GrantID, time.Time{})
}

// A RedeemFunc that refuses the code (say, a PKCE mismatch) still uses it up:
// a code is good for one attempt, right or wrong.
func testCodesIssueError(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c := codeFixture(t, s)
	errPKCE := errors.New("pkce mismatch")
	_, _, err := s.RedeemAuthCode(ctx, c.CodeHash, t0.Add(time.Second), func(storage.AuthCode) (storage.Grant, *storage.RefreshToken, error) {
		return storage.Grant{}, nil, errPKCE
	})
	wantErr(t, "RedeemAuthCode(refused)", err, errPKCE)
	_, err = s.GetGrant(ctx, c.GrantID)
	wantErr(t, "GetGrant after refusal", err, storage.ErrNotFound)

	_, _, err = s.RedeemAuthCode(ctx, c.CodeHash, t0.Add(2*time.Second), mustNotIssue(t))
	wantErr(t, "RedeemAuthCode(after refusal)", err, storage.ErrAlreadyUsed)
}

func testCodesConcurrentRedeem(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c := codeFixture(t, s)
	now := t0.Add(time.Second)
	errs := concurrently(s, concurrency, func(int) error {
		_, _, err := s.RedeemAuthCode(ctx, c.CodeHash, now, issueGrant)
		return err
	})
	oneWinner(t, "RedeemAuthCode", errs, storage.ErrAlreadyUsed)
	// Every loser came after the winner, so the grant it made is revoked.
	if g := mustGetGrant(t, s, c.GrantID); g.RevokedAt.IsZero() {
		t.Errorf("grant after concurrent reuse: RevokedAt zero, want revoked")
	}
}
