package presence

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/web"
)

// Ended is the data of the session_ended event: the session is over.
type Ended struct {
	SID    string `json:"sid"`
	Reason string `json:"reason"`
}

// Closed is the data of the closed event: the stream ends but the session
// lives on (Closed… reasons); the client may open a new stream, with a
// fresh access token once its token expired.
type Closed struct {
	Reason string `json:"reason"`
}

// streamWriteTimeout is how long one write to a stream may wait for the
// client to take it; a client that stops reading is dropped.
const streamWriteTimeout = 30 * time.Second

// busyRetryAfter is the Retry-After of a stream refused for the limits:
// streams end within their lifetime, so room comes back.
const busyRetryAfter = 30 * time.Second

func (e *Endpoint) events(w http.ResponseWriter, r *http.Request) {
	s, claims, ok := e.authenticate(w, r)
	if !ok {
		return
	}
	st, err := e.Broker.open(s.SID, e.Addresses.Of(r))
	if err != nil {
		busy(w, err)
		return
	}
	defer e.Broker.close(st)

	// The stream ends at its lifetime or when its token expires, whichever
	// comes first.
	end, endReason := e.Clock.Now().Add(e.Broker.limits.Lifetime), ClosedLifetime
	if exp := time.Unix(claims.Expiry, 0); exp.Before(end) {
		end, endReason = exp, ClosedTokenExpired
	}

	// The server's read and write timeouts would cut the stream off: it
	// keeps a write deadline of its own instead, pushed ahead at every
	// write, so a client that stops reading is still dropped.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	write := func(format string, args ...any) {
		rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		fmt.Fprintf(w, format, args...)
		rc.Flush()
	}
	sessionEnded := func(reason string) {
		b, _ := json.Marshal(Ended{SID: s.SID, Reason: reason})
		write("event: session_ended\ndata: %s\n\n", b)
	}
	closed := func(reason string) {
		b, _ := json.Marshal(Closed{Reason: reason})
		write("event: closed\ndata: %s\n\n", b)
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // no buffering in nginx-like proxies
	write("retry: 5000\nevent: ready\ndata: {\"sid\":%q}\n\n", s.SID)

	poll := time.NewTicker(orDefault(e.Poll, 5*time.Second))
	defer poll.Stop()
	keep := time.NewTicker(orDefault(e.KeepAlive, 25*time.Second))
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case why := <-st.stop:
			if why.sessionEnded {
				sessionEnded(why.reason)
			} else {
				closed(why.reason)
			}
			return
		case <-keep.C:
			write(": keep-alive\n\n")
		case <-poll.C:
			if !e.Clock.Now().Before(end) {
				closed(endReason)
				return
			}
			// Another node may have ended the session, or it may have
			// expired unseen; the token's grant may have been revoked.
			alive, err := e.Sessions.Alive(r.Context(), s.SID)
			if err != nil {
				continue
			}
			if !alive {
				sessionEnded("ended")
				return
			}
			if active, err := e.Grants.AccessActive(r.Context(), claims.JTI, claims.Grant, claims.SID); err == nil && !active {
				closed(ClosedTokenRevoked)
				return
			}
		}
	}
}

// busy refuses a stream beyond the limits: 429 with Retry-After, and the
// CORS headers authenticate set, so the app can read why.
func busy(w http.ResponseWriter, err error) {
	desc := "the server has too many open streams"
	if errors.Is(err, errTooManyFromAddress) {
		desc = "too many open streams from this address"
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(busyRetryAfter.Seconds())))
	web.NoStore(w)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusTooManyRequests)
	json.NewEncoder(w).Encode(oauth.Error{Code: oauth.ErrTemporarilyUnavailable, Description: desc})
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
