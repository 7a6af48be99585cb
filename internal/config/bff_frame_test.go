package config_test

import (
	"testing"

	"github.com/castellan-auth/castellan/internal/config"
)

// TestBFFFrameAncestors: the SPA may be framed by nobody unless the config
// says who; every value is a CSP keyword or an origin, so nothing else can
// be written into the header.
func TestBFFFrameAncestors(t *testing.T) {
	base := "client_id: app\nclient_secret: " + secret32 + "\n"
	tests := []struct {
		name string
		yaml string
		env  []string
		want []string // problems; none: the config loads with frame_ancestors = ok
		ok   []string
	}{
		{name: "ok/default-none", yaml: base, ok: []string{"'none'"}},
		{name: "ok/self", yaml: base + "frame_ancestors: [\"'self'\"]\n", ok: []string{"'self'"}},
		{name: "ok/origins", yaml: base + "frame_ancestors: [\"'self'\", https://portal.example, 'https://intranet.example:8443']\n",
			ok: []string{"'self'", "https://portal.example", "https://intranet.example:8443"}},
		{name: "ok/loopback-http", yaml: base + "frame_ancestors: [http://127.0.0.1:3000]\n", ok: []string{"http://127.0.0.1:3000"}},
		{name: "ok/env", yaml: base, env: []string{"CASTELLAN_FRAME_ANCESTORS=https://a.example,https://b.example"}, ok: []string{"https://a.example", "https://b.example"}},
		{name: "fail/empty", yaml: base + "frame_ancestors: []\n", want: []string{"frame_ancestors: list \"'none'\", \"'self'\" or origins"}},
		{name: "fail/none-with-others", yaml: base + "frame_ancestors: [\"'none'\", https://portal.example]\n", want: []string{"frame_ancestors: 'none' must stand alone"}},
		{name: "fail/bare-none", yaml: base + "frame_ancestors: [none]\n", want: []string{"frame_ancestors[0]: write the keyword with its quotes"}},
		{name: "fail/bare-self", yaml: base + "frame_ancestors: [self]\n", want: []string{"frame_ancestors[0]: write the keyword with its quotes"}},
		{name: "fail/unsafe-keyword", yaml: base + "frame_ancestors: [\"'unsafe-inline'\"]\n", want: []string{"frame_ancestors[0]: want \"'none'\", \"'self'\" or an origin"}},
		{name: "fail/wildcard", yaml: base + "frame_ancestors: ['*']\n", want: []string{"frame_ancestors[0]: want \"'none'\", \"'self'\" or an origin"}},
		{name: "fail/scheme-only", yaml: base + "frame_ancestors: ['https:']\n", want: []string{"frame_ancestors[0]: want \"'none'\", \"'self'\" or an origin"}},
		{name: "fail/with-path", yaml: base + "frame_ancestors: [https://portal.example/app]\n", want: []string{"frame_ancestors[0]: want an origin"}},
		{name: "fail/with-query", yaml: base + "frame_ancestors: ['https://portal.example?x']\n", want: []string{"frame_ancestors[0]: want an origin"}},
		{name: "fail/injection-semicolon", yaml: base + "frame_ancestors: [\"https://a.example; script-src *\"]\n", want: []string{"frame_ancestors[0]: want \"'none'\", \"'self'\" or an origin"}},
		{name: "fail/injection-space", yaml: base + "frame_ancestors: [\"https://a.example *\"]\n", want: []string{"frame_ancestors[0]: want \"'none'\", \"'self'\" or an origin"}},
		{name: "fail/injection-newline", yaml: base + "frame_ancestors: [\"https://a.example\\nX-Evil: 1\"]\n", want: []string{"frame_ancestors[0]: want \"'none'\", \"'self'\" or an origin"}},
		{name: "fail/http-remote", yaml: base + "frame_ancestors: [http://portal.example]\n", want: []string{"frame_ancestors[0]: http on a non-loopback host"}},
		{name: "fail/userinfo", yaml: base + "frame_ancestors: ['https://u@portal.example']\n", want: []string{"frame_ancestors[0]: want an origin"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "bff.yaml", tc.yaml)
			cfg, err := config.LoadBFF(path, tc.env)
			if len(tc.want) > 0 {
				checkRefusal(t, err, path, tc.want...)
				return
			}
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			eq(t, "frame_ancestors", cfg.FrameAncestors, tc.ok)
		})
	}
}
