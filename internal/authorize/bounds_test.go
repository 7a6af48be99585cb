package authorize_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/castellan-auth/castellan/internal/authorize"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// fixtureWith is newFixture with the configuration adjusted and the
// server's log written to log (nil: discarded).
func fixtureWith(t *testing.T, adjust func(*config.Config), log *syncBuffer) *fixture {
	t.Helper()
	cfg := testConfig()
	if adjust != nil {
		adjust(cfg)
	}
	opt := servertest.Options{Config: cfg}
	if log != nil {
		opt.Log = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	env := servertest.New(t, opt)
	ctx := oidc.ClientContext(context.Background(), env.HTTP.Client())
	p, err := oidc.NewProvider(ctx, env.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &fixture{env: env, ctx: ctx, provider: p}
}

// syncBuffer is a log sink the server's goroutines may write to at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestAuthorizationParameterLimits: every parameter the authorization
// endpoint reads has a maximum (internal/oauth, in README). At it the
// request goes on (to whatever else it meets); one byte over, it is refused
// with invalid_request naming the parameter: on Castellan's page for
// client_id and redirect_uri, which are not known good yet, at the redirect
// URI for the others.
func TestAuthorizationParameterLimits(t *testing.T) {
	t.Parallel()
	f, a := casesFixture(t)
	for _, l := range oauth.IdentityLimits {
		t.Run(l.Name+"/over-limit-page", func(t *testing.T) {
			s := get(t, a, f.authorize(with(request("spa"), l.Name, strings.Repeat("a", l.Max+1))))
			expectPage(t, s)
			if !strings.Contains(s.Body, l.Description()) {
				t.Errorf("page does not say %q:\n%s", l.Description(), s.Body)
			}
		})
	}
	for _, l := range oauth.RequestLimits {
		t.Run(l.Name+"/at-limit", func(t *testing.T) {
			req := with(request("spa"), l.Name, strings.Repeat("a", l.Max))
			if l.Name == "max_age" {
				req.Set(l.Name, strings.Repeat("9", l.Max)) // a number: clamped, not refused
			}
			s := get(t, a, f.authorize(req))
			if d := servertest.Params(s.Location).Get("error_description"); strings.Contains(d, "is longer than") {
				t.Fatalf("%s at its limit refused: %s", l.Name, d)
			}
		})
		for _, post := range []bool{false, true} {
			name := l.Name + "/over-limit-invalid_request"
			if post {
				name += "-post"
			}
			t.Run(name, func(t *testing.T) {
				c := authzCase{set: map[string]string{l.Name: strings.Repeat("a", l.Max+1)}, post: post,
					want: want{kind: query, err: "invalid_request", noState: l.Name == "state"}}
				p := c.run(t, f, a)
				if got := p.Get("error_description"); got != l.Description() {
					t.Errorf("error_description %q, want %q", got, l.Description())
				}
			})
		}
	}
	t.Run("scope/values-at-limit", func(t *testing.T) {
		scope := strings.TrimSpace(strings.Repeat("openid ", oauth.MaxScopeValues))
		authzCase{set: map[string]string{"scope": scope}, want: want{kind: query}}.run(t, f, a)
	})
	t.Run("scope/values-over-limit", func(t *testing.T) {
		scope := strings.TrimSpace(strings.Repeat("openid ", oauth.MaxScopeValues+1))
		p := authzCase{set: map[string]string{"scope": scope}, want: want{kind: query, err: "invalid_request"}}.run(t, f, a)
		if d := p.Get("error_description"); !strings.Contains(d, "scope has more than") {
			t.Errorf("error_description %q", d)
		}
	})
	t.Run("encoded-request-over-limit", func(t *testing.T) {
		// Within every parameter limit, but six bytes each once JSON-escaped.
		p := authzCase{set: map[string]string{"state": strings.Repeat("\x01", oauth.MaxStateLength)},
			want: want{kind: query, err: "invalid_request"}}.run(t, f, f.agent("alice"))
		if d := p.Get("error_description"); !strings.Contains(d, "once encoded") {
			t.Errorf("error_description %q", d)
		}
	})
	t.Run("state-2KB-and-nonce-384-still-accepted", func(t *testing.T) {
		authzCase{set: map[string]string{"state": twoKiloState(), "nonce": strings.Repeat("n", 384)}, want: want{kind: query}}.run(t, f, a)
	})
}

// TestAuthorizationRequestSizeBounded: the query or form as a whole is
// bounded (oauth.MaxRequestBytes, oauth.MaxRequestParameters) before it is
// parsed, so unknown parameters cannot make the endpoint do unbounded work;
// beyond, Castellan's page answers, before the client is looked up.
func TestAuthorizationRequestSizeBounded(t *testing.T) {
	t.Parallel()
	f, a := casesFixture(t)
	base := request("spa")
	padded := func(n int) url.Values { return with(base, "padding", strings.Repeat("p", n)) }
	extra := func(n int) string {
		var b strings.Builder
		for i := range n {
			b.WriteString("&x" + strconv.Itoa(i) + "=1")
		}
		return b.String()
	}
	room := oauth.MaxRequestBytes - len(padded(0).Encode())
	for _, tc := range []struct {
		name string
		url  string
		form url.Values
		ok   bool
	}{
		{name: "ok/query-at-limit", url: f.authorize(padded(room)), ok: true},
		{name: "fail/query-one-byte-over", url: f.authorize(padded(room + 1))},
		{name: "ok/parameters-at-limit", url: f.authorize(base) + extra(oauth.MaxRequestParameters-len(base)), ok: true},
		{name: "fail/one-parameter-too-many", url: f.authorize(base) + extra(oauth.MaxRequestParameters-len(base)+1)},
		{name: "fail/repeated-unknown-parameters-count", url: f.authorize(base) + strings.Repeat("&x=1", oauth.MaxRequestParameters)},
		{name: "ok/post-at-limit", form: padded(room), ok: true},
		{name: "fail/post-one-byte-over", form: padded(room + 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s servertest.Step
			if tc.form != nil {
				s = post(t, a, f.env.URL+"/authorize", tc.form)
			} else {
				s = get(t, a, tc.url)
			}
			if tc.ok {
				f.outcome(t, s, base, want{kind: query})
				return
			}
			expectPage(t, s)
			if !strings.Contains(s.Body, "is longer than "+strconv.Itoa(oauth.MaxRequestBytes)+" bytes or has more than") {
				t.Errorf("page does not say what is too large:\n%s", s.Body)
			}
		})
	}
}

// TestMaxAgeClamped: a max_age beyond the longest duration (9,223,372,036
// s) overflowed when multiplied by a second and came out negative, so every
// sign-in counted as too old; it is read as the longest one, i.e. "any".
func TestMaxAgeClamped(t *testing.T) {
	t.Parallel()
	f, a := casesFixture(t)
	f.env.Clock.Advance(10 * time.Minute) // signed in ten minutes ago
	for _, v := range []string{"9223372036", "9223372037", "9223372036854775807", "99999999999999999999"} {
		t.Run(v, func(t *testing.T) {
			authzCase{set: map[string]string{"max_age": v}, want: want{kind: query}}.run(t, f, a)
		})
	}
	t.Run("60-still-asks-again", func(t *testing.T) {
		authzCase{set: map[string]string{"max_age": "60"}, want: want{kind: login}}.run(t, f, a)
	})
}

var requestLine = regexp.MustCompile(`<p class="detail">Request [^<]*</p>`)

// TestClientIDEnumeration: whether a client_id exists must not show. An
// unknown client_id, a redirect_uri not registered for a known one, a client
// that does not use the authorization endpoint and a missing redirect_uri
// where several are registered all get the very same page (status and
// text); the reason goes to the log, with the request id. With a
// request_uri, an unknown client_id looks like an unknown request_uri.
func TestClientIDEnumeration(t *testing.T) {
	t.Parallel()
	log := &syncBuffer{}
	f := fixtureWith(t, nil, log)
	a := f.agent("alice")
	page := func(t *testing.T, u string) (int, string) {
		t.Helper()
		s := get(t, a, u)
		if s.Location != "" {
			t.Fatalf("got a redirect to %q", s.Location)
		}
		return s.Status, requestLine.ReplaceAllString(s.Body, "")
	}
	evil := "https://evil.example/callback"
	cases := []struct {
		name, url, reason string
	}{
		{"unknown-client_id", f.authorize(with(request("spa"), "client_id", "nope", "redirect_uri", evil)), "unknown client_id"},
		{"redirect_uri-not-registered", f.authorize(with(request("spa"), "redirect_uri", evil)), "redirect_uri is not registered for this client"},
		{"client-without-authorization-endpoint", f.authorize(with(request("spa"), "client_id", "svc", "redirect_uri", evil)), "this client does not use the authorization endpoint"},
		{"redirect_uri-missing-several-registered", f.authorize(minus(request("web"), "redirect_uri")), "redirect_uri is missing and the client registered several"},
	}
	wantStatus, wantBody := page(t, cases[0].url)
	if wantStatus != http.StatusBadRequest || !strings.Contains(wantBody, "the client_id or the redirect_uri is not valid") {
		t.Fatalf("unknown client: %d\n%s", wantStatus, wantBody)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := page(t, c.url)
			if status != wantStatus || body != wantBody {
				t.Errorf("got %d, a page unlike the unknown client's:\n%s", status, body)
			}
			if !strings.Contains(log.String(), `reason="`+c.reason+`"`) {
				t.Errorf("log lacks the reason %q", c.reason)
			}
		})
	}
	t.Run("log-line-names-the-request", func(t *testing.T) {
		for _, line := range strings.Split(log.String(), "\n") {
			if strings.Contains(line, "authorization request refused") && !strings.Contains(line, "request_id=") {
				t.Errorf("log line without a request id: %s", line)
			}
		}
	})
	t.Run("request_uri-of-unknown-client", func(t *testing.T) {
		uri := url.QueryEscape(authorize.RequestURIPrefix + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
		status, unknown := page(t, f.env.URL+"/authorize?client_id=nope&request_uri="+uri)
		status2, known := page(t, f.env.URL+"/authorize?client_id=spa&request_uri="+uri)
		if status != http.StatusBadRequest || status2 != status || unknown != known {
			t.Errorf("unknown client %d, known client %d: pages differ\n%s\n%s", status, status2, unknown, known)
		}
	})
}

// TestLocalhostRedirectHint: RFC 8252 §7.3's any-port exception is for
// loopback IP literals; a http://localhost redirect URI (kubelogin's
// default) must match a registered one exactly. A refused one gets a hint
// saying so, which depends on the request alone: the page is the same
// whether the client exists or not.
func TestLocalhostRedirectHint(t *testing.T) {
	t.Parallel()
	f, a := casesFixture(t)
	hint := "Only http://127.0.0.1 and http://[::1] redirect URIs may use any port"
	body := func(t *testing.T, client, redirect string) string {
		t.Helper()
		s := get(t, a, f.authorize(with(request("native"), "client_id", client, "redirect_uri", redirect)))
		expectPage(t, s, redirect)
		return requestLine.ReplaceAllString(s.Body, "")
	}
	registered := body(t, "native", "http://localhost:8000/callback")
	if !strings.Contains(registered, hint) {
		t.Fatalf("no hint for a localhost redirect URI on another port:\n%s", registered)
	}
	if unknown := body(t, "nope", "http://localhost:8000/callback"); unknown != registered {
		t.Errorf("the hint depends on the registration:\n%s\n%s", registered, unknown)
	}
	if other := body(t, "native", "http://127.0.0.1:8000/elsewhere"); strings.Contains(other, hint) {
		t.Errorf("hint for a loopback IP literal:\n%s", other)
	}
	// http://localhost with the registered port (none) still matches exactly.
	authzCase{client: "native", set: map[string]string{"redirect_uri": nativeLocalhost}, want: want{kind: query}}.run(t, f, a)
}

// TestLocalhostPortRedirectWarned: a client registering a
// http://localhost:PORT redirect URI is named in a warning at start.
func TestLocalhostPortRedirectWarned(t *testing.T) {
	t.Parallel()
	log := &syncBuffer{}
	fixtureWith(t, func(cfg *config.Config) {
		cfg.Clients = append(cfg.Clients, config.Client{ClientID: "kubectl", TokenEndpointAuthMethod: "none",
			RedirectURIs: []string{"http://localhost:8000", "http://127.0.0.1:18000/cb"}, GrantTypes: []string{"authorization_code"}, Scope: "openid"})
	}, log)
	var warned []string
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "http://localhost redirect URIs with a port") {
			warned = append(warned, line)
		}
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "client_id=kubectl") || !strings.Contains(warned[0], "redirect_uris=[http://localhost:8000]") {
		t.Fatalf("warnings: %q", warned)
	}
}
