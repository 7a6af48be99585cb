package presence_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/presence"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// streamEnv is a provider whose session-ended streams are held to limits.
func streamEnv(t *testing.T, limits config.SessionEvents, adjust ...func(*servertest.Options)) *servertest.Env {
	t.Helper()
	cfg := servertest.WithClients(servertest.Config())
	limits.MaxLifetime = cfg.SessionEvents.MaxLifetime
	cfg.SessionEvents = limits
	opt := servertest.Options{Config: cfg}
	for _, a := range adjust {
		a(&opt)
	}
	return servertest.New(t, opt)
}

// stream is an open session-ended stream as the app reads it.
type stream struct {
	resp *http.Response
	r    *bufio.Reader
}

// tryStream asks for a stream; the caller gets the answer, open or refused.
func tryStream(t *testing.T, a *app) (*http.Response, error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.env.URL+"/session/events", nil)
	req.Header.Set("Authorization", "Bearer "+a.access)
	req.Header.Set("Origin", spaOrigin)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		t.Cleanup(func() { resp.Body.Close() })
	}
	return resp, err
}

// open asks for a stream and reads its ready event.
func open(t *testing.T, a *app) *stream {
	t.Helper()
	resp, err := tryStream(t, a)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream: got %d %s, want 200", resp.StatusCode, b)
	}
	s := &stream{resp: resp, r: bufio.NewReader(resp.Body)}
	if name, _, err := s.next(); err != nil || name != "ready" {
		t.Fatalf("first event: got %q (%v), want ready", name, err)
	}
	return s
}

// next reads the next event of the stream (comments skipped).
func (s *stream) next() (name, data string, err error) {
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return "", "", err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && name != "":
			return name, data, nil
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
}

// expectFinal waits (at most a few seconds: a stream that never ends fails
// the test instead of hanging it) for the stream's last event, which must be
// name with data holding want, and then for the stream to end.
func (s *stream) expectFinal(t *testing.T, name, want string) {
	t.Helper()
	type ev struct {
		name, data string
		err        error
	}
	got := make(chan ev, 1)
	go func() {
		n, d, err := s.next()
		if err == nil {
			_, err = io.Copy(io.Discard, s.r)
		}
		got <- ev{n, d, err}
	}()
	select {
	case e := <-got:
		if e.err != nil || e.name != name || !strings.Contains(e.data, want) {
			t.Errorf("last event: got %q %s (%v), want %s with %s and then the end of the stream", e.name, e.data, e.err, name, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s event within 5 s", name)
	}
}

// refused checks a stream refused for the limits: 429 with Retry-After, an
// OAuth error body, and CORS for the app's origin so it can read them.
func refused(t *testing.T, resp *http.Response, desc string) {
	t.Helper()
	var body struct{ Error, ErrorDescription string }
	json.NewDecoder(resp.Body).Decode(&struct {
		Error            *string `json:"error"`
		ErrorDescription *string `json:"error_description"`
	}{&body.Error, &body.ErrorDescription})
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
		body.Error != "temporarily_unavailable" || !strings.Contains(body.ErrorDescription, desc) {
		t.Errorf("got %d Retry-After %q %+v, want 429 with Retry-After and temporarily_unavailable (%s)",
			resp.StatusCode, resp.Header.Get("Retry-After"), body, desc)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != spaOrigin {
		t.Errorf("ACAO: got %q, want %q", resp.Header.Get("Access-Control-Allow-Origin"), spaOrigin)
	}
}

// TestStreamsPerSessionCap: a session holds at most max_per_session streams;
// one more closes the oldest, which is told why before it ends, and the
// others stay open.
func TestStreamsPerSessionCap(t *testing.T) {
	env := streamEnv(t, config.SessionEvents{MaxPerSession: 3, MaxPerAddress: 100, MaxStreams: 100})
	a := newApp(t, env)
	streams := []*stream{open(t, a), open(t, a), open(t, a)}
	fourth := open(t, a)
	streams[0].expectFinal(t, "closed", `"reason":"replaced"`)
	if n := env.Server.Presence.Broker.OpenStreams(); n != 3 {
		t.Errorf("open streams: got %d, want 3", n)
	}
	// The newest streams are the session's: they get its end.
	home, _ := a.agent.Get(env.URL + "/")
	a.agent.Post(env.URL+"/logout", url.Values{"csrf_token": {servertest.CSRF(home.Body)}})
	for _, s := range []*stream{streams[1], streams[2], fourth} {
		s.expectFinal(t, "session_ended", `"reason":"logout"`)
	}
}

// TestStreamsPerAddressCap: one address holds at most max_per_address
// streams, whatever the sessions; beyond it 429. A session at its own cap
// still replaces its oldest stream (the address holds no more than before).
func TestStreamsPerAddressCap(t *testing.T) {
	env := streamEnv(t, config.SessionEvents{MaxPerSession: 3, MaxPerAddress: 4, MaxStreams: 100})
	a, b := newApp(t, env), newApp(t, env)
	first := open(t, a)
	open(t, a)
	open(t, a)
	open(t, b)
	resp, err := tryStream(t, b)
	if err != nil {
		t.Fatal(err)
	}
	refused(t, resp, "from this address")
	open(t, a)
	first.expectFinal(t, "closed", `"reason":"replaced"`)
	if n := env.Server.Presence.Broker.OpenStreams(); n != 4 {
		t.Errorf("open streams: got %d, want 4", n)
	}
}

// TestStreamsTotalCap: many streams opened at once from many sessions: the
// node holds exactly max_streams, every other one is refused with 429, and
// /healthz answers while they are open.
func TestStreamsTotalCap(t *testing.T) {
	const sessions, perSession, total = 10, 8, 64
	env := streamEnv(t, config.SessionEvents{MaxPerSession: perSession, MaxPerAddress: 1000, MaxStreams: total})
	apps := make([]*app, sessions)
	for i := range apps {
		apps[i] = newApp(t, env)
	}
	var (
		wg           sync.WaitGroup
		mu           sync.Mutex
		ok, tooMany  int
		others       []string
		openStreams  []*http.Response
		ctx, release = context.WithCancel(context.Background())
	)
	defer release()
	// The first session holds its limit before the rush, so that it can
	// show that a replacement still works at the node's cap.
	first := make([]*stream, perSession)
	for i := range first {
		first[i] = open(t, apps[0])
	}
	ok = perSession
	for _, a := range apps[1:] {
		for range perSession {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.env.URL+"/session/events", nil)
				req.Header.Set("Authorization", "Bearer "+a.access)
				resp, err := http.DefaultClient.Do(req)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					others = append(others, err.Error())
				case resp.StatusCode == http.StatusOK:
					ok++
					openStreams = append(openStreams, resp)
				case resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "":
					tooMany++
					resp.Body.Close()
				default:
					others = append(others, resp.Status)
					resp.Body.Close()
				}
			}()
		}
	}
	wg.Wait()
	if ok != total || tooMany != sessions*perSession-total || len(others) > 0 {
		t.Errorf("got %d open, %d refused with 429, others %v; want %d open and %d refused", ok, tooMany, others, total, sessions*perSession-total)
	}
	if n := env.Server.Presence.Broker.OpenStreams(); n != total {
		t.Errorf("the broker holds %d streams, want %d", n, total)
	}
	resp, err := http.Get(env.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /healthz with %d streams open: got %d, want 200", total, resp.StatusCode)
	}
	// At the node's cap, a session at its own cap still replaces its
	// oldest stream: the node holds no more than before.
	open(t, apps[0])
	first[0].expectFinal(t, "closed", `"reason":"replaced"`)
	if n := env.Server.Presence.Broker.OpenStreams(); n != total {
		t.Errorf("after a replacement the broker holds %d streams, want %d", n, total)
	}
}

// TestStreamEnds: a stream is closed, with a final event saying why, when it
// reaches max_lifetime, when its access token expires and when the token's
// grant is revoked; and the server's shutdown closes every stream.
func TestStreamEnds(t *testing.T) {
	for _, tc := range []struct {
		name      string
		accessTTL time.Duration
		end       func(t *testing.T, env *servertest.Env, a *app)
		reason    string
	}{
		{"lifetime", time.Hour, func(t *testing.T, env *servertest.Env, a *app) {
			env.Clock.Advance(env.Config.SessionEvents.MaxLifetime.D())
		}, presence.ClosedLifetime},
		{"token-expired", 5 * time.Minute, func(t *testing.T, env *servertest.Env, a *app) {
			env.Clock.Advance(5 * time.Minute)
		}, presence.ClosedTokenExpired},
		{"token-revoked", time.Hour, func(t *testing.T, env *servertest.Env, a *app) {
			resp, err := http.PostForm(env.URL+"/revoke", url.Values{"token": {a.refresh}, "client_id": {"spa"}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("revoke: got %d", resp.StatusCode)
			}
		}, presence.ClosedTokenRevoked},
		{"shutdown", time.Hour, func(t *testing.T, env *servertest.Env, a *app) {
			env.Server.Presence.Broker.Shutdown()
		}, presence.ClosedShutdown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := servertest.WithClients(servertest.Config())
			cfg.Tokens.AccessTokenTTL = config.Duration(tc.accessTTL)
			env := servertest.New(t, servertest.Options{Config: cfg})
			env.Server.Presence.Poll = 10 * time.Millisecond
			a := newApp(t, env)
			s := open(t, a)
			tc.end(t, env, a)
			s.expectFinal(t, "closed", `"reason":"`+tc.reason+`"`)
		})
	}
}

// TestStreamOutlivesServerTimeouts: the provider's read and write timeouts
// cut off a stranger's slow request, not an open stream. No clock is read:
// the stranger's connection, opened after the stream, being cut off shows
// that the stream's own deadlines have passed too.
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	env := streamEnv(t, config.DefaultSessionEvents(), func(o *servertest.Options) {
		o.HTTPServer = func(hs *http.Server) { hs.ReadTimeout, hs.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond }
	})
	a := newApp(t, env)
	s := open(t, a)

	u, _ := url.Parse(env.URL)
	stranger, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	io.WriteString(stranger, "POST /token HTTP/1.1\r\nHost: "+u.Host+"\r\nContent-Length: 100\r\n\r\ngrant_type=")
	stranger.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, stranger); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("the stranger's slow body was not cut off")
		}
	}

	home, _ := a.agent.Get(env.URL + "/")
	a.agent.Post(env.URL+"/logout", url.Values{"csrf_token": {servertest.CSRF(home.Body)}})
	s.expectFinal(t, "session_ended", `"reason":"logout"`)
}
