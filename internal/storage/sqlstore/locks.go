package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// locker is how a flavor takes TryLock's locks.
type locker interface {
	tryLock(ctx context.Context, name string) (unlock func(), ok bool, err error)
}

// TryLock takes the named lock if nobody holds it (see storage.Locker).
//
// On PostgreSQL it is a session advisory lock held on a connection of its own,
// outside the pool: the lock lives exactly as long as that session, so a node
// that dies (or loses the connection) releases it, and a pooled connection can
// never carry a forgotten lock to a later caller (advisory locks are reentrant
// within a session). The lock key is derived from the name and the current
// schema, so installations sharing one database in separate schemas do not
// exclude each other.
//
// On SQLite every writer is serialized by the database anyway; the lock is a
// mutex per database file and name, shared by every Store of the process.
// Another process on the same file (the admin CLI) is not excluded: the work
// done under the lock must be atomic in storage on its own.
func (s *Store) TryLock(ctx context.Context, name string) (func(), bool, error) {
	return s.locks.tryLock(ctx, name)
}

// fileLocks holds one mutex per SQLite file and lock name, for the process.
var fileLocks sync.Map // path + "\x00" + name → *sync.Mutex

type fileLocker struct{ path string }

func newFileLocker(path string) (*fileLocker, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return &fileLocker{path: abs}, nil
}

func (l *fileLocker) tryLock(ctx context.Context, name string) (func(), bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	v, _ := fileLocks.LoadOrStore(l.path+"\x00"+name, new(sync.Mutex))
	mu := v.(*sync.Mutex)
	if !mu.TryLock() {
		return nil, false, nil
	}
	var once sync.Once
	return func() { once.Do(mu.Unlock) }, true, nil
}

type advisoryLocker struct{ cfg *pgx.ConnConfig }

func newAdvisoryLocker(dsn string) (*advisoryLocker, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx masks the password in its parse errors.
		return nil, fmt.Errorf("postgres: %v", err)
	}
	return &advisoryLocker{cfg: cfg}, nil
}

// unlockTimeout bounds releasing the lock and closing its connection; the
// server ends the session (and the lock) when the socket closes in any case.
const unlockTimeout = 5 * time.Second

func (l *advisoryLocker) tryLock(ctx context.Context, name string) (func(), bool, error) {
	conn, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return nil, false, lockErr(name, err)
	}
	closeConn := func() {
		cctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
		defer cancel()
		conn.Close(cctx)
	}
	// Closing alone is not enough for unlock: the client's Terminate message
	// returns at once while the server ends the session (and drops its locks)
	// a moment later, so a caller that unlocks and then tries again, or
	// signals another node to, could find its own lock still held. Releasing
	// first, and waiting for the answer, makes the release happen before
	// unlock returns; if that fails the closed session still releases it.
	release := func() {
		cctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
		defer cancel()
		_, _ = conn.Exec(cctx, `SELECT pg_advisory_unlock_all()`)
		conn.Close(cctx)
	}
	var ok bool
	err = conn.QueryRow(ctx,
		`SELECT pg_try_advisory_lock(hashtextextended('castellan/' || coalesce(current_schema(), '') || '/lock/' || $1, 0))`,
		name).Scan(&ok)
	if err != nil || !ok {
		closeConn()
		if err != nil {
			return nil, false, lockErr(name, err)
		}
		return nil, false, nil
	}
	var once sync.Once
	return func() { once.Do(release) }, true, nil
}

// lockErr keeps driver types out of the error, as mapErr does.
func lockErr(name string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("postgres: lock %q: %v", name, err)
}
