package dpop

import (
	"context"
	"sync"
	"time"
)

// MemoryReplayCache is a ReplayCache in one process's memory. It is enough
// for a single instance; an API running on several instances behind a load
// balancer needs a shared cache (a proof replayed to another instance would
// otherwise be accepted once there too). Expired entries are dropped as new
// ones arrive.
type MemoryReplayCache struct {
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu      sync.Mutex
	entries map[string]time.Time
	sweep   time.Time
}

// Use implements ReplayCache.
func (m *MemoryReplayCache) Use(_ context.Context, key string, expiresAt time.Time) error {
	now := time.Now()
	if m.Now != nil {
		now = m.Now()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries == nil {
		m.entries = map[string]time.Time{}
	}
	if exp, ok := m.entries[key]; ok && now.Before(exp) {
		return ErrReplayed
	}
	if now.After(m.sweep) {
		for k, exp := range m.entries {
			if !now.Before(exp) {
				delete(m.entries, k)
			}
		}
		m.sweep = now.Add(time.Minute)
	}
	m.entries[key] = expiresAt
	return nil
}

// Used implements ReplayLookup.
func (m *MemoryReplayCache) Used(_ context.Context, key string) (bool, error) {
	now := time.Now()
	if m.Now != nil {
		now = m.Now()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.entries[key]
	return ok && now.Before(exp), nil
}
