package authorize_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// PKCE pair of RFC 7636 Appendix B. Every code request of these tests uses it.
const (
	verifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

// Clients these tests add to servertest's spa, web and svc.
const (
	impRedirect     = "https://imp.example/cb"
	oneRedirect     = "https://one.example/cb"
	oneSecret       = "one-secret-0123456789abcdef0123456789"
	pkceRedirect    = "https://pkce.example/cb"
	pkceSecret      = "pkce-secret-0123456789abcdef012345678"
	queryRedirect   = "https://q.example/cb?tenant=a"
	querySecret     = "query-secret-0123456789abcdef01234567"
	nativeRedirect  = "http://127.0.0.1/callback"
	nativeLocalhost = "http://localhost/callback"
	nativeScheme    = "com.example.app:/oauth2redirect" // RFC 8252 §7.1
	htmlRedirect    = "https://html.example/cb"
	// htmlName and htmlScope are reflected into pages and must come out escaped.
	htmlName  = `<script>alert("name")</script> & 'Co'`
	htmlScope = `<b>x</b>`
)

// clientInfo is what a test needs to know about a client.
type clientInfo struct {
	redirect string // the redirect URI requests use
	secret   string // "" for public clients
}

var clients = map[string]clientInfo{
	"spa":    {servertest.SPARedirect, ""},
	"web":    {servertest.WebRedirect, servertest.WebSecret},
	"imp":    {impRedirect, ""},
	"one":    {oneRedirect, oneSecret},
	"pkce":   {pkceRedirect, pkceSecret},
	"query":  {queryRedirect, querySecret},
	"native": {nativeRedirect, ""},
	"html":   {htmlRedirect, ""},
}

// testConfig is servertest's configuration plus clients for the cases the
// standard three do not cover:
//   - imp: the legacy implicit grant only (token, "id_token token", id_token), RS256 ID tokens;
//   - one: confidential, exactly one redirect URI, needs consent;
//   - pkce: confidential with require_pkce;
//   - query: a registered redirect URI with a query component;
//   - native: public client with loopback (RFC 8252 §7.3) and private-use
//     scheme (§7.1) redirect URIs;
//   - html: a name and a scope full of markup, needs consent.
func testConfig() *config.Config {
	cfg := servertest.WithClients(servertest.Config())
	cfg.Clients = append(cfg.Clients,
		config.Client{
			ClientID: "imp", ClientName: "Legacy Implicit App", TokenEndpointAuthMethod: "none",
			RedirectURIs: []string{impRedirect}, GrantTypes: []string{"implicit"},
			ResponseTypes: []string{"token", "id_token token", "id_token"},
			Scope:         "openid profile email offline_access", SkipConsent: true, IDTokenSignedResponseAlg: "RS256",
		},
		config.Client{
			ClientID: "one", ClientName: "One", ClientSecret: oneSecret, TokenEndpointAuthMethod: "client_secret_basic",
			RedirectURIs: []string{oneRedirect}, GrantTypes: []string{"authorization_code"},
			Scope: "openid profile email api:read",
		},
		config.Client{
			ClientID: "pkce", ClientName: "Strict", ClientSecret: pkceSecret, TokenEndpointAuthMethod: "client_secret_basic",
			RedirectURIs: []string{pkceRedirect}, GrantTypes: []string{"authorization_code"},
			Scope: "openid profile", RequirePKCE: true, SkipConsent: true,
		},
		config.Client{
			ClientID: "query", ClientName: "Query", ClientSecret: querySecret, TokenEndpointAuthMethod: "client_secret_basic",
			RedirectURIs: []string{queryRedirect}, GrantTypes: []string{"authorization_code"},
			Scope: "openid profile", SkipConsent: true,
		},
		config.Client{
			ClientID: "native", ClientName: "Native", TokenEndpointAuthMethod: "none",
			RedirectURIs: []string{nativeRedirect, nativeLocalhost, nativeScheme}, GrantTypes: []string{"authorization_code"},
			Scope: "openid profile", SkipConsent: true,
		},
		config.Client{
			ClientID: "html", ClientName: htmlName, TokenEndpointAuthMethod: "none",
			RedirectURIs: []string{htmlRedirect}, GrantTypes: []string{"authorization_code"},
			Scope: "openid profile " + htmlScope,
		},
	)
	return cfg
}

// fixture is a running provider and what the tests need to talk to it.
type fixture struct {
	env      *servertest.Env
	ctx      context.Context
	provider *oidc.Provider
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := servertest.New(t, servertest.Options{Config: testConfig()})
	ctx := oidc.ClientContext(context.Background(), env.HTTP.Client())
	p, err := oidc.NewProvider(ctx, env.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &fixture{env: env, ctx: ctx, provider: p}
}

// request is a valid authorization request of client: the code flow with PKCE
// (the implicit client: "id_token token"), scope openid profile, a state and a
// nonce.
func request(client string) url.Values {
	v := url.Values{
		"client_id":    {client},
		"redirect_uri": {clients[client].redirect},
		"scope":        {"openid profile"},
		"state":        {"st-" + client},
		"nonce":        {"n-" + client},
	}
	if client == "imp" {
		v.Set("response_type", "id_token token")
	} else {
		v.Set("response_type", "code")
		v.Set("code_challenge", challenge)
		v.Set("code_challenge_method", "S256")
	}
	return v
}

// with returns a copy of v with the pairs set (k, v, k, v…).
func with(v url.Values, kv ...string) url.Values {
	out := url.Values{}
	for k, vals := range v {
		out[k] = append([]string(nil), vals...)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

// minus returns a copy of v without the keys.
func minus(v url.Values, keys ...string) url.Values {
	out := with(v)
	for _, k := range keys {
		out.Del(k)
	}
	return out
}

func (f *fixture) authorize(v url.Values) string { return f.env.URL + "/authorize?" + v.Encode() }

// agent is a fresh browser nobody signed in to.
func (f *fixture) agent(user string) *servertest.Agent { return f.env.Agent(user) }

// signedIn is a fresh browser in which user signed in at the clock's now.
func (f *fixture) signedIn(t *testing.T, user string) *servertest.Agent {
	t.Helper()
	a := f.agent(user)
	page := get(t, a, f.env.URL+"/login")
	s := post(t, a, f.env.URL+"/login", url.Values{
		"csrf_token": {servertest.CSRF(page.Body)}, "username": {user}, "password": {servertest.Password},
	})
	if s.Status != http.StatusSeeOther || !hasSession(f, a) {
		t.Fatalf("sign-in as %s: status %d, location %q", user, s.Status, s.Location)
	}
	return a
}

// consent has user consent to client for scope, through the consent page.
func (f *fixture) consent(t *testing.T, user, client, scope string) {
	t.Helper()
	a := f.agent(user)
	last := follow(t, a, f.authorize(with(request(client), "scope", scope)))
	if p := servertest.Params(last.Location); last.Status != http.StatusSeeOther || (p.Get("code") == "" && p.Get("id_token") == "") {
		t.Fatalf("consent flow for %s/%s ended at %d %q", user, client, last.Status, last.Location)
	}
}

func get(t *testing.T, a *servertest.Agent, u string) servertest.Step {
	t.Helper()
	s, err := a.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func post(t *testing.T, a *servertest.Agent, u string, form url.Values) servertest.Step {
	t.Helper()
	s, err := a.Post(u, form)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func follow(t *testing.T, a *servertest.Agent, u string) servertest.Step {
	t.Helper()
	s, err := a.Follow(u)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hasSession reports whether the browser holds an SSO session cookie.
func hasSession(f *fixture, a *servertest.Agent) bool {
	u, _ := url.Parse(f.env.URL + "/")
	for _, c := range a.Client.Jar.Cookies(u) {
		if strings.HasSuffix(c.Name, "castellan_session") && c.Value != "" {
			return true
		}
	}
	return false
}

// dropSession removes the SSO session cookie from the browser.
func dropSession(f *fixture, a *servertest.Agent) {
	u, _ := url.Parse(f.env.URL + "/")
	a.Client.Jar.SetCookies(u, []*http.Cookie{{Name: "castellan_session", Value: "", Path: "/", MaxAge: -1}})
}

var (
	authzField  = regexp.MustCompile(`name="authz" value="([^"]+)"`)
	formAction  = regexp.MustCompile(`<form method="post" action="([^"]*)" id="response">`)
	hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
)

// authzOf returns the pending request id of a sign-in redirect or of a page.
func authzOf(t *testing.T, s servertest.Step) string {
	t.Helper()
	if s.Location != "" {
		u, err := url.Parse(s.Location)
		if err == nil && u.Query().Get("authz") != "" {
			return u.Query().Get("authz")
		}
	}
	if m := authzField.FindStringSubmatch(s.Body); m != nil {
		return html.UnescapeString(m[1])
	}
	t.Fatalf("no pending request id in %d %q", s.Status, s.Location)
	return ""
}

// submitLogin posts the sign-in form of page as user and returns the answer.
func submitLogin(t *testing.T, a *servertest.Agent, env *servertest.Env, page servertest.Step, user string) servertest.Step {
	t.Helper()
	form := url.Values{"csrf_token": {servertest.CSRF(page.Body)}, "username": {user}, "password": {servertest.Password}}
	if m := authzField.FindStringSubmatch(page.Body); m != nil {
		form.Set("authz", html.UnescapeString(m[1]))
	}
	return post(t, a, env.URL+"/login", form)
}

// signInAt goes from a redirect to the sign-in page through the sign-in as
// user and back to the authorization endpoint, and returns its answer.
func (f *fixture) signInAt(t *testing.T, a *servertest.Agent, toLogin servertest.Step, user string) servertest.Step {
	t.Helper()
	page := get(t, a, toLogin.Location)
	if !isLoginPage(page) {
		t.Fatalf("want the sign-in page, got %d\n%s", page.Status, page.Body)
	}
	s := submitLogin(t, a, f.env, page, user)
	if s.Status != http.StatusSeeOther || !strings.HasPrefix(s.Location, f.env.URL+"/authorize/resume?authz=") {
		t.Fatalf("sign-in: got %d %q, want 303 to /authorize/resume", s.Status, s.Location)
	}
	return get(t, a, s.Location)
}

func isLoginPage(s servertest.Step) bool {
	return s.Status == http.StatusOK && strings.Contains(s.Body, `name="password"`) && strings.Contains(s.Body, `name="username"`)
}

func isConsentPage(s servertest.Step) bool {
	return s.Status == http.StatusOK && strings.Contains(s.Body, `name="decision" value="allow"`) &&
		strings.Contains(s.Body, `name="decision" value="deny"`) && strings.Contains(s.Body, "/authorize/consent")
}

// decide answers a consent page.
func decide(t *testing.T, a *servertest.Agent, env *servertest.Env, page servertest.Step, decision string) servertest.Step {
	t.Helper()
	return post(t, a, env.URL+"/authorize/consent", url.Values{
		"csrf_token": {servertest.CSRF(page.Body)}, "authz": {authzOf(t, page)}, "decision": {decision},
	})
}

// kind is where an answer of the authorization endpoint is.
type kind string

const (
	page     kind = "page"      // Castellan's own error page: 400, no Location
	query    kind = "query"     // 303 to the redirect URI, parameters in the query
	fragment kind = "fragment"  // 303 to the redirect URI, parameters in the fragment
	formPost kind = "form_post" // 200 page that posts the parameters to the redirect URI
	login    kind = "login"     // 303 to the sign-in page
	consent  kind = "consent"   // 200 consent page
)

// want is the exact expected answer.
type want struct {
	kind kind
	// err is the OAuth error code; "" means success.
	err string
	// to is the redirect URI the answer must go to (default: the request's
	// redirect_uri, else the client's).
	to string
	// noState says the answer carries no state (default: the request's state).
	noState bool
}

// outcome checks s against w and returns the response parameters (nil for
// pages). req is the request that was sent.
func (f *fixture) outcome(t *testing.T, s servertest.Step, req url.Values, w want) url.Values {
	t.Helper()
	to := w.to
	if to == "" {
		to = req.Get("redirect_uri")
	}
	if to == "" {
		to = clients[req.Get("client_id")].redirect
	}
	state := req.Get("state")
	if w.noState {
		state = ""
	}
	switch w.kind {
	case page:
		expectPage(t, s, req["redirect_uri"]...)
		return nil
	case login:
		if s.Status != http.StatusSeeOther || !strings.HasPrefix(s.Location, f.env.URL+"/login?authz=") {
			t.Fatalf("got %d %q, want 303 to the sign-in page\n%s", s.Status, s.Location, s.Body)
		}
		return nil
	case consent:
		if !isConsentPage(s) || s.Location != "" {
			t.Fatalf("got %d %q, want the consent page\n%s", s.Status, s.Location, s.Body)
		}
		expectNotFramable(t, s)
		return nil
	}
	p := f.response(t, s, w.kind, to)
	expectParams(t, f.env, p, w.err, state)
	return p
}

// response reads the parameters of an answer delivered to redirect URI to in
// mode k, checking the answer goes exactly there.
func (f *fixture) response(t *testing.T, s servertest.Step, k kind, to string) url.Values {
	t.Helper()
	if got := s.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control: got %q, want no-store", got)
	}
	var rest string
	switch k {
	case query, fragment:
		sep := "?"
		if k == fragment {
			sep = "#"
		} else if strings.Contains(to, "?") {
			sep = "&" // RFC 6749 §3.1.2: the registered query is kept
		}
		if s.Status != http.StatusSeeOther || !strings.HasPrefix(s.Location, to+sep) {
			t.Fatalf("got %d %q, want 303 to %s%s…\n%s", s.Status, s.Location, to, sep, s.Body)
		}
		rest = s.Location[len(to)+1:]
		if k == query && strings.Contains(rest, "#") {
			t.Fatalf("query response %q has a fragment", s.Location)
		}
		p, err := url.ParseQuery(rest)
		if err != nil {
			t.Fatalf("response parameters %q: %v", rest, err)
		}
		return p
	case formPost:
		if s.Status != http.StatusOK || s.Location != "" {
			t.Fatalf("got %d %q, want a 200 form_post page\n%s", s.Status, s.Location, s.Body)
		}
		m := formAction.FindStringSubmatch(s.Body)
		if m == nil || html.UnescapeString(m[1]) != to {
			t.Fatalf("form_post page does not post to %s:\n%s", to, s.Body)
		}
		p := url.Values{}
		for _, m := range hiddenField.FindAllStringSubmatch(s.Body, -1) {
			p.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
		}
		expectNotFramable(t, s)
		return p
	}
	t.Fatalf("unknown kind %q", k)
	return nil
}

// expectParams checks the response parameters: error code (or success),
// state echoed exactly, iss (RFC 9207).
func expectParams(t *testing.T, env *servertest.Env, p url.Values, code, state string) {
	t.Helper()
	if got := p.Get("iss"); got != env.URL {
		t.Errorf("iss: got %q, want %q", got, env.URL)
	}
	if got, ok := p["state"]; state == "" && ok {
		t.Errorf("state: got %q, want none", got)
	} else if p.Get("state") != state {
		t.Errorf("state: got %q (%d bytes), want %q (%d bytes)", trim(p.Get("state")), len(p.Get("state")), trim(state), len(state))
	}
	for k, v := range p {
		if len(v) != 1 {
			t.Errorf("parameter %s appears %d times", k, len(v))
		}
	}
	if code == "" {
		if p.Get("error") != "" {
			t.Fatalf("got error %q (%s), want success", p.Get("error"), p.Get("error_description"))
		}
		if p.Get("code") == "" && p.Get("access_token") == "" && p.Get("id_token") == "" {
			t.Fatalf("success without code or token: %v", p)
		}
		return
	}
	if got := p.Get("error"); got != code {
		t.Fatalf("error: got %q (%s), want %q", got, p.Get("error_description"), code)
	}
	for _, k := range []string{"code", "access_token", "id_token", "refresh_token"} {
		if p.Get(k) != "" {
			t.Errorf("error response carries %s", k)
		}
	}
	// RFC 6749 §4.1.2.1: error_description is %x20-21 / %x23-5B / %x5D-7E.
	d := p.Get("error_description")
	if d == "" {
		t.Errorf("no error_description")
	}
	for _, c := range []byte(d) {
		if c < 0x20 || c == 0x22 || c == 0x5c || c > 0x7e {
			t.Errorf("error_description %q has %q, outside RFC 6749 §4.1.2.1", d, c)
			break
		}
	}
}

// expectPage checks s is Castellan's 400 error page, with no way to the
// (bad) redirect URIs: no Location, no refresh, the URI nowhere in the page.
func expectPage(t *testing.T, s servertest.Step, bad ...string) {
	t.Helper()
	if s.Status != http.StatusBadRequest || s.Location != "" {
		t.Fatalf("got %d %q, want a 400 error page with no redirect\n%s", s.Status, s.Location, s.Body)
	}
	if ct := s.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type: got %q, want text/html", ct)
	}
	if s.Header.Get("Refresh") != "" || strings.Contains(strings.ToLower(s.Body), "http-equiv") {
		t.Error("error page redirects by refresh")
	}
	if !strings.Contains(s.Body, "<code>invalid_request</code>") {
		t.Errorf("error page does not name invalid_request:\n%s", s.Body)
	}
	for _, b := range bad {
		if b == "" {
			continue
		}
		forms := []string{b, html.EscapeString(b), url.QueryEscape(b)}
		if u, err := url.Parse(b); err == nil && u.Hostname() != "" {
			forms = append(forms, u.Hostname())
		}
		for _, x := range forms {
			if strings.Contains(s.Body, x) {
				t.Errorf("error page contains %q", x)
			}
		}
	}
	expectNotFramable(t, s)
}

// expectNotFramable checks a page carries frame-ancestors 'none' (ADVERSARIAL 23).
func expectNotFramable(t *testing.T, s servertest.Step) {
	t.Helper()
	if csp := s.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q lacks frame-ancestors 'none'", csp)
	}
	if xfo := s.Header.Get("X-Frame-Options"); xfo != "DENY" {
		t.Errorf("X-Frame-Options: got %q, want DENY", xfo)
	}
}

func trim(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// tokens is a token endpoint response.
type tokens struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	Scope        string `json:"scope"`
	Error        string `json:"error"`
}

// exchange redeems a code of client (with the PKCE verifier unless pkce is false).
func (f *fixture) exchange(t *testing.T, client, code string, pkce bool) tokens {
	t.Helper()
	c := clients[client]
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {c.redirect}}
	if pkce {
		form.Set("code_verifier", verifier)
	}
	if c.secret == "" {
		form.Set("client_id", client)
	}
	req, _ := http.NewRequest(http.MethodPost, f.env.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.secret != "" {
		req.SetBasicAuth(client, c.secret)
	}
	resp, err := f.env.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out tokens
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token endpoint: %d %s", resp.StatusCode, out.Error)
	}
	return out
}

// idClaims are the ID-token claims the tests look at.
type idClaims struct {
	Subject  string `json:"sub"`
	AuthTime int64  `json:"auth_time"`
	Nonce    string `json:"nonce"`
	AtHash   string `json:"at_hash"`
	Azp      string `json:"azp"`
	SID      string `json:"sid"`
	Name     string `json:"name"`
	Email    string `json:"email"`
}

// verifyID verifies an ID token for client with go-oidc against the JWKS
// (signature, iss, aud, exp at the fake clock), checks at_hash against the
// access token if there is one, and returns its claims and signing algorithm.
func (f *fixture) verifyID(t *testing.T, client, raw, accessToken string) (idClaims, string) {
	t.Helper()
	v := f.provider.Verifier(&oidc.Config{ClientID: client, Now: f.env.Clock.Now})
	id, err := v.Verify(f.ctx, raw)
	if err != nil {
		t.Fatalf("go-oidc rejects the ID token: %v", err)
	}
	var c idClaims
	if err := id.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if accessToken != "" {
		if c.AtHash == "" {
			t.Error("ID token has no at_hash")
		} else if err := id.VerifyAccessToken(accessToken); err != nil {
			t.Errorf("at_hash: %v", err)
		}
	}
	return c, jwtHeader(t, raw).Alg
}

type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
}

func jwtHeader(t *testing.T, raw string) header {
	t.Helper()
	var h header
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
	if err != nil || json.Unmarshal(b, &h) != nil {
		t.Fatalf("JWT header of %q", trim(raw))
	}
	return h
}

// codeFlow runs a whole code flow for client as the agent's user (signing in
// and consenting as needed) and returns the verified ID token claims.
func (f *fixture) codeFlow(t *testing.T, a *servertest.Agent, req url.Values) idClaims {
	t.Helper()
	last := follow(t, a, f.authorize(req))
	p := f.outcome(t, last, req, want{kind: query})
	return f.idToken(t, req.Get("client_id"), p.Get("code"), req.Get("code_challenge") != "")
}

// idToken redeems code and returns the verified ID token claims.
func (f *fixture) idToken(t *testing.T, client, code string, pkce bool) idClaims {
	t.Helper()
	tok := f.exchange(t, client, code, pkce)
	c, _ := f.verifyID(t, client, tok.IDToken, tok.AccessToken)
	return c
}
