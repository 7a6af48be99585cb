package bff_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/castellan-auth/castellan/internal/jwstest"
	"github.com/castellan-auth/castellan/internal/logout"
	"github.com/castellan-auth/castellan/internal/mint"
)

// Without X-CSRF: 1 nothing that needs the session answers, and nothing
// changes.
func TestCSRFHeaderRequired(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.browser("alice")
	b.login(t, "/")
	before := s.upstreamCount()
	for _, tc := range []struct {
		name, method, path, header string
		extra                      map[string]string
		want                       int
	}{
		{"adv70/user/missing", http.MethodGet, "/bff/user", "", nil, http.StatusUnauthorized},
		{"adv70/user/zero", http.MethodGet, "/bff/user", "0", nil, http.StatusUnauthorized},
		{"adv70/api/missing", http.MethodGet, "/api/profile", "", nil, http.StatusUnauthorized},
		{"adv70/api/true", http.MethodGet, "/api/profile", "true", nil, http.StatusUnauthorized},
		{"adv70/echo-post/missing", http.MethodPost, "/echo/x", "", nil, http.StatusUnauthorized},
		{"adv70/logout/missing", http.MethodPost, "/bff/logout", "", nil, http.StatusUnauthorized},
		{"adv70/api/cross-origin", http.MethodGet, "/api/profile", "1", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"adv70/logout/cross-origin", http.MethodPost, "/bff/logout", "1", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"adv70/user/sec-fetch-cross-site", http.MethodGet, "/bff/user", "1", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"adv70/echo-post/null-origin", http.MethodPost, "/echo/x", "1", map[string]string{"Origin": "null"}, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, s.URL+tc.path, nil)
			if tc.header != "" {
				req.Header.Set("X-CSRF", tc.header)
			}
			for k, v := range tc.extra {
				req.Header.Set(k, v)
			}
			resp, err := b.agent.Client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("got %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	if s.upstreamCount() != before {
		t.Errorf("a call without X-CSRF reached an upstream")
	}
	if status, _ := b.user(t); status != http.StatusOK {
		t.Errorf("GET /bff/user with the header afterwards: got %d, want 200 (logout without it changed nothing)", status)
	}
}

// returnUrl is a local path or refused: sign-in is no open redirector.
func TestLoginReturnURL(t *testing.T) {
	s := newStack(t, stackOptions{})
	for i, tc := range []struct {
		returnURL string
		ok        bool
	}{
		{"", true},
		{"/", true},
		{"/x", true},
		{"/orders/42?tab=open#top", true},
		{"/a//b", true},
		{"https://evil.example/", false},
		{"http://evil.example", false},
		{"//evil.example", false},
		{"//evil.example/x", false},
		{"/\\evil.example", false},
		{"\\\\evil.example", false},
		{"/x\\y", false},
		{"/%2F%2Fevil.example", false},
		{"/%5cevil.example", false},
		{"/x\r\nSet-Cookie: a=b", false},
		{"/\tevil", false},
		{"/x\x00", false},
		{"javascript:alert(1)", false},
		{"evil.example", false},
		{"x", false},
		{"/" + strings.Repeat("a", 3000), false},
	} {
		name := url.QueryEscape(tc.returnURL)
		if len(name) > 40 {
			name = name[:40] + "…"
		}
		t.Run(fmt.Sprintf("%02d/%s", i, name), func(t *testing.T) {
			b := s.browser("alice")
			resp := b.startLogin(t, tc.returnURL)
			if !tc.ok {
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("got %d (Location %q), want 400", resp.StatusCode, resp.Header.Get("Location"))
				}
				if findCookie(resp, "castellan-bff-login.") != nil {
					t.Errorf("a refused login set a login-state cookie")
				}
				return
			}
			if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), s.env.URL+"/") {
				t.Fatalf("got %d to %q, want 302 to the provider", resp.StatusCode, resp.Header.Get("Location"))
			}
			q := mustURL(t, resp.Header.Get("Location")).Query()
			if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" || q.Get("nonce") == "" ||
				q.Get("client_id") != bffClientID || q.Get("redirect_uri") != s.URL+"/bff/callback" || q.Get("response_type") != "code" {
				t.Errorf("authorization request: got %v, want code flow with PKCE S256, state and nonce", q)
			}
			want := tc.returnURL
			if want == "" {
				want = "/"
			}
			cb := b.toCallback(t, resp.Header.Get("Location"))
			resp, _ = b.get(t, cb)
			if got := resp.Header.Get("Location"); got != s.URL+want {
				t.Errorf("after sign-in: got redirect %q, want %q", got, s.URL+want)
			}
		})
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// withParam returns u with one query parameter replaced.
func withParam(t *testing.T, u, key, value string) string {
	t.Helper()
	p := mustURL(t, u)
	q := p.Query()
	q.Set(key, value)
	p.RawQuery = q.Encode()
	return p.String()
}

// A callback that does not belong to a sign-in this browser started, or that
// comes a second time, creates no session.
func TestCallbackRefused(t *testing.T) {
	s := newStack(t, stackOptions{})

	refused := func(t *testing.T, b *browser, u string) {
		t.Helper()
		resp, body := b.get(t, u)
		if resp.StatusCode < 400 {
			t.Errorf("GET %s: got %d, want an error", u, resp.StatusCode)
		}
		if strings.Contains(body, "Bearer") || strings.Contains(body, "eyJ") {
			t.Errorf("error page holds token material: %q", body)
		}
		if findCookie(resp, "castellan-bff") != nil {
			t.Errorf("a refused callback set a session cookie")
		}
		if status, _ := b.user(t); status != http.StatusUnauthorized {
			t.Errorf("GET /bff/user after a refused callback: got %d, want 401", status)
		}
	}

	t.Run("wrong-state", func(t *testing.T) {
		b := s.browser("alice")
		cb := b.toCallback(t, b.startLogin(t, "/").Header.Get("Location"))
		refused(t, b, withParam(t, cb, "state", "not-the-state"))
	})
	t.Run("no-state", func(t *testing.T) {
		b := s.browser("alice")
		cb := b.toCallback(t, b.startLogin(t, "/").Header.Get("Location"))
		p := mustURL(t, cb)
		q := p.Query()
		q.Del("state")
		p.RawQuery = q.Encode()
		refused(t, b, p.String())
	})
	t.Run("state-of-another-browser", func(t *testing.T) {
		// Login CSRF: an attacker's callback URL opened in the victim's browser.
		attacker := s.browser("bob")
		cb := attacker.toCallback(t, attacker.startLogin(t, "/").Header.Get("Location"))
		victim := s.browser("alice")
		victim.startLogin(t, "/") // the victim has a sign-in of her own under way
		refused(t, victim, cb)
	})
	t.Run("replayed-callback", func(t *testing.T) {
		b := s.browser("alice")
		cb := b.toCallback(t, b.startLogin(t, "/").Header.Get("Location"))
		// The login-state cookie is copied aside, as an attacker who saw it would.
		jarCookies := b.agent.Client.Jar.Cookies(mustURL(t, s.URL))
		resp, _ := b.get(t, cb)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("first callback: got %d, want 302", resp.StatusCode)
		}
		first := b.sessionCookie()
		// Same browser again: the state is used.
		resp, _ = b.get(t, cb)
		if resp.StatusCode < 400 || findCookie(resp, "castellan-bff") != nil {
			t.Errorf("replayed callback: got %d, want an error and no new session", resp.StatusCode)
		}
		if b.sessionCookie() != first {
			t.Errorf("the replayed callback changed the session cookie")
		}
		// Another browser holding a copy of the login-state cookie.
		other := s.browser("bob")
		other.agent.Client.Jar.SetCookies(mustURL(t, s.URL), jarCookies)
		refused(t, other, cb)
	})
	t.Run("replayed-code-with-fresh-state", func(t *testing.T) {
		b := s.browser("alice")
		cb := b.toCallback(t, b.startLogin(t, "/").Header.Get("Location"))
		if resp, _ := b.get(t, cb); resp.StatusCode != http.StatusFound {
			t.Fatalf("first callback: got %d, want 302", resp.StatusCode)
		}
		code := mustURL(t, cb).Query().Get("code")
		attacker := s.browser("bob")
		auth := attacker.startLogin(t, "/").Header.Get("Location")
		state := mustURL(t, auth).Query().Get("state")
		replay := s.URL + "/bff/callback?" + url.Values{"code": {code}, "state": {state}}.Encode()
		refused(t, attacker, replay)
	})
	t.Run("provider-error", func(t *testing.T) {
		b := s.browser("alice")
		auth := b.startLogin(t, "/").Header.Get("Location")
		state := mustURL(t, auth).Query().Get("state")
		refused(t, b, s.URL+"/bff/callback?"+url.Values{"error": {"access_denied"}, "state": {state}}.Encode())
	})
	t.Run("other-issuer", func(t *testing.T) {
		b := s.browser("alice")
		cb := b.toCallback(t, b.startLogin(t, "/").Header.Get("Location"))
		refused(t, b, withParam(t, cb, "iss", "https://evil.example"))
	})
}

// After logout the old cookie is worthless, wherever it is replayed from.
func TestCookieReplayAfterLogout(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.browser("alice")
	b.login(t, "/")
	stolen := b.sessionCookie()
	if stolen == "" {
		t.Fatal("no session cookie after sign-in")
	}
	if resp, _ := b.do(t, http.MethodPost, "/bff/logout", true, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /bff/logout: got %d, want 200", resp.StatusCode)
	}
	before := s.upstreamCount()
	for _, path := range []string{"/bff/user", "/api/profile"} {
		req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
		req.Header.Set("X-CSRF", "1")
		req.AddCookie(&http.Cookie{Name: "castellan-bff", Value: stolen})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s with the old cookie: got %d, want 401", path, resp.StatusCode)
		}
	}
	if s.upstreamCount() != before {
		t.Errorf("a call with the old cookie reached an upstream")
	}

	// A cookie of a live session works only for that session; made-up
	// values of the right shape find nothing.
	other := s.browser("bob")
	other.login(t, "/")
	_, u := other.user(t)
	if u.Claims["name"] != "Bob" {
		t.Errorf("bob's /bff/user: got %v, want Bob", u.Claims["name"])
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/bff/user", nil)
	req.Header.Set("X-CSRF", "1")
	req.AddCookie(&http.Cookie{Name: "castellan-bff", Value: strings.Repeat("A", 43)})
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("made-up cookie: got %d, want 401", resp.StatusCode)
	}
}

// Signing in again replaces the session: the old cookie stops working.
func TestNewSessionIDAtSignIn(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.browser("alice")
	b.login(t, "/")
	first := b.sessionCookie()
	b.login(t, "/")
	second := b.sessionCookie()
	if first == second || second == "" {
		t.Fatalf("session cookie after a second sign-in: got the same value, want a new one")
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/bff/user", nil)
	req.Header.Set("X-CSRF", "1")
	req.AddCookie(&http.Cookie{Name: "castellan-bff", Value: first})
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the first session's cookie: got %d, want 401", resp.StatusCode)
	}
}

// Logout tokens are checked per OIDC Back-Channel Logout 1.0 §2.6; a
// refused one ends nothing.
func TestBackchannelLogoutToken(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.browser("alice")
	b.login(t, "/")
	_, u := b.user(t)
	sub, sid := u.Claims["sub"].(string), u.Claims["sid"].(string)

	now := s.env.Clock.Now()
	valid := func() logout.LogoutClaims {
		return logout.LogoutClaims{
			Issuer: s.env.URL, Subject: sub, Audience: mint.Audience{bffClientID},
			IssuedAt: now.Unix(), Expiry: now.Add(2 * time.Minute).Unix(), JTI: randomJTI(),
			Events: map[string]map[string]any{logout.BackchannelEvent: {}}, SID: sid,
		}
	}
	sign := func(t *testing.T, typ string, claims any) string {
		t.Helper()
		tok, err := s.env.Server.Mint.Sign("ES256", typ, claims)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	post := func(t *testing.T, form url.Values) int {
		t.Helper()
		resp, err := http.PostForm(s.URL+"/bff/backchannel-logout", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("error answer without Cache-Control: no-store")
		}
		return resp.StatusCode
	}
	// A claims set as a map, for tokens that leave out or add claims.
	asMap := func(c logout.LogoutClaims) map[string]any {
		b, _ := json.Marshal(c)
		var m map[string]any
		json.Unmarshal(b, &m)
		return m
	}

	for _, tc := range []struct {
		name  string
		token func(t *testing.T) string
	}{
		{"no-token", func(t *testing.T) string { return "" }},
		{"garbage", func(t *testing.T) string { return "not.a.jwt" }},
		{"wrong-issuer", func(t *testing.T) string {
			c := valid()
			c.Issuer = "https://evil.example"
			return sign(t, mint.TypeLogoutToken, c)
		}},
		{"wrong-audience", func(t *testing.T) string {
			c := valid()
			c.Audience = mint.Audience{"spa"}
			return sign(t, mint.TypeLogoutToken, c)
		}},
		{"expired", func(t *testing.T) string {
			c := valid()
			c.IssuedAt, c.Expiry = now.Add(-10*time.Minute).Unix(), now.Add(-time.Minute).Unix()
			return sign(t, mint.TypeLogoutToken, c)
		}},
		{"iat-in-future", func(t *testing.T) string {
			c := valid()
			c.IssuedAt, c.Expiry = now.Add(time.Hour).Unix(), now.Add(2*time.Hour).Unix()
			return sign(t, mint.TypeLogoutToken, c)
		}},
		{"iat-too-old", func(t *testing.T) string {
			c := valid()
			c.IssuedAt, c.Expiry = now.Add(-time.Hour).Unix(), now.Add(time.Hour).Unix()
			return sign(t, mint.TypeLogoutToken, c)
		}},
		{"no-iat", func(t *testing.T) string {
			m := asMap(valid())
			delete(m, "iat")
			return sign(t, mint.TypeLogoutToken, m)
		}},
		{"no-events", func(t *testing.T) string {
			c := valid()
			c.Events = nil
			return sign(t, mint.TypeLogoutToken, c)
		}},
		{"other-event", func(t *testing.T) string {
			c := valid()
			c.Events = map[string]map[string]any{"http://schemas.openid.net/event/other": {}}
			return sign(t, mint.TypeLogoutToken, c)
		}},
		{"event-not-object", func(t *testing.T) string {
			m := asMap(valid())
			m["events"] = map[string]any{logout.BackchannelEvent: "yes"}
			return sign(t, mint.TypeLogoutToken, m)
		}},
		{"with-nonce", func(t *testing.T) string {
			m := asMap(valid())
			m["nonce"] = "n"
			return sign(t, mint.TypeLogoutToken, m)
		}},
		{"no-sid-no-sub", func(t *testing.T) string {
			c := valid()
			c.Subject, c.SID = "", ""
			return sign(t, mint.TypeLogoutToken, c)
		}},
		{"no-jti", func(t *testing.T) string {
			c := valid()
			c.JTI = ""
			return sign(t, mint.TypeLogoutToken, c)
		}},
		{"typed-as-id-token", func(t *testing.T) string { return sign(t, "JWT", valid()) }},
		{"typed-as-access-token", func(t *testing.T) string { return sign(t, mint.TypeAccessToken, valid()) }},
		// Signed with the provider's own key, so go-oidc accepts them: only
		// the gateway's own header check (RFC 7515 §4.1.11) refuses these.
		{"crit-b64-with-provider-key", func(t *testing.T) string {
			opts := (&jose.SignerOptions{}).WithType("logout+jwt").WithHeader("crit", []string{"b64"}).WithHeader("b64", true)
			return jwstest.SignClaims(t, jose.ES256, s.env.SigningKey(t, "ES256"), opts, valid())
		}},
		{"b64-with-provider-key", func(t *testing.T) string {
			opts := (&jose.SignerOptions{}).WithType("logout+jwt").WithHeader("b64", true)
			return jwstest.SignClaims(t, jose.ES256, s.env.SigningKey(t, "ES256"), opts, valid())
		}},
		{"signed-by-another-key", func(t *testing.T) string {
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			kid := mustKID(t, s)
			return jwstest.SignClaims(t, jose.ES256, key, (&jose.SignerOptions{}).WithType("logout+jwt").WithHeader("kid", kid), valid())
		}},
	} {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			if got := post(t, url.Values{"logout_token": {tc.token(t)}}); got != http.StatusBadRequest {
				t.Errorf("got %d, want 400", got)
			}
			if status, _ := b.user(t); status != http.StatusOK {
				t.Fatalf("session after a refused logout token: got %d, want still 200", status)
			}
		})
	}

	t.Run("ok/by-sid-then-replay-refused", func(t *testing.T) {
		tok := sign(t, mint.TypeLogoutToken, valid())
		if got := post(t, url.Values{"logout_token": {tok}}); got != http.StatusOK {
			t.Fatalf("valid logout token: got %d, want 200", got)
		}
		if status, _ := b.user(t); status != http.StatusUnauthorized {
			t.Errorf("session after logout token: got %d, want 401", status)
		}
		b.login(t, "/") // a new session; the same token again must not end it
		if got := post(t, url.Values{"logout_token": {tok}}); got != http.StatusBadRequest {
			t.Errorf("replayed logout token: got %d, want 400", got)
		}
		if status, _ := b.user(t); status != http.StatusOK {
			t.Errorf("new session after a replayed logout token: got %d, want 200", status)
		}
	})
	t.Run("ok/by-sub-ends-every-session-of-the-user", func(t *testing.T) {
		other := s.browser("alice")
		other.login(t, "/")
		bob := s.browser("bob")
		bob.login(t, "/")
		c := valid()
		c.SID = ""
		if got := post(t, url.Values{"logout_token": {sign(t, mint.TypeLogoutToken, c)}}); got != http.StatusOK {
			t.Fatalf("logout token with sub only: got %d, want 200", got)
		}
		for _, br := range []*browser{b, other} {
			if status, _ := br.user(t); status != http.StatusUnauthorized {
				t.Errorf("alice's session after logout token by sub: got %d, want 401", status)
			}
		}
		if status, _ := bob.user(t); status != http.StatusOK {
			t.Errorf("bob's session after alice's logout: got %d, want 200", status)
		}
	})
}

func randomJTI() string { return rand.Text() }

// mustKID returns the kid of one of the provider's ES256 keys, so a forged
// token names a key the gateway knows.
func mustKID(t *testing.T, s *stack) string {
	t.Helper()
	resp, err := http.Get(s.env.URL + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if k.Algorithm == "ES256" {
			return k.KeyID
		}
	}
	t.Fatal("no ES256 key in the provider's JWKS")
	return ""
}

// Two tabs may sign in at once; abandoned attempts do not pile up.
func TestPendingLogins(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.browser("alice")
	first := b.startLogin(t, "/one").Header.Get("Location")
	second := b.startLogin(t, "/two").Header.Get("Location")
	cb2 := b.toCallback(t, second)
	cb1 := b.toCallback(t, first)
	for _, tc := range []struct{ cb, want string }{{cb2, "/two"}, {cb1, "/one"}} {
		resp, _ := b.get(t, tc.cb)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != s.URL+tc.want {
			t.Errorf("callback: got %d to %q, want 302 to %s", resp.StatusCode, resp.Header.Get("Location"), s.URL+tc.want)
		}
	}

	pending := func() int {
		n := 0
		for _, c := range b.agent.Client.Jar.Cookies(mustURL(t, s.URL)) {
			if strings.HasPrefix(c.Name, "castellan-bff-login.") {
				n++
			}
		}
		return n
	}
	for i := 1; i <= 5; i++ {
		b.startLogin(t, "/")
		if got := pending(); got != i {
			t.Fatalf("after %d abandoned sign-ins: got %d login-state cookies, want %d", i, got, i)
		}
	}
	last := b.startLogin(t, "/latest").Header.Get("Location")
	if got := pending(); got != 1 {
		t.Errorf("after the sixth sign-in: got %d login-state cookies, want 1 (older ones dropped)", got)
	}
	resp, _ := b.get(t, b.toCallback(t, last))
	if resp.Header.Get("Location") != s.URL+"/latest" {
		t.Errorf("the newest attempt: got %d to %q, want it to complete", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// Anyone can fetch a login-state cookie from /bff/login and bring it back
// with a made-up code: the gateway stores nothing for that. The state is
// remembered as used only once the provider redeemed a real code for it, and
// the sweeper removes it once it expired.
func TestLoginStateStoredOnlyAfterSignIn(t *testing.T) {
	s := newStack(t, stackOptions{})
	used := func(t *testing.T, state string, at time.Time) bool {
		t.Helper()
		sum := sha256.Sum256([]byte(state))
		ok, err := s.store.Remembered(t.Context(), "bff-login:"+hex.EncodeToString(sum[:]), at)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	t.Run("made-up-code", func(t *testing.T) {
		stranger := s.browser("nobody")
		for range 3 {
			auth := stranger.startLogin(t, "/").Header.Get("Location")
			state := mustURL(t, auth).Query().Get("state")
			resp, _ := stranger.get(t, s.URL+"/bff/callback?"+url.Values{"code": {"made-up"}, "state": {state}}.Encode())
			if resp.StatusCode < 400 {
				t.Fatalf("callback with a made-up code: got %d, want an error", resp.StatusCode)
			}
			if used(t, state, s.env.Clock.Now()) {
				t.Fatalf("a callback with a made-up code stored its login state")
			}
		}
	})
	t.Run("sign-in-then-sweep", func(t *testing.T) {
		b := s.browser("alice")
		auth := b.startLogin(t, "/").Header.Get("Location")
		state := mustURL(t, auth).Query().Get("state")
		if resp, _ := b.get(t, b.toCallback(t, auth)); resp.StatusCode != http.StatusFound {
			t.Fatalf("callback: got %d, want 302", resp.StatusCode)
		}
		signedIn := s.env.Clock.Now()
		if !used(t, state, signedIn) {
			t.Fatal("a completed sign-in did not use up its login state")
		}
		s.env.Clock.Advance(time.Hour)
		if _, err := s.gw.Sweep(t.Context()); err != nil {
			t.Fatal(err)
		}
		// Asked at the time of the sign-in, an entry still stored would count.
		if used(t, state, signedIn) {
			t.Error("the sweep left an expired login state in the replay cache")
		}
	})
}
