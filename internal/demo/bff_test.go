package demo_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/bff"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/demo"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/server/servertest"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
	webdemo "github.com/castellan-auth/castellan/web/demo"
)

func bffSetup() demo.Setup {
	s := setup()
	s.BFF = "http://127.0.0.1:9200"
	s.BFFSecret = "demo-bff-secret-0123456789abcdef0123456789"
	return s
}

// With a BFF, the demo registers its confidential client as DESIGN.md's BFF
// section asks, offers it as the fourth strategy, and builds a gateway
// configuration that validates.
func TestBFFSetup(t *testing.T) {
	s := bffSetup()
	cfg := config.Default()
	cfg.Clients = s.Clients()
	if problems := cfg.Validate(); len(problems) > 0 {
		t.Fatalf("the demo's clients with a BFF are not a valid config: %v", problems)
	}
	var c config.Client
	for _, cl := range cfg.Clients {
		if cl.ClientID == demo.ClientBFF {
			c = cl
		}
	}
	if c.ClientID == "" {
		t.Fatalf("no client %s among %d", demo.ClientBFF, len(cfg.Clients))
	}
	if c.TokenEndpointAuthMethod != "client_secret_basic" || c.ClientSecret != s.BFFSecret || !c.SkipConsent {
		t.Errorf("BFF client: auth %q, secret set %v, skip_consent %v", c.TokenEndpointAuthMethod, c.ClientSecret != "", c.SkipConsent)
	}
	eq := func(what string, got, want []string) {
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("BFF client %s: %v, want %v", what, got, want)
		}
	}
	eq("redirect_uris", c.RedirectURIs, []string{s.BFF + "/bff/callback"})
	eq("post_logout_redirect_uris", c.PostLogoutRedirectURIs, []string{s.BFF + "/"})
	eq("grant_types", c.GrantTypes, []string{oauth.GrantAuthorizationCode, oauth.GrantRefreshToken})
	if c.BackchannelLogoutURI != s.BFF+"/bff/backchannel-logout" {
		t.Errorf("BFF client backchannel_logout_uri %q", c.BackchannelLogoutURI)
	}
	if len(c.AllowedOrigins) != 0 {
		t.Errorf("BFF client allowed_origins %v: the browser never calls the provider with its tokens", c.AllowedOrigins)
	}

	gw := s.BFFConfig("sqlite:"+filepath.Join(t.TempDir(), "bff.db"), filepath.Join(t.TempDir(), "bff.key"))
	if problems := gw.Validate(); len(problems) > 0 {
		t.Fatalf("the demo's gateway config is not valid: %v", problems)
	}
	asked, _ := oauth.ParseScope(gw.Scope)
	allowed, _ := oauth.ParseScope(c.Scope)
	for _, sc := range asked {
		if !oauth.Contains(allowed, sc) {
			t.Errorf("the gateway asks for scope %q, its client allows %q", sc, c.Scope)
		}
	}
	if oauth.Contains(asked, "offline_access") {
		// Its refresh token would outlive the sign-out at Castellan.
		t.Errorf("gateway scope %q: want no offline_access", gw.Scope)
	}
	if gw.Listen != "127.0.0.1:9200" || gw.PublicURL != s.BFF || gw.ClientID != demo.ClientBFF {
		t.Errorf("gateway: listen %q, public_url %q, client_id %q", gw.Listen, gw.PublicURL, gw.ClientID)
	}

	main := s.SPAConfig()
	if last := main.Strategies[len(main.Strategies)-1]; last.ID != demo.StrategyBFF || last.Kind != webdemo.KindBFF || last.URL != s.BFF+"/" {
		t.Errorf("the app's fourth strategy: %+v, want the BFF at %s/", last, s.BFF)
	}
	on := s.BFFSPAConfig()
	if on.API != s.BFF || on.Home != s.SPA || on.DefaultStrategy != demo.StrategyBFF {
		t.Errorf("the app on the BFF: api %q, home %q, default %q; want the BFF, the app's origin, bff", on.API, on.Home, on.DefaultStrategy)
	}
}

// On the BFF's origin the gateway answers its own paths and the API route,
// and the demo app (with its /config.json) everything else; a sign-in goes to
// the provider as the demo's BFF client.
func TestBFFHandler(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := bffSetup()
	s.BFF = "http://" + ln.Addr().String()
	cfg := servertest.Config()
	cfg.Clients = s.Clients()
	env := servertest.New(t, servertest.Options{Config: cfg})
	s.Issuer = env.URL

	dir := t.TempDir()
	gcfg := s.BFFConfig("sqlite:"+filepath.Join(dir, "bff.db"), filepath.Join(dir, "bff.key"))
	store, err := sqlstore.Open(context.Background(), gcfg.Storage, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	master, _, err := seal.LoadOrCreate(gcfg.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := bff.New(context.Background(), gcfg, bff.Deps{Store: store, Master: master})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(s.BFFHandler(gw.Handler()))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, csrf bool) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.BFF+path, nil)
		if csrf {
			req.Header.Set("X-CSRF", "1")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	resp := get("/config.json", false)
	var app webdemo.Config
	if err := json.NewDecoder(resp.Body).Decode(&app); err != nil || app.Home != s.SPA || app.API != s.BFF {
		t.Errorf("/config.json: %v %+v, want the app's config on the BFF", err, app)
	}
	if resp := get("/bff.js", false); resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("/bff.js: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, path := range []string{"/bff/user", "/api/profile"} {
		if resp := get(path, true); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without a session: %d, want the gateway's 401", path, resp.StatusCode)
		}
	}
	if resp := get("/healthz", false); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %d, want the gateway's 200", resp.StatusCode)
	}

	resp = get("/bff/login?returnUrl=/", false)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), env.URL+"/") {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("/bff/login: %d to %q, want a redirect to the provider: %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	q := loc.Query()
	if q.Get("client_id") != demo.ClientBFF || q.Get("redirect_uri") != s.BFF+"/bff/callback" || q.Get("code_challenge_method") != "S256" {
		t.Errorf("authorization request %s: want client %s, redirect to the BFF's callback, PKCE S256", loc, demo.ClientBFF)
	}
	// The provider accepts it: after the sign-in (and no consent page, a
	// first-party client) it sends the browser to the BFF's callback.
	back, err := env.Agent("alice").Follow(loc.String())
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := url.Parse(back.Location)
	if cb == nil || !strings.HasPrefix(back.Location, s.BFF+"/bff/callback?") || cb.Query().Get("code") == "" || cb.Query().Get("state") != q.Get("state") {
		t.Errorf("after sign-in the provider answered %d to %q, want the BFF's callback with a code\n%.500s", back.Status, back.Location, back.Body)
	}
}
