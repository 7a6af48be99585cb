package browser_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/castellan-auth/castellan/internal/bff"
	"github.com/castellan-auth/castellan/internal/browsertest"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/demo"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/server/servertest"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
)

// The demo app in its fourth mode, "BFF": picked on the app's own origin, it
// runs on the Backend-for-Frontend's origin, signs in through the real
// sign-in page, calls the API through the BFF while the BFF refreshes the
// short-lived access token (tokenTTL) behind the scenes, and signs out, which ends the BFF
// session and the session at Castellan. Throughout, the page holds no token:
// document.cookie is empty (the session cookie is HttpOnly), nothing the
// page stores holds one, and no response the browser got from the BFF's
// origin — every body, read with the DevTools Network domain, and every
// header — carries a JWT or any of the tokens the BFF received, with one
// exception: the redirect of /bff/end-session to Castellan's end-session
// endpoint, a top-level navigation no script can read, carries the ended
// session's ID token as id_token_hint (see check).
func TestBFF(t *testing.T) {
	s := newStack(t, stackOptions{bff: true, noEvents: true})
	bffURL := s.setup.BFF
	tab := browsertest.New(t).Tab("app")
	traffic := captureNetwork(tab, bffURL)

	// The picker on the app's own origin links to the BFF.
	a := s.app(tab)
	if browsertest.Eval[bool](tab, `document.getElementById("strategy-bff").disabled`) {
		t.Fatalf("the BFF strategy is not offered: %s", a.Text("#strategies"))
	}
	a.Click("#strategy-bff")
	a.WaitURL(bffURL+"/", browsertest.Timeout)
	a.WaitJS("the app in BFF mode", browsertest.Timeout, `window.demo?.strategy.id === "bff" && document.getElementById("status").dataset.state === "signed-out"`)
	// On the BFF's origin, the token strategies link back to the app's own.
	a.Click("#strategy-" + demo.StrategyIframe)
	a.WaitURL(s.setup.SPA+"/", browsertest.Timeout)
	a.WaitJS("the app back on its origin with the strategy picked there", browsertest.Timeout,
		`window.demo?.strategy.id === "`+demo.StrategyIframe+`" && location.search === ""`)
	a.Click("#strategy-bff")
	a.WaitURL(bffURL+"/", browsertest.Timeout)
	a.WaitJS("the app in BFF mode", browsertest.Timeout, `window.demo?.strategy.id === "bff" && document.getElementById("status").dataset.state === "signed-out"`)

	// Sign in through the BFF.
	a.Click("#sign-in")
	a.WaitURL(s.env.URL+"/", browsertest.Timeout)
	a.SignIn("alice", servertest.Password)
	a.WaitURL(bffURL+"/", browsertest.Timeout)
	a.waitState("signed-in", browsertest.Timeout)
	if got := a.Text("#status"); !strings.Contains(got, "Alice") {
		t.Errorf("status %q, want the name from /bff/user", got)
	}
	cookie := s.bffSessionCookie(tab)

	// The API answers through the BFF, and keeps answering while the BFF
	// refreshes the access token (tokenTTL) behind the scenes.
	a.WaitFor("two renewals by the BFF", renewalWait+2*tokenTTL, func() (bool, string) {
		n := browsertest.Eval[int](tab, `document.querySelectorAll('#renewal-log li[data-kind=renewed][data-via=bff]').length`)
		return n >= 2, fmt.Sprintf("%d renewals; API %q; log:\n%s", n, a.Text("#api-status"), a.Text("#renewal-log"))
	})
	ok := a.apiOK()
	a.WaitFor("more API answers after the renewals", renewalWait, func() (bool, string) {
		return a.apiOK() >= ok+2, a.Text("#api-status")
	})
	if state := browsertest.Eval[string](tab, `document.getElementById("api-status").dataset.state`); state != "ok" {
		t.Errorf("API status %q after renewals: %s", state, a.Text("#api-status"))
	}
	if body := a.Text("#api-body"); !strings.Contains(body, `"client_id": "`+demo.ClientBFF+`"`) {
		t.Errorf("API answer %s: want a token of client %s", body, demo.ClientBFF)
	}
	if n := s.tokenOutcomes("refresh_token")["issued"]; n < 2 {
		t.Errorf("Castellan issued %d refreshed tokens, want at least 2", n)
	}
	rec := s.bff.snapshot()
	if rec.refreshes < 2 || len(rec.upstreamTokens) < 3 {
		t.Errorf("the BFF made %d refresh requests and sent %d distinct access tokens upstream, want at least 2 and 3", rec.refreshes, len(rec.upstreamTokens))
	}
	for tok := range rec.upstreamTokens {
		if !rec.issued[tok] {
			t.Errorf("the API received an access token the provider did not issue to the BFF: %.12s…", tok)
		}
	}

	// Nothing the page can read holds a token.
	if got := browsertest.Eval[string](tab, `document.cookie`); got != "" {
		t.Errorf("document.cookie = %q, want empty: every cookie of the BFF is HttpOnly", got)
	}
	for _, c := range s.bffCookies(tab) {
		if !c.HTTPOnly || c.SameSite == network.CookieSameSiteNone {
			t.Errorf("cookie %s: HttpOnly %v, SameSite %q: want HttpOnly and same-site", c.Name, c.HTTPOnly, c.SameSite)
		}
	}
	stored := browsertest.Eval[string](tab, `JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])`)
	if what, found := rec.findToken(stored); found {
		t.Errorf("the page's storage holds %s: %s", what, stored)
	}
	if what, found := rec.findToken(a.PageText()); found {
		t.Errorf("the page shows %s", what)
	}

	// Sign out: the BFF session ends, then Castellan's (RP-initiated logout),
	// and the app is back on its start page.
	a.Click("#sign-out")
	a.WaitJS("the return from RP-initiated logout", browsertest.Timeout,
		`location.origin === `+jsString(bffURL)+` && document.getElementById("reason").dataset.reason === "rp_logout"`)
	if status := s.bffUser(cookie); status != http.StatusUnauthorized {
		t.Errorf("/bff/user with the session cookie from before sign-out: %d, want 401", status)
	}
	if got := browsertest.Eval[int](tab, `fetch("/bff/user", {headers: {"X-CSRF": "1"}}).then((r) => r.status)`); got != http.StatusUnauthorized {
		t.Errorf("/bff/user after sign-out: %d, want 401", got)
	}
	// Signing in again needs the password: Castellan's session is gone too.
	a.Click("#sign-in")
	a.WaitURL(s.env.URL+"/", browsertest.Timeout)
	a.WaitJS("Castellan's sign-in page", browsertest.Timeout, `!!document.querySelector("input[name=password]")`)

	// Every response of the BFF's origin, read by the browser's DevTools.
	seen := traffic.check(t, s.bff.snapshot(), s.env.URL)
	for _, want := range []string{"/bff/user", "/api/profile", "/config.json", "/app.js", "/bff/logout"} {
		if seen[want] == 0 {
			t.Errorf("no response body of %s was read (seen: %v): the check would prove nothing", want, seen)
		}
	}
}

// Signing out at Castellan in another tab ends the BFF session too: the
// provider sends the BFF a back-channel logout token, the BFF refuses the
// app's next API call, and the app shows that its BFF session ended. Access
// tokens live a minute here, so no refresh happens (whose failure would end
// the session too): the back-channel logout is what ends it.
func TestBFFBackchannelLogout(t *testing.T) {
	s := newStack(t, stackOptions{bff: true, noEvents: true, accessTTL: time.Minute})
	b := browsertest.New(t)
	a := &app{Tab: b.Tab("app"), s: s}
	a.Navigate(s.setup.BFF + "/")
	a.waitState("signed-out", browsertest.Timeout)
	a.Click("#sign-in")
	a.WaitURL(s.env.URL+"/", browsertest.Timeout)
	a.SignIn("alice", servertest.Password)
	a.WaitURL(s.setup.BFF+"/", browsertest.Timeout)
	a.waitState("signed-in", browsertest.Timeout)
	a.WaitFor("an API answer through the BFF", browsertest.Timeout, func() (bool, string) {
		return a.apiOK() >= 1, a.Text("#api-status")
	})
	cookie := s.bffSessionCookie(a.Tab)

	s.signOutAtCastellan(b.Tab("castellan"))
	a.waitState("signed-out", renewalWait)
	if got := a.reason(); got != "bff_session_ended" {
		t.Errorf("signed out with reason %q, want bff_session_ended (log: %s)", got, a.Text("#renewal-log"))
	}
	if status := s.bffUser(cookie); status != http.StatusUnauthorized {
		t.Errorf("/bff/user with the session cookie after sign-out at Castellan: %d, want 401", status)
	}
	if n := s.bff.snapshot().refreshes; n != 0 {
		t.Errorf("the BFF refreshed %d times: the session may have ended by a failed refresh, not the back-channel logout", n)
	}
}

// The demo app also runs behind a BFF that serves its files from a
// directory, as DESIGN.md's example configuration does (static_dir:
// ./web/demo): with no /config.json there, the app finds the BFF by its
// /bff/user and runs in BFF mode.
func TestBFFStaticDir(t *testing.T) {
	s := newStack(t, stackOptions{bff: true, bffStaticDir: "../../web/demo", noEvents: true})
	tab := browsertest.New(t).Tab("app")
	tab.Navigate(s.setup.BFF + "/")
	a := &app{Tab: tab, s: s}
	a.waitState("signed-out", browsertest.Timeout)
	if id := browsertest.Eval[string](tab, `window.demo.strategy.id`); id != "bff" {
		t.Fatalf("strategy %q, want bff", id)
	}
	a.Click("#sign-in")
	a.WaitURL(s.env.URL+"/", browsertest.Timeout)
	a.SignIn("alice", servertest.Password)
	a.WaitURL(s.setup.BFF+"/", browsertest.Timeout)
	a.waitState("signed-in", browsertest.Timeout)
	a.WaitFor("an API answer through the BFF", browsertest.Timeout, func() (bool, string) {
		return a.apiOK() >= 1, a.Text("#api-status")
	})
	if got := browsertest.Eval[string](tab, `document.cookie`); got != "" {
		t.Errorf("document.cookie = %q, want empty", got)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// -- the BFF of the stack ----------------------------------------------------------

// startBFF runs the demo's BFF gateway on ln, with its sessions in a SQLite
// file of its own, as castellan dev does; with staticDir, the gateway serves
// the app from there by itself. Its HTTP client records what the provider
// gave it and what it sent the API, so the test knows the real tokens it must
// never find in the browser.
func (s *stack) startBFF(ln net.Listener, staticDir string) {
	t := s.t
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	cfg := s.setup.BFFConfig("sqlite:"+filepath.Join(dir, "bff.db"), filepath.Join(dir, "bff.key"))
	cfg.Listen = ln.Addr().String()
	// A third of the access token's life before it expires.
	cfg.RefreshBefore = config.Duration(tokenTTL / 3)
	cfg.StaticDir = staticDir
	store, err := sqlstore.Open(ctx, cfg.Storage, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	master, _, err := seal.LoadOrCreate(cfg.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	api, _ := url.Parse(s.setup.API)
	s.bff = &bffRecorder{api: api.Host, issued: map[string]bool{}, idTokens: map[string]bool{}, upstreamTokens: map[string]bool{}}
	gw, err := bff.New(ctx, cfg, bff.Deps{
		Store: store, Master: master,
		HTTPClient: &http.Client{Transport: s.bff, Timeout: 10 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	if staticDir != "" {
		serveOn(t, ln, gw.Handler())
		return
	}
	serveOn(t, ln, s.setup.BFFHandler(gw.Handler()))
}

// bffCookies are the browser's cookies for the BFF's origin.
func (s *stack) bffCookies(tab *browsertest.Tab) []*network.Cookie {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(tab.Ctx, browsertest.Timeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{s.setup.BFF + "/"}})
	if err != nil {
		s.t.Fatalf("read the browser's cookies: %v", err)
	}
	return res.Cookies
}

// bffSessionCookie is the BFF's session cookie as the browser holds it.
func (s *stack) bffSessionCookie(tab *browsertest.Tab) *http.Cookie {
	s.t.Helper()
	for _, c := range s.bffCookies(tab) {
		if strings.HasSuffix(c.Name, "castellan-bff") {
			return &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	s.t.Fatalf("no BFF session cookie in the browser after sign-in")
	return nil
}

// bffUser is the status of GET /bff/user presented with cookie (from Go, as
// an attacker who copied the cookie would).
func (s *stack) bffUser(cookie *http.Cookie) int {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.setup.BFF+"/bff/user", nil)
	req.Header.Set("X-CSRF", "1")
	req.AddCookie(cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// bffRecorder is the BFF's HTTP transport: it passes every request on
// unchanged and notes the tokens in the provider's token responses and the
// access tokens the BFF sends to the API.
type bffRecorder struct {
	api string // host:port of the demo API

	mu             sync.Mutex
	refreshes      int
	issued         map[string]bool // every token the BFF received
	idTokens       map[string]bool // the ID tokens among them
	upstreamTokens map[string]bool // access tokens the API received
}

func (r *bffRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	grant := ""
	if req.Body != nil && req.Method == http.MethodPost {
		body, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		if form, err := url.ParseQuery(string(body)); err == nil {
			grant = form.Get("grant_type")
		}
	}
	if req.URL.Host == r.api {
		if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
			r.mu.Lock()
			r.upstreamTokens[tok] = true
			r.mu.Unlock()
		}
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || grant == "" {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var tok struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		IDToken      string `json:"id_token"`
	}
	json.Unmarshal(body, &tok)
	r.mu.Lock()
	defer r.mu.Unlock()
	if grant == "refresh_token" {
		r.refreshes++
	}
	for _, v := range []string{tok.AccessToken, tok.RefreshToken, tok.IDToken} {
		if v != "" {
			r.issued[v] = true
		}
	}
	if tok.IDToken != "" {
		r.idTokens[tok.IDToken] = true
	}
	return resp, nil
}

// recorded is a copy of what a bffRecorder saw.
type recorded struct {
	refreshes      int
	issued         map[string]bool
	idTokens       map[string]bool
	upstreamTokens map[string]bool
}

func (r *bffRecorder) snapshot() recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return recorded{refreshes: r.refreshes, issued: maps.Clone(r.issued), idTokens: maps.Clone(r.idTokens), upstreamTokens: maps.Clone(r.upstreamTokens)}
}

// jwtLike matches a JWS compact serialization with a JSON header ("eyJ" is
// base64url of `{"`).
var jwtLike = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.?`)

// findToken reports whether s holds a JWT or any token the BFF received.
func (r recorded) findToken(s string) (string, bool) {
	if m := jwtLike.FindString(s); m != "" {
		return fmt.Sprintf("a JWT (%.20s…)", m), true
	}
	for tok := range r.issued {
		if strings.Contains(s, tok) {
			return fmt.Sprintf("a token the BFF received (%.8s…)", tok), true
		}
	}
	return "", false
}

// -- the browser's view of the network ---------------------------------------------

// netLog keeps every response of one origin that a tab received, with its
// headers and, read through the DevTools Network domain as soon as it has
// loaded, its body.
type netLog struct {
	origin string
	tab    *browsertest.Tab

	mu      sync.Mutex
	entries []*netEntry
	byID    map[network.RequestID]*netEntry
	reads   sync.WaitGroup
}

type netEntry struct {
	url      string
	status   int64
	headers  string
	redirect bool // a redirect response: the browser followed it, no body reaches the page
	loaded   bool
	body     string
	bodyErr  error
}

func captureNetwork(tab *browsertest.Tab, origin string) *netLog {
	tab.T.Helper()
	l := &netLog{origin: origin, tab: tab, byID: map[network.RequestID]*netEntry{}}
	ctx, cancel := context.WithTimeout(tab.Ctx, browsertest.Timeout)
	defer cancel()
	// Keep bodies (up to 16 MiB in all) so that they can be read after load,
	// outside the renderer ("durable messages"): the page navigates away at
	// once after some responses (POST /bff/logout), and a body kept only in
	// the renderer is gone by the time it is asked for.
	total, per := int64(16<<20), int64(4<<20)
	if _, err := chromedp.Call(ctx, network.ConfigureDurableMessages, network.ConfigureDurableMessagesParams{MaxTotalBufferSize: &total, MaxResourceBufferSize: &per}); err != nil {
		tab.T.Fatalf("keep response bodies across navigations: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{MaxTotalBufferSize: &total, MaxResourceBufferSize: &per}); err != nil {
		tab.T.Fatalf("enable the Network domain: %v", err)
	}
	err := chromedp.Listen(tab.Ctx, func(ev any) {
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			if r := ev.RedirectResponse; r != nil && l.ours(r.URL) {
				l.add(&netEntry{url: r.URL, status: r.Status, headers: headerText(r.Headers), redirect: true})
			}
		case *network.EventResponseReceived:
			if r := ev.Response; r != nil && l.ours(r.URL) {
				e := &netEntry{url: r.URL, status: r.Status, headers: headerText(r.Headers)}
				l.mu.Lock()
				l.byID[ev.RequestID] = e
				l.mu.Unlock()
				l.add(e)
			}
		case *network.EventLoadingFinished:
			l.mu.Lock()
			e := l.byID[ev.RequestID]
			delete(l.byID, ev.RequestID)
			l.mu.Unlock()
			if e == nil {
				return
			}
			// Not here: a command inside the listener would deadlock.
			l.reads.Add(1)
			go l.readBody(ev.RequestID, e)
		}
	})
	if err != nil {
		tab.T.Fatalf("listen to the network: %v", err)
	}
	return l
}

func (l *netLog) ours(u string) bool { return strings.HasPrefix(u, l.origin+"/") }

func (l *netLog) add(e *netEntry) {
	l.mu.Lock()
	l.entries = append(l.entries, e)
	l.mu.Unlock()
}

func (l *netLog) readBody(id network.RequestID, e *netEntry) {
	defer l.reads.Done()
	ctx, cancel := context.WithTimeout(l.tab.Ctx, browsertest.Timeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetResponseBody, network.GetResponseBodyParams{RequestID: id})
	body := string(res.Body)
	if err == nil && res.Base64encoded {
		var b []byte
		b, err = base64.StdEncoding.DecodeString(body)
		body = string(b)
	}
	l.mu.Lock()
	e.loaded, e.body, e.bodyErr = true, body, err
	l.mu.Unlock()
}

func headerText(h network.Headers) string {
	var b strings.Builder
	for k, v := range h {
		fmt.Fprintf(&b, "%s: %v\n", k, v)
	}
	return b.String()
}

// check fails the test for every response of the origin whose headers or
// body hold a token, or whose body could not be read, and returns how many
// bodies it read per path.
//
// One token is let through, and only there: the Location of the redirect of
// GET /bff/end-session (logoutUrl) to the provider's end-session endpoint
// carries the ended session's ID token as id_token_hint (OIDC RP-Initiated
// Logout 1.0 §2), so that the provider ends its session without asking. The
// browser follows that redirect itself; no script can read it. It is an ID
// token of the session that has just ended (audience: the BFF's client, which
// no API accepts); no other token may be anywhere in that answer either.
func (l *netLog) check(t *testing.T, rec recorded, issuer string) map[string]int {
	t.Helper()
	l.reads.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]int{}
	for _, e := range l.entries {
		headers := e.headers
		if u, _ := url.Parse(e.url); u.Path == "/bff/end-session" && e.redirect {
			headers = withoutLogoutHint(t, headers, rec, issuer)
		}
		if what, found := rec.findToken(e.url + "\n" + headers); found {
			t.Errorf("%d %s: a header holds %s:\n%s", e.status, e.url, what, e.headers)
		}
		if e.redirect || !e.loaded {
			continue
		}
		if e.bodyErr != nil {
			t.Errorf("%d %s: body not readable: %v", e.status, e.url, e.bodyErr)
			continue
		}
		if what, found := rec.findToken(e.body); found {
			t.Errorf("%d %s: the body holds %s:\n%.2000s", e.status, e.url, what, e.body)
		}
		u, _ := url.Parse(e.url)
		seen[u.Path]++
	}
	return seen
}

// withoutLogoutHint returns the headers of the /bff/end-session redirect with
// the id_token_hint of its Location taken out, once it checked that the
// redirect leads to the provider and the hint is an ID token the BFF received.
func withoutLogoutHint(t *testing.T, headers string, rec recorded, issuer string) string {
	t.Helper()
	var location string
	for _, line := range strings.Split(headers, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Location") {
			location = strings.TrimSpace(v)
		}
	}
	u, err := url.Parse(location)
	if err != nil || !strings.HasPrefix(location, issuer+"/") {
		t.Errorf("GET /bff/end-session: redirect to %q, want the provider %s", location, issuer)
		return headers
	}
	hint := u.Query().Get("id_token_hint")
	if hint == "" {
		return headers
	}
	if !rec.idTokens[hint] {
		t.Errorf("GET /bff/end-session: id_token_hint is not an ID token the BFF received: %.20s…", hint)
		return headers
	}
	return strings.ReplaceAll(headers, hint, "(id_token_hint)")
}
