// Package recent is a bounded map that keeps the entries in recent use: the
// memory behind Castellan's caches of pure results (a token that verified,
// the claims decoded from a verified payload).
package recent

import "sync"

// Map holds at most two generations of size entries each. When the current
// generation is full it becomes the previous one (dropping the one before),
// and a hit in the previous generation is copied into the current one, so
// entries still in use survive while unused ones age out after two
// generations. This is cheaper than an LRU list: a hit is one map lookup.
//
// One mutex is enough on few cores: the critical sections are a map lookup or
// insert. Values are shared by every Get and must be treated as read-only.
type Map[K comparable, V any] struct {
	mu        sync.Mutex
	size      int
	cur, prev map[K]V
}

// New returns an empty Map of generations of size entries (at least 1).
func New[K comparable, V any](size int) *Map[K, V] {
	size = max(size, 1)
	return &Map[K, V]{size: size, cur: make(map[K]V, size)}
}

// Get returns the value stored for k.
func (m *Map[K, V]) Get(k K) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if v, ok := m.cur[k]; ok {
		return v, true
	}
	v, ok := m.prev[k]
	if ok {
		m.putLocked(k, v)
	}
	return v, ok
}

// Put stores v for k.
func (m *Map[K, V]) Put(k K, v V) {
	m.mu.Lock()
	m.putLocked(k, v)
	m.mu.Unlock()
}

func (m *Map[K, V]) putLocked(k K, v V) {
	if _, ok := m.cur[k]; !ok && len(m.cur) >= m.size {
		m.prev, m.cur = m.cur, make(map[K]V, m.size)
	}
	m.cur[k] = v
}

// Len is how many entries the map holds in both generations (an entry copied
// from the previous generation counts twice until that generation is dropped).
func (m *Map[K, V]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.cur) + len(m.prev)
}
