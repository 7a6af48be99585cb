package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/castellan-auth/castellan/dpop"
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
// 6750 §2.1), or, with Config.DPoP, the DPoP scheme and a DPoP proof (RFC
// 9449 §7; see VerifyDPoP). A token in the query string ("access_token", which OAuth
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
// With Config.DPoP, a request without a token is offered both schemes (a
// second WWW-Authenticate: DPoP challenge with the accepted algs), and a request with the DPoP scheme is
// answered in it: 401 error="invalid_token" for the token,
// error="invalid_dpop_proof" for a missing or refused proof, and
// error="use_dpop_nonce" with a DPoP-Nonce header when a nonce is needed.
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
			token, isDPoP, err := v.credentials(r)
			if err != nil {
				v.fail(w, err, nil, false)
				return
			}
			var c *Claims
			switch {
			case isDPoP:
				c, err = v.VerifyDPoP(r.Context(), token, r.Header.Values("DPoP"), r.Method, v.dpop.requestURL(r))
			case v.dpop != nil && v.dpop.required:
				err = invalid("is a bearer token; this API accepts DPoP-bound tokens only")
			default:
				c, err = v.Verify(r.Context(), token)
			}
			if err != nil {
				v.fail(w, err, nil, isDPoP || v.dpop != nil && v.dpop.required)
				return
			}
			for _, s := range scopes {
				if !c.HasScope(s) {
					v.fail(w, errInsufficientScope, scopes, isDPoP)
					return
				}
			}
			if isDPoP && v.dpop.proofs.NoncesEnabled() {
				// RFC 9449 §9: a fresh nonce with each answer keeps the client's current.
				w.Header().Set("DPoP-Nonce", v.dpop.proofs.Nonce())
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

// credentials reads the token of r (RFC 6750 §2.1, RFC 9449 §7.1) and
// whether it came with the DPoP scheme.
func (v *Verifier) credentials(r *http.Request) (string, bool, error) {
	if _, ok := r.URL.Query()["access_token"]; ok {
		return "", false, &requestError{"access tokens are accepted in the Authorization header only"}
	}
	auth := r.Header.Values("Authorization")
	switch {
	case len(auth) == 0:
		return "", false, errNoToken
	case len(auth) > 1:
		return "", false, &requestError{"more than one Authorization header"}
	}
	scheme, rest, _ := strings.Cut(auth[0], " ")
	// The scheme is case-insensitive (RFC 9110 §11.1). DPoP is read only with
	// Config.DPoP; another scheme is treated as no token.
	isDPoP := v.dpop != nil && strings.EqualFold(scheme, "DPoP")
	if !strings.EqualFold(scheme, "Bearer") && !isDPoP {
		return "", false, errNoToken
	}
	token := strings.TrimLeft(rest, " ")
	if !dpop.Token68(token) {
		return "", false, &requestError{"malformed " + scheme + " credentials"}
	}
	return token, isDPoP, nil
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

// fail writes the RFC 6750 §3 answer to err, challenging in the DPoP scheme
// (RFC 9449 §7.1) when inDPoP.
func (v *Verifier) fail(w http.ResponseWriter, err error, scopes []string, inDPoP bool) {
	var status int
	var code, desc string
	var re *requestError
	var pe *ProofError
	switch {
	case errors.Is(err, errNoToken):
		status, desc = http.StatusUnauthorized, "an access token is required"
		if v.dpop != nil && !inDPoP {
			// Both schemes are offered; the Bearer one stays first.
			w.Header().Add("WWW-Authenticate", challenge(v.realm, code, desc, scopes))
			inDPoP = true
		}
	case errors.As(err, &pe):
		status, code, desc = http.StatusUnauthorized, pe.Code, "the DPoP proof was refused: "+pe.Reason
		if pe.Code == dpop.CodeUseNonce && v.dpop.proofs.NoncesEnabled() {
			w.Header().Set("DPoP-Nonce", v.dpop.proofs.Nonce())
		}
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
	if inDPoP {
		w.Header().Add("WWW-Authenticate", dpopChallenge(v.realm, v.dpop.proofs.Algorithms(), code, desc, scopes))
	} else {
		w.Header().Set("WWW-Authenticate", challenge(v.realm, code, desc, scopes))
	}
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

// dpopChallenge is a DPoP WWW-Authenticate value (RFC 9449 §7.1).
func dpopChallenge(realm string, algs []string, code, desc string, scopes []string) string {
	ch := dpop.Challenge(realm, algs, code, desc)
	if len(scopes) > 0 {
		ch += ", scope=" + quote(strings.Join(scopes, " "))
	}
	return ch
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
