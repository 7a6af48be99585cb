package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/castellan-auth/castellan/internal/loadgen"
)

// serveReference runs loadgen.Reference on addr until ctx ends. It signs with
// the algorithm Castellan signs access tokens with under the same config (the
// first of signing.algorithms) and accepts the bench's service client, so that
// the same client_credentials run can be pointed at either.
func serveReference(ctx context.Context, addr string, creds loadgen.Credentials, stderr io.Writer) error {
	alg := "ES256"
	if len(creds.Algorithms) > 0 {
		alg = creds.Algorithms[0]
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--serve-reference: %w", err)
	}
	issuer := "http://" + ln.Addr().String()
	ref, err := loadgen.NewReference(issuer, creds.Service, alg)
	if err != nil {
		ln.Close()
		return fmt.Errorf("--serve-reference: %w", err)
	}
	srv := &http.Server{Handler: ref, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Fprintf(stderr, "castellan-bench: reference token endpoint (%s, client %s) at %s until interrupted\n", alg, creds.Service.ID, issuer)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	}
}
