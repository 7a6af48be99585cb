package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// BenchmarkFlows runs each scenario's operation in a loop against an
// in-process provider (servertest: SQLite in a temp dir, cheap argon2id), one
// virtual client, over loopback HTTP. It is for profiles, not for the figures
// of BENCHMARKS.md (those come from castellan-bench against a real server):
//
//	go test -run '^$' -bench Flows/client_credentials -cpuprofile cpu.prof ./internal/loadgen/
//	go tool pprof -top -cum cpu.prof
//
// The profile holds server and client together; the server's part is under
// net/http.(*conn).serve.
func BenchmarkFlows(b *testing.B) {
	cfg := servertest.Config()
	bench := NewConfig("http://127.0.0.1:19400")
	cfg.Clients = append(cfg.Clients, bench.Clients...)
	cfg.Users = append(cfg.Users, bench.Users...)
	env := servertest.New(b, servertest.Options{Config: cfg})
	creds, err := CredentialsFrom(env.Config)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	target, err := Discover(ctx, env.URL, 1, 10*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer target.Close()
	for _, name := range []string{ClientCredentials, Refresh, Silent, Introspect, Userinfo, SignIn} {
		b.Run(name, func(b *testing.B) {
			k := kinds[name]
			vc := newVClient(target, 0, &creds, false)
			defer vc.close()
			if k.user {
				if err := vc.setUp(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := k.do(ctx, vc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
