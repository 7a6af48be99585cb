package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/server"
	"github.com/castellan-auth/castellan/internal/server/servertest"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
)

// headerCase is one request and the security headers its answer must carry
// (issue 8 "Headers and cookies"; ADVERSARIAL 22, 23, 41; RFC 9700 §4.2.4
// Referer leakage, §4.16 clickjacking).
type headerCase struct {
	name string
	// send makes the request with a browser-like client.
	send func(t *testing.T) *http.Response
	// status is the exact status expected.
	status int
	// frameAncestors is the CSP frame-ancestors source list expected
	// ("'none'" everywhere except a silent answer of a client with origins).
	frameAncestors string
	// noStore: the answer carries (or may carry) a token, code or CSRF token.
	noStore bool
}

// TestSecurityHeaders sends one request to every kind of endpoint and checks
// the headers every answer carries: nosniff, no Referer leakage of codes and
// tokens, no framing except the silent answer, no caching of anything with a
// token or code in it, and no HSTS on a plain-http issuer.
func TestSecurityHeaders(t *testing.T) {
	env := servertest.New(t, servertest.Options{Config: servertest.WithClients(servertest.Config())})
	alice := env.Agent("alice")
	tk := env.CodeFlow(t, alice, servertest.Authz{})
	browser := env.Browser()
	do := func(method, path, contentType, body, authz string) func(t *testing.T) *http.Response {
		return func(t *testing.T) *http.Response {
			req, _ := http.NewRequest(method, env.URL+path, strings.NewReader(body))
			if contentType != "" {
				req.Header.Set("Content-Type", contentType)
			}
			if authz != "" {
				req.Header.Set("Authorization", authz)
			}
			c := browser
			if strings.HasPrefix(path, "/authorize?") && strings.Contains(path, "signed-in") {
				c = alice.Client
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp
		}
	}
	authorize := func(kv ...string) string {
		u, _ := url.Parse(env.AuthorizeURL(servertest.Authz{}))
		q := u.Query()
		for i := 0; i+1 < len(kv); i += 2 {
			q.Set(kv[i], kv[i+1])
		}
		return "/authorize?" + q.Encode()
	}
	const form = "application/x-www-form-urlencoded"
	svc := "client_id=svc&client_secret=" + url.QueryEscape(servertest.SvcSecret)
	cases := []headerCase{
		{name: "adv23/login-page", send: do("GET", "/login", "", "", ""), status: 200, frameAncestors: "'none'", noStore: true},
		{name: "adv23/account-page", send: do("GET", "/", "", "", ""), status: 200, frameAncestors: "'none'", noStore: true},
		{name: "adv23/authorize-error-page", send: do("GET", "/authorize?client_id=nobody", "", "", ""), status: 400, frameAncestors: "'none'", noStore: true},
		{name: "adv23/authorize-to-sign-in", send: do("GET", authorize(), "", "", ""), status: 303, frameAncestors: "'none'", noStore: true},
		{name: "adv23/authorize-code-redirect", send: do("GET", authorize("state", "signed-in"), "", "", ""), status: 303, frameAncestors: "'none'", noStore: true},
		{name: "adv23/authorize-form_post-page", send: do("GET", authorize("state", "signed-in", "response_mode", "form_post"), "", "", ""), status: 200, frameAncestors: "'none'", noStore: true},
		{name: "adv23/prompt-none-answer-framable-by-allowed-origins", send: do("GET", authorize("prompt", "none"), "", "", ""), status: 303, frameAncestors: "http://127.0.0.1:9100", noStore: true},
		{name: "adv23/prompt-none-code-framable-by-allowed-origins", send: do("GET", authorize("prompt", "none", "state", "signed-in"), "", "", ""), status: 303, frameAncestors: "http://127.0.0.1:9100", noStore: true},
		{name: "adv23/resume-unknown", send: do("GET", "/authorize/resume?authz=nope", "", "", ""), status: 400, frameAncestors: "'none'", noStore: true},
		{name: "adv23/end-session-confirmation", send: do("GET", "/end_session", "", "", ""), status: 200, frameAncestors: "'none'", noStore: true},
		{name: "adv41/token-success", send: do("POST", "/token", form, "grant_type=client_credentials&"+svc, ""), status: 200, frameAncestors: "'none'", noStore: true},
		{name: "adv41/token-error", send: do("POST", "/token", form, "grant_type=client_credentials", ""), status: 401, frameAncestors: "'none'", noStore: true},
		{name: "adv41/refresh-success", send: do("POST", "/token", form, "grant_type=refresh_token&client_id=spa&refresh_token="+tk.RefreshToken, ""), status: 200, frameAncestors: "'none'", noStore: true},
		{name: "adv41/introspect", send: do("POST", "/introspect", form, "token="+tk.AccessToken+"&"+svc, ""), status: 200, frameAncestors: "'none'", noStore: true},
		{name: "adv41/revoke", send: do("POST", "/revoke", form, "token=nothing&"+svc, ""), status: 200, frameAncestors: "'none'", noStore: true},
		{name: "adv48/userinfo-no-token", send: do("GET", "/userinfo", "", "", ""), status: 401, frameAncestors: "'none'", noStore: true},
		{name: "adv48/userinfo", send: do("GET", "/userinfo", "", "", "Bearer "+tk.AccessToken), status: 200, frameAncestors: "'none'", noStore: true},
		{name: "public/discovery", send: do("GET", "/.well-known/openid-configuration", "", "", ""), status: 200, frameAncestors: "'none'"},
		{name: "public/jwks", send: do("GET", "/jwks", "", "", ""), status: 200, frameAncestors: "'none'"},
		{name: "public/healthz", send: do("GET", "/healthz", "", "", ""), status: 200, frameAncestors: "'none'", noStore: true},
		{name: "public/not-found", send: do("GET", "/nothing-here", "", "", ""), status: 404, frameAncestors: "'none'"},
		{name: "public/method-not-allowed", send: do("PUT", "/token", "", "", ""), status: 405, frameAncestors: "'none'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := c.send(t)
			h := resp.Header
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d (Location %q)", resp.StatusCode, c.status, h.Get("Location"))
			}
			if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
			// Codes and tokens in a redirect's query must not leak through Referer.
			if got := h.Get("Referrer-Policy"); got != "no-referrer" {
				t.Errorf("Referrer-Policy %q, want no-referrer", got)
			}
			if got := h.Get("Strict-Transport-Security"); got != "" {
				t.Errorf("HSTS %q on a plain-http issuer", got)
			}
			csp := h.Get("Content-Security-Policy")
			if got := directive(csp, "frame-ancestors"); got != c.frameAncestors {
				t.Errorf("CSP %q: frame-ancestors %q, want %q", csp, got, c.frameAncestors)
			}
			xfo := h.Get("X-Frame-Options")
			if c.frameAncestors == "'none'" && xfo != "DENY" {
				t.Errorf("X-Frame-Options %q, want DENY", xfo)
			}
			if c.frameAncestors != "'none'" && xfo != "" {
				t.Errorf("X-Frame-Options %q on a framable answer (it would override frame-ancestors)", xfo)
			}
			if directive(csp, "default-src") != "'none'" {
				t.Errorf("CSP %q without default-src 'none'", csp)
			}
			if c.noStore && h.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", h.Get("Cache-Control"))
			}
			if loc := h.Get("Location"); strings.Contains(loc, "code=") && h.Get("Cache-Control") != "no-store" {
				t.Errorf("a code in Location %q without no-store", loc)
			}
			for k := range h {
				if strings.HasPrefix(k, "Access-Control-") {
					t.Errorf("%s on a request without Origin", k)
				}
			}
		})
	}
}

// directive returns the source list of a CSP directive ("" if absent).
func directive(csp, name string) string {
	for _, d := range strings.Split(csp, ";") {
		d = strings.TrimSpace(d)
		if v, ok := strings.CutPrefix(d, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestHTTPSIssuer is a provider whose issuer is https (behind a TLS proxy):
// every answer carries HSTS, and the browser-binding and session cookies are
// __Host- prefixed, Secure, HttpOnly and SameSite=Lax (ADVERSARIAL 64).
func TestHTTPSIssuer(t *testing.T) {
	dir := t.TempDir()
	cfg := servertest.WithClients(servertest.Config())
	cfg.Issuer = "https://id.example"
	cfg.Storage = "sqlite://" + filepath.Join(dir, "castellan.db")
	cfg.KeyFile = filepath.Join(dir, "master.key")
	cfg.Signing.Algorithms = []string{"ES256"}
	if problems := cfg.Validate(); len(problems) > 0 {
		t.Fatal(problems)
	}
	ctx := context.Background()
	master, _, err := seal.LoadOrCreate(cfg.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlstore.Open(ctx, cfg.Storage, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	srv, err := server.New(ctx, server.Deps{Config: cfg, Store: store, Master: master, Clock: clock.NewFake(servertest.Start)})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	serve := func(method, target string, body string, cookies []*http.Cookie) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		if body != "" {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for _, c := range cookies {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	for _, path := range []string{"/login", "/.well-known/openid-configuration", "/authorize?client_id=nobody", "/nothing-here"} {
		w := serve("GET", "https://id.example"+path, "", nil)
		if got := w.Header().Get("Strict-Transport-Security"); got != "max-age=63072000; includeSubDomains" {
			t.Errorf("GET %s: HSTS %q", path, got)
		}
	}

	login := serve("GET", "https://id.example/login", "", nil)
	csrfCookie := cookieNamed(login.Result().Cookies(), "__Host-castellan_csrf")
	if csrfCookie == nil {
		t.Fatalf("no __Host-castellan_csrf cookie: %v", login.Header().Values("Set-Cookie"))
	}
	expectHostCookie(t, csrfCookie)
	token := servertest.CSRF(login.Body.String())
	w := serve("POST", "https://id.example/login", url.Values{"csrf_token": {token}, "username": {"alice"},
		"password": {servertest.Password}}.Encode(), []*http.Cookie{csrfCookie})
	if w.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d\n%s", w.Code, w.Body)
	}
	session := cookieNamed(w.Result().Cookies(), "__Host-castellan_session")
	if session == nil {
		t.Fatalf("no __Host-castellan_session cookie: %v", w.Header().Values("Set-Cookie"))
	}
	expectHostCookie(t, session)
}

func cookieNamed(cs []*http.Cookie, name string) *http.Cookie {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// expectHostCookie: RFC 6265bis §4.1.3.2 — Secure, Path=/, no Domain; and
// HttpOnly and SameSite=Lax as every Castellan cookie.
func expectHostCookie(t *testing.T, c *http.Cookie) {
	t.Helper()
	if !c.Secure || c.Path != "/" || c.Domain != "" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
		t.Errorf("cookie %s: Secure=%v Path=%q Domain=%q HttpOnly=%v SameSite=%v", c.Name, c.Secure, c.Path, c.Domain, c.HttpOnly, c.SameSite)
	}
}
