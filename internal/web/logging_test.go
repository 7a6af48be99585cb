package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/web"
)

// lines decodes the JSON log lines written to buf.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	buf.Reset()
	return out
}

// TestRepeatedErrorsLoggedOncePerInterval: the same error line repeated is
// written once per interval, the next one with the count of those left
// out; other errors, other parts and lines below error level are not held
// back.
func TestRepeatedErrorsLoggedOncePerInterval(t *testing.T) {
	var buf bytes.Buffer
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	log := slog.New(web.LimitRepeatedErrors(slog.NewJSONHandler(&buf, nil), 10*time.Second, clk))
	full := errors.New("sqlite: database or disk is full (13)")
	ctx := context.Background()

	for i := range 1000 {
		log.ErrorContext(ctx, "token endpoint", "request_id", i, "err", full)
		log.Info("request", "request_id", i, "status", 200)
	}
	got := lines(t, &buf)
	if len(got) != 1001 {
		t.Fatalf("got %d lines, want 1 error and 1000 info lines", len(got))
	}
	if got[0]["msg"] != "token endpoint" || got[0]["suppressed"] != nil {
		t.Errorf("first line: got %v, want the error without a count", got[0])
	}

	// Another error, the same error from another part, and the same message
	// about another route or another client are lines of their own.
	log.Error("token endpoint", "err", errors.New("another error"))
	log.With("part", "bff").Error("token endpoint", "err", full)
	log.Error("request", "route", "POST /token", "status", 500)
	log.Error("request", "route", "GET /authorize", "status", 500)
	log.Error("request", "route", "POST /token", "status", 500, "request_id", "x")
	log.Error("back-channel logout", "client_id", "a", "err", full)
	log.Error("back-channel logout", "client_id", "b", "err", full)
	if got := lines(t, &buf); len(got) != 6 {
		t.Errorf("got %d lines, want 6 (each distinct error once)", len(got))
	}

	clk.Advance(10 * time.Second)
	log.Error("token endpoint", "request_id", 1000, "err", full)
	got = lines(t, &buf)
	if len(got) != 1 || got[0]["suppressed"] != float64(999) {
		t.Errorf("after the interval: got %v, want one line with suppressed 999", got)
	}
	log.Error("token endpoint", "err", full)
	if got := lines(t, &buf); len(got) != 0 {
		t.Errorf("right after: got %v, want nothing", got)
	}
}

// TestRepeatedErrorsBounded: errors that all differ (an attacker choosing
// what goes into them) are remembered only up to a bound, and written; the
// limiter works again once they are forgotten.
func TestRepeatedErrorsBounded(t *testing.T) {
	var buf bytes.Buffer
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	log := slog.New(web.LimitRepeatedErrors(slog.NewJSONHandler(&buf, nil), 10*time.Second, clk))
	for i := range 5000 {
		log.Error("parse", "err", errors.New(strings.Repeat("x", i%97)+string(rune('a'+i%26))+strings.Repeat("y", i)))
	}
	if got := lines(t, &buf); len(got) != 5000 {
		t.Errorf("got %d lines, want all 5000 distinct errors", len(got))
	}
	// Once their interval is over, the quiet ones are forgotten and a
	// repeated error is held back again.
	clk.Advance(10 * time.Second)
	for range 100 {
		log.Error("storage", "err", errors.New("disk full"))
	}
	if got := lines(t, &buf); len(got) != 1 {
		t.Errorf("after the flood: got %d lines of one repeated error, want 1", len(got))
	}
}
