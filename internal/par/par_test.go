package par_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/server/servertest"
	"github.com/castellan-auth/castellan/internal/storage/storagetest"
)

const parRedirect = "https://par.example/callback"

// fixture is a provider with the usual test clients, a private_key_jwt
// client "keyed" and a client "strict" that must push.
type fixture struct {
	env      *servertest.Env
	keyed    servertest.ClientAuth
	keyedKey servertest.ClientKey
}

func newFixture(t *testing.T, adjust func(*config.Config)) *fixture {
	t.Helper()
	key := servertest.NewClientKey(t, "k1")
	cfg := servertest.WithClients(servertest.Config())
	cfg.Clients = append(cfg.Clients,
		config.Client{ClientID: "keyed", TokenEndpointAuthMethod: "private_key_jwt", JWKS: key.JWKS(),
			RedirectURIs: []string{parRedirect}, GrantTypes: []string{"authorization_code", "refresh_token"},
			Scope: "openid profile offline_access", SkipConsent: true},
		config.Client{ClientID: "strict", TokenEndpointAuthMethod: "none", RequirePushedAuthorizationRequests: true,
			RedirectURIs: []string{parRedirect}, GrantTypes: []string{"authorization_code"}, Scope: "openid", SkipConsent: true},
	)
	if adjust != nil {
		adjust(cfg)
	}
	env := servertest.New(t, servertest.Options{Config: cfg})
	return &fixture{env: env, keyed: env.KeyClient(t, "keyed", key), keyedKey: key}
}

// form is the authorization request a describes, as pushed parameters.
func (f *fixture) form(a servertest.Authz) url.Values {
	u, _ := url.Parse(f.env.AuthorizeURL(a))
	return u.Query()
}

// push sends a's request as client c and fails the test unless a
// request_uri comes back.
func (f *fixture) push(t *testing.T, a servertest.Authz, c servertest.ClientAuth) string {
	t.Helper()
	r := f.env.Post(t, "/par", f.form(a), c)
	if r.Status != http.StatusCreated || !strings.HasPrefix(r.Str("request_uri"), "urn:ietf:params:oauth:request_uri:") {
		t.Fatalf("push: %d %s", r.Status, r.Body)
	}
	return r.Str("request_uri")
}

// authorizeURL names a pushed request (RFC 9126 §4).
func (f *fixture) authorizeURL(clientID, requestURI string, extra ...string) string {
	q := url.Values{"client_id": {clientID}, "request_uri": {requestURI}}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	return f.env.URL + "/authorize?" + q.Encode()
}

// expectErrorPage checks that s is Castellan's error page with code.
func expectErrorPage(t *testing.T, s servertest.Step, code string) {
	t.Helper()
	if s.Status != http.StatusBadRequest || s.Location != "" || !strings.Contains(s.Body, "<code>"+code+"</code>") {
		t.Fatalf("got %d %q, want a 400 page naming %s\n%s", s.Status, s.Location, code, s.Body)
	}
}

// spa is the spa client's request with its PKCE verifier fixed, so that the
// pushed form and the redemption agree.
func spa() servertest.Authz {
	return servertest.Authz{Client: servertest.SPAClient, RedirectURI: servertest.SPARedirect, Verifier: opaque.New()}
}

// TestPushThenAuthorize is the whole flow: push, authorize with the
// request_uri (signing in), redeem the code with PKCE.
func TestPushThenAuthorize(t *testing.T) {
	f := newFixture(t, nil)
	a := spa()
	r := f.env.Post(t, "/par", f.form(a), servertest.SPAClient)
	if r.Status != http.StatusCreated {
		t.Fatalf("push: %d %s", r.Status, r.Body)
	}
	if got := r.JSON["expires_in"]; got != float64(60) {
		t.Errorf("expires_in: got %v, want 60", got)
	}
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("Cache-Control: got %q, want no-store", cc)
	}
	uri := r.Str("request_uri")

	agent := f.env.Agent("alice")
	// Parameters next to request_uri are ignored (§4): the pushed ones count.
	last, err := agent.Follow(f.authorizeURL("spa", uri, "redirect_uri", "https://evil.example/cb", "state", "forged", "scope", "openid"))
	if err != nil {
		t.Fatal(err)
	}
	p := servertest.Params(last.Location)
	if !strings.HasPrefix(last.Location, servertest.SPARedirect+"?") || p.Get("code") == "" || p.Get("state") != "st" {
		t.Fatalf("authorization ended at %d %q, want a code with state st at %s", last.Status, last.Location, servertest.SPARedirect)
	}
	tok := f.env.Redeem(t, p.Get("code"), a)
	if tok.Status != http.StatusOK || tok.Str("id_token") == "" || tok.Str("scope") != "openid profile email offline_access" {
		t.Fatalf("redeem: %d %s", tok.Status, tok.Body)
	}

	t.Run("reuse", func(t *testing.T) {
		s, err := agent.Get(f.authorizeURL("spa", uri))
		if err != nil {
			t.Fatal(err)
		}
		expectErrorPage(t, s, oauth.ErrInvalidRequestURI)
	})
}

// TestRequestURIRevisitedBeforeCompletion is FAPI 2.0 Security Profile
// §5.3.2.2 note 3: the browser that first took a request_uri may visit the
// authorization endpoint with it again until the authorization completes
// (within its lifetime); one-time use is enforced when the code is issued,
// and no other browser can take it meanwhile.
func TestRequestURIRevisitedBeforeCompletion(t *testing.T) {
	f := newFixture(t, nil)
	toLogin := func(t *testing.T, agent *servertest.Agent, u string) string {
		t.Helper()
		s, err := agent.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		if s.Status != http.StatusSeeOther || !strings.HasPrefix(s.Location, f.env.URL+"/login?authz=") {
			t.Fatalf("visit: %d %q, want the sign-in page", s.Status, s.Location)
		}
		return s.Location
	}
	t.Run("second-visit-completes", func(t *testing.T) {
		a := spa()
		uri := f.push(t, a, servertest.SPAClient)
		agent := f.env.Agent("alice")
		toLogin(t, agent, f.authorizeURL("spa", uri)) // first visit: no sign-in
		// Another browser cannot take the request the first one holds.
		other, err := f.env.Agent("bob").Get(f.authorizeURL("spa", uri))
		if err != nil {
			t.Fatal(err)
		}
		expectErrorPage(t, other, oauth.ErrInvalidRequestURI)
		last, err := agent.Follow(f.authorizeURL("spa", uri)) // second visit: sign in
		if err != nil {
			t.Fatal(err)
		}
		p := servertest.Params(last.Location)
		if p.Get("code") == "" || p.Get("state") != "st" {
			t.Fatalf("second visit ended at %d %q, want a code", last.Status, last.Location)
		}
		if tok := f.env.Redeem(t, p.Get("code"), a); tok.Status != http.StatusOK {
			t.Fatalf("redeem: %d %s", tok.Status, tok.Body)
		}
		// Completed: the same browser cannot use it again.
		again, err := agent.Get(f.authorizeURL("spa", uri))
		if err != nil {
			t.Fatal(err)
		}
		expectErrorPage(t, again, oauth.ErrInvalidRequestURI)
	})
	t.Run("one-completion-of-two-visits", func(t *testing.T) {
		uri := f.push(t, spa(), servertest.SPAClient)
		agent := f.env.Agent("alice")
		first := toLogin(t, agent, f.authorizeURL("spa", uri))
		last, err := agent.Follow(f.authorizeURL("spa", uri))
		if err != nil || servertest.Params(last.Location).Get("code") == "" {
			t.Fatalf("second visit: %v %d %q, want a code", err, last.Status, last.Location)
		}
		// The sign-in the first visit started cannot complete it a second time.
		s, err := agent.Follow(first)
		if err != nil {
			t.Fatal(err)
		}
		if s.Location != "" {
			t.Fatalf("first visit's sign-in after completion: %d %q, want an error page", s.Status, s.Location)
		}
		if s.Status != http.StatusBadRequest {
			t.Fatalf("first visit's sign-in after completion: %d, want 400", s.Status)
		}
	})
	t.Run("revisit-after-lifetime", func(t *testing.T) {
		uri := f.push(t, spa(), servertest.SPAClient)
		agent := f.env.Agent("alice")
		login := toLogin(t, agent, f.authorizeURL("spa", uri))
		f.env.Clock.Advance(61 * time.Second)
		s, err := agent.Get(f.authorizeURL("spa", uri))
		if err != nil {
			t.Fatal(err)
		}
		expectErrorPage(t, s, oauth.ErrInvalidRequestURI)
		// The sign-in started in time still completes (slow typists are fine).
		last, err := agent.Follow(login)
		if err != nil || servertest.Params(last.Location).Get("code") == "" {
			t.Fatalf("sign-in started within the lifetime: %v %d %q, want a code", err, last.Status, last.Location)
		}
	})
	t.Run("error-answer-uses-it-up", func(t *testing.T) {
		// An error answer completes the authorization too: a pushed
		// prompt=none request for a browser that is not signed in answers
		// login_required, and the request_uri is gone.
		agent := f.env.Agent("alice")
		a := spa()
		a.Extra = url.Values{"prompt": {"none"}}
		silent := f.push(t, a, servertest.SPAClient)
		s, err := agent.Get(f.authorizeURL("spa", silent))
		if err != nil {
			t.Fatal(err)
		}
		if servertest.Params(s.Location).Get("error") != oauth.ErrLoginRequired {
			t.Fatalf("prompt=none: %d %q, want login_required", s.Status, s.Location)
		}
		again, err := agent.Get(f.authorizeURL("spa", silent))
		if err != nil {
			t.Fatal(err)
		}
		expectErrorPage(t, again, oauth.ErrInvalidRequestURI)
	})
}

// TestRequestURIRefused covers request_uri values the authorization
// endpoint must refuse, each on its error page (its redirect URI is unknown).
func TestRequestURIRefused(t *testing.T) {
	f := newFixture(t, nil)
	agent := f.env.Agent("alice")
	get := func(t *testing.T, u string) servertest.Step {
		t.Helper()
		s, err := agent.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("expired", func(t *testing.T) {
		uri := f.push(t, servertest.Authz{}, servertest.SPAClient)
		f.env.Clock.Advance(61 * time.Second)
		expectErrorPage(t, get(t, f.authorizeURL("spa", uri)), oauth.ErrInvalidRequestURI)
	})
	t.Run("other-client", func(t *testing.T) {
		uri := f.push(t, servertest.Authz{}, servertest.SPAClient)
		expectErrorPage(t, get(t, f.authorizeURL("strict", uri)), oauth.ErrInvalidRequestURI)
		// The failed attempt did not use it up for its own client.
		last, err := agent.Follow(f.authorizeURL("spa", uri))
		if err != nil || servertest.Params(last.Location).Get("code") == "" {
			t.Fatalf("own client after another's attempt: %v %d %q", err, last.Status, last.Location)
		}
	})
	t.Run("never-pushed", func(t *testing.T) {
		expectErrorPage(t, get(t, f.authorizeURL("spa", "urn:ietf:params:oauth:request_uri:abc")), oauth.ErrInvalidRequestURI)
	})
	t.Run("truncated", func(t *testing.T) {
		uri := f.push(t, servertest.Authz{}, servertest.SPAClient)
		expectErrorPage(t, get(t, f.authorizeURL("spa", uri[:len(uri)-1])), oauth.ErrInvalidRequestURI)
	})
	t.Run("without-client-id", func(t *testing.T) {
		uri := f.push(t, servertest.Authz{}, servertest.SPAClient)
		expectErrorPage(t, get(t, f.env.URL+"/authorize?request_uri="+url.QueryEscape(uri)), oauth.ErrInvalidRequest)
	})
}

// TestPushRefused is the pushed authorization request endpoint's own
// answers (RFC 9126 §2.3): client authentication as at the token endpoint,
// and the authorization endpoint's validation, as JSON errors.
func TestPushRefused(t *testing.T) {
	f := newFixture(t, nil)
	web := servertest.Authz{Client: servertest.WebClient}
	with := func(a servertest.Authz, kv ...string) servertest.Authz {
		a.Extra = url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			a.Extra.Set(kv[i], kv[i+1])
		}
		return a
	}
	cases := []struct {
		name   string
		a      servertest.Authz
		client servertest.ClientAuth
		status int
		err    string
		drop   string // a parameter to leave out
	}{
		{name: "confidential-without-authentication", a: web, client: servertest.ClientAuth{ID: "web", Method: oauth.AuthNone}, status: 401, err: oauth.ErrInvalidClient},
		{name: "confidential-wrong-secret", a: web, client: servertest.ClientAuth{ID: "web", Secret: "wrong", Method: oauth.AuthClientSecretBasic}, status: 401, err: oauth.ErrInvalidClient},
		{name: "no-client", a: servertest.Authz{}, client: servertest.NoClient, drop: "client_id", status: 401, err: oauth.ErrInvalidClient},
		{name: "client-id-differs", a: servertest.Authz{Client: servertest.SPAClient}, client: servertest.WebClient, status: 400, err: oauth.ErrInvalidRequest},
		{name: "unregistered-redirect-uri", a: servertest.Authz{RedirectURI: "https://evil.example/cb"}, client: servertest.SPAClient, status: 400, err: oauth.ErrInvalidRequest},
		{name: "public-without-pkce", a: servertest.Authz{NoPKCE: true}, client: servertest.SPAClient, status: 400, err: oauth.ErrInvalidRequest},
		{name: "plain-pkce", a: with(servertest.Authz{}, "code_challenge_method", "plain"), client: servertest.SPAClient, status: 400, err: oauth.ErrInvalidRequest},
		{name: "response-type-token", a: with(servertest.Authz{}, "response_type", "token"), client: servertest.SPAClient, status: 400, err: oauth.ErrUnauthorizedClient},
		{name: "scope-not-allowed", a: servertest.Authz{Scope: "openid api:write"}, client: servertest.SPAClient, status: 400, err: oauth.ErrInvalidScope},
		{name: "request-uri-pushed", a: with(servertest.Authz{}, "request_uri", "urn:ietf:params:oauth:request_uri:abc"), client: servertest.SPAClient, status: 400, err: oauth.ErrInvalidRequest},
		{name: "request-object", a: with(servertest.Authz{}, "request", "eyJhbGciOiJub25lIn0.e30."), client: servertest.SPAClient, status: 400, err: oauth.ErrRequestNotSupported},
		{name: "id-token-hint-forged", a: with(servertest.Authz{}, "id_token_hint", "eyJhbGciOiJub25lIn0.e30."), client: servertest.SPAClient, status: 400, err: oauth.ErrInvalidRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			form := f.form(c.a)
			form.Del(c.drop)
			r := f.env.Post(t, "/par", form, c.client)
			if r.Status != c.status || r.Code() != c.err {
				t.Fatalf("got %d %s, want %d %s", r.Status, r.Body, c.status, c.err)
			}
			if r.Status == http.StatusUnauthorized && r.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
	t.Run("get", func(t *testing.T) {
		r, err := f.env.Request(http.MethodGet, "/par", "", "", "")
		if err != nil || r.Status != http.StatusMethodNotAllowed {
			t.Fatalf("GET /par: %v %d, want 405", err, r.Status)
		}
	})
	t.Run("json-body", func(t *testing.T) {
		r, err := f.env.Request(http.MethodPost, "/par", "application/json", `{"client_id":"spa"}`, "")
		if err != nil || r.Status != http.StatusBadRequest || r.Code() != oauth.ErrInvalidRequest {
			t.Fatalf("JSON body: %v %d %s, want 400 invalid_request", err, r.Status, r.Body)
		}
	})
	t.Run("confidential-authenticated", func(t *testing.T) {
		f.push(t, web, servertest.WebClient)
	})
}

// TestRequirePAR is require_pushed_authorization_requests, per client and
// for the whole provider (RFC 9126 §5, §6).
func TestRequirePAR(t *testing.T) {
	strict := servertest.Authz{Client: servertest.ClientAuth{ID: "strict", Method: oauth.AuthNone}, RedirectURI: parRedirect, Scope: "openid"}
	t.Run("client", func(t *testing.T) {
		f := newFixture(t, nil)
		agent := f.env.Agent("alice")
		last, err := agent.Follow(f.env.AuthorizeURL(strict))
		if err != nil {
			t.Fatal(err)
		}
		if p := servertest.Params(last.Location); p.Get("error") != oauth.ErrInvalidRequest || p.Get("code") != "" {
			t.Fatalf("unpushed request of strict: %d %q, want error=invalid_request", last.Status, last.Location)
		}
		// Other clients are not affected.
		f.env.CodeFlow(t, agent, servertest.Authz{})
		last, err = agent.Follow(f.authorizeURL("strict", f.push(t, strict, strict.Client)))
		if err != nil || servertest.Params(last.Location).Get("code") == "" {
			t.Fatalf("pushed request of strict: %v %d %q, want a code", err, last.Status, last.Location)
		}
	})
	t.Run("global", func(t *testing.T) {
		f := newFixture(t, func(c *config.Config) { c.PAR.Required = true })
		r, err := f.env.Request(http.MethodGet, "/.well-known/openid-configuration", "", "", "")
		if err != nil || r.JSON["require_pushed_authorization_requests"] != true || r.Str("pushed_authorization_request_endpoint") != f.env.URL+"/par" {
			t.Fatalf("discovery: %v %s", err, r.Body)
		}
		agent := f.env.Agent("alice")
		last, err := agent.Follow(f.env.AuthorizeURL(servertest.Authz{}))
		if err != nil {
			t.Fatal(err)
		}
		if p := servertest.Params(last.Location); p.Get("error") != oauth.ErrInvalidRequest {
			t.Fatalf("unpushed request: %d %q, want error=invalid_request", last.Status, last.Location)
		}
		last, err = agent.Follow(f.authorizeURL("spa", f.push(t, spa(), servertest.SPAClient)))
		if err != nil || servertest.Params(last.Location).Get("code") == "" {
			t.Fatalf("pushed request: %v %d %q, want a code", err, last.Status, last.Location)
		}
	})
}

// TestPrivateKeyJWTCodeFlow pushes and redeems as a private_key_jwt client:
// assertions at PAR, the token endpoint, refresh, introspection and
// revocation; a replayed assertion is refused and changes nothing.
func TestPrivateKeyJWTCodeFlow(t *testing.T) {
	f := newFixture(t, nil)
	a := servertest.Authz{Client: f.keyed, RedirectURI: parRedirect, Scope: "openid profile offline_access", Verifier: opaque.New(), Nonce: "n1"}
	uri := f.push(t, a, f.keyed)
	agent := f.env.Agent("alice")
	last, err := agent.Follow(f.authorizeURL("keyed", uri))
	if err != nil {
		t.Fatal(err)
	}
	code := servertest.Params(last.Location).Get("code")
	if code == "" {
		t.Fatalf("authorization: %d %q", last.Status, last.Location)
	}
	r := f.env.Redeem(t, code, a)
	if r.Status != http.StatusOK || r.Str("refresh_token") == "" {
		t.Fatalf("redeem: %d %s", r.Status, r.Body)
	}
	if claims := servertest.Claims(r.Str("id_token")); claims["aud"] != "keyed" || claims["nonce"] != "n1" {
		t.Errorf("id_token claims: %v", claims)
	}
	rt := r.Str("refresh_token")

	// One assertion, presented twice: the second time it is a replay.
	assertion := f.keyed.Assertion()
	once := servertest.ClientAuth{ID: "keyed", Method: oauth.AuthPrivateKeyJWT, Assertion: func() string { return assertion }}
	first := f.env.Refresh(t, once, rt, "")
	if first.Status != http.StatusOK {
		t.Fatalf("refresh: %d %s", first.Status, first.Body)
	}
	rt = first.Str("refresh_token")
	if rt == "" {
		rt = r.Str("refresh_token")
	}
	replay := f.env.Refresh(t, once, rt, "")
	if replay.Status != http.StatusUnauthorized || replay.Code() != oauth.ErrInvalidClient || replay.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("replayed assertion: %d %s, want 401 invalid_client with WWW-Authenticate", replay.Status, replay.Body)
	}
	// The refused request changed nothing: the refresh token still works.
	if again := f.env.Refresh(t, f.keyed, rt, ""); again.Status != http.StatusOK {
		t.Fatalf("refresh after the refused replay: %d %s", again.Status, again.Body)
	}

	at := first.Str("access_token")
	if in := f.env.Introspect(t, f.keyed, at); in.JSON["active"] != true {
		t.Fatalf("introspect as keyed: %s", in.Body)
	}
	if rv := f.env.Post(t, "/revoke", url.Values{"token": {at}}, f.keyed); rv.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", rv.Status, rv.Body)
	}
	if in := f.env.Introspect(t, f.keyed, at); in.JSON["active"] != false {
		t.Fatalf("introspect after revocation: %s", in.Body)
	}

	t.Run("endpoint-audiences", func(t *testing.T) {
		// RFC 9126 §2: the PAR endpoint accepts the token endpoint's and its
		// own URL as audience (a profile fapi2 client only the issuer:
		// TestFAPI2SecurityProfile); another server's never.
		keyed := func(aud string) servertest.ClientAuth {
			return servertest.ClientAuth{ID: "keyed", Method: oauth.AuthPrivateKeyJWT, Assertion: func() string {
				return f.keyedKey.Sign(t, servertest.AssertionClaims("keyed", aud, f.env.Clock.Now()))
			}}
		}
		for _, aud := range []string{f.env.URL + "/token", f.env.URL + "/par"} {
			a := servertest.Authz{Client: keyed(aud), RedirectURI: parRedirect, Scope: "openid", Verifier: opaque.New()}
			if r := f.env.Post(t, "/par", f.form(a), a.Client); r.Status != http.StatusCreated {
				t.Fatalf("push with aud %s: %d %s, want 201", aud, r.Status, r.Body)
			}
		}
		other := keyed("https://other.example/par")
		a := servertest.Authz{Client: other, RedirectURI: parRedirect, Scope: "openid", Verifier: opaque.New()}
		if r := f.env.Post(t, "/par", f.form(a), other); r.Status != http.StatusUnauthorized || r.Code() != oauth.ErrInvalidClient {
			t.Fatalf("push with another server's aud: %d %s, want 401 invalid_client", r.Status, r.Body)
		}
		if r := f.env.Refresh(t, keyed(f.env.URL+"/par"), rt, ""); r.Status != http.StatusUnauthorized || r.Code() != oauth.ErrInvalidClient {
			t.Fatalf("refresh with aud = PAR endpoint: %d %s, want 401 invalid_client", r.Status, r.Body)
		}
	})
	t.Run("without-assertion", func(t *testing.T) {
		// FAPI 2.0 ensure-client-assertion-in-token-endpoint: the client_id alone is not enough.
		r := f.env.Post(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}},
			servertest.ClientAuth{ID: "keyed", Method: oauth.AuthNone})
		if r.Status != http.StatusUnauthorized || r.Code() != oauth.ErrInvalidClient {
			t.Fatalf("got %d %s, want 401 invalid_client", r.Status, r.Body)
		}
	})
}

// TestPushedOnOneNodeUsedOnAnother runs two providers on one database, on
// each backend: a request pushed to one is taken, once, at the other.
func TestPushedOnOneNodeUsedOnAnother(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { pushedAcrossNodes(t, "") })
	t.Run("postgres", func(t *testing.T) { pushedAcrossNodes(t, storagetest.PostgresDSN(t)) })
}

// pushedAcrossNodes runs two nodes on storage ("" for one SQLite file).
func pushedAcrossNodes(t *testing.T, storage string) {
	dir := t.TempDir()
	node1 := servertest.New(t, servertest.Options{Config: servertest.WithClients(servertest.Config()), Dir: dir, Storage: storage})
	node2 := servertest.New(t, servertest.Options{Config: servertest.WithClients(servertest.Config()), Dir: dir, Storage: storage})
	f1, f2 := &fixture{env: node1}, &fixture{env: node2}
	a := spa()
	uri := f1.push(t, a, servertest.SPAClient)
	agent := node2.Agent("alice")
	last, err := agent.Follow(f2.authorizeURL("spa", uri))
	if err != nil {
		t.Fatal(err)
	}
	code := servertest.Params(last.Location).Get("code")
	if code == "" {
		t.Fatalf("node 2: %d %q", last.Status, last.Location)
	}
	if r := node2.Redeem(t, code, a); r.Status != http.StatusOK {
		t.Fatalf("redeem at node 2: %d %s", r.Status, r.Body)
	}
	s, err := node1.Agent("alice").Get(f1.authorizeURL("spa", uri))
	if err != nil {
		t.Fatal(err)
	}
	expectErrorPage(t, s, oauth.ErrInvalidRequestURI)
}
