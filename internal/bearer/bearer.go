// Package bearer is the one reading of an access token presented to a
// protected resource and the one answer to a refused one: the Authorization
// header with the Bearer scheme (RFC 6750 §2.1) or the DPoP scheme (RFC 9449
// §7.1), the binding of a DPoP-bound token to its proof, and the
// WWW-Authenticate challenges of RFC 6750 §3 and RFC 9449 §7.1 with one
// escaping rule. Castellan's own protected endpoints (userinfo, the session
// endpoints) and the public resource package for APIs use it alike, so they
// cannot disagree on duplicate headers, token68 syntax or quoting.
//
// It imports nothing from the project but the dpop package's syntax checks.
package bearer

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/castellan-auth/castellan/dpop"
)

// Error codes of RFC 6750 §3.1, RFC 9449 §7.1 and RFC 9470 §3.
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"
	CodeInvalidDPoPProof  = "invalid_dpop_proof"
	CodeUseDPoPNonce      = "use_dpop_nonce"
	// CodeInsufficientUserAuthentication asks for a stronger or more recent
	// authentication of the person (RFC 9470 §3).
	CodeInsufficientUserAuthentication = "insufficient_user_authentication"
)

// Credentials are the access token of a request and the scheme it came with.
type Credentials struct {
	Token string
	// DPoP says the token came with the DPoP scheme: it must be DPoP-bound
	// and the request must carry a proof of its key.
	DPoP bool
}

// Rules say what a resource reads.
type Rules struct {
	// DPoP takes the DPoP scheme besides Bearer.
	DPoP bool
	// Form looks into a form-encoded POST body for an access_token, to
	// refuse it (RFC 6750 §2.2, which Castellan does not accept). The body
	// is then read (and kept in r.PostForm): for endpoints of Castellan's
	// own only; an API's body is its own.
	Form bool
}

// Read returns the access token of r, from its one Authorization header with
// the Bearer scheme, or the DPoP scheme under rules.DPoP (schemes compare
// case-insensitively, RFC 9110 §11.1). A request with no Authorization
// header, or one of another scheme, has no token: the answer is NoToken()
// (RFC 6750 §3.1: "the client was unaware that authentication is necessary
// or attempted using an unsupported authentication method"). A token in the
// query string (RFC 6750 §5.3 and OAuth 2.1 §5.2: URLs end up in logs) or,
// under rules.Form, the form body, two Authorization headers, or credentials
// that are not one token68 are malformed: invalid_request.
func Read(r *http.Request, rules Rules) (Credentials, *Refusal) {
	if r.URL.Query().Has("access_token") || rules.Form && formHasToken(r) {
		return Credentials{}, InvalidRequest("send the access token in the Authorization header")
	}
	auth := r.Header.Values("Authorization")
	switch {
	case len(auth) == 0:
		return Credentials{}, NoToken()
	case len(auth) > 1:
		return Credentials{}, InvalidRequest("more than one Authorization header")
	}
	scheme, token, ok := dpop.Authorization(auth[0])
	isDPoP := rules.DPoP && strings.EqualFold(scheme, "DPoP")
	switch {
	case !strings.EqualFold(scheme, "Bearer") && !isDPoP:
		return Credentials{}, NoToken()
	case !ok:
		return Credentials{}, InvalidRequest("malformed Authorization header").InScheme(isDPoP)
	}
	return Credentials{Token: token, DPoP: isDPoP}, nil
}

// formHasToken reports whether r is a form post carrying access_token.
func formHasToken(r *http.Request) bool {
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return false
	}
	return r.ParseForm() == nil && r.PostForm.Has("access_token")
}

// Bound checks that a token is presented as it is bound (RFC 9449 §7.1):
// one bound to the key with thumbprint jkt needs the DPoP scheme and a proof
// by that key (proof checks the request's proof and returns its key's
// thumbprint); an unbound one needs the Bearer scheme. proof is called only
// for a bound token sent with the DPoP scheme; an error it returns that is
// not a *Refusal (a storage failure) is returned as it is.
func Bound(c Credentials, jkt string, proof func() (string, error)) error {
	switch {
	case jkt != "" && !c.DPoP:
		// A DPoP-bound token sent as a Bearer token.
		return InvalidToken("the access token is bound to a DPoP key")
	case !c.DPoP:
		return nil
	case jkt == "":
		return InvalidToken("the access token is not DPoP-bound").InScheme(true)
	}
	got, err := proof()
	var ref *Refusal
	switch {
	case errors.As(err, &ref):
		return ref.InScheme(true)
	case err != nil:
		return err
	case got != jkt:
		return InvalidProof(CodeInvalidDPoPProof, "the DPoP proof's key is not the access token's")
	}
	return nil
}

// Refusal is why a protected resource refuses a request, and how to say so.
type Refusal struct {
	Status int
	// Code is the error code; "" for a request without a token, which gets a
	// bare challenge (RFC 6750 §3.1) and no body.
	Code        string
	Description string
	// Scopes are the scopes a request lacking them needs (insufficient_scope).
	Scopes []string
	// ACRValues and MaxAge say what authentication the person needs
	// (RFC 9470 §3); MaxAge < 0 is none.
	ACRValues []string
	MaxAge    int
	// DPoP answers in the DPoP scheme: the token came with it, or the
	// resource takes DPoP-bound tokens only.
	DPoP bool
}

func (r *Refusal) Error() string {
	if r.Code == "" {
		return "bearer: no access token"
	}
	return "bearer: " + r.Code + ": " + r.Description
}

// InScheme returns r answered in the DPoP scheme when dpop is true.
func (r *Refusal) InScheme(dpop bool) *Refusal {
	r.DPoP = r.DPoP || dpop
	return r
}

// NoToken is the refusal of a request without an access token.
func NoToken() *Refusal { return &Refusal{Status: http.StatusUnauthorized, MaxAge: -1} }

// InvalidRequest is a malformed request (400).
func InvalidRequest(desc string) *Refusal {
	return &Refusal{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: desc, MaxAge: -1}
}

// InvalidToken is a token that is malformed, expired, revoked or not for
// this resource (401).
func InvalidToken(desc string) *Refusal {
	return &Refusal{Status: http.StatusUnauthorized, Code: CodeInvalidToken, Description: desc, MaxAge: -1}
}

// InsufficientScope is a token lacking scopes (403).
func InsufficientScope(desc string, scopes ...string) *Refusal {
	return &Refusal{Status: http.StatusForbidden, Code: CodeInsufficientScope, Description: desc, Scopes: scopes, MaxAge: -1}
}

// Forbidden is a token that is valid but may not be used here, for a reason
// that is not a scope (the browser's origin): 403 invalid_request.
func Forbidden(desc string) *Refusal {
	return &Refusal{Status: http.StatusForbidden, Code: CodeInvalidRequest, Description: desc, MaxAge: -1}
}

// InvalidProof is a refused DPoP proof (401 in the DPoP scheme): code is
// invalid_dpop_proof or use_dpop_nonce.
func InvalidProof(code, desc string) *Refusal {
	return &Refusal{Status: http.StatusUnauthorized, Code: code, Description: desc, MaxAge: -1, DPoP: true}
}

// InsufficientUserAuthentication asks for an authentication of the person
// with one of acrValues and/or at most maxAge seconds old (RFC 9470 §3; -1:
// no age).
func InsufficientUserAuthentication(desc string, acrValues []string, maxAge int) *Refusal {
	return &Refusal{Status: http.StatusUnauthorized, Code: CodeInsufficientUserAuthentication, Description: desc,
		ACRValues: acrValues, MaxAge: maxAge}
}

// Challenger writes refusals for one resource.
type Challenger struct {
	// Realm names the protected resource in every challenge.
	Realm string
	// DPoPAlgs are the proof algorithms of a resource that takes DPoP-bound
	// tokens (RFC 9449 §7.1 algs); with none, only Bearer is offered.
	DPoPAlgs []string
	// Nonce, if set, gives the DPoP-Nonce header to send with use_dpop_nonce
	// (RFC 9449 §9).
	Nonce func() string
}

// Write answers with ref: its status, the challenge, Cache-Control: no-store
// and, when it has a code, the JSON error body. A request without a token is
// offered every scheme the resource takes, the Bearer one first and bare.
func (c Challenger) Write(w http.ResponseWriter, ref *Refusal) {
	h := w.Header()
	switch {
	case ref.Code == "" && len(c.DPoPAlgs) > 0:
		h.Add("WWW-Authenticate", c.challenge("Bearer", ref, false))
		h.Add("WWW-Authenticate", c.challenge("DPoP", ref, true))
	case ref.DPoP && len(c.DPoPAlgs) > 0:
		h.Set("WWW-Authenticate", c.challenge("DPoP", ref, true))
	default:
		h.Set("WWW-Authenticate", c.challenge("Bearer", ref, false))
	}
	if ref.Code == CodeUseDPoPNonce && c.Nonce != nil {
		h.Set("DPoP-Nonce", c.Nonce())
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if ref.Code == "" {
		w.WriteHeader(ref.Status)
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(ref.Status)
	json.NewEncoder(w).Encode(struct {
		Code        string `json:"error"`
		Description string `json:"error_description,omitempty"`
	}{ref.Code, ref.Description})
}

// challenge is one WWW-Authenticate value: scheme, realm, then the error and
// what would satisfy the resource (RFC 6750 §3, RFC 9449 §7.1, RFC 9470 §3).
func (c Challenger) challenge(scheme string, ref *Refusal, dpop bool) string {
	params := []string{"realm=" + Quote(c.Realm)}
	if ref.Code != "" {
		params = append(params, "error="+Quote(ref.Code))
		if ref.Description != "" {
			params = append(params, "error_description="+Quote(ref.Description))
		}
	}
	if len(ref.Scopes) > 0 {
		params = append(params, "scope="+Quote(strings.Join(ref.Scopes, " ")))
	}
	if len(ref.ACRValues) > 0 {
		params = append(params, "acr_values="+Quote(strings.Join(ref.ACRValues, " ")))
	}
	if ref.MaxAge >= 0 && ref.Code == CodeInsufficientUserAuthentication {
		params = append(params, "max_age="+strconv.Itoa(ref.MaxAge))
	}
	if dpop {
		params = append(params, "algs="+Quote(strings.Join(c.DPoPAlgs, " ")))
	}
	return scheme + " " + strings.Join(params, ", ")
}

// Quote writes s as an HTTP quoted-string (RFC 9110 §5.6.4): backslash and
// double quote escaped, control characters (which no quoted-string may hold,
// and which would let a description split the header) dropped. It is the one
// escaping rule of every WWW-Authenticate value Castellan writes.
func Quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r < 0x20 && r != '\t', r == 0x7f:
			continue
		case r == '"', r == '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}
