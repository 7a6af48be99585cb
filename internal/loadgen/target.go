package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Target is a running provider, found through discovery.
type Target struct {
	Issuer        string
	Authorization string
	Token         string
	Userinfo      string
	Introspection string

	transport *http.Transport
	timeout   time.Duration
}

// Discover reads the provider's discovery document. conns is the most
// connections the load will hold open at once; each virtual client keeps one
// alive, like wrk's connections.
func Discover(ctx context.Context, issuer string, conns int, timeout time.Duration) (*Target, error) {
	issuer = strings.TrimSuffix(issuer, "/")
	tr := &http.Transport{
		Proxy:               nil, // loopback targets: never through a proxy from the environment
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns + 16,
		MaxIdleConnsPerHost: conns + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	t := &Target{Issuer: issuer, transport: tr, timeout: timeout}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, issuer+"/.well-known/openid-configuration", nil)
	if err != nil {
		return nil, err
	}
	resp, err := t.client(nil).Do(req)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("discovery: %s answered %d", req.URL, resp.StatusCode)
	}
	var md struct {
		Issuer                string `json:"issuer"`
		AuthorizationEndpoint string `json:"authorization_endpoint"`
		TokenEndpoint         string `json:"token_endpoint"`
		UserinfoEndpoint      string `json:"userinfo_endpoint"`
		IntrospectionEndpoint string `json:"introspection_endpoint"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	if md.Issuer != issuer {
		return nil, fmt.Errorf("discovery: issuer is %q, want %q (use the exact issuer as --target)", md.Issuer, issuer)
	}
	t.Authorization, t.Token, t.Userinfo, t.Introspection = md.AuthorizationEndpoint, md.TokenEndpoint, md.UserinfoEndpoint, md.IntrospectionEndpoint
	return t, nil
}

// Close drops the kept-alive connections.
func (t *Target) Close() { t.transport.CloseIdleConnections() }

// client returns an HTTP client on the shared connection pool that does not
// follow redirects, so every hop is seen and timed.
func (t *Target) client(jar http.CookieJar) *http.Client {
	return &http.Client{
		Transport: t.transport, Jar: jar, Timeout: t.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// StatusError is a response the flow did not expect. Its Key groups errors in
// reports: the status code, with the OAuth error code when the body or the
// redirect carried one ("400 invalid_grant", "303 login_required").
type StatusError struct {
	Step   string
	Status int
	Code   string
	Detail string
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("%s: status %d", e.Step, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Key is the error's group in reports.
func (e *StatusError) Key() string {
	if e.Code != "" {
		return strconv.Itoa(e.Status) + " " + e.Code
	}
	return strconv.Itoa(e.Status)
}

// errorKey groups any error of a flow: a StatusError by its key, a failure to
// talk to the server as "net", anything else as "protocol".
func errorKey(err error) string {
	var se *StatusError
	var ne net.Error
	var ue *url.Error
	switch {
	case errors.As(err, &se):
		return se.Key()
	case errors.As(err, &ne), errors.As(err, &ue):
		return "net"
	}
	return "protocol"
}

func unexpected(step string, status int, body []byte) *StatusError {
	e := &StatusError{Step: step, Status: status}
	var oe struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if json.Unmarshal(body, &oe) == nil && oe.Error != "" {
		e.Code, e.Detail = oe.Error, oe.Description
	} else {
		e.Detail = snippet(body)
	}
	return e
}

func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// jsonString returns the string member key of a flat JSON object. The fast path
// reads the compact form encoding/json writes; anything else is decoded.
func jsonString(body []byte, key string) string {
	pat := `"` + key + `":"`
	if i := bytes.Index(body, []byte(pat)); i >= 0 {
		rest := body[i+len(pat):]
		if j := bytes.IndexByte(rest, '"'); j >= 0 && bytes.IndexByte(rest[:j], '\\') < 0 {
			return string(rest[:j])
		}
	}
	if !bytes.Contains(body, []byte(`"`+key+`"`)) {
		return ""
	}
	var m map[string]any
	if json.Unmarshal(body, &m) == nil {
		s, _ := m[key].(string)
		return s
	}
	return ""
}

// pkce returns a fresh code verifier and its S256 challenge (RFC 7636 §4.1–4.2).
func pkce() (verifier, challenge string) {
	b := make([]byte, 32)
	rand.Read(b)
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomString() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// basicAuth is the RFC 6749 §2.3.1 Authorization header: both parts
// form-encoded first.
func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// Tokens are what a token response carried.
type Tokens struct {
	Access  string
	Refresh string
	ID      string
}

// exchange is one HTTP response as the flows need it. Body is valid until the
// round-tripper's next exchange.
type exchange struct {
	status   int
	location string // absolute
	body     []byte
}

// roundTripper sends one request and reads the whole answer. hdr holds header
// names and values in turn. Implementations are used by one goroutine at a time.
type roundTripper interface {
	roundTrip(ctx context.Context, method, u, body string, hdr ...string) (exchange, error)
	close()
}

// browser is a net/http client with a cookie jar: the sign-in flow, which
// follows pages and cookies like a person's browser, and every exchange when
// the lean wire client is off.
type browser struct {
	http *http.Client
	buf  bytes.Buffer
}

func newBrowser(t *Target, withJar bool) *browser {
	var jar http.CookieJar
	if withJar {
		jar, _ = cookiejar.New(nil)
	}
	return &browser{http: t.client(jar)}
}

func (b *browser) roundTrip(ctx context.Context, method, u, body string, hdr ...string) (exchange, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return exchange{}, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := b.http.Do(req)
	if err != nil {
		return exchange{}, err
	}
	b.buf.Reset()
	_, err = b.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return exchange{}, err
	}
	ex := exchange{status: resp.StatusCode, body: b.buf.Bytes()}
	if loc := resp.Header.Get("Location"); loc != "" {
		if l, err := resp.Request.URL.Parse(loc); err == nil {
			ex.location = l.String()
		}
	}
	return ex, nil
}

func (b *browser) close() {}

// cookieHeader is the Cookie header the browser would send to u.
func (b *browser) cookieHeader(u string) string {
	if b.http.Jar == nil {
		return ""
	}
	pu, err := url.Parse(u)
	if err != nil {
		return ""
	}
	var parts []string
	for _, c := range b.http.Jar.Cookies(pu) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, "; ")
}

// client speaks the protocol over a round-tripper, timing every exchange.
type client struct {
	t  *Target
	rt roundTripper
	// cookie is sent with authorization requests when rt keeps no cookies itself.
	cookie string
	// step, if set, is told how long each successful exchange took.
	step func(name string, d time.Duration)
}

func (c *client) call(ctx context.Context, step, method, u, body string, hdr ...string) (exchange, error) {
	t0 := time.Now()
	ex, err := c.rt.roundTrip(ctx, method, u, body, hdr...)
	if err == nil && c.step != nil {
		c.step(step, time.Since(t0))
	}
	return ex, err
}

func (c *client) post(ctx context.Context, u, step, form, authorization string) (exchange, error) {
	if authorization != "" {
		return c.call(ctx, step, http.MethodPost, u, form, "Content-Type", "application/x-www-form-urlencoded", "Authorization", authorization)
	}
	return c.call(ctx, step, http.MethodPost, u, form, "Content-Type", "application/x-www-form-urlencoded")
}

// tokenRequest posts a token request with cl's client authentication and reads
// the tokens of a 200 answer.
func (c *client) tokenRequest(ctx context.Context, cl *Client, step string, form url.Values) (Tokens, error) {
	authz := ""
	switch cl.AuthMethod {
	case "client_secret_basic":
		authz = basicAuth(cl.ID, cl.Secret)
	case "client_secret_post":
		form.Set("client_id", cl.ID)
		form.Set("client_secret", cl.Secret)
	default:
		form.Set("client_id", cl.ID)
	}
	ex, err := c.post(ctx, c.t.Token, step, form.Encode(), authz)
	if err != nil {
		return Tokens{}, err
	}
	if ex.status != http.StatusOK {
		return Tokens{}, unexpected(step, ex.status, ex.body)
	}
	tok := Tokens{Access: jsonString(ex.body, "access_token"), Refresh: jsonString(ex.body, "refresh_token"), ID: jsonString(ex.body, "id_token")}
	if tok.Access == "" {
		return tok, &StatusError{Step: step, Status: ex.status, Code: "no_access_token", Detail: snippet(ex.body)}
	}
	return tok, nil
}

// clientCredentials gets a token for the service client (RFC 6749 §4.4).
func (c *client) clientCredentials(ctx context.Context, cl *Client) (Tokens, error) {
	return c.tokenRequest(ctx, cl, "token:client_credentials", url.Values{"grant_type": {"client_credentials"}, "scope": {cl.Scope}})
}

// refresh redeems a refresh token (RFC 6749 §6). A public client's token
// rotates: the answer carries its successor, which the caller must keep.
func (c *client) refresh(ctx context.Context, cl *Client, token string) (Tokens, error) {
	tok, err := c.tokenRequest(ctx, cl, "token:refresh_token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}})
	if err == nil && tok.Refresh == "" {
		return tok, &StatusError{Step: "token:refresh_token", Status: http.StatusOK, Code: "no_refresh_token"}
	}
	return tok, err
}

// redeem exchanges an authorization code with its PKCE verifier.
func (c *client) redeem(ctx context.Context, cl *Client, code, verifier string) (Tokens, error) {
	return c.tokenRequest(ctx, cl, "token:authorization_code", url.Values{"grant_type": {"authorization_code"},
		"code": {code}, "redirect_uri": {cl.RedirectURI}, "code_verifier": {verifier}})
}

// authorizeURL is the authorization request of a public client with PKCE S256.
func (c *client) authorizeURL(cl *Client, scope, state, challenge string, promptNone bool) string {
	q := url.Values{
		"response_type": {"code"}, "client_id": {cl.ID}, "redirect_uri": {cl.RedirectURI}, "scope": {scope},
		"state": {state}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	if promptNone {
		q.Set("prompt", "none")
	}
	sep := "?"
	if strings.Contains(c.t.Authorization, "?") {
		sep = "&"
	}
	return c.t.Authorization + sep + q.Encode()
}

var (
	csrfField  = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	authzField = regexp.MustCompile(`name="authz" value="([^"]+)"`)
	formAction = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
)

// codeFrom checks a redirect to the client and returns its code (RFC 6749
// §4.1.2), with state and iss (RFC 9207) as sent.
func (c *client) codeFrom(cl *Client, step string, status int, location, state string) (string, error) {
	if !strings.HasPrefix(location, cl.RedirectURI) {
		return "", &StatusError{Step: step, Status: status, Code: "unexpected_location", Detail: location}
	}
	u, err := url.Parse(location)
	if err != nil {
		return "", &StatusError{Step: step, Status: status, Code: "bad_location", Detail: err.Error()}
	}
	q := u.Query()
	if e := q.Get("error"); e != "" {
		return "", &StatusError{Step: step, Status: status, Code: e, Detail: q.Get("error_description")}
	}
	if q.Get("state") != state || q.Get("iss") != c.t.Issuer || q.Get("code") == "" {
		return "", &StatusError{Step: step, Status: status, Code: "bad_response", Detail: "state, iss or code wrong in " + location}
	}
	return q.Get("code"), nil
}

// signIn runs a browser's whole first sign-in: the authorization request, the
// sign-in page, the password post (argon2id on the server), the resumed
// authorization request, and the code exchange. c's round-tripper must keep
// cookies (a browser with a jar), which end holding the SSO session cookie.
func (c *client) signIn(ctx context.Context, cl *Client, user User) (Tokens, error) {
	state := randomString()
	verifier, challenge := pkce()
	next := c.authorizeURL(cl, cl.Scope, state, challenge, false)
	step := "authorize"
	for hop := 0; hop < 8; hop++ {
		ex, err := c.call(ctx, step, http.MethodGet, next, "")
		if err != nil {
			return Tokens{}, err
		}
		switch {
		case ex.status == http.StatusOK && bytes.Contains(ex.body, []byte(`name="password"`)):
			csrf, authz := csrfField.FindSubmatch(ex.body), authzField.FindSubmatch(ex.body)
			if csrf == nil || authz == nil {
				return Tokens{}, &StatusError{Step: step, Status: ex.status, Code: "bad_login_page"}
			}
			action, _ := url.Parse(next)
			if m := formAction.FindSubmatch(ex.body); m != nil {
				if a, err := action.Parse(html.UnescapeString(string(m[1]))); err == nil {
					action = a
				}
			}
			form := url.Values{"csrf_token": {html.UnescapeString(string(csrf[1]))}, "authz": {html.UnescapeString(string(authz[1]))},
				"username": {user.Username}, "password": {user.Password}}
			ex, err = c.post(ctx, action.String(), "login", form.Encode(), "")
			if err != nil {
				return Tokens{}, err
			}
			if ex.status != http.StatusSeeOther {
				return Tokens{}, unexpected("login", ex.status, ex.body)
			}
			step = "authorize:resume"
		case ex.status >= 300 && ex.status < 400:
			if step == "authorize" {
				step = "login_page"
			}
		default:
			return Tokens{}, unexpected(step, ex.status, ex.body)
		}
		if ex.location == "" {
			return Tokens{}, &StatusError{Step: step, Status: ex.status, Code: "no_location"}
		}
		if !strings.HasPrefix(ex.location, c.t.Issuer+"/") {
			code, err := c.codeFrom(cl, step, ex.status, ex.location, state)
			if err != nil {
				return Tokens{}, err
			}
			return c.redeem(ctx, cl, code, verifier)
		}
		next = ex.location
	}
	return Tokens{}, &StatusError{Step: step, Code: "too_many_redirects"}
}

// silent is the SPA renewal path: the authorization request with prompt=none on
// the live SSO session answers at once with a code (OIDC Core §3.1.2.1), which
// is exchanged for tokens. An app that renews this way asks for no refresh
// token: scope is the client's without offline_access unless withRefresh.
func (c *client) silent(ctx context.Context, cl *Client, withRefresh bool) (Tokens, error) {
	state := randomString()
	verifier, challenge := pkce()
	scope := cl.Scope
	if !withRefresh {
		scope = withoutScope(scope, "offline_access")
	}
	const step = "authorize:prompt_none"
	var hdr []string
	if c.cookie != "" {
		hdr = []string{"Cookie", c.cookie}
	}
	ex, err := c.call(ctx, step, http.MethodGet, c.authorizeURL(cl, scope, state, challenge, true), "", hdr...)
	if err != nil {
		return Tokens{}, err
	}
	if ex.status < 300 || ex.status >= 400 {
		return Tokens{}, unexpected(step, ex.status, ex.body)
	}
	code, err := c.codeFrom(cl, step, ex.status, ex.location, state)
	if err != nil {
		return Tokens{}, err
	}
	return c.redeem(ctx, cl, code, verifier)
}

func withoutScope(scope, drop string) string {
	var keep []string
	for _, s := range strings.Fields(scope) {
		if s != drop {
			keep = append(keep, s)
		}
	}
	return strings.Join(keep, " ")
}

// introspect asks whether token is active (RFC 7662), as resource server cl.
func (c *client) introspect(ctx context.Context, cl *Client, token string) error {
	form := "token=" + url.QueryEscape(token)
	authz := ""
	if cl.AuthMethod == "client_secret_post" {
		form += "&client_id=" + url.QueryEscape(cl.ID) + "&client_secret=" + url.QueryEscape(cl.Secret)
	} else {
		authz = basicAuth(cl.ID, cl.Secret)
	}
	ex, err := c.post(ctx, c.t.Introspection, "introspect", form, authz)
	if err != nil {
		return err
	}
	if ex.status != http.StatusOK {
		return unexpected("introspect", ex.status, ex.body)
	}
	if !bytes.Contains(ex.body, []byte(`"active":true`)) {
		return &StatusError{Step: "introspect", Status: ex.status, Code: "inactive", Detail: snippet(ex.body)}
	}
	return nil
}

// userinfo fetches the claims of an access token (OIDC Core §5.3).
func (c *client) userinfo(ctx context.Context, token string) error {
	ex, err := c.call(ctx, "userinfo", http.MethodGet, c.t.Userinfo, "", "Authorization", "Bearer "+token)
	if err != nil {
		return err
	}
	if ex.status != http.StatusOK {
		return unexpected("userinfo", ex.status, ex.body)
	}
	if !bytes.Contains(ex.body, []byte(`"sub":`)) {
		return &StatusError{Step: "userinfo", Status: ex.status, Code: "no_sub", Detail: snippet(ex.body)}
	}
	return nil
}
