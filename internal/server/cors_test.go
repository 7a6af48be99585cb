package server_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// The browser-facing endpoints answer a client's allowed_origins only, never
// with credentials; the introspection endpoint is not browser-facing.
func TestCORS(t *testing.T) {
	env := servertest.New(t, servertest.Options{Config: servertest.WithClients(servertest.Config())})
	const spaOrigin = "http://127.0.0.1:9100" // the spa client's allowed origin
	const evil = "https://evil.example"

	t.Run("preflight", func(t *testing.T) {
		for _, tc := range []struct {
			path, origin string
			want         int
		}{
			{"/token", spaOrigin, http.StatusNoContent},
			{"/revoke", spaOrigin, http.StatusNoContent},
			{"/userinfo", spaOrigin, http.StatusNoContent},
			{"/jwks", spaOrigin, http.StatusNoContent},
			{"/.well-known/openid-configuration", spaOrigin, http.StatusNoContent},
			{"/token", evil, http.StatusForbidden},
			{"/userinfo", evil, http.StatusForbidden},
			{"/token", "", http.StatusForbidden},
			{"/introspect", spaOrigin, http.StatusMethodNotAllowed},
		} {
			resp := corsRequest(t, env, http.MethodOptions, tc.path, tc.origin, "", "")
			if resp.status != tc.want {
				t.Errorf("OPTIONS %s from %q: status %d, want %d", tc.path, tc.origin, resp.status, tc.want)
			}
			wantACAO := ""
			if tc.want == http.StatusNoContent {
				wantACAO = tc.origin
			}
			if got := resp.header.Get("Access-Control-Allow-Origin"); got != wantACAO {
				t.Errorf("OPTIONS %s from %q: Access-Control-Allow-Origin %q, want %q", tc.path, tc.origin, got, wantACAO)
			}
			if resp.header.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("OPTIONS %s: credentials allowed", tc.path)
			}
		}
	})

	spa := env.CodeFlow(t, env.Agent("alice"), servertest.Authz{})
	web := env.CodeFlow(t, env.Agent("alice"), servertest.Authz{Client: servertest.WebClient, RedirectURI: servertest.WebRedirect})

	t.Run("token", func(t *testing.T) {
		for _, tc := range []struct {
			name, origin string
			form         url.Values
			authz        string
			wantStatus   int
			wantACAO     string
		}{
			{"spa refresh from its origin", spaOrigin,
				url.Values{"grant_type": {"refresh_token"}, "refresh_token": {spa.RefreshToken}, "client_id": {"spa"}}, "",
				http.StatusOK, spaOrigin},
			{"spa from an unregistered origin", evil,
				url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {"spa"}}, "",
				http.StatusBadRequest, ""},
			{"svc from the spa's origin", spaOrigin,
				url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {servertest.SvcSecret}}, "",
				http.StatusBadRequest, ""},
			{"error before the client is known is readable", spaOrigin,
				url.Values{"client_id": {"spa"}}, "",
				http.StatusBadRequest, spaOrigin},
			{"no Origin: not a browser", "",
				url.Values{"grant_type": {"client_credentials"}, "client_id": {"svc"}, "client_secret": {servertest.SvcSecret}}, "",
				http.StatusOK, ""},
		} {
			resp := corsRequest(t, env, http.MethodPost, "/token", tc.origin, tc.form.Encode(), tc.authz)
			if resp.status != tc.wantStatus {
				t.Errorf("%s: status %d, want %d: %s", tc.name, resp.status, tc.wantStatus, resp.body)
			}
			if got := resp.header.Get("Access-Control-Allow-Origin"); got != tc.wantACAO {
				t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", tc.name, got, tc.wantACAO)
			}
			if resp.header.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("%s: credentials allowed on the token endpoint", tc.name)
			}
		}
	})

	t.Run("userinfo", func(t *testing.T) {
		for _, tc := range []struct {
			name, origin, token string
			wantStatus          int
			wantACAO            string
		}{
			{"spa token from the spa's origin", spaOrigin, spa.AccessToken, http.StatusOK, spaOrigin},
			{"web token from the spa's origin", spaOrigin, web.AccessToken, http.StatusForbidden, ""},
			{"spa token from an unregistered origin", evil, spa.AccessToken, http.StatusForbidden, ""},
			{"no Origin", "", web.AccessToken, http.StatusOK, ""},
		} {
			resp := corsRequest(t, env, http.MethodGet, "/userinfo", tc.origin, "", "Bearer "+tc.token)
			if resp.status != tc.wantStatus {
				t.Errorf("%s: status %d, want %d: %s", tc.name, resp.status, tc.wantStatus, resp.body)
			}
			if got := resp.header.Get("Access-Control-Allow-Origin"); got != tc.wantACAO {
				t.Errorf("%s: Access-Control-Allow-Origin %q, want %q", tc.name, got, tc.wantACAO)
			}
		}
	})

	t.Run("revoke", func(t *testing.T) {
		resp := corsRequest(t, env, http.MethodPost, "/revoke", evil,
			url.Values{"token": {spa.AccessToken}, "client_id": {"spa"}}.Encode(), "")
		if resp.status != http.StatusBadRequest || resp.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("revoke from an unregistered origin: %d, ACAO %q", resp.status, resp.header.Get("Access-Control-Allow-Origin"))
		}
		if r := env.Userinfo(t, http.MethodGet, spa.AccessToken); r.Status != http.StatusOK {
			t.Fatalf("the refused revocation revoked the token: userinfo %d", r.Status)
		}
		resp = corsRequest(t, env, http.MethodPost, "/revoke", spaOrigin,
			url.Values{"token": {spa.AccessToken}, "client_id": {"spa"}}.Encode(), "")
		if resp.status != http.StatusOK || resp.header.Get("Access-Control-Allow-Origin") != spaOrigin {
			t.Errorf("revoke from the spa's origin: %d, ACAO %q", resp.status, resp.header.Get("Access-Control-Allow-Origin"))
		}
	})
}

type corsReply struct {
	status int
	header http.Header
	body   string
}

func corsRequest(t *testing.T, env *servertest.Env, method, path, origin, form, authz string) corsReply {
	t.Helper()
	req, err := http.NewRequest(method, env.URL+path, strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if method == http.MethodOptions {
		req.Header.Set("Access-Control-Request-Method", http.MethodPost)
	}
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return corsReply{resp.StatusCode, resp.Header, string(b)}
}
