package browser_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/castellan-auth/castellan/internal/browsertest"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/demo"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

func TestMain(m *testing.M) { browsertest.Main(m) }

// Timing of the stack. Browsers judge expiry by their own clock, so the
// provider's fake clock follows the real one, and tokens are short-lived
// enough that renewals come every few seconds.
const (
	tokenTTL = 5 * time.Second
	// A renewal comes at 3/4 of the lifetime; two of them, with slack for a
	// slow machine.
	renewalWait = 4 * tokenTTL
)

type stackOptions struct {
	// crossSite puts the app on http://localhost:…, another site than the
	// provider's http://127.0.0.1:…, where the SameSite=Lax session cookie
	// does not reach an iframe.
	crossSite bool
	// noEvents turns the app's session-ended stream off, so only a failed
	// renewal tells it the session ended.
	noEvents bool
	// silentCallbackPage makes silent renewals come back through the app's
	// callback page even where the provider offers web_message.
	silentCallbackPage bool
	// accessTTL overrides the access-token lifetime (default tokenTTL), for
	// tests that must see no renewal while they run.
	accessTTL time.Duration
	// bff adds the demo's Backend-for-Frontend on an origin of its own (see
	// bff_test.go).
	bff bool
	// bffStaticDir makes the BFF serve the app from this directory
	// (static_dir, no /config.json) instead of the demo's handler.
	bffStaticDir string
}

// stack is a provider, the demo app and the demo API, each on a port of its
// own on loopback, as castellan dev runs them.
type stack struct {
	t     *testing.T
	env   *servertest.Env
	setup demo.Setup
	bff   *bffRecorder // with stackOptions.bff
}

func newStack(t *testing.T, opt stackOptions) *stack {
	t.Helper()
	browsertest.Path(t) // skip before starting anything without a browser
	spaLn := listen(t)
	apiLn := listen(t)
	spaHost := "127.0.0.1"
	if opt.crossSite {
		spaHost = "localhost"
	}
	setup := demo.Setup{
		SPA:                fmt.Sprintf("http://%s:%d", spaHost, spaLn.Addr().(*net.TCPAddr).Port),
		API:                "http://" + apiLn.Addr().String(),
		APISecret:          "demo-api-secret-for-browser-tests-0123456789",
		APIPoll:            time.Second,
		NoSessionEvents:    opt.noEvents,
		SilentCallbackPage: opt.silentCallbackPage,
	}
	var bffLn net.Listener
	if opt.bff {
		bffLn = listen(t)
		setup.BFF = "http://" + bffLn.Addr().String()
		setup.BFFSecret = "demo-bff-secret-for-browser-tests-0123456789"
	}
	cfg := servertest.Config()
	cfg.Tokens.AccessTokenTTL = config.Duration(tokenTTL)
	if opt.accessTTL > 0 {
		cfg.Tokens.AccessTokenTTL = config.Duration(opt.accessTTL)
	}
	cfg.Clients = setup.Clients()
	env := servertest.New(t, servertest.Options{Config: cfg})
	browsertest.FollowRealTime(t, env.Clock)
	setup.Issuer = env.URL

	serveOn(t, spaLn, setup.SPAHandler())
	api, err := setup.APIHandler(nil)
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, apiLn, api)
	s := &stack{t: t, env: env, setup: setup}
	if opt.bff {
		s.startBFF(bffLn, opt.bffStaticDir)
	}
	return s
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func serveOn(t *testing.T, ln net.Listener, h http.Handler) {
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
}

// tokenRequests counts the token endpoint's requests of grantType, whatever
// their outcome.
func (s *stack) tokenRequests(grantType string) int {
	n := 0
	for _, c := range s.tokenOutcomes(grantType) {
		n += c
	}
	return n
}

// tokenOutcomes counts the token endpoint's requests of grantType by outcome
// ("issued" or an OAuth error code), from one reading of the metrics.
func (s *stack) tokenOutcomes(grantType string) map[string]int {
	s.t.Helper()
	families, err := s.env.Server.Metrics.Registry.Gather()
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string]int{}
	for _, f := range families {
		if f.GetName() != "castellan_token_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if label(m, "grant_type") == grantType {
				out[label(m, "outcome")] += int(m.GetCounter().GetValue())
			}
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// offersWebMessage reports whether the provider's discovery lists
// response_mode=web_message.
func (s *stack) offersWebMessage() bool {
	s.t.Helper()
	resp, err := http.Get(s.env.URL + "/.well-known/openid-configuration")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var meta struct {
		ResponseModes []string `json:"response_modes_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&meta); err != nil {
		s.t.Fatal(err)
	}
	return slices.Contains(meta.ResponseModes, "web_message")
}

// app drives the demo app in one tab.
type app struct {
	*browsertest.Tab
	s *stack
}

func (s *stack) app(tab *browsertest.Tab) *app {
	a := &app{Tab: tab, s: s}
	a.Navigate(s.setup.SPA + "/")
	a.WaitJS("the app to start", browsertest.Timeout, `["signed-in", "signed-out"].includes(document.getElementById("status").dataset.state)`)
	return a
}

// pick chooses a strategy (while signed out).
func (a *app) pick(strategy string) {
	a.T.Helper()
	a.Click("#strategy-" + strategy)
	a.WaitJS("strategy "+strategy, browsertest.Timeout, fmt.Sprintf(`window.demo?.strategy.id === %q`, strategy))
}

// signIn signs in through Castellan's real sign-in page.
func (a *app) signIn() {
	a.T.Helper()
	a.Click("#sign-in")
	a.WaitURL(a.s.env.URL+"/", browsertest.Timeout)
	a.SignIn("alice", servertest.Password)
	a.WaitFor("signed in", browsertest.Timeout, func() (bool, string) {
		// Signed in means back on the app's page: the callback page says
		// signed-in too, just before it navigates there, and a click then
		// would be lost in the navigation.
		v, err := browsertest.TryEval[string](a.Tab, `(() => {
			const cb = document.getElementById("callback-status");
			if (cb) return cb.dataset.state === "error" ? "error" : "callback";
			return document.getElementById("status")?.dataset.state || "";
		})()`)
		if err != nil {
			return false, err.Error() // navigating
		}
		if v == "error" {
			a.T.Fatalf("sign-in failed: %s\n%s", a.Text("#callback-status"), a.Console())
		}
		return v == "signed-in", v
	})
	if u := a.Location(); !strings.HasPrefix(u, a.s.setup.SPA+"/") {
		a.T.Fatalf("after sign-in: at %s, want the app", u)
	}
}

func (a *app) state() string {
	return browsertest.Eval[string](a.Tab, `document.getElementById("status").dataset.state`)
}

func (a *app) waitState(want string, timeout time.Duration) {
	a.T.Helper()
	a.WaitJS("app state "+want, timeout, fmt.Sprintf(`document.getElementById("status").dataset.state === %q`, want))
}

// reason is why the app shows signed out (an error code, or "").
func (a *app) reason() string {
	return browsertest.Eval[string](a.Tab, `document.getElementById("reason").dataset.reason || ""`)
}

// jti is the id of the access token the app holds.
func (a *app) jti() string {
	return browsertest.Eval[string](a.Tab, `(window.demo?.renewal.tokens && JSON.parse(atob(window.demo.renewal.tokens.accessToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).jti) || ""`)
}

// count returns how many renewal-log entries of a kind the app shows.
func (a *app) count(kind string) int {
	return browsertest.Eval[int](a.Tab, fmt.Sprintf(`document.querySelectorAll('#renewal-log li[data-kind=%q]').length`, kind))
}

// countVia returns how many successful renewals went by way via.
func (a *app) countVia(via string) int {
	return browsertest.Eval[int](a.Tab, fmt.Sprintf(`document.querySelectorAll('#renewal-log li[data-kind=renewed][data-via=%q]').length`, via))
}

// apiOK is how many API calls succeeded.
func (a *app) apiOK() int {
	return browsertest.Eval[int](a.Tab, `Number(document.getElementById("api-status").dataset.okCount || 0)`)
}

// waitRenewals waits until the app logged n successful renewals.
func (a *app) waitRenewals(n int) {
	a.T.Helper()
	a.WaitFor(fmt.Sprintf("%d renewals", n), renewalWait+time.Duration(n)*tokenTTL, func() (bool, string) {
		got := a.count("renewed")
		failed := a.Text("#renewal-log")
		return got >= n, fmt.Sprintf("%d renewals; log:\n%s", got, failed)
	})
}

// signOutAtCastellan ends the browser's session at Castellan from another
// tab, the way a person would: the end-session endpoint without a hint asks
// for confirmation.
func (s *stack) signOutAtCastellan(tab *browsertest.Tab) {
	s.t.Helper()
	tab.Navigate(s.env.URL + "/end_session")
	tab.Click(`button[name=decision][value=logout]`)
	tab.WaitFor("the signed-out page", browsertest.Timeout, func() (bool, string) {
		text := tab.PageText()
		return strings.Contains(text, "signed out"), text
	})
}
