// Package interop_test checks that Castellan works with oidc-client-ts, the
// OpenID Connect library most single-page apps use, in headless Chromium:
// signinRedirect → signinCallback, signinSilent through a hidden iframe
// (prompt=none), and signinSilent with a rotating refresh token. dpop_test.go
// does the same for DPoP with oauth4webapi.
//
// The libraries come from npm (package.json, package-lock.json): `npm ci` in
// this directory (.ci/run does it). Without node_modules the test skips,
// except under CI=true, where it fails.
package interop_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/browsertest"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

func TestMain(m *testing.M) { browsertest.Main(m) }

const bundle = "node_modules/oidc-client-ts/dist/browser/oidc-client-ts.min.js"

func TestOIDCClientTS(t *testing.T) {
	if _, err := os.Stat(bundle); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %v (run npm ci in web/interop)", bundle, err)
		}
		t.Skipf("interop test skipped: no %s; run `npm ci` in web/interop to install oidc-client-ts", bundle)
	}
	b := browsertest.New(t)

	// The test page's origin must be known before the provider registers it.
	page := httptest.NewUnstartedServer(nil)
	origin := "http://" + page.Listener.Addr().String()
	cfg := servertest.Config()
	cfg.Tokens.AccessTokenTTL = config.Duration(time.Minute)
	cfg.Clients = []config.Client{{
		ClientID: "interop", ClientName: "oidc-client-ts", TokenEndpointAuthMethod: "none",
		RedirectURIs:           []string{origin + "/callback.html", origin + "/silent.html"},
		PostLogoutRedirectURIs: []string{origin + "/"},
		AllowedOrigins:         []string{origin},
		GrantTypes:             []string{"authorization_code", "refresh_token"},
		Scope:                  "openid profile email offline_access", SkipConsent: true,
	}}
	env := servertest.New(t, servertest.Options{Config: cfg})
	browsertest.FollowRealTime(t, env.Clock)
	page.Config.Handler = pageHandler(t, map[string]string{
		"issuer": env.URL, "clientId": "interop", "scope": "openid profile email offline_access",
	})
	page.Start()
	t.Cleanup(page.Close)

	tab := b.Tab("oidc-client-ts")
	tab.Navigate(origin + "/")
	tab.WaitText("#status", "ready", browsertest.Timeout)

	// signinRedirect → Castellan's sign-in page → signinCallback.
	browsertest.Eval[bool](tab, `(interop.signinRedirect(), true)`)
	tab.WaitURL(env.URL+"/", browsertest.Timeout)
	tab.SignIn("alice", servertest.Password)
	tab.WaitFor("back at the app after signinCallback", browsertest.Timeout, func() (bool, string) {
		if s := tab.Text("#status"); strings.HasPrefix(s, "callback failed") {
			t.Fatalf("signinCallback: %s", s)
		}
		ok, _ := browsertest.TryEval[bool](tab, `location.pathname === "/" && !!window.interop`)
		return ok, tab.Location()
	})
	signedIn := evalUser(t, tab, `interop.user()`)
	if signedIn.Sub == "" || signedIn.IDToken == "" || signedIn.RefreshToken == "" {
		t.Errorf("after signinCallback: got %+v, want sub, ID token and refresh token", signedIn)
	}
	codes := tokenRequests(t, env, "authorization_code")

	// signinSilent without a refresh token: prompt=none in a hidden iframe.
	iframe := evalResult(t, tab, `interop.silentIframe()`)
	if iframe.Error != "" || iframe.User == nil {
		t.Fatalf("signinSilent through the iframe: error %q", iframe.Error)
	}
	if iframe.User.AccessToken == signedIn.AccessToken || iframe.User.Sub != signedIn.Sub {
		t.Errorf("signinSilent through the iframe: got sub %q and the same token %v, want sub %q and a new token",
			iframe.User.Sub, iframe.User.AccessToken == signedIn.AccessToken, signedIn.Sub)
	}
	if got := tokenRequests(t, env, "authorization_code") - codes; got != 1 {
		t.Errorf("signinSilent through the iframe redeemed %d codes, want 1", got)
	}

	// signinSilent with the refresh token: it rotates.
	refreshes := tokenRequests(t, env, "refresh_token")
	for i := range 2 {
		before := evalUser(t, tab, `interop.user()`)
		r := evalResult(t, tab, `interop.silentRefresh()`)
		if r.Error != "" || r.User == nil {
			t.Fatalf("signinSilent %d with the refresh token: error %q", i+1, r.Error)
		}
		if r.User.AccessToken == before.AccessToken || r.User.RefreshToken == before.RefreshToken || r.User.RefreshToken == "" {
			t.Errorf("signinSilent %d with the refresh token: want a new access token and a rotated refresh token", i+1)
		}
	}
	if got := tokenRequests(t, env, "refresh_token") - refreshes; got != 2 {
		t.Errorf("two refreshes made %d refresh_token requests, want 2", got)
	}

	// Once the session at Castellan ends, the iframe answers login_required.
	logout := b.Tab("castellan")
	logout.Navigate(env.URL + "/end_session")
	logout.Click(`button[name=decision][value=logout]`)
	logout.WaitFor("the signed-out page", browsertest.Timeout, func() (bool, string) {
		text := logout.PageText()
		return strings.Contains(text, "signed out"), text
	})
	if r := evalResult(t, tab, `interop.silentIframe()`); r.Error != "login_required" {
		t.Errorf("signinSilent through the iframe after sign-out: got error %q, want login_required", r.Error)
	}
}

type userSummary struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
	IDToken      string `json:"idToken"`
	Sub          string `json:"sub"`
}

type result struct {
	User  *userSummary `json:"user"`
	Error string       `json:"error"`
}

func evalUser(t *testing.T, tab *browsertest.Tab, expr string) userSummary {
	t.Helper()
	var u userSummary
	raw := browsertest.Eval[string](tab, `(`+expr+`).then((v) => JSON.stringify(v))`)
	if raw != "null" {
		if err := json.Unmarshal([]byte(raw), &u); err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
	}
	return u
}

func evalResult(t *testing.T, tab *browsertest.Tab, expr string) result {
	t.Helper()
	var r result
	raw := browsertest.Eval[string](tab, `(`+expr+`).then((v) => JSON.stringify(v))`)
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return r
}

// pageHandler serves the test page, its script, the library's browser bundle
// and /config.json.
func pageHandler(t *testing.T, cfg map[string]string) http.Handler {
	configJSON, _ := json.Marshal(cfg)
	files := map[string]string{
		"/":                       "index.html",
		"/callback.html":          "callback.html",
		"/silent.html":            "silent.html",
		"/interop.js":             "interop.js",
		"/oidc-client-ts.min.js":  bundle,
		"/oidc-client-ts.min.map": bundle + ".map",
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/config.json" {
			w.Header().Set("Content-Type", "application/json")
			w.Write(configJSON)
			return
		}
		name, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		b, err := os.ReadFile(filepath.FromSlash(name))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		switch filepath.Ext(name) {
		case ".html":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
		case ".js":
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Write(b)
	})
}

// tokenRequests counts the token endpoint's requests of a grant type, from
// the provider's metrics.
func tokenRequests(t *testing.T, env *servertest.Env, grantType string) int {
	t.Helper()
	families, err := env.Server.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range families {
		if f.GetName() != "castellan_token_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "grant_type" && l.GetValue() == grantType {
					n += int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return n
}
