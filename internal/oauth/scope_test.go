package oauth_test

import (
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/oauth"
)

func TestParseScope(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want string // scopes joined by "|"; "!" for malformed
	}{
		{"empty", "", ""},
		{"spaces", "   ", ""},
		{"one", "openid", "openid"},
		{"order-kept", "email openid", "email|openid"},
		{"duplicates-dropped", "openid openid profile", "openid|profile"},
		{"extra-spaces", " openid  profile ", "openid|profile"},
		{"nqchar-punctuation", "api:read https://x.example/a <b>", "api:read|https://x.example/a|<b>"},
		{"case-sensitive", "OpenID openid", "OpenID|openid"},
		{"bad/quote", `a"b`, "!"},
		{"bad/backslash", `a\b`, "!"},
		{"bad/tab", "a\tb", "!"},
		{"bad/newline", "a\nb", "!"},
		{"bad/non-ascii", "é", "!"},
		{"bad/del", "a\x7fb", "!"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := oauth.ParseScope(tc.in)
			s := strings.Join(got, "|")
			if !ok {
				s = "!"
			}
			if s != tc.want {
				t.Errorf("ParseScope(%q): got %q, want %q", tc.in, s, tc.want)
			}
		})
	}
}
