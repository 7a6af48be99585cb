package bff

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/castellan-auth/castellan/internal/clock"
)

// assertionLifetime is how long a client assertion is valid: just long enough
// to reach the provider (RFC 7523 §3: short-lived, single use by its jti).
const assertionLifetime = time.Minute

// assertionType is the client_assertion_type of RFC 7523 §2.2.
const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// clientKey is the gateway's private_key_jwt signing key.
type clientKey struct {
	signer jose.Signer
	public jose.JSONWebKey
}

// loadOrCreateClientKey reads the PEM private key at path (PKCS#8, or SEC 1 /
// PKCS#1), creating a P-256 key (mode 0600) when the file does not exist.
func loadOrCreateClientKey(path string) (*clientKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createClientKey(path); err != nil {
			return nil, fmt.Errorf("private_key_file %s: %w", path, err)
		}
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("private_key_file %s: %w", path, err)
	}
	if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("private_key_file %s: mode %04o lets other users read it; run chmod 600 %s", path, info.Mode().Perm(), path)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("private_key_file %s: no PEM block", path)
	}
	key, err := parsePrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("private_key_file %s: %w", path, err)
	}
	return newClientKey(key)
}

func parsePrivateKey(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("not an EC, RSA or Ed25519 private key")
}

func createClientKey(path string) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := pem.Encode(f, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func newClientKey(key crypto.Signer) (*clientKey, error) {
	var alg jose.SignatureAlgorithm
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("EC keys must be P-256 (ES256)")
		}
		alg = jose.ES256
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, errors.New("RSA keys must have at least 2048 bits")
		}
		alg = jose.PS256
	case ed25519.PrivateKey:
		alg = jose.EdDSA
	default:
		return nil, errors.New("unsupported key type")
	}
	public := jose.JSONWebKey{Key: key.Public(), Algorithm: string(alg), Use: "sig"}
	thumb, err := public.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	public.KeyID = fmt.Sprintf("%x", thumb[:8])
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: public.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	return &clientKey{signer: signer, public: public}, nil
}

// jwks is the public key set the provider's client registration points at
// (jwks_uri: {public_url}/bff/jwks), or that an operator copies into jwks.
func (k *clientKey) jwks() []byte {
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.public}})
	return b
}

// assertion signs a fresh client assertion for clientID. Its audience is the
// issuer as a single string: what Castellan accepts (the 2025 audience
// injection fix, RFC 7523bis) and what FAPI 2.0 requires.
func (k *clientKey) assertion(clientID, issuer string, now time.Time) (string, error) {
	jti := make([]byte, 16)
	rand.Read(jti)
	return jwt.Signed(k.signer).Claims(map[string]any{
		"iss": clientID, "sub": clientID, "aud": issuer,
		"jti": fmt.Sprintf("%x", jti), "iat": now.Unix(), "exp": now.Add(assertionLifetime).Unix(),
	}).Serialize()
}

// assertionTransport authenticates the gateway at the provider's token and
// revocation endpoints with private_key_jwt (RFC 7523 §2.2): it adds a fresh
// client assertion to those requests' forms. It sits under x/oauth2 (which
// sends client_id in the form, AuthStyleInParams, and no secret) and under
// the revocation call, so every request that authenticates the client gets
// one, and no other request is touched.
type assertionTransport struct {
	base      http.RoundTripper
	key       *clientKey
	clientID  string
	issuer    string
	clock     clock.Clock
	endpoints atomic.Pointer[[]string] // token and revocation URLs, once discovered
}

func (t *assertionTransport) authenticates(r *http.Request) bool {
	eps := t.endpoints.Load()
	if eps == nil || r.Method != http.MethodPost {
		return false
	}
	u := *r.URL
	u.RawQuery, u.Fragment = "", ""
	for _, ep := range *eps {
		if u.String() == ep {
			return true
		}
	}
	return false
}

func (t *assertionTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !t.authenticates(r) {
		return t.base.RoundTrip(r)
	}
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("bff: token request form: %w", err)
	}
	a, err := t.key.assertion(t.clientID, t.issuer, t.clock.Now())
	if err != nil {
		return nil, fmt.Errorf("bff: sign client assertion: %w", err)
	}
	form.Del("client_secret")
	form.Set("client_id", t.clientID)
	form.Set("client_assertion_type", assertionType)
	form.Set("client_assertion", a)
	encoded := form.Encode()
	r2 := r.Clone(r.Context())
	r2.Header.Del("Authorization")
	r2.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r2.Body = io.NopCloser(strings.NewReader(encoded))
	r2.ContentLength = int64(len(encoded))
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader([]byte(encoded))), nil }
	return t.base.RoundTrip(r2)
}
