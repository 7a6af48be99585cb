package oauth

import (
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Limits of an authorization request, at the authorization endpoint and at
// the pushed authorization request endpoint alike. A stranger can send any
// request, and what it holds may be stored until the person signs in, so
// every parameter Castellan reads has a maximum (in bytes, after URL
// decoding), and so has the request as a whole. The specifications set none
// except where noted; the values are far above what clients send.
const (
	// MaxRequestBytes bounds the raw query string or form body of one
	// request, before it is parsed.
	MaxRequestBytes = 32 << 10
	// MaxRequestParameters bounds how many name=value pairs a request may
	// hold, repeated and unknown ones included.
	MaxRequestParameters = 64

	MaxClientIDLength     = 256
	MaxRedirectURILength  = 2048
	MaxResponseTypeLength = 64
	MaxResponseModeLength = 32
	MaxScopeLength        = 2048
	// MaxScopeValues bounds the distinct values of scope.
	MaxScopeValues = 64
	// MaxStateLength keeps what clients put in state (a 2 KB state is
	// echoed exactly).
	MaxStateLength = 4096
	MaxNonceLength = 512
	// MaxLoginHintLength is the longest login_hint: an e-mail address has at
	// most 254 characters (RFC 5321 §4.5.3.1.3).
	MaxLoginHintLength = 256
	// MaxCodeChallengeLength is RFC 7636 §4.2's longest code_challenge; an
	// S256 challenge has exactly 43 characters.
	MaxCodeChallengeLength       = 128
	MaxCodeChallengeMethodLength = 16
	MaxPromptLength              = 64
	MaxMaxAgeLength              = 20
	MaxIDTokenHintLength         = 8192
	MaxDPoPJKTLength             = 128
	// MaxRequestURILength is OIDC Core §6.2's: "The entire Request URI MUST
	// NOT exceed 512 ASCII characters."
	MaxRequestURILength = 512
	// The parameters below are read but ignored (claims_parameter_supported
	// is false); they are bounded all the same.
	MaxClaimsLength        = 4096
	MaxUILocalesLength     = 256
	MaxClaimsLocalesLength = 256
	MaxACRValuesLength     = 512
	MaxDisplayLength       = 32
)

// MaxAgeCeiling is the largest max_age that means something: the longest
// time.Duration in seconds (about 292 years). A larger max_age is read as
// this one; multiplying it by time.Second would overflow.
const MaxAgeCeiling = math.MaxInt64 / int64(time.Second)

// Limit is the longest value one request parameter may have.
type Limit struct {
	Name string
	Max  int
}

// IdentityLimits bound the parameters that identify the client and its
// redirect URI. They are checked first: until both are known to be valid an
// error is shown on Castellan's page, never redirected.
var IdentityLimits = []Limit{
	{"client_id", MaxClientIDLength},
	{"redirect_uri", MaxRedirectURILength},
}

// RequestLimits bound every other parameter of an authorization request
// Castellan reads, in the order they are checked.
var RequestLimits = []Limit{
	{"response_type", MaxResponseTypeLength},
	{"response_mode", MaxResponseModeLength},
	{"scope", MaxScopeLength},
	{"state", MaxStateLength},
	{"nonce", MaxNonceLength},
	{"login_hint", MaxLoginHintLength},
	{"code_challenge", MaxCodeChallengeLength},
	{"code_challenge_method", MaxCodeChallengeMethodLength},
	{"prompt", MaxPromptLength},
	{"max_age", MaxMaxAgeLength},
	{"id_token_hint", MaxIDTokenHintLength},
	{"dpop_jkt", MaxDPoPJKTLength},
	{"request_uri", MaxRequestURILength},
	{"claims", MaxClaimsLength},
	{"ui_locales", MaxUILocalesLength},
	{"claims_locales", MaxClaimsLocalesLength},
	{"acr_values", MaxACRValuesLength},
	{"display", MaxDisplayLength},
}

// Exceeded reports whether any value of the parameter in params is longer
// than l allows (every value: a repeated parameter is refused later, but it
// is not read at any length first).
func (l Limit) Exceeded(params url.Values) bool {
	for _, v := range params[l.Name] {
		if len(v) > l.Max {
			return true
		}
	}
	return false
}

// Description is the error_description of a request beyond l.
func (l Limit) Description() string {
	return l.Name + " is longer than " + strconv.Itoa(l.Max) + " bytes"
}

// FirstExceeded returns the first of limits that params exceeds.
func FirstExceeded(params url.Values, limits []Limit) (Limit, bool) {
	for _, l := range limits {
		if l.Exceeded(params) {
			return l, true
		}
	}
	return Limit{}, false
}

// TooManyParameters reports whether params holds more than
// MaxRequestParameters name=value pairs.
func TooManyParameters(params url.Values) bool {
	n := 0
	for _, vs := range params {
		n += len(vs)
	}
	return n > MaxRequestParameters
}

// ParseRequestQuery parses the raw query of an authorization request, or
// reports false if it is longer than MaxRequestBytes or holds more than
// MaxRequestParameters pairs; both are checked before any value is decoded.
func ParseRequestQuery(raw string) (url.Values, bool) {
	if len(raw) > MaxRequestBytes || strings.Count(raw, "&") >= MaxRequestParameters {
		return nil, false
	}
	v, _ := url.ParseQuery(raw) // as (*url.URL).Query: a malformed pair is dropped
	return v, true
}

// ParseMaxAge reads a max_age value (OIDC Core §3.1.2.1: a non-negative
// number of seconds), clamped to MaxAgeCeiling.
func ParseMaxAge(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > MaxAgeCeiling {
		// Only digits: the error is a value out of range, i.e. too large.
		return MaxAgeCeiling, true
	}
	return n, true
}
