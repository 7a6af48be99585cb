package logout

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/mint"
	"github.com/castellan-auth/castellan/internal/oidc"
	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/storage"
)

// Store is what logout needs from storage.
type Store interface {
	storage.Clients
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

// Notifier tells clients that a session ended: back-channel logout tokens are
// POSTed from a bounded queue by background workers, with retries, so neither
// the browser nor the session sweeper ever waits for a client.
type Notifier struct {
	store      Store
	mint       *mint.Minter
	algorithms []string
	clock      clock.Clock
	log        *slog.Logger
	http       *http.Client

	queue chan job
	// Attempts and Backoff bound the retries of one delivery.
	attempts int
	backoff  time.Duration

	mu      sync.Mutex
	stopped bool
	timers  sync.WaitGroup
}

type job struct {
	session storage.Session
	client  *storage.Client // nil: resolve the session's clients first
	attempt int
}

// NewNotifier returns a notifier; Run starts its workers.
func NewNotifier(store Store, m *mint.Minter, algorithms []string, clk clock.Clock, log *slog.Logger) *Notifier {
	return &Notifier{
		store: store, mint: m, algorithms: algorithms, clock: clk, log: log,
		http: &http.Client{
			Timeout: 5 * time.Second,
			// A logout URI that redirects is misconfigured; following it could
			// carry the token somewhere unregistered.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		queue:    make(chan job, 1024),
		attempts: 5,
		backoff:  time.Second,
	}
}

// SetRetry changes the retry policy (tests use short backoffs).
func (n *Notifier) SetRetry(attempts int, backoff time.Duration) {
	n.attempts, n.backoff = attempts, backoff
}

// Ended is a session.EndedFunc: it queues the sessions and returns at once.
func (n *Notifier) Ended(_ context.Context, ended []storage.Session, reason string) {
	for _, s := range ended {
		n.enqueue(job{session: s})
	}
}

func (n *Notifier) enqueue(j job) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return
	}
	select {
	case n.queue <- j:
	default:
		n.log.Warn("back-channel logout queue full; notification dropped", "sid", j.session.SID)
	}
}

// Run works the queue with a few workers until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-n.queue:
					n.work(ctx, j)
				}
			}
		}()
	}
	wg.Wait()
	n.mu.Lock()
	n.stopped = true
	n.mu.Unlock()
}

func (n *Notifier) work(ctx context.Context, j job) {
	if j.client == nil {
		clients, err := n.clientsOf(ctx, j.session)
		if err != nil {
			n.log.Error("back-channel logout: find the session's clients", "sid", j.session.SID, "err", err)
			return
		}
		for i := range clients {
			if clients[i].BackchannelLogoutURI != "" {
				n.work(ctx, job{session: j.session, client: &clients[i]})
			}
		}
		return
	}
	err := n.deliver(ctx, j.session, *j.client)
	if err == nil {
		return
	}
	j.attempt++
	if j.attempt >= n.attempts {
		n.log.Warn("back-channel logout failed; giving up", "client_id", j.client.ID, "sid", j.session.SID, "attempts", j.attempt, "err", err)
		return
	}
	delay := n.backoff << (j.attempt - 1)
	n.log.Info("back-channel logout failed; will retry", "client_id", j.client.ID, "in", delay, "err", err)
	time.AfterFunc(delay, func() { n.enqueue(j) })
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

func (n *Notifier) deliver(ctx context.Context, s storage.Session, c storage.Client) error {
	tok, err := n.LogoutToken(s, c)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BackchannelLogoutURI,
		strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := n.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	// §2.8: 200 on success; 400 means the RP refused this token, retrying will not help.
	if resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusBadRequest {
		return nil
	}
	return &statusError{resp.StatusCode}
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
