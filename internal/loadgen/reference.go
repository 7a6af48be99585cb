package loadgen

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Reference is the floor client_credentials is measured against: a bare
// net/http token endpoint that checks one client's Basic header and signs a
// JWT access token with go-jose, and does nothing else (no storage, no
// metrics, no logging, no rate limit). Serving it beside Castellan on the same
// machine and driving both with the same load, in the same hour, turns "close
// to the floor" into a ratio measured in one run instead of a figure quoted
// from another day (castellan-bench --serve-reference).
//
// It is not an authorization server: it ignores the request body, issues a
// token to whoever presents the client's secret, and keeps no key beyond its
// life. It exists only to be measured.
type Reference struct {
	issuer    string
	client    Client
	signer    jose.Signer
	discovery []byte
}

// NewReference makes the reference endpoint for issuer (its own URL, e.g.
// http://127.0.0.1:19401), issuing tokens to cl with a fresh key of alg.
func NewReference(issuer string, cl Client, alg string) (*Reference, error) {
	if cl.ID == "" || cl.Secret == "" {
		return nil, fmt.Errorf("reference: the client needs an id and a secret")
	}
	key, err := signingKey(alg)
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg),
		Key: jose.JSONWebKey{Key: key, KeyID: "reference", Algorithm: alg}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return nil, err
	}
	issuer = strings.TrimSuffix(issuer, "/")
	discovery, err := json.Marshal(map[string]string{"issuer": issuer, "token_endpoint": issuer + "/token"})
	if err != nil {
		return nil, err
	}
	return &Reference{issuer: issuer, client: cl, signer: signer, discovery: discovery}, nil
}

// referenceClaims are the claims of an RFC 9068 access token for a client
// acting for itself, as Castellan issues for client_credentials.
type referenceClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
	IssuedAt int64  `json:"iat"`
	Expiry   int64  `json:"exp"`
	ID       string `json:"jti"`
}

func (ref *Reference) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/.well-known/openid-configuration":
		w.Header().Set("Content-Type", "application/json")
		w.Write(ref.discovery)
	case r.Method == http.MethodPost && r.URL.Path == "/token":
		ref.token(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (ref *Reference) token(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	id, secret, ok := r.BasicAuth()
	if !ok || id != ref.client.ID || subtle.ConstantTimeCompare([]byte(secret), []byte(ref.client.Secret)) != 1 {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":"invalid_client"}`))
		return
	}
	var jti [16]byte
	rand.Read(jti[:])
	now := time.Now()
	payload, err := json.Marshal(referenceClaims{Issuer: ref.issuer, Subject: id, Audience: ref.issuer, ClientID: id,
		Scope: ref.client.Scope, IssuedAt: now.Unix(), Expiry: now.Add(time.Hour).Unix(),
		ID: base64.RawURLEncoding.EncodeToString(jti[:])})
	if err != nil {
		http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
		return
	}
	jws, err := ref.signer.Sign(payload)
	if err != nil {
		http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
		return
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		http.Error(w, `{"error":"server_error"}`, http.StatusInternalServerError)
		return
	}
	json.NewEncoder(w).Encode(struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
		Scope       string `json:"scope,omitempty"`
	}{token, "Bearer", 3600, ref.client.Scope})
}
