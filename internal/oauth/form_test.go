package oauth_test

import (
	"net/url"
	"testing"

	"github.com/castellan-auth/castellan/internal/oauth"
)

// TestSingle: RFC 6749 §3.1, §3.2 — request parameters must not repeat.
func TestSingle(t *testing.T) {
	for _, tc := range []struct {
		name, raw, dup string
		want           map[string]string
	}{
		{"ok/distinct", "a=1&b=", "", map[string]string{"a": "1", "b": ""}},
		{"fail/repeated", "grant_type=x&grant_type=x", "grant_type", nil},
		{"fail/repeated-empty-values", "code=&code=", "code", nil},
		{"ok/empty-name-ignored", "=x&a=1", "", map[string]string{"a": "1"}},
		// Found by FuzzSingle: a repeated empty name read as "no repetition"
		// and the answer was a nil map.
		{"ok/repeated-empty-name-ignored", "=&=&a=1", "", map[string]string{"a": "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, _ := url.ParseQuery(tc.raw)
			got, dup := oauth.Single(v)
			if dup != tc.dup || (tc.want == nil) != (got == nil) || len(got) != len(tc.want) {
				t.Fatalf("Single(%q) = %v, %q; want %v, %q", tc.raw, got, dup, tc.want, tc.dup)
			}
			for k, w := range tc.want {
				if g, ok := got[k]; !ok || g != w {
					t.Fatalf("Single(%q)[%q] = %q, want %q", tc.raw, k, g, w)
				}
			}
		})
	}
}
