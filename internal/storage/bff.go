package storage

import (
	"context"
	"time"
)

// BFFSession is a browser signed in at a Backend-for-Frontend gateway
// (castellan bff). Its cookie value is never stored: IDHash is the SHA-256 of
// it. The tokens are opaque to storage: the gateway seals them with a key
// derived from its master key before they get here.
type BFFSession struct {
	IDHash []byte
	// Subject is the "sub" of the ID token, so a back-channel logout naming
	// only the user ends every session of theirs.
	Subject string
	// SID is the provider's session id ("sid" of the ID token), possibly empty.
	SID string
	// Tokens holds the sealed access, refresh and ID tokens (and the claims
	// shown to the app).
	Tokens []byte
	// AccessExpiresAt is when the access token in Tokens expires, so a refresh
	// can be decided without opening Tokens.
	AccessExpiresAt time.Time
	// CreatedAt, LastActiveAt and ExpiresAt drive the idle and absolute timeouts.
	CreatedAt    time.Time
	LastActiveAt time.Time
	ExpiresAt    time.Time
}

// BFFSessions stores the sessions of a BFF gateway. It lives in the same
// backends as the provider's records so that a gateway scales out on
// PostgreSQL as the provider does.
type BFFSessions interface {
	// CreateBFFSession returns ErrConflict if IDHash is taken.
	CreateBFFSession(ctx context.Context, s BFFSession) error
	// GetBFFSession reads exactly one row by the hash of the cookie value.
	GetBFFSession(ctx context.Context, idHash []byte) (BFFSession, error)
	// UpdateBFFSessionTokens replaces the sealed tokens and the access token's
	// expiry; ErrNotFound if the session has ended meanwhile (a refresh racing
	// a logout must not bring the session back).
	UpdateBFFSessionTokens(ctx context.Context, idHash, tokens []byte, accessExpiresAt time.Time) error
	// TouchBFFSession records activity for the idle timeout; it never moves
	// LastActiveAt back.
	TouchBFFSession(ctx context.Context, idHash []byte, at time.Time) error
	// DeleteBFFSession ends one session; ErrNotFound if there is none.
	DeleteBFFSession(ctx context.Context, idHash []byte) error
	// DeleteBFFSessionsBySID ends every session made in the provider session
	// sid and returns how many ended.
	DeleteBFFSessionsBySID(ctx context.Context, sid string) (int64, error)
	// DeleteBFFSessionsBySubject ends every session of the user subject.
	DeleteBFFSessionsBySubject(ctx context.Context, subject string) (int64, error)
	// DeleteExpiredBFFSessions removes at most limit sessions whose
	// LastActiveAt is not after idleAt or whose ExpiresAt is not after now.
	DeleteExpiredBFFSessions(ctx context.Context, idleAt, now time.Time, limit int) (int64, error)
}
