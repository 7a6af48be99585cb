package dpop

import "strings"

// Authorization splits an Authorization header value into its scheme and
// credentials (RFC 9110 §11.4); the scheme is compared case-insensitively by
// the caller ("DPoP" or "Bearer"). ok is false when the credentials are not a
// single token68.
func Authorization(value string) (scheme, token string, ok bool) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(value), " ")
	token = strings.TrimLeft(rest, " ")
	return scheme, token, Token68(token)
}

// Token68 reports whether s is a token68 (RFC 9110 §11.2; RFC 6750 §2.1's
// b64token): 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func Token68(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

// Challenge is a WWW-Authenticate value for the DPoP scheme (RFC 9449 §7.1):
// the realm, the accepted algorithms, and the error when there is one.
func Challenge(realm string, algs []string, code, desc string) string {
	var b strings.Builder
	b.WriteString("DPoP")
	sep := " "
	if realm != "" {
		b.WriteString(sep + "realm=" + quote(realm))
		sep = ", "
	}
	if code != "" {
		b.WriteString(sep + "error=" + quote(code))
		sep = ", "
		if desc != "" {
			b.WriteString(sep + "error_description=" + quote(desc))
		}
	}
	if len(algs) > 0 {
		b.WriteString(sep + "algs=" + quote(strings.Join(algs, " ")))
	}
	return b.String()
}

func quote(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
