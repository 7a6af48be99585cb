package login_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/identity"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// BenchmarkSignIn measures a whole sign-in (CSRF check, throttle lookups,
// argon2id with the default parameters, session insert) through HTTP, and
// reports it as a multiple of one bare argon2id hash measured in the same run:
// the hash should dominate.
func BenchmarkSignIn(b *testing.B) {
	cfg := servertest.Config()
	p := identity.DefaultParams
	cfg.Passwords.MemoryKiB, cfg.Passwords.Iterations, cfg.Passwords.Parallelism = int(p.MemoryKiB), int(p.Iterations), int(p.Parallelism)
	env := servertest.New(b, servertest.Options{Config: cfg})
	c := env.Browser()
	resp, err := c.Get(env.URL + "/login")
	if err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	token := csrfRE.FindStringSubmatch(sb.String())[1]
	form := url.Values{"csrf_token": {token}, "username": {"alice"}, "password": {servertest.Password}}.Encode()

	// The bare hash, timed in the same run (not with testing.Benchmark, which
	// cannot nest inside a running benchmark).
	const hashes = 5
	hashStart := time.Now()
	for range hashes {
		identity.HashPassword(servertest.Password, p)
	}
	hashCost := float64(time.Since(hashStart).Nanoseconds()) / hashes
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, env.URL+"/login", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.StopTimer()
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perOp/hashCost, "x-argon2id")
}
