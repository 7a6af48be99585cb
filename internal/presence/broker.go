package presence

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

// Limits bound the session-ended streams one node holds. Every open stream
// keeps a connection, and so a file descriptor, open: unbounded, one access
// token could open streams until the process runs out of descriptors and
// accepts no connection at all (config session_events).
type Limits struct {
	// PerSession streams one SSO session may hold; a new one beyond it
	// closes the session's oldest.
	PerSession int
	// PerAddress streams one client address may hold; beyond it a new one
	// is refused (429).
	PerAddress int
	// Total streams the node holds; beyond it a new one is refused (429).
	Total int
	// Lifetime closes a stream after this long; the client opens a new one.
	Lifetime time.Duration
}

// Reasons a stream closes without its session having ended, sent in the
// final "closed" event.
const (
	// ClosedReplaced: a newer stream of the same session took its place.
	ClosedReplaced = "replaced"
	// ClosedTokenExpired: the access token it was opened with expired.
	ClosedTokenExpired = "token_expired"
	// ClosedTokenRevoked: the grant of its access token was revoked.
	ClosedTokenRevoked = "token_revoked"
	// ClosedLifetime: it reached its maximum lifetime.
	ClosedLifetime = "lifetime"
	// ClosedShutdown: the server is stopping.
	ClosedShutdown = "shutdown"
)

// Why the broker refuses a new stream.
var (
	errTooManyFromAddress = errors.New("too many open streams from this address")
	errTooManyStreams     = errors.New("too many open streams")
)

// Broker fans the end of a session out to the streams watching it, and
// counts open streams against Limits.
type Broker struct {
	limits Limits

	mu sync.Mutex
	// bySID holds each session's streams, oldest first.
	bySID  map[string][]*stream
	byAddr map[string]int
	total  int
}

// stream is one open session-ended stream.
type stream struct {
	sid, addr string
	// stop says why the stream must end; the first reason sent wins.
	stop chan stopReason
}

// stopReason is why a stream ends: its session ended (sessionEnded, with
// the session's reason), or it closes for a reason of its own (Closed…).
type stopReason struct {
	sessionEnded bool
	reason       string
}

// NewBroker returns an empty broker that holds streams to limits.
func NewBroker(limits Limits) *Broker {
	return &Broker{limits: limits, bySID: map[string][]*stream{}, byAddr: map[string]int{}}
}

// Ended is a session.EndedFunc.
func (b *Broker) Ended(_ context.Context, ended []storage.Session, reason string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range ended {
		for _, st := range b.bySID[s.SID] {
			st.tell(stopReason{sessionEnded: true, reason: reason})
		}
	}
}

// Shutdown closes every open stream, so that a server shutting down does not
// wait for them (register it with http.Server.RegisterOnShutdown).
func (b *Broker) Shutdown() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, streams := range b.bySID {
		for _, st := range streams {
			st.tell(stopReason{reason: ClosedShutdown})
		}
	}
}

// OpenStreams is how many streams the broker holds.
func (b *Broker) OpenStreams() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

func (st *stream) tell(why stopReason) {
	select {
	case st.stop <- why:
	default: // it was told already
	}
}

// open admits a new stream of session sid from addr, or refuses it. When the
// session holds its limit already, the new stream takes the place of the
// session's oldest, which is told to close: a person reloading an app, or a
// client that forgot to close its streams, keeps the newest ones.
func (b *Broker) open(sid, addr string) (*stream, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var oldest *stream
	if streams := b.bySID[sid]; len(streams) >= b.limits.PerSession {
		oldest = streams[0]
	}
	total, fromAddr := b.total+1, b.byAddr[addr]+1
	if oldest != nil {
		total--
		if oldest.addr == addr {
			fromAddr--
		}
	}
	switch {
	case total > b.limits.Total:
		return nil, errTooManyStreams
	case fromAddr > b.limits.PerAddress:
		return nil, errTooManyFromAddress
	}
	if oldest != nil {
		b.remove(oldest)
		oldest.tell(stopReason{reason: ClosedReplaced})
	}
	st := &stream{sid: sid, addr: addr, stop: make(chan stopReason, 1)}
	b.bySID[sid] = append(b.bySID[sid], st)
	b.byAddr[addr]++
	b.total++
	return st, nil
}

// close forgets a stream that ended; closing one twice, or one that was
// replaced, is harmless.
func (b *Broker) close(st *stream) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.remove(st)
}

func (b *Broker) remove(st *stream) {
	streams := b.bySID[st.sid]
	i := slices.Index(streams, st)
	if i < 0 {
		return
	}
	if len(streams) == 1 {
		delete(b.bySID, st.sid)
	} else {
		b.bySID[st.sid] = slices.Delete(streams, i, i+1)
	}
	if b.byAddr[st.addr]--; b.byAddr[st.addr] == 0 {
		delete(b.byAddr, st.addr)
	}
	b.total--
}
