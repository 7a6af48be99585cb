package config_test

import (
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/config"
)

// TestSessionEventsAndMetricsListen: the stream limits have bounded
// defaults, come from the file or the environment, and are refused when they
// would allow nothing; metrics_listen is a listener of its own.
func TestSessionEventsAndMetricsListen(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		env   []string
		want  []string
		check func(t *testing.T, c *config.Config)
	}{
		{name: "ok/defaults", yaml: "{}\n", check: func(t *testing.T, c *config.Config) {
			eq(t, "session_events", c.SessionEvents, config.SessionEvents{MaxPerSession: 8, MaxPerAddress: 128, MaxStreams: 2048, MaxLifetime: config.Duration(15 * time.Minute)})
			eq(t, "metrics_listen", c.MetricsListen, "")
		}},
		{name: "ok/file", yaml: "session_events: {max_per_session: 2, max_per_address: 10, max_streams: 100, max_lifetime: 5m}\nmetrics_listen: 10.0.0.5:9090\n",
			check: func(t *testing.T, c *config.Config) {
				eq(t, "session_events", c.SessionEvents, config.SessionEvents{MaxPerSession: 2, MaxPerAddress: 10, MaxStreams: 100, MaxLifetime: config.Duration(5 * time.Minute)})
				eq(t, "metrics_listen", c.MetricsListen, "10.0.0.5:9090")
			}},
		{name: "ok/env", yaml: "{}\n", env: []string{"CASTELLAN_SESSION_EVENTS_MAX_STREAMS=50", "CASTELLAN_METRICS_LISTEN=127.0.0.1:9090"},
			check: func(t *testing.T, c *config.Config) {
				eq(t, "session_events.max_streams", c.SessionEvents.MaxStreams, 50)
				eq(t, "metrics_listen", c.MetricsListen, "127.0.0.1:9090")
			}},
		{name: "fail/zero-per-session", yaml: "session_events: {max_per_session: 0}\n", want: []string{"session_events.max_per_session: want at least 1"}},
		{name: "fail/negative-per-address", yaml: "session_events: {max_per_address: -1}\n", want: []string{"session_events.max_per_address: want at least 1"}},
		{name: "fail/zero-streams-env", yaml: "{}\n", env: []string{"CASTELLAN_SESSION_EVENTS_MAX_STREAMS=0"}, want: []string{"session_events.max_streams (CASTELLAN_SESSION_EVENTS_MAX_STREAMS): want at least 1"}},
		{name: "fail/lifetime-short", yaml: "session_events: {max_lifetime: 10s}\n", want: []string{"session_events.max_lifetime: want 1m0s to 24h0m0s"}},
		{name: "fail/lifetime-long", yaml: "session_events: {max_lifetime: 48h}\n", want: []string{"session_events.max_lifetime: want 1m0s to 24h0m0s"}},
		{name: "fail/metrics-no-port", yaml: "metrics_listen: 127.0.0.1\n", want: []string{"metrics_listen: want host:port"}},
		{name: "fail/metrics-same-as-listen", yaml: "listen: 127.0.0.1:9000\nmetrics_listen: 127.0.0.1:9000\n", want: []string{"metrics_listen: must differ from listen"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "castellan.yaml", tc.yaml)
			cfg, err := config.Load(path, tc.env)
			if len(tc.want) > 0 {
				checkRefusal(t, err, path, tc.want...)
				return
			}
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			tc.check(t, cfg)
		})
	}
}
