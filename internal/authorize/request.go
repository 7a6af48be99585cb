package authorize

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/castellan-auth/castellan/dpop"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/storage"
)

// Response modes (OAuth 2.0 Multiple Response Type Encoding Practices §2,
// Form Post Response Mode, and web_message for silent renewal in an iframe).
const (
	ModeQuery      = "query"
	ModeFragment   = "fragment"
	ModeFormPost   = "form_post"
	ModeWebMessage = "web_message"
)

// Prompt values (OIDC Core §3.1.2.1).
const (
	PromptNone          = "none"
	PromptLogin         = "login"
	PromptConsent       = "consent"
	PromptSelectAccount = "select_account"
)

// Request is a validated authorization request. It is what a pending request
// stores across the sign-in and consent pages, so it holds only what was
// checked.
type Request struct {
	ClientID string `json:"client_id"`
	// RedirectURI is where the response goes; RedirectGiven says whether the
	// request named it (RFC 6749 §4.1.3 then requires it at the token endpoint).
	RedirectURI         string    `json:"redirect_uri"`
	RedirectGiven       bool      `json:"redirect_given,omitempty"`
	ResponseType        string    `json:"response_type"`
	ResponseMode        string    `json:"response_mode"`
	Scopes              []string  `json:"scopes"`
	State               string    `json:"state,omitempty"`
	Nonce               string    `json:"nonce,omitempty"`
	CodeChallenge       string    `json:"code_challenge,omitempty"`
	CodeChallengeMethod string    `json:"code_challenge_method,omitempty"`
	Prompt              []string  `json:"prompt,omitempty"`
	MaxAge              int64     `json:"max_age"` // -1: absent
	LoginHint           string    `json:"login_hint,omitempty"`
	IDTokenHintSubject  string    `json:"id_token_hint_sub,omitempty"`
	StartedAt           time.Time `json:"started_at"`
	// SessionAtStart is the sid of the live session the request found when it
	// arrived ("" for none). Every sign-in starts a new session, so a different
	// sid later means the person signed in after the request was made; clocks
	// cannot tell that reliably (nodes' clocks differ, tests freeze time).
	SessionAtStart string `json:"session_at_start,omitempty"`
	// DPoPJKT is the dpop_jkt parameter (RFC 9449 §10): the code is bound to
	// that DPoP key.
	DPoPJKT string `json:"dpop_jkt,omitempty"`
	// PushedHash is the SHA-256 of the request_uri this request was pushed
	// under (RFC 9126), consumed when the authorization completes.
	PushedHash []byte `json:"pushed_hash,omitempty"`
}

// OpenID reports whether this is an OpenID Connect request.
func (r *Request) OpenID() bool { return oauth.Contains(r.Scopes, oauth.ScopeOpenID) }

// HasPrompt reports whether prompt includes v.
func (r *Request) HasPrompt(v string) bool { return oauth.Contains(r.Prompt, v) }

// Implicit reports whether tokens are returned from the authorization endpoint.
func (r *Request) Implicit() bool { return r.ResponseType != oauth.ResponseCode }

// Returns reports whether the response type includes v ("token", "id_token"),
// comparing whole values: "id_token" does not include "token".
func (r *Request) Returns(v string) bool { return oauth.Contains(strings.Fields(r.ResponseType), v) }

// pageError is an error shown on Castellan's own page, never redirected.
func pageError(desc string) *oauth.Error {
	return &oauth.Error{Code: oauth.ErrInvalidRequest, Description: desc}
}

// redirectError is an error sent back to the (validated) redirect URI.
func redirectError(code, desc string) *oauth.Error {
	return &oauth.Error{Code: code, Description: desc, Redirectable: true}
}

// parameters are the request parameters Castellan acts on; RFC 6749 §3.1
// forbids repeating them. (client_id and redirect_uri are checked first, by
// identify, because their repetition is shown on a page.)
var parameters = []string{
	"response_type", "scope", "state", "response_mode", "nonce", "prompt", "max_age",
	"login_hint", "id_token_hint", "code_challenge", "code_challenge_method", "request", "request_uri",
	"dpop_jkt",
}

// identify is the first step: the client and the redirect URI. Until both are
// known to be valid nothing is redirected (RFC 6749 §4.1.2.1, RFC 9700 §4.1).
// What it refuses because of a registration (an unknown client, a redirect
// URI not registered for it, …) is a *clientError: every such refusal looks
// the same, so the page does not tell which client ids exist.
func identify(params url.Values, lookup func(id string) (storage.Client, error)) (storage.Client, string, bool, error) {
	if l, over := oauth.FirstExceeded(params, oauth.IdentityLimits); over {
		return storage.Client{}, "", false, pageError(l.Description())
	}
	for _, k := range []string{"client_id", "redirect_uri"} {
		if len(params[k]) > 1 {
			return storage.Client{}, "", false, pageError(k + " is repeated")
		}
	}
	id := params.Get("client_id")
	if id == "" {
		return storage.Client{}, "", false, pageError("client_id is missing")
	}
	c, err := lookup(id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Client{}, "", false, refusedClient(params, "unknown client_id")
	}
	if err != nil {
		return storage.Client{}, "", false, err
	}
	uri, given, e := redirectFor(params, c)
	if e != nil {
		return storage.Client{}, "", false, refusedClient(params, e.Description)
	}
	return c, uri, given, nil
}

// clientError refuses an authorization request because of what is (or is
// not) registered for its client_id. The page says the same for every one;
// reason is for the log, and hint depends on the request alone.
type clientError struct {
	clientID, redirectURI string
	reason                string
	hint                  string
}

func (e *clientError) Error() string { return e.reason }

// errClientOrRedirect is what a person (and anyone probing for client ids)
// sees for every clientError.
var errClientOrRedirect = pageError("the client_id or the redirect_uri is not valid")

func refusedClient(params url.Values, reason string) *clientError {
	return &clientError{clientID: params.Get("client_id"), redirectURI: params.Get("redirect_uri"), reason: reason,
		hint: loopbackHint(params.Get("redirect_uri"))}
}

// loopbackHint explains the one refusal people trip over: RFC 8252 §7.3's
// any-port exception is for loopback IP literals only, so a
// http://localhost:PORT redirect URI must be registered with that port
// (§8.3: localhost may not resolve to the loopback interface). It reads only
// the request, so it tells nothing about any registration.
func loopbackHint(redirectURI string) string {
	u, err := url.Parse(redirectURI)
	if err != nil || u.Scheme != "http" || !strings.EqualFold(u.Hostname(), "localhost") {
		return ""
	}
	// The host is not named: the page never repeats the refused URI.
	return "Only http://127.0.0.1 and http://[::1] redirect URIs may use any port (RFC 8252 §7.3); one with a host name must match a registered redirect URI exactly, port included."
}

// LocalhostPortRedirects are c's redirect URIs of the form
// http://localhost:PORT/…: they are matched exactly, port included, which
// surprises whoever expected the loopback any-port exception (RFC 8252
// §7.3, for IP literals only), so the server warns about them at start.
func LocalhostPortRedirects(c storage.Client) []string {
	var out []string
	for _, r := range c.RedirectURIs {
		if u, err := url.Parse(r); err == nil && u.Scheme == "http" && strings.EqualFold(u.Hostname(), "localhost") && u.Port() != "" {
			out = append(out, r)
		}
	}
	return out
}

// redirectFor checks that client c uses the authorization endpoint and finds
// the redirect URI its request names (given), or its only registered one.
func redirectFor(params url.Values, c storage.Client) (uri string, given bool, err *oauth.Error) {
	if !oauth.Contains(c.GrantTypes, oauth.GrantAuthorizationCode) && !oauth.Contains(c.GrantTypes, oauth.GrantImplicit) {
		return "", false, pageError("this client does not use the authorization endpoint")
	}
	if len(params["redirect_uri"]) > 1 {
		return "", false, pageError("redirect_uri is repeated")
	}
	uri = params.Get("redirect_uri")
	switch {
	case uri == "" && len(c.RedirectURIs) == 1:
		return c.RedirectURIs[0], false, nil
	case uri == "":
		return "", false, pageError("redirect_uri is missing and the client registered several")
	case !oauth.MatchRedirectURI(uri, c.RedirectURIs):
		return "", false, pageError("redirect_uri is not registered for this client")
	}
	return uri, true, nil
}

// validate checks everything after the client and redirect URI. Its errors are
// redirectable; Request.ResponseMode is set first, so that even an error is
// delivered the way the client can read it.
func validate(params url.Values, c storage.Client, req *Request, now time.Time) *oauth.Error {
	p := func(k string) string { return params.Get(k) }
	req.StartedAt = now
	req.ResponseType = normalizeResponseType(p("response_type"))
	req.ResponseMode = defaultMode(req.ResponseType)
	if s := params["state"]; len(s) == 1 && len(s[0]) <= oauth.MaxStateLength {
		req.State = s[0]
	}
	// RFC 6749 §3.1: parameters MUST NOT be repeated, and unrecognized ones
	// MUST be ignored (repeated or not: RFC 8707 resource may well be).
	for _, k := range parameters {
		if len(params[k]) > 1 {
			return redirectError(oauth.ErrInvalidRequest, k+" is repeated")
		}
	}
	switch mode := p("response_mode"); mode {
	case "":
	case ModeQuery, ModeFragment, ModeFormPost:
		if mode == ModeQuery && req.ResponseType != oauth.ResponseCode && req.ResponseType != "" {
			// Multiple Response Type Encoding §5: tokens are never put in a query.
			return redirectError(oauth.ErrInvalidRequest, "response_mode query cannot carry tokens")
		}
		if u, err := url.Parse(req.RedirectURI); mode == ModeFormPost && (err != nil || !webScheme(u.Scheme)) {
			// A browser can only post a form to an http(s) URI, not to a native
			// app's private-use scheme.
			return redirectError(oauth.ErrInvalidRequest, "response_mode form_post needs an http or https redirect_uri")
		}
		req.ResponseMode = mode
	case ModeWebMessage:
		// The answer is posted to the redirect URI's origin by a page that
		// origin frames or opened: only an origin the client registered for
		// browser use may receive it.
		if o := origin(req.RedirectURI); !strings.HasPrefix(o, "http") || !oauth.Contains(c.AllowedOrigins, o) {
			return redirectError(oauth.ErrInvalidRequest, "response_mode web_message needs the redirect_uri's origin among the client's allowed_origins")
		}
		req.ResponseMode = mode
	default:
		if l := (oauth.Limit{Name: "response_mode", Max: oauth.MaxResponseModeLength}); l.Exceeded(params) {
			return redirectError(oauth.ErrInvalidRequest, l.Description())
		}
		return redirectError(oauth.ErrInvalidRequest, "unsupported response_mode")
	}
	if l, over := oauth.FirstExceeded(params, oauth.RequestLimits); over {
		return redirectError(oauth.ErrInvalidRequest, l.Description())
	}
	switch {
	case p("response_type") == "":
		return redirectError(oauth.ErrInvalidRequest, "response_type is missing")
	case !oauth.Contains(oauth.ResponseTypes, req.ResponseType):
		return redirectError(oauth.ErrUnsupportedResponseType, "unsupported response_type")
	case !oauth.Contains(c.ResponseTypes, req.ResponseType):
		// The implicit grant is opt-in per client.
		return redirectError(oauth.ErrUnauthorizedClient, "this client may not use response_type "+req.ResponseType)
	}
	if p("request") != "" {
		return redirectError(oauth.ErrRequestNotSupported, "request objects are not supported")
	}
	if p("request_uri") != "" {
		return redirectError(oauth.ErrRequestURINotSupported, "request_uri is not supported")
	}

	if len(strings.Fields(p("scope"))) > oauth.MaxScopeValues {
		return redirectError(oauth.ErrInvalidRequest, "scope has more than "+strconv.Itoa(oauth.MaxScopeValues)+" values")
	}
	scopes, ok := oauth.ParseScope(p("scope"))
	switch {
	case !ok:
		return redirectError(oauth.ErrInvalidScope, "malformed scope")
	case len(scopes) == 0:
		return redirectError(oauth.ErrInvalidScope, "scope is missing")
	case !oauth.Subset(scopes, c.Scopes):
		return redirectError(oauth.ErrInvalidScope, "scope includes a value this client may not request")
	}
	req.Scopes = scopes
	if req.Implicit() {
		// OIDC Core §11: offline_access is ignored outside the code flow; the
		// implicit grant never yields refresh tokens.
		req.Scopes = without(req.Scopes, oauth.ScopeOfflineAccess)
		if req.Returns(oauth.ResponseIDToken) && !req.OpenID() {
			return redirectError(oauth.ErrInvalidScope, "an id_token needs the openid scope")
		}
	}
	if req.OpenID() && !req.RedirectGiven {
		// OIDC Core §3.1.2.1: redirect_uri is REQUIRED in OpenID requests.
		return redirectError(oauth.ErrInvalidRequest, "redirect_uri is required in OpenID Connect requests")
	}

	req.Nonce = p("nonce")
	if req.Returns(oauth.ResponseIDToken) && req.Nonce == "" {
		// OIDC Core §3.2.2.1, §3.3.2.11: nonce is required when an ID token
		// comes from this endpoint; it ties the ID token in the fragment to
		// the request that asked for it. RFC 6749 §4.2 has no nonce: an
		// access token alone (response_type=token) needs none.
		return redirectError(oauth.ErrInvalidRequest, "nonce is required when an ID token is returned from the authorization endpoint")
	}

	if err := validatePKCE(p, c, req); err != nil {
		return err
	}
	if req.Returns(oauth.ResponseToken) && c.DPoPBoundAccessTokens {
		// An access token from this endpoint cannot be bound to a key.
		return redirectError(oauth.ErrUnauthorizedClient, "this client's access tokens must be DPoP-bound: use response_type code")
	}
	if jkt := p("dpop_jkt"); jkt != "" {
		// RFC 9449 §10: binds the code to a DPoP key; only the code flow has
		// a token request to hold the proof.
		if req.Implicit() || !dpop.ValidThumbprint(jkt) {
			return redirectError(oauth.ErrInvalidRequest, "dpop_jkt must be a SHA-256 JWK thumbprint, with response_type code")
		}
		req.DPoPJKT = jkt
	}

	for _, v := range strings.Fields(p("prompt")) {
		if !oauth.Contains(req.Prompt, v) {
			req.Prompt = append(req.Prompt, v)
		}
	}
	if req.HasPrompt(PromptNone) && len(req.Prompt) > 1 {
		return redirectError(oauth.ErrInvalidRequest, "prompt=none cannot be combined with other values")
	}
	req.MaxAge = -1
	if v := p("max_age"); v != "" {
		n, ok := oauth.ParseMaxAge(v)
		if !ok {
			return redirectError(oauth.ErrInvalidRequest, "max_age must be a non-negative integer")
		}
		req.MaxAge = n
	}
	req.LoginHint = p("login_hint") // bounded by oauth.MaxLoginHintLength above
	// display, ui_locales, claims_locales, acr_values, claims and unknown
	// parameters are ignored (OIDC Core §3.1.2.1 permits it; discovery says
	// claims_parameter_supported is false), within their limits.
	return nil
}

func validatePKCE(p func(string) string, c storage.Client, req *Request) *oauth.Error {
	challenge, method := p("code_challenge"), p("code_challenge_method")
	if req.Implicit() {
		return nil
	}
	switch {
	case challenge == "" && method != "":
		return redirectError(oauth.ErrInvalidRequest, "code_challenge_method without code_challenge")
	case challenge == "" && (c.Public() || c.RequirePKCE):
		// OAuth 2.1 §4.1.1: PKCE is required for public clients.
		return redirectError(oauth.ErrInvalidRequest, "code_challenge is required (PKCE with S256)")
	case challenge == "":
		return nil
	case method != oauth.PKCES256:
		// A missing method means "plain" (RFC 7636 §4.3), which Castellan refuses.
		return redirectError(oauth.ErrInvalidRequest, "code_challenge_method must be S256")
	case !oauth.ValidChallenge(challenge):
		return redirectError(oauth.ErrInvalidRequest, "malformed code_challenge")
	}
	req.CodeChallenge, req.CodeChallengeMethod = challenge, method
	return nil
}

// normalizeResponseType orders a multi-valued response type ("token id_token"
// is "id_token token": the order of values does not matter).
func normalizeResponseType(rt string) string {
	f := strings.Fields(rt)
	if len(f) == 2 && f[0] == "token" && f[1] == "id_token" {
		return "id_token token"
	}
	return strings.Join(f, " ")
}

// defaultMode is the response mode when none is asked for: fragment when the
// response type returns a token or ID token, else query (Multiple Response
// Type Encoding Practices §2.1, §4: also for "none" and for types Castellan
// does not know, which carry no token either).
func defaultMode(responseType string) string {
	for _, v := range strings.Fields(responseType) {
		if v == oauth.ResponseToken || v == oauth.ResponseIDToken {
			return ModeFragment
		}
	}
	return ModeQuery
}

func without(list []string, drop string) []string {
	out := list[:0:0]
	for _, s := range list {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}
