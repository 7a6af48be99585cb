package config

import (
	"net"
	"time"
)

// SessionEvents bounds the session-ended streams (GET /session/events). Each
// open stream holds a connection, and so a file descriptor, for as long as it
// lasts: without bounds, one access token could open streams until the
// process has no descriptors left and stops accepting connections at all.
type SessionEvents struct {
	// MaxPerSession is how many streams one SSO session may hold at a time;
	// a new one beyond it closes the session's oldest (told why first).
	MaxPerSession int `yaml:"max_per_session"`
	// MaxPerAddress is how many streams one client address may hold; a new
	// one beyond it is answered 429 with Retry-After.
	MaxPerAddress int `yaml:"max_per_address"`
	// MaxStreams is how many streams the node holds in all; a new one beyond
	// it is answered 429 with Retry-After.
	MaxStreams int `yaml:"max_streams"`
	// MaxLifetime closes a stream after this long, and a stream closes too
	// when its access token expires; the client opens a new one.
	MaxLifetime Duration `yaml:"max_lifetime"`
}

// DefaultSessionEvents are the stream limits of Default. One SSO session
// rarely watches from more than a few apps at once; 2048 streams fit an
// open-file limit of 4096 with room for the database, ordinary requests and
// SQLite's files (raise max_streams and the limit together).
func DefaultSessionEvents() SessionEvents {
	return SessionEvents{MaxPerSession: 8, MaxPerAddress: 128, MaxStreams: 2048, MaxLifetime: Duration(15 * time.Minute)}
}

// Bounds of session_events.max_lifetime.
const (
	minStreamLifetime = time.Minute
	maxStreamLifetime = 24 * time.Hour
)

func (v *validator) sessionEvents(e SessionEvents) {
	for _, n := range []struct {
		key string
		n   int
	}{
		{"session_events.max_per_session", e.MaxPerSession},
		{"session_events.max_per_address", e.MaxPerAddress},
		{"session_events.max_streams", e.MaxStreams},
	} {
		if n.n < 1 {
			v.add(n.key, "want at least 1, got %d", n.n)
		}
	}
	if d := e.MaxLifetime.D(); d < minStreamLifetime || d > maxStreamLifetime {
		v.add("session_events.max_lifetime", "want %v to %v, got %v", minStreamLifetime, maxStreamLifetime, d)
	}
}

// metricsListen checks metrics_listen: a host:port of its own, never the
// public listener's.
func (v *validator) metricsListen(c *Config) {
	if c.MetricsListen == "" {
		return
	}
	if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
		v.add("metrics_listen", "want host:port, got %q", c.MetricsListen)
	} else if c.MetricsListen == c.Listen {
		v.add("metrics_listen", "must differ from listen: metrics have a listener of their own")
	}
}
