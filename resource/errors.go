package resource

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrInvalidToken matches (with errors.Is) every error that means the token
	// is not acceptable: it does not parse, is not signed by the issuer, is not
	// an access token for this API, has expired, or was revoked. An API answers
	// it with 401 invalid_token (RFC 6750 §3.1).
	ErrInvalidToken = errors.New("resource: invalid access token")

	// ErrUnavailable matches errors that say nothing about the token: the
	// provider's keys (or, with a RevocationCheck, its introspection endpoint)
	// could not be reached or were not usable. An API answers it with 503.
	ErrUnavailable = errors.New("resource: access tokens cannot be checked now")
)

// TokenExpiredError is returned for a token whose "exp" has passed (beyond the
// leeway). It matches ErrInvalidToken.
type TokenExpiredError struct {
	// Expiry is the token's "exp".
	Expiry time.Time
}

func (e *TokenExpiredError) Error() string {
	return fmt.Sprintf("resource: access token expired at %s", e.Expiry.UTC().Format(time.RFC3339))
}

// Is makes a TokenExpiredError match ErrInvalidToken.
func (e *TokenExpiredError) Is(target error) bool { return target == ErrInvalidToken }

// invalidError is a refused token. Its reason is a fixed phrase (never a value
// taken from the token), fit for the error_description of RFC 6750 §3.
type invalidError struct {
	reason string
	err    error
}

func invalid(reason string) error { return &invalidError{reason: reason} }

func (e *invalidError) Error() string {
	if e.err != nil {
		return "resource: invalid access token: " + e.reason + ": " + e.err.Error()
	}
	return "resource: invalid access token: " + e.reason
}

func (e *invalidError) Is(target error) bool { return target == ErrInvalidToken }
func (e *invalidError) Unwrap() error        { return e.err }

// unavailableError wraps why tokens cannot be checked now.
type unavailableError struct{ err error }

func unavailable(err error) error { return &unavailableError{err: err} }

func (e *unavailableError) Error() string {
	if e.err == nil {
		return ErrUnavailable.Error()
	}
	return ErrUnavailable.Error() + ": " + e.err.Error()
}

func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }
func (e *unavailableError) Unwrap() error        { return e.err }

// description is the error_description that Require sends for err.
func description(err error) string {
	var ie *invalidError
	var ee *TokenExpiredError
	switch {
	case errors.As(err, &ee):
		return "the access token expired"
	case errors.As(err, &ie):
		return "the access token " + ie.reason
	}
	return "the access token is not valid"
}
