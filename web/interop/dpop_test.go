package interop_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/browsertest"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/demoapi"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

const oauth4webapi = "node_modules/oauth4webapi/build/index.js"

// TestOAuth4WebAPIDPoP runs oauth4webapi, a certified OAuth client library,
// in Chromium against Castellan with DPoP: code flow with dpop_jkt, userinfo,
// the demo API and a refresh, all with proofs of a WebCrypto key, and server
// nonces required so that the library's use_dpop_nonce handling runs too.
func TestOAuth4WebAPIDPoP(t *testing.T) {
	if _, err := os.Stat(oauth4webapi); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %v (run npm ci in web/interop)", oauth4webapi, err)
		}
		t.Skipf("interop test skipped: no %s; run `npm ci` in web/interop to install oauth4webapi", oauth4webapi)
	}
	b := browsertest.New(t)

	page := httptest.NewUnstartedServer(nil)
	origin := "http://" + page.Listener.Addr().String()
	cfg := servertest.Config()
	cfg.DPoP.RequireNonce = true
	cfg.Clients = []config.Client{{
		ClientID: "interop-dpop", TokenEndpointAuthMethod: "none",
		RedirectURIs: []string{origin + "/callback.html"}, AllowedOrigins: []string{origin},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scope: "openid profile offline_access",
		SkipConsent: true, IDTokenSignedResponseAlg: "ES256", DPoPBoundAccessTokens: true,
	}}
	env := servertest.New(t, servertest.Options{Config: cfg})
	browsertest.FollowRealTime(t, env.Clock)
	apiHandler, err := demoapi.New(demoapi.Config{Issuer: env.URL, AllowedOrigins: []string{origin}, HTTPClient: env.HTTP.Client()})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(apiHandler)
	t.Cleanup(api.Close)

	configJSON, _ := json.Marshal(map[string]string{
		"issuer": env.URL, "clientId": "interop-dpop", "scope": "openid profile offline_access", "api": api.URL,
	})
	files := map[string]string{"/dpop.html": "dpop.html", "/dpop.js": "dpop.js", "/oauth4webapi.js": oauth4webapi}
	page.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		body, err := os.ReadFile(name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if strings.HasSuffix(name, ".js") {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		} else {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Write(body)
	})
	page.Start()
	t.Cleanup(page.Close)

	tab := b.Tab("oauth4webapi")
	tab.Navigate(origin + "/dpop.html")
	tab.WaitText("#status", "ready", browsertest.Timeout)

	var start struct{ URL, JKT string }
	call(t, tab, `dpopInterop.start()`, &start)
	// The person signs in at Castellan (a scripted browser); the redirect
	// back carries the code, which the library redeems with its proof.
	last, err := env.Agent("alice").Follow(start.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(last.Location, origin+"/callback.html?") {
		t.Fatalf("authorization ended at %d %q", last.Status, last.Location)
	}

	type tokens struct {
		TokenType, AccessToken, RefreshToken, JKT, Sub string
		NonceRetries                                   int
	}
	var got tokens
	call(t, tab, `dpopInterop.redeem(`+jsString(last.Location)+`)`, &got)
	if !strings.EqualFold(got.TokenType, "DPoP") || got.JKT != start.JKT || got.Sub == "" || got.RefreshToken == "" {
		t.Fatalf("redeemed: %+v, want DPoP tokens bound to %s", got, start.JKT)
	}
	if got.NonceRetries != 1 {
		t.Errorf("nonce retries %d, want 1: the first token request has no nonce and must get use_dpop_nonce", got.NonceRetries)
	}

	var info map[string]any
	call(t, tab, `dpopInterop.userinfo()`, &info)
	if info["sub"] != got.Sub || info["name"] != "Alice Liddell" {
		t.Fatalf("userinfo: %v", info)
	}

	var profile struct {
		Status int
		Body   map[string]any
	}
	call(t, tab, `dpopInterop.api()`, &profile)
	if profile.Status != 200 || profile.Body["jkt"] != start.JKT || profile.Body["sub"] != got.Sub {
		t.Fatalf("demo API: %+v", profile)
	}

	// The tokens are useless without the key: the access token as a bearer
	// token from the same page, and the refresh token from elsewhere.
	var stolen struct {
		Status    int
		Challenge string
	}
	call(t, tab, `dpopInterop.asBearer()`, &stolen)
	if stolen.Status != 401 || !strings.Contains(stolen.Challenge, `error="invalid_token"`) {
		t.Fatalf("access token as bearer: %+v", stolen)
	}
	r := env.Post(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {got.RefreshToken}},
		servertest.ClientAuth{ID: "interop-dpop", Method: "none"})
	if r.Status != 400 || r.Code() != "invalid_dpop_proof" {
		t.Fatalf("refresh token without the key: %d %s", r.Status, r.Body)
	}

	before := got
	call(t, tab, `dpopInterop.refresh()`, &got)
	if got.AccessToken == before.AccessToken || got.RefreshToken == before.RefreshToken || got.JKT != start.JKT {
		t.Fatalf("refresh: %+v", got)
	}
	call(t, tab, `dpopInterop.userinfo()`, &info)
	if info["sub"] != got.Sub {
		t.Fatalf("userinfo after refresh: %v", info)
	}
}

// call evaluates a dpopInterop method (which answers {ok} or {error}) and
// decodes ok into out.
func call(t *testing.T, tab *browsertest.Tab, expr string, out any) {
	t.Helper()
	raw := browsertest.Eval[string](tab, expr)
	var r struct {
		OK    json.RawMessage `json:"ok"`
		Error string          `json:"error"`
	}
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		t.Fatalf("%s: %v (%s)", expr, err, raw)
	}
	if r.Error != "" {
		t.Fatalf("%s: %s\n%s", expr, r.Error, tab.Console())
	}
	if err := json.Unmarshal(r.OK, out); err != nil {
		t.Fatalf("%s: %v (%s)", expr, err, r.OK)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
