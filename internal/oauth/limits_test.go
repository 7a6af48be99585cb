package oauth_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/oauth"
)

// TestParameterLimits: every limit admits a value of exactly its length and
// refuses one byte more, whichever value of a repeated parameter it is, and
// names the parameter.
func TestParameterLimits(t *testing.T) {
	all := append(append([]oauth.Limit(nil), oauth.IdentityLimits...), oauth.RequestLimits...)
	seen := map[string]bool{}
	for _, l := range all {
		if seen[l.Name] || l.Max <= 0 {
			t.Fatalf("limit %s listed twice or without a maximum", l.Name)
		}
		seen[l.Name] = true
		t.Run(l.Name, func(t *testing.T) {
			for _, tc := range []struct {
				name   string
				values []string
				over   bool
			}{
				{"ok/absent", nil, false},
				{"ok/at-limit", []string{strings.Repeat("a", l.Max)}, false},
				{"fail/one-byte-over", []string{strings.Repeat("a", l.Max+1)}, true},
				{"fail/multibyte-counts-bytes", []string{strings.Repeat("é", l.Max/2+1)}, true},
				{"fail/second-value-over", []string{"a", strings.Repeat("a", l.Max+1)}, true},
			} {
				t.Run(tc.name, func(t *testing.T) {
					params := url.Values{"other": {strings.Repeat("x", 100_000)}}
					if tc.values != nil {
						params[l.Name] = tc.values
					}
					got, over := oauth.FirstExceeded(params, all)
					if over != tc.over || (over && got != l) {
						t.Fatalf("FirstExceeded: got %v %v, want %v for %s", got, over, tc.over, l.Name)
					}
					if over && !strings.HasPrefix(got.Description(), l.Name+" is longer than "+strconv.Itoa(l.Max)) {
						t.Errorf("description %q does not name %s and its limit", got.Description(), l.Name)
					}
				})
			}
		})
	}
	for _, name := range []string{"client_id", "redirect_uri", "response_type", "response_mode", "scope", "state", "nonce",
		"login_hint", "code_challenge", "code_challenge_method", "prompt", "max_age", "id_token_hint", "dpop_jkt",
		"request_uri", "claims", "ui_locales", "claims_locales", "acr_values", "display"} {
		if !seen[name] {
			t.Errorf("no limit for %s", name)
		}
	}
	// What the FAPI 2.0 conformance tests and RFC 7636 pin.
	for name, atLeast := range map[string]int{"state": 4096, "nonce": 384, "code_challenge": 128, "request_uri": 512} {
		for _, l := range all {
			if l.Name == name && l.Max < atLeast {
				t.Errorf("%s limit %d, want at least %d", name, l.Max, atLeast)
			}
		}
	}
}

// TestRequestSizeLimits: a query is parsed only when it is short and has few
// pairs; the count of a parsed request includes repeated values.
func TestRequestSizeLimits(t *testing.T) {
	pairs := func(n int) string { return strings.TrimSuffix(strings.Repeat("a=1&", n), "&") }
	for _, tc := range []struct {
		name string
		raw  string
		ok   bool
	}{
		{"ok/empty", "", true},
		{"ok/max-pairs", pairs(oauth.MaxRequestParameters), true},
		{"ok/max-bytes", "a=" + strings.Repeat("b", oauth.MaxRequestBytes-2), true},
		{"fail/one-pair-too-many", pairs(oauth.MaxRequestParameters + 1), false},
		{"fail/one-byte-too-many", "a=" + strings.Repeat("b", oauth.MaxRequestBytes-1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := oauth.ParseRequestQuery(tc.raw)
			if ok != tc.ok || (ok && oauth.TooManyParameters(v)) {
				t.Fatalf("ParseRequestQuery: got %v (%d values), want %v", ok, len(v["a"]), tc.ok)
			}
		})
	}
	many := url.Values{"a": make([]string, oauth.MaxRequestParameters), "b": {"1"}}
	if !oauth.TooManyParameters(many) {
		t.Error("TooManyParameters counts names, not values")
	}
}

// TestMaxAgeClamped: max_age is a non-negative integer of seconds; beyond
// the longest time.Duration (9,223,372,036 s) it is read as that, so that
// multiplying by time.Second cannot overflow into a negative age.
func TestMaxAgeClamped(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"3600", 3600, true},
		{"9223372036", 9223372036, true},
		{"9223372037", oauth.MaxAgeCeiling, true},
		{"9223372036854775807", oauth.MaxAgeCeiling, true},
		{"99999999999999999999", oauth.MaxAgeCeiling, true},
		{"", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{"1.5", 0, false},
		{" 1", 0, false},
		{"0x10", 0, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := oauth.ParseMaxAge(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("ParseMaxAge(%q): got %d %v, want %d %v", tc.in, got, ok, tc.want, tc.ok)
			}
		})
	}
	if oauth.MaxAgeCeiling != 9223372036 {
		t.Errorf("MaxAgeCeiling %d, want 9223372036", oauth.MaxAgeCeiling)
	}
}
