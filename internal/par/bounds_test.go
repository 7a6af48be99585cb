package par_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/castellan-auth/castellan/internal/authorize"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// Caps of the flood test.
const (
	floodTotal      = 30
	floodPerAddress = 12
)

// TestPushedParameterLimits: a push is held to the authorization
// endpoint's limits (every parameter, then the request as a whole), and
// answered in JSON: invalid_request naming the parameter, 413 for a body
// over oauth.MaxRequestBytes (RFC 9126 §2.3).
func TestPushedParameterLimits(t *testing.T) {
	f := newFixture(t, nil)
	base := f.form(spa())
	for _, l := range append(append([]oauth.Limit(nil), oauth.IdentityLimits...), oauth.RequestLimits...) {
		if l.Name == "client_id" || l.Name == "request_uri" {
			continue // the client's own id; request_uri cannot be pushed at all
		}
		t.Run(l.Name, func(t *testing.T) {
			form := url.Values{}
			for k, v := range base {
				form[k] = v
			}
			form.Set(l.Name, strings.Repeat("a", l.Max+1))
			r := f.env.Post(t, "/par", form, servertest.SPAClient)
			if r.Status != http.StatusBadRequest || r.Code() != oauth.ErrInvalidRequest || !strings.Contains(r.Str("error_description"), l.Name) {
				t.Fatalf("got %d %s, want invalid_request naming %s", r.Status, r.Body, l.Name)
			}
		})
	}
	t.Run("body-over-limit-413", func(t *testing.T) {
		form := url.Values{"padding": {strings.Repeat("p", oauth.MaxRequestBytes)}}
		for k, v := range base {
			form[k] = v
		}
		r := f.env.Post(t, "/par", form, servertest.SPAClient)
		if r.Status != http.StatusRequestEntityTooLarge || r.Code() != oauth.ErrInvalidRequest {
			t.Fatalf("got %d %s, want 413 invalid_request", r.Status, r.Body)
		}
	})
	t.Run("too-many-parameters", func(t *testing.T) {
		form := url.Values{}
		for k, v := range base {
			form[k] = v
		}
		for i := range oauth.MaxRequestParameters {
			form.Set("x"+strconv.Itoa(i), "1")
		}
		r := f.env.Post(t, "/par", form, servertest.SPAClient)
		if r.Status != http.StatusBadRequest || r.Code() != oauth.ErrInvalidRequest {
			t.Fatalf("got %d %s, want invalid_request", r.Status, r.Body)
		}
	})
}

// TestPushedRequestFloodBounded is the disk-filling attack through /par:
// a public client needs no credential to push, and each push is stored.
// Pushes with every parameter at its limit, from several goroutines: what is
// stored (read from storage while the flood runs) never passes
// authorize.max_pending, shared with the authorization endpoint; one address
// past authorize.max_pending_per_address gets 429, everyone past the total
// 503, both JSON temporarily_unavailable with Retry-After, never a 500. A
// push, sign-in and redemption beside the flood still work.
func TestPushedRequestFloodBounded(t *testing.T) {
	f := newFixture(t, func(cfg *config.Config) {
		cfg.TrustedProxies = []string{"127.0.0.1"}
		cfg.Authorize.MaxPending, cfg.Authorize.MaxPendingPerAddress = floodTotal, floodPerAddress
	})
	maximal := f.form(spa())
	for k, n := range map[string]int{"state": oauth.MaxStateLength, "nonce": oauth.MaxNonceLength,
		"login_hint": oauth.MaxLoginHintLength, "claims": oauth.MaxClaimsLength} {
		maximal.Set(k, strings.Repeat(`"`, n))
	}
	maximal.Set("client_id", "spa")
	body := maximal.Encode()
	const maxRowBytes = authorize.MaxStoredRequestBytes + 512

	watching := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Go(func() {
		for {
			u, err := f.env.Store.PendingRequestUsage(t.Context())
			if err != nil {
				t.Error(err)
				return
			}
			if u.Rows > floodTotal || u.Bytes > floodTotal*maxRowBytes {
				t.Errorf("pushed requests take %d rows, %d bytes: over the cap of %d", u.Rows, u.Bytes, floodTotal)
			}
			select {
			case <-watching:
				return
			default:
			}
		}
	})

	push := func(addresses []string, n int) map[int]int {
		var mu sync.Mutex
		seen := map[int]int{}
		var wg sync.WaitGroup
		for _, addr := range addresses {
			wg.Go(func() {
				for range n {
					req, _ := http.NewRequest(http.MethodPost, f.env.URL+"/par", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("X-Forwarded-For", addr)
					resp, err := f.env.HTTP.Client().Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					var e struct {
						Error string `json:"error"`
					}
					json.NewDecoder(resp.Body).Decode(&e)
					resp.Body.Close()
					switch resp.StatusCode {
					case http.StatusCreated:
					case http.StatusTooManyRequests, http.StatusServiceUnavailable:
						if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || e.Error != oauth.ErrTemporarilyUnavailable {
							t.Errorf("%d %s with Retry-After %q", resp.StatusCode, e.Error, resp.Header.Get("Retry-After"))
						}
					default:
						t.Errorf("flood answered %d %s", resp.StatusCode, e.Error)
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

	var one map[int]int
	var flooding sync.WaitGroup
	flooding.Go(func() { one = push([]string{"203.0.113.9", "203.0.113.9", "203.0.113.9"}, 10) })
	// Beside it, a client pushes from its own address and a person signs in.
	a := spa()
	uri := f.push(t, a, servertest.SPAClient)
	last, err := f.env.Agent("alice").Follow(f.authorizeURL("spa", uri))
	if err != nil {
		t.Fatal(err)
	}
	if r := f.env.Redeem(t, servertest.Params(last.Location).Get("code"), a); r.Status != http.StatusOK {
		t.Fatalf("redeem beside the flood: %d %s", r.Status, r.Body)
	}
	flooding.Wait()
	if one[http.StatusCreated] != floodPerAddress || one[http.StatusTooManyRequests] != 30-floodPerAddress {
		t.Fatalf("one address: %v, want %d pushes kept and the rest 429", one, floodPerAddress)
	}

	var many []string
	for i := range 6 {
		many = append(many, "198.51.100."+strconv.Itoa(i+1))
	}
	seen := push(many, 5)
	close(watching)
	watcher.Wait()
	if seen[http.StatusCreated] != floodTotal-floodPerAddress || seen[http.StatusServiceUnavailable] != 30-(floodTotal-floodPerAddress) {
		t.Fatalf("many addresses: %v, want the total of %d reached and the rest 503", seen, floodTotal)
	}
}
