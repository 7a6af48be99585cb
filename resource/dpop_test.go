package resource_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/dpop"
	"github.com/castellan-auth/castellan/dpop/dpoptest"
	"github.com/castellan-auth/castellan/internal/server/servertest"
	"github.com/castellan-auth/castellan/resource"
)

// boundServiceToken gets a client-credentials token bound to key.
func boundServiceToken(t *testing.T, env *servertest.Env, key *dpoptest.Key) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"api:read"},
		"client_id": {"svc"}, "client_secret": {servertest.SvcSecret}}
	resp, err := key.Do(env.HTTP.Client(), func() *http.Request {
		r, _ := http.NewRequest(http.MethodPost, env.URL+"/token", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != 200 || tr.TokenType != "DPoP" {
		t.Fatalf("DPoP client credentials: %d %v %+v", resp.StatusCode, err, tr)
	}
	return tr.AccessToken
}

func TestRequireDPoP(t *testing.T) {
	t.Parallel()
	env := newProvider(t)
	alice := dpoptest.NewKey("ES256")
	alice.Now = env.Clock.Now
	thief := dpoptest.NewKey("EdDSA")
	thief.Now = env.Clock.Now
	bound := boundServiceToken(t, env, alice)
	bearer := serviceToken(t, env, "api:read")

	nonces := dpop.NewNonces([]byte("an API's own nonce key, 32 bytes"), time.Minute)
	mk := func(d *resource.DPoP) *httptest.Server {
		v, _ := newVerifier(t, env, func(c *resource.Config) { c.DPoP = d })
		srv := httptest.NewServer(v.Require("api:read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _ := resource.ClaimsFrom(r.Context())
			io.WriteString(w, c.JKT)
		})))
		t.Cleanup(srv.Close)
		return srv
	}
	plain := mk(nil)
	api := mk(&resource.DPoP{})
	strict := mk(&resource.DPoP{Required: true})
	nonced := mk(&resource.DPoP{Nonces: nonces, RequireNonce: true})

	type result struct {
		status    int
		challenge []string
		nonce     string
		body      string
	}
	call := func(srv *httptest.Server, auth string, proofs ...string) result {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/orders?page=2", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		for _, p := range proofs {
			req.Header.Add("DPoP", p)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return result{resp.StatusCode, resp.Header.Values("WWW-Authenticate"), resp.Header.Get("DPoP-Nonce"), string(b)}
	}
	proof := func(k *dpoptest.Key, srv *httptest.Server, token string) string {
		return k.Proof("GET", srv.URL+"/orders", token)
	}

	tests := []struct {
		name   string
		got    func() result
		status int
		// challenge: the WWW-Authenticate values must start with these.
		challenge []string
	}{
		{"ok/dpop", func() result { return call(api, "DPoP "+bound, proof(alice, api, bound)) }, 200, nil},
		{"ok/dpop-scheme-case", func() result { return call(api, "dpop "+bound, proof(alice, api, bound)) }, 200, nil},
		{"ok/bearer-still-accepted", func() result { return call(api, "Bearer "+bearer) }, 200, nil},
		{"fail/no-token-offers-both", func() result { return call(api, "") }, 401,
			[]string{`Bearer realm=`, `DPoP realm=`}},
		{"fail/bound-token-as-bearer", func() result { return call(api, "Bearer "+bound) }, 401,
			[]string{`Bearer realm=`}},
		{"fail/thief-key", func() result { return call(api, "DPoP "+bound, proof(thief, api, bound)) }, 401,
			[]string{`DPoP realm=`}},
		{"fail/no-proof", func() result { return call(api, "DPoP "+bound) }, 401, []string{`DPoP realm=`}},
		{"fail/missing-ath", func() result { return call(api, "DPoP "+bound, proof(alice, api, "")) }, 401, []string{`DPoP realm=`}},
		{"fail/other-api-htu", func() result { return call(api, "DPoP "+bound, proof(alice, strict, bound)) }, 401, []string{`DPoP realm=`}},
		{"fail/two-proofs", func() result {
			return call(api, "DPoP "+bound, proof(alice, api, bound), proof(alice, api, bound))
		}, 401, []string{`DPoP realm=`}},
		{"fail/bearer-token-with-dpop-scheme", func() result { return call(api, "DPoP "+bearer, proof(alice, api, bearer)) }, 401,
			[]string{`DPoP realm=`}},
		{"fail/required-refuses-bearer", func() result { return call(strict, "Bearer "+bearer) }, 401, []string{`DPoP realm=`}},
		{"ok/required", func() result { return call(strict, "DPoP "+bound, proof(alice, strict, bound)) }, 200, nil},
		{"fail/without-config-dpop-is-no-token", func() result { return call(plain, "DPoP "+bound, proof(alice, plain, bound)) }, 401,
			[]string{`Bearer realm=`}},
		{"fail/nonce-required", func() result { return call(nonced, "DPoP "+bound, proof(alice, nonced, bound)) }, 401,
			[]string{`DPoP realm=`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.got()
			if r.status != tc.status {
				t.Fatalf("status %d, want %d (%q %s)", r.status, tc.status, r.challenge, r.body)
			}
			if len(r.challenge) < len(tc.challenge) {
				t.Fatalf("challenges %q, want %q", r.challenge, tc.challenge)
			}
			for i, p := range tc.challenge {
				if !strings.HasPrefix(r.challenge[i], p) {
					t.Fatalf("challenges %q, want %q", r.challenge, tc.challenge)
				}
			}
			if tc.status == 200 && strings.HasPrefix(tc.name, "ok/dpop") && r.body != alice.JKT() {
				t.Fatalf("claims JKT %q, want %q", r.body, alice.JKT())
			}
		})
	}

	t.Run("codes", func(t *testing.T) {
		r := call(api, "DPoP "+bound, proof(thief, api, bound))
		if !strings.Contains(r.challenge[0], `error="invalid_dpop_proof"`) || !strings.Contains(r.challenge[0], `algs="ES256 EdDSA RS256 PS256"`) {
			t.Fatalf("thief: %q", r.challenge)
		}
		r = call(api, "Bearer "+bound)
		if !strings.Contains(r.challenge[0], `error="invalid_token"`) {
			t.Fatalf("bearer use: %q", r.challenge)
		}
		r = call(nonced, "DPoP "+bound, proof(alice, nonced, bound))
		if !strings.Contains(r.challenge[0], `error="use_dpop_nonce"`) || r.nonce == "" {
			t.Fatalf("nonce: %q nonce %q", r.challenge, r.nonce)
		}
		alice.Nonce = r.nonce
		defer func() { alice.Nonce = "" }()
		if r := call(nonced, "DPoP "+bound, proof(alice, nonced, bound)); r.status != 200 || r.nonce == "" {
			t.Fatalf("with nonce: %d %q", r.status, r.challenge)
		}
	})

	t.Run("replay", func(t *testing.T) {
		p := proof(alice, api, bound)
		if r := call(api, "DPoP "+bound, p); r.status != 200 {
			t.Fatalf("first: %d", r.status)
		}
		if r := call(api, "DPoP "+bound, p); r.status != 401 || !strings.Contains(r.challenge[0], "invalid_dpop_proof") {
			t.Fatalf("replay: %d %q", r.status, r.challenge)
		}
	})
}

func TestVerifyDPoPErrors(t *testing.T) {
	t.Parallel()
	env := newProvider(t)
	key := dpoptest.NewKey("ES256")
	key.Now = env.Clock.Now
	bound := boundServiceToken(t, env, key)
	v, _ := newVerifier(t, env, func(c *resource.Config) { c.DPoP = &resource.DPoP{} })
	const u = "https://api.example/orders"

	_, err := v.VerifyDPoP(context.Background(), bound, nil, "GET", u)
	var pe *resource.ProofError
	if !errors.As(err, &pe) || pe.Code != dpop.CodeInvalidProof || errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("no proof: %v", err)
	}
	if _, err := v.Verify(context.Background(), bound); !errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("Verify of a bound token: %v", err)
	}
	c, err := v.VerifyDPoP(context.Background(), bound, []string{key.Proof("GET", u, bound)}, "GET", u)
	if err != nil || c.JKT != key.JKT() {
		t.Fatalf("VerifyDPoP: %v", err)
	}
	if _, err := resource.New(resource.Config{Issuer: env.URL, Audience: apiAudience,
		DPoP: &resource.DPoP{Algorithms: []string{"HS256"}}}); err == nil {
		t.Fatal("HS256 accepted for proofs")
	}
}
