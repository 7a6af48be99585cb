package bff_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/bff"
	"github.com/castellan-auth/castellan/internal/demoapi"
)

// The whole life of a session: sign-in, who am I, API calls with a token
// that is refreshed behind the scenes, sign-out at the gateway and at the
// provider.
func TestFlow(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.browser("alice")

	if got := b.login(t, "/orders?page=2"); got != s.URL+"/orders?page=2" {
		t.Fatalf("after sign-in: got redirect %q, want %q", got, s.URL+"/orders?page=2")
	}

	status, u := b.user(t)
	if status != http.StatusOK {
		t.Fatalf("GET /bff/user: got %d, want 200", status)
	}
	if u.Claims["name"] != "Alice Liddell" || u.Claims["email"] != "alice@example.com" || u.Claims["sub"] == nil || u.Claims["sid"] == nil {
		t.Errorf("GET /bff/user claims: got %v, want alice's sub, sid, name and email", u.Claims)
	}
	if _, ok := u.Claims["nonce"]; ok {
		t.Errorf("GET /bff/user claims: got a nonce, want protocol claims left out")
	}
	if want := s.env.Clock.Now().Add(30 * time.Minute); !u.ExpiresAt.Equal(want) || u.ExpiresIn != int64(30*time.Minute/time.Second) {
		t.Errorf("GET /bff/user expiry: got %v (%ds), want %v (1800s)", u.ExpiresAt, u.ExpiresIn, want)
	}

	// An API call carries a valid access token upstream, and no cookie.
	resp, body := b.do(t, http.MethodGet, "/api/profile", true, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/profile: got %d %s, want 200", resp.StatusCode, body)
	}
	var p demoapi.Profile
	json.Unmarshal([]byte(body), &p)
	if p.Subject != u.Claims["sub"] || p.ClientID != bffClientID || p.SID != u.Claims["sid"] {
		t.Errorf("API saw sub %q client %q sid %q, want %v, %q, %v", p.Subject, p.ClientID, p.SID, u.Claims["sub"], bffClientID, u.Claims["sid"])
	}
	up := s.lastUpstream(t)
	first := bearer(t, up)
	if !s.env.Active(t, first) {
		t.Errorf("the token sent upstream is not active at the provider")
	}
	for _, h := range []string{"Cookie", "X-Csrf"} {
		if v := up.Header.Get(h); v != "" {
			t.Errorf("upstream got %s: %q, want none", h, v)
		}
	}
	if strings.Contains(body, first) {
		t.Errorf("an API answer to the browser holds the access token")
	}
	if got := s.refreshRequests(t); got != 0 {
		t.Fatalf("refresh requests before expiry: got %v, want 0", got)
	}

	// The access token expires: the next call refreshes it behind the scenes.
	s.env.Clock.Advance(accessTTL)
	resp, body = b.do(t, http.MethodGet, "/api/orders", true, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/orders after expiry: got %d %s, want 200", resp.StatusCode, body)
	}
	second := bearer(t, s.lastUpstream(t))
	if second == first {
		t.Errorf("after expiry the gateway sent the expired token again")
	}
	if got := s.refreshRequests(t); got != 1 {
		t.Errorf("refresh requests after expiry: got %v, want 1", got)
	}
	// And no second refresh while the new token lives.
	b.do(t, http.MethodGet, "/api/profile", true, nil)
	if got := s.refreshRequests(t); got != 1 {
		t.Errorf("refresh requests with a fresh token: got %v, want 1", got)
	}

	// Sign-out: the gateway's session ends and its /bff/end-session comes
	// back for the browser to visit; no token is in the answer.
	resp, body = b.do(t, http.MethodPost, "/bff/logout", true, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /bff/logout: got %d %s, want 200", resp.StatusCode, body)
	}
	var out struct {
		LogoutURL string `json:"logoutUrl"`
	}
	json.Unmarshal([]byte(body), &out)
	if out.LogoutURL != s.URL+"/bff/end-session" {
		t.Fatalf("logoutUrl: got %q, want %s/bff/end-session", out.LogoutURL, s.URL)
	}
	if strings.Contains(body, "eyJ") {
		t.Errorf("POST /bff/logout answer carries a JWT: %s", body)
	}
	// /bff/end-session redirects to the provider's end-session endpoint with
	// the ID token as id_token_hint (from an HttpOnly cookie), once.
	hop, _ := b.get(t, out.LogoutURL)
	lu, err := url.Parse(hop.Header.Get("Location"))
	if hop.StatusCode != http.StatusSeeOther || err != nil || !strings.HasPrefix(lu.String(), s.env.URL+"/") {
		t.Fatalf("GET /bff/end-session: got %d to %q, want a redirect to the provider", hop.StatusCode, hop.Header.Get("Location"))
	}
	if lu.Query().Get("post_logout_redirect_uri") != s.URL+"/" || lu.Query().Get("id_token_hint") == "" || lu.Query().Get("client_id") != bffClientID {
		t.Errorf("end-session redirect: got %q, want id_token_hint, client_id and post_logout_redirect_uri=%s/", lu, s.URL)
	}
	if again, _ := b.get(t, out.LogoutURL); again.Header.Get("Location") != s.URL+"/" {
		t.Errorf("GET /bff/end-session a second time: got redirect %q, want home (the hint is single use)", again.Header.Get("Location"))
	}
	if status, _ := b.user(t); status != http.StatusUnauthorized {
		t.Errorf("GET /bff/user after logout: got %d, want 401", status)
	}
	if resp, _ := b.do(t, http.MethodGet, "/api/profile", true, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/profile after logout: got %d, want 401", resp.StatusCode)
	}
	// The refresh token was revoked, and with it its grant's access tokens.
	if s.env.Active(t, second) {
		t.Errorf("the access token is still active at the provider after logout")
	}

	// The browser goes on to the provider: its session ends too and it
	// comes back to the app.
	step, err := b.agent.Follow(lu.String())
	if err != nil {
		t.Fatal(err)
	}
	if step.Location != s.URL+"/" {
		t.Errorf("end-session: got redirect %q (status %d), want %s/", step.Location, step.Status, s.URL)
	}
	sessions, err := s.env.Store.ListSessionsByUser(t.Context(), p.Subject)
	if err != nil || len(sessions) != 0 {
		t.Errorf("provider sessions of alice after logout: got %d (%v), want 0", len(sessions), err)
	}
}

// Signing out at the provider ends the gateway's session through
// back-channel logout.
func TestBackchannelLogoutFromProvider(t *testing.T) {
	s := newStack(t, stackOptions{})
	alice := s.browser("alice")
	alice.login(t, "/")
	bob := s.browser("bob")
	bob.login(t, "/")

	s.env.SignOut(t, alice.agent)
	select {
	case status := <-s.backchannel:
		if status != http.StatusOK {
			t.Fatalf("back-channel logout: gateway answered %d, want 200", status)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the provider never called the gateway's back-channel logout endpoint")
	}
	if status, _ := alice.user(t); status != http.StatusUnauthorized {
		t.Errorf("alice's GET /bff/user after sign-out at the provider: got %d, want 401", status)
	}
	if status, _ := bob.user(t); status != http.StatusOK {
		t.Errorf("bob's GET /bff/user: got %d, want 200 (his session is another one)", status)
	}
}

// 100 calls arriving together when the token has expired cause exactly one
// refresh at the provider; all of them go through with the new token.
func TestConcurrentCallsRefreshOnce(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.browser("alice")
	b.login(t, "/")
	if resp, _ := b.do(t, http.MethodGet, "/api/profile", true, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/profile: got %d, want 200", resp.StatusCode)
	}
	old := bearer(t, s.lastUpstream(t))
	s.env.Clock.Advance(accessTTL)
	before := s.upstreamCount()

	const n = 100
	statuses := make([]int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest(http.MethodGet, s.URL+"/api/profile", nil)
			req.Header.Set("X-CSRF", "1")
			resp, err := b.agent.Client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	for i, st := range statuses {
		if st != http.StatusOK {
			t.Errorf("call %d: got %d, want 200", i, st)
		}
	}
	if got := s.refreshRequests(t); got != 1 {
		t.Errorf("refresh requests at the provider: got %v, want exactly 1", got)
	}
	s.mu.Lock()
	seen := map[string]int{}
	for _, r := range s.upstream[before:] {
		seen[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]++
	}
	s.mu.Unlock()
	if len(seen) != 1 || seen[old] != 0 {
		t.Errorf("upstream tokens after expiry: got %d distinct (old one %d times), want one new token", len(seen), seen[old])
	}
}

// When the provider refuses the refresh, the call answers 401 and the
// session ends.
func TestRefreshFailureEndsSession(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.browser("alice")
	b.login(t, "/")
	_, u := b.user(t)
	grants, err := s.env.Store.ListGrantsByUser(t.Context(), u.Claims["sub"].(string))
	if err != nil || len(grants) == 0 {
		t.Fatalf("grants of alice: %v, %v", grants, err)
	}
	for _, g := range grants {
		s.env.Store.RevokeGrant(t.Context(), g.ID, s.env.Clock.Now())
	}
	s.env.Clock.Advance(accessTTL)
	before := s.upstreamCount()
	resp, _ := b.do(t, http.MethodGet, "/api/profile", true, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/profile with a revoked grant: got %d, want 401", resp.StatusCode)
	}
	if s.upstreamCount() != before {
		t.Errorf("the call reached the upstream, want it stopped at the gateway")
	}
	if status, _ := b.user(t); status != http.StatusUnauthorized {
		t.Errorf("GET /bff/user after the failed refresh: got %d, want 401", status)
	}
}

// The gateway enforces the idle and absolute timeouts itself.
func TestSessionTimeouts(t *testing.T) {
	s := newStack(t, stackOptions{})

	idle := s.browser("alice")
	idle.login(t, "/")
	s.env.Clock.Advance(29 * time.Minute)
	if status, _ := idle.user(t); status != http.StatusOK {
		t.Fatalf("GET /bff/user after 29 min: got %d, want 200", status)
	}
	s.env.Clock.Advance(29 * time.Minute) // activity moved the idle deadline
	if status, _ := idle.user(t); status != http.StatusOK {
		t.Fatalf("GET /bff/user 29 min after the last call: got %d, want 200", status)
	}
	s.env.Clock.Advance(30 * time.Minute)
	if status, _ := idle.user(t); status != http.StatusUnauthorized {
		t.Errorf("GET /bff/user after 30 idle minutes: got %d, want 401", status)
	}

	busy := s.browser("bob")
	busy.login(t, "/")
	for i := range 12*60/20 - 1 {
		s.env.Clock.Advance(20 * time.Minute)
		if status, _ := busy.user(t); status != http.StatusOK {
			t.Fatalf("GET /bff/user after %d min of activity: got %d, want 200", (i+1)*20, status)
		}
	}
	// 12 h of activity: the absolute timeout has ended the session.
	s.env.Clock.Advance(20 * time.Minute)
	if status, _ := busy.user(t); status != http.StatusUnauthorized {
		t.Errorf("GET /bff/user after 12 h: got %d, want 401", status)
	}
	if n, err := s.gw.Sweep(t.Context()); err != nil || n != 0 {
		t.Errorf("Sweep: got %d, %v; want 0 (expired sessions were ended when presented)", n, err)
	}
}

// Sweep removes sessions nobody presents any more.
func TestSweep(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.browser("alice").login(t, "/")
	s.browser("bob").login(t, "/")
	if n, err := s.gw.Sweep(t.Context()); err != nil || n != 0 {
		t.Fatalf("Sweep of live sessions: got %d, %v; want 0", n, err)
	}
	s.env.Clock.Advance(31 * time.Minute)
	if n, err := s.gw.Sweep(t.Context()); err != nil || n != 2 {
		t.Errorf("Sweep of idle sessions: got %d, %v; want 2", n, err)
	}
}

// The SPA's files come from static_dir; the gateway's own paths are not
// files; /healthz answers.
func TestStaticAndHealth(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.browser("alice")
	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/", 200, "<title>app</title>"},
		{"/orders/42", 200, "<title>app</title>"}, // a client-side route
		{"/missing.js", 404, ""},
		{"/healthz", 200, "ok"},
		{"/bff/nothing", 404, "not_found"},
	} {
		resp, body := b.do(t, http.MethodGet, tc.path, false, nil)
		if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s: got %d %q, want %d with %q", tc.path, resp.StatusCode, body, tc.status, tc.body)
		}
	}
}

// The proxy streams bodies both ways, passes status codes through, and
// keeps the browser's cookies, hop-by-hop headers and the upstream's
// cookies out.
func TestProxyPassesThrough(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.browser("alice")
	b.login(t, "/")

	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/echo/things?status=418&x=%2Fy", strings.NewReader(big))
	req.Header.Set("X-CSRF", "1")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "secret")
	req.Header.Set("Authorization", "Bearer forged")
	req.Header.Set("X-Keep", "yes")
	resp, err := b.agent.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := new(strings.Builder)
	_, err = io.Copy(body, resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 418 {
		t.Errorf("status: got %d, want 418 from the upstream", resp.StatusCode)
	}
	if body.Len() != len(big) || body.String() != big {
		t.Errorf("body: got %d bytes, want the %d sent", body.Len(), len(big))
	}
	if c := resp.Header.Get("Set-Cookie"); c != "" {
		t.Errorf("Set-Cookie from the upstream reached the browser: %q", c)
	}
	up := s.lastUpstream(t)
	if up.URL.Path != "/echo/things" || up.URL.Query().Get("x") != "/y" {
		t.Errorf("upstream URL: got %q, want /echo/things?…x=%%2Fy", up.URL.String())
	}
	if up.Header.Get("X-Hop") != "" || up.Header.Get("Cookie") != "" {
		t.Errorf("upstream got X-Hop %q, Cookie %q; want neither", up.Header.Get("X-Hop"), up.Header.Get("Cookie"))
	}
	if up.Header.Get("X-Keep") != "yes" {
		t.Errorf("upstream X-Keep: got %q, want yes", up.Header.Get("X-Keep"))
	}
	if tok := bearer(t, up); tok == "forged" {
		t.Errorf("upstream got the browser's Authorization header, want the session's token")
	}

	// Paths that climb out of the route never reach the upstream.
	before := s.upstreamCount()
	for _, path := range []string{"/echo/%2e%2e/admin", "/echo/..%2Fadmin", "/echo/a/%2E%2E/%2E%2E/admin", "/echo/%5c..%5cadmin"} {
		resp, _ := b.do(t, http.MethodGet, path, true, nil)
		if resp.StatusCode == http.StatusOK {
			t.Errorf("GET %s: got 200, want it refused", path)
		}
	}
	if s.upstreamCount() != before {
		t.Errorf("a path climbing out of the route reached the upstream")
	}

	// A status of the API passes as it is.
	resp, _ = b.do(t, http.MethodGet, "/api/nothing", true, nil)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /api/nothing: got %d, want the API's 404", resp.StatusCode)
	}
}

// Cookies: HttpOnly everywhere, Strict for the session and Lax for the
// login state; over https the __Host- prefix and Secure.
func TestCookieAttributes(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.browser("alice")
	resp := b.startLogin(t, "/")
	login := findCookie(resp, "castellan-bff-login.")
	if login == nil || !login.HttpOnly || login.SameSite != http.SameSiteLaxMode || login.Secure || login.Path != "/" || login.MaxAge <= 0 {
		t.Errorf("login-state cookie: got %+v, want HttpOnly, SameSite=Lax, Path=/, Max-Age", login)
	}
	cb := b.toCallback(t, resp.Header.Get("Location"))
	resp, _ = b.get(t, cb)
	sess := findCookie(resp, "castellan-bff")
	if sess == nil || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Path != "/" {
		t.Errorf("session cookie: got %+v, want HttpOnly, SameSite=Strict, Path=/", sess)
	}
	if sess != nil && len(sess.Value) != 43 {
		t.Errorf("session cookie value: got %d characters, want 43 (256 bits)", len(sess.Value))
	}

	// Over https: __Host- and Secure. The handler is driven directly, since
	// the name is all that changes.
	secure := newStack(t, stackOptions{bff: func(c *bff.Config) { c.PublicURL = "https://app.example" }})
	rec := httptest.NewRecorder()
	req, _ := http.NewRequest(http.MethodGet, "https://app.example/bff/login", nil)
	secure.gw.Handler().ServeHTTP(rec, req)
	c := findCookie(rec.Result(), "__Host-castellan-bff-login.")
	if c == nil || !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" {
		t.Errorf("https login-state cookie: got %+v, want __Host- prefix, Secure, HttpOnly, Path=/", c)
	}
}

func findCookie(resp *http.Response, prefix string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == prefix || (strings.HasSuffix(prefix, ".") && strings.HasPrefix(c.Name, prefix)) {
			if c.MaxAge >= 0 {
				return c
			}
		}
	}
	return nil
}
