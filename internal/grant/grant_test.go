package grant_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/grant"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
)

// sessions says which SSO sessions are alive (the session manager's part).
// Live gets only a session's times, so an ended session is also remembered by
// its times as read from the store.
type sessions struct {
	mu        sync.Mutex
	store     storage.Sessions
	dead      map[string]bool
	deadTimes map[storage.SessionTimes]bool
}

func (s *sessions) Alive(_ context.Context, sid string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.dead[sid], nil
}

func (s *sessions) Live(t storage.SessionTimes, _ time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.deadTimes[t]
}

func (s *sessions) end(t *testing.T, sid string) {
	t.Helper()
	x, err := s.store.GetSessionBySID(t.Context(), sid)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.dead[sid] = true
	s.deadTimes[x.Times()] = true
	s.mu.Unlock()
}

type fixture struct {
	svc      *grant.Service
	store    *sqlstore.Store
	clock    *clock.Fake
	sessions *sessions
	spa, web storage.Client
	user     string
	sid      string
}

var policy = grant.Policy{CodeTTL: time.Minute, AccessTTL: time.Hour, RefreshIdle: 24 * time.Hour,
	RefreshAbsolute: 30 * 24 * time.Hour, Grace: 10 * time.Second}

func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "g.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	master, _ := seal.New(bytes.Repeat([]byte{5}, 32))
	f := &fixture{store: st, clock: clk, sessions: &sessions{store: st, dead: map[string]bool{}, deadTimes: map[storage.SessionTimes]bool{}}, user: "u1", sid: "sid-1",
		spa: storage.Client{ID: "spa", TokenEndpointAuthMethod: "none", RedirectURIs: []string{"https://spa.example/cb"}},
		web: storage.Client{ID: "web", TokenEndpointAuthMethod: "client_secret_basic", RedirectURIs: []string{"https://web.example/a", "https://web.example/b"}},
	}
	f.svc = grant.New(st, f.sessions, clk, master, policy)
	now := clk.Now()
	must(t, st.CreateUser(ctx, storage.User{ID: f.user, Username: "alice", CreatedAt: now, UpdatedAt: now}))
	must(t, st.UpsertClient(ctx, f.spa))
	must(t, st.UpsertClient(ctx, f.web))
	must(t, st.CreateSession(ctx, storage.Session{IDHash: opaque.Hash(opaque.New()), SID: f.sid, UserID: f.user,
		AuthTime: now, CreatedAt: now, LastActiveAt: now, ExpiresAt: now.Add(12 * time.Hour)}))
	return f
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func code(t *testing.T, f *fixture, c storage.Client, redirect, verifier string) string {
	t.Helper()
	r := grant.CodeRequest{ClientID: c.ID, UserID: f.user, SID: f.sid, RedirectURI: redirect,
		Scopes: []string{"openid", "offline_access"}, Nonce: "n", AuthTime: f.clock.Now(), AMR: []string{"pwd"}}
	if verifier != "" {
		r.CodeChallenge, r.CodeChallengeMethod = oauth.S256Challenge(verifier), oauth.PKCES256
	}
	code, err := f.svc.IssueCode(context.Background(), r)
	must(t, err)
	return code
}

func errCode(err error) string {
	var oe *oauth.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &oe):
		return oe.Code
	}
	return err.Error()
}

func yes([]string) bool { return true }
func no([]string) bool  { return false }

func TestRedeemCode(t *testing.T) {
	verifier := opaque.New()
	cases := []struct {
		name     string
		client   func(f *fixture) storage.Client
		issuedTo func(f *fixture) storage.Client
		authzURI string // redirect_uri of the authorization request ("" omitted)
		tokenURI string
		pkce     bool
		send     string // verifier sent
		mangle   func(code string) string
		wait     time.Duration
		err      string
	}{
		{name: "ok", pkce: true, send: verifier, authzURI: "https://spa.example/cb", tokenURI: "https://spa.example/cb"},
		{name: "adv28/other-client", client: func(f *fixture) storage.Client { return f.web }, pkce: true, send: verifier,
			authzURI: "https://spa.example/cb", tokenURI: "https://spa.example/cb", err: "invalid_grant"},
		{name: "adv31/redirect-differs", pkce: true, send: verifier, authzURI: "https://spa.example/cb", tokenURI: "https://spa.example/cb2", err: "invalid_grant"},
		{name: "redirect-omitted-at-token", pkce: true, send: verifier, authzURI: "https://spa.example/cb", err: "invalid_grant"},
		{name: "redirect-omitted-at-both", pkce: true, send: verifier},
		{name: "redirect-only-at-token-registered", pkce: true, send: verifier, tokenURI: "https://spa.example/cb"},
		{name: "redirect-only-at-token-unregistered", pkce: true, send: verifier, tokenURI: "https://evil.example/cb", err: "invalid_grant"},
		{name: "adv29/verifier-missing", pkce: true, err: "invalid_grant"},
		{name: "adv29/verifier-wrong", pkce: true, send: opaque.New(), err: "invalid_grant"},
		{name: "adv30/verifier-without-challenge", send: verifier, err: "invalid_grant"},
		{name: "no-pkce-at-all", client: func(f *fixture) storage.Client { return f.web }, issuedTo: func(f *fixture) storage.Client { return f.web }},
		{name: "adv40/truncated", pkce: true, send: verifier, mangle: func(c string) string { return c[:42] }, err: "invalid_grant"},
		{name: "adv40/padded", pkce: true, send: verifier, mangle: func(c string) string { return c + "A" }, err: "invalid_grant"},
		{name: "unknown", pkce: true, send: verifier, mangle: func(string) string { return opaque.New() }, err: "invalid_grant"},
		{name: "adv27/expired", pkce: true, send: verifier, wait: time.Minute, err: "invalid_grant"},
		{name: "just-in-time", pkce: true, send: verifier, wait: time.Minute - time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := setup(t)
			to, by := f.spa, f.spa
			if c.issuedTo != nil {
				to = c.issuedTo(f)
			}
			if c.client != nil {
				by = c.client(f)
			}
			v := ""
			if c.pkce {
				v = verifier
			}
			cd := code(t, f, to, c.authzURI, v)
			if c.mangle != nil {
				cd = c.mangle(cd)
			}
			f.clock.Advance(c.wait)
			is, err := f.svc.RedeemCode(context.Background(), grant.Redemption{Client: by, Code: cd, RedirectURI: c.tokenURI,
				Verifier: c.send, Refresh: yes, SessionBound: yes})
			if got := errCode(err); got != c.err {
				t.Fatalf("got %q, want %q", got, c.err)
			}
			if c.err != "" {
				return
			}
			if is.RefreshToken == "" || is.Nonce != "n" || !is.Grant.SessionBound || is.Grant.ClientID != to.ID ||
				!is.AccessExpiry.Equal(f.clock.Now().Add(time.Hour)) || !is.Grant.ExpiresAt.Equal(f.clock.Now().Add(policy.RefreshAbsolute)) {
				t.Fatalf("issued: %+v", is)
			}
		})
	}
}

func TestRedeemCodeTwiceRevokes(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	cd := code(t, f, f.spa, "", "")
	r := grant.Redemption{Client: f.spa, Code: cd, Refresh: yes, SessionBound: no}
	is, err := f.svc.RedeemCode(ctx, r)
	must(t, err)
	if _, err := f.svc.RedeemCode(ctx, r); errCode(err) != "invalid_grant" {
		t.Fatalf("second use: %v", err)
	}
	if rec, err := f.svc.LookupRefresh(ctx, is.RefreshToken); err != nil || rec.Active {
		t.Fatalf("refresh token of the first use still active: %+v %v", rec, err)
	}
	if ok, err := f.svc.AccessActive(ctx, "jti", is.Grant.ID, is.SID); err != nil || ok {
		t.Fatal("access of the first use still active")
	}
}

func TestRedeemCodeAfterSessionEnded(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	cd := code(t, f, f.spa, "", "")
	sess, _ := f.store.GetSessionBySID(ctx, f.sid)
	if _, err := f.store.DeleteSession(ctx, sess.IDHash, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	// A code issued before sign-out cannot start a session-bound grant after it.
	_, err := f.svc.RedeemCode(ctx, grant.Redemption{Client: f.spa, Code: cd, Refresh: yes, SessionBound: yes})
	if errCode(err) != "invalid_grant" {
		t.Fatalf("got %v, want invalid_grant", err)
	}
}

// first redeems a code for a family and returns its first refresh token.
func first(t *testing.T, f *fixture, c storage.Client, bound bool) grant.Issued {
	t.Helper()
	is, err := f.svc.RedeemCode(context.Background(), grant.Redemption{Client: c, Code: code(t, f, c, "", ""),
		Refresh: yes, SessionBound: func([]string) bool { return bound }})
	must(t, err)
	return is
}

func TestRefreshRotationAndGrace(t *testing.T) {
	ctx := context.Background()
	refresh := func(f *fixture, tok string) (grant.Issued, error) {
		return f.svc.Refresh(ctx, grant.RefreshRequest{Client: f.spa, Token: tok, Rotate: true})
	}
	t.Run("grace-boundary", func(t *testing.T) {
		f := setup(t)
		parent := first(t, f, f.spa, true).RefreshToken
		child, err := refresh(f, parent)
		must(t, err)
		f.clock.Advance(policy.Grace)
		again, err := refresh(f, parent)
		if err != nil || again.RefreshToken != child.RefreshToken {
			t.Fatalf("at the end of the grace window: %v, same child %v", err, again.RefreshToken == child.RefreshToken)
		}
		f.clock.Advance(time.Second)
		if _, err := refresh(f, parent); errCode(err) != "invalid_grant" {
			t.Fatalf("after the grace window: %v", err)
		}
		if _, err := refresh(f, child.RefreshToken); errCode(err) != "invalid_grant" {
			t.Fatal("the family survived reuse")
		}
	})
	t.Run("no-grace-for-another-client", func(t *testing.T) {
		f := setup(t)
		parent := first(t, f, f.spa, true).RefreshToken
		_, err := refresh(f, parent)
		must(t, err)
		if _, err := f.svc.Refresh(ctx, grant.RefreshRequest{Client: f.web, Token: parent, Rotate: true}); errCode(err) != "invalid_grant" {
			t.Fatalf("another client inside the grace window: %v", err)
		}
	})
	t.Run("generations", func(t *testing.T) {
		f := setup(t)
		tok := first(t, f, f.spa, true).RefreshToken
		seen := map[string]bool{tok: true}
		for i := 1; i <= 5; i++ {
			is, err := refresh(f, tok)
			must(t, err)
			if seen[is.RefreshToken] {
				t.Fatal("a child repeats an earlier member of the family")
			}
			seen[is.RefreshToken] = true
			rec, err := f.svc.LookupRefresh(ctx, is.RefreshToken)
			if err != nil || rec.Token.Generation != i || !rec.Active {
				t.Fatalf("generation %d: %+v %v", i, rec.Token, err)
			}
			tok = is.RefreshToken
		}
	})
	t.Run("session-ended", func(t *testing.T) {
		f := setup(t)
		is := first(t, f, f.spa, true)
		f.sessions.end(t, f.sid)
		if _, err := refresh(f, is.RefreshToken); errCode(err) != "invalid_grant" {
			t.Fatalf("got %v", err)
		}
		g, err := f.store.GetGrant(ctx, is.Grant.ID)
		if err != nil || g.RevokedAt.IsZero() {
			t.Fatalf("grant of an ended session not revoked: %+v %v", g, err)
		}
	})
	t.Run("offline-grant-outlives-session", func(t *testing.T) {
		f := setup(t)
		is := first(t, f, f.spa, false)
		f.sessions.end(t, f.sid)
		if _, err := refresh(f, is.RefreshToken); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRefreshWithoutRotation(t *testing.T) {
	ctx := context.Background()
	f := setup(t)
	is := first(t, f, f.web, false)
	f.clock.Advance(23 * time.Hour)
	out, err := f.svc.Refresh(ctx, grant.RefreshRequest{Client: f.web, Token: is.RefreshToken, Scopes: []string{"openid"}})
	must(t, err)
	if out.RefreshToken != is.RefreshToken || len(out.Scopes) != 1 || out.Scopes[0] != "openid" {
		t.Fatalf("issued %+v", out)
	}
	rec, err := f.svc.LookupRefresh(ctx, is.RefreshToken)
	if err != nil || !rec.Token.ExpiresAt.Equal(f.clock.Now().Add(policy.RefreshIdle)) || len(rec.Grant.Scopes) != 2 {
		t.Fatalf("kept token: expires %v, grant scopes %v (%v)", rec.Token.ExpiresAt, rec.Grant.Scopes, err)
	}
	if _, err := f.svc.Refresh(ctx, grant.RefreshRequest{Client: f.web, Token: is.RefreshToken, Scopes: []string{"openid", "email"}}); errCode(err) != "invalid_scope" {
		t.Fatalf("widening: %v", err)
	}
}

// A session-bound family ends with its session, decided inside the refresh
// transaction: the grant is revoked, nothing rotates, and a family not bound to
// the session keeps refreshing.
func TestRefreshAfterSessionEnded(t *testing.T) {
	ctx := context.Background()
	f := setup(t)
	bound := first(t, f, f.spa, true)
	offline := first(t, f, f.spa, false)
	f.sessions.end(t, f.sid)

	_, err := f.svc.Refresh(ctx, grant.RefreshRequest{Client: f.spa, Token: bound.RefreshToken, Rotate: true})
	if errCode(err) != "invalid_grant" {
		t.Fatalf("session-bound refresh after the session ended: got %v, want invalid_grant", err)
	}
	rec, err := f.svc.LookupRefresh(ctx, bound.RefreshToken)
	must(t, err)
	if rec.Active || rec.Grant.RevokedAt.IsZero() || !rec.Token.UsedAt.IsZero() {
		t.Fatalf("after the refused refresh: active %v, grant revoked at %v, token used at %v; want the grant revoked and the token not rotated",
			rec.Active, rec.Grant.RevokedAt, rec.Token.UsedAt)
	}
	if _, err := f.svc.Refresh(ctx, grant.RefreshRequest{Client: f.spa, Token: offline.RefreshToken, Rotate: true}); err != nil {
		t.Fatalf("family not bound to the session: %v", err)
	}
}

func TestAccessActive(t *testing.T) {
	ctx := context.Background()
	f := setup(t)
	bound := first(t, f, f.spa, true)
	offline := first(t, f, f.web, false)
	other := first(t, f, f.web, false)
	check := func(name, jti, grantID string, want bool) {
		t.Helper()
		got, err := f.svc.AccessActive(ctx, jti, grantID, "")
		if err != nil || got != want {
			t.Errorf("%s: got %v %v, want %v", name, got, err, want)
		}
	}
	check("client-credentials", "j0", "", true)
	check("bound", "j1", bound.Grant.ID, true)
	check("unknown-grant", "j1", "nope", false)
	must(t, f.svc.RevokeAccessToken(ctx, "j1", f.clock.Now().Add(time.Hour)))
	must(t, f.svc.RevokeAccessToken(ctx, "j1", f.clock.Now().Add(time.Hour))) // twice is fine
	check("revoked-jti", "j1", bound.Grant.ID, false)
	check("revoked-client-credentials-jti", "j1", "", false)
	check("other-jti-same-grant", "j2", bound.Grant.ID, true)
	f.sessions.end(t, f.sid)
	check("session-ended", "j2", bound.Grant.ID, false)
	check("offline", "j3", offline.Grant.ID, true)
	must(t, f.svc.RevokeGrant(ctx, offline.Grant.ID))
	check("grant-revoked", "j3", offline.Grant.ID, false)
	f.clock.Advance(policy.RefreshAbsolute)
	check("grant-expired", "j4", other.Grant.ID, false)
	check("client-credentials-later", "j4", "", true)
}

// TestAccessActiveAfterSessionEnds: an access token that names a
// session is inactive once that session ends, whatever its grant. An offline
// grant outlives the sign-out, but the access tokens it issued in the session
// named it and die with it; what it issues after the session ended names no
// session (Issued.SID "") and stays active. A refresh of an offline grant
// while its session lives keeps naming it.
func TestAccessActiveAfterSessionEnds(t *testing.T) {
	ctx := context.Background()
	f := setup(t)
	bound := first(t, f, f.spa, true)
	offline := first(t, f, f.web, false)
	live, err := f.svc.Refresh(ctx, grant.RefreshRequest{Client: f.web, Token: offline.RefreshToken})
	must(t, err)
	if bound.SID != f.sid || offline.SID != f.sid || live.SID != f.sid {
		t.Fatalf("sid while the session lives: bound %q, offline %q, offline refreshed %q; want %q", bound.SID, offline.SID, live.SID, f.sid)
	}
	sess, err := f.store.GetSessionBySID(ctx, f.sid)
	must(t, err)
	if _, err := f.store.DeleteSession(ctx, sess.IDHash, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	after, err := f.svc.Refresh(ctx, grant.RefreshRequest{Client: f.web, Token: offline.RefreshToken})
	must(t, err)
	if after.SID != "" {
		t.Fatalf("offline grant refreshed after its session ended: sid %q, want none", after.SID)
	}
	for _, c := range []struct {
		name    string
		grantID string
		sid     string
		want    bool
	}{
		{"session-bound", bound.Grant.ID, bound.SID, false},
		{"offline/issued-in-the-session", offline.Grant.ID, offline.SID, false},
		{"offline/refreshed-in-the-session", offline.Grant.ID, live.SID, false},
		{"offline/refreshed-after-the-session", offline.Grant.ID, after.SID, true},
		{"session-bound/without-sid", bound.Grant.ID, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := f.svc.AccessActive(ctx, "jti-"+c.name, c.grantID, c.sid)
			if err != nil || got != c.want {
				t.Errorf("got %v %v, want %v", got, err, c.want)
			}
		})
	}
}

// sessionGone is a store on which every session has disappeared without its
// grants being revoked. Storage revokes bound grants together with their
// session, so this only happens if that ever changes; AccessActive must not
// depend on it.
type sessionGone struct{ *sqlstore.Store }

func (s sessionGone) AccessState(ctx context.Context, revokedKey, grantID string, now time.Time) (storage.AccessState, error) {
	st, err := s.Store.AccessState(ctx, revokedKey, grantID, now)
	st.Session = nil
	return st, err
}

func TestAccessActiveSessionGone(t *testing.T) {
	ctx := context.Background()
	f := setup(t)
	bound := first(t, f, f.spa, true)
	offline := first(t, f, f.web, false)
	master, _ := seal.New(bytes.Repeat([]byte{5}, 32))
	svc := grant.New(sessionGone{f.store}, f.sessions, f.clock, master, policy)
	for _, c := range []struct {
		name    string
		grantID string
		want    bool
	}{{"session-bound", bound.Grant.ID, false}, {"not-bound", offline.Grant.ID, true}} {
		if got, err := svc.AccessActive(ctx, "j1", c.grantID, ""); err != nil || got != c.want {
			t.Errorf("%s: got %v %v, want %v", c.name, got, err, c.want)
		}
	}
}
