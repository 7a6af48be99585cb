package bff_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/bff"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/demoapi"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/server/servertest"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
)

// The BFF's registration at the provider.
const (
	bffClientID = "bff"
	bffSecret   = "bff-secret-0123456789abcdef0123456789"
	// accessTTL is the provider's access-token lifetime in these tests.
	accessTTL = 5 * time.Minute
)

// stack is a real provider (servertest), the demo API and an echo server as
// upstreams, and a gateway in front of them, all on one fake clock.
type stack struct {
	env   *servertest.Env
	gw    *bff.Gateway
	store *sqlstore.Store
	cfg   bff.Config
	// URL is the gateway's public URL.
	URL string
	// APIURL is the demo API's.
	APIURL string

	mu sync.Mutex
	// upstream records the requests the upstreams received.
	upstream []*http.Request
	// backchannel receives the status of every back-channel logout the
	// gateway answered, so tests wait for the provider's notification
	// without sleeping.
	backchannel chan int
	// gateway is the gateway's listener, for tests that take it down.
	gateway *httptest.Server
}

type stackOptions struct {
	// bff adjusts the gateway's configuration before it starts.
	bff func(*bff.Config)
	// client adjusts the gateway's client registration at the provider.
	client func(c *config.Client, gatewayURL string)
	// server adjusts the gateway's http.Server before it starts (timeouts).
	server func(*http.Server)
	// log receives the gateway's logs (default: discarded).
	log *slog.Logger
}

func newStack(t *testing.T, opt stackOptions) *stack {
	t.Helper()
	s := &stack{backchannel: make(chan int, 16)}

	// The gateway and API listen first: the provider's config names them.
	var gwHandler, apiHandler http.Handler = http.NotFoundHandler(), http.NotFoundHandler()
	gwHS := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bff/backchannel-logout" {
			rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
			gwHandler.ServeHTTP(rec, r)
			select {
			case s.backchannel <- rec.status:
			default: // nobody is waiting for it
			}
			return
		}
		gwHandler.ServeHTTP(w, r)
	}))
	if opt.server != nil {
		opt.server(gwHS.Config)
	}
	gwHS.Start()
	t.Cleanup(gwHS.Close)
	apiHS := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.upstream = append(s.upstream, r.Clone(context.Background()))
		s.mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/echo/") {
			echo(w, r)
			return
		}
		apiHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(apiHS.Close)
	s.URL, s.APIURL = gwHS.URL, apiHS.URL
	s.gateway = gwHS

	pcfg := servertest.WithClients(servertest.Config())
	pcfg.Tokens.AccessTokenTTL = config.Duration(accessTTL)
	registration := config.Client{
		ClientID: bffClientID, ClientName: "BFF", ClientSecret: bffSecret, TokenEndpointAuthMethod: "client_secret_basic",
		RedirectURIs:           []string{s.URL + "/bff/callback"},
		PostLogoutRedirectURIs: []string{s.URL + "/"},
		BackchannelLogoutURI:   s.URL + "/bff/backchannel-logout",
		GrantTypes:             []string{"authorization_code", "refresh_token"},
		Scope:                  "openid profile email offline_access api:read",
		SkipConsent:            true, RequirePKCE: true,
	}
	if opt.client != nil {
		opt.client(&registration, s.URL)
	}
	pcfg.Clients = append(pcfg.Clients, registration)
	s.env = servertest.New(t, servertest.Options{Config: pcfg})

	api, err := demoapi.New(demoapi.Config{
		Issuer: s.env.URL, Now: s.env.Clock.Now,
		// Ask the provider about every token, so a revoked one is seen at once.
		IntrospectionClientID: "web", IntrospectionSecret: servertest.WebSecret,
	})
	if err != nil {
		t.Fatal(err)
	}
	apiHandler = api

	dir := t.TempDir()
	static := filepath.Join(dir, "www")
	os.MkdirAll(static, 0o700)
	os.WriteFile(filepath.Join(static, "index.html"), []byte("<!doctype html><title>app</title>"), 0o600)

	cfg := config.DefaultBFF()
	cfg.Listen = gwHS.Listener.Addr().String()
	cfg.PublicURL = s.URL
	cfg.Issuer = s.env.URL
	cfg.ClientID, cfg.ClientSecret = bffClientID, bffSecret
	cfg.Scope = "openid profile email offline_access api:read"
	cfg.Storage = "sqlite://" + filepath.Join(dir, "bff.db")
	cfg.KeyFile = filepath.Join(dir, "bff.key")
	cfg.StaticDir = static
	cfg.Routes = []config.BFFRoute{
		{Path: "/api/", Upstream: s.APIURL + "/api/"},
		{Path: "/echo/", Upstream: s.APIURL + "/echo/"},
	}
	if opt.bff != nil {
		opt.bff(&cfg)
	}
	s.cfg = cfg
	master, _, err := seal.LoadOrCreate(cfg.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	s.store, err = sqlstore.Open(t.Context(), cfg.Storage, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.store.Close() })
	s.gw, err = bff.New(t.Context(), cfg, bff.Deps{Store: s.store, Master: master, Clock: s.env.Clock, Log: opt.log})
	if err != nil {
		t.Fatal(err)
	}
	gwHandler = s.gw.Handler()
	return s
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// echo answers with what it received: the status asked for in ?status=, the
// request body, and the headers as X-Echo-* response headers.
func echo(w http.ResponseWriter, r *http.Request) {
	status := http.StatusOK
	if s := r.URL.Query().Get("status"); s != "" {
		json.Unmarshal([]byte(s), &status)
	}
	// HTTP/1 handlers must read the request body before writing the answer
	// (net/http: a write may end further reads), so echo is not full duplex.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Set-Cookie", "upstream=1; Path=/")
	w.WriteHeader(status)
	w.Write(body)
}

// browser is a person's browser at the gateway: the servertest agent (for
// the provider's pages) with its cookie jar.
type browser struct {
	s     *stack
	agent *servertest.Agent
}

func (s *stack) browser(username string) *browser {
	return &browser{s: s, agent: s.env.Agent(username)}
}

// do sends a request to the gateway; csrf adds X-CSRF: 1.
func (b *browser) do(t *testing.T, method, path string, csrf bool, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, b.s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if csrf {
		req.Header.Set("X-CSRF", "1")
	}
	resp, err := b.agent.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

// startLogin calls /bff/login and returns its answer.
func (b *browser) startLogin(t *testing.T, returnURL string) *http.Response {
	t.Helper()
	resp, _ := b.do(t, http.MethodGet, "/bff/login?returnUrl="+url.QueryEscape(returnURL), false, nil)
	return resp
}

// toCallback signs in at the provider from the gateway's redirect and
// returns the callback URL the provider sends the browser to.
func (b *browser) toCallback(t *testing.T, authorizeURL string) string {
	t.Helper()
	step, err := b.agent.Follow(authorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(step.Location, b.s.URL+"/bff/callback?") {
		t.Fatalf("provider sent the browser to %q (status %d), want the gateway's callback", step.Location, step.Status)
	}
	return step.Location
}

// login signs in through the gateway and returns where it finally sends the
// browser.
func (b *browser) login(t *testing.T, returnURL string) string {
	t.Helper()
	resp := b.startLogin(t, returnURL)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET /bff/login: got %d, want 302", resp.StatusCode)
	}
	cb := b.toCallback(t, resp.Header.Get("Location"))
	resp, body := b.get(t, cb)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET /bff/callback: got %d %q, want 302", resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

// get fetches an absolute URL with the browser.
func (b *browser) get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := b.agent.Client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

// sessionCookie returns the browser's gateway session cookie value ("" if none).
func (b *browser) sessionCookie() string {
	u, _ := url.Parse(b.s.URL)
	for _, c := range b.agent.Client.Jar.Cookies(u) {
		if c.Name == "castellan-bff" {
			return c.Value
		}
	}
	return ""
}

// user calls GET /bff/user.
func (b *browser) user(t *testing.T) (int, bff.UserInfo) {
	t.Helper()
	resp, body := b.do(t, http.MethodGet, "/bff/user", true, nil)
	var u bff.UserInfo
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &u); err != nil {
			t.Fatalf("GET /bff/user: %v in %q", err, body)
		}
	}
	return resp.StatusCode, u
}

// lastUpstream returns the last request an upstream received.
func (s *stack) lastUpstream(t *testing.T) *http.Request {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.upstream) == 0 {
		t.Fatal("no request reached an upstream")
	}
	return s.upstream[len(s.upstream)-1]
}

func (s *stack) upstreamCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.upstream)
}

// refreshRequests counts refresh-token grant requests that reached the
// provider's token endpoint, whatever their outcome, from its metrics.
func (s *stack) refreshRequests(t *testing.T) float64 {
	t.Helper()
	families, err := s.env.Server.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range families {
		if f.GetName() != "castellan_token_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "grant_type" && l.GetValue() == "refresh_token" {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// bearer returns the access token an upstream request carried.
func bearer(t *testing.T, r *http.Request) string {
	t.Helper()
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		t.Fatalf("upstream Authorization: got %q, want a bearer token", r.Header.Get("Authorization"))
	}
	return tok
}
