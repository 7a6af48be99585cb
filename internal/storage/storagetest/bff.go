package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

func newBFFSession(name, subject, sid string) storage.BFFSession {
	return storage.BFFSession{
		IDHash:          h("bff:" + name),
		Subject:         subject,
		SID:             sid,
		Tokens:          []byte("sealed tokens of " + name + "\x00\xff"),
		AccessExpiresAt: t0.Add(time.Hour),
		CreatedAt:       t0,
		LastActiveAt:    t0.Add(time.Second),
		ExpiresAt:       t0.Add(12 * time.Hour),
	}
}

func mustCreateBFF(t *testing.T, s storage.Storage, x storage.BFFSession) {
	t.Helper()
	wantErr(t, "CreateBFFSession", s.CreateBFFSession(t.Context(), x), nil)
}

// wantBFFSessions checks that the sessions named are gone and the others remain.
func wantBFFSessions(t *testing.T, s storage.Storage, gone []string, kept []string) {
	t.Helper()
	for _, n := range gone {
		_, err := s.GetBFFSession(t.Context(), h("bff:"+n))
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("GetBFFSession(%s): got error %v, want ErrNotFound", n, err)
		}
	}
	for _, n := range kept {
		if _, err := s.GetBFFSession(t.Context(), h("bff:"+n)); err != nil {
			t.Errorf("GetBFFSession(%s): got error %v, want the session", n, err)
		}
	}
}

func testBFFCreateGet(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	want := newBFFSession("a", "user-1", "sid-1")
	mustCreateBFF(t, s, want)
	got, err := s.GetBFFSession(ctx, want.IDHash)
	wantErr(t, "GetBFFSession", err, nil)
	wantEqual(t, "GetBFFSession", got, want)

	// Without a sid (a provider that sends none).
	nosid := newBFFSession("b", "user-1", "")
	mustCreateBFF(t, s, nosid)
	got, err = s.GetBFFSession(ctx, nosid.IDHash)
	wantErr(t, "GetBFFSession(no sid)", err, nil)
	wantEqual(t, "GetBFFSession(no sid)", got, nosid)

	dup := newBFFSession("a", "user-2", "sid-2")
	wantErr(t, "CreateBFFSession(same id)", s.CreateBFFSession(ctx, dup), storage.ErrConflict)
	got, _ = s.GetBFFSession(ctx, want.IDHash)
	wantEqual(t, "GetBFFSession after refused duplicate", got, want)

	_, err = s.GetBFFSession(ctx, h("bff:unknown"))
	wantErr(t, "GetBFFSession(unknown)", err, storage.ErrNotFound)
}

func testBFFUpdateTokens(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	x := newBFFSession("a", "user-1", "sid-1")
	mustCreateBFF(t, s, x)
	exp := t0.Add(2 * time.Hour)
	wantErr(t, "UpdateBFFSessionTokens", s.UpdateBFFSessionTokens(ctx, x.IDHash, []byte("new tokens"), exp), nil)
	want := x
	want.Tokens, want.AccessExpiresAt = []byte("new tokens"), exp
	got, err := s.GetBFFSession(ctx, x.IDHash)
	wantErr(t, "GetBFFSession", err, nil)
	wantEqual(t, "after UpdateBFFSessionTokens", got, want)

	// A refresh that finishes after logout must not bring the session back.
	wantErr(t, "UpdateBFFSessionTokens(unknown)", s.UpdateBFFSessionTokens(ctx, h("bff:unknown"), []byte("x"), exp), storage.ErrNotFound)
	wantErr(t, "DeleteBFFSession", s.DeleteBFFSession(ctx, x.IDHash), nil)
	wantErr(t, "UpdateBFFSessionTokens(deleted)", s.UpdateBFFSessionTokens(ctx, x.IDHash, []byte("y"), exp), storage.ErrNotFound)
	wantBFFSessions(t, s, []string{"a"}, nil)
}

func testBFFTouch(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	x := newBFFSession("a", "user-1", "sid-1")
	mustCreateBFF(t, s, x)
	later := t0.Add(5 * time.Minute)
	wantErr(t, "TouchBFFSession", s.TouchBFFSession(ctx, x.IDHash, later), nil)
	wantErr(t, "TouchBFFSession(earlier)", s.TouchBFFSession(ctx, x.IDHash, t0.Add(time.Minute)), nil)
	got, err := s.GetBFFSession(ctx, x.IDHash)
	wantErr(t, "GetBFFSession", err, nil)
	if !got.LastActiveAt.Equal(later) {
		t.Errorf("LastActiveAt: got %v, want %v", fmtTime(got.LastActiveAt), fmtTime(later))
	}
	wantErr(t, "TouchBFFSession(unknown)", s.TouchBFFSession(ctx, h("bff:unknown"), later), storage.ErrNotFound)
}

func testBFFDelete(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	mustCreateBFF(t, s, newBFFSession("a", "user-1", "sid-1"))
	mustCreateBFF(t, s, newBFFSession("b", "user-1", "sid-1"))
	wantErr(t, "DeleteBFFSession", s.DeleteBFFSession(ctx, h("bff:a")), nil)
	wantErr(t, "DeleteBFFSession(again)", s.DeleteBFFSession(ctx, h("bff:a")), storage.ErrNotFound)
	wantBFFSessions(t, s, []string{"a"}, []string{"b"})
}

func testBFFDeleteBySIDAndSubject(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	for _, x := range []storage.BFFSession{
		newBFFSession("a1", "alice", "sid-1"),
		newBFFSession("a2", "alice", "sid-1"),
		newBFFSession("a3", "alice", "sid-2"),
		newBFFSession("a4", "alice", ""),
		newBFFSession("b1", "bob", "sid-3"),
		newBFFSession("b2", "bob", ""),
	} {
		mustCreateBFF(t, s, x)
	}
	n, err := s.DeleteBFFSessionsBySID(ctx, "sid-1")
	wantErr(t, "DeleteBFFSessionsBySID", err, nil)
	if n != 2 {
		t.Errorf("DeleteBFFSessionsBySID(sid-1): got %d, want 2", n)
	}
	wantBFFSessions(t, s, []string{"a1", "a2"}, []string{"a3", "a4", "b1", "b2"})

	// An empty sid or subject names nobody, not every session without one.
	for _, del := range []func() (int64, error){
		func() (int64, error) { return s.DeleteBFFSessionsBySID(ctx, "") },
		func() (int64, error) { return s.DeleteBFFSessionsBySubject(ctx, "") },
		func() (int64, error) { return s.DeleteBFFSessionsBySID(ctx, "unknown") },
	} {
		n, err := del()
		wantErr(t, "delete by nothing", err, nil)
		if n != 0 {
			t.Errorf("delete by empty or unknown key: got %d, want 0", n)
		}
	}
	wantBFFSessions(t, s, nil, []string{"a3", "a4", "b1", "b2"})

	n, err = s.DeleteBFFSessionsBySubject(ctx, "alice")
	wantErr(t, "DeleteBFFSessionsBySubject", err, nil)
	if n != 2 {
		t.Errorf("DeleteBFFSessionsBySubject(alice): got %d, want 2", n)
	}
	wantBFFSessions(t, s, []string{"a3", "a4"}, []string{"b1", "b2"})
}

func testBFFDeleteExpired(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	idle := newBFFSession("idle", "u", "s1") // LastActiveAt t0+1s
	abs := newBFFSession("absolute", "u", "s2")
	abs.LastActiveAt, abs.ExpiresAt = t0.Add(time.Hour), t0.Add(2*time.Hour)
	live := newBFFSession("live", "u", "s3")
	live.LastActiveAt = t0.Add(time.Hour)
	for _, x := range []storage.BFFSession{idle, abs, live} {
		mustCreateBFF(t, s, x)
	}
	// At now = t0+2h with a 30 min idle timeout: idleAt = t0+1h30m.
	now := t0.Add(2 * time.Hour)
	n, err := s.DeleteExpiredBFFSessions(ctx, now.Add(-90*time.Minute), now, 100)
	wantErr(t, "DeleteExpiredBFFSessions", err, nil)
	if n != 2 {
		t.Errorf("DeleteExpiredBFFSessions: got %d, want 2", n)
	}
	wantBFFSessions(t, s, []string{"idle", "absolute"}, []string{"live"})

	// The limit bounds one sweep.
	for _, name := range []string{"x1", "x2", "x3"} {
		mustCreateBFF(t, s, newBFFSession(name, "u", ""))
	}
	n, err = s.DeleteExpiredBFFSessions(ctx, now.Add(-90*time.Minute), now, 2)
	wantErr(t, "DeleteExpiredBFFSessions(limit 2)", err, nil)
	if n != 2 {
		t.Errorf("DeleteExpiredBFFSessions(limit 2): got %d, want 2", n)
	}
	n, err = s.DeleteExpiredBFFSessions(ctx, now.Add(-90*time.Minute), now, 2)
	wantErr(t, "DeleteExpiredBFFSessions(rest)", err, nil)
	if n != 1 {
		t.Errorf("DeleteExpiredBFFSessions(rest): got %d, want 1", n)
	}
	wantBFFSessions(t, s, []string{"x1", "x2", "x3"}, []string{"live"})
}

// A logout racing a refresh: once deleted, no concurrent update revives it,
// and of concurrent deletes exactly one reports the session.
func testBFFConcurrentDelete(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	x := newBFFSession("a", "u", "sid")
	mustCreateBFF(t, s, x)
	errs := concurrently(s, concurrency, func(i int) error {
		if i%2 == 0 {
			return s.DeleteBFFSession(ctx, x.IDHash)
		}
		err := s.UpdateBFFSessionTokens(ctx, x.IDHash, []byte("refreshed"), t0.Add(2*time.Hour))
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return err
	})
	deleted := 0
	for i, err := range errs {
		switch {
		case i%2 == 1:
			wantErr(t, "UpdateBFFSessionTokens", err, nil)
		case err == nil:
			deleted++
		default:
			wantErr(t, "DeleteBFFSession", err, storage.ErrNotFound)
		}
	}
	if deleted != 1 {
		t.Errorf("concurrent DeleteBFFSession: got %d successes, want 1", deleted)
	}
	wantBFFSessions(t, s, []string{"a"}, nil)
}
