package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LogoutNotices are the metrics of back-channel logout notices: what this
// node's attempts came to, and what waits in storage for every node.
type LogoutNotices struct {
	// Attempts counts this node's deliveries by outcome: delivered (2xx),
	// refused (400: the receiver will not take it, no retry), failed (to be
	// tried again).
	Attempts *prometheus.CounterVec
	// GivenUp counts notices dropped undelivered when their retry window
	// ended: receivers that may still hold a live session for a person who
	// signed out.
	GivenUp prometheus.Counter

	count   func(context.Context) (pending, failing int64, err error)
	pending *prometheus.Desc
	failing *prometheus.Desc
}

// countTimeout bounds the storage read behind the pending gauges at scrape time.
const countTimeout = 2 * time.Second

func newLogoutNotices() *LogoutNotices {
	return &LogoutNotices{
		Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "castellan_logout_notice_attempts_total",
			Help: "Back-channel logout deliveries by this node, by outcome (delivered, refused, failed).",
		}, []string{"outcome"}),
		GivenUp: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "castellan_logout_notices_given_up_total",
			Help: "Back-channel logout notices dropped undelivered after their retry window (as long as the session's tokens live).",
		}),
		pending: prometheus.NewDesc("castellan_logout_notices_pending",
			"Back-channel logout notices waiting in storage, on every node.", nil, nil),
		failing: prometheus.NewDesc("castellan_logout_notices_undelivered",
			"Back-channel logout notices waiting whose delivery failed at least once (receiver down), on every node.", nil, nil),
	}
}

// Count sets where the pending and undelivered gauges come from: count is
// called at each scrape. Until it is set, or when it fails (storage down),
// the gauges are left out of the scrape rather than failing it.
func (l *LogoutNotices) Count(count func(context.Context) (pending, failing int64, err error)) {
	l.count = count
}

// Describe is part of prometheus.Collector.
func (l *LogoutNotices) Describe(ch chan<- *prometheus.Desc) {
	l.Attempts.Describe(ch)
	l.GivenUp.Describe(ch)
	ch <- l.pending
	ch <- l.failing
}

// Collect is part of prometheus.Collector.
func (l *LogoutNotices) Collect(ch chan<- prometheus.Metric) {
	l.Attempts.Collect(ch)
	l.GivenUp.Collect(ch)
	if l.count == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), countTimeout)
	defer cancel()
	pending, failing, err := l.count(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(l.pending, prometheus.GaugeValue, float64(pending))
	ch <- prometheus.MustNewConstMetric(l.failing, prometheus.GaugeValue, float64(failing))
}
