package demoapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/demoapi"
	"github.com/castellan-auth/castellan/internal/server/servertest"
	"github.com/castellan-auth/castellan/resource"
)

const spaOrigin = "http://127.0.0.1:9100"

type fixture struct {
	env *servertest.Env
	api *httptest.Server
}

// apiAudience is the demo API's identifier in these tests: the servertest
// clients are registered with it.
const apiAudience = "http://127.0.0.1:9101"

// newFixture starts a provider and the demo API in front of it, checking
// revocation as the svc client.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	cfg := servertest.WithClients(servertest.Config())
	for i := range cfg.Clients {
		cfg.Clients[i].Audience = []string{apiAudience}
	}
	env := servertest.New(t, servertest.Options{Config: cfg})
	h, err := demoapi.New(demoapi.Config{
		Issuer: env.URL, Audience: apiAudience, AllowedOrigins: []string{spaOrigin},
		IntrospectionClientID: "svc", IntrospectionSecret: servertest.SvcSecret,
		IntrospectionAuthMethod: resource.AuthClientSecretPost,
		HTTPClient:              env.HTTP.Client(), Now: env.Clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(h)
	t.Cleanup(api.Close)
	return &fixture{env: env, api: api}
}

type reply struct {
	status int
	header http.Header
	body   string
	json   map[string]any
}

// call sends method path to the demo API with an optional token and headers.
func (f *fixture) call(t *testing.T, method, path, token string, headers ...string) reply {
	t.Helper()
	req, _ := http.NewRequest(method, f.api.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := f.api.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, header: resp.Header, body: string(b)}
	json.Unmarshal(b, &r.json)
	return r
}

func TestProfile(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok := f.env.CodeFlow(t, f.env.Agent("alice"), servertest.Authz{})
	sub := servertest.Claims(tok.IDToken)["sub"]

	r := f.call(t, "GET", "/api/profile", tok.AccessToken)
	if r.status != 200 {
		t.Fatalf("status: got %d, want 200 (%s)", r.status, r.body)
	}
	if r.json["sub"] != sub || r.json["client_id"] != "spa" || r.json["sid"] == "" || r.json["expires_in"] != float64(3600) {
		t.Errorf("profile: got %s", r.body)
	}
	scopes, _ := r.json["scopes"].([]any)
	if len(scopes) != 4 || scopes[0] != "openid" {
		t.Errorf("scopes: got %v, want openid profile email offline_access", r.json["scopes"])
	}
	if got, want := r.json["time"], f.env.Clock.Now().Format(time.RFC3339); got != want {
		t.Errorf("time: got %v, want %v", got, want)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control: got %q, want no-store", cc)
	}

	f.env.Clock.Advance(10 * time.Minute)
	if r := f.call(t, "GET", "/api/profile", tok.AccessToken); r.json["expires_in"] != float64(3000) {
		t.Errorf("expires_in ten minutes later: got %v, want 3000", r.json["expires_in"])
	}
	f.env.Clock.Advance(time.Hour)
	r = f.call(t, "GET", "/api/profile", tok.AccessToken)
	if r.status != 401 || !strings.Contains(r.header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("expired token: got %d %q, want 401 invalid_token", r.status, r.header.Get("WWW-Authenticate"))
	}
}

func TestOrders(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	spa := f.env.CodeFlow(t, f.env.Agent("alice"), servertest.Authz{}).AccessToken
	web := f.env.CodeFlow(t, f.env.Agent("bob"), servertest.Authz{Client: servertest.WebClient, Scope: "openid " + demoapi.OrdersScope}).AccessToken
	svcResp := f.env.Post(t, "/token", map[string][]string{"grant_type": {"client_credentials"}, "scope": {demoapi.OrdersScope}}, servertest.SvcClient)
	svc := svcResp.Str("access_token")

	tests := []struct {
		name   string
		token  string
		status int
		owner  string
	}{
		{name: "ok/user-token-with-api-read", token: web, status: 200},
		{name: "ok/service-token", token: svc, status: 200, owner: "svc"},
		{name: "fail/openid-is-not-api-access", token: spa, status: 403},
		{name: "fail/no-token", status: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.call(t, "GET", "/api/orders", tc.token)
			if r.status != tc.status {
				t.Fatalf("status: got %d, want %d (%s)", r.status, tc.status, r.body)
			}
			switch tc.status {
			case 200:
				orders, _ := r.json["orders"].([]any)
				if len(orders) == 0 || r.json["owner"] == "" || (tc.owner != "" && r.json["owner"] != tc.owner) {
					t.Errorf("orders: got %s", r.body)
				}
			case 403:
				want := `error="insufficient_scope", error_description="the access token lacks a required scope", scope="api:read"`
				if got := r.header.Get("WWW-Authenticate"); !strings.HasSuffix(got, want) {
					t.Errorf("WWW-Authenticate: got %s, want it to end with %s", got, want)
				}
			case 401:
				if got, want := r.header.Get("WWW-Authenticate"), `Bearer realm="`+apiAudience+`"`; got != want {
					t.Errorf("WWW-Authenticate: got %s, want %s", got, want)
				}
			}
		})
	}
}

// TestSignOutIsVisibleAtOnce: the demo API asks the provider about every
// token, so a token of a session that just ended is refused at once.
func TestSignOutIsVisibleAtOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	agent := f.env.Agent("alice")
	tok := f.env.CodeFlow(t, agent, servertest.Authz{}).AccessToken
	if r := f.call(t, "GET", "/api/profile", tok); r.status != 200 {
		t.Fatalf("before sign-out: %d %s", r.status, r.body)
	}
	f.env.SignOut(t, agent)
	r := f.call(t, "GET", "/api/profile", tok)
	if r.status != 401 || r.json["error"] != "invalid_token" {
		t.Fatalf("after sign-out: got %d %s, want 401 invalid_token", r.status, r.body)
	}
	if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, "no longer active") {
		t.Errorf("WWW-Authenticate: got %s, want it to say the token is no longer active", got)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tok := f.env.CodeFlow(t, f.env.Agent("alice"), servertest.Authz{}).AccessToken
	preflight := func(origin, method string) reply {
		return f.call(t, "OPTIONS", "/api/profile", "", "Origin", origin,
			"Access-Control-Request-Method", method, "Access-Control-Request-Headers", "authorization")
	}

	t.Run("ok/preflight", func(t *testing.T) {
		r := preflight(spaOrigin, "GET")
		want := map[string]string{
			"Access-Control-Allow-Origin":  spaOrigin,
			"Access-Control-Allow-Methods": "GET",
			"Access-Control-Allow-Headers": "Authorization, DPoP",
		}
		if r.status != 204 {
			t.Fatalf("status: got %d, want 204", r.status)
		}
		for k, v := range want {
			if got := r.header.Get(k); got != v {
				t.Errorf("%s: got %q, want %q", k, got, v)
			}
		}
		if got := r.header.Get("Access-Control-Allow-Credentials"); got != "" {
			t.Errorf("Access-Control-Allow-Credentials: got %q, want none", got)
		}
	})
	t.Run("fail/preflight-other-origin", func(t *testing.T) {
		r := preflight("https://evil.example", "GET")
		if r.status != 403 || r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("got %d with Allow-Origin %q, want 403 without", r.status, r.header.Get("Access-Control-Allow-Origin"))
		}
	})
	t.Run("fail/preflight-post", func(t *testing.T) {
		if r := preflight(spaOrigin, "POST"); r.status != 403 {
			t.Fatalf("got %d, want 403", r.status)
		}
	})
	t.Run("ok/request", func(t *testing.T) {
		r := f.call(t, "GET", "/api/profile", tok, "Origin", spaOrigin)
		if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != spaOrigin {
			t.Fatalf("got %d with Allow-Origin %q", r.status, r.header.Get("Access-Control-Allow-Origin"))
		}
		if r.header.Get("Access-Control-Allow-Credentials") != "" {
			t.Error("credentials allowed")
		}
	})
	t.Run("ok/refusal-readable-by-the-spa", func(t *testing.T) {
		r := f.call(t, "GET", "/api/profile", "", "Origin", spaOrigin)
		if r.status != 401 || r.header.Get("Access-Control-Allow-Origin") != spaOrigin ||
			r.header.Get("Access-Control-Expose-Headers") != "WWW-Authenticate, DPoP-Nonce" {
			t.Fatalf("got %d, Allow-Origin %q, Expose-Headers %q", r.status,
				r.header.Get("Access-Control-Allow-Origin"), r.header.Get("Access-Control-Expose-Headers"))
		}
	})
	t.Run("fail/request-other-origin", func(t *testing.T) {
		r := f.call(t, "GET", "/api/profile", tok, "Origin", "https://evil.example")
		if r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("Allow-Origin %q for another origin", r.header.Get("Access-Control-Allow-Origin"))
		}
	})
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if r := f.call(t, "GET", "/api/nothing", ""); r.status != 404 || r.json["error"] != "not_found" {
		t.Fatalf("got %d %s, want 404 not_found", r.status, r.body)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  demoapi.Config
		want string
	}{
		{name: "ok/local-checks-only", cfg: demoapi.Config{Issuer: "http://127.0.0.1:9000"}},
		{name: "fail/no-issuer", cfg: demoapi.Config{}, want: "Issuer"},
		{name: "fail/origin-with-path", cfg: demoapi.Config{Issuer: "http://127.0.0.1:9000", AllowedOrigins: []string{"http://127.0.0.1:9100/"}}, want: "origin"},
		{name: "fail/wildcard-origin", cfg: demoapi.Config{Issuer: "http://127.0.0.1:9000", AllowedOrigins: []string{"*"}}, want: "origin"},
		{name: "fail/secret-without-client", cfg: demoapi.Config{Issuer: "http://127.0.0.1:9000", IntrospectionSecret: "s"}, want: "ClientID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := demoapi.New(tc.cfg)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want an error about %q", err, tc.want)
			}
		})
	}
}
