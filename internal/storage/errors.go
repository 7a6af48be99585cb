package storage

import "errors"

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
	// ErrDiskFull means the database could not write for want of disk space;
	// its message names the database file (SQLite) or the server (PostgreSQL).
	ErrDiskFull = errors.New("storage: disk full")
)
