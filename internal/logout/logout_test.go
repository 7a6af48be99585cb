package logout_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/jwstest"
	"github.com/castellan-auth/castellan/internal/logout"
	"github.com/castellan-auth/castellan/internal/server/servertest"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
)

// receiver is a relying party's back-channel logout endpoint.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	tokens   []string
	failures int // answer 503 this many times first
	got      chan string
}

func newReceiver(t *testing.T, failures int) *receiver {
	rc := &receiver{failures: failures, got: make(chan string, 16)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if rc.failures > 0 {
			rc.failures--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("logout token content type %q", r.Header.Get("Content-Type"))
		}
		r.ParseForm()
		tok := r.PostForm.Get("logout_token")
		rc.tokens = append(rc.tokens, tok)
		rc.got <- tok
	}))
	t.Cleanup(rc.Close)
	return rc
}

const (
	rpRedirect = "https://rp.example/callback"
	rpPostOut  = "https://rp.example/signed-out"
)

// setup starts a provider with a confidential client "rp" that has
// back-channel (to rc) and front-channel logout URIs.
func setup(t *testing.T, rc *receiver) *servertest.Env { return setupIn(t, rc, "") }

// setupIn is setup with the database and key in dir ("": a new one).
func setupIn(t *testing.T, rc *receiver, dir string) *servertest.Env {
	return setupWith(t, rc.URL+"/backchannel", dir, nil)
}

// setupWith starts a provider whose client "rp" has the back-channel logout
// URI backchannel; adjust, if set, changes the configuration first.
func setupWith(t *testing.T, backchannel, dir string, adjust func(*config.Config)) *servertest.Env {
	cfg := servertest.WithClients(servertest.Config())
	cfg.Clients = append(cfg.Clients, config.Client{
		ClientID: "rp", ClientName: "Relying Party", ClientSecret: servertest.WebSecret,
		RedirectURIs: []string{rpRedirect}, PostLogoutRedirectURIs: []string{rpPostOut},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scope: "openid profile offline_access",
		SkipConsent: true, BackchannelLogoutURI: backchannel, FrontchannelLogoutURI: "https://rp.example/frontchannel",
		IDTokenSignedResponseAlg: "ES256",
	})
	if adjust != nil {
		adjust(cfg)
	}
	return servertest.New(t, servertest.Options{Config: cfg, Dir: dir})
}

type tokens struct {
	access, refresh, id string
}

// signIn runs a code flow for rp in agent's browser.
func signIn(t *testing.T, env *servertest.Env, agent *servertest.Agent) tokens {
	t.Helper()
	return signInScopes(t, env, agent, "openid", "profile", "offline_access")
}

func signInScopes(t *testing.T, env *servertest.Env, agent *servertest.Agent, scopes ...string) tokens {
	t.Helper()
	conf := oauth2.Config{ClientID: "rp", ClientSecret: servertest.WebSecret, RedirectURL: rpRedirect,
		Endpoint: oauth2.Endpoint{AuthURL: env.URL + "/authorize", TokenURL: env.URL + "/token"},
		Scopes:   scopes}
	v := oauth2.GenerateVerifier()
	last, err := agent.Follow(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(v)))
	if err != nil {
		t.Fatal(err)
	}
	code := servertest.Params(last.Location).Get("code")
	if code == "" {
		t.Fatalf("no code: %d %s", last.Status, last.Location)
	}
	tok, err := conf.Exchange(context.Background(), code, oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := tok.Extra("id_token").(string)
	return tokens{tok.AccessToken, tok.RefreshToken, id}
}

// signInSPA gets tokens for the public spa client, whose grant is bound to the session.
func signInSPA(t *testing.T, env *servertest.Env, agent *servertest.Agent) tokens {
	t.Helper()
	conf := oauth2.Config{ClientID: "spa", RedirectURL: servertest.SPARedirect,
		Endpoint: oauth2.Endpoint{AuthURL: env.URL + "/authorize", TokenURL: env.URL + "/token", AuthStyle: oauth2.AuthStyleInParams},
		Scopes:   []string{"openid", "offline_access"}}
	v := oauth2.GenerateVerifier()
	last, err := agent.Follow(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(v)))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := conf.Exchange(context.Background(), servertest.Params(last.Location).Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("spa got no refresh token")
	}
	return tokens{access: tok.AccessToken, refresh: tok.RefreshToken}
}

func refreshPublic(env *servertest.Env, rt string) (int, string) {
	resp, err := http.PostForm(env.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"spa"}})
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func refresh(env *servertest.Env, rt string) int {
	req, _ := http.NewRequest(http.MethodPost, env.URL+"/token", strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("rp", servertest.WebSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func silent(t *testing.T, agent *servertest.Agent) url.Values {
	t.Helper()
	s, err := agent.Get(agent.Env.URL + "/authorize?" + url.Values{"client_id": {"rp"}, "redirect_uri": {rpRedirect},
		"response_type": {"code"}, "scope": {"openid"}, "prompt": {"none"}, "state": {"x"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return servertest.Params(s.Location)
}

// verifyLogoutToken checks a logout token against the provider's JWKS and the
// claims OIDC Back-Channel Logout §2.4 requires.
func verifyLogoutToken(t *testing.T, env *servertest.Env, tok string) logout.LogoutClaims {
	t.Helper()
	resp, err := http.Get(env.URL + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if typ := jws.Signatures[0].Header.ExtraHeaders[jose.HeaderType]; typ != "logout+jwt" {
		t.Errorf("typ: got %v, want logout+jwt", typ)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatal("logout token signed by a key not in the JWKS")
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	json.Unmarshal(payload, &raw)
	if _, ok := raw["nonce"]; ok {
		t.Error("logout token has a nonce")
	}
	var c logout.LogoutClaims
	json.Unmarshal(payload, &c)
	if c.Issuer != env.URL || !c.Audience.Contains("rp") || c.IssuedAt == 0 || c.JTI == "" || c.SID == "" || c.Subject == "" {
		t.Errorf("logout token claims: %+v", c)
	}
	if _, ok := c.Events[logout.BackchannelEvent]; !ok || len(c.Events) != 1 {
		t.Errorf("events: %v", c.Events)
	}
	return c
}

func await(t *testing.T, rc *receiver) string {
	t.Helper()
	select {
	case tok := <-rc.got:
		return tok
	case <-time.After(5 * time.Second):
		t.Fatal("no back-channel logout token received")
		return ""
	}
}

// TestRPInitiatedLogout: a valid logout redirects with the exact state, sends a
// back-channel logout token with sid and events and no nonce, and afterwards
// prompt=none answers login_required and the session's refresh tokens are dead.
// (ADVERSARIAL 61; oidcc-backchannel-rp-initiated-logout.)
func TestRPInitiatedLogout(t *testing.T) {
	rc := newReceiver(t, 0)
	env := setup(t, rc)
	agent := env.Agent("alice")
	tk := signIn(t, env, agent)
	spa := signInSPA(t, env, agent)
	if p := silent(t, agent); p.Get("code") == "" {
		t.Fatalf("silent authorize before logout: %v", p)
	}
	s, err := agent.Get(env.URL + "/end_session?" + url.Values{"id_token_hint": {tk.id},
		"post_logout_redirect_uri": {rpPostOut}, "state": {"st-9 x"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	// The client has a front-channel URI, so the signed-out page comes first.
	if s.Status != http.StatusOK || !strings.Contains(s.Body, `<iframe src="https://rp.example/frontchannel?iss=`) {
		t.Fatalf("logged-out page: %d\n%s", s.Status, s.Body)
	}
	if !strings.Contains(s.Body, "https://rp.example/signed-out?state=st-9&#43;x") {
		t.Errorf("continue link does not carry the exact state:\n%s", s.Body)
	}
	if csp := s.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-src https://rp.example") {
		t.Errorf("CSP %q does not allow the front-channel frame", csp)
	}
	claims := verifyLogoutToken(t, env, await(t, rc))
	if p := silent(t, agent); p.Get("error") != "login_required" {
		t.Fatalf("prompt=none after logout: %v, want login_required", p)
	}
	// rp is confidential and asked for offline_access: its grant outlives the
	// session by design. Session-bound grants die with it.
	if code := refresh(env, tk.refresh); code != http.StatusOK {
		t.Fatalf("offline refresh after logout: %d, want 200", code)
	}
	if code, body := refreshPublic(env, spa.refresh); code != http.StatusBadRequest || !strings.Contains(body, `"invalid_grant"`) {
		t.Fatalf("session-bound refresh after logout: %d %s, want 400 invalid_grant", code, body)
	}
	_ = claims
}

func TestRPInitiatedLogoutConfirmed(t *testing.T) {
	rc := newReceiver(t, 0)
	env := setup(t, rc)
	agent := env.Agent("alice")
	signIn(t, env, agent)
	// Without an id_token_hint the person confirms; then the signed-out page
	// (rp, used in this session, has a front-channel URI) continues to spa's
	// registered post-logout URI with the state.
	s, _ := agent.Get(env.URL + "/end_session?" + url.Values{"client_id": {"spa"}, "post_logout_redirect_uri": {"http://127.0.0.1:9100/"}, "state": {"abc"}}.Encode())
	if s.Status != http.StatusOK || !strings.Contains(s.Body, `name="decision" value="logout"`) {
		t.Fatalf("without id_token_hint: got %d, want the confirmation page", s.Status)
	}
	s, _ = agent.Post(env.URL+"/end_session", url.Values{"csrf_token": {servertest.CSRF(s.Body)}, "decision": {"logout"},
		"client_id": {"spa"}, "post_logout_redirect_uri": {"http://127.0.0.1:9100/"}, "state": {"abc"}})
	if s.Status != http.StatusOK || !strings.Contains(s.Body, `href="http://127.0.0.1:9100/?state=abc"`) {
		t.Fatalf("confirmed logout: got %d, want the signed-out page continuing to the post-logout URI with state\n%s", s.Status, s.Body)
	}
	if p := silent(t, agent); p.Get("error") != "login_required" {
		t.Fatalf("prompt=none after logout: %v", p)
	}
}

func TestEndSessionRefusals(t *testing.T) {
	rc := newReceiver(t, 0)
	env := setup(t, rc)
	agent := env.Agent("alice")
	tk := signIn(t, env, agent)
	forged := tk.id[:strings.LastIndex(tk.id, ".")+1] + "AAAA"
	header, _, _ := strings.Cut(tk.id, ".")
	_ = header
	none := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + strings.Split(tk.id, ".")[1] + "."
	cases := []struct {
		name   string
		params url.Values
		method string
		want   int // status; never a redirect
	}{
		{"adv57/unregistered-post-logout-uri", url.Values{"id_token_hint": {tk.id}, "post_logout_redirect_uri": {"https://evil.example/"}}, "GET", 400},
		{"adv57/registered-uri-with-query-added", url.Values{"id_token_hint": {tk.id}, "post_logout_redirect_uri": {rpPostOut + "?x=1"}}, "GET", 400},
		{"adv58/hint-with-alg-none", url.Values{"id_token_hint": {none}, "post_logout_redirect_uri": {rpPostOut}}, "GET", 400},
		{"adv58/hint-with-bad-signature", url.Values{"id_token_hint": {forged}, "post_logout_redirect_uri": {rpPostOut}}, "GET", 400},
		{"adv59/uri-without-hint-or-client", url.Values{"post_logout_redirect_uri": {rpPostOut}}, "GET", 200},
		{"adv60/cross-site-auto-submitted-post", url.Values{"decision": {"logout"}, "client_id": {"rp"}, "post_logout_redirect_uri": {rpPostOut}}, "POST", 200},
		{"fail/client-id-mismatch", url.Values{"id_token_hint": {tk.id}, "client_id": {"web"}}, "GET", 400},
		{"fail/repeated-parameter", url.Values{"client_id": {"rp", "rp"}}, "GET", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s servertest.Step
			if tc.method == "POST" {
				s, _ = agent.Post(env.URL+"/end_session", tc.params)
			} else {
				s, _ = agent.Get(env.URL + "/end_session?" + tc.params.Encode())
			}
			if s.Status != tc.want || s.Location != "" {
				t.Fatalf("got %d Location %q, want %d and no redirect", s.Status, s.Location, tc.want)
			}
			if strings.Contains(s.Body, "evil.example") {
				t.Error("page links to the unregistered URI")
			}
			if p := silent(t, agent); p.Get("code") == "" {
				t.Fatalf("the session did not survive a refused logout: %v", p)
			}
		})
	}
}

func TestSignOutButtonNotifiesClients(t *testing.T) {
	rc := newReceiver(t, 0)
	env := setup(t, rc)
	agent := env.Agent("alice")
	signIn(t, env, agent)
	home, _ := agent.Get(env.URL + "/")
	s, _ := agent.Post(env.URL+"/logout", url.Values{"csrf_token": {servertest.CSRF(home.Body)}})
	if s.Status != http.StatusOK || !strings.Contains(s.Body, "rp.example/frontchannel") {
		t.Fatalf("signed-out page without front-channel iframe: %d", s.Status)
	}
	verifyLogoutToken(t, env, await(t, rc))
}

// TestExpiredSessionNotifies: a session that expires is announced by the
// sweeper even though its browser never comes back.
func TestExpiredSessionNotifies(t *testing.T) {
	rc := newReceiver(t, 0)
	env := setup(t, rc)
	tk := signIn(t, env, env.Agent("alice"))
	env.Clock.Advance(env.Config.Session.IdleTimeout.D())
	if n, err := env.Server.Sessions.Sweep(context.Background()); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	verifyLogoutToken(t, env, await(t, rc))
	_ = tk
}

func TestBackchannelRetries(t *testing.T) {
	rc := newReceiver(t, 2)
	env := setup(t, rc)
	attempts := observe(env)
	agent := env.Agent("alice")
	tk := signIn(t, env, agent)
	start := time.Now()
	s, _ := agent.Get(env.URL + "/end_session?" + url.Values{"id_token_hint": {tk.id}}.Encode())
	if s.Status != http.StatusOK {
		t.Fatalf("logout: %d", s.Status)
	}
	if time.Since(start) > time.Second {
		t.Error("the browser waited for the back-channel delivery")
	}
	// Two failures, one second and then two seconds of backoff.
	for _, wait := range []time.Duration{time.Second, 2 * time.Second} {
		if got := awaitOutcome(t, attempts); got != "failed" {
			t.Fatalf("attempt: got %q, want failed", got)
		}
		env.Clock.Advance(wait)
		env.Server.Notifier.Wake()
	}
	verifyLogoutToken(t, env, await(t, rc))
}

// observe returns the outcomes of env's notifier's attempts, in order.
func observe(env *servertest.Env) <-chan string {
	ch := make(chan string, 256)
	env.Server.Notifier.Observe(func(_ storage.LogoutNotice, outcome string) { ch <- outcome })
	return ch
}

func awaitOutcome(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(5 * time.Second):
		t.Fatal("no back-channel logout attempt")
		return ""
	}
}

// downReceiver is a back-channel logout endpoint that answers 503 until
// the provider's (fake) clock reaches up.
type downReceiver struct {
	*httptest.Server
	clock atomic.Pointer[clock.Fake]
	got   chan string
}

func newDownReceiver(t *testing.T, up time.Time) *downReceiver {
	rc := &downReceiver{got: make(chan string, 1)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if clk := rc.clock.Load(); clk == nil || clk.Now().Before(up) {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		r.ParseForm()
		rc.got <- r.PostForm.Get("logout_token")
	}))
	t.Cleanup(rc.Close)
	return rc
}

// TestLogoutNoticeRetriedUntilTokensDie: a notice that cannot be delivered is
// tried again with exponential backoff (1 s doubling, at most a minute apart)
// for as long as a token of the ended session can be used — the longest of
// the access and ID token lifetimes, plus a minute of leeway — not five
// times over 15 s as before. A receiver back within that window gets its
// logout token; one that never comes back has its notice given up at the
// window's end and counted, and nothing is left pending.
func TestLogoutNoticeRetriedUntilTokensDie(t *testing.T) {
	const (
		accessTTL = 10 * time.Minute
		idTTL     = 5 * time.Minute
		window    = accessTTL + time.Minute
	)
	cases := []struct {
		name    string
		downFor time.Duration // 0: never back
	}{
		{"back-after-20s", 20 * time.Second},
		{"back-just-before-the-tokens-die", window - 90*time.Second},
		{"never-back", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The fake clock starts at servertest.Start and moves only here.
			ended := servertest.Start
			up := ended.Add(c.downFor)
			if c.downFor == 0 {
				up = ended.Add(100 * window)
			}
			rc := newDownReceiver(t, up)
			env := setupWith(t, rc.URL+"/backchannel", "", func(cfg *config.Config) {
				cfg.Tokens.AccessTokenTTL, cfg.Tokens.IDTokenTTL = config.Duration(accessTTL), config.Duration(idTTL)
			})
			rc.clock.Store(env.Clock)
			attempts := observe(env)
			agent := env.Agent("alice")
			signIn(t, env, agent)
			env.SignOut(t, agent)

			failed := 0
			for delay := time.Second; ; delay = min(2*delay, time.Minute) {
				outcome := awaitOutcome(t, attempts)
				elapsed := env.Clock.Now().Sub(ended)
				if outcome == "failed" {
					failed++
					env.Clock.Advance(delay)
					env.Server.Notifier.Wake()
					continue
				}
				switch {
				case c.downFor > 0 && outcome != "delivered":
					t.Fatalf("after %v (%d failures): %s, want delivered", elapsed, failed, outcome)
				case c.downFor == 0 && outcome != "given_up":
					t.Fatalf("after %v (%d failures): %s, want given_up", elapsed, failed, outcome)
				case c.downFor == 0 && (elapsed >= window || elapsed+delay < window):
					t.Fatalf("given up at %v, want at the last attempt before %v", elapsed, window)
				}
				break
			}
			if failed < 5 {
				// The old notifier gave up at the fifth failure, about 15 s in.
				t.Errorf("%d failed attempts before the outcome, want at least 5", failed)
			}
			wantGivenUp := 1.0
			if c.downFor > 0 {
				verifyLogoutToken(t, env, <-rc.got)
				wantGivenUp = 0
			}
			m := gather(t, env)
			if m["castellan_logout_notices_pending"] != 0 || m["castellan_logout_notices_undelivered"] != 0 ||
				m["castellan_logout_notices_given_up_total"] != wantGivenUp ||
				m[`castellan_logout_notice_attempts_total{outcome="failed"}`] != float64(failed)+wantGivenUp {
				t.Errorf("metrics: %v", m)
			}
		})
	}
}

// TestLogoutNoticeMetrics: the notices waiting in storage, and those among
// them whose delivery failed, are gauges read at each scrape.
func TestLogoutNoticeMetrics(t *testing.T) {
	rc := newDownReceiver(t, servertest.Start.Add(time.Hour))
	env := setupWith(t, rc.URL+"/backchannel", "", nil)
	rc.clock.Store(env.Clock)
	attempts := observe(env)
	agent := env.Agent("alice")
	signIn(t, env, agent)
	if m := gather(t, env); m["castellan_logout_notices_pending"] != 0 {
		t.Fatalf("before sign-out: %v", m)
	}
	env.SignOut(t, agent)
	if got := awaitOutcome(t, attempts); got != "failed" {
		t.Fatalf("attempt: %s, want failed", got)
	}
	m := gather(t, env)
	if m["castellan_logout_notices_pending"] != 1 || m["castellan_logout_notices_undelivered"] != 1 {
		t.Errorf("while the receiver is down: %v, want 1 pending and 1 undelivered", m)
	}
}

// gather reads env's metrics: name{labels} → value, for counters and gauges.
func gather(t *testing.T, env *servertest.Env) map[string]float64 {
	t.Helper()
	families, err := env.Server.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + `="` + l.GetValue() + `"}`
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// TestSessionsEndedElsewhereNotify: sessions ended outside the server's
// session manager — by the admin CLI, another process, disabling or deleting
// the user — are announced all the same: the notices are queued in storage
// with the ending, and the server finds them without being told. Deleting the
// user takes their grants, which name the clients to tell; the notice was
// queued before.
func TestSessionsEndedElsewhereNotify(t *testing.T) {
	for _, c := range []struct {
		name string
		end  func(ctx context.Context, env *servertest.Env, userID string) error
	}{
		{"disable-user", func(ctx context.Context, env *servertest.Env, id string) error {
			_, err := env.Store.DisableUser(ctx, id, env.Clock.Now())
			return err
		}},
		{"delete-user", func(ctx context.Context, env *servertest.Env, id string) error {
			_, err := env.Store.DeleteUser(ctx, id, env.Clock.Now())
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := newReceiver(t, 0)
			env := setup(t, rc)
			signIn(t, env, env.Agent("alice"))
			u, err := env.Store.GetUserByUsername(t.Context(), "alice")
			if err != nil {
				t.Fatal(err)
			}
			if err := c.end(t.Context(), env, u.ID); err != nil {
				t.Fatal(err)
			}
			if got := verifyLogoutToken(t, env, await(t, rc)); got.Subject != u.ID {
				t.Errorf("logout token sub %q, want %q", got.Subject, u.ID)
			}
		})
	}
}

// TestNoticesOutliveTheServer: a session that ends while no server runs (the
// admin CLI disables the user during maintenance) is announced by the next
// server to start on the database.
func TestNoticesOutliveTheServer(t *testing.T) {
	rc := newReceiver(t, 0)
	dir := t.TempDir()
	t.Run("sign-in", func(t *testing.T) { // its server stops when it ends
		env := setupIn(t, rc, dir)
		signIn(t, env, env.Agent("alice"))
	})

	ctx := t.Context()
	st, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(dir, "castellan.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	u, err := st.GetUserByUsername(ctx, "alice")
	if err == nil {
		_, err = st.DisableUser(ctx, u.ID, time.Now())
	}
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-rc.got:
		t.Fatal("a logout token arrived with no server running")
	case <-time.After(100 * time.Millisecond):
	}

	env := setupIn(t, rc, dir)
	if got := verifyLogoutToken(t, env, await(t, rc)); got.Subject != u.ID {
		t.Errorf("logout token sub %q, want %q", got.Subject, u.ID)
	}
}

func TestDiscoveryListsLogout(t *testing.T) {
	env := setup(t, newReceiver(t, 0))
	resp, err := http.Get(env.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var md map[string]any
	json.Unmarshal(b, &md)
	// oidcc-backchannel-logout-discovery-endpoint-verification
	for _, k := range []string{"backchannel_logout_supported", "backchannel_logout_session_supported", "frontchannel_logout_supported", "frontchannel_logout_session_supported"} {
		if md[k] != true {
			t.Errorf("%s: got %v, want true", k, md[k])
		}
	}
	if md["end_session_endpoint"] != env.URL+"/end_session" {
		t.Errorf("end_session_endpoint: %v", md["end_session_endpoint"])
	}
}

// serverSide is a relying party's own HTTP client calling the end-session
// endpoint from its server: no cookie, no redirect followed.
func serverSide(t *testing.T, method, endpoint string, params url.Values) (int, string, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var resp *http.Response
	var err error
	if method == http.MethodPost {
		resp, err = c.PostForm(endpoint, params)
	} else {
		resp, err = c.Get(endpoint + "?" + params.Encode())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// forgeHint signs an ID token with the provider's own key, as only a
// provider bug could: what the hint rules refuse even when the signature is
// good. base are the claims of a real ID token; change adjusts them.
func forgeHint(t *testing.T, env *servertest.Env, base string, change func(map[string]any)) string {
	t.Helper()
	claims := servertest.Claims(base)
	change(claims)
	return jwstest.SignClaims(t, jose.ES256, env.SigningKey(t, "ES256"), (&jose.SignerOptions{}).WithType("JWT"), claims)
}

// TestEndSessionWithoutCookie: an RP-initiated logout from the client's
// server (zitadel's rp.EndSession posts the form, oauth2-proxy's
// --backend-logout-url GETs it), with no session cookie, ends the session
// its id_token_hint names when that is a live session of the hint's user in
// which the hint's client got tokens — an expired hint included — and then
// notifies as any logout. Otherwise it ends nothing and says so: 400 when a
// live session is left alone (a hint of another client or user, or issued
// before the session began), and "no session was ended" when there was
// none alive to end.
func TestEndSessionWithoutCookie(t *testing.T) {
	cases := []struct {
		name   string
		method string
		// params builds the request from rp's tokens.
		params func(t *testing.T, env *servertest.Env, tk tokens) url.Values
		// before runs first (e.g. signs out in the browser, moves the clock).
		before func(t *testing.T, env *servertest.Env, agent *servertest.Agent)
		status int
		// location is the redirect expected ("" for none).
		location string
		// ends says the session is ended (and announced); survives that it
		// is left alive (neither: it had ended before).
		ends, survives bool
		body           string
	}{
		{name: "zitadel/post-with-hint-and-redirect", method: http.MethodPost,
			params: func(_ *testing.T, _ *servertest.Env, tk tokens) url.Values {
				return url.Values{"id_token_hint": {tk.id}, "client_id": {"rp"}, "post_logout_redirect_uri": {rpPostOut}, "state": {"s1"}}
			},
			// rp has a front-channel URI: the signed-out page with its iframe
			// comes first, then continues to the post-logout URI.
			status: http.StatusOK, ends: true, body: `id="continue" href="` + rpPostOut + `?state=s1"`},
		{name: "oauth2-proxy/get-with-hint", method: http.MethodGet,
			params: func(_ *testing.T, _ *servertest.Env, tk tokens) url.Values {
				return url.Values{"id_token_hint": {tk.id}}
			},
			status: http.StatusOK, ends: true, body: "You are signed out of Castellan"},
		{name: "expired-hint", method: http.MethodGet,
			before: func(_ *testing.T, env *servertest.Env, _ *servertest.Agent) {
				env.Clock.Advance(env.Config.Tokens.IDTokenTTL.D() + time.Minute)
			},
			params: func(_ *testing.T, _ *servertest.Env, tk tokens) url.Values {
				return url.Values{"id_token_hint": {tk.id}, "post_logout_redirect_uri": {rpPostOut}}
			},
			status: http.StatusOK, ends: true, body: `id="continue" href="` + rpPostOut + `"`},
		{name: "fail/hint-of-a-client-without-tokens-in-the-session", method: http.MethodGet,
			params: func(t *testing.T, env *servertest.Env, tk tokens) url.Values {
				return url.Values{"id_token_hint": {forgeHint(t, env, tk.id, func(c map[string]any) { c["aud"] = "web" })}}
			},
			status: http.StatusBadRequest, survives: true, body: "No session was ended"},
		{name: "fail/hint-of-another-user", method: http.MethodPost,
			params: func(t *testing.T, env *servertest.Env, tk tokens) url.Values {
				bob, err := env.Store.GetUserByUsername(t.Context(), "bob")
				if err != nil {
					t.Fatal(err)
				}
				return url.Values{"id_token_hint": {forgeHint(t, env, tk.id, func(c map[string]any) { c["sub"] = bob.ID })}}
			},
			status: http.StatusBadRequest, survives: true, body: "No session was ended"},
		{name: "fail/hint-issued-before-the-session", method: http.MethodGet,
			params: func(t *testing.T, env *servertest.Env, tk tokens) url.Values {
				return url.Values{"id_token_hint": {forgeHint(t, env, tk.id, func(c map[string]any) {
					c["iat"] = env.Clock.Now().Add(-time.Hour).Unix()
				})}, "post_logout_redirect_uri": {rpPostOut}}
			},
			status: http.StatusBadRequest, survives: true, body: "No session was ended"},
		{name: "session-already-ended", method: http.MethodGet,
			before: func(t *testing.T, env *servertest.Env, agent *servertest.Agent) { env.SignOut(t, agent) },
			params: func(_ *testing.T, _ *servertest.Env, tk tokens) url.Values {
				return url.Values{"id_token_hint": {tk.id}}
			},
			status: http.StatusOK, body: "No session was ended"},
		{name: "session-already-ended/with-redirect", method: http.MethodPost,
			before: func(t *testing.T, env *servertest.Env, agent *servertest.Agent) { env.SignOut(t, agent) },
			params: func(_ *testing.T, _ *servertest.Env, tk tokens) url.Values {
				return url.Values{"id_token_hint": {tk.id}, "post_logout_redirect_uri": {rpPostOut}}
			},
			status: http.StatusSeeOther, location: rpPostOut},
		{name: "no-hint", method: http.MethodGet,
			params: func(_ *testing.T, _ *servertest.Env, _ tokens) url.Values {
				return url.Values{"client_id": {"rp"}}
			},
			status: http.StatusOK, survives: true, body: "No session was ended"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc := newReceiver(t, 0)
			env := setupWith(t, rc.URL+"/backchannel", "", func(cfg *config.Config) {
				cfg.Tokens.IDTokenTTL = config.Duration(5 * time.Minute)
			})
			agent := env.Agent("alice")
			tk := signIn(t, env, agent)
			alice, err := env.Store.GetUserByUsername(t.Context(), "alice")
			if err != nil {
				t.Fatal(err)
			}
			if c.before != nil {
				c.before(t, env, agent)
			}
			endedBefore := gather(t, env)[`castellan_sessions_total{event="ended"}{reason="rp_logout"}`]
			status, location, body := serverSide(t, c.method, env.URL+"/end_session", c.params(t, env, tk))
			if status != c.status || location != c.location {
				t.Fatalf("got %d Location %q, want %d %q\n%s", status, location, c.status, c.location, body)
			}
			if c.body != "" && !strings.Contains(body, c.body) {
				t.Errorf("page does not say %q:\n%s", c.body, body)
			}
			sessions, err := env.Store.ListSessionsByUser(t.Context(), alice.ID)
			if err != nil {
				t.Fatal(err)
			}
			endedAfter := gather(t, env)[`castellan_sessions_total{event="ended"}{reason="rp_logout"}`]
			if !c.ends {
				if c.survives && len(sessions) != 1 {
					t.Fatalf("the session did not survive: %d sessions", len(sessions))
				}
				if endedAfter != endedBefore {
					t.Errorf("a session ended was counted")
				}
				return
			}
			if len(sessions) != 0 {
				t.Fatalf("%d sessions left, want the hint's ended", len(sessions))
			}
			if endedAfter != endedBefore+1 {
				t.Errorf("castellan_sessions_total{ended,rp_logout}: got %v, want %v", endedAfter, endedBefore+1)
			}
			if got := verifyLogoutToken(t, env, await(t, rc)); got.SID != servertest.Claims(tk.id)["sid"] {
				t.Errorf("logout token sid %q, want the hint's", got.SID)
			}
			if p := silent(t, agent); p.Get("error") != "login_required" {
				t.Errorf("prompt=none in the browser after the server-side logout: %v, want login_required", p)
			}
		})
	}
}

// TestEndSessionStorageError: storage failing while the client is looked up
// is a server error, not "unknown client_id".
func TestEndSessionStorageError(t *testing.T) {
	env := setup(t, newReceiver(t, 0))
	env.Store.Close()
	status, _, body := serverSide(t, http.MethodGet, env.URL+"/end_session", url.Values{"client_id": {"rp"}})
	if status != http.StatusInternalServerError || strings.Contains(body, "unknown client_id") {
		t.Fatalf("got %d, want 500 and no claim that the client is unknown\n%s", status, body)
	}
}
