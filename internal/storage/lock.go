package storage

import (
	"context"
	"fmt"
	"time"
)

// lockRetry is how often Lock tries again; holders keep locks for moments.
const lockRetry = 100 * time.Millisecond

// Lock waits until it holds the lock called name, or until ctx ends. It is
// for work that must be done (once) before going on, such as creating the
// first signing keys or provisioning declared users when nodes start together.
func Lock(ctx context.Context, l Locker, name string) (unlock func(), err error) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock %s: %w", name, ctx.Err())
		case <-t.C:
		}
		unlock, ok, err := l.TryLock(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		if ok {
			return unlock, nil
		}
		t.Reset(lockRetry)
	}
}
