// Package dpoptest is a small DPoP client (RFC 9449 §4) for tests: it holds
// a key pair and signs proofs with go-jose, and can also make the malformed
// proofs that negative tests need.
package dpoptest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/castellan-auth/castellan/dpop"
)

// Key is a client's DPoP key.
type Key struct {
	Alg     jose.SignatureAlgorithm
	Private crypto.Signer
	// Now is the clock for iat (default time.Now).
	Now func() time.Time
	// Nonce, when set, goes into every proof (a client remembers the last
	// DPoP-Nonce the server sent).
	Nonce string
}

// NewKey makes a key for alg: ES256 (default), EdDSA, RS256 or PS256.
func NewKey(alg string) *Key {
	var k crypto.Signer
	var err error
	switch alg {
	case "", "ES256":
		alg = "ES256"
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	case "RS256", "PS256":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		panic("dpoptest: unsupported alg " + alg)
	}
	if err != nil {
		panic(err)
	}
	return &Key{Alg: jose.SignatureAlgorithm(alg), Private: k}
}

// Public is the public JWK.
func (k *Key) Public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Private.Public(), Algorithm: string(k.Alg)}
}

// JKT is the key's thumbprint (the dpop_jkt parameter, cnf.jkt).
func (k *Key) JKT() string {
	pub := k.Public()
	t, err := dpop.Thumbprint(&pub)
	if err != nil {
		panic(err)
	}
	return t
}

func (k *Key) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

// Claims of a proof; Proof fills what is empty.
type Claims struct {
	JTI   string `json:"jti,omitempty"`
	HTM   string `json:"htm,omitempty"`
	HTU   string `json:"htu,omitempty"`
	IAT   int64  `json:"iat,omitempty"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
	// Extra claims, merged in.
	Extra map[string]any `json:"-"`
}

// Proof is a valid proof for method and target URL, naming accessToken (ath)
// when it is not empty.
func (k *Key) Proof(method, target, accessToken string) string {
	c := Claims{HTM: method, HTU: target, Nonce: k.Nonce}
	if accessToken != "" {
		c.ATH = dpop.AccessTokenHash(accessToken)
	}
	return k.Sign(c, nil)
}

// Sign signs claims (jti and iat filled in when empty) with extra protected
// headers. typ defaults to dpop+jwt and jwk to the public key; a header given
// as nil in headers is left out, and a "jwk" given replaces the public key.
func (k *Key) Sign(c Claims, headers map[string]any) string {
	return k.SignWith(k.Alg, k.Private, c, headers)
}

// SignWith is Sign with another algorithm and signing key (e.g. HS256 with a
// byte slice, for an attack), still with k's public jwk unless headers say
// otherwise.
func (k *Key) SignWith(alg jose.SignatureAlgorithm, key any, c Claims, headers map[string]any) string {
	if c.JTI == "" {
		c.JTI = randomID()
	}
	if c.IAT == 0 {
		c.IAT = k.now().Unix()
	}
	h := map[jose.HeaderKey]any{jose.HeaderType: "dpop+jwt", "jwk": k.Public()}
	for name, v := range headers {
		if v == nil {
			delete(h, jose.HeaderKey(name))
			continue
		}
		h[jose.HeaderKey(name)] = v
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, &jose.SignerOptions{ExtraHeaders: h})
	if err != nil {
		panic(err)
	}
	jws, err := s.Sign(marshal(c))
	if err != nil {
		panic(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		panic(err)
	}
	return out
}

// Unsigned is a proof with alg "none" carrying k's public jwk.
func (k *Key) Unsigned(c Claims) string {
	if c.JTI == "" {
		c.JTI = randomID()
	}
	if c.IAT == 0 {
		c.IAT = k.now().Unix()
	}
	h := map[string]any{"typ": "dpop+jwt", "alg": "none", "jwk": k.Public()}
	return b64(marshalAny(h)) + "." + b64(marshal(c)) + "."
}

// Do sends req with a proof for it (and its access token, if any, in an
// Authorization: DPoP header), and when the server answers use_dpop_nonce
// with a DPoP-Nonce header, remembers the nonce and retries once (RFC 9449
// §8). newReq must make a fresh request each time (bodies are read once).
func (k *Key) Do(client *http.Client, newReq func() *http.Request, accessToken string) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		req := newReq()
		target := *req.URL
		target.RawQuery, target.Fragment = "", ""
		req.Header.Set("DPoP", k.Proof(req.Method, target.String(), accessToken))
		if accessToken != "" {
			req.Header.Set("Authorization", "DPoP "+accessToken)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		if n := resp.Header.Get("DPoP-Nonce"); n != "" {
			k.Nonce = n
			if attempt == 0 && wantsNonce(resp) {
				resp.Body.Close()
				continue
			}
		}
		return resp, nil
	}
}

// wantsNonce reports whether resp is a use_dpop_nonce refusal: in the
// WWW-Authenticate challenge of a resource, or in the JSON error of the token
// endpoint (the body is read and put back).
func wantsNonce(resp *http.Response) bool {
	if strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) {
		return true
	}
	if resp.StatusCode != http.StatusBadRequest {
		return false
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	var e struct {
		Error string `json:"error"`
	}
	return json.Unmarshal(b, &e) == nil && e.Error == dpop.CodeUseNonce
}

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return b64(b)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func marshal(c Claims) []byte {
	m := map[string]any{}
	json.Unmarshal(marshalAny(c), &m)
	for k, v := range c.Extra {
		m[k] = v
	}
	return marshalAny(m)
}

func marshalAny(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
