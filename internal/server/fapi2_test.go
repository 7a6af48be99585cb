package server_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/castellan-auth/castellan/dpop/dpoptest"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/jwstest"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// fapiRedirect is the redirect URI of the FAPI 2.0 test clients.
const fapiRedirect = "https://fapi.example/cb"

// fapi is a provider configured as a FAPI 2.0 Security Profile deployment
// would be: private_key_jwt clients that must push their requests (PAR),
// use PKCE and pin their assertion algorithm; "fapi-dpop" must also use DPoP.
// "fapi-dpop" is declared with profile: fapi2 alone, so every module it runs
// also checks that the profile turns PAR, PKCE and DPoP on; the modules on
// the audience of client assertions run with it, since only a profile fapi2
// client is held to the issuer as the one audience (the others may also name
// the token or the called endpoint's URL: TestAssertionAudienceOfThirdPartyClients).
type fapi struct {
	env              *servertest.Env
	key, key2        servertest.ClientKey
	rsaKey           *rsa.PrivateKey
	client, client2  servertest.ClientAuth
	dpopClientKeyed  servertest.ClientAuth
	rsaPinnedToPS256 string
}

func newFAPI(t *testing.T) *fapi {
	t.Helper()
	f := &fapi{key: servertest.NewClientKey(t, "k1"), key2: servertest.NewClientKey(t, "k2")}
	var err error
	if f.rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	// No alg in the JWK: the refusal of RS256 must come from the client's
	// registered token_endpoint_auth_signing_alg.
	rsaJWKS, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &f.rsaKey.PublicKey, KeyID: "r1", Use: "sig"}}})
	fapiClient := func(id string, jwks config.JSON, alg string) config.Client {
		return config.Client{ClientID: id, TokenEndpointAuthMethod: "private_key_jwt", JWKS: jwks,
			TokenEndpointAuthSigningAlg: alg, RedirectURIs: []string{fapiRedirect},
			GrantTypes: []string{"authorization_code", "refresh_token"}, Scope: "openid profile email offline_access",
			SkipConsent: true, RequirePKCE: true, RequirePushedAuthorizationRequests: true}
	}
	cfg := servertest.WithClients(servertest.Config())
	bound := fapiClient("fapi-dpop", f.key.JWKS(), "ES256")
	bound.RequirePKCE, bound.RequirePushedAuthorizationRequests = false, false // the profile turns them on
	bound.Profile, bound.IDTokenSignedResponseAlg = config.ProfileFAPI2, "ES256"
	cfg.Clients = append(cfg.Clients, fapiClient("fapi", f.key.JWKS(), "ES256"), fapiClient("fapi2", f.key2.JWKS(), "ES256"),
		fapiClient("fapi-ps", config.JSON(rsaJWKS), "PS256"), bound)
	f.env = servertest.New(t, servertest.Options{Config: cfg})
	f.client = f.env.KeyClient(t, "fapi", f.key)
	f.client2 = f.env.KeyClient(t, "fapi2", f.key2)
	f.dpopClientKeyed = f.env.KeyClient(t, "fapi-dpop", f.key)
	return f
}

// authz is a request of client c with its PKCE verifier and nonce fixed, so
// that the pushed form and the redemption agree.
func (f *fapi) authz(c servertest.ClientAuth) servertest.Authz {
	return servertest.Authz{Client: c, RedirectURI: fapiRedirect, Verifier: opaque.New(), Nonce: "n-" + opaque.ID()}
}

// form is a's authorization request as pushed parameters.
func (f *fapi) form(a servertest.Authz) url.Values {
	u, _ := url.Parse(f.env.AuthorizeURL(a))
	return u.Query()
}

func (f *fapi) push(t *testing.T, a servertest.Authz) servertest.Reply {
	t.Helper()
	return f.env.Post(t, "/par", f.form(a), a.Client)
}

func (f *fapi) pushOK(t *testing.T, a servertest.Authz) string {
	t.Helper()
	r := f.push(t, a)
	if r.Status != http.StatusCreated {
		t.Fatalf("push: %d %s", r.Status, r.Body)
	}
	return r.Str("request_uri")
}

// authorizeURL sends the browser with only client_id and request_uri.
func (f *fapi) authorizeURL(clientID, requestURI string) string {
	return f.env.URL + "/authorize?" + url.Values{"client_id": {clientID}, "request_uri": {requestURI}}.Encode()
}

// visit follows a pushed request in a fresh browser that signs in as alice.
func (f *fapi) visit(t *testing.T, clientID, requestURI string) servertest.Step {
	t.Helper()
	s, err := f.env.Agent("alice").Follow(f.authorizeURL(clientID, requestURI))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// code pushes a and returns the code the authorization response carries.
func (f *fapi) code(t *testing.T, a servertest.Authz) string {
	t.Helper()
	s := f.visit(t, a.Client.ID, f.pushOK(t, a))
	p := servertest.Params(s.Location)
	if !strings.HasPrefix(s.Location, fapiRedirect+"?") || p.Get("code") == "" || p.Get("iss") != f.env.URL {
		t.Fatalf("authorization response: %d %q", s.Status, s.Location)
	}
	return p.Get("code")
}

// assertion makes client id's assertion signed by k, with edit applied to
// good claims (aud the issuer).
func (f *fapi) assertion(t *testing.T, id string, k servertest.ClientKey, edit func(map[string]any)) servertest.ClientAuth {
	return servertest.ClientAuth{ID: id, Method: oauth.AuthPrivateKeyJWT, Assertion: func() string {
		c := servertest.AssertionClaims(id, f.env.URL, f.env.Clock.Now())
		if edit != nil {
			edit(c)
		}
		return k.Sign(t, c)
	}}
}

// requestObject is a signed request object (RFC 9101) of the fapi client
// for a, with edit applied to its claims and signed with alg ("none": unsigned).
func (f *fapi) requestObject(t *testing.T, a servertest.Authz, alg string, edit func(map[string]any)) string {
	t.Helper()
	now := f.env.Clock.Now()
	c := map[string]any{"iss": "fapi", "aud": f.env.URL, "client_id": "fapi", "response_type": "code",
		"redirect_uri": fapiRedirect, "scope": "openid", "state": "st", "nonce": a.Nonce,
		"code_challenge": oauth.S256Challenge(a.Verifier), "code_challenge_method": "S256",
		"nbf": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": opaque.ID()}
	if edit != nil {
		edit(c)
	}
	switch alg {
	case "none":
		b, _ := json.Marshal(c)
		return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + base64.RawURLEncoding.EncodeToString(b) + "."
	case "RS256":
		return signRSA(t, f.rsaKey, jose.RS256, c)
	}
	return f.key.Sign(t, c)
}

func signRSA(t *testing.T, k *rsa.PrivateKey, alg jose.SignatureAlgorithm, claims any) string {
	t.Helper()
	return jwstest.SignClaims(t, alg, jose.JSONWebKey{Key: k, KeyID: "r1"}, (&jose.SignerOptions{}).WithType("JWT"), claims)
}

// pushRequestObject pushes a request object for the fapi client; Castellan
// refuses request objects (RFC 9101 is not implemented), so every one of
// them, good or bad, is answered request_not_supported at the PAR endpoint.
func (f *fapi) pushRequestObject(t *testing.T, alg string, edit func(map[string]any)) {
	t.Helper()
	a := f.authz(f.client)
	form := url.Values{"client_id": {"fapi"}, "request": {f.requestObject(t, a, alg, edit)}}
	r := f.env.Post(t, "/par", form, f.client)
	wantError(t, "request object at PAR", r, http.StatusBadRequest, oauth.ErrRequestNotSupported)
}

// wantError checks a JSON error answer.
func wantError(t *testing.T, what string, r servertest.Reply, status int, code string) {
	t.Helper()
	if r.Status != status || r.Code() != code {
		t.Fatalf("%s: got %d %q, want %d %q\n%s", what, r.Status, r.Code(), status, code, r.Body)
	}
}

// wantPage checks that s is Castellan's error page (no redirect) with code.
func wantPage(t *testing.T, s servertest.Step, code string) {
	t.Helper()
	if s.Status != http.StatusBadRequest || s.Location != "" || !strings.Contains(s.Body, "<code>"+code+"</code>") {
		t.Fatalf("got %d %q, want a 400 page naming %s\n%s", s.Status, s.Location, code, s.Body)
	}
}

// dpopPost sends form to path as the private_key_jwt client c (a fresh
// assertion per attempt) with a proof of key k.
func (f *fapi) dpopPost(t *testing.T, k *dpoptest.Key, path string, form url.Values, c servertest.ClientAuth) servertest.Reply {
	t.Helper()
	return send(t, f.env.HTTP.Client(), func() *http.Request {
		out := url.Values{}
		for name, v := range form {
			out[name] = v
		}
		out.Set("client_assertion_type", oauth.ClientAssertionJWT)
		out.Set("client_assertion", c.Assertion())
		return formRequest(f.env, path, out, servertest.ClientAuth{})
	}, k, "")
}

// dpopKey is a DPoP key on the provider's clock, shifted by skew.
func (f *fapi) dpopKey(skew time.Duration) *dpoptest.Key {
	k := dpoptest.NewKey("ES256")
	k.Now = func() time.Time { return f.env.Clock.Now().Add(skew) }
	return k
}

// dpopCode pushes a with a proof of k (when k is not nil) and returns the code.
func (f *fapi) dpopCode(t *testing.T, k *dpoptest.Key, a servertest.Authz) string {
	t.Helper()
	var r servertest.Reply
	if k == nil {
		r = f.push(t, a)
	} else {
		r = f.dpopPost(t, k, "/par", f.form(a), a.Client)
	}
	if r.Status != http.StatusCreated {
		t.Fatalf("push: %d %s", r.Status, r.Body)
	}
	s := f.visit(t, a.Client.ID, r.Str("request_uri"))
	c := servertest.Params(s.Location).Get("code")
	if c == "" {
		t.Fatalf("authorize: %d %q", s.Status, s.Location)
	}
	return c
}

// TestFAPI2SecurityProfile has one case per FAPI 2.0 Security Profile Final
// module of the OpenID conformance suite (AS side, ../shared/CONFORMANCE.md)
// that applies to what Castellan implements, named exactly after the module,
// asserting the outcome the module expects. docs/adversarial.md lists every
// module, including those that do not apply.
func TestFAPI2SecurityProfile(t *testing.T) {
	f := newFAPI(t)
	cases := []struct {
		module string
		run    func(t *testing.T)
	}{
		{"fapi2-security-profile-final-attempt-reuse-authorization-code-after-one-second", func(t *testing.T) {
			a := f.authz(f.client)
			code := f.code(t, a)
			first := f.env.Redeem(t, code, a)
			if first.Status != http.StatusOK {
				t.Fatalf("redeem: %d %s", first.Status, first.Body)
			}
			f.env.Clock.Advance(time.Second)
			wantError(t, "reuse", f.env.Redeem(t, code, a), http.StatusBadRequest, oauth.ErrInvalidGrant)
			// RFC 6749 §4.1.2 (SHOULD): what the code earned is revoked.
			if f.env.Active(t, first.Str("access_token")) {
				t.Error("the access token of a reused code is still active")
			}
		}},
		{"fapi2-security-profile-final-ensure-token-endpoint-fails-with-expired-auth-code", func(t *testing.T) {
			a := f.authz(f.client)
			code := f.code(t, a)
			f.env.Clock.Advance(61 * time.Second)
			wantError(t, "expired code", f.env.Redeem(t, code, a), http.StatusBadRequest, oauth.ErrInvalidGrant)
		}},
		{"fapi2-security-profile-final-discovery-end-point-verification", func(t *testing.T) {
			r, err := f.env.Request(http.MethodGet, "/.well-known/openid-configuration", "", "", "")
			if err != nil {
				t.Fatal(err)
			}
			var m struct {
				Issuer          string   `json:"issuer"`
				PAR             string   `json:"pushed_authorization_request_endpoint"`
				ResponseTypes   []string `json:"response_types_supported"`
				PKCE            []string `json:"code_challenge_methods_supported"`
				AuthMethods     []string `json:"token_endpoint_auth_methods_supported"`
				AuthAlgs        []string `json:"token_endpoint_auth_signing_alg_values_supported"`
				DPoPAlgs        []string `json:"dpop_signing_alg_values_supported"`
				ISSParameter    bool     `json:"authorization_response_iss_parameter_supported"`
				RequestObjects  bool     `json:"request_parameter_supported"`
				GrantTypes      []string `json:"grant_types_supported"`
				ClaimsParameter bool     `json:"claims_parameter_supported"`
			}
			if err := json.Unmarshal([]byte(r.Body), &m); err != nil {
				t.Fatalf("%v: %s", err, r.Body)
			}
			if m.Issuer != f.env.URL || m.PAR != f.env.URL+"/par" || !oauth.Contains(m.ResponseTypes, "code") ||
				!oauth.Contains(m.PKCE, "S256") || oauth.Contains(m.PKCE, "plain") || !oauth.Contains(m.AuthMethods, "private_key_jwt") ||
				!oauth.Contains(m.AuthAlgs, "ES256") || !oauth.Contains(m.AuthAlgs, "PS256") || !oauth.Contains(m.DPoPAlgs, "ES256") ||
				!m.ISSParameter || m.RequestObjects || !oauth.Contains(m.GrantTypes, "authorization_code") || m.ClaimsParameter {
				t.Fatalf("discovery: %+v", m)
			}
		}},
		{"fapi2-security-profile-final-dpop-negative-tests", func(t *testing.T) {
			k := f.dpopKey(0)
			a := f.authz(f.dpopClientKeyed)
			r := f.dpopPost(t, k, "/token", servertest.RedeemForm(f.dpopCode(t, k, a), a), a.Client)
			if r.Status != http.StatusOK || r.Str("token_type") != "DPoP" {
				t.Fatalf("redeem: %d %s", r.Status, r.Body)
			}
			at := r.Str("access_token")
			// The access token used as a bearer token, with no proof, or with a
			// proof of another key or for another URL, is refused.
			for what, auth := range map[string]string{"bearer": "Bearer " + at, "no proof": "DPoP " + at} {
				req, _ := http.NewRequest(http.MethodGet, f.env.URL+"/userinfo", nil)
				if got := raw(t, f.env, req, nil, auth); got.Status != http.StatusUnauthorized {
					t.Fatalf("userinfo, %s: %d %s", what, got.Status, got.Body)
				}
			}
			req, _ := http.NewRequest(http.MethodGet, f.env.URL+"/userinfo", nil)
			other := f.dpopKey(0).Proof(http.MethodGet, f.env.URL+"/userinfo", at)
			if got := raw(t, f.env, req, []string{other}, "DPoP "+at); got.Status != http.StatusUnauthorized {
				t.Fatalf("userinfo, another key's proof: %d %s", got.Status, got.Body)
			}
			req, _ = http.NewRequest(http.MethodGet, f.env.URL+"/userinfo", nil)
			wrongURL := k.Proof(http.MethodGet, f.env.URL+"/token", at)
			if got := raw(t, f.env, req, []string{wrongURL}, "DPoP "+at); got.Status != http.StatusUnauthorized {
				t.Fatalf("userinfo, proof for another URL: %d %s", got.Status, got.Body)
			}
			// At the token endpoint: a proof for another method, and two proofs.
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.Str("refresh_token")},
				"client_assertion_type": {oauth.ClientAssertionJWT}, "client_assertion": {a.Client.Assertion()}}
			bad := k.Proof(http.MethodGet, f.env.URL+"/token", "")
			wantError(t, "token, htm GET", raw(t, f.env, formRequest(f.env, "/token", form, servertest.ClientAuth{}), []string{bad}, ""), http.StatusBadRequest, "invalid_dpop_proof")
			form.Set("client_assertion", a.Client.Assertion())
			two := []string{k.Proof(http.MethodPost, f.env.URL+"/token", ""), k.Proof(http.MethodPost, f.env.URL+"/token", "")}
			wantError(t, "token, two proofs", raw(t, f.env, formRequest(f.env, "/token", form, servertest.ClientAuth{}), two, ""), http.StatusBadRequest, "invalid_dpop_proof")
		}},
		{"fapi2-security-profile-final-ensure-authorization-code-is-bound-to-client", func(t *testing.T) {
			a := f.authz(f.client)
			code := f.code(t, a)
			other := a
			other.Client = f.client2
			wantError(t, "another client's code", f.env.Redeem(t, code, other), http.StatusBadRequest, oauth.ErrInvalidGrant)
		}},
		{"fapi2-security-profile-final-ensure-authorization-request-with-64-char-nonce-success", func(t *testing.T) {
			a := f.authz(f.client)
			a.Nonce = strings.Repeat("n", 64)
			r := f.env.Redeem(t, f.code(t, a), a)
			if r.Status != http.StatusOK || servertest.Claims(r.Str("id_token"))["nonce"] != a.Nonce {
				t.Fatalf("redeem: %d %s", r.Status, r.Body)
			}
		}},
		{"fapi2-security-profile-final-ensure-authorization-request-with-long-nonce", func(t *testing.T) {
			// Either outcome is allowed; Castellan returns the 384-character nonce.
			a := f.authz(f.client)
			a.Nonce = strings.Repeat("n", 384)
			r := f.env.Redeem(t, f.code(t, a), a)
			if r.Status != http.StatusOK || servertest.Claims(r.Str("id_token"))["nonce"] != a.Nonce {
				t.Fatalf("redeem: %d %s", r.Status, r.Body)
			}
		}},
		{"fapi2-security-profile-final-ensure-authorization-request-with-long-state", func(t *testing.T) {
			// Either outcome is allowed: a state up to MaxStateLength comes back
			// exactly, a longer one is refused at the PAR endpoint.
			a := f.authz(f.client)
			form := f.form(a)
			form.Set("state", strings.Repeat("s", 384))
			r := f.env.Post(t, "/par", form, f.client)
			if r.Status != http.StatusCreated {
				t.Fatalf("push: %d %s", r.Status, r.Body)
			}
			s := f.visit(t, "fapi", r.Str("request_uri"))
			if servertest.Params(s.Location).Get("state") != form.Get("state") {
				t.Fatalf("state not returned exactly: %q", s.Location)
			}
			form.Set("state", strings.Repeat("s", 4097))
			wantError(t, "state over 4096", f.env.Post(t, "/par", form, f.client), http.StatusBadRequest, oauth.ErrInvalidRequest)
		}},
		{"fapi2-security-profile-final-ensure-authorization-request-without-nonce-success", func(t *testing.T) {
			a := f.authz(f.client)
			a.Nonce, a.NoNonce = "", true
			r := f.env.Redeem(t, f.code(t, a), a)
			if r.Status != http.StatusOK || r.Str("id_token") == "" {
				t.Fatalf("redeem: %d %s", r.Status, r.Body)
			}
			if _, ok := servertest.Claims(r.Str("id_token"))["nonce"]; ok {
				t.Fatal("nonce in an ID token of a request without one")
			}
		}},
		{"fapi2-security-profile-final-ensure-authorization-request-without-state-success", func(t *testing.T) {
			a := f.authz(f.client)
			form := f.form(a)
			form.Del("state")
			r := f.env.Post(t, "/par", form, f.client)
			if r.Status != http.StatusCreated {
				t.Fatalf("push: %d %s", r.Status, r.Body)
			}
			s := f.visit(t, "fapi", r.Str("request_uri"))
			p := servertest.Params(s.Location)
			if _, has := p["state"]; has || p.Get("code") == "" {
				t.Fatalf("want a code and no state: %q", s.Location)
			}
		}},
		{"fapi2-security-profile-final-ensure-client-assertion-in-token-endpoint", func(t *testing.T) {
			a := f.authz(f.client)
			code := f.code(t, a)
			a.Client = servertest.ClientAuth{ID: "fapi", Method: oauth.AuthNone}
			wantError(t, "no assertion", f.env.Redeem(t, code, a), http.StatusUnauthorized, oauth.ErrInvalidClient)
		}},
		{"fapi2-security-profile-final-ensure-client-assertion-with-exp-is-5-minutes-in-past-fails", func(t *testing.T) {
			a := f.authz(f.client)
			code := f.code(t, a)
			a.Client = f.assertion(t, "fapi", f.key, func(c map[string]any) {
				c["iat"] = f.env.Clock.Now().Add(-6 * time.Minute).Unix()
				c["exp"] = f.env.Clock.Now().Add(-5 * time.Minute).Unix()
			})
			wantError(t, "expired assertion", f.env.Redeem(t, code, a), http.StatusUnauthorized, oauth.ErrInvalidClient)
		}},
		{"fapi2-security-profile-final-ensure-client-assertion-with-no-sub-fails", func(t *testing.T) {
			a := f.authz(f.client)
			code := f.code(t, a)
			a.Client = f.assertion(t, "fapi", f.key, func(c map[string]any) { delete(c, "sub") })
			form := servertest.RedeemForm(code, a)
			form.Set("client_id", "fapi") // the client is named, only sub is missing
			wantError(t, "no sub", f.env.Post(t, "/token", form, a.Client), http.StatusUnauthorized, oauth.ErrInvalidClient)
		}},
		{"fapi2-security-profile-final-ensure-client-assertion-with-wrong-aud-fails", func(t *testing.T) {
			k := f.dpopKey(0)
			a := f.authz(f.dpopClientKeyed)
			code := f.dpopCode(t, k, a)
			for _, aud := range []any{"https://other-server.example", f.env.URL + "/token", []string{f.env.URL}} {
				bad := f.assertion(t, "fapi-dpop", f.key, func(c map[string]any) { c["aud"] = aud })
				wantError(t, "aud "+jsonString(aud), f.dpopPost(t, k, "/token", servertest.RedeemForm(code, a), bad), http.StatusUnauthorized, oauth.ErrInvalidClient)
			}
			// The refusals did not use the code up.
			if r := f.dpopPost(t, k, "/token", servertest.RedeemForm(code, a), a.Client); r.Status != http.StatusOK {
				t.Fatalf("redeem after the refusals: %d %s", r.Status, r.Body)
			}
		}},
		{"fapi2-security-profile-final-ensure-client-id-in-token-endpoint", func(t *testing.T) {
			a := f.authz(f.client)
			code := f.code(t, a)
			form := servertest.RedeemForm(code, a)
			form.Set("client_id", "fapi2")
			wantError(t, "client_id of another client", f.env.Post(t, "/token", form, f.client), http.StatusUnauthorized, oauth.ErrInvalidClient)
		}},
		{"fapi2-security-profile-final-ensure-dpop-auth-code-binding-success", func(t *testing.T) {
			k := f.dpopKey(0)
			a := f.authz(f.dpopClientKeyed)
			a.Extra = url.Values{"dpop_jkt": {k.JKT()}}
			r := f.dpopPost(t, k, "/token", servertest.RedeemForm(f.dpopCode(t, k, a), a), a.Client)
			if r.Status != http.StatusOK || r.Str("token_type") != "DPoP" || jkt(t, r.Str("access_token")) != k.JKT() {
				t.Fatalf("redeem: %d %s", r.Status, r.Body)
			}
		}},
		{"fapi2-security-profile-final-ensure-dpopproof-at-par-endpoint-binding-success", func(t *testing.T) {
			k := f.dpopKey(0)
			a := f.authz(f.dpopClientKeyed)
			r := f.dpopPost(t, k, "/token", servertest.RedeemForm(f.dpopCode(t, k, a), a), a.Client)
			if r.Status != http.StatusOK || jkt(t, r.Str("access_token")) != k.JKT() {
				t.Fatalf("redeem: %d %s", r.Status, r.Body)
			}
		}},
		{"fapi2-security-profile-final-ensure-dpopproof-with-iat-10seconds-after-succeeds", func(t *testing.T) {
			dpopWithSkew(t, f, 10*time.Second)
		}},
		{"fapi2-security-profile-final-ensure-dpopproof-with-iat-10seconds-before-succeeds", func(t *testing.T) {
			dpopWithSkew(t, f, -10*time.Second)
		}},
		{"fapi2-security-profile-final-ensure-holder-of-key-required", func(t *testing.T) {
			// With dpop_bound_access_tokens (FAPI clients should have it), a
			// code redeemed without a proof gets nothing.
			a := f.authz(f.dpopClientKeyed)
			wantError(t, "no proof", f.env.Redeem(t, f.code(t, a), a), http.StatusBadRequest, "invalid_dpop_proof")
		}},
		{"fapi2-security-profile-final-ensure-mismatched-dpop-jkt-fails", func(t *testing.T) {
			a := f.authz(f.dpopClientKeyed)
			a.Extra = url.Values{"dpop_jkt": {f.dpopKey(0).JKT()}}
			wantError(t, "push", f.dpopPost(t, f.dpopKey(0), "/par", f.form(a), a.Client), http.StatusBadRequest, "invalid_dpop_proof")
		}},
		{"fapi2-security-profile-final-ensure-other-scope-order-succeeds", func(t *testing.T) {
			a := f.authz(f.client)
			a.Scope = "email profile openid"
			r := f.env.Redeem(t, f.code(t, a), a)
			if r.Status != http.StatusOK || r.Str("id_token") == "" {
				t.Fatalf("redeem: %d %s", r.Status, r.Body)
			}
		}},
		{"fapi2-security-profile-final-ensure-redirect-uri-in-authorization-request", func(t *testing.T) {
			// Allowed outcome: the PAR endpoint refuses it with invalid_request
			// (OIDC Core §3.1.2.1: redirect_uri is required in OpenID requests).
			a := f.authz(f.client)
			a.OmitRedirect = true
			wantError(t, "push without redirect_uri", f.push(t, a), http.StatusBadRequest, oauth.ErrInvalidRequest)
		}},
		{"fapi2-security-profile-final-ensure-registered-redirect-uri", func(t *testing.T) {
			a := f.authz(f.client)
			a.RedirectURI = "https://fapi.example/unregistered"
			wantError(t, "push", f.push(t, a), http.StatusBadRequest, oauth.ErrInvalidRequest)
		}},
		{"fapi2-security-profile-final-plain-fapi-tolerate-unregistered-redirect-uri", func(t *testing.T) {
			// RFC 9126 §2.4 allows accepting it; Castellan takes the other
			// permitted outcome and refuses it.
			a := f.authz(f.client)
			a.RedirectURI = "https://fapi.example/other"
			wantError(t, "push", f.push(t, a), http.StatusBadRequest, oauth.ErrInvalidRequest)
		}},
		{"fapi2-security-profile-final-ensure-request-object-signature-algorithm-is-not-none", func(t *testing.T) {
			f.pushRequestObject(t, "none", nil)
		}},
		{"fapi2-security-profile-final-ensure-request-object-with-bad-aud-fails", func(t *testing.T) {
			f.pushRequestObject(t, "ES256", func(c map[string]any) { c["aud"] = "https://other-server.example" })
		}},
		{"fapi2-security-profile-final-ensure-request-object-with-exp-over-60-fails", func(t *testing.T) {
			f.pushRequestObject(t, "ES256", func(c map[string]any) { c["exp"] = f.env.Clock.Now().Add(61 * time.Minute).Unix() })
		}},
		{"fapi2-security-profile-final-ensure-request-object-with-invalid-signature-fails", func(t *testing.T) {
			a := f.authz(f.client)
			ro := f.requestObject(t, a, "ES256", nil)
			ro = ro[:len(ro)-4] + "AAAA"
			r := f.env.Post(t, "/par", url.Values{"client_id": {"fapi"}, "request": {ro}}, f.client)
			wantError(t, "request object at PAR", r, http.StatusBadRequest, oauth.ErrRequestNotSupported)
		}},
		{"fapi2-security-profile-final-ensure-request-object-with-nbf-over-60-fails", func(t *testing.T) {
			f.pushRequestObject(t, "ES256", func(c map[string]any) { c["nbf"] = f.env.Clock.Now().Add(-61 * time.Minute).Unix() })
		}},
		{"fapi2-security-profile-final-ensure-request-object-without-exp-fails", func(t *testing.T) {
			f.pushRequestObject(t, "ES256", func(c map[string]any) { delete(c, "exp") })
		}},
		{"fapi2-security-profile-final-ensure-request-object-without-nbf-fails", func(t *testing.T) {
			f.pushRequestObject(t, "ES256", func(c map[string]any) { delete(c, "nbf") })
		}},
		{"fapi2-security-profile-final-ensure-request-object-without-redirect-uri-fails", func(t *testing.T) {
			f.pushRequestObject(t, "ES256", func(c map[string]any) { delete(c, "redirect_uri") })
		}},
		{"fapi2-security-profile-final-ensure-expired-request-object-fails", func(t *testing.T) {
			f.pushRequestObject(t, "ES256", func(c map[string]any) { c["exp"] = f.env.Clock.Now().Add(-time.Minute).Unix() })
		}},
		{"fapi2-security-profile-final-ensure-matching-key-in-authorization-request", func(t *testing.T) {
			a := f.authz(f.client)
			ro := f.requestObject(t, a, "ES256", nil)
			ro = f.key2.Sign(t, servertest.Claims(ro)) // client 1's request, client 2's key
			r := f.env.Post(t, "/par", url.Values{"client_id": {"fapi"}, "request": {ro}}, f.client)
			wantError(t, "request object at PAR", r, http.StatusBadRequest, oauth.ErrRequestNotSupported)
		}},
		{"fapi2-security-profile-final-ensure-signed-request-object-with-RS256-fails", func(t *testing.T) {
			f.pushRequestObject(t, "RS256", nil)
		}},
		{"fapi2-security-profile-final-par-authorization-request-containing-request_uri", func(t *testing.T) {
			f.pushRequestObject(t, "ES256", func(c map[string]any) { c["request_uri"] = "urn:ietf:params:oauth:request_uri:" + opaque.New() })
		}},
		{"fapi2-security-profile-final-ensure-response-type-code-idtoken-fails", func(t *testing.T) {
			form := f.form(f.authz(f.client))
			form.Set("response_type", "code id_token")
			wantError(t, "push", f.env.Post(t, "/par", form, f.client), http.StatusBadRequest, oauth.ErrUnsupportedResponseType)
		}},
		{"fapi2-security-profile-final-ensure-response-type-token-fails", func(t *testing.T) {
			form := f.form(f.authz(f.client))
			form.Set("response_type", "token")
			wantError(t, "push", f.env.Post(t, "/par", form, f.client), http.StatusBadRequest, oauth.ErrUnauthorizedClient)
		}},
		{"fapi2-security-profile-final-ensure-signed-client-assertion-with-RS256-fails", func(t *testing.T) {
			c := servertest.ClientAuth{ID: "fapi-ps", Method: oauth.AuthPrivateKeyJWT, Assertion: func() string {
				return signRSA(t, f.rsaKey, jose.RS256, servertest.AssertionClaims("fapi-ps", f.env.URL, f.env.Clock.Now()))
			}}
			r := f.env.Post(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, c)
			wantError(t, "RS256 assertion", r, http.StatusUnauthorized, oauth.ErrInvalidClient)
			if !strings.Contains(r.Str("error_description"), "token_endpoint_auth_signing_alg") {
				t.Fatalf("refused for another reason: %s", r.Body)
			}
			// The same key with PS256 authenticates.
			c.Assertion = func() string {
				return signRSA(t, f.rsaKey, jose.PS256, servertest.AssertionClaims("fapi-ps", f.env.URL, f.env.Clock.Now()))
			}
			wantError(t, "PS256 assertion, unknown refresh token", f.env.Post(t, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, c), http.StatusBadRequest, oauth.ErrInvalidGrant)
		}},
		{"fapi2-security-profile-final-ensure-token-endpoint-fails-with-mismatched-dpop-jkt", func(t *testing.T) {
			a := f.authz(f.dpopClientKeyed)
			a.Extra = url.Values{"dpop_jkt": {f.dpopKey(0).JKT()}}
			code := f.dpopCode(t, nil, a)
			r := f.dpopPost(t, f.dpopKey(0), "/token", servertest.RedeemForm(code, a), a.Client)
			wantError(t, "redeem with another key", r, http.StatusBadRequest, oauth.ErrInvalidGrant)
		}},
		{"fapi2-security-profile-final-ensure-token-endpoint-fails-with-mismatched-dpop-proof-jkt", func(t *testing.T) {
			a := f.authz(f.dpopClientKeyed)
			code := f.dpopCode(t, f.dpopKey(0), a)
			r := f.dpopPost(t, f.dpopKey(0), "/token", servertest.RedeemForm(code, a), a.Client)
			wantError(t, "redeem with another key", r, http.StatusBadRequest, oauth.ErrInvalidGrant)
		}},
		{"fapi2-security-profile-final-ensure-unsigned-authorization-request-without-using-par-fails", func(t *testing.T) {
			f.wantUnpushedRefused(t, f.authz(f.client))
		}},
		{"fapi2-security-profile-final-par-attempt-reuse-request_uri", func(t *testing.T) {
			a := f.authz(f.client)
			uri := f.pushOK(t, a)
			if s := f.visit(t, "fapi", uri); servertest.Params(s.Location).Get("code") == "" {
				t.Fatalf("first use: %d %q", s.Status, s.Location)
			}
			wantPage(t, f.visit(t, "fapi", uri), oauth.ErrInvalidRequestURI)
		}},
		{"fapi2-security-profile-final-par-attempt-to-use-expired-request_uri", func(t *testing.T) {
			uri := f.pushOK(t, f.authz(f.client))
			f.env.Clock.Advance(61 * time.Second)
			wantPage(t, f.visit(t, "fapi", uri), oauth.ErrInvalidRequestURI)
		}},
		{"fapi2-security-profile-final-par-test-array-as-audience-fails", func(t *testing.T) {
			c := f.assertion(t, "fapi-dpop", f.key, func(c map[string]any) { c["aud"] = []string{f.env.URL, f.env.URL + "/par"} })
			wantError(t, "aud array", f.push(t, servertest.Authz{Client: c, RedirectURI: fapiRedirect, Verifier: opaque.New()}), http.StatusUnauthorized, oauth.ErrInvalidClient)
			c = f.assertion(t, "fapi-dpop", f.key, func(c map[string]any) { c["aud"] = []string{f.env.URL} })
			wantError(t, "aud array of the issuer", f.push(t, servertest.Authz{Client: c, RedirectURI: fapiRedirect, Verifier: opaque.New()}), http.StatusUnauthorized, oauth.ErrInvalidClient)
		}},
		{"fapi2-security-profile-final-par-test-par-endpoint-url-as-audience-fails", func(t *testing.T) {
			c := f.assertion(t, "fapi-dpop", f.key, func(c map[string]any) { c["aud"] = f.env.URL + "/par" })
			wantError(t, "aud PAR endpoint", f.push(t, servertest.Authz{Client: c, RedirectURI: fapiRedirect, Verifier: opaque.New()}), http.StatusUnauthorized, oauth.ErrInvalidClient)
		}},
		{"fapi2-security-profile-final-par-test-token-endpoint-url-as-audience-fails", func(t *testing.T) {
			c := f.assertion(t, "fapi-dpop", f.key, func(c map[string]any) { c["aud"] = f.env.URL + "/token" })
			wantError(t, "aud token endpoint", f.push(t, servertest.Authz{Client: c, RedirectURI: fapiRedirect, Verifier: opaque.New()}), http.StatusUnauthorized, oauth.ErrInvalidClient)
		}},
		{"fapi2-security-profile-final-par-ensure-jwt-client-assertions-nbf-8-seconds-in-the-future-is-accepted", func(t *testing.T) {
			c := f.assertion(t, "fapi", f.key, func(c map[string]any) {
				c["nbf"] = f.env.Clock.Now().Add(8 * time.Second).Unix()
				c["iat"] = f.env.Clock.Now().Add(8 * time.Second).Unix()
			})
			if r := f.push(t, servertest.Authz{Client: c, RedirectURI: fapiRedirect, Verifier: opaque.New()}); r.Status != http.StatusCreated {
				t.Fatalf("push: %d %s", r.Status, r.Body)
			}
		}},
		{"fapi2-security-profile-final-par-ensure-jwt-client-assertions-nbf-over-60-seconds-in-the-future-fails", func(t *testing.T) {
			c := f.assertion(t, "fapi", f.key, func(c map[string]any) {
				now := f.env.Clock.Now()
				c["nbf"], c["iat"], c["exp"] = now.Add(61*time.Second).Unix(), now.Add(61*time.Second).Unix(), now.Add(2*time.Minute).Unix()
			})
			wantError(t, "future assertion", f.push(t, servertest.Authz{Client: c, RedirectURI: fapiRedirect, Verifier: opaque.New()}), http.StatusUnauthorized, oauth.ErrInvalidClient)
		}},
		{"fapi2-security-profile-final-ensure-pkce-code-verifier-required", func(t *testing.T) {
			a := f.authz(f.client)
			code := f.code(t, a)
			form := servertest.RedeemForm(code, a)
			form.Del("code_verifier")
			wantError(t, "no verifier", f.env.Post(t, "/token", form, f.client), http.StatusBadRequest, oauth.ErrInvalidGrant)
		}},
		{"fapi2-security-profile-final-incorrect-pkce-code-verifier-rejected", func(t *testing.T) {
			a := f.authz(f.client)
			code := f.code(t, a)
			form := servertest.RedeemForm(code, a)
			form.Set("code_verifier", opaque.New())
			wantError(t, "wrong verifier", f.env.Post(t, "/token", form, f.client), http.StatusBadRequest, oauth.ErrInvalidGrant)
		}},
		{"fapi2-security-profile-final-par-ensure-pkce-required", func(t *testing.T) {
			a := f.authz(f.client)
			a.Verifier, a.NoPKCE = "", true
			wantError(t, "push without PKCE", f.push(t, a), http.StatusBadRequest, oauth.ErrInvalidRequest)
		}},
		{"fapi2-security-profile-final-par-plain-pkce-rejected", func(t *testing.T) {
			form := f.form(f.authz(f.client))
			form.Set("code_challenge", opaque.New())
			form.Set("code_challenge_method", "plain")
			wantError(t, "push with plain PKCE", f.env.Post(t, "/par", form, f.client), http.StatusBadRequest, oauth.ErrInvalidRequest)
		}},
		{"fapi2-security-profile-final-par-attempt-to-use-request_uri-for-different-client", func(t *testing.T) {
			uri := f.pushOK(t, f.authz(f.client))
			wantPage(t, f.visit(t, "fapi2", uri), oauth.ErrInvalidRequestURI)
		}},
		{"fapi2-security-profile-final-par-ensure-reused-request-uri-prior-to-auth-completion-succeeds", func(t *testing.T) {
			a := f.authz(f.client)
			uri := f.pushOK(t, a)
			agent := f.env.Agent("alice")
			first, err := agent.Get(f.authorizeURL("fapi", uri)) // first visit: no sign-in
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(first.Location, f.env.URL+"/login?") {
				t.Fatalf("first visit: %d %q, want the sign-in page", first.Status, first.Location)
			}
			s, err := agent.Follow(f.authorizeURL("fapi", uri)) // second visit: sign in
			if err != nil {
				t.Fatal(err)
			}
			if r := f.env.Redeem(t, servertest.Params(s.Location).Get("code"), a); r.Status != http.StatusOK {
				t.Fatalf("second visit ended at %q; redeem: %d %s", s.Location, r.Status, r.Body)
			}
		}},
		{"fapi2-security-profile-final-par-attempt-invalid-http-method", func(t *testing.T) {
			for _, m := range []string{http.MethodGet, http.MethodPut} {
				r, err := f.env.Request(m, "/par", "", "", "")
				if err != nil {
					t.Fatal(err)
				}
				if r.Status != http.StatusMethodNotAllowed {
					t.Fatalf("%s /par: %d, want 405", m, r.Status)
				}
			}
		}},
		{"fapi2-security-profile-final-par-authorization-request-containing-request_uri-form-param", func(t *testing.T) {
			form := f.form(f.authz(f.client))
			form.Set("request_uri", "urn:ietf:params:oauth:request_uri:"+opaque.New())
			wantError(t, "push with request_uri", f.env.Post(t, "/par", form, f.client), http.StatusBadRequest, oauth.ErrInvalidRequest)
		}},
		{"fapi2-security-profile-final-par-without-duplicate-parameters", func(t *testing.T) {
			// Only client_id and request_uri at the authorization endpoint.
			a := f.authz(f.client)
			if r := f.env.Redeem(t, f.code(t, a), a); r.Status != http.StatusOK {
				t.Fatalf("redeem: %d %s", r.Status, r.Body)
			}
		}},
		{"fapi2-security-profile-final-refresh-token", func(t *testing.T) {
			a := f.authz(f.client)
			r := f.env.Redeem(t, f.code(t, a), a)
			rt := r.Str("refresh_token")
			if r.Status != http.StatusOK || rt == "" {
				t.Fatalf("redeem: %d %s", r.Status, r.Body)
			}
			wantError(t, "no client authentication", f.env.Refresh(t, servertest.ClientAuth{ID: "fapi", Method: oauth.AuthNone}, rt, ""), http.StatusUnauthorized, oauth.ErrInvalidClient)
			wantError(t, "another client", f.env.Refresh(t, f.client2, rt, ""), http.StatusBadRequest, oauth.ErrInvalidGrant)
			if got := f.env.Refresh(t, f.client, rt, ""); got.Status != http.StatusOK || got.Str("access_token") == "" {
				t.Fatalf("refresh: %d %s", got.Status, got.Body)
			}
		}},
		{"fapi2-security-profile-final-user-rejects-authentication", func(t *testing.T) {
			uri := f.pushOK(t, f.authz(f.client))
			agent := f.env.Agent("alice")
			s, err := agent.Get(f.authorizeURL("fapi", uri))
			if err == nil {
				s, err = agent.Get(s.Location) // the sign-in page
			}
			if err != nil {
				t.Fatal(err)
			}
			authz := regexpField(s.Body, "authz")
			if authz == "" {
				t.Fatalf("not the sign-in page: %d %s", s.Status, s.Body)
			}
			s, err = agent.Post(f.env.URL+"/login/cancel", url.Values{"csrf_token": {servertest.CSRF(s.Body)}, "authz": {authz}})
			if err != nil {
				t.Fatal(err)
			}
			if p := servertest.Params(s.Location); !strings.HasPrefix(s.Location, fapiRedirect+"?") || p.Get("error") != oauth.ErrAccessDenied {
				t.Fatalf("cancel: %d %q, want access_denied at the redirect URI", s.Status, s.Location)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.module, tc.run)
	}
}

// TestProfileFAPI2Client: a client declared with profile: fapi2 and none of
// the switches gets what the profile turns on. Its unpushed authorization
// request is refused, a push without PKCE is refused, and a code redeemed
// without a DPoP proof gets nothing (fapi2-security-profile-final-ensure-
// holder-of-key-required, above, with the same client).
func TestProfileFAPI2Client(t *testing.T) {
	f := newFAPI(t)
	a := f.authz(f.dpopClientKeyed)
	f.wantUnpushedRefused(t, a)
	a.Verifier, a.NoPKCE = "", true
	wantError(t, "push without PKCE", f.push(t, a), http.StatusBadRequest, oauth.ErrInvalidRequest)
}

// wantUnpushedRefused sends a's authorization request without pushing it
// first: require_pushed_authorization_requests sends it back to the
// (registered) redirect URI as invalid_request, with no code.
func (f *fapi) wantUnpushedRefused(t *testing.T, a servertest.Authz) {
	t.Helper()
	s, err := f.env.Agent("alice").Follow(f.env.AuthorizeURL(a))
	if err != nil {
		t.Fatal(err)
	}
	if p := servertest.Params(s.Location); !strings.HasPrefix(s.Location, fapiRedirect+"?") || p.Get("error") != oauth.ErrInvalidRequest || p.Get("code") != "" {
		t.Fatalf("unpushed request: %d %q, want invalid_request at the redirect URI", s.Status, s.Location)
	}
}

// dpopWithSkew runs PAR, token and userinfo with proofs whose iat is off by skew.
func dpopWithSkew(t *testing.T, f *fapi, skew time.Duration) {
	t.Helper()
	k := f.dpopKey(skew)
	a := f.authz(f.dpopClientKeyed)
	r := f.dpopPost(t, k, "/token", servertest.RedeemForm(f.dpopCode(t, k, a), a), a.Client)
	if r.Status != http.StatusOK || jkt(t, r.Str("access_token")) != k.JKT() {
		t.Fatalf("redeem: %d %s", r.Status, r.Body)
	}
	ui := send(t, f.env.HTTP.Client(), func() *http.Request {
		req, _ := http.NewRequest(http.MethodGet, f.env.URL+"/userinfo", nil)
		return req
	}, k, r.Str("access_token"))
	if ui.Status != http.StatusOK {
		t.Fatalf("userinfo: %d %s", ui.Status, ui.Body)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// regexpField returns the value of the hidden input name in an HTML page.
func regexpField(body, name string) string {
	marker := `name="` + name + `" value="`
	i := strings.Index(body, marker)
	if i < 0 {
		return ""
	}
	rest := body[i+len(marker):]
	return rest[:strings.IndexByte(rest, '"')]
}
