package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/castellan-auth/castellan/dpop/dpoptest"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/demoapi"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// dpopClient is a client that holds a DPoP key: every request it sends
// carries a fresh proof (dpoptest.Key.Do, which also follows use_dpop_nonce).
type dpopClient struct {
	env *servertest.Env
	key *dpoptest.Key
}

func newDPoPClient(env *servertest.Env) *dpopClient {
	k := dpoptest.NewKey("ES256")
	k.Now = env.Clock.Now
	return &dpopClient{env: env, key: k}
}

// post sends a form to a provider path as client c, with a proof.
func (d *dpopClient) post(t *testing.T, path string, form url.Values, c servertest.ClientAuth) servertest.Reply {
	t.Helper()
	return send(t, d.env.HTTP.Client(), func() *http.Request { return formRequest(d.env, path, form, c) }, d.key, "")
}

// get sends GET url with the access token in the DPoP scheme and a proof.
func (d *dpopClient) get(t *testing.T, target, accessToken string) servertest.Reply {
	t.Helper()
	return send(t, d.env.HTTP.Client(), func() *http.Request {
		r, _ := http.NewRequest(http.MethodGet, target, nil)
		return r
	}, d.key, accessToken)
}

func formRequest(env *servertest.Env, path string, form url.Values, c servertest.ClientAuth) *http.Request {
	out := url.Values{}
	for k, v := range form {
		out[k] = v
	}
	switch c.Method {
	case "client_secret_post":
		out.Set("client_id", c.ID)
		out.Set("client_secret", c.Secret)
	case "none":
		out.Set("client_id", c.ID)
	}
	r, _ := http.NewRequest(http.MethodPost, env.URL+path, strings.NewReader(out.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if c.Method == "client_secret_basic" {
		r.Header.Set("Authorization", servertest.BasicHeader(c.ID, c.Secret))
	}
	return r
}

func send(t *testing.T, client *http.Client, newReq func() *http.Request, key *dpoptest.Key, accessToken string) servertest.Reply {
	t.Helper()
	var resp *http.Response
	var err error
	if key != nil {
		resp, err = key.Do(client, newReq, accessToken)
	} else {
		resp, err = client.Do(newReq())
	}
	if err != nil {
		t.Fatal(err)
	}
	return reply(t, resp)
}

func reply(t *testing.T, resp *http.Response) servertest.Reply {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := servertest.Reply{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
	json.Unmarshal(b, &r.JSON)
	return r
}

// raw sends req with exactly the given DPoP header values and Authorization.
func raw(t *testing.T, env *servertest.Env, req *http.Request, proofs []string, authorization string) servertest.Reply {
	t.Helper()
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := env.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return reply(t, resp)
}

func want(t *testing.T, what string, r servertest.Reply, status int, code string) {
	t.Helper()
	if r.Status != status || r.Code() != code {
		t.Fatalf("%s: got %d %q, want %d %q\n%s", what, r.Status, r.Code(), status, code, r.Body)
	}
}

func jkt(t *testing.T, accessToken string) string {
	t.Helper()
	cnf, _ := servertest.Claims(accessToken)["cnf"].(map[string]any)
	s, _ := cnf["jkt"].(string)
	return s
}

// dpopEnv is a provider with the servertest clients, a public client that
// must use DPoP, and the demo API in front of it.
func dpopEnv(t *testing.T, edit func(*config.Config)) (*servertest.Env, *httptest.Server) {
	t.Helper()
	cfg := servertest.WithClients(servertest.Config())
	cfg.Clients = append(cfg.Clients, config.Client{
		ClientID: "bound", TokenEndpointAuthMethod: "none", RedirectURIs: []string{servertest.SPARedirect},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scope: "openid profile offline_access",
		SkipConsent: true, DPoPBoundAccessTokens: true,
	})
	if edit != nil {
		edit(cfg)
	}
	env := servertest.New(t, servertest.Options{Config: cfg})
	h, err := demoapi.New(demoapi.Config{Issuer: env.URL, HTTPClient: env.HTTP.Client(), Now: env.Clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(h)
	t.Cleanup(api.Close)
	return env, api
}

// TestDPoPEndToEnd runs a public client holding a DPoP key through the code
// flow with dpop_jkt, userinfo, the demo API and refreshes, and checks that
// its tokens are useless to anyone without the key.
func TestDPoPEndToEnd(t *testing.T) {
	env, api := dpopEnv(t, nil)
	alice := newDPoPClient(env)
	thief := newDPoPClient(env)

	var meta map[string]any
	r, err := env.Request(http.MethodGet, "/.well-known/openid-configuration", "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	meta = r.JSON
	if algs, _ := meta["dpop_signing_alg_values_supported"].([]any); len(algs) == 0 || algs[0] != "ES256" {
		t.Fatalf("dpop_signing_alg_values_supported: %v", meta["dpop_signing_alg_values_supported"])
	}

	agent := env.Agent("alice")
	code, a := env.Code(t, agent, servertest.Authz{Extra: url.Values{"dpop_jkt": {alice.key.JKT()}}})
	tr := alice.post(t, "/token", servertest.RedeemForm(code, a), servertest.SPAClient)
	want(t, "redeem", tr, 200, "")
	tok := tr.Tokens()
	if tok.TokenType != "DPoP" || jkt(t, tok.AccessToken) != alice.key.JKT() {
		t.Fatalf("token_type %q, cnf.jkt %q; want DPoP bound to %s", tok.TokenType, jkt(t, tok.AccessToken), alice.key.JKT())
	}
	if tr.Header.Get("Cache-Control") != "no-store" {
		t.Error("token response cacheable")
	}

	t.Run("userinfo", func(t *testing.T) {
		r := alice.get(t, env.URL+"/userinfo", tok.AccessToken)
		want(t, "userinfo with proof", r, 200, "")
		if r.Str("name") != "Alice Liddell" {
			t.Fatalf("userinfo: %s", r.Body)
		}
	})
	t.Run("userinfo/49-stolen-as-bearer", func(t *testing.T) {
		r := env.Userinfo(t, http.MethodGet, tok.AccessToken)
		want(t, "bearer", r, 401, "invalid_token")
	})
	t.Run("userinfo/stolen-with-thief-key", func(t *testing.T) {
		r := thief.get(t, env.URL+"/userinfo", tok.AccessToken)
		want(t, "thief's proof", r, 401, "invalid_dpop_proof")
		if h := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "DPoP ") || !strings.Contains(h, `error="invalid_dpop_proof"`) || !strings.Contains(h, `algs="`) {
			t.Fatalf("WWW-Authenticate %q", h)
		}
	})
	t.Run("userinfo/no-proof", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, env.URL+"/userinfo", nil)
		want(t, "no proof", raw(t, env, req, nil, "DPoP "+tok.AccessToken), 401, "invalid_dpop_proof")
	})
	t.Run("userinfo/51-missing-ath", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, env.URL+"/userinfo", nil)
		p := alice.key.Proof("GET", env.URL+"/userinfo", "")
		want(t, "no ath", raw(t, env, req, []string{p}, "DPoP "+tok.AccessToken), 401, "invalid_dpop_proof")
	})
	t.Run("userinfo/51-wrong-ath", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, env.URL+"/userinfo", nil)
		p := alice.key.Proof("GET", env.URL+"/userinfo", "another-token")
		want(t, "wrong ath", raw(t, env, req, []string{p}, "DPoP "+tok.AccessToken), 401, "invalid_dpop_proof")
	})
	t.Run("userinfo/replayed-proof", func(t *testing.T) {
		p := alice.key.Proof("GET", env.URL+"/userinfo", tok.AccessToken)
		req, _ := http.NewRequest(http.MethodGet, env.URL+"/userinfo", nil)
		want(t, "first use", raw(t, env, req, []string{p}, "DPoP "+tok.AccessToken), 200, "")
		req, _ = http.NewRequest(http.MethodGet, env.URL+"/userinfo", nil)
		want(t, "replay", raw(t, env, req, []string{p}, "DPoP "+tok.AccessToken), 401, "invalid_dpop_proof")
	})
	t.Run("userinfo/no-token-offers-both-schemes", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, env.URL+"/userinfo", nil)
		r := raw(t, env, req, nil, "")
		ch := r.Header.Values("WWW-Authenticate")
		if r.Status != 401 || len(ch) != 2 || ch[0] != `Bearer realm="castellan"` || !strings.HasPrefix(ch[1], "DPoP ") {
			t.Fatalf("got %d %q", r.Status, ch)
		}
	})

	t.Run("session-activity", func(t *testing.T) {
		newReq := func() *http.Request {
			r, _ := http.NewRequest(http.MethodPost, env.URL+"/session/activity", nil)
			return r
		}
		want(t, "bound token as bearer", raw(t, env, newReq(), nil, "Bearer "+tok.AccessToken), 401, "invalid_token")
		want(t, "thief's proof", send(t, env.HTTP.Client(), newReq, thief.key, tok.AccessToken), 401, "invalid_dpop_proof")
		r := send(t, env.HTTP.Client(), newReq, alice.key, tok.AccessToken)
		if r.Status != 200 {
			t.Fatalf("with proof: %d %s", r.Status, r.Body)
		}
	})
	t.Run("demo-api", func(t *testing.T) {
		r := alice.get(t, api.URL+"/api/profile", tok.AccessToken)
		want(t, "demo API with proof", r, 200, "")
		if r.Str("jkt") != alice.key.JKT() {
			t.Fatalf("profile: %s", r.Body)
		}
		req, _ := http.NewRequest(http.MethodGet, api.URL+"/api/profile", nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		want(t, "demo API, stolen token as bearer", reply(t, resp), 401, "invalid_token")
		r = thief.get(t, api.URL+"/api/profile", tok.AccessToken)
		want(t, "demo API, stolen token with thief's proof", r, 401, "invalid_dpop_proof")
	})

	t.Run("introspection", func(t *testing.T) {
		r := env.Introspect(t, servertest.SvcClient, tok.AccessToken)
		cnf, _ := r.JSON["cnf"].(map[string]any)
		if r.JSON["active"] != true || r.Str("token_type") != "DPoP" || cnf["jkt"] != alice.key.JKT() {
			t.Fatalf("introspection: %s", r.Body)
		}
	})

	refresh := func(c *dpopClient, rt string) servertest.Reply {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}
		if c == nil {
			return env.Post(t, "/token", form, servertest.SPAClient)
		}
		return c.post(t, "/token", form, servertest.SPAClient)
	}
	t.Run("refresh/42-thief-key", func(t *testing.T) {
		want(t, "refresh with another key", refresh(thief, tok.RefreshToken), 400, "invalid_grant")
	})
	t.Run("refresh/no-proof", func(t *testing.T) {
		want(t, "refresh without proof", refresh(nil, tok.RefreshToken), 400, "invalid_dpop_proof")
	})
	t.Run("refresh", func(t *testing.T) {
		// The refusals above used nothing up.
		r := refresh(alice, tok.RefreshToken)
		want(t, "refresh with the key", r, 200, "")
		next := r.Tokens()
		if next.TokenType != "DPoP" || jkt(t, next.AccessToken) != alice.key.JKT() || next.RefreshToken == tok.RefreshToken {
			t.Fatalf("refreshed: %s", r.Body)
		}
		want(t, "userinfo with refreshed token", alice.get(t, env.URL+"/userinfo", next.AccessToken), 200, "")
		// The rotated token stays bound too.
		want(t, "rotated token, thief", refresh(thief, next.RefreshToken), 400, "invalid_grant")
		want(t, "rotated token", refresh(alice, next.RefreshToken), 200, "")
	})
}

// TestDPoPAuthorizationCodeBinding: dpop_jkt (RFC 9449 §10) binds the code.
func TestDPoPAuthorizationCodeBinding(t *testing.T) {
	env, _ := dpopEnv(t, nil)
	alice, thief := newDPoPClient(env), newDPoPClient(env)
	agent := env.Agent("alice")

	code, a := env.Code(t, agent, servertest.Authz{Extra: url.Values{"dpop_jkt": {alice.key.JKT()}}})
	r := thief.post(t, "/token", servertest.RedeemForm(code, a), servertest.SPAClient)
	want(t, "46 redeem with another key", r, 400, "invalid_grant")
	if !strings.Contains(r.Str("error_description"), "dpop_jkt") {
		t.Fatalf("refused for another reason: %s", r.Body)
	}

	code, a = env.Code(t, agent, servertest.Authz{Extra: url.Values{"dpop_jkt": {alice.key.JKT()}}})
	r = env.Redeem(t, code, a)
	want(t, "redeem without proof", r, 400, "invalid_grant")
	if !strings.Contains(r.Str("error_description"), "dpop_jkt") {
		t.Fatalf("refused for another reason: %s", r.Body)
	}

	last, err := agent.Follow(env.AuthorizeURL(servertest.Authz{Extra: url.Values{"dpop_jkt": {"not-a-thumbprint"}}}))
	if err != nil {
		t.Fatal(err)
	}
	if p := servertest.Params(last.Location); p.Get("error") != "invalid_request" {
		t.Fatalf("malformed dpop_jkt: %d %q", last.Status, last.Location)
	}

	// Without dpop_jkt a proof at redemption still binds the tokens.
	code, a = env.Code(t, agent, servertest.Authz{})
	r = alice.post(t, "/token", servertest.RedeemForm(code, a), servertest.SPAClient)
	want(t, "redeem with proof, no dpop_jkt", r, 200, "")
	if r.Str("token_type") != "DPoP" || jkt(t, r.Str("access_token")) != alice.key.JKT() {
		t.Fatalf("not bound: %s", r.Body)
	}
}

// TestDPoPRequiredByClient: dpop_bound_access_tokens (ADVERSARIAL 43).
func TestDPoPRequiredByClient(t *testing.T) {
	env, _ := dpopEnv(t, nil)
	bound := servertest.ClientAuth{ID: "bound", Method: "none"}
	agent := env.Agent("alice")
	code, a := env.Code(t, agent, servertest.Authz{Client: bound, RedirectURI: servertest.SPARedirect, Scope: "openid offline_access"})
	want(t, "43 no proof", env.Redeem(t, code, a), 400, "invalid_dpop_proof")

	c := newDPoPClient(env)
	code, a = env.Code(t, agent, servertest.Authz{Client: bound, RedirectURI: servertest.SPARedirect, Scope: "openid offline_access"})
	r := c.post(t, "/token", servertest.RedeemForm(code, a), bound)
	want(t, "with proof", r, 200, "")
	if r.Str("token_type") != "DPoP" {
		t.Fatalf("token_type %q", r.Str("token_type"))
	}
}

// TestDPoPConfidentialClients: client credentials get bound access tokens; a
// confidential client's refresh token is not bound (RFC 9449 §5).
func TestDPoPConfidentialClients(t *testing.T) {
	env, _ := dpopEnv(t, nil)
	c := newDPoPClient(env)
	r := c.post(t, "/token", url.Values{"grant_type": {"client_credentials"}}, servertest.SvcClient)
	want(t, "client credentials", r, 200, "")
	if r.Str("token_type") != "DPoP" || jkt(t, r.Str("access_token")) != c.key.JKT() {
		t.Fatalf("client credentials: %s", r.Body)
	}

	code, a := env.Code(t, env.Agent("alice"), servertest.Authz{Client: servertest.WebClient})
	r = c.post(t, "/token", servertest.RedeemForm(code, a), servertest.WebClient)
	want(t, "web redeem", r, 200, "")
	if r.Str("token_type") != "DPoP" {
		t.Fatalf("web: %s", r.Body)
	}
	r = env.Refresh(t, servertest.WebClient, r.Str("refresh_token"), "")
	want(t, "web refresh without proof", r, 200, "")
	if r.Str("token_type") != "Bearer" || jkt(t, r.Str("access_token")) != "" {
		t.Fatalf("web refresh: %s", r.Body)
	}
}

// TestDPoPProofRefusedAtTokenEndpoint is ADVERSARIAL 44 at the token endpoint.
func TestDPoPProofRefusedAtTokenEndpoint(t *testing.T) {
	env, _ := dpopEnv(t, nil)
	k := newDPoPClient(env).key
	other := dpoptest.NewKey("ES256")
	target := env.URL + "/token"
	now := env.Clock.Now()
	claims := func(m, u string) dpoptest.Claims { return dpoptest.Claims{HTM: m, HTU: u} }
	replayed := k.Proof("POST", target, "")
	newReq := func() *http.Request {
		return formRequest(env, "/token", url.Values{"grant_type": {"client_credentials"}}, servertest.SvcClient)
	}
	want(t, "first use", raw(t, env, newReq(), []string{replayed}, ""), 200, "")
	cases := map[string][]string{
		"typ-jwt":     {k.Sign(claims("POST", target), map[string]any{"typ": "JWT"})},
		"alg-none":    {k.Unsigned(claims("POST", target))},
		"hs256":       {k.SignWith(jose.HS256, []byte("0123456789abcdef0123456789abcdef"), claims("POST", target), nil)},
		"private-jwk": {k.Sign(claims("POST", target), map[string]any{"jwk": jose.JSONWebKey{Key: k.Private}})},
		"wrong-htm":   {k.Sign(claims("GET", target), nil)},
		"foreign-htu": {k.Sign(claims("POST", "https://elsewhere.example/token"), nil)},
		"iat-1h-ago":  {k.Sign(dpoptest.Claims{HTM: "POST", HTU: target, IAT: now.Add(-time.Hour).Unix()}, nil)},
		"iat-in-1h":   {k.Sign(dpoptest.Claims{HTM: "POST", HTU: target, IAT: now.Add(time.Hour).Unix()}, nil)},
		"reused-jti":  {replayed},
		"two-headers": {k.Proof("POST", target, ""), k.Proof("POST", target, "")},
		"malformed":   {"eyJhbGciOiJFUzI1NiJ9.e30"},
		"other-jwk":   {k.Sign(claims("POST", target), map[string]any{"jwk": other.Public()})},
	}
	for name, proofs := range cases {
		t.Run("44/"+name, func(t *testing.T) {
			want(t, name, raw(t, env, newReq(), proofs, ""), 400, "invalid_dpop_proof")
		})
	}
	t.Run("47/accepted-variations", func(t *testing.T) {
		u, _ := url.Parse(env.URL)
		for _, htu := range []string{target + "?x=1#f", strings.ToUpper(u.Scheme) + "://" + strings.ToUpper(u.Hostname()) + ":" + u.Port() + "/token"} {
			p := k.Sign(dpoptest.Claims{HTM: "POST", HTU: htu, Extra: map[string]any{"extra": true}}, nil)
			want(t, htu, raw(t, env, newReq(), []string{p}, ""), 200, "")
		}
	})
}

// TestDPoPNonces: with dpop.require_nonce, a proof without a current server
// nonce is answered use_dpop_nonce with a DPoP-Nonce to use (ADVERSARIAL 45).
func TestDPoPNonces(t *testing.T) {
	env, _ := dpopEnv(t, func(c *config.Config) { c.DPoP.RequireNonce = true })
	c := newDPoPClient(env)
	newReq := func() *http.Request {
		return formRequest(env, "/token", url.Values{"grant_type": {"client_credentials"}}, servertest.SvcClient)
	}
	r := raw(t, env, newReq(), []string{c.key.Proof("POST", env.URL+"/token", "")}, "")
	want(t, "45 no nonce", r, 400, "use_dpop_nonce")
	nonce := r.Header.Get("DPoP-Nonce")
	if nonce == "" {
		t.Fatal("no DPoP-Nonce header")
	}
	c.key.Nonce = nonce
	r = raw(t, env, newReq(), []string{c.key.Proof("POST", env.URL+"/token", "")}, "")
	want(t, "with nonce", r, 200, "")
	if r.Header.Get("DPoP-Nonce") == "" {
		t.Error("no fresh DPoP-Nonce with the answer")
	}
	at := r.Str("access_token")

	env.Clock.Advance(11 * time.Minute)
	r = raw(t, env, newReq(), []string{c.key.Proof("POST", env.URL+"/token", "")}, "")
	want(t, "45 stale nonce", r, 400, "use_dpop_nonce")

	// The client library retries with the nonce it is given.
	r = c.post(t, "/token", url.Values{"grant_type": {"client_credentials"}}, servertest.SvcClient)
	want(t, "retry with the new nonce", r, 200, "")
	at = r.Str("access_token")

	// At userinfo a proof without the nonce is challenged for one.
	c.key.Nonce = ""
	req, _ := http.NewRequest(http.MethodGet, env.URL+"/userinfo", nil)
	r = raw(t, env, req, []string{c.key.Proof("GET", env.URL+"/userinfo", at)}, "DPoP "+at)
	if r.Status != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) || r.Header.Get("DPoP-Nonce") == "" {
		t.Fatalf("userinfo without nonce: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
}

// TestDPoPAtPAR: a proof sent with a pushed authorization request binds the
// code to its key (RFC 9449 §10.1), and a dpop_jkt that is not its key's
// thumbprint is refused there.
func TestDPoPAtPAR(t *testing.T) {
	env, _ := dpopEnv(t, nil)
	alice, thief := newDPoPClient(env), newDPoPClient(env)
	agent := env.Agent("alice")
	push := func(c *dpopClient, a servertest.Authz) servertest.Reply {
		u, _ := url.Parse(env.AuthorizeURL(a))
		return c.post(t, "/par", u.Query(), servertest.SPAClient)
	}
	code := func(a servertest.Authz) string {
		r := push(alice, a)
		want(t, "push", r, 201, "")
		q := url.Values{"client_id": {"spa"}, "request_uri": {r.Str("request_uri")}}
		last, err := agent.Follow(env.URL + "/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		c := servertest.Params(last.Location).Get("code")
		if c == "" {
			t.Fatalf("authorize: %d %q", last.Status, last.Location)
		}
		return c
	}

	a := servertest.Authz{Client: servertest.SPAClient, RedirectURI: servertest.SPARedirect, Verifier: "v-" + strings.Repeat("a", 50), Nonce: "n1"}
	r := thief.post(t, "/token", servertest.RedeemForm(code(a), a), servertest.SPAClient)
	want(t, "redeem with another key", r, 400, "invalid_grant")
	if !strings.Contains(r.Str("error_description"), "dpop_jkt") {
		t.Fatalf("refused for another reason: %s", r.Body)
	}
	r = alice.post(t, "/token", servertest.RedeemForm(code(a), a), servertest.SPAClient)
	want(t, "redeem with the pushing key", r, 200, "")
	if jkt(t, r.Str("access_token")) != alice.key.JKT() {
		t.Fatalf("not bound: %s", r.Body)
	}

	mismatched := a
	mismatched.Extra = url.Values{"dpop_jkt": {thief.key.JKT()}}
	want(t, "dpop_jkt of another key", push(alice, mismatched), 400, "invalid_dpop_proof")
}
