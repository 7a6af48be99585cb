package web

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/castellan-auth/castellan/internal/clock"
)

// RepeatedErrorInterval is how often one error line, repeated, is written.
const RepeatedErrorInterval = 10 * time.Second

// maxRepeatedErrors bounds the distinct error lines remembered at once; past
// it, lines that match none are written as they come.
const maxRepeatedErrors = 1024

// identifyingAttrs are the attributes that say which error a line is about;
// the others (request id, path, duration) differ from request to request.
var identifyingAttrs = map[string]bool{"err": true, "panic": true, "route": true, "status": true, "method": true, "client_id": true}

// LimitRepeatedErrors writes each error line at most once per interval. When
// storage fails for every request (a full disk), every request logs the same
// error: thousands of lines a second that bury everything else and fill the
// disk further. Lines at error level with the same message, the same
// attributes of the logger (its part) and the same err, panic, route,
// status, method and client_id are the same line: the first is written, those that follow within
// interval are counted, and the first written after it carries
// "suppressed": how many were left out. Lines below error level pass as
// they are.
func LimitRepeatedErrors(h slog.Handler, interval time.Duration, clk clock.Clock) slog.Handler {
	return &repeatLimiter{next: h, state: &repeats{interval: interval, clock: clk, seen: map[[sha256.Size]byte]*repeat{}}}
}

type repeatLimiter struct {
	next slog.Handler
	// scope identifies the logger: its attributes and groups.
	scope string
	state *repeats
}

type repeats struct {
	interval time.Duration
	clock    clock.Clock
	mu       sync.Mutex
	// seen is keyed by the SHA-256 of a line's identity, so that long
	// errors take no more room than short ones.
	seen map[[sha256.Size]byte]*repeat
	// swept is when seen, full, was last cleared of quiet lines.
	swept time.Time
}

// repeat is one error line: when it was last written, and how many times it
// came since.
type repeat struct {
	written    time.Time
	suppressed int
}

func (l *repeatLimiter) Enabled(ctx context.Context, level slog.Level) bool {
	return l.next.Enabled(ctx, level)
}

func (l *repeatLimiter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelError {
		return l.next.Handle(ctx, r)
	}
	write, suppressed := l.state.admit(l.key(r))
	if !write {
		return nil
	}
	if suppressed > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", suppressed))
	}
	return l.next.Handle(ctx, r)
}

func (l *repeatLimiter) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(l.scope)
	for _, a := range attrs {
		fmt.Fprintf(&b, "%s=%v;", a.Key, a.Value)
	}
	return &repeatLimiter{next: l.next.WithAttrs(attrs), scope: b.String(), state: l.state}
}

func (l *repeatLimiter) WithGroup(name string) slog.Handler {
	return &repeatLimiter{next: l.next.WithGroup(name), scope: l.scope + name + ".", state: l.state}
}

// key names the error a record is about.
func (l *repeatLimiter) key(r slog.Record) [sha256.Size]byte {
	var b strings.Builder
	b.WriteString(l.scope)
	b.WriteString("|")
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		if identifyingAttrs[a.Key] {
			fmt.Fprintf(&b, "|%s=%v", a.Key, a.Value)
		}
		return true
	})
	return sha256.Sum256([]byte(b.String()))
}

// admit reports whether the line named key is written now, and how many of
// it were left out before.
func (s *repeats) admit(key [sha256.Size]byte) (write bool, suppressed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	if r, ok := s.seen[key]; ok {
		if now.Sub(r.written) < s.interval && !now.Before(r.written) {
			r.suppressed++
			return false, 0
		}
		suppressed, r.written, r.suppressed = r.suppressed, now, 0
		return true, suppressed
	}
	if len(s.seen) >= maxRepeatedErrors && now.Sub(s.swept) >= s.interval {
		s.forgetQuiet(now)
		s.swept = now
	}
	if len(s.seen) >= maxRepeatedErrors {
		return true, 0 // too many kinds of error to tell apart: write them all
	}
	s.seen[key] = &repeat{written: now}
	return true, 0
}

// forgetQuiet drops the lines whose interval is over and that were not
// repeated in it: the next one of them is written anyway.
func (s *repeats) forgetQuiet(now time.Time) {
	for k, r := range s.seen {
		if r.suppressed == 0 && now.Sub(r.written) >= s.interval {
			delete(s.seen, k)
		}
	}
}
