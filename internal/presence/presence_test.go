package presence_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/castellan-auth/castellan/internal/server/servertest"
)

const spaOrigin = "http://127.0.0.1:9100"

type app struct {
	env     *servertest.Env
	agent   *servertest.Agent
	conf    oauth2.Config
	access  string
	refresh string
}

// newApp signs alice in to the spa client (public, PKCE, refresh tokens bound
// to the SSO session) and keeps its tokens, like the SPA would.
func newApp(t *testing.T, env *servertest.Env) *app {
	t.Helper()
	a := &app{env: env, agent: env.Agent("alice"), conf: oauth2.Config{ClientID: "spa", RedirectURL: servertest.SPARedirect,
		Endpoint: oauth2.Endpoint{AuthURL: env.URL + "/authorize", TokenURL: env.URL + "/token", AuthStyle: oauth2.AuthStyleInParams},
		Scopes:   []string{"openid", "offline_access"}}}
	v := oauth2.GenerateVerifier()
	last, err := a.agent.Follow(a.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(v)))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := a.conf.Exchange(context.Background(), servertest.Params(last.Location).Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	a.access, a.refresh = tok.AccessToken, tok.RefreshToken
	return a
}

// renew uses the refresh token, as the SPA does when its access token expires.
func (a *app) renew() error {
	tok, err := a.conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: a.refresh, Expiry: time.Now().Add(-time.Hour)}).Token()
	if err != nil {
		return err
	}
	a.access, a.refresh = tok.AccessToken, tok.RefreshToken
	return nil
}

func (a *app) call(t *testing.T, method, path, origin string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, a.env.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+a.access)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestIdleAppStopsRenewing: silent renewals do not keep the session alive; an
// app left alone stops renewing after the idle timeout.
func TestIdleAppStopsRenewing(t *testing.T) {
	env := servertest.New(t, servertest.Options{Config: servertest.WithClients(servertest.Config())})
	a := newApp(t, env)
	idle := env.Config.Session.IdleTimeout.D()
	step := idle / 3
	for elapsed := step; elapsed < idle; elapsed += step {
		env.Clock.Advance(step)
		if err := a.renew(); err != nil {
			t.Fatalf("renewal after %v: %v", elapsed, err)
		}
	}
	env.Clock.Advance(step)
	if err := a.renew(); err == nil {
		t.Fatal("an idle app kept renewing past the idle timeout")
	}
}

// TestActiveAppRenewsUntilAbsoluteTimeout: the activity signal (sent when the
// person uses the app) extends the idle timer; renewals continue until the
// absolute timeout and not beyond.
func TestActiveAppRenewsUntilAbsoluteTimeout(t *testing.T) {
	env := servertest.New(t, servertest.Options{Config: servertest.WithClients(servertest.Config())})
	a := newApp(t, env)
	abs := env.Config.Session.AbsoluteTimeout.D()
	step := env.Config.Session.IdleTimeout.D() / 2
	elapsed := time.Duration(0)
	for elapsed+step < abs {
		env.Clock.Advance(step)
		elapsed += step
		if err := a.renew(); err != nil {
			t.Fatalf("renewal of an active app after %v: %v", elapsed, err)
		}
		resp := a.call(t, http.MethodPost, "/session/activity", "")
		var body struct {
			IdleExpiresAt int64 `json:"idle_expires_at"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 200 || body.IdleExpiresAt == 0 {
			t.Fatalf("activity after %v: %d", elapsed, resp.StatusCode)
		}
	}
	env.Clock.Advance(step)
	if err := a.renew(); err == nil {
		t.Fatal("renewals continued past the absolute timeout")
	}
}

// event reads the next Server-Sent Event of a stream.
func event(t *testing.T, r *bufio.Reader) (string, string) {
	t.Helper()
	var name, data string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && name != "":
			return name, data
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
}

func openStream(t *testing.T, a *app) *bufio.Reader {
	t.Helper()
	resp := a.call(t, http.MethodGet, "/session/events", spaOrigin)
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != spaOrigin {
		t.Errorf("stream ACAO: %q", resp.Header.Get("Access-Control-Allow-Origin"))
	}
	r := bufio.NewReader(resp.Body)
	if name, _ := event(t, r); name != "ready" {
		t.Fatalf("first event %q, want ready", name)
	}
	return r
}

func awaitEnded(t *testing.T, r *bufio.Reader, want string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		name, data := event(t, r)
		if name != "session_ended" || !strings.Contains(data, `"reason":"`+want+`"`) {
			t.Errorf("event %q %s, want session_ended with reason %s", name, data, want)
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("no session_ended event within a second")
	}
}

func TestSessionEndedPushOnSignOut(t *testing.T) {
	env := servertest.New(t, servertest.Options{Config: servertest.WithClients(servertest.Config())})
	a := newApp(t, env)
	stream := openStream(t, a)
	home, _ := a.agent.Get(env.URL + "/")
	a.agent.Post(env.URL+"/logout", url.Values{"csrf_token": {servertest.CSRF(home.Body)}})
	awaitEnded(t, stream, "logout")
}

func TestSessionEndedPushOnExpiry(t *testing.T) {
	env := servertest.New(t, servertest.Options{Config: servertest.WithClients(servertest.Config())})
	a := newApp(t, env)
	stream := openStream(t, a)
	env.Clock.Advance(env.Config.Session.IdleTimeout.D())
	if _, err := env.Server.Sessions.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	awaitEnded(t, stream, "expired")
}

func TestPresenceCORSAndAuth(t *testing.T) {
	env := servertest.New(t, servertest.Options{Config: servertest.WithClients(servertest.Config())})
	a := newApp(t, env)
	cases := []struct {
		name, method, path, origin, auth string
		want                             int
		acao                             string
	}{
		{"ok/preflight-allowed-origin", http.MethodOptions, "/session/activity", spaOrigin, "", 204, spaOrigin},
		{"fail/preflight-unknown-origin", http.MethodOptions, "/session/activity", "https://evil.example", "", 403, ""},
		{"ok/activity-allowed-origin", http.MethodPost, "/session/activity", spaOrigin, "token", 200, spaOrigin},
		{"fail/activity-other-origin", http.MethodPost, "/session/activity", "https://evil.example", "token", 403, ""},
		{"fail/activity-no-token", http.MethodPost, "/session/activity", spaOrigin, "", 401, spaOrigin},
		{"fail/activity-bad-token", http.MethodPost, "/session/activity", spaOrigin, "garbage", 401, spaOrigin},
		{"ok/jwks-allowed-origin", http.MethodGet, "/jwks", spaOrigin, "", 200, spaOrigin},
		{"ok/jwks-unknown-origin-unreadable", http.MethodGet, "/jwks", "https://evil.example", "", 200, ""},
		{"ok/discovery-allowed-origin", http.MethodGet, "/.well-known/openid-configuration", spaOrigin, "", 200, spaOrigin},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, env.URL+tc.path, nil)
			req.Header.Set("Origin", tc.origin)
			if tc.method == http.MethodOptions {
				req.Header.Set("Access-Control-Request-Method", "POST")
			}
			switch tc.auth {
			case "token":
				req.Header.Set("Authorization", "Bearer "+a.access)
			case "garbage":
				req.Header.Set("Authorization", "Bearer garbage")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want || resp.Header.Get("Access-Control-Allow-Origin") != tc.acao {
				t.Fatalf("got %d ACAO %q, want %d %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), tc.want, tc.acao)
			}
			if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Error("credentials allowed")
			}
		})
	}
}
