package resource_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/mint"
	"github.com/castellan-auth/castellan/internal/server/servertest"
	"github.com/castellan-auth/castellan/resource"
)

// TestRequire drives the middleware with real tokens and checks the status,
// the WWW-Authenticate challenge (RFC 6750 §3) and whether the handler ran.
func TestRequire(t *testing.T) {
	t.Parallel()
	env := newProvider(t)
	read := serviceToken(t, env, "api:read")
	both := serviceToken(t, env, "api:read api:write")
	user := env.CodeFlow(t, env.Agent("alice"), servertest.Authz{})
	bound, _, err := env.Server.Mint.NewAccess(mint.AccessParams{ClientID: "spa", Subject: "someone",
		Scopes: []string{"api:read"}, IssuedAt: env.Clock.Now(), Expiry: env.Clock.Now().Add(time.Hour), JKT: "jkt", Audience: []string{apiAudience}})
	if err != nil {
		t.Fatal(err)
	}
	v, w := newVerifier(t, env, nil)
	down, dw := newVerifier(t, env, nil)
	dw.down.Store(true)
	expiredV, _ := newVerifier(t, env, func(c *resource.Config) {
		c.Now = func() time.Time { return env.Clock.Now().Add(2 * time.Hour) }
	})

	realm := `Bearer realm="` + apiAudience + `"`
	invalidToken := func(desc string) string {
		return realm + `, error="invalid_token", error_description="the access token ` + desc + `"`
	}
	invalidRequest := func(desc string) string {
		return realm + `, error="invalid_request", error_description="` + desc + `"`
	}
	insufficient := func(scope string) string {
		return realm + `, error="insufficient_scope", error_description="the access token lacks a required scope", scope="` + scope + `"`
	}

	type req struct {
		method string
		target string
		auth   []string
		body   string
	}
	bearer := func(tok string) []string { return []string{"Bearer " + tok} }
	tests := []struct {
		name      string
		v         *resource.Verifier
		scopes    []string
		req       req
		status    int
		challenge string
		code      string // "error" member of the JSON body
	}{
		{name: "ok/bearer", scopes: []string{"api:read"}, req: req{auth: bearer(read)}, status: 200},
		{name: "ok/no-scope-needed", req: req{auth: bearer(user.AccessToken)}, status: 200},
		{name: "ok/two-scopes", scopes: []string{"api:read", "api:write"}, req: req{auth: bearer(both)}, status: 200},
		{name: "ok/scheme-lower-case", scopes: []string{"api:read"}, req: req{auth: []string{"bearer " + read}}, status: 200},
		{name: "ok/post", scopes: []string{"api:read"}, req: req{method: "POST", auth: bearer(read), body: "a=b"}, status: 200},

		{name: "fail/no-token", req: req{}, status: 401, challenge: realm},
		{name: "fail/basic-scheme", req: req{auth: []string{"Basic c3ZjOnNlY3JldA=="}}, status: 401, challenge: realm},
		{name: "fail/dpop-scheme-not-yet-supported", req: req{auth: []string{"DPoP " + bound}}, status: 401, challenge: realm},
		{name: "fail/token-in-form-body-not-read", req: req{method: "POST", body: "access_token=" + read}, status: 401, challenge: realm},
		{name: "fail/token-in-query", req: req{target: "/?access_token=" + read}, status: 400,
			challenge: invalidRequest("access tokens are accepted in the Authorization header only"), code: "invalid_request"},
		{name: "fail/token-in-query-and-header", req: req{target: "/?access_token=" + read, auth: bearer(read)}, status: 400,
			challenge: invalidRequest("access tokens are accepted in the Authorization header only"), code: "invalid_request"},
		{name: "fail/bearer-without-token", req: req{auth: []string{"Bearer"}}, status: 400,
			challenge: invalidRequest("malformed Bearer credentials"), code: "invalid_request"},
		{name: "fail/bearer-empty", req: req{auth: []string{"Bearer   "}}, status: 400,
			challenge: invalidRequest("malformed Bearer credentials"), code: "invalid_request"},
		{name: "fail/token-with-space", req: req{auth: []string{"Bearer " + read + " extra"}}, status: 400,
			challenge: invalidRequest("malformed Bearer credentials"), code: "invalid_request"},
		{name: "fail/two-authorization-headers", req: req{auth: []string{"Bearer " + read, "Bearer " + read}}, status: 400,
			challenge: invalidRequest("more than one Authorization header"), code: "invalid_request"},
		{name: "fail/garbage-token", req: req{auth: bearer("abc")}, status: 401,
			challenge: invalidToken("is not a JWT"), code: "invalid_token"},
		{name: "fail/expired", v: expiredV, req: req{auth: bearer(read)}, status: 401,
			challenge: invalidToken("expired"), code: "invalid_token"},
		{name: "fail/id-token", req: req{auth: bearer(user.IDToken)}, status: 401,
			challenge: invalidToken("is not an access token (typ is not at+jwt)"), code: "invalid_token"},
		{name: "fail/dpop-bound-as-bearer", req: req{auth: bearer(bound)}, status: 401,
			challenge: invalidToken("is bound to a key (DPoP) and cannot be used as a bearer token"), code: "invalid_token"},
		{name: "fail/insufficient-scope", scopes: []string{"api:write"}, req: req{auth: bearer(read)}, status: 403,
			challenge: insufficient("api:write"), code: "insufficient_scope"},
		{name: "fail/insufficient-scope-lists-all", scopes: []string{"api:read", "api:write"}, req: req{auth: bearer(read)}, status: 403,
			challenge: insufficient("api:read api:write"), code: "insufficient_scope"},
		{name: "fail/user-token-without-api-scope", scopes: []string{"api:read"}, req: req{auth: bearer(user.AccessToken)}, status: 403,
			challenge: insufficient("api:read"), code: "insufficient_scope"},
		{name: "fail/provider-unreachable", v: down, req: req{auth: bearer(read)}, status: 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ver := tc.v
			if ver == nil {
				ver = v
			}
			var got *resource.Claims
			h := ver.Require(tc.scopes...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, _ = resource.ClaimsFrom(r.Context())
				if r.Method == "POST" {
					b, _ := io.ReadAll(r.Body)
					if string(b) != tc.req.body {
						t.Errorf("body seen by the handler: got %q, want %q", b, tc.req.body)
					}
				}
				fmt.Fprint(w, "ok")
			}))
			method, target := tc.req.method, tc.req.target
			if method == "" {
				method = "GET"
			}
			if target == "" {
				target = "/"
			}
			r := httptest.NewRequest(method, target, strings.NewReader(tc.req.body))
			if tc.req.body != "" {
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			for _, a := range tc.req.auth {
				r.Header.Add("Authorization", a)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)

			if rec.Code != tc.status {
				t.Fatalf("status: got %d, want %d (%s)", rec.Code, tc.status, rec.Body)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate:\n got %s\nwant %s", got, tc.challenge)
			}
			if tc.status == 200 {
				if got == nil || got.Subject == "" || rec.Body.String() != "ok" {
					t.Fatalf("handler: claims %+v, body %q", got, rec.Body)
				}
				return
			}
			if got != nil {
				t.Fatal("the handler ran for a refused request")
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control: got %q, want no-store", cc)
			}
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if body["error"] != tc.code {
				t.Errorf("error: got %q, want %q", body["error"], tc.code)
			}
		})
	}
	if got := w.count(jwksPath); got != 1 {
		t.Errorf("JWKS fetches over all requests: got %d, want 1", got)
	}
}

// TestRequireOverHTTP sends the requests over a real connection, the way an
// API receives them, including a token in the query string.
func TestRequireOverHTTP(t *testing.T) {
	t.Parallel()
	env := newProvider(t)
	v, _ := newVerifier(t, env, nil)
	api := httptest.NewServer(v.Require("api:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := resource.ClaimsFrom(r.Context())
		fmt.Fprint(w, c.ClientID)
	})))
	defer api.Close()
	tok := serviceToken(t, env, "api:read")

	get := func(target, auth string) (*http.Response, string) {
		t.Helper()
		r, _ := http.NewRequest("GET", api.URL+target, nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		resp, err := api.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, body := get("/", "Bearer "+tok); resp.StatusCode != 200 || body != "svc" {
		t.Fatalf("with a token: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get("/?access_token="+url.QueryEscape(tok), ""); resp.StatusCode != 400 {
		t.Fatalf("token in the query: got %d, want 400", resp.StatusCode)
	}
	if resp, _ := get("/", ""); resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="`+apiAudience+`"` {
		t.Fatalf("no token: got %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// TestRequireRealm: the realm is configurable and quoted.
func TestRequireRealm(t *testing.T) {
	t.Parallel()
	v, err := resource.New(resource.Config{Issuer: "https://login.example", Audience: "api", Realm: `orders "v2"`})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	v.Require()(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if got, want := rec.Header().Get("WWW-Authenticate"), `Bearer realm="orders \"v2\""`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// TestRequireBadScope: a scope that cannot be a scope-token is a programming
// error, found when the middleware is built.
func TestRequireBadScope(t *testing.T) {
	t.Parallel()
	v, err := resource.New(resource.Config{Issuer: "https://login.example", Audience: "api"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"", "a b", `a"b`} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Require(%q) did not panic", s)
				}
			}()
			v.Require(s)
		}()
	}
}
