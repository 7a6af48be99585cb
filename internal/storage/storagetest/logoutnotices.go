package storagetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

// sessionAtClients gives f's session grants at each client (created if need
// be), twice at the first, so a notice per client, not per grant, is expected.
func sessionAtClients(t *testing.T, s storage.Storage, f fixture, clients ...string) {
	t.Helper()
	for i, c := range clients {
		mustUpsertClient(t, s, newClient(c))
		mustCreateGrant(t, s, newGrant(fmt.Sprintf("g-%s-%s", f.session.SID, c), c, f.user.ID, f.session.SID), nil)
		if i == 0 {
			mustCreateGrant(t, s, newGrant(fmt.Sprintf("g2-%s-%s", f.session.SID, c), c, f.user.ID, f.session.SID), nil)
		}
	}
}

func notice(f fixture, clientID string, at time.Time) storage.LogoutNotice {
	return storage.LogoutNotice{SID: f.session.SID, ClientID: clientID, UserID: f.user.ID, CreatedAt: at}
}

func claimAll(t *testing.T, s storage.Storage, now time.Time) []storage.LogoutNotice {
	t.Helper()
	got, err := s.ClaimLogoutNotices(t.Context(), now, now.Add(time.Minute), 100)
	wantErr(t, "ClaimLogoutNotices", err, nil)
	return got
}

func noticeKey(n storage.LogoutNotice) string { return n.SID + "/" + n.ClientID }

// Each way a session ends queues one notice per client of its grants, in the
// same call; other sessions' clients get none.
func testLogoutNoticesQueued(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	at := t0.Add(time.Hour)
	lease := func(n storage.LogoutNotice) storage.LogoutNotice { n.DueAt = at.Add(time.Minute); return n }
	cases := []struct {
		name string
		end  func(f fixture) error
	}{
		{"delete-session", func(f fixture) error { _, err := s.DeleteSession(ctx, f.session.IDHash, at); return err }},
		{"expired-session", func(f fixture) error {
			ended, err := s.DeleteExpiredSessions(ctx, f.session.LastActiveAt, at, 10)
			if err == nil && len(ended) != 1 {
				err = fmt.Errorf("ended %d sessions, want 1", len(ended))
			}
			return err
		}},
		{"disable-user", func(f fixture) error { _, err := s.DisableUser(ctx, f.user.ID, at); return err }},
		{"delete-user", func(f fixture) error { _, err := s.DeleteUser(ctx, f.user.ID, at); return err }},
	}
	for _, c := range cases {
		user := "u-" + c.name
		f := setup(t, s, user)
		sessionAtClients(t, s, f, "rp1-"+user, "rp2-"+user)
		// The user's other session, still active, with a grant at a third client.
		other := fixture{user: f.user, session: newSession(user, "other-"+user)}
		other.session.LastActiveAt = t0.Add(2 * time.Hour)
		mustCreateSession(t, s, other.session)
		mustCreateGrant(t, s, newGrant("g-other-"+user, "client-"+user, user, other.session.SID), nil)

		wantErr(t, c.name, c.end(f), nil)
		want := []storage.LogoutNotice{lease(notice(f, "rp1-"+user, at)), lease(notice(f, "rp2-"+user, at))}
		if c.name == "disable-user" || c.name == "delete-user" {
			// Every session of the user ends, so the third client hears too.
			want = append(want, lease(notice(other, "client-"+user, at)))
		} else {
			_, err := s.GetSessionBySID(ctx, other.session.SID)
			wantErr(t, c.name+": the other session", err, nil)
		}
		wantEqual(t, c.name+": notices", sortBy(claimAll(t, s, at), noticeKey), sortBy(want, noticeKey))
	}
	if got := claimAll(t, s, at); len(got) != 0 {
		t.Errorf("claimed again within the lease: %d notices", len(got))
	}
}

// A claimed notice is leased: not claimable until the lease ends, then
// claimable again; a retry moves it; deleting removes it for good.
func testLogoutNoticesLease(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	f := setup(t, s, "a")
	sessionAtClients(t, s, f, "rp1", "rp2", "rp3")
	_, err := s.DeleteSession(ctx, f.session.IDHash, t0)
	wantErr(t, "DeleteSession", err, nil)

	first, err := s.ClaimLogoutNotices(ctx, t0, t0.Add(time.Minute), 2)
	wantErr(t, "ClaimLogoutNotices(limit 2)", err, nil)
	if len(first) != 2 {
		t.Fatalf("ClaimLogoutNotices(limit 2): got %d notices", len(first))
	}
	rest := claimAll(t, s, t0)
	if len(rest) != 1 {
		t.Fatalf("second claim: got %d notices, want the 1 left", len(rest))
	}
	if got := claimAll(t, s, t0.Add(time.Minute-time.Nanosecond)); len(got) != 0 {
		t.Fatalf("claim within the lease: got %d notices", len(got))
	}

	n := first[0]
	wantCounts := func(name string, want storage.LogoutNoticeCounts) {
		t.Helper()
		got, err := s.CountLogoutNotices(ctx)
		wantErr(t, "CountLogoutNotices("+name+")", err, nil)
		wantEqual(t, "CountLogoutNotices("+name+")", got, want)
	}
	wantCounts("claimed, none failed", storage.LogoutNoticeCounts{Pending: 3})
	wantErr(t, "RetryLogoutNotice", s.RetryLogoutNotice(ctx, n.SID, n.ClientID, 3, t0.Add(time.Hour)), nil)
	wantCounts("one failed", storage.LogoutNoticeCounts{Pending: 3, Failing: 1})
	wantErr(t, "DeleteLogoutNotice", s.DeleteLogoutNotice(ctx, first[1].SID, first[1].ClientID), nil)
	wantErr(t, "DeleteLogoutNotice(again)", s.DeleteLogoutNotice(ctx, first[1].SID, first[1].ClientID), nil)
	wantCounts("one delivered", storage.LogoutNoticeCounts{Pending: 2, Failing: 1})

	// At the lease's end only rest[0] is due (delivered, say); the retried
	// one an hour later.
	got := claimAll(t, s, t0.Add(time.Minute))
	wantEqual(t, "claim at the lease's end", keys(got), []string{noticeKey(rest[0])})
	wantErr(t, "DeleteLogoutNotice", s.DeleteLogoutNotice(ctx, rest[0].SID, rest[0].ClientID), nil)
	got = claimAll(t, s, t0.Add(time.Hour))
	if len(got) != 1 || noticeKey(got[0]) != noticeKey(n) || got[0].Attempts != 3 {
		t.Fatalf("claim at the retry time: got %+v, want %s with 3 attempts", got, noticeKey(n))
	}
	wantErr(t, "RetryLogoutNotice(deleted)", s.RetryLogoutNotice(ctx, first[1].SID, first[1].ClientID, 1, t0), storage.ErrNotFound)

	// A client that goes takes its notices with it (n's lease has ended by then).
	wantErr(t, "DeleteClient", s.DeleteClient(ctx, n.ClientID), nil)
	if got := claimAll(t, s, t0.Add(24*time.Hour)); len(got) != 0 {
		t.Fatalf("after DeleteClient(%s): got %+v", n.ClientID, got)
	}
	wantCounts("none left", storage.LogoutNoticeCounts{})
}

func keys(ns []storage.LogoutNotice) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = noticeKey(n)
	}
	return out
}

// Nodes claiming at once never get the same notice, and between them get
// every one.
func testLogoutNoticesClaimAcrossNodes(t *testing.T, open func() storage.Storage) {
	nodes := []storage.Storage{open(), open()}
	s := nodes[0]
	const clients = 30
	f := setup(t, s, "a")
	names := make([]string, clients)
	for i := range names {
		names[i] = fmt.Sprintf("rp%02d", i)
	}
	sessionAtClients(t, s, f, names...)
	_, err := s.DeleteSession(t.Context(), f.session.IDHash, t0)
	wantErr(t, "DeleteSession", err, nil)

	var mu sync.Mutex
	claimed := map[string]int{}
	errs := race(concurrency, func(i int) error {
		got, err := nodes[i%len(nodes)].ClaimLogoutNotices(t.Context(), t0, t0.Add(time.Minute), 3)
		mu.Lock()
		defer mu.Unlock()
		for _, n := range got {
			claimed[noticeKey(n)]++
		}
		return err
	})
	for i, err := range errs {
		wantErr(t, fmt.Sprintf("ClaimLogoutNotices #%d", i), err, nil)
	}
	total := 0
	for k, n := range claimed {
		if n != 1 {
			t.Errorf("notice %s claimed %d times", k, n)
		}
		total += n
	}
	// 20 callers × 3 can take all 30; whatever is left is still due.
	total += len(claimAll(t, s, t0))
	if total != clients {
		t.Errorf("claimed %d notices in all, want %d", total, clients)
	}
}
