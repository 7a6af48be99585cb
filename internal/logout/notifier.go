package logout

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/metrics"
	"github.com/castellan-auth/castellan/internal/mint"
	"github.com/castellan-auth/castellan/internal/oidc"
	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/storage"
)

// Store is what logout needs from storage.
type Store interface {
	storage.Clients
	storage.LogoutNotices
	ListGrantsByUser(ctx context.Context, userID string) ([]storage.Grant, error)
}

// BackchannelEvent is the event of a logout token (OIDC Back-Channel Logout §2.4).
const BackchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutClaims are the claims of a logout token.
type LogoutClaims struct {
	Issuer   string                    `json:"iss"`
	Subject  string                    `json:"sub,omitempty"`
	Audience mint.Audience             `json:"aud"`
	IssuedAt int64                     `json:"iat"`
	Expiry   int64                     `json:"exp"`
	JTI      string                    `json:"jti"`
	Events   map[string]map[string]any `json:"events"`
	SID      string                    `json:"sid,omitempty"`
}

// Notifier tells clients that a session ended by POSTing back-channel logout
// tokens, in the background, so neither the browser nor the session sweeper
// ever waits for a client.
//
// The work comes from storage, not from memory: every call that ends a session
// queues its notices in the same transaction (storage.LogoutNotices). A notice
// therefore survives a crash or a restart, a session ended by the admin CLI
// (another process) is announced by the server, and on several nodes each
// notice is claimed by one of them at a time. Ended only wakes the notifier
// up; it also looks on its own every pollInterval, for notices queued
// elsewhere and for retries.
//
// A notice that cannot be delivered is tried again with capped exponential
// backoff for as long as the session's tokens can be used (Retry), so a
// receiver that was down for a while still hears of the sign-out when it
// comes back; then it is given up and counted.
type Notifier struct {
	store      Store
	mint       *mint.Minter
	algorithms []string
	clock      clock.Clock
	log        *slog.Logger
	metrics    *metrics.LogoutNotices
	http       *http.Client
	retry      Retry

	wake chan struct{}
	// observe, if set (tests), hears every attempt's outcome once it is recorded.
	observe atomic.Pointer[func(storage.LogoutNotice, string)]
}

// Retry is how long and how often an undelivered notice is tried again.
type Retry struct {
	// First is the delay after the first failed attempt; each further
	// failure doubles it, up to Max.
	First, Max time.Duration
	// Window is how long after the session ended a retry may still start.
	// A notice that fails after that is given up.
	Window time.Duration
}

const (
	// retryFirst and retryMax are the backoff of DefaultRetry: a receiver
	// back from an outage hears of a sign-out within a minute.
	retryFirst = time.Second
	retryMax   = time.Minute
	// tokenLeeway is how long past its exp a receiver may still accept a
	// token (clock skew allowances are commonly up to a minute).
	tokenLeeway = time.Minute
)

// DefaultRetry is the retry policy for the configured token lifetimes. A
// notice matters for as long as a receiver can still act on tokens of the
// ended session: every access token and ID token issued in it was issued at
// the latest when the session ended, so the last of them expires accessTTL
// or idTokenTTL later (plus tokenLeeway). An access token verified locally,
// without introspection, is the one thing a receiver can still use then:
// session-bound refresh tokens die with the session, introspection and
// userinfo refuse tokens that name it, and an offline grant's refresh token
// is meant to outlive the sign-out (Back-Channel Logout §2.7). After that
// window a late notice would only end a receiver's own session, whose
// lifetime the provider does not know: the notice is given up and counted
// (castellan_logout_notices_given_up_total).
func DefaultRetry(accessTTL, idTokenTTL time.Duration) Retry {
	return Retry{First: retryFirst, Max: retryMax, Window: max(accessTTL, idTokenTTL) + tokenLeeway}
}

// after is the delay before the next attempt once attempts have failed.
func (r Retry) after(attempts int) time.Duration {
	d := r.First
	for i := 1; i < attempts && d < r.Max; i++ {
		d *= 2
	}
	return min(d, r.Max)
}

const (
	// pollInterval is how often the notifier looks for due notices when
	// nothing woke it.
	pollInterval = time.Second
	// claimBatch is how many notices one claim takes, delivered by up to
	// deliverers requests at a time.
	claimBatch = 16
	deliverers = 4
	// leaseFor is how long a claimed notice is this node's to deliver: longer
	// than the batch can take (claimBatch / deliverers × deliveryTimeout).
	// If the node dies first, the notice is due again when the lease ends.
	leaseFor = time.Minute
	// deliveryTimeout bounds one POST to a receiver.
	deliveryTimeout = 5 * time.Second
)

// Outcomes of one delivery attempt, the label of
// castellan_logout_notice_attempts_total.
const (
	outcomeDelivered = "delivered"
	outcomeRefused   = "refused"
	outcomeFailed    = "failed"
	outcomeGivenUp   = "given_up"
)

// NotifierConfig is what a Notifier is built from.
type NotifierConfig struct {
	Store Store
	Mint  *mint.Minter
	// Algorithms are the configured signing algorithms (the logout token is
	// signed as the client's ID tokens are).
	Algorithms []string
	// Clock dates the logout tokens and schedules attempts.
	Clock   clock.Clock
	Log     *slog.Logger
	Metrics *metrics.Metrics
	Retry   Retry
}

// NewNotifier returns a notifier; Run does its work. It also makes the
// metrics count the notices waiting in storage.
func NewNotifier(c NotifierConfig) *Notifier {
	n := &Notifier{
		store: c.Store, mint: c.Mint, algorithms: c.Algorithms, clock: c.Clock, log: c.Log,
		metrics: c.Metrics.Logout, retry: c.Retry,
		http: &http.Client{
			Timeout: deliveryTimeout,
			// A logout URI that redirects is misconfigured; following it could
			// carry the token somewhere unregistered.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		wake: make(chan struct{}, 1),
	}
	n.metrics.Count(func(ctx context.Context) (int64, int64, error) {
		c, err := n.store.CountLogoutNotices(ctx)
		return c.Pending, c.Failing, err
	})
	return n
}

// Ended is a session.EndedFunc. The ended sessions' notices are already in
// storage; it only wakes the notifier and returns at once.
func (n *Notifier) Ended(context.Context, []storage.Session, string) { n.Wake() }

// Wake makes Run look for due notices now.
func (n *Notifier) Wake() {
	select {
	case n.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// Run delivers due notices until ctx ends.
//
// Due times, leases and the retry window are the notifier's clock (the
// system clock in production; nodes sharing a database are assumed to agree
// on the time to well within a lease).
func (n *Notifier) Run(ctx context.Context) {
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	for {
		n.drain(ctx)
		select {
		case <-ctx.Done():
			return
		case <-n.wake:
		case <-poll.C:
		}
	}
}

// drain delivers the notices due now, a batch at a time, until none is left.
func (n *Notifier) drain(ctx context.Context) {
	for ctx.Err() == nil {
		now := n.clock.Now()
		batch, err := n.store.ClaimLogoutNotices(ctx, now, now.Add(leaseFor), claimBatch)
		if err != nil {
			if ctx.Err() == nil {
				n.log.Error("back-channel logout: claim notices", "err", err)
			}
			return
		}
		var wg sync.WaitGroup
		slots := make(chan struct{}, deliverers)
		for _, x := range batch {
			slots <- struct{}{}
			wg.Go(func() {
				defer func() { <-slots }()
				n.attempt(ctx, x)
			})
		}
		wg.Wait()
		if len(batch) < claimBatch {
			return
		}
	}
}

// attempt delivers one claimed notice, then removes it or schedules a retry.
func (n *Notifier) attempt(ctx context.Context, x storage.LogoutNotice) {
	c, err := n.store.GetClient(ctx, x.ClientID)
	switch {
	case errors.Is(err, storage.ErrNotFound), err == nil && c.BackchannelLogoutURI == "":
		n.remove(ctx, x) // nobody to tell
		return
	case err == nil:
		var refused bool
		if refused, err = n.deliver(ctx, storage.Session{SID: x.SID, UserID: x.UserID}, c); err == nil {
			n.remove(ctx, x)
			outcome := outcomeDelivered
			if refused {
				outcome = outcomeRefused
			}
			n.record(x, outcome)
			return
		}
	}
	if ctx.Err() != nil {
		return // shutting down, not the client's failure: the lease's end brings it back
	}
	x.Attempts++
	now := n.clock.Now()
	delay := n.retry.after(x.Attempts)
	if next := now.Add(delay); !next.Before(x.CreatedAt.Add(n.retry.Window)) {
		n.log.Warn("back-channel logout failed; giving up: the session's tokens have expired", "client_id", x.ClientID, "sid", x.SID,
			"attempts", x.Attempts, "since", now.Sub(x.CreatedAt), "err", err)
		n.remove(ctx, x)
		n.record(x, outcomeGivenUp)
		return
	}
	n.log.Info("back-channel logout failed; will retry", "client_id", x.ClientID, "attempts", x.Attempts, "in", delay, "err", err)
	// If this write fails, the lease's end brings the notice back instead.
	if err := n.store.RetryLogoutNotice(ctx, x.SID, x.ClientID, x.Attempts, now.Add(delay)); err != nil {
		if !errors.Is(err, storage.ErrNotFound) && ctx.Err() == nil {
			n.log.Error("back-channel logout: schedule retry", "client_id", x.ClientID, "err", err)
		}
		return
	}
	n.record(x, outcomeFailed)
	time.AfterFunc(delay, n.Wake)
}

// record counts an attempt's outcome once storage holds it.
func (n *Notifier) record(x storage.LogoutNotice, outcome string) {
	if outcome == outcomeGivenUp {
		n.metrics.Attempts.WithLabelValues(outcomeFailed).Inc()
		n.metrics.GivenUp.Inc()
	} else {
		n.metrics.Attempts.WithLabelValues(outcome).Inc()
	}
	if f := n.observe.Load(); f != nil {
		(*f)(x, outcome)
	}
}

func (n *Notifier) remove(ctx context.Context, x storage.LogoutNotice) {
	if err := n.store.DeleteLogoutNotice(ctx, x.SID, x.ClientID); err != nil && ctx.Err() == nil {
		// Delivered again when the lease ends: a fresh logout token for a
		// session the client has already ended, which it takes as done.
		n.log.Error("back-channel logout: remove delivered notice", "client_id", x.ClientID, "err", err)
	}
}

// clientsOf returns the clients that were given tokens in session s.
func (n *Notifier) clientsOf(ctx context.Context, s storage.Session) ([]storage.Client, error) {
	grants, err := n.store.ListGrantsByUser(ctx, s.UserID)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []storage.Client
	for _, g := range grants {
		if g.SID != s.SID || seen[g.ClientID] {
			continue
		}
		seen[g.ClientID] = true
		c, err := n.store.GetClient(ctx, g.ClientID)
		if err != nil {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// LogoutToken makes the logout token for a session and client (OIDC
// Back-Channel Logout §2.4): iss, aud, iat, exp, jti, events, sid and sub, and
// never a nonce, with typ logout+jwt so it cannot pass as an ID token.
func (n *Notifier) LogoutToken(s storage.Session, c storage.Client) (string, error) {
	now := n.clock.Now()
	claims := LogoutClaims{
		Issuer: n.mint.Issuer(), Subject: s.UserID, Audience: mint.Audience{c.ID},
		IssuedAt: now.Unix(), Expiry: now.Add(2 * time.Minute).Unix(), JTI: opaque.ID(),
		Events: map[string]map[string]any{BackchannelEvent: {}}, SID: s.SID,
	}
	return n.mint.Sign(oidc.IDTokenAlgorithm(c, n.algorithms), mint.TypeLogoutToken, claims)
}

// deliver POSTs the logout token. refused reports a 400: the receiver will
// not take this token, and retrying will not change that.
func (n *Notifier) deliver(ctx context.Context, s storage.Session, c storage.Client) (refused bool, err error) {
	tok, err := n.LogoutToken(s, c)
	if err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackchannelLogoutURI,
		strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := n.http.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	// §2.8: 200 on success; 400 means the RP refused this token.
	switch {
	case resp.StatusCode/100 == 2:
		return false, nil
	case resp.StatusCode == http.StatusBadRequest:
		return true, nil
	}
	return false, &statusError{resp.StatusCode}
}

type statusError struct{ code int }

func (e *statusError) Error() string { return "status " + http.StatusText(e.code) }

// FrontChannelURIs are the iframes the logged-out page shows for session s
// (OIDC Front-Channel Logout §3: iss and sid added to each client's URI).
func (n *Notifier) FrontChannelURIs(ctx context.Context, s storage.Session) []string {
	clients, err := n.clientsOf(ctx, s)
	if err != nil {
		n.log.Warn("front-channel logout: find the session's clients", "err", err)
		return nil
	}
	var out []string
	for _, c := range clients {
		if c.FrontchannelLogoutURI == "" {
			continue
		}
		u, err := url.Parse(c.FrontchannelLogoutURI)
		if err != nil {
			continue
		}
		q := u.Query()
		q.Set("iss", n.mint.Issuer())
		q.Set("sid", s.SID)
		u.RawQuery = q.Encode()
		out = append(out, u.String())
	}
	return out
}
