package web

import (
	"net/http"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted := NewClientIP([]string{"10.0.0.0/8", "192.168.1.1"})
	cases := []struct {
		name   string
		ip     ClientIP
		remote string
		header map[string]string
		want   string
	}{
		{"ok/no-proxies", NewClientIP(nil), "203.0.113.9:5555", map[string]string{"X-Forwarded-For": "1.2.3.4"}, "203.0.113.9"},
		{"ok/untrusted-peer-ignores-header", trusted, "203.0.113.9:5555", map[string]string{"X-Forwarded-For": "1.2.3.4"}, "203.0.113.9"},
		{"ok/trusted-peer", trusted, "10.1.2.3:5555", map[string]string{"X-Forwarded-For": "198.51.100.7"}, "198.51.100.7"},
		{"ok/spoofed-left-entry-ignored", trusted, "10.1.2.3:5555", map[string]string{"X-Forwarded-For": "6.6.6.6, 198.51.100.7, 10.9.9.9"}, "198.51.100.7"},
		{"ok/single-ip-proxy", trusted, "192.168.1.1:80", map[string]string{"X-Forwarded-For": "198.51.100.8"}, "198.51.100.8"},
		{"ok/forwarded-header", trusted, "10.1.2.3:5555", map[string]string{"Forwarded": `for="[2001:db8::1]:4711";proto=https, for=10.2.2.2`}, "2001:db8::1"},
		{"ok/all-trusted", trusted, "10.1.2.3:5555", map[string]string{"X-Forwarded-For": "10.4.4.4"}, "10.4.4.4"},
		{"ok/garbage-header", trusted, "10.1.2.3:5555", map[string]string{"X-Forwarded-For": "not-an-ip"}, "10.1.2.3"},
		{"ok/ipv4-mapped-peer", NewClientIP(nil), "[::ffff:203.0.113.9]:1", nil, "203.0.113.9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			if got := tc.ip.Of(r); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}
