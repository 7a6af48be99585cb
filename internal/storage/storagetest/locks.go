package storagetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

func mustTryLock(t *testing.T, s storage.Storage, name string, want bool) func() {
	t.Helper()
	unlock, ok, err := s.TryLock(t.Context(), name)
	if err != nil {
		t.Fatalf("TryLock(%s): %v", name, err)
	}
	if ok != want {
		t.Fatalf("TryLock(%s): got ok %v, want %v", name, ok, want)
	}
	if ok && unlock == nil {
		t.Fatalf("TryLock(%s): got ok and a nil unlock", name)
	}
	return unlock
}

// A held lock excludes every other caller, even one of the same store; other
// names are independent; unlocking twice is harmless.
func testLocks(t *testing.T, s storage.Storage) {
	unlock := mustTryLock(t, s, "maintenance", true)
	mustTryLock(t, s, "maintenance", false)
	other := mustTryLock(t, s, "other", true)
	unlock()
	unlock()
	again := mustTryLock(t, s, "maintenance", true)
	mustTryLock(t, s, "other", false)
	again()
	other()
	mustTryLock(t, s, "other", true)()

	// A released lock is free as soon as unlock returns, every time (on
	// PostgreSQL, closing the lock's session alone releases it a moment
	// later, which made this flaky).
	for range 20 {
		mustTryLock(t, s, "maintenance", true)()
	}
}

func testLocksAcrossNodes(t *testing.T, open func() storage.Storage) {
	a, b := open(), open()
	unlock := mustTryLock(t, a, "maintenance", true)
	mustTryLock(t, b, "maintenance", false)
	unlock()
	unlockB := mustTryLock(t, b, "maintenance", true)
	mustTryLock(t, a, "maintenance", false)
	unlockB()
}

// Of many callers on two nodes trying at once, exactly one holds the lock.
func testLocksConcurrent(t *testing.T, open func() storage.Storage) {
	nodes := []storage.Storage{open(), open()}
	var held atomic.Int32
	var tried sync.WaitGroup
	tried.Add(concurrency)
	errs := race(concurrency, func(i int) error {
		unlock, ok, err := nodes[i%len(nodes)].TryLock(t.Context(), "maintenance")
		tried.Done()
		if err != nil {
			return err
		}
		if ok {
			held.Add(1)
			tried.Wait() // hold until every caller has tried
			unlock()
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("TryLock #%d: %v", i, err)
		}
	}
	if n := held.Load(); n != 1 {
		t.Errorf("TryLock by %d callers at once: got %d holders, want exactly 1", concurrency, n)
	}
}

// Lock waits for the holder on another node, and gives up when ctx ends.
func testLockWaits(t *testing.T, open func() storage.Storage) {
	a, b := open(), open()
	unlock := mustTryLock(t, a, "provision", true)

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := storage.Lock(ctx, b, "provision"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock while another node holds it: got %v, want context.DeadlineExceeded", err)
	}

	got := make(chan error, 1)
	go func() {
		unlockB, err := storage.Lock(t.Context(), b, "provision")
		if err == nil {
			unlockB()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("Lock returned %v while another node holds the lock", err)
	case <-time.After(150 * time.Millisecond):
	}
	unlock()
	select {
	case err := <-got:
		wantErr(t, "Lock once released", err, nil)
	case <-time.After(10 * time.Second):
		t.Fatal("Lock still waiting 10s after the lock was released")
	}
}
