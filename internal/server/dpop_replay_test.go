package server_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/dpop"
	"github.com/castellan-auth/castellan/dpop/dpoptest"
	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// TestDPoPReplayWrittenOnlyAfterAuthentication: a DPoP proof's jti is
// stored (so that the proof is accepted once, on every node) only once the
// request it came with is authenticated. A stranger's proof, signed with a
// key of their own, sent with a made-up code or refresh token for a public
// client, a push the endpoint refuses, or someone else's access token at
// userinfo, leaves nothing in storage; an accepted one is remembered, and
// its replay is refused.
func TestDPoPReplayWrittenOnlyAfterAuthentication(t *testing.T) {
	env, _ := dpopEnv(t, nil)
	stranger := dpoptest.NewKey("ES256")
	stranger.Now = env.Clock.Now
	alice := newDPoPClient(env)
	agent := env.Agent("alice")
	code, a := env.Code(t, agent, servertest.Authz{})
	tokenJTI := opaque.ID()
	tokenProof := alice.key.Sign(dpoptest.Claims{JTI: tokenJTI, HTM: "POST", HTU: env.URL + "/token"}, nil)
	r := raw(t, env, formRequest(env, "/token", servertest.RedeemForm(code, a), servertest.SPAClient), []string{tokenProof}, "")
	want(t, "redeem", r, 200, "")
	tok := r.Tokens()

	remembered := func(t *testing.T, key *dpoptest.Key, jti string) bool {
		t.Helper()
		sum := sha256.Sum256([]byte(key.JKT() + "\x00" + jti))
		ok, err := env.Store.Remembered(t.Context(), "dpop:"+base64.RawURLEncoding.EncodeToString(sum[:]), env.Clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	t.Run("ok/accepted-proof-remembered-and-its-replay-refused", func(t *testing.T) {
		if !remembered(t, alice.key, tokenJTI) {
			t.Fatal("the proof of a redemption is not remembered")
		}
		code, a := env.Code(t, agent, servertest.Authz{})
		r := raw(t, env, formRequest(env, "/token", servertest.RedeemForm(code, a), servertest.SPAClient), []string{tokenProof}, "")
		want(t, "replayed proof", r, 400, "invalid_dpop_proof")
	})

	t.Run("fail/replayed-refresh-changes-nothing", func(t *testing.T) {
		// A public client's proof is remembered only after its grant ran, but
		// one already used is refused before: a replayed refresh request
		// (token and proof as sent, after the grace window) is refused and
		// does not count as reuse of the token, so the family lives on.
		code, ca := env.Code(t, agent, servertest.Authz{})
		form := servertest.RedeemForm(code, ca)
		first := raw(t, env, formRequest(env, "/token", form, servertest.SPAClient), []string{alice.key.Proof("POST", env.URL+"/token", "")}, "")
		want(t, "redeem", first, 200, "")
		refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.Tokens().RefreshToken}}
		proof := alice.key.Proof("POST", env.URL+"/token", "")
		rotated := raw(t, env, formRequest(env, "/token", refresh, servertest.SPAClient), []string{proof}, "")
		want(t, "refresh", rotated, 200, "")
		env.Clock.Advance(env.Config.Tokens.RefreshTokenGrace.D() + time.Second)
		replayed := raw(t, env, formRequest(env, "/token", refresh, servertest.SPAClient), []string{proof}, "")
		want(t, "replayed refresh", replayed, 400, "invalid_dpop_proof")
		next := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rotated.Tokens().RefreshToken}}
		again := raw(t, env, formRequest(env, "/token", next, servertest.SPAClient), []string{alice.key.Proof("POST", env.URL+"/token", "")}, "")
		want(t, "the rotated token after the replay", again, 200, "")
	})

	for _, tc := range []struct {
		name       string
		path       string
		form       url.Values
		client     servertest.ClientAuth
		token      string // access token, for userinfo
		status     int
		code       string
		remembered bool
	}{
		{name: "fail/public-client-made-up-code", path: "/token", client: servertest.SPAClient,
			form:   url.Values{"grant_type": {"authorization_code"}, "code": {opaque.New()}, "code_verifier": {opaque.New()}, "redirect_uri": {servertest.SPARedirect}},
			status: 400, code: "invalid_grant"},
		{name: "fail/public-client-made-up-refresh-token", path: "/token", client: servertest.SPAClient,
			form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {opaque.New()}}, status: 400, code: "invalid_grant"},
		{name: "fail/confidential-client-wrong-secret", path: "/token", client: servertest.ClientAuth{ID: "web", Secret: "wrong", Method: "client_secret_basic"},
			form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {opaque.New()}}, status: 401, code: "invalid_client"},
		{name: "fail/push-refused", path: "/par", client: servertest.SPAClient,
			form: url.Values{"response_type": {"code"}, "redirect_uri": {servertest.SPARedirect}, "scope": {"openid not-allowed"}}, status: 400, code: "invalid_scope"},
		{name: "fail/userinfo-token-of-another-key", path: "/userinfo", token: tok.AccessToken, status: 401, code: "invalid_dpop_proof"},
		{name: "ok/push-accepted", path: "/par", client: servertest.SPAClient,
			form: url.Values{"response_type": {"code"}, "redirect_uri": {servertest.SPARedirect}, "scope": {"openid"},
				"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}},
			status: 201, remembered: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jti := opaque.ID()
			var req *http.Request
			var proof, authz string
			if tc.token != "" {
				req, _ = http.NewRequest(http.MethodGet, env.URL+tc.path, nil)
				c := dpoptest.Claims{JTI: jti, HTM: "GET", HTU: env.URL + tc.path}
				c.ATH = dpop.AccessTokenHash(tc.token)
				proof, authz = stranger.Sign(c, nil), "DPoP "+tc.token
			} else {
				req = formRequest(env, tc.path, tc.form, tc.client)
				proof = stranger.Sign(dpoptest.Claims{JTI: jti, HTM: "POST", HTU: env.URL + tc.path}, nil)
			}
			r := raw(t, env, req, []string{proof}, authz)
			if r.Status != tc.status || (tc.code != "" && r.Code() != tc.code) {
				t.Fatalf("got %d %q, want %d %q\n%s", r.Status, r.Code(), tc.status, tc.code, r.Body)
			}
			if got := remembered(t, stranger, jti); got != tc.remembered {
				t.Fatalf("proof remembered: got %v, want %v", got, tc.remembered)
			}
			if !tc.remembered {
				return
			}
			// Its replay is refused, and the push it came with is not kept.
			again := raw(t, env, formRequest(env, tc.path, tc.form, tc.client), []string{proof}, authz)
			want(t, "replayed proof", again, 400, "invalid_dpop_proof")
		})
	}
}
