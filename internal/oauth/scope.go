package oauth

import "strings"

// ParseScope splits a scope parameter (RFC 6749 §3.3: space-delimited,
// case-sensitive, order does not matter) into its distinct tokens. It reports
// false if a token holds a character outside NQCHAR.
func ParseScope(s string) ([]string, bool) {
	var out []string
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			continue
		}
		if !validScopeToken(tok) {
			return nil, false
		}
		if !Contains(out, tok) {
			out = append(out, tok)
		}
	}
	return out, true
}

// scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
func validScopeToken(tok string) bool {
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c < 0x21 || c == 0x22 || c == 0x5C || c > 0x7E {
			return false
		}
	}
	return true
}

// Subset reports whether every scope in a is in b.
func Subset(a, b []string) bool {
	for _, s := range a {
		if !Contains(b, s) {
			return false
		}
	}
	return true
}

// JoinScope writes scopes as a scope parameter.
func JoinScope(scopes []string) string { return strings.Join(scopes, " ") }
