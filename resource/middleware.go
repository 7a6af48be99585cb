package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

type claimsKey struct{}

// ClaimsFrom returns the claims that Require put in a request's context.
func ClaimsFrom(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}

// Require returns middleware that lets a request through only with a valid
// access token granted every one of scopes, and puts the token's claims in the
// request context (see ClaimsFrom). With no scopes, any valid token will do.
//
// The token is read from the Authorization header with the Bearer scheme (RFC
// 6750 §2.1) only. A token in the query string ("access_token", which OAuth
// 2.1 forbids, RFC 6750 §5.3) makes the request fail with invalid_request; the
// request body is never read, so a token there is not seen. Other answers
// follow RFC 6750 §3:
//
//   - no token (or another scheme): 401, WWW-Authenticate: Bearer realm="…"
//   - malformed Authorization header: 400, error="invalid_request"
//   - token refused by Verify: 401, error="invalid_token"
//   - token lacking a scope: 403, error="insufficient_scope", scope="…"
//   - keys or revocation check unavailable: 503
//
// A CORS preflight carries no token: answer it before this middleware.
// Require panics if a scope is not a valid scope-token (RFC 6749 §3.3).
func (v *Verifier) Require(scopes ...string) func(http.Handler) http.Handler {
	for _, s := range scopes {
		if !scopeToken(s) {
			panic(fmt.Sprintf("resource: Require: %q is not a valid scope", s))
		}
	}
	scopes = append([]string(nil), scopes...)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, err := bearerToken(r)
			if err != nil {
				v.fail(w, err, nil)
				return
			}
			c, err := v.Verify(r.Context(), token)
			if err != nil {
				v.fail(w, err, nil)
				return
			}
			for _, s := range scopes {
				if !c.HasScope(s) {
					v.fail(w, errInsufficientScope, scopes)
					return
				}
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
		})
	}
}

var (
	// errNoToken: the request has no token, or uses a scheme we do not
	// support (RFC 6750 §3.1: no error code then).
	errNoToken           = errors.New("resource: no access token")
	errInsufficientScope = errors.New("resource: insufficient scope")
)

// requestError is a malformed request (invalid_request).
type requestError struct{ desc string }

func (e *requestError) Error() string { return "resource: " + e.desc }

// bearerToken reads the token of r (RFC 6750 §2.1).
func bearerToken(r *http.Request) (string, error) {
	if _, ok := r.URL.Query()["access_token"]; ok {
		return "", &requestError{"access tokens are accepted in the Authorization header only"}
	}
	auth := r.Header.Values("Authorization")
	switch {
	case len(auth) == 0:
		return "", errNoToken
	case len(auth) > 1:
		return "", &requestError{"more than one Authorization header"}
	}
	scheme, rest, _ := strings.Cut(auth[0], " ")
	// The scheme is case-insensitive (RFC 9110 §11.1). Until DPoP support
	// (issue 8) reads "DPoP" here, another scheme is treated as no token.
	if !strings.EqualFold(scheme, "Bearer") {
		return "", errNoToken
	}
	token := strings.TrimLeft(rest, " ")
	if !b64token(token) {
		return "", &requestError{"malformed Bearer credentials"}
	}
	return token, nil
}

// b64token reports whether s matches RFC 6750 §2.1's
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func b64token(s string) bool {
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

// scopeToken reports whether s is a scope-token: 1*( %x21 / %x23-5B / %x5D-7E ),
// which also makes it safe inside a quoted-string.
func scopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
			return false
		}
	}
	return true
}

// fail writes the RFC 6750 §3 answer to err.
func (v *Verifier) fail(w http.ResponseWriter, err error, scopes []string) {
	var status int
	var code, desc string
	var re *requestError
	switch {
	case errors.Is(err, errNoToken):
		status, desc = http.StatusUnauthorized, "an access token is required"
	case errors.As(err, &re):
		status, code, desc = http.StatusBadRequest, "invalid_request", re.desc
	case errors.Is(err, errInsufficientScope):
		status, code, desc = http.StatusForbidden, "insufficient_scope", "the access token lacks a required scope"
	case errors.Is(err, ErrInvalidToken):
		status, code, desc = http.StatusUnauthorized, "invalid_token", description(err)
	default:
		// ErrUnavailable, or a cancelled request: nothing is wrong with the
		// token, so no challenge that would make the client drop it.
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Retry-After", "10")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error_description": "access tokens cannot be checked now"})
		return
	}
	w.Header().Set("WWW-Authenticate", challenge(v.realm, code, desc, scopes))
	w.Header().Set("Cache-Control", "no-store")
	body := map[string]string{"error_description": desc}
	if code != "" {
		body["error"] = code
	}
	writeJSON(w, status, body)
}

// challenge is a Bearer WWW-Authenticate value (RFC 6750 §3).
func challenge(realm, code, desc string, scopes []string) string {
	var b strings.Builder
	b.WriteString("Bearer realm=")
	b.WriteString(quote(realm))
	if code != "" {
		b.WriteString(", error=" + quote(code))
		if desc != "" {
			b.WriteString(", error_description=" + quote(desc))
		}
	}
	if len(scopes) > 0 {
		b.WriteString(", scope=" + quote(strings.Join(scopes, " ")))
	}
	return b.String()
}

// quote writes s as a quoted-string (RFC 9110 §5.6.4).
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
