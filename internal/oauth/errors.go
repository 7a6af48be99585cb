package oauth

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error codes of RFC 6749 §4.1.2.1, §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1,
// OIDC Core §3.1.2.6 and RFC 9449 §7.1.
const (
	ErrInvalidRequest          = "invalid_request"
	ErrUnauthorizedClient      = "unauthorized_client"
	ErrAccessDenied            = "access_denied"
	ErrUnsupportedResponseType = "unsupported_response_type"
	ErrInvalidScope            = "invalid_scope"
	ErrServerError             = "server_error"
	ErrTemporarilyUnavailable  = "temporarily_unavailable"
	ErrInvalidClient           = "invalid_client"
	ErrInvalidGrant            = "invalid_grant"
	ErrUnsupportedGrantType    = "unsupported_grant_type"
	ErrUnsupportedTokenType    = "unsupported_token_type"
	ErrInvalidToken            = "invalid_token"
	ErrInsufficientScope       = "insufficient_scope"
	ErrLoginRequired           = "login_required"
	ErrConsentRequired         = "consent_required"
	ErrInteractionRequired     = "interaction_required"
	ErrAccountSelectionReq     = "account_selection_required"
	ErrRequestNotSupported     = "request_not_supported"
	ErrRequestURINotSupported  = "request_uri_not_supported"
	ErrInvalidRequestURI       = "invalid_request_uri" // RFC 9101 §7, used by RFC 9126 §4
	ErrInvalidDPoPProof        = "invalid_dpop_proof"
	ErrUseDPoPNonce            = "use_dpop_nonce"
)

// Error is an OAuth protocol error. It is a value: endpoints return it and one
// writer renders it as JSON, a redirect to the client, or a page.
type Error struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	// Status is the HTTP status for JSON endpoints (default 400; 401 for invalid_client).
	Status int `json:"-"`
	// Redirectable is true only once the client and its redirect URI are known to
	// be valid; the zero value keeps the error on Castellan's own origin
	// (RFC 6749 §4.1.2.1, RFC 9700 §4.11).
	Redirectable bool `json:"-"`
}

func (e *Error) Error() string {
	if e.Description == "" {
		return e.Code
	}
	return e.Code + ": " + e.Description
}

// Errorf returns a JSON-endpoint error with a formatted description.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...)}
}

// HTTPStatus is the status a JSON endpoint answers with.
func (e *Error) HTTPStatus() int {
	switch {
	case e.Status != 0:
		return e.Status
	case e.Code == ErrInvalidClient:
		return http.StatusUnauthorized
	case e.Code == ErrServerError:
		return http.StatusInternalServerError
	case e.Code == ErrTemporarilyUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// WriteJSON renders e as RFC 6749 §5.2 JSON. An invalid_client answer carries a
// WWW-Authenticate challenge (§5.2: required when the client tried Basic).
func (e *Error) WriteJSON(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	status := e.HTTPStatus()
	if status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
		h.Set("WWW-Authenticate", `Basic realm="castellan"`)
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(e)
}
