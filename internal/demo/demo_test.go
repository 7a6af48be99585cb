package demo_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/demo"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/server/servertest"
	webdemo "github.com/castellan-auth/castellan/web/demo"
)

func setup() demo.Setup {
	return demo.Setup{
		Issuer: "http://127.0.0.1:9000", SPA: "http://127.0.0.1:9100", API: "http://127.0.0.1:9101",
		APISecret: "demo-api-secret-0123456789abcdef0123456789",
	}
}

// The demo's clients are a valid provider configuration, and every token
// strategy of the app names a client that allows what the app asks for.
func TestClients(t *testing.T) {
	s := setup()
	cfg := config.Default()
	cfg.Clients = s.Clients()
	if problems := cfg.Validate(); len(problems) > 0 {
		t.Fatalf("the demo's clients are not a valid config: %v", problems)
	}
	clients := map[string]config.Client{}
	for _, c := range cfg.Clients {
		clients[c.ClientID] = c
	}
	for _, st := range s.Strategies() {
		c, ok := clients[st.ClientID]
		if !ok {
			t.Errorf("strategy %s: client %q not registered", st.ID, st.ClientID)
			continue
		}
		if !oauth.Contains(c.ResponseTypes, st.ResponseType) {
			t.Errorf("strategy %s: response type %q not in %v", st.ID, st.ResponseType, c.ResponseTypes)
		}
		allowed, _ := oauth.ParseScope(c.Scope)
		asked, _ := oauth.ParseScope(st.Scope)
		for _, sc := range asked {
			if !oauth.Contains(allowed, sc) {
				t.Errorf("strategy %s asks for scope %q, client allows %q", st.ID, sc, c.Scope)
			}
		}
		for _, want := range []string{s.SPA + "/callback.html", s.SPA + "/silent.html"} {
			if !oauth.Contains(c.RedirectURIs, want) {
				t.Errorf("client %s: redirect URI %s not registered", c.ClientID, want)
			}
		}
		if !oauth.Contains(c.AllowedOrigins, s.SPA) || !oauth.Contains(c.PostLogoutRedirectURIs, s.SPA+"/") {
			t.Errorf("client %s: origin or post-logout URI of the app missing", c.ClientID)
		}
		refresh := oauth.Contains(c.GrantTypes, oauth.GrantRefreshToken)
		if refresh != (st.Method == webdemo.MethodRefresh) {
			t.Errorf("strategy %s (method %s): client %s grant types %v", st.ID, st.Method, c.ClientID, c.GrantTypes)
		}
	}
	if implicit := clients[demo.ClientImplicit]; !oauth.Contains(implicit.GrantTypes, oauth.GrantImplicit) {
		t.Errorf("the implicit client does not opt in to the implicit grant: %v", implicit.GrantTypes)
	}
}

func TestSPAConfig(t *testing.T) {
	s := setup()
	s.Extra = []webdemo.Strategy{{ID: "bff", Kind: webdemo.KindBFF, Title: "BFF", URL: "http://127.0.0.1:9200/"}}
	c := s.SPAConfig()
	if c.Issuer != s.Issuer || c.API != s.API || c.APIPollSeconds != 5 || c.ActivitySeconds != 60 || c.RenewAt != 0.75 || !c.SessionEvents {
		t.Errorf("defaults: got %+v", c)
	}
	if n := len(c.Strategies); n != 4 || c.Strategies[3].ID != "bff" {
		t.Errorf("got %d strategies, want the three token strategies and the extra one", n)
	}
	s.NoSessionEvents, s.APIPoll, s.Activity, s.RenewAt = true, 2*time.Second, 10*time.Second, 0.5
	c = s.SPAConfig()
	if c.SessionEvents || c.APIPollSeconds != 2 || c.ActivitySeconds != 10 || c.RenewAt != 0.5 {
		t.Errorf("tuned: got %+v", c)
	}
}

// Serve runs the app and the API against a real provider: the app's config
// names it, and the API refuses a call without a token with an RFC 6750
// challenge the app may read (CORS).
func TestServe(t *testing.T) {
	spaLn, _ := net.Listen("tcp", "127.0.0.1:0")
	apiLn, _ := net.Listen("tcp", "127.0.0.1:0")
	s := setup()
	s.SPA = "http://" + spaLn.Addr().String()
	s.API = "http://" + apiLn.Addr().String()
	cfg := servertest.Config()
	cfg.Clients = s.Clients()
	env := servertest.New(t, servertest.Options{Config: cfg})
	s.Issuer = env.URL

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, spaLn, apiLn, slog.New(slog.DiscardHandler)) }()

	resp, err := http.Get(s.SPA + "/config.json")
	if err != nil {
		t.Fatal(err)
	}
	var got webdemo.Config
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if got.Issuer != env.URL {
		t.Errorf("config.json issuer %q, want %q", got.Issuer, env.URL)
	}

	req, _ := http.NewRequest(http.MethodGet, s.API+"/api/profile", nil)
	req.Header.Set("Origin", s.SPA)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("API without a token: got %d %q, want 401 with a Bearer challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != s.SPA {
		t.Errorf("API CORS: Access-Control-Allow-Origin %q, want %q", got, s.SPA)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop")
	}
}

// TestAppTokensAreForTheDemoAPI signs in with the app's client: its access
// token names the demo API, which takes it, and Castellan's userinfo takes
// it too (it was issued with openid). A token of a client without the
// API's audience (the API's own client credentials, which name the issuer)
// is refused by the API.
func TestAppTokensAreForTheDemoAPI(t *testing.T) {
	s := setup()
	cfg := servertest.Config()
	cfg.Clients = s.Clients()
	env := servertest.New(t, servertest.Options{Config: cfg})
	s.Issuer = env.URL
	h, err := s.APIHandler(env.HTTP.Client())
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(h)
	t.Cleanup(api.Close)
	call := func(token string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, api.URL+"/api/profile", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	app := env.CodeFlow(t, env.Agent("alice"), servertest.Authz{Client: servertest.ClientAuth{ID: demo.ClientIframe, Method: oauth.AuthNone},
		RedirectURI: s.SPA + "/callback.html", Scope: "openid profile"})
	if aud := servertest.Claims(app.AccessToken)["aud"]; aud != s.APIAudience() || aud != s.API {
		t.Errorf("app token aud %v, want the demo API %s", aud, s.API)
	}
	if resp := call(app.AccessToken); resp.StatusCode != http.StatusOK {
		t.Errorf("demo API with the app's token: %d %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if r := env.Userinfo(t, http.MethodGet, app.AccessToken); r.Status != http.StatusOK {
		t.Errorf("userinfo with the app's token: %d %s", r.Status, r.Body)
	}

	machine := env.Post(t, "/token", url.Values{"grant_type": {"client_credentials"}},
		servertest.ClientAuth{ID: demo.ClientAPI, Secret: s.APISecret, Method: oauth.AuthClientSecretBasic})
	if machine.Status != http.StatusOK {
		t.Fatalf("client credentials: %d %s", machine.Status, machine.Body)
	}
	resp := call(machine.Str("access_token"))
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "not meant for this API") {
		t.Errorf("demo API with a token for the issuer: %d %q, want 401 not meant for this API", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}
