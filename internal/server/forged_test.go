package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/castellan-auth/castellan/internal/jwstest"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// TestForgedJWSRefusedEverywhere is issue 8 "Algorithms" at every endpoint
// that accepts a JWS Castellan signed: access tokens at userinfo and
// introspection, ID tokens as id_token_hint at the authorization and
// end-session endpoints. Each forgery carries the real claims of a real
// token, so only the algorithm and key checks can refuse it (RFC 8725 §2.1,
// §3.1: alg "none", HMAC keyed with the public key, a key not ours).
// Unknown "crit" headers need the real private key and are covered at the
// one place all of these verify, signing.Keyset.Verify.
func TestForgedJWSRefusedEverywhere(t *testing.T) {
	env := servertest.New(t, servertest.Options{Config: servertest.WithClients(servertest.Config())})
	alice := env.Agent("alice")
	tk := env.CodeFlow(t, alice, servertest.Authz{})

	var set jose.JSONWebKeySet
	getJSON(t, env.URL+"/jwks", &set)
	forgeries := func(real string) map[string]string {
		h := servertest.Header(real)
		kid, _ := h["kid"].(string)
		typ, _ := h["typ"].(string)
		payload := payloadOf(t, real)
		pub := set.Key(kid)
		if len(pub) != 1 {
			t.Fatalf("kid %q not in the JWKS", kid)
		}
		jwkJSON, _ := json.Marshal(pub[0])
		der, _ := x509.MarshalPKIXPublicKey(pub[0].Key)
		pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		foreign, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		enc := base64.RawURLEncoding.EncodeToString
		hdr := func(alg string) string {
			b, _ := json.Marshal(map[string]string{"alg": alg, "typ": typ, "kid": kid})
			return enc(b)
		}
		return map[string]string{
			"alg-none":                    hdr("none") + "." + enc(payload) + ".",
			"alg-none-with-old-signature": hdr("none") + "." + enc(payload) + "." + strings.Split(real, ".")[2],
			"HS256-keyed-with-public-jwk": sign(t, jose.HS256, jwkJSON, kid, typ, payload, false),
			"HS256-keyed-with-public-pem": sign(t, jose.HS256, pemKey, kid, typ, payload, false),
			"HS512-keyed-with-public-pem": sign(t, jose.HS512, pemKey, kid, typ, payload, false),
			"foreign-key-under-our-kid":   sign(t, jose.ES256, foreign, kid, typ, payload, false),
			"foreign-key-embedded-as-jwk": sign(t, jose.ES256, foreign, "", typ, payload, true),
			"header-alg-swapped":          hdr("ES384") + "." + strings.SplitN(real, ".", 2)[1],
		}
	}

	for name, forged := range forgeries(tk.AccessToken) {
		t.Run("adv48/userinfo/"+name, func(t *testing.T) {
			r := env.Userinfo(t, http.MethodGet, forged)
			if r.Status != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Fatalf("got %d %q, want 401 invalid_token", r.Status, r.Header.Get("WWW-Authenticate"))
			}
		})
		t.Run("adv53/introspect/"+name, func(t *testing.T) {
			r := env.Introspect(t, servertest.SvcClient, forged)
			if r.Status != 200 || strings.TrimSpace(r.Body) != `{"active":false}` {
				t.Fatalf("got %d %s, want exactly {\"active\":false}", r.Status, r.Body)
			}
		})
	}
	for name, forged := range forgeries(tk.IDToken) {
		t.Run("adv17/authorize-id_token_hint/"+name, func(t *testing.T) {
			u := env.AuthorizeURL(servertest.Authz{Extra: url.Values{"prompt": {"none"}, "id_token_hint": {forged}, "state": {"st"}}})
			s, err := alice.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			p := servertest.Params(s.Location)
			if s.Status != 303 || !strings.HasPrefix(s.Location, servertest.SPARedirect+"?") ||
				p.Get("error") != "invalid_request" || p.Get("code") != "" || p.Get("state") != "st" || p.Get("iss") != env.URL {
				t.Fatalf("got %d %q, want a redirect with invalid_request, state and iss", s.Status, s.Location)
			}
		})
		t.Run("adv58/end_session-id_token_hint/"+name, func(t *testing.T) {
			s, err := alice.Get(env.URL + "/end_session?" + url.Values{"id_token_hint": {forged},
				"post_logout_redirect_uri": {"http://127.0.0.1:9100/"}, "state": {"st"}}.Encode())
			if err != nil {
				t.Fatal(err)
			}
			if s.Status != 400 || s.Location != "" {
				t.Fatalf("got %d Location %q, want 400 and no redirect", s.Status, s.Location)
			}
		})
	}
	// The real tokens still work: the forgeries were refused for what they are.
	if r := env.Userinfo(t, http.MethodGet, tk.AccessToken); r.Status != 200 {
		t.Fatalf("real access token at userinfo: %d", r.Status)
	}
}

func payloadOf(t *testing.T, jwt string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid, typ string, payload []byte, embed bool) string {
	t.Helper()
	opts := (&jose.SignerOptions{EmbedJWK: embed}).WithType(jose.ContentType(typ))
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	return jwstest.Sign(t, alg, key, opts, payload)
}
