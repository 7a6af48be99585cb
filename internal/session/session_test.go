package session_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/session"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
)

// countingStore counts the storage calls a lookup makes.
type countingStore struct {
	session.Store
	calls atomic.Int64
}

func (c *countingStore) GetSession(ctx context.Context, idHash []byte) (storage.Session, error) {
	c.calls.Add(1)
	return c.Store.GetSession(ctx, idHash)
}

func (c *countingStore) GetSessionAndUser(ctx context.Context, idHash []byte) (storage.Session, storage.User, error) {
	c.calls.Add(1)
	return c.Store.GetSessionAndUser(ctx, idHash)
}

func (c *countingStore) GetSessionBySID(ctx context.Context, sid string) (storage.Session, error) {
	c.calls.Add(1)
	return c.Store.GetSessionBySID(ctx, sid)
}

func (c *countingStore) ListSessionsByUser(ctx context.Context, userID string) ([]storage.Session, error) {
	c.calls.Add(1)
	return c.Store.ListSessionsByUser(ctx, userID)
}

func (c *countingStore) TouchSession(ctx context.Context, idHash []byte, at time.Time) error {
	c.calls.Add(1)
	return c.Store.TouchSession(ctx, idHash, at)
}

func (c *countingStore) DeleteSession(ctx context.Context, idHash []byte, now time.Time) (storage.Session, error) {
	c.calls.Add(1)
	return c.Store.DeleteSession(ctx, idHash, now)
}

func setup(tb testing.TB) (*session.Manager, *countingStore, *clock.Fake, string) {
	tb.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(tb.TempDir(), "s.db"), sqlstore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	clk := clock.NewFake(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	u := storage.User{ID: opaque.ID(), Username: "alice", PasswordHash: "x", CreatedAt: clk.Now(), UpdatedAt: clk.Now()}
	if err := st.CreateUser(ctx, u); err != nil {
		tb.Fatal(err)
	}
	cs := &countingStore{Store: st}
	m := session.NewManager(cs, clk, session.Policy{IdleTimeout: 30 * time.Minute, AbsoluteTimeout: 12 * time.Hour}, slog.New(slog.DiscardHandler))
	return m, cs, clk, u.ID
}

func TestLookupReadsOneRow(t *testing.T) {
	m, cs, _, uid := setup(t)
	ctx := context.Background()
	value, started, err := m.Start(ctx, uid, []string{"pwd"})
	if err != nil {
		t.Fatal(err)
	}
	cs.calls.Store(0)
	got, err := m.Lookup(ctx, value)
	if err != nil {
		t.Fatal(err)
	}
	if got.SID != started.SID {
		t.Errorf("sid: got %q, want %q", got.SID, started.SID)
	}
	if n := cs.calls.Load(); n != 1 {
		t.Errorf("storage calls for one lookup: got %d, want 1", n)
	}
}

// LookupWithUser reads the session and its user in one storage call, and
// applies the same timeouts as Lookup.
func TestLookupWithUser(t *testing.T) {
	m, cs, clk, uid := setup(t)
	ctx := context.Background()
	value, started, err := m.Start(ctx, uid, []string{"pwd"})
	if err != nil {
		t.Fatal(err)
	}
	cs.calls.Store(0)
	got, u, err := m.LookupWithUser(ctx, value)
	if err != nil {
		t.Fatal(err)
	}
	if got.SID != started.SID || u.ID != uid {
		t.Errorf("got session %q of user %q, want %q of %q", got.SID, u.ID, started.SID, uid)
	}
	if n := cs.calls.Load(); n != 1 {
		t.Errorf("storage calls for one lookup: got %d, want 1", n)
	}
	for _, v := range []string{"", opaque.New()} {
		if _, _, err := m.LookupWithUser(ctx, v); err != session.ErrNoSession {
			t.Errorf("LookupWithUser(%q): got %v, want ErrNoSession", v, err)
		}
	}
	clk.Advance(30 * time.Minute)
	if _, _, err := m.LookupWithUser(ctx, value); err != session.ErrNoSession {
		t.Errorf("idle session: got %v, want ErrNoSession", err)
	}
}

func TestLookupRefusesMalformedCookieWithoutStorage(t *testing.T) {
	m, cs, _, _ := setup(t)
	for _, v := range []string{"", "short", opaque.New() + "x", opaque.New()[:42], "%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%"} {
		cs.calls.Store(0)
		if _, err := m.Lookup(context.Background(), v); err != session.ErrNoSession {
			t.Errorf("Lookup(%q): got %v, want ErrNoSession", v, err)
		}
		if len(v) != 43 && cs.calls.Load() != 0 {
			t.Errorf("Lookup(%q) reached storage", v)
		}
	}
}

func TestExpiryAndAnnouncement(t *testing.T) {
	m, _, clk, uid := setup(t)
	ctx := context.Background()
	var reasons []string
	m.OnEnded(func(_ context.Context, ended []storage.Session, reason string) {
		for range ended {
			reasons = append(reasons, reason)
		}
	})
	idle, _, _ := m.Start(ctx, uid, nil)
	clk.Advance(30 * time.Minute)
	if _, err := m.Lookup(ctx, idle); err != session.ErrNoSession {
		t.Fatalf("idle session: got %v, want ErrNoSession", err)
	}
	active, s, _ := m.Start(ctx, uid, nil)
	for i := 0; i < 12*3; i++ {
		clk.Advance(20 * time.Minute)
		if err := m.Touch(ctx, s); err != nil {
			t.Fatal(err)
		}
		s.LastActiveAt = clk.Now()
	}
	if _, err := m.Lookup(ctx, active); err != session.ErrNoSession {
		t.Fatalf("session past its absolute timeout: got %v, want ErrNoSession", err)
	}
	if len(reasons) != 2 || reasons[0] != "idle_timeout" || reasons[1] != "absolute_timeout" {
		t.Errorf("announced: got %v, want [idle_timeout absolute_timeout]", reasons)
	}
}

// Live is the rule Alive applies to the row it reads: live until the idle
// timeout after the last activity, and never past the absolute timeout.
func TestLiveAgreesWithAlive(t *testing.T) {
	m, _, clk, uid := setup(t)
	ctx := context.Background()
	_, s, err := m.Start(ctx, uid, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := clk.Now()
	cases := []struct {
		name       string
		lastActive time.Duration // after start
		at         time.Duration // after start
		want       bool
	}{
		{"fresh", 0, 0, true},
		{"idle-last-instant", 0, 30*time.Minute - time.Nanosecond, true},
		{"idle-timeout", 0, 30 * time.Minute, false},
		{"touched", 11*time.Hour + 50*time.Minute, 11*time.Hour + 59*time.Minute, true},
		{"absolute-timeout", 11*time.Hour + 50*time.Minute, 12 * time.Hour, false},
	}
	for _, c := range cases {
		x := s
		x.LastActiveAt = start.Add(c.lastActive)
		if got := m.Live(x.Times(), start.Add(c.at)); got != c.want {
			t.Errorf("%s: Live = %v, want %v", c.name, got, c.want)
		}
	}
	// Alive reads the row and applies the same rule at the manager's clock.
	for _, c := range []struct {
		at   time.Duration
		want bool
	}{{30*time.Minute - time.Nanosecond, true}, {30 * time.Minute, false}} {
		clk.Set(start.Add(c.at))
		if got, err := m.Alive(ctx, s.SID); err != nil || got != c.want {
			t.Errorf("Alive after %v: got %v %v, want %v", c.at, got, err, c.want)
		}
	}
	if got, err := m.Alive(ctx, "no-such-sid"); err != nil || got {
		t.Errorf("Alive(unknown sid): got %v %v, want false", got, err)
	}
}

func BenchmarkSessionLookup(b *testing.B) {
	m, _, _, uid := setup(b)
	ctx := context.Background()
	value, _, err := m.Start(ctx, uid, []string{"pwd"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Lookup(ctx, value); err != nil {
			b.Fatal(err)
		}
	}
}
