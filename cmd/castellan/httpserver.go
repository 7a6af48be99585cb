package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// serverLimits bound what one connection may take from a server: how long
// the client may take to send its request, how long the answer may take, how
// long an idle keep-alive connection stays, and how large the headers may
// be. Without them a client that sends its body a byte at a time holds its
// connection (and a file descriptor) for as long as it likes.
type serverLimits struct {
	// ReadHeaderTimeout bounds the request line and headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds the whole request, body included.
	ReadTimeout time.Duration
	// WriteTimeout bounds the answer (counted from the end of the headers).
	// A streaming answer (the provider's session-ended stream, an API call
	// of a signed-in person through the BFF) sets deadlines of its own.
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections left without a request.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes int
}

// defaultLimits are the limits of castellan serve, bff and dev. No form,
// token request or JSON body the servers take needs more than a few seconds
// on a slow link; WriteTimeout leaves ReadTimeout's worth of time to the
// handler after the slowest body allowed.
var defaultLimits = serverLimits{
	ReadHeaderTimeout: 10 * time.Second,
	ReadTimeout:       30 * time.Second,
	WriteTimeout:      60 * time.Second,
	IdleTimeout:       120 * time.Second,
	MaxHeaderBytes:    32 << 10,
}

// newHTTPServer is the one way castellan builds an http.Server, so that the
// provider, the BFF and castellan dev have the same limits.
func newHTTPServer(h http.Handler, limits serverLimits, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: limits.ReadHeaderTimeout,
		ReadTimeout:       limits.ReadTimeout,
		WriteTimeout:      limits.WriteTimeout,
		IdleTimeout:       limits.IdleTimeout,
		MaxHeaderBytes:    limits.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// serveMetrics serves GET /metrics alone on a listener of its own
// (metrics_listen), so that what the metrics tell (request rates by route,
// sign-in failures, key ages) need not be served to the internet with the
// provider. It returns a function that stops it.
func serveMetrics(addr string, metrics http.Handler, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics)
	hs := newHTTPServer(mux, defaultLimits, log)
	go hs.Serve(ln)
	log.Info("serving metrics (metrics_listen)", "addr", ln.Addr().String())
	return func() { hs.Close() }, nil
}
