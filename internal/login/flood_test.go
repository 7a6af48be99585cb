package login_test

import (
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// TestSignInFloodIsBounded sends many sign-ins at once against a hashing pool
// of at most two slots: no more hashes than slots ever run together (so memory
// stays within passwords.memory_limit_mib), the excess is told 503 with
// Retry-After instead of queueing without bound, and the server keeps
// answering other requests.
func TestSignInFloodIsBounded(t *testing.T) {
	cfg := servertest.Config()
	cfg.Passwords.MemoryKiB = 8 * 1024
	cfg.Passwords.Iterations = 3
	cfg.Passwords.MemoryLimitMiB = 16 // two slots by memory
	cfg.Passwords.QueueTimeout = 1    // 1ns: a sign-in that finds no free slot is refused at once
	cfg.Throttle.AddressFailures = 100000
	cfg.Throttle.AccountFailures = 100000
	env := servertest.New(t, servertest.Options{Config: cfg})
	// Two slots by memory, fewer on a machine with fewer than three cores
	// (identity.NewHasher leaves one core to the other requests).
	slots := env.Server.Users.Hasher().Slots()
	if want := max(1, min(2, runtime.GOMAXPROCS(0)-1)); slots != want {
		t.Fatalf("slots: got %d, want %d", slots, want)
	}

	c := env.Browser()
	token := csrfOf(t, get(t, c, env.URL+"/login"))
	const n = 200
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			form := url.Values{"csrf_token": {token}, "username": {"alice"}, "password": {"wrong password"}}
			req, _ := http.NewRequest(http.MethodPost, env.URL+"/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := c.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			statuses <- resp.StatusCode
		}()
	}
	// While the flood runs, the server still answers.
	if p := get(t, env.Browser(), env.URL+"/healthz"); p.StatusCode != http.StatusOK {
		t.Errorf("healthz during the flood: got %d, want 200", p.StatusCode)
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[http.StatusServiceUnavailable] == 0 || count[http.StatusUnauthorized] == 0 {
		t.Errorf("statuses: got %v, want both 401s and 503s", count)
	}
	if count[http.StatusUnauthorized]+count[http.StatusServiceUnavailable] != n {
		t.Errorf("statuses: got %v, want only 401 and 503", count)
	}
	if peak := env.Server.Users.Hasher().Peak(); peak > slots {
		t.Errorf("concurrent hashes: got %d, want at most %d", peak, slots)
	}
}
