package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/server"
	"github.com/castellan-auth/castellan/internal/server/servertest"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
)

// TestOAuthAuthorizationServerMetadata reads the provider's metadata at both
// well-known URIs: RFC 8414 §3's /.well-known/oauth-authorization-server,
// where OAuth-only and MCP clients look first, answers the very document of
// /.well-known/openid-configuration, with the same caching and CORS.
func TestOAuthAuthorizationServerMetadata(t *testing.T) {
	env := servertest.New(t, servertest.Options{Config: servertest.WithClients(servertest.Config())})
	const origin = "http://127.0.0.1:9100" // the spa client's allowed origin
	get := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, env.URL+path, nil)
		req.Header.Set("Origin", origin)
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", http.MethodGet)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	oidcResp, oidcBody := get(http.MethodGet, "/.well-known/openid-configuration")
	oauthResp, oauthBody := get(http.MethodGet, "/.well-known/oauth-authorization-server")
	if oauthResp.StatusCode != http.StatusOK || oauthBody != oidcBody {
		t.Fatalf("oauth-authorization-server: %d\n%s\nwant 200 and the openid-configuration document\n%s", oauthResp.StatusCode, oauthBody, oidcBody)
	}
	for _, h := range []string{"Content-Type", "Cache-Control", "Access-Control-Allow-Origin"} {
		if got, want := oauthResp.Header.Get(h), oidcResp.Header.Get(h); got != want || want == "" {
			t.Errorf("%s: got %q, want %q as at openid-configuration", h, got, want)
		}
	}
	oidcPre, _ := get(http.MethodOptions, "/.well-known/openid-configuration")
	oauthPre, _ := get(http.MethodOptions, "/.well-known/oauth-authorization-server")
	if oauthPre.StatusCode != oidcPre.StatusCode || oauthPre.Header.Get("Access-Control-Allow-Origin") != origin {
		t.Errorf("preflight: %d %q, want %d and %s", oauthPre.StatusCode, oauthPre.Header.Get("Access-Control-Allow-Origin"), oidcPre.StatusCode, origin)
	}
	var md map[string]any
	if err := json.Unmarshal([]byte(oauthBody), &md); err != nil || md["issuer"] != env.URL {
		t.Fatalf("issuer %v (%v), want %s", md["issuer"], err, env.URL)
	}
}

// TestMetadataSigningAlgsForEveryJWTEndpoint checks RFC 8414 §2: an endpoint
// whose auth methods list private_key_jwt (or client_secret_jwt) must list
// the signing algorithms it accepts, never "none". The revocation and
// introspection endpoints lacked them.
func TestMetadataSigningAlgsForEveryJWTEndpoint(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	var md map[string]any
	getJSON(t, env.URL+"/.well-known/oauth-authorization-server", &md)
	strs := func(key string) []string {
		var out []string
		list, _ := md[key].([]any)
		for _, v := range list {
			out = append(out, v.(string))
		}
		return out
	}
	for _, ep := range []string{"token_endpoint", "revocation_endpoint", "introspection_endpoint"} {
		t.Run(ep, func(t *testing.T) {
			methods := strs(ep + "_auth_methods_supported")
			if !oauth.Contains(methods, oauth.AuthPrivateKeyJWT) {
				t.Fatalf("%s_auth_methods_supported %v: want private_key_jwt", ep, methods)
			}
			algs := strs(ep + "_auth_signing_alg_values_supported")
			if len(algs) == 0 || oauth.Contains(algs, "none") || !slices.Equal(algs, oauth.ClientAssertionAlgorithms) {
				t.Fatalf("%s_auth_signing_alg_values_supported %v, want %v", ep, algs, oauth.ClientAssertionAlgorithms)
			}
		})
	}
}

// TestOAuthMetadataForIssuerWithPath: for an issuer with a path, RFC 8414 §3
// puts the well-known segment between the host and the path; the
// path-appended form is served as well, as OpenID Connect Discovery does.
func TestOAuthMetadataForIssuerWithPath(t *testing.T) {
	dir := t.TempDir()
	cfg := servertest.Config()
	cfg.Issuer = "https://id.example/tenant"
	cfg.Storage = "sqlite://" + filepath.Join(dir, "castellan.db")
	cfg.KeyFile = filepath.Join(dir, "master.key")
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
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/.well-known/oauth-authorization-server/tenant", http.StatusOK},
		{"/tenant/.well-known/oauth-authorization-server", http.StatusOK},
		{"/tenant/.well-known/openid-configuration", http.StatusOK},
		{"/.well-known/oauth-authorization-server", http.StatusNotFound},
		{"/.well-known/oauth-authorization-server/other", http.StatusNotFound},
	} {
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "https://id.example"+c.path, nil))
		if w.Code != c.status {
			t.Errorf("GET %s: %d, want %d", c.path, w.Code, c.status)
			continue
		}
		var md map[string]any
		if c.status == http.StatusOK && (json.Unmarshal(w.Body.Bytes(), &md) != nil || md["issuer"] != cfg.Issuer || md["token_endpoint"] != cfg.Issuer+"/token") {
			t.Errorf("GET %s: %s", c.path, w.Body)
		}
	}
}
