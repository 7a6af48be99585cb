package login_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/server/servertest"
	"github.com/castellan-auth/castellan/internal/storage"
)

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// page is a response with its body read.
type page struct {
	*http.Response
	body string
}

func do(t *testing.T, c *http.Client, req *http.Request) page {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{resp, string(b)}
}

func get(t *testing.T, c *http.Client, u string) page {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return do(t, c, req)
}

func post(t *testing.T, c *http.Client, u string, form url.Values) page {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, c, req)
}

func csrfOf(t *testing.T, p page) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF field in page (status %d)", p.StatusCode)
	}
	return m[1]
}

// signIn loads the login page and posts the credentials.
func signIn(t *testing.T, env *servertest.Env, c *http.Client, username, password string) page {
	t.Helper()
	token := csrfOf(t, get(t, c, env.URL+"/login"))
	return post(t, c, env.URL+"/login", url.Values{"csrf_token": {token}, "username": {username}, "password": {password}})
}

func sessionCookie(c *http.Client, base string) *http.Cookie {
	u, _ := url.Parse(base)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "castellan_session" {
			return ck
		}
	}
	return nil
}

func userID(t *testing.T, env *servertest.Env, name string) string {
	u, err := env.Store.GetUserByUsername(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func sessionsOf(t *testing.T, env *servertest.Env, name string) []storage.Session {
	t.Helper()
	s, err := env.Store.ListSessionsByUser(context.Background(), userID(t, env, name))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSignInSetsCookieAndSession(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	c := env.Browser()
	p := signIn(t, env, c, "alice", servertest.Password)
	if p.StatusCode != http.StatusSeeOther {
		t.Fatalf("status: got %d, want 303", p.StatusCode)
	}
	var set *http.Cookie
	for _, ck := range p.Cookies() {
		if ck.Name == "castellan_session" {
			set = ck
		}
	}
	if set == nil {
		t.Fatal("no session cookie set")
	}
	if !set.HttpOnly || set.SameSite != http.SameSiteLaxMode || set.Path != "/" {
		t.Errorf("cookie flags: got HttpOnly=%v SameSite=%v Path=%q, want true Lax /", set.HttpOnly, set.SameSite, set.Path)
	}
	if got := len(sessionsOf(t, env, "alice")); got != 1 {
		t.Fatalf("sessions: got %d, want 1", got)
	}
	s := sessionsOf(t, env, "alice")[0]
	if !s.AuthTime.Equal(servertest.Start) || len(s.AMR) != 1 || s.AMR[0] != "pwd" {
		t.Errorf("session: got auth_time %v amr %v, want %v [pwd]", s.AuthTime, s.AMR, servertest.Start)
	}
	home := get(t, c, env.URL+"/")
	if !strings.Contains(home.body, "signed in as <strong>alice</strong>") {
		t.Errorf("home page does not show the signed-in user:\n%s", home.body)
	}
}

func TestUsernameIsCaseInsensitive(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	if p := signIn(t, env, env.Browser(), "ALICE", servertest.Password); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("status: got %d, want 303", p.StatusCode)
	}
}

func TestFailedSignInsLookAlike(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	ctx := context.Background()
	if _, err := env.Store.DisableUser(ctx, userID(t, env, "bob"), env.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, user, password string }{
		{"fail/wrong-password", "alice", "not the password"},
		{"fail/unknown-user", "mallory", servertest.Password},
		{"fail/disabled-user", "bob", servertest.Password},
		{"fail/empty", "", ""},
	}
	var first string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := env.Browser()
			p := signIn(t, env, c, tc.user, tc.password)
			if p.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status: got %d, want 401", p.StatusCode)
			}
			msg := regexp.MustCompile(`<p class="error"[^>]*>([^<]*)</p>`).FindStringSubmatch(p.body)
			if msg == nil || msg[1] != "wrong username or password" {
				t.Fatalf("message: got %v, want %q", msg, "wrong username or password")
			}
			if first == "" {
				first = msg[1]
			} else if msg[1] != first {
				t.Errorf("messages differ: %q vs %q", msg[1], first)
			}
			if sessionCookie(c, env.URL) != nil {
				t.Error("a session cookie was set")
			}
		})
	}
	if n := len(sessionsOf(t, env, "alice")) + len(sessionsOf(t, env, "bob")); n != 0 {
		t.Errorf("sessions: got %d, want 0", n)
	}
}

func TestCSRF(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	other := env.Browser()
	otherToken := csrfOf(t, get(t, other, env.URL+"/login"))
	cases := []struct {
		name  string
		token func(c *http.Client) string
	}{
		{"fail/missing-token", func(c *http.Client) string { get(t, c, env.URL+"/login"); return "" }},
		{"fail/garbage-token", func(c *http.Client) string { get(t, c, env.URL+"/login"); return "AAAA" }},
		{"fail/other-browsers-token", func(c *http.Client) string { get(t, c, env.URL+"/login"); return otherToken }},
		{"fail/no-cookie", func(c *http.Client) string { return otherToken }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := env.Browser()
			form := url.Values{"username": {"alice"}, "password": {servertest.Password}}
			if tok := tc.token(c); tok != "" {
				form.Set("csrf_token", tok)
			}
			p := post(t, c, env.URL+"/login", form)
			if p.StatusCode != http.StatusForbidden {
				t.Fatalf("status: got %d, want 403", p.StatusCode)
			}
			if sessionCookie(c, env.URL) != nil {
				t.Error("a session cookie was set")
			}
		})
	}
	if n := len(sessionsOf(t, env, "alice")); n != 0 {
		t.Errorf("sessions: got %d, want 0", n)
	}
}

func TestThrottling(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	limit := env.Config.Throttle.AccountFailures
	c := env.Browser()
	for i := 1; i < limit; i++ {
		if p := signIn(t, env, c, "alice", "wrong"); p.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: got %d, want 401", i, p.StatusCode)
		}
	}
	// The failure that reaches the threshold is answered with the delay.
	p := signIn(t, env, c, "alice", "wrong")
	if p.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("failure %d: got %d, want 429", limit, p.StatusCode)
	}
	if ra := p.Header.Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After: got %q, want 2", ra)
	}
	// Even the right password waits: no hashing happens while throttled.
	if p := signIn(t, env, env.Browser(), "alice", servertest.Password); p.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("right password while throttled: got %d, want 429", p.StatusCode)
	}
	// Other accounts are not affected.
	if p := signIn(t, env, env.Browser(), "bob", servertest.Password); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("other account: got %d, want 303", p.StatusCode)
	}
	env.Clock.Advance(2 * time.Second)
	// One more failure doubles the delay.
	if p := signIn(t, env, c, "alice", "wrong"); p.StatusCode != http.StatusTooManyRequests || p.Header.Get("Retry-After") != "4" {
		t.Fatalf("next failure: got %d Retry-After %q, want 429 and 4", p.StatusCode, p.Header.Get("Retry-After"))
	}
	env.Clock.Advance(4 * time.Second)
	if p := signIn(t, env, c, "alice", servertest.Password); p.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the delay: got %d, want 303", p.StatusCode)
	}
	// Success forgets the account's failures.
	if p := signIn(t, env, c, "alice", "wrong"); p.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after success: got %d, want 401", p.StatusCode)
	}
}

func TestAddressThrottling(t *testing.T) {
	cfg := servertest.Config()
	cfg.Throttle.AddressFailures = 3
	env := servertest.New(t, servertest.Options{Config: cfg})
	for i, user := range []string{"u1", "u2"} {
		if p := signIn(t, env, env.Browser(), user, "x"); p.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: got %d, want 401", i, p.StatusCode)
		}
	}
	if p := signIn(t, env, env.Browser(), "u3", "x"); p.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third failure from one address: got %d, want 429", p.StatusCode)
	}
}

func TestIdleTimeout(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	c := env.Browser()
	signIn(t, env, c, "alice", servertest.Password)
	idle := env.Config.Session.IdleTimeout.D()

	env.Clock.Advance(idle - time.Minute)
	if !strings.Contains(get(t, c, env.URL+"/").body, "Signed in") {
		t.Fatal("session ended before the idle timeout")
	}
	// The visit above was activity: the idle timer restarted.
	env.Clock.Advance(idle - time.Minute)
	if !strings.Contains(get(t, c, env.URL+"/").body, "Signed in") {
		t.Fatal("activity did not extend the idle timeout")
	}
	env.Clock.Advance(idle)
	if strings.Contains(get(t, c, env.URL+"/").body, "Signed in") {
		t.Fatal("session survived the idle timeout")
	}
	if n := len(sessionsOf(t, env, "alice")); n != 0 {
		t.Errorf("sessions after idle expiry: got %d, want 0", n)
	}
}

func TestAbsoluteTimeout(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	c := env.Browser()
	signIn(t, env, c, "alice", servertest.Password)
	abs := env.Config.Session.AbsoluteTimeout.D()
	step := env.Config.Session.IdleTimeout.D() / 2
	for elapsed := step; elapsed < abs; elapsed += step {
		env.Clock.Advance(step)
		if !strings.Contains(get(t, c, env.URL+"/").body, "Signed in") {
			t.Fatalf("session ended after %v of activity, before the absolute timeout %v", elapsed, abs)
		}
	}
	env.Clock.Advance(step)
	if strings.Contains(get(t, c, env.URL+"/").body, "Signed in") {
		t.Fatal("an active session survived the absolute timeout")
	}
}

func TestSweeperEndsExpiredSessions(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	signIn(t, env, env.Browser(), "alice", servertest.Password)
	env.Clock.Advance(env.Config.Session.IdleTimeout.D())
	n, err := env.Server.Sessions.Sweep(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("sweep: got %d, %v; want 1, nil", n, err)
	}
	if n := len(sessionsOf(t, env, "alice")); n != 0 {
		t.Errorf("sessions after sweep: got %d, want 0", n)
	}
}

func TestSignOut(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	c := env.Browser()
	signIn(t, env, c, "alice", servertest.Password)
	home := get(t, c, env.URL+"/")

	if p := post(t, c, env.URL+"/logout", url.Values{}); p.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-out without CSRF: got %d, want 403", p.StatusCode)
	}
	if n := len(sessionsOf(t, env, "alice")); n != 1 {
		t.Fatalf("sign-out without CSRF ended the session")
	}
	p := post(t, c, env.URL+"/logout", url.Values{"csrf_token": {csrfOf(t, home)}})
	if p.StatusCode != http.StatusOK || !strings.Contains(p.body, "Signed out") {
		t.Fatalf("sign-out: got %d, want 200 and the signed-out page", p.StatusCode)
	}
	if n := len(sessionsOf(t, env, "alice")); n != 0 {
		t.Fatalf("sessions after sign-out: got %d, want 0", n)
	}
	if sessionCookie(c, env.URL) != nil {
		t.Error("session cookie not cleared")
	}
}

func TestNewSessionIDAtEverySignIn(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	c := env.Browser()
	signIn(t, env, c, "alice", servertest.Password)
	first := sessionCookie(c, env.URL)
	signIn(t, env, c, "alice", servertest.Password)
	second := sessionCookie(c, env.URL)
	if first == nil || second == nil || first.Value == second.Value {
		t.Fatalf("session id did not change: %v then %v", first, second)
	}
	if n := len(sessionsOf(t, env, "alice")); n != 1 {
		t.Errorf("sessions: got %d, want 1 (the replaced one ends)", n)
	}
	// A cookie planted before sign-in (session fixation) is worthless after it.
	u, _ := url.Parse(env.URL)
	planted := env.Browser()
	planted.Jar.SetCookies(u, []*http.Cookie{{Name: "castellan_session", Value: first.Value, Path: "/"}})
	if strings.Contains(get(t, planted, env.URL+"/").body, "Signed in") {
		t.Error("the replaced session id still works")
	}
}

func TestPagesRefuseFraming(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	for _, path := range []string{"/login", "/"} {
		p := get(t, env.Browser(), env.URL+path)
		csp := p.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || p.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: CSP %q, X-Frame-Options %q: want framing refused", path, csp, p.Header.Get("X-Frame-Options"))
		}
		if p.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", path, p.Header.Get("Cache-Control"))
		}
	}
}

func TestReflectedUsernameIsEscaped(t *testing.T) {
	env := servertest.New(t, servertest.Options{})
	p := signIn(t, env, env.Browser(), `"><script>alert(1)</script>`, "x")
	if strings.Contains(p.body, "<script>alert(1)") {
		t.Fatal("username reflected unescaped")
	}
	if !strings.Contains(p.body, "&#34;&gt;&lt;script&gt;") {
		t.Errorf("escaped username not found in page")
	}
}
