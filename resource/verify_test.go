package resource_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/castellan-auth/castellan/internal/mint"
	"github.com/castellan-auth/castellan/internal/server/servertest"
	"github.com/castellan-auth/castellan/resource"
)

// TestVerify runs real Castellan tokens, and tokens forged or bent in every
// way the package documentation lists, through Verify.
func TestVerify(t *testing.T) {
	t.Parallel()
	env := newProvider(t)
	svc := serviceToken(t, env, "api:read")
	user := env.CodeFlow(t, env.Agent("alice"), servertest.Authz{})
	ttl := time.Hour // access_token_ttl of the test provider
	esKID := kidOf(svc)

	set := publishedKeys(t, env)
	esPub := set.Key(esKID)
	if len(esPub) != 1 {
		t.Fatalf("kid %s: %d published keys, want 1", esKID, len(esPub))
	}
	esPubJSON, _ := esPub[0].MarshalJSON()
	claims := servertest.Claims(svc)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}

	b64 := base64.RawURLEncoding.EncodeToString
	jsonB64 := func(v any) string { b, _ := json.Marshal(v); return b64(b) }
	_, payload, _ := strings.Cut(svc, ".")
	payload, sig, _ := strings.Cut(payload, ".")

	bound, _, err := env.Server.Mint.NewAccess(mint.AccessParams{
		ClientID: "spa", Subject: "someone", Scopes: []string{"openid"},
		IssuedAt: env.Clock.Now(), Expiry: env.Clock.Now().Add(time.Hour), JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
		Audience: []string{apiAudience},
	})
	if err != nil {
		t.Fatal(err)
	}
	without := func(name string) func(map[string]any) { return func(c map[string]any) { delete(c, name) } }
	set1 := func(name string, v any) func(map[string]any) { return func(c map[string]any) { c[name] = v } }
	now := env.Clock.Now().Unix()

	tests := []struct {
		name   string
		token  string
		edit   func(*resource.Config)
		later  time.Duration // Now is this far ahead of the provider's clock
		reason string        // substring of the error; "" for success
	}{
		{name: "ok/client-credentials", token: svc},
		{name: "ok/code-flow", token: user.AccessToken},
		{name: "ok/rs256-key", token: resign(t, env, svc, "RS256", "at+jwt", nil)},
		{name: "ok/typ-media-type", token: resign(t, env, svc, "ES256", "application/at+jwt", nil)},
		{name: "ok/typ-upper-case", token: resign(t, env, svc, "ES256", "AT+JWT", nil)},
		{name: "ok/aud-array", token: resign(t, env, svc, "ES256", "at+jwt", set1("aud", []string{"https://other.example", apiAudience}))},
		{name: "ok/within-leeway", token: svc, later: ttl + 20*time.Second},
		{name: "ok/custom-audience", token: resign(t, env, svc, "ES256", "at+jwt", set1("aud", "https://orders.example")),
			edit: func(c *resource.Config) { c.Audience = "https://orders.example" }},
		{name: "ok/issuer-audience-allowed", token: resign(t, env, svc, "ES256", "at+jwt", set1("aud", env.URL)),
			edit: func(c *resource.Config) { c.Audience, c.AllowIssuerAudience = env.URL, true }},

		{name: "fail/expired", token: svc, later: ttl + resource.DefaultLeeway, reason: "expired"},
		{name: "fail/expired-no-leeway", token: svc, later: ttl, edit: func(c *resource.Config) { c.Leeway = -1 }, reason: "expired"},
		{name: "fail/wrong-audience", token: svc, edit: func(c *resource.Config) { c.Audience = "https://orders.example" }, reason: "not meant for this API"},
		{name: "fail/issuer-audience-token", token: resign(t, env, svc, "ES256", "at+jwt", set1("aud", env.URL)), reason: "not meant for this API"},
		{name: "fail/wrong-issuer", token: resign(t, env, svc, "ES256", "at+jwt", set1("iss", "https://evil.example")), reason: "another issuer"},
		{name: "fail/issuer-with-slash", token: resign(t, env, svc, "ES256", "at+jwt", set1("iss", env.URL+"/")), reason: "another issuer"},
		{name: "fail/id-token", token: user.IDToken, reason: "not an access token"},
		{name: "fail/id-token-aud-matching", token: resign(t, env, user.IDToken, "ES256", "JWT", set1("aud", apiAudience)), reason: "not an access token"},
		{name: "fail/logout-token-typ", token: resign(t, env, svc, "ES256", "logout+jwt", nil), reason: "not an access token"},
		{name: "fail/typ-jwt", token: resign(t, env, svc, "ES256", "JWT", nil), reason: "not an access token"},
		{name: "fail/typ-empty", token: resign(t, env, svc, "ES256", "", nil), reason: "not an access token"},
		{name: "fail/dpop-bound-as-bearer", token: bound, reason: "bound to a key"},
		{name: "fail/missing-sub", token: resign(t, env, svc, "ES256", "at+jwt", without("sub")), reason: "required claim"},
		{name: "fail/missing-client_id", token: resign(t, env, svc, "ES256", "at+jwt", without("client_id")), reason: "required claim"},
		{name: "fail/missing-jti", token: resign(t, env, svc, "ES256", "at+jwt", without("jti")), reason: "required claim"},
		{name: "fail/missing-exp", token: resign(t, env, svc, "ES256", "at+jwt", without("exp")), reason: "required claim"},
		{name: "fail/missing-iat", token: resign(t, env, svc, "ES256", "at+jwt", without("iat")), reason: "required claim"},
		{name: "fail/sub-not-a-string", token: resign(t, env, svc, "ES256", "at+jwt", set1("sub", 42)), reason: "malformed claims"},
		{name: "fail/nbf-future", token: resign(t, env, svc, "ES256", "at+jwt", set1("nbf", now+120)), reason: "not valid yet"},
		{name: "fail/iat-future", token: resign(t, env, svc, "ES256", "at+jwt", set1("iat", now+120)), reason: "issued in the future"},
		{name: "fail/rs256-not-allowed", token: resign(t, env, svc, "RS256", "at+jwt", nil),
			edit: func(c *resource.Config) { c.Algorithms = []string{"ES256"} }, reason: "accepted algorithm"},
		{name: "fail/foreign-key-same-kid", token: signWith(t, jose.ES256, newECKey(t),
			map[jose.HeaderKey]any{"kid": esKID, "typ": "at+jwt"}, claims), reason: "signature"},
		{name: "fail/foreign-key-embedded-jwk", token: func() string {
			k := newECKey(t)
			return signWith(t, jose.ES256, k, map[jose.HeaderKey]any{"kid": esKID, "typ": "at+jwt",
				"jwk": jose.JSONWebKey{Key: &k.PublicKey}}, claims)
		}(), reason: "signature"},
		{name: "fail/alg-differs-from-key", token: signWith(t, jose.RS256, rsaKey,
			map[jose.HeaderKey]any{"kid": esKID, "typ": "at+jwt"}, claims), reason: "does not match its key"},
		{name: "fail/alg-none", token: jsonB64(map[string]string{"alg": "none", "typ": "at+jwt", "kid": esKID}) + "." + payload + ".",
			reason: "accepted algorithm"},
		{name: "fail/hs256-keyed-with-public-jwk", token: signWith(t, jose.HS256, esPubJSON,
			map[jose.HeaderKey]any{"kid": esKID, "typ": "at+jwt"}, claims), reason: "accepted algorithm"},
		{name: "fail/tampered-payload", token: strings.SplitN(svc, ".", 2)[0] + "." +
			jsonB64(func() map[string]any { c := servertest.Claims(svc); c["scope"] = "api:read api:write"; return c }()) + "." + sig,
			reason: "signature"},
		{name: "fail/json-serialization", token: `{"payload":"` + payload + `"}`, reason: "not a JWT"},
		{name: "fail/whitespace", token: svc[:10] + " " + svc[10:], reason: "not a JWT"},
		{name: "fail/garbage", token: "not-a-token", reason: "not a JWT"},
		{name: "fail/empty", token: "", reason: "not a JWT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, _ := newVerifier(t, env, func(c *resource.Config) {
				c.Now = func() time.Time { return env.Clock.Now().Add(tc.later) }
				if tc.edit != nil {
					tc.edit(c)
				}
			})
			c, err := v.Verify(context.Background(), tc.token)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("got %v, want the token accepted", err)
				}
				if c.Issuer != env.URL || c.Subject == "" || c.ClientID == "" || c.JTI == "" || c.Expiry.IsZero() || c.Raw["jti"] != c.JTI {
					t.Fatalf("claims incomplete: %+v", c)
				}
				return
			}
			if !errors.Is(err, resource.ErrInvalidToken) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("got %v, want ErrInvalidToken saying %q", err, tc.reason)
			}
			if c != nil {
				t.Fatalf("got claims %+v with an error", c)
			}
		})
	}
}

// TestVerifyClaims checks what the claims of real tokens say.
func TestVerifyClaims(t *testing.T) {
	t.Parallel()
	env := newProvider(t)
	v, _ := newVerifier(t, env, nil)
	ctx := context.Background()

	svc := serviceToken(t, env, "api:read api:write")
	c, err := v.Verify(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "svc" || c.ClientID != "svc" || c.SID != "" || !c.HasScope("api:write") || c.HasScope("api") || len(c.Scopes) != 2 {
		t.Errorf("client credentials claims: %+v", c)
	}
	if got, want := c.Expiry, env.Clock.Now().Add(time.Hour); !got.Equal(want) {
		t.Errorf("expiry: got %s, want %s", got, want)
	}
	if len(c.Audience) != 1 || c.Audience[0] != apiAudience {
		t.Errorf("audience: got %v, want [%s]", c.Audience, apiAudience)
	}

	tok := env.CodeFlow(t, env.Agent("alice"), servertest.Authz{Scope: "openid profile"})
	c, err = v.Verify(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	id := servertest.Claims(tok.IDToken)
	if c.Subject != id["sub"] || c.SID != id["sid"] || c.SID == "" || c.ClientID != "spa" || c.AuthTime.IsZero() {
		t.Errorf("code flow claims: %+v, ID token %v", c, id)
	}
	if strings.Join(c.Scopes, " ") != "openid profile" {
		t.Errorf("scopes: got %q, want %q", c.Scopes, "openid profile")
	}
	var nilClaims *resource.Claims
	if nilClaims.HasScope("openid") {
		t.Error("nil claims have a scope")
	}
}

// TestVerifyExpired moves the provider's clock: a token past exp and the
// leeway is a *TokenExpiredError.
func TestVerifyExpired(t *testing.T) {
	t.Parallel()
	env := newProvider(t)
	v, _ := newVerifier(t, env, nil)
	tok := serviceToken(t, env, "")
	exp := env.Clock.Now().Add(time.Hour)
	env.Clock.Advance(time.Hour + resource.DefaultLeeway)
	_, err := v.Verify(context.Background(), tok)
	var expired *resource.TokenExpiredError
	if !errors.As(err, &expired) || !errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("got %v, want a *TokenExpiredError matching ErrInvalidToken", err)
	}
	if !expired.Expiry.Equal(exp) {
		t.Errorf("Expiry: got %s, want %s", expired.Expiry, exp)
	}
}

// TestVerifyAlgorithms runs a provider that signs access tokens with EdDSA.
func TestVerifyAlgorithms(t *testing.T) {
	t.Parallel()
	cfg := withAPIAudience(servertest.WithClients(servertest.Config()))
	cfg.Signing.Algorithms = []string{"EdDSA", "ES256"}
	env := servertest.New(t, servertest.Options{Config: cfg})
	tok := serviceToken(t, env, "")
	if alg := servertest.Header(tok)["alg"]; alg != "EdDSA" {
		t.Fatalf("alg: got %v, want EdDSA", alg)
	}
	v, _ := newVerifier(t, env, nil)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("EdDSA token: %v", err)
	}
	v, _ = newVerifier(t, env, func(c *resource.Config) { c.Algorithms = []string{"ES256", "RS256"} })
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, resource.ErrInvalidToken) {
		t.Fatalf("EdDSA token with EdDSA not allowed: got %v, want ErrInvalidToken", err)
	}
}

// TestNew checks that configurations that would be unsafe are refused.
func TestNew(t *testing.T) {
	t.Parallel()
	ok := resource.Config{Issuer: "https://login.example", Audience: "https://api.example"}
	tests := []struct {
		name string
		edit func(*resource.Config)
		want string // substring of the error; "" for success
	}{
		{name: "ok/minimal", edit: func(*resource.Config) {}},
		{name: "ok/algorithms", edit: func(c *resource.Config) { c.Algorithms = []string{"ES384", "PS512"} }},
		{name: "ok/revocation", edit: func(c *resource.Config) {
			c.RevocationCheck = &resource.RevocationCheck{ClientID: "api", ClientSecret: "s", AuthMethod: resource.AuthClientSecretPost}
		}},
		{name: "fail/no-issuer", edit: func(c *resource.Config) { c.Issuer = "" }, want: "Issuer"},
		{name: "fail/relative-issuer", edit: func(c *resource.Config) { c.Issuer = "login.example" }, want: "Issuer"},
		{name: "fail/no-audience", edit: func(c *resource.Config) { c.Audience = "" }, want: "Audience is required"},
		{name: "fail/blank-audience", edit: func(c *resource.Config) { c.Audience = " " }, want: "Audience is required"},
		{name: "fail/audience-is-issuer", edit: func(c *resource.Config) { c.Audience = c.Issuer }, want: "Audience is the issuer"},
		{name: "fail/audience-is-issuer-with-slash", edit: func(c *resource.Config) { c.Audience = c.Issuer + "/" }, want: "Audience is the issuer"},
		{name: "ok/audience-is-issuer-allowed", edit: func(c *resource.Config) { c.Audience, c.AllowIssuerAudience = c.Issuer, true }},
		{name: "fail/alg-none", edit: func(c *resource.Config) { c.Algorithms = []string{"none"} }, want: `"none"`},
		{name: "fail/alg-hs256", edit: func(c *resource.Config) { c.Algorithms = []string{"ES256", "HS256"} }, want: `"HS256"`},
		{name: "fail/leeway", edit: func(c *resource.Config) { c.Leeway = time.Hour }, want: "Leeway"},
		{name: "fail/realm", edit: func(c *resource.Config) { c.Realm = "a\r\nb" }, want: "Realm"},
		{name: "fail/revocation-no-secret", edit: func(c *resource.Config) {
			c.RevocationCheck = &resource.RevocationCheck{ClientID: "api"}
		}, want: "ClientSecret"},
		{name: "fail/revocation-method", edit: func(c *resource.Config) {
			c.RevocationCheck = &resource.RevocationCheck{ClientID: "api", ClientSecret: "s", AuthMethod: "private_key_jwt"}
		}, want: "AuthMethod"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			v, err := resource.New(cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error about %s", err, tc.want)
			case tc.want != "" && v != nil:
				t.Fatal("got a verifier with an error")
			}
		})
	}
}
