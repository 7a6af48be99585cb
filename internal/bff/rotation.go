package bff

import (
	"log/slog"
	"strings"
	"sync"
)

// rotationWarning tells the operator, once, that the provider rotates the
// gateway's refresh tokens while the gateway's sessions live in PostgreSQL,
// which is how several gateway nodes share them. Each node refreshes a
// session at most once at a time, but two nodes may refresh the same session
// at the same moment, both presenting the same refresh token: with rotation
// the second is reuse, and unless the provider's tokens.refresh_token_grace
// covers it (its default of 10s does) the provider revokes the family and the
// person is signed out. The gateway cannot see the provider's grace; it can
// see rotation only when a refresh returns a new token, so it warns then.
type rotationWarning struct {
	shared bool
	once   sync.Once
}

// sharedStorage says whether storage can be shared by several gateway nodes.
func sharedStorage(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// observe is told of every refresh: the token presented and the one returned.
func (w *rotationWarning) observe(log *slog.Logger, presented, returned string) {
	if !w.shared || returned == "" || returned == presented {
		return
	}
	w.once.Do(func() {
		log.Warn("bff: the provider rotates this client's refresh tokens and sessions are in PostgreSQL: " +
			"if several gateway nodes serve them, two may refresh one session at once, and without a refresh grace " +
			"at the provider (tokens.refresh_token_grace, default 10s) the second refresh signs the person out")
	})
}
