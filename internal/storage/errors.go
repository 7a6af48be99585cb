package storage

import (
	"errors"
	"time"
)

var (
	// ErrNotFound means the record does not exist (or has expired and is treated as gone).
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict means a uniqueness rule was violated, e.g. a username already taken
	// or a replay-cache key already remembered.
	ErrConflict = errors.New("storage: conflict")
	// ErrAlreadyUsed means a single-use record (authorization code) was presented again.
	ErrAlreadyUsed = errors.New("storage: already used")
	// ErrRevoked means the grant a token belongs to has been revoked.
	ErrRevoked = errors.New("storage: revoked")
	// ErrAddressFull means a client address already holds as many records
	// of a kind as it may (pending requests).
	ErrAddressFull = errors.New("storage: limit per client address reached")
	// ErrFull means as many records of a kind are held as may be in all.
	ErrFull = errors.New("storage: limit reached")
	// ErrDiskFull means the database could not write for want of disk space;
	// its message names the database file (SQLite) or the server (PostgreSQL).
	ErrDiskFull = errors.New("storage: disk full")
)

// FullError refuses a record because a limit is reached: Err is
// ErrAddressFull or ErrFull. RetryAt is when the first record in the way
// expires, so that a new one fits (sooner if one is consumed).
type FullError struct {
	Err     error
	RetryAt time.Time
}

func (e *FullError) Error() string { return e.Err.Error() }

func (e *FullError) Unwrap() error { return e.Err }
