package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// SQLite lets one connection write at a time, so every write of a Store on
// SQLite queues for its single writer connection. Handing that connection
// from one request's goroutine to the next costs a scheduler round trip per
// transaction, and on a busy server the goroutine that gets it next may wait
// behind every other runnable one: the writer sat idle most of the time while
// requests queued for it.
//
// The committer is the group commit that fixes this. One goroutine runs every
// write transaction. It takes the transactions waiting at that moment (up to
// maxBatch) and runs them one after the other in one database transaction,
// each inside a savepoint of its own, and commits them together. Each caller
// gets its answer only after that commit, so a caller that hears "done" holds
// exactly what it held before: its writes are committed. Running them one after
// the other keeps the isolation of one writer at a time: each sees what the
// ones before it wrote, as if they had committed in that order. A transaction
// that fails is rolled back to its savepoint and the others commit; a failed
// commit fails every one of them. Under light load a batch is one transaction
// and nothing waits for company.
type committer struct {
	s *Store
	// queue is unbuffered: a send completes only when the committer has taken
	// the request, which then always gets an answer.
	queue     chan *writeRequest
	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once

	// dirty says a commit happened since the last checkpoint; checkpointed
	// closes when the checkpointing goroutine has stopped.
	dirty        atomic.Bool
	checkpointed chan struct{}

	// sync makes the committed WAL durable (syncWAL; tests count the calls).
	sync func() error
	// dirSynced says the directory entry of the WAL file reached the disk.
	dirSynced bool
}

// Durability. The writer runs with synchronous=NORMAL: a commit is written to
// the WAL but not synced, so a power loss (not a crash of the process) may
// undo the last commits, never half of one. For most writes that is the
// right price: a lost refresh rotation or a lost new session costs a sign-in
// again. For a decision that ends access (a sign-out, a revocation, a
// disabled user, a changed password) it is not: its loss would revive what
// was ended. Such a write asks for durability (inDurableTx, execDurable, or
// tx.syncOnCommit from inside its transaction when it decides so), and the
// committer then syncs the WAL after the batch's commit, before answering,
// which is what synchronous=FULL does at every commit. One sync serves the
// whole batch. Measured costs are in README (storage notes).

// syncWAL makes what is committed to the WAL durable: fsync of the WAL file
// (every frame written so far is in it; the committer, the only writer, does
// not reset the WAL before this returns), and once, of its directory, so the
// file itself survives (SQLite syncs the directory of a new WAL as well).
func (c *committer) syncWAL() error {
	wal := c.s.path + "-wal"
	if err := syncFile(wal); err != nil {
		return fmt.Errorf("sqlite %s: sync: %w", wal, err)
	}
	if !c.dirSynced {
		if err := syncFile(filepath.Dir(wal)); err != nil {
			return fmt.Errorf("sqlite %s: sync directory: %w", wal, err)
		}
		c.dirSynced = true
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

// maxBatch bounds the transactions committed together, so that the first
// one's caller does not wait behind an unbounded queue.
const maxBatch = 64

type writeRequest struct {
	ctx context.Context
	fn  func(*tx) error
	// durable asks for the commit to reach the disk before the answer (see syncWAL).
	durable bool
	done    chan error
}

var (
	errStoreClosed = errors.New("storage closed")
	errTxPanicked  = errors.New("write transaction panicked")
)

func newCommitter(s *Store) *committer {
	c := &committer{s: s, queue: make(chan *writeRequest), stop: make(chan struct{}), stopped: make(chan struct{}),
		checkpointed: make(chan struct{})}
	c.sync = c.syncWAL
	go c.run()
	go c.checkpoints()
	return c
}

// checkpointEvery is how often the WAL is copied back into the database file.
const checkpointEvery = 100 * time.Millisecond

// checkpoints copies committed WAL frames into the database file in the
// background, on a reader connection, while the committer goes on writing
// (PASSIVE: it waits for no one). Left to itself SQLite checkpoints inside a
// commit once the WAL passes its threshold, with an fsync of the database
// file, while every other write waits; the connection's threshold is raised
// to wal_autocheckpoint pages (flavors.go) and stays as the backstop if this
// falls behind.
func (c *committer) checkpoints() {
	defer close(c.checkpointed)
	tick := time.NewTicker(checkpointEvery)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		// An error (busy, closed) leaves the frames for the next round or the backstop.
		c.checkpoint()
	}
}

// checkpoint runs one passive checkpoint if anything was committed since the last.
func (c *committer) checkpoint() error {
	if !c.dirty.Swap(false) {
		return nil
	}
	_, err := c.s.r.ExecContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`)
	return err
}

// do runs fn in a write transaction and returns when it has committed (nil,
// or the error of a keepErr) or been rolled back (its error). A caller whose
// context ends while it waits for its turn is not run; once taken, a
// transaction runs to its end: interrupting SQLite inside a statement would
// roll back the whole batch.
func (c *committer) do(ctx context.Context, fn func(*tx) error, durable bool) error {
	r := &writeRequest{ctx: ctx, fn: fn, durable: durable, done: make(chan error, 1)}
	select {
	case c.queue <- r:
		return <-r.done
	case <-ctx.Done():
		return ctx.Err()
	case <-c.stop:
		return errStoreClosed
	}
}

func (c *committer) close() {
	c.closeOnce.Do(func() {
		close(c.stop)
		<-c.stopped
		<-c.checkpointed
	})
}

func (c *committer) run() {
	defer close(c.stopped)
	batch := make([]*writeRequest, 0, maxBatch)
	for {
		select {
		case r := <-c.queue:
			batch = append(batch[:0], r)
		case <-c.stop:
			return
		}
	gather:
		for len(batch) < maxBatch {
			select {
			case r := <-c.queue:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		c.commit(batch)
		clear(batch) // drop the requests' closures until the next batch
	}
}

// Savepoint statements, named once: the savepoint is released or rolled back
// before the next transaction of the batch takes it again.
const (
	savepoint         = `SAVEPOINT batched`
	releaseSavepoint  = `RELEASE batched`
	rollbackSavepoint = `ROLLBACK TO batched`
)

// commit runs the batch in one transaction and answers every request.
func (c *committer) commit(batch []*writeRequest) {
	ctx := context.Background()
	errs := make([]error, len(batch))
	// written marks the requests whose writes stand and so share the commit's fate.
	written := make([]bool, len(batch))
	// durable marks those that must reach the disk before their answer.
	durable := make([]bool, len(batch))
	var t *tx
	// answer is called once the transaction has ended and the writer
	// connection is free again.
	answer := func(failAll error) {
		if t != nil {
			// Before the answers, so that a caller's next write finds them prepared.
			t.prepareLater()
		}
		for i, r := range batch {
			if failAll != nil && (written[i] || errs[i] == nil) {
				errs[i] = failAll
			}
			r.done <- errs[i]
		}
	}
	sqlTx, err := c.s.w.BeginTx(ctx, nil)
	if err != nil {
		answer(c.s.mapErr(err))
		return
	}
	t = &tx{s: c.s, tx: sqlTx, ctx: ctx}
	// abort ends the transaction with nothing committed and answers; failAll
	// as for answer.
	abort := func(failAll error) {
		sqlTx.Rollback()
		answer(failAll)
	}
	// A batch of one needs no savepoint: its failure rolls back the transaction.
	alone := len(batch) == 1
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if !alone {
			if _, err := t.exec(savepoint); err != nil {
				abort(err)
				return
			}
		}
		t.mustSync = false
		ferr := guarded(r.fn, t)
		durable[i] = r.durable || t.mustSync
		var keep *keepErr
		switch {
		case ferr == nil:
			written[i] = true
		case errors.As(ferr, &keep):
			errs[i], written[i] = keep.err, true
		default:
			errs[i] = ferr
			if alone {
				abort(nil)
				return
			}
			if _, err := t.exec(rollbackSavepoint); err != nil {
				// SQLite rolls a whole transaction back on some errors
				// (I/O, full disk): nothing of the batch stands.
				abort(err)
				return
			}
		}
		if !alone {
			if _, err := t.exec(releaseSavepoint); err != nil {
				abort(err)
				return
			}
		}
	}
	if err := sqlTx.Commit(); err != nil {
		answer(c.s.mapErr(err))
		return
	}
	c.dirty.Store(true)
	c.makeDurable(written, durable, errs)
	answer(nil)
}

// makeDurable syncs the WAL if a request whose writes stand asked for it; if
// the sync fails those requests fail (their writes are committed, perhaps not
// on disk: the caller must not report them done), the others stand.
func (c *committer) makeDurable(written, durable []bool, errs []error) {
	need := false
	for i := range written {
		need = need || written[i] && durable[i]
	}
	if !need {
		return
	}
	err := c.sync()
	if err == nil {
		return
	}
	if full := c.s.diskFull(err); full != nil {
		err = full
	}
	for i := range written {
		if written[i] && durable[i] && errs[i] == nil {
			errs[i] = err
		}
	}
}

// guarded runs fn, turning a panic into its error: the panic of one request's
// transaction (a bug) must fail that request, as it would on the request's own
// goroutine, not stop the committer and with it every write of the server.
func guarded(fn func(*tx) error, t *tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", errTxPanicked, p)
		}
	}()
	return fn(t)
}
