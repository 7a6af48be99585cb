package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
)

// servePprof serves the runtime profiles on their own loopback listener
// (debug.pprof_listen, off by default), so that profiling never shares the
// provider's public port or its middleware. It returns a function that stops it.
func servePprof(addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug.pprof_listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	limits := defaultLimits
	limits.WriteTimeout = 0 // a CPU profile or trace takes as long as it was asked to
	hs := newHTTPServer(mux, limits, log)
	go hs.Serve(ln)
	log.Warn("serving runtime profiles (debug.pprof_listen); turn off outside diagnosis", "addr", ln.Addr().String())
	return func() { hs.Close() }, nil
}
