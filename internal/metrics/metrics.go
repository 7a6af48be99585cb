// Package metrics defines Castellan's Prometheus metrics on a registry of its
// own (not the global one), so that several servers in one test process do not
// collide.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds the collectors.
type Metrics struct {
	Registry *prometheus.Registry

	Requests *prometheus.CounterVec   // route, method, status
	Latency  *prometheus.HistogramVec // route
	SignIns  *prometheus.CounterVec   // outcome
	Tokens   *prometheus.CounterVec   // grant_type, outcome
	Sessions *prometheus.CounterVec   // event (started, ended), reason
	Logout   *LogoutNotices
}

// New registers the collectors on a fresh registry, with Go runtime and
// process collectors.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "castellan_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "status"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "castellan_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		SignIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "castellan_signins_total", Help: "Sign-in attempts by outcome (success, failure, throttled, busy, error).",
		}, []string{"outcome"}),
		Tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "castellan_token_requests_total", Help: "Token endpoint requests by grant type and outcome (issued or an OAuth error code).",
		}, []string{"grant_type", "outcome"}),
		Sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "castellan_sessions_total", Help: "SSO sessions started and ended, with the reason.",
		}, []string{"event", "reason"}),
		Logout: newLogoutNotices(),
	}
	m.Registry.MustRegister(m.Requests, m.Latency, m.SignIns, m.Tokens, m.Sessions, m.Logout,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
