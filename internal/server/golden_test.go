package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/dpop/dpoptest"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// TestGolden pins what goes on the wire: every JSON document, error, challenge
// and redirect a client sees, with the values that differ from run to run
// (tokens, ids, times, the server's port) replaced by what they are. A change
// to any of these is a change clients notice; regenerate with
// `go test ./internal/server -run TestGolden -update` and review the diff.
func TestGolden(t *testing.T) {
	cfg := servertest.WithClients(servertest.Config())
	cfg.Clients = append(cfg.Clients, config.Client{
		ClientID: "dpop-spa", TokenEndpointAuthMethod: "none",
		RedirectURIs: []string{"http://127.0.0.1:9300/callback"}, AllowedOrigins: []string{"http://127.0.0.1:9300"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scope: "openid profile offline_access",
		SkipConsent: true, DPoPBoundAccessTokens: true,
	})
	e := servertest.New(t, servertest.Options{Config: cfg})
	g := &golden{t: t, e: e, names: map[string]string{}}
	users, err := e.Store.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		g.names[u.ID] = "<user " + u.Username + ">"
	}

	g.check("discovery", g.get("/.well-known/openid-configuration", ""))
	g.check("jwks", g.get("/jwks", ""))

	// Token endpoint: each grant's success.
	g.check("token-client-credentials", g.post("/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"api:read"}}, servertest.SvcClient))
	agent := e.Agent("alice")
	code, a := e.Code(t, agent, servertest.Authz{Nonce: "n-golden"})
	redeemed := g.post("/token", servertest.RedeemForm(code, a), a.Client)
	g.check("token-authorization-code", redeemed)
	tokens := redeemed.reply.Tokens()
	refreshed := g.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens.RefreshToken}}, servertest.SPAClient)
	g.check("token-refresh", refreshed)
	access := refreshed.reply.Tokens().AccessToken

	// Token endpoint: errors.
	g.check("token-error-unsupported-grant-type", g.post("/token", url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"x"}}, servertest.SvcClient))
	g.check("token-error-no-grant-type", g.post("/token", url.Values{}, servertest.SvcClient))
	g.check("token-error-repeated-parameter", g.post("/token", url.Values{"grant_type": {"client_credentials", "client_credentials"}}, servertest.SvcClient))
	g.check("token-error-wrong-secret-basic", g.post("/token", url.Values{"grant_type": {"client_credentials"}}, servertest.ClientAuth{ID: "web", Secret: "wrong-secret-0123456789abcdef0123456789", Method: "client_secret_basic"}))
	g.check("token-error-unknown-client", g.post("/token", url.Values{"grant_type": {"client_credentials"}}, servertest.ClientAuth{ID: "nobody", Secret: "some-secret-0123456789abcdef0123456789", Method: "client_secret_post"}))
	g.check("token-error-two-auth-methods", g.raw(http.MethodPost, "/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {servertest.SvcSecret}}.Encode(), servertest.BasicHeader("svc", servertest.SvcSecret), nil))
	g.check("token-error-basic-and-assertion", g.raw(http.MethodPost, "/token", url.Values{"grant_type": {"client_credentials"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {"eyJhbGciOiJFUzI1NiJ9.e30.c2ln"}}.Encode(),
		servertest.BasicHeader("svc", servertest.SvcSecret), nil))
	g.check("token-error-public-client-no-id", g.post("/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, servertest.NoClient))
	g.check("token-error-unknown-code", g.post("/token", url.Values{"grant_type": {"authorization_code"}, "code": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, "redirect_uri": {servertest.SPARedirect}, "code_verifier": {strings.Repeat("v", 43)}}, servertest.SPAClient))
	g.check("token-error-code-reused", g.post("/token", servertest.RedeemForm(code, a), a.Client))
	g.check("token-error-refresh-reused", g.post("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens.RefreshToken}}, servertest.SPAClient))
	g.check("token-error-scope-not-allowed", g.post("/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}}, servertest.SvcClient))
	g.check("token-error-grant-not-allowed", g.post("/token", url.Values{"grant_type": {"client_credentials"}}, servertest.WebClient))
	g.check("token-error-malformed-dpop", g.raw(http.MethodPost, "/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {servertest.SvcSecret}}.Encode(), "", http.Header{"Dpop": {"not-a-proof"}}))

	// Introspection and revocation.
	g.check("introspect-active", g.post("/introspect", url.Values{"token": {access}}, servertest.WebClient))
	g.check("introspect-inactive", g.post("/introspect", url.Values{"token": {"not-a-token"}}, servertest.WebClient))
	g.check("introspect-no-client", g.post("/introspect", url.Values{"token": {access}}, servertest.NoClient))
	g.check("introspect-public-client", g.post("/introspect", url.Values{"token": {access}}, servertest.SPAClient))
	g.check("revoke-unknown-token", g.post("/revoke", url.Values{"token": {"not-a-token"}}, servertest.WebClient))
	g.check("revoke-no-client", g.post("/revoke", url.Values{"token": {"not-a-token"}}, servertest.NoClient))

	// Userinfo and the RFC 6750 / RFC 9449 challenges.
	g.check("userinfo", g.get("/userinfo", "Bearer "+access))
	g.check("userinfo-no-token", g.get("/userinfo", ""))
	g.check("userinfo-bad-token", g.get("/userinfo", "Bearer not-a-token"))
	g.check("userinfo-basic-scheme", g.get("/userinfo", servertest.BasicHeader("a", "b")))
	g.check("userinfo-token-in-query", g.get("/userinfo?access_token="+url.QueryEscape(access), ""))
	key := dpoptest.NewKey("ES256")
	dcode, da := e.Code(t, e.Agent("alice"), servertest.Authz{Client: servertest.ClientAuth{ID: "dpop-spa", Method: "none"}, RedirectURI: "http://127.0.0.1:9300/callback", Scope: "openid profile offline_access", Nonce: "n-golden"})
	bound := g.raw(http.MethodPost, "/token", servertest.RedeemForm(dcode, da).Encode()+"&client_id=dpop-spa", "", http.Header{"Dpop": {key.Proof(http.MethodPost, e.URL+"/token", "")}})
	g.check("token-dpop-bound", bound)
	dpopAccess := bound.reply.Tokens().AccessToken
	g.check("userinfo-dpop", g.raw(http.MethodGet, "/userinfo", "", "DPoP "+dpopAccess, http.Header{"Dpop": {key.Proof(http.MethodGet, e.URL+"/userinfo", dpopAccess)}}))
	g.check("userinfo-dpop-token-as-bearer", g.get("/userinfo", "Bearer "+dpopAccess))
	g.check("userinfo-dpop-no-proof", g.get("/userinfo", "DPoP "+dpopAccess))
	g.check("userinfo-dpop-wrong-ath", g.raw(http.MethodGet, "/userinfo", "", "DPoP "+dpopAccess, http.Header{"Dpop": {key.Proof(http.MethodGet, e.URL+"/userinfo", access)}}))
	g.check("session-events-no-token", g.get("/session/events", ""))
	g.check("session-activity-no-token", g.raw(http.MethodPost, "/session/activity", "", "", nil))

	// Pushed authorization requests.
	pkce := "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	par := url.Values{"response_type": {"code"}, "redirect_uri": {servertest.WebRedirect}, "scope": {"openid"}, "state": {"st"},
		"code_challenge": {pkce}, "code_challenge_method": {"S256"}}
	g.check("par", g.post("/par", par, servertest.WebClient))
	g.check("par-no-client", g.post("/par", par, servertest.NoClient))
	bad := url.Values{"redirect_uri": {"https://evil.example/cb"}}
	for k, v := range par {
		if k != "redirect_uri" {
			bad[k] = v
		}
	}
	g.check("par-unregistered-redirect", g.post("/par", bad, servertest.WebClient))

	// The authorization endpoint: errors redirected to the client and errors
	// shown on Castellan's own page.
	authz := func(q url.Values) string { return "/authorize?" + q.Encode() }
	spa := func(extra url.Values) url.Values {
		q := url.Values{"client_id": {"spa"}, "redirect_uri": {servertest.SPARedirect}, "response_type": {"code"},
			"scope": {"openid"}, "state": {"st"}, "code_challenge": {pkce}, "code_challenge_method": {"S256"}}
		for k, v := range extra {
			q[k] = v
		}
		return q
	}
	noType := spa(nil)
	noType.Del("response_type")
	g.check("authorize-error-no-response-type", g.get(authz(noType), ""))
	g.check("authorize-error-login-required", g.get(authz(spa(url.Values{"prompt": {"none"}})), ""))
	g.check("authorize-error-implicit-not-allowed", g.get(authz(spa(url.Values{"response_type": {"token"}, "nonce": {"n"}})), ""))
	g.check("authorize-error-plain-pkce", g.get(authz(spa(url.Values{"code_challenge_method": {"plain"}})), ""))
	g.check("authorize-error-bad-scope", g.get(authz(spa(url.Values{"scope": {"openid admin"}})), ""))
	g.check("authorize-page-unknown-client", g.get(authz(spa(url.Values{"client_id": {"nobody"}})), ""))
	g.check("authorize-page-unregistered-redirect", g.get(authz(spa(url.Values{"redirect_uri": {"http://127.0.0.1:9100/other"}})), ""))
	g.check("authorize-page-no-client", g.get("/authorize?response_type=code", ""))
	g.check("authorize-to-sign-in", g.get(authz(spa(nil)), ""))

	// End session.
	g.check("end-session-confirm", g.get("/end_session", ""))
	g.check("end-session-unregistered-redirect", g.get("/end_session?client_id=spa&post_logout_redirect_uri="+url.QueryEscape("https://evil.example/"), ""))
	g.check("end-session-unknown-client", g.get("/end_session?client_id=nobody&post_logout_redirect_uri="+url.QueryEscape("http://127.0.0.1:9100/"), ""))

	// Last, with storage gone: an outage is the server's fault, never the client's.
	e.Store.Close()
	g.check("end-session-storage-outage", g.get("/end_session?client_id=spa&post_logout_redirect_uri="+url.QueryEscape("http://127.0.0.1:9100/"), ""))
}

// golden records responses and compares them with testdata/golden.
type golden struct {
	t     *testing.T
	e     *servertest.Env
	names map[string]string // values that stand for a known thing (user ids)
}

// exchange is one request and its response.
type exchange struct {
	method, path string
	reply        servertest.Reply
}

func (g *golden) get(path, authorization string) exchange {
	return g.raw(http.MethodGet, path, "", authorization, nil)
}

func (g *golden) post(path string, form url.Values, c servertest.ClientAuth) exchange {
	g.t.Helper()
	r, err := g.e.PostForm(path, form, c)
	if err != nil {
		g.t.Fatalf("POST %s: %v", path, err)
	}
	return exchange{method: http.MethodPost, path: path, reply: r}
}

// raw sends body (form-encoded if not empty) with an Authorization header and
// more headers, and does not follow redirects.
func (g *golden) raw(method, path, body, authorization string, header http.Header) exchange {
	g.t.Helper()
	req, err := http.NewRequest(method, g.e.URL+path, strings.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	client := g.e.Browser()
	resp, err := client.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	r := servertest.Reply{Status: resp.StatusCode, Header: resp.Header, Body: buf.String()}
	json.Unmarshal(buf.Bytes(), &r.JSON)
	return exchange{method: method, path: path, reply: r}
}

// pinnedHeaders are the response headers a client reads.
var pinnedHeaders = []string{
	"Content-Type", "Cache-Control", "Pragma", "Www-Authenticate", "Location", "Retry-After",
	"Dpop-Nonce", "Access-Control-Allow-Origin", "Content-Security-Policy",
}

func (g *golden) check(name string, x exchange) {
	g.t.Helper()
	got := g.render(x)
	file := filepath.Join("testdata", "golden", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			g.t.Fatal(err)
		}
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			g.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		g.t.Errorf("%s: %v (run with -update to create it)", name, err)
		return
	}
	if got != string(want) {
		g.t.Errorf("%s: the answer changed (run with -update and review the diff)\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func (g *golden) render(x exchange) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", x.method, g.text(strings.SplitN(x.path, "?", 2)[0]))
	fmt.Fprintf(&b, "status: %d\n", x.reply.Status)
	for _, h := range pinnedHeaders {
		if v := x.reply.Header.Values(h); len(v) > 0 {
			fmt.Fprintf(&b, "%s: %s\n", strings.ToLower(h), g.headerValue(h, strings.Join(v, ", ")))
		}
	}
	b.WriteString("\n")
	ct := x.reply.Header.Get("Content-Type")
	switch {
	case x.reply.JSON != nil || strings.Contains(ct, "json"):
		var v any
		if err := json.Unmarshal([]byte(x.reply.Body), &v); err != nil {
			b.WriteString(g.text(x.reply.Body))
			break
		}
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		enc.Encode(g.value("", v))
	case strings.HasPrefix(ct, "text/html"):
		b.WriteString(g.page(x.reply.Body))
	default:
		b.WriteString(g.text(x.reply.Body))
	}
	return b.String()
}

var (
	jwtPattern    = regexp.MustCompile(`^[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*$`)
	opaquePattern = regexp.MustCompile(`[A-Za-z0-9_-]{43}`)
	noncePattern  = regexp.MustCompile(`'nonce-[A-Za-z0-9+/=_-]+'`)
	csrfValue     = regexp.MustCompile(`(name="(?:csrf_token|authz)" value=")[^"]+`)
	nonceAttr     = regexp.MustCompile(`nonce="[^"]+"`)
	requestID     = regexp.MustCompile(`Request [A-Za-z0-9_-]{16,}`)
)

// text replaces the issuer's address and the long random values in s.
func (g *golden) text(s string) string {
	s = strings.ReplaceAll(s, g.e.URL, "{issuer}")
	s = strings.ReplaceAll(s, url.QueryEscape(g.e.URL), url.QueryEscape("{issuer}"))
	for id, name := range g.names {
		s = strings.ReplaceAll(s, id, name)
	}
	return opaquePattern.ReplaceAllString(s, "<opaque>")
}

func (g *golden) headerValue(name, v string) string {
	switch name {
	case "Dpop-Nonce":
		return "<nonce>"
	case "Content-Security-Policy":
		return noncePattern.ReplaceAllString(g.text(v), "'nonce-<nonce>'")
	case "Location":
		return g.location(v)
	}
	return g.text(v)
}

// location renders a redirect with its parameters one per line, sorted.
func (g *golden) location(v string) string {
	u, err := url.Parse(v)
	if err != nil {
		return g.text(v)
	}
	params, _ := url.ParseQuery(u.RawQuery)
	if u.Fragment != "" {
		params, _ = url.ParseQuery(u.EscapedFragment())
	}
	u.RawQuery, u.Fragment, u.RawFragment = "", "", ""
	var lines []string
	for k, vs := range params {
		for _, p := range vs {
			lines = append(lines, "  "+k+"="+g.text(p))
		}
	}
	slices.Sort(lines)
	return g.text(u.String()) + "\n" + strings.Join(lines, "\n")
}

func (g *golden) page(body string) string {
	body = csrfValue.ReplaceAllString(body, "${1}<token>")
	body = nonceAttr.ReplaceAllString(body, `nonce="<nonce>"`)
	body = requestID.ReplaceAllString(body, "Request <request id>")
	return g.text(body)
}

// timeClaims hold Unix times; they are shown relative to the test clock's start.
var timeClaims = []string{"iat", "exp", "nbf", "auth_time", "updated_at"}

// randomClaims hold values that differ in every run.
var randomClaims = []string{"jti", "sid", "at_hash", "c_hash", "kid", "x", "y", "n", "jkt", "grant", "request_uri"}

// value normalizes a decoded JSON value found under key.
func (g *golden) value(key string, v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, vv := range v {
			out[k] = g.value(k, vv)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, vv := range v {
			out[i] = g.value(key, vv)
		}
		if key == "keys" {
			// A key set is a set: its order is not part of the answer.
			slices.SortFunc(out, func(a, b any) int {
				ja, _ := json.Marshal(a)
				jb, _ := json.Marshal(b)
				return bytes.Compare(ja, jb)
			})
		}
		return out
	case float64:
		if slices.Contains(timeClaims, key) {
			d := time.Unix(int64(v), 0).Sub(servertest.Start)
			return fmt.Sprintf("<start%+ds>", int64(d.Seconds()))
		}
		return v
	case string:
		switch {
		case jwtPattern.MatchString(v):
			return g.jwt(v)
		case slices.Contains(randomClaims, key):
			return "<" + key + ">"
		}
		return g.text(v)
	}
	return v
}

// jwt shows a token's decoded header and claims instead of its bytes.
func (g *golden) jwt(s string) any {
	parts := strings.Split(s, ".")
	decode := func(p string) any {
		b, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil {
			return "<undecodable>"
		}
		var v any
		if json.Unmarshal(b, &v) != nil {
			return "<not json>"
		}
		return g.value("", v)
	}
	return map[string]any{"<jwt header>": decode(parts[0]), "<jwt claims>": decode(parts[1])}
}
