package bff_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/bff"
)

// frameAncestors returns the frame-ancestors directive of every CSP header
// of resp.
func frameAncestors(resp *http.Response) []string {
	var out []string
	for _, policy := range resp.Header.Values("Content-Security-Policy") {
		for _, d := range strings.Split(policy, ";") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(d), "frame-ancestors "); ok {
				out = append(out, v)
			}
		}
	}
	return out
}

// TestSPACannotBeFramed: the SPA the gateway serves, from static_dir or
// through spa_upstream, says who may frame it: nobody by default
// (frame-ancestors 'none' and X-Frame-Options DENY, whatever a dev server
// says), or the origins configured.
func TestSPACannotBeFramed(t *testing.T) {
	spa := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A dev server that would allow framing.
		w.Header().Set("X-Frame-Options", "ALLOWALL")
		w.Header().Set("Content-Security-Policy", "default-src 'self'")
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<!doctype html><title>dev</title>"))
	}))
	t.Cleanup(spa.Close)
	fromUpstream := func(c *bff.Config) { c.StaticDir, c.SPAUpstream = "", spa.URL }
	for _, tc := range []struct {
		name      string
		adjust    func(*bff.Config)
		ancestors string
		xfo       string
	}{
		{"static/default-none", nil, "'none'", "DENY"},
		{"static/self", func(c *bff.Config) { c.FrameAncestors = []string{"'self'"} }, "'self'", "SAMEORIGIN"},
		{"static/origins", func(c *bff.Config) { c.FrameAncestors = []string{"'self'", "https://portal.example"} }, "'self' https://portal.example", ""},
		{"upstream/default-none", fromUpstream, "'none'", "DENY"},
		{"upstream/origins", func(c *bff.Config) { fromUpstream(c); c.FrameAncestors = []string{"https://portal.example"} }, "https://portal.example", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t, stackOptions{bff: tc.adjust})
			b := s.browser("alice")
			for _, path := range []string{"/", "/orders/42"} {
				resp, body := b.do(t, http.MethodGet, path, false, nil)
				if resp.StatusCode != http.StatusOK || !strings.Contains(body, "<title>") {
					t.Fatalf("GET %s: got %d %q, want the SPA", path, resp.StatusCode, body)
				}
				if got := frameAncestors(resp); !slices.Contains(got, tc.ancestors) {
					t.Errorf("GET %s: frame-ancestors %q, want %q", path, got, tc.ancestors)
				}
				if got := resp.Header.Values("X-Frame-Options"); tc.xfo == "" && len(got) > 0 || tc.xfo != "" && !slices.Equal(got, []string{tc.xfo}) {
					t.Errorf("GET %s: X-Frame-Options %q, want %q", path, got, tc.xfo)
				}
			}
		})
	}
}
