// Package session runs the single sign-on session: it starts one at sign-in
// (new random id every time, only its hash stored), finds it from the cookie on
// each request while enforcing the idle and absolute timeouts on the server,
// records activity, and ends it — on sign-out, on expiry found by the sweeper,
// or by an administrator — telling whoever listens that it ended.
package session

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/storage"
)

// ErrNoSession means there is no live session for the cookie presented.
var ErrNoSession = errors.New("no session")

// Store is what the manager needs from storage.
type Store interface {
	storage.Sessions
}

// Policy bounds sessions.
type Policy struct {
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
}

// touchGranularity limits writes: activity within this time of the last
// recorded activity is not written again. The idle timeout is at least minutes,
// so this loses nothing that matters.
const touchGranularity = 30 * time.Second

// EndedFunc learns about sessions that ended (sign-out, expiry, administration),
// after their grants were revoked. It must not block.
type EndedFunc func(ctx context.Context, ended []storage.Session, reason string)

// Manager is the SSO session lifecycle.
type Manager struct {
	store  Store
	clock  clock.Clock
	policy Policy
	log    *slog.Logger

	mu    sync.RWMutex
	ended []EndedFunc
}

// NewManager returns a session manager.
func NewManager(store Store, clk clock.Clock, p Policy, log *slog.Logger) *Manager {
	return &Manager{store: store, clock: clk, policy: p, log: log}
}

// Policy returns the timeouts.
func (m *Manager) Policy() Policy { return m.policy }

// OnEnded registers f to hear about every session that ends.
func (m *Manager) OnEnded(f EndedFunc) {
	m.mu.Lock()
	m.ended = append(m.ended, f)
	m.mu.Unlock()
}

// Announce tells the listeners that sessions ended elsewhere (e.g. a user was
// disabled or deleted by an administrator).
func (m *Manager) Announce(ctx context.Context, ended []storage.Session, reason string) {
	if len(ended) == 0 {
		return
	}
	m.mu.RLock()
	fs := append([]EndedFunc(nil), m.ended...)
	m.mu.RUnlock()
	for _, f := range fs {
		f(ctx, ended, reason)
	}
}

// Start creates a session for userID authenticated now by the methods in amr
// (RFC 8176 values). It returns the cookie value, which is never stored.
func (m *Manager) Start(ctx context.Context, userID string, amr []string) (string, storage.Session, error) {
	now := m.clock.Now()
	value := opaque.New()
	s := storage.Session{
		IDHash:       opaque.Hash(value),
		SID:          opaque.ID(),
		UserID:       userID,
		AuthTime:     now,
		AMR:          amr,
		CreatedAt:    now,
		LastActiveAt: now,
		ExpiresAt:    now.Add(m.policy.AbsoluteTimeout),
	}
	if err := m.store.CreateSession(ctx, s); err != nil {
		return "", storage.Session{}, err
	}
	return value, s, nil
}

// Lookup finds the live session for a cookie value: one read of one row, no
// hashing beyond SHA-256. An expired session is ended (and announced) on the spot.
func (m *Manager) Lookup(ctx context.Context, cookieValue string) (storage.Session, error) {
	if !opaque.Wellformed(cookieValue) {
		return storage.Session{}, ErrNoSession
	}
	s, err := m.store.GetSession(ctx, opaque.Hash(cookieValue))
	return m.live(ctx, s, err)
}

// LookupBySID finds the live session with this public sid, for a request
// that names it without its cookie (RP-initiated logout from a client's
// server). An expired session is ended on the spot, as by Lookup.
func (m *Manager) LookupBySID(ctx context.Context, sid string) (storage.Session, error) {
	if sid == "" {
		return storage.Session{}, ErrNoSession
	}
	s, err := m.store.GetSessionBySID(ctx, sid)
	return m.live(ctx, s, err)
}

// LookupWithUser is Lookup that also returns the session's user, read with it.
// The user may be disabled: that is the caller's to judge.
func (m *Manager) LookupWithUser(ctx context.Context, cookieValue string) (storage.Session, storage.User, error) {
	if !opaque.Wellformed(cookieValue) {
		return storage.Session{}, storage.User{}, ErrNoSession
	}
	s, u, err := m.store.GetSessionAndUser(ctx, opaque.Hash(cookieValue))
	if s, err = m.live(ctx, s, err); err != nil {
		return storage.Session{}, storage.User{}, err
	}
	return s, u, nil
}

// live turns a session read from storage into the live session or
// ErrNoSession, ending a session found past its timeouts.
func (m *Manager) live(ctx context.Context, s storage.Session, err error) (storage.Session, error) {
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Session{}, ErrNoSession
	}
	if err != nil {
		return storage.Session{}, err
	}
	if reason := m.expired(s.Times(), m.clock.Now()); reason != "" {
		m.end(ctx, s.IDHash, reason)
		return storage.Session{}, ErrNoSession
	}
	return s, nil
}

// Alive reports whether the session with this public sid is live now.
func (m *Manager) Alive(ctx context.Context, sid string) (bool, error) {
	s, err := m.store.GetSessionBySID(ctx, sid)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return m.Live(s.Times(), m.clock.Now()), nil
}

// Live reports whether a session with times t, as read from storage, is live
// at now: within its idle and absolute timeouts. It reads nothing, for callers
// that already read the session along with other records.
func (m *Manager) Live(t storage.SessionTimes, now time.Time) bool {
	return m.expired(t, now) == ""
}

// IdleExpiresAt is when the session ends if nothing counts as activity before then.
func (m *Manager) IdleExpiresAt(s storage.Session) time.Time {
	idle := s.LastActiveAt.Add(m.policy.IdleTimeout)
	if idle.After(s.ExpiresAt) {
		return s.ExpiresAt
	}
	return idle
}

func (m *Manager) expired(s storage.SessionTimes, now time.Time) string {
	switch {
	case !now.Before(s.ExpiresAt):
		return "absolute_timeout"
	case !now.Before(s.LastActiveAt.Add(m.policy.IdleTimeout)):
		return "idle_timeout"
	}
	return ""
}

// Touch records that the person was active, which extends the idle timeout.
func (m *Manager) Touch(ctx context.Context, s storage.Session) error {
	now := m.clock.Now()
	if now.Sub(s.LastActiveAt) < touchGranularity {
		return nil
	}
	err := m.store.TouchSession(ctx, s.IDHash, now)
	if errors.Is(err, storage.ErrNotFound) {
		return nil // ended meanwhile, or touched by a concurrent request
	}
	return err
}

// End signs the session out: its grants bound to it are revoked in the same
// transaction, then listeners are told.
func (m *Manager) End(ctx context.Context, idHash []byte, reason string) (storage.Session, error) {
	s, err := m.store.DeleteSession(ctx, idHash, m.clock.Now())
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Session{}, ErrNoSession
	}
	if err != nil {
		return storage.Session{}, err
	}
	m.Announce(ctx, []storage.Session{s}, reason)
	return s, nil
}

func (m *Manager) end(ctx context.Context, idHash []byte, reason string) {
	if _, err := m.End(ctx, idHash, reason); err != nil && !errors.Is(err, ErrNoSession) {
		m.log.Warn("could not end expired session", "err", err)
	}
}

// Sweep ends every session past its idle or absolute timeout, in batches, so
// that an expired session is announced (and its refresh tokens die) even if
// its browser never comes back.
func (m *Manager) Sweep(ctx context.Context) (int, error) {
	total := 0
	for {
		now := m.clock.Now()
		ended, err := m.store.DeleteExpiredSessions(ctx, now.Add(-m.policy.IdleTimeout), now, 500)
		if err != nil {
			return total, err
		}
		total += len(ended)
		if len(ended) > 0 {
			m.Announce(ctx, ended, "expired")
		}
		if len(ended) < 500 {
			return total, nil
		}
	}
}
