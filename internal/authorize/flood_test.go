package authorize_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/castellan-auth/castellan/internal/authorize"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/storage"
)

// Caps of the flood tests: small, so that a few hundred requests pass them.
const (
	floodTotal      = 40
	floodPerAddress = 15
)

// floodConfig believes X-Forwarded-For from the test's own loopback
// address, so that each flooding goroutine can stand for a client address.
func floodConfig(cfg *config.Config) {
	cfg.TrustedProxies = []string{"127.0.0.1"}
	cfg.Authorize.MaxPending, cfg.Authorize.MaxPendingPerAddress = floodTotal, floodPerAddress
}

// maxRowBytes bounds one stored pending request: its encoded request and
// the hashes, client id and times beside it.
const maxRowBytes = authorize.MaxStoredRequestBytes + 512

// maximal is the largest authorization request of spa Castellan accepts:
// every stored parameter at its limit (prompt with values it ignores but
// keeps), the ignored ones too.
func maximal() map[string]string {
	prompt := "login"
	for c := 'a'; len(prompt)+2 <= oauth.MaxPromptLength; c++ {
		prompt += " " + string(c) // distinct values: each is kept
	}
	return map[string]string{
		"state": strings.Repeat(`"`, oauth.MaxStateLength), "nonce": strings.Repeat(`\`, oauth.MaxNonceLength),
		"login_hint": strings.Repeat("h", oauth.MaxLoginHintLength), "prompt": prompt,
		"claims": strings.Repeat("c", oauth.MaxClaimsLength), "ui_locales": strings.Repeat("u", oauth.MaxUILocalesLength),
		"acr_values": strings.Repeat("a", oauth.MaxACRValuesLength), "display": strings.Repeat("d", oauth.MaxDisplayLength),
		"scope": "openid profile email offline_access",
	}
}

// flood sends n anonymous authorization requests from each address, from
// one goroutine per address, all at once, and returns the statuses seen.
// Every answer must be the sign-in redirect (a pending request stored), or
// 429 / 503 with Retry-After; never anything else.
func flood(t *testing.T, f *fixture, addresses []string, n int) map[int]int {
	t.Helper()
	target := f.authorize(authzCase{set: maximal()}.params())
	var mu sync.Mutex
	seen := map[int]int{}
	var wg sync.WaitGroup
	for _, addr := range addresses {
		wg.Go(func() {
			client := f.env.Browser()
			for range n {
				req, _ := http.NewRequest(http.MethodGet, target, nil)
				req.Header.Set("X-Forwarded-For", addr)
				resp, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusSeeOther:
					if !strings.HasPrefix(resp.Header.Get("Location"), "/login?authz=") {
						t.Errorf("303 to %q", resp.Header.Get("Location"))
					}
				case http.StatusTooManyRequests, http.StatusServiceUnavailable:
					if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
						t.Errorf("%d with Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
					}
				default:
					t.Errorf("flood answered %d", resp.StatusCode)
				}
				mu.Lock()
				seen[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return seen
}

// watchUsage samples what the pending requests take, from storage, until
// stop is called, and fails the test if it ever passes the caps.
func watchUsage(t *testing.T, store storage.Storage) (stop func() storage.PendingUsage) {
	var peak atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			u, err := store.PendingRequestUsage(t.Context())
			if err != nil {
				t.Error(err)
				return
			}
			if u.Rows > floodTotal || u.Bytes > floodTotal*maxRowBytes {
				t.Errorf("pending requests take %d rows, %d bytes: over the cap of %d rows", u.Rows, u.Bytes, floodTotal)
			}
			peak.Store(max(peak.Load(), u.Rows))
			select {
			case <-done:
				return
			default:
			}
		}
	})
	return func() storage.PendingUsage {
		close(done)
		wg.Wait()
		u, err := store.PendingRequestUsage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("peak %d rows; now %d rows, %d bytes", peak.Load(), u.Rows, u.Bytes)
		return u
	}
}

// TestPendingRequestFloodBounded is the disk-filling attack: anonymous
// requests with every parameter at its limit, each making the authorization
// endpoint keep a pending request, from several goroutines. What is stored
// (rows and bytes, read from storage on a real SQLite file while the flood
// runs) never passes authorize.max_pending; one address past
// authorize.max_pending_per_address gets 429, everyone past the total 503,
// both with Retry-After and never a 500. A person signing in from another
// address beside the flood still gets a code and its tokens; once the
// flood's requests expire, sign-ins work again.
func TestPendingRequestFloodBounded(t *testing.T) {
	t.Parallel()
	f := fixtureWith(t, floodConfig, nil)

	t.Run("one-address-429", func(t *testing.T) {
		stop := watchUsage(t, f.env.Store)
		var seen map[int]int
		var wg sync.WaitGroup
		wg.Go(func() { seen = flood(t, f, []string{"203.0.113.7", "203.0.113.7", "203.0.113.7", "203.0.113.7"}, 10) })
		// Beside it, someone else signs in (from the loopback address).
		person := f.agent("alice")
		req := request("spa")
		code := f.outcome(t, follow(t, person, f.authorize(req)), req, want{kind: query}).Get("code")
		wg.Wait()
		if c := f.idToken(t, "spa", code, true); c.Name != "Alice Liddell" {
			t.Errorf("ID token for %q", c.Name)
		}
		u := stop()
		if seen[http.StatusSeeOther] != floodPerAddress || seen[http.StatusTooManyRequests] != 40-floodPerAddress || u.Rows != floodPerAddress {
			t.Fatalf("answers %v, %d stored; want %d kept and the rest 429", seen, u.Rows, floodPerAddress)
		}
	})

	t.Run("many-addresses-503", func(t *testing.T) {
		stop := watchUsage(t, f.env.Store)
		var addresses []string
		for i := range 8 {
			addresses = append(addresses, "198.51.100."+strconv.Itoa(i+1))
		}
		seen := flood(t, f, addresses, 10)
		u := stop()
		if seen[http.StatusSeeOther] != floodTotal-floodPerAddress || seen[http.StatusServiceUnavailable] != 80-(floodTotal-floodPerAddress) || u.Rows != floodTotal {
			t.Fatalf("answers %v, %d stored; want the total of %d reached and the rest 503", seen, u.Rows, floodTotal)
		}
		if u.Bytes > floodTotal*maxRowBytes {
			t.Fatalf("%d bytes stored for %d rows", u.Bytes, u.Rows)
		}
	})

	t.Run("full-while-signed-in-people-renew", func(t *testing.T) {
		// A new sign-in needs a pending request: 503 with a page that says so.
		s := get(t, f.agent("bob"), f.authorize(request("spa")))
		if s.Status != http.StatusServiceUnavailable || s.Header.Get("Retry-After") == "" || !strings.Contains(s.Body, "Please try again in") {
			t.Fatalf("new sign-in while full: %d %q\n%s", s.Status, s.Header.Get("Retry-After"), s.Body)
		}
		expectNotFramable(t, s)
		// Someone signed in needs none: renewals go on.
		a := f.signedIn(t, "alice")
		req := request("spa")
		f.idToken(t, "spa", f.outcome(t, get(t, a, f.authorize(req)), req, want{kind: query}).Get("code"), true)
	})

	t.Run("expired-flood-makes-room", func(t *testing.T) {
		f.env.Clock.Advance(f.env.Config.Authorize.PendingTTL.D())
		person := f.agent("bob")
		req := request("spa")
		code := f.outcome(t, follow(t, person, f.authorize(req)), req, want{kind: query}).Get("code")
		f.idToken(t, "spa", code, true)
		u, err := f.env.Store.PendingRequestUsage(t.Context())
		if err != nil || u.Rows > 1 {
			t.Fatalf("after expiry: %d rows (%v), want the expired ones gone", u.Rows, err)
		}
	})
}
