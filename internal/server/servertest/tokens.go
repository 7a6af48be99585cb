package servertest

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/opaque"
)

// ClientAuth is how a test presents a client at the token, revocation and
// introspection endpoints.
type ClientAuth struct {
	ID     string
	Secret string
	// Method is a token_endpoint_auth_method: "none" (client_id in the form),
	// "client_secret_basic" (RFC 6749 §2.3.1: both parts form-encoded, then
	// Base64), "client_secret_post" or "private_key_jwt" (Assertion makes the
	// client_assertion). Empty sends no client identification.
	Method    string
	Assertion func() string
}

// The test clients WithClients declares, as they authenticate.
var (
	SPAClient = ClientAuth{ID: "spa", Method: oauth.AuthNone}
	WebClient = ClientAuth{ID: "web", Secret: WebSecret, Method: oauth.AuthClientSecretBasic}
	SvcClient = ClientAuth{ID: "svc", Secret: SvcSecret, Method: oauth.AuthClientSecretPost}
	// NoClient sends no client identification at all.
	NoClient = ClientAuth{}
)

// BasicHeader is the Authorization header of client_secret_basic.
func BasicHeader(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// apply adds the credentials to form (which it copies) and returns the
// Authorization header to send ("" for none).
func (c ClientAuth) apply(form url.Values) (url.Values, string) {
	out := url.Values{}
	for k, v := range form {
		out[k] = append([]string(nil), v...)
	}
	switch c.Method {
	case oauth.AuthClientSecretBasic:
		return out, BasicHeader(c.ID, c.Secret)
	case oauth.AuthClientSecretPost:
		out.Set("client_id", c.ID)
		out.Set("client_secret", c.Secret)
	case oauth.AuthNone:
		out.Set("client_id", c.ID)
	case oauth.AuthPrivateKeyJWT:
		out.Set("client_assertion_type", oauth.ClientAssertionJWT)
		out.Set("client_assertion", c.Assertion())
	}
	return out, ""
}

// Reply is a response of a JSON endpoint.
type Reply struct {
	Status int
	Header http.Header
	Body   string
	// JSON is the body decoded as an object (nil if it is not one).
	JSON map[string]any
}

// Str returns a string member of the JSON body ("" if absent).
func (r Reply) Str(key string) string {
	s, _ := r.JSON[key].(string)
	return s
}

// Code is the OAuth "error" member of the body.
func (r Reply) Code() string { return r.Str("error") }

// Tokens are the members of a successful token response.
func (r Reply) Tokens() Tokens {
	n, _ := r.JSON["expires_in"].(float64)
	return Tokens{AccessToken: r.Str("access_token"), RefreshToken: r.Str("refresh_token"), IDToken: r.Str("id_token"),
		TokenType: r.Str("token_type"), Scope: r.Str("scope"), ExpiresIn: int64(n)}
}

// Tokens is a token response (RFC 6749 §5.1).
type Tokens struct {
	AccessToken  string
	RefreshToken string
	IDToken      string
	TokenType    string
	Scope        string
	ExpiresIn    int64
}

// Request sends a request to path with an optional form body and
// Authorization header and reads the answer. It does not fail the test, so it
// may be called from any goroutine.
func (e *Env) Request(method, path, contentType, body, authorization string) (Reply, error) {
	req, err := http.NewRequest(method, e.URL+path, strings.NewReader(body))
	if err != nil {
		return Reply{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := e.HTTP.Client().Do(req)
	if err != nil {
		return Reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Reply{}, err
	}
	r := Reply{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
	json.Unmarshal(b, &r.JSON)
	return r, nil
}

// PostForm posts form to path (e.g. "/token") as client c. It does not fail
// the test, so it may be called from any goroutine.
func (e *Env) PostForm(path string, form url.Values, c ClientAuth) (Reply, error) {
	form, authz := c.apply(form)
	return e.Request(http.MethodPost, path, "application/x-www-form-urlencoded", form.Encode(), authz)
}

// Post is PostForm that fails the test on a transport error.
func (e *Env) Post(t testing.TB, path string, form url.Values, c ClientAuth) Reply {
	t.Helper()
	r, err := e.PostForm(path, form, c)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return r
}

// Authz is an authorization-code request for Env.Code. The zero value is the
// spa client asking for openid profile email offline_access with PKCE.
type Authz struct {
	// Client is the client (default SPAClient).
	Client ClientAuth
	// RedirectURI defaults to the test client's (SPARedirect, WebRedirect).
	RedirectURI string
	// OmitRedirect leaves redirect_uri out of the authorization request.
	OmitRedirect bool
	// Scope defaults to "openid profile email offline_access".
	Scope string
	// Nonce defaults to a random value; NoNonce sends none.
	Nonce   string
	NoNonce bool
	// Verifier is the PKCE code_verifier (default: a fresh one); NoPKCE sends
	// no code_challenge.
	Verifier string
	NoPKCE   bool
	// Extra parameters for the authorization request.
	Extra url.Values
}

func (a Authz) withDefaults() Authz {
	if a.Client.ID == "" {
		a.Client = SPAClient
	}
	if a.RedirectURI == "" {
		switch a.Client.ID {
		case "spa":
			a.RedirectURI = SPARedirect
		case "web":
			a.RedirectURI = WebRedirect
		}
	}
	if a.Scope == "" {
		a.Scope = "openid profile email offline_access"
	}
	if a.Nonce == "" && !a.NoNonce {
		a.Nonce = "n-" + opaque.ID()
	}
	if a.Verifier == "" && !a.NoPKCE {
		a.Verifier = opaque.New()
	}
	if a.NoPKCE {
		a.Verifier = ""
	}
	return a
}

// AuthorizeURL is the authorization request a describes, with state "st".
func (e *Env) AuthorizeURL(a Authz) string {
	a = a.withDefaults()
	q := url.Values{"client_id": {a.Client.ID}, "response_type": {"code"}, "scope": {a.Scope}, "state": {"st"}}
	if !a.OmitRedirect {
		q.Set("redirect_uri", a.RedirectURI)
	}
	if a.Nonce != "" {
		q.Set("nonce", a.Nonce)
	}
	if a.Verifier != "" {
		q.Set("code_challenge", oauth.S256Challenge(a.Verifier))
		q.Set("code_challenge_method", oauth.PKCES256)
	}
	for k, v := range a.Extra {
		q[k] = v
	}
	return e.URL + "/authorize?" + q.Encode()
}

// Code runs the authorization request a in agent's browser (signing in and
// consenting as needed) and returns the authorization code, with a as sent
// (defaults filled in) for Redeem.
func (e *Env) Code(t testing.TB, agent *Agent, a Authz) (string, Authz) {
	t.Helper()
	a = a.withDefaults()
	last, err := agent.Follow(e.AuthorizeURL(a))
	if err != nil {
		t.Fatal(err)
	}
	p := Params(last.Location)
	if last.Location == "" || p.Get("code") == "" || p.Get("state") != "st" {
		t.Fatalf("authorization request ended at %d %q, want a code\n%s", last.Status, last.Location, last.Body)
	}
	return p.Get("code"), a
}

// Redeem exchanges code (grant_type=authorization_code) as a's client, with
// a's redirect_uri and code_verifier.
func (e *Env) Redeem(t testing.TB, code string, a Authz) Reply {
	t.Helper()
	return e.Post(t, "/token", RedeemForm(code, a), a.Client)
}

// RedeemForm is the token request that redeems code for a.
func RedeemForm(code string, a Authz) url.Values {
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}}
	if !a.OmitRedirect && a.RedirectURI != "" {
		form.Set("redirect_uri", a.RedirectURI)
	}
	if a.Verifier != "" {
		form.Set("code_verifier", a.Verifier)
	}
	return form
}

// CodeFlow signs agent in through a, redeems the code and fails the test unless
// tokens come back.
func (e *Env) CodeFlow(t testing.TB, agent *Agent, a Authz) Tokens {
	t.Helper()
	code, a := e.Code(t, agent, a)
	r := e.Redeem(t, code, a)
	if r.Status != http.StatusOK || r.Str("access_token") == "" {
		t.Fatalf("redeem: %d %s", r.Status, r.Body)
	}
	return r.Tokens()
}

// Refresh uses a refresh token as client c; scope narrows when not empty.
func (e *Env) Refresh(t testing.TB, c ClientAuth, refreshToken, scope string) Reply {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return e.Post(t, "/token", form, c)
}

// Introspect asks the introspection endpoint about token as client c and fails
// the test unless it answers 200.
func (e *Env) Introspect(t testing.TB, c ClientAuth, token string) Reply {
	t.Helper()
	r := e.Post(t, "/introspect", url.Values{"token": {token}}, c)
	if r.Status != http.StatusOK {
		t.Fatalf("introspect: %d %s", r.Status, r.Body)
	}
	return r
}

// Active reports whether the svc client (a resource server) sees token active.
func (e *Env) Active(t testing.TB, token string) bool {
	t.Helper()
	return e.Introspect(t, SvcClient, token).JSON["active"] == true
}

// Userinfo calls the userinfo endpoint with an Authorization: Bearer header.
func (e *Env) Userinfo(t testing.TB, method, accessToken string) Reply {
	t.Helper()
	r, err := e.Request(method, "/userinfo", "", "", "Bearer "+accessToken)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Claims decodes the payload of a JWT without verifying it (nil if it is not
// one). Use it only on tokens whose signature another check covers, or where
// the signature does not matter to the test.
func Claims(jwt string) map[string]any {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

// Header decodes the protected header of a JWT (nil if it is not one).
func Header(jwt string) map[string]any {
	h, _, _ := strings.Cut(jwt, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

// SignOut ends agent's SSO session with the sign-out button of Castellan's
// own pages (POST /logout with the page's CSRF token).
func (e *Env) SignOut(t testing.TB, agent *Agent) {
	t.Helper()
	home, err := agent.Get(e.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	s, err := agent.Post(e.URL+"/logout", url.Values{"csrf_token": {CSRF(home.Body)}})
	if err != nil || s.Status != http.StatusOK {
		t.Fatalf("sign-out: %v %d", err, s.Status)
	}
}
