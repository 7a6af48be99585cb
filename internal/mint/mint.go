// Package mint makes and reads the JWTs Castellan signs: access tokens (RFC
// 9068, typ "at+jwt"), ID tokens (OpenID Connect Core §2) and, later, logout
// tokens. Each token type has its own "typ" header, so one can never be
// accepted as another (an ID token is not an access token).
package mint

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"slices"
	"time"

	"github.com/castellan-auth/castellan/dpop"
	"github.com/castellan-auth/castellan/internal/recent"
	"github.com/castellan-auth/castellan/internal/signing"
)

// Token types in the JOSE "typ" header.
const (
	TypeAccessToken = "at+jwt"     // RFC 9068 §2.1
	TypeIDToken     = "JWT"        // OIDC Core leaves it open; JWT is common
	TypeLogoutToken = "logout+jwt" // OIDC Back-Channel Logout §2.4
)

// Audience is a JWT "aud" that is written as a string when it has one member.
type Audience []string

// MarshalJSON writes one audience as a string (RFC 7519 §4.1.3 allows both).
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON reads a string or an array; null is no audience (not the
// empty string as one).
func (a *Audience) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		*a = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = Audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("aud: want a string or an array of strings")
	}
	*a = l
	return nil
}

// Contains reports whether the audience includes s.
func (a Audience) Contains(s string) bool {
	for _, x := range a {
		if x == s {
			return true
		}
	}
	return false
}

// AccessClaims are the claims of an access token (RFC 9068 §2.2).
type AccessClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  Audience `json:"aud"`
	ClientID  string   `json:"client_id"`
	Scope     string   `json:"scope,omitempty"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf,omitempty"`
	Expiry    int64    `json:"exp"`
	JTI       string   `json:"jti"`
	AuthTime  int64    `json:"auth_time,omitempty"`
	SID       string   `json:"sid,omitempty"`
	AMR       []string `json:"amr,omitempty"`
	// Grant names the grant the token was issued from, so that revoking the
	// grant (sign-out, refresh reuse, code reuse, revocation) makes this token
	// inactive at introspection and userinfo. Empty for client credentials.
	Grant string `json:"grant,omitempty"`
	// Confirmation binds the token to a DPoP key (RFC 9449 §6).
	Confirmation *Confirmation `json:"cnf,omitempty"`
}

// Confirmation is the "cnf" claim.
type Confirmation struct {
	JKT string `json:"jkt,omitempty"`
}

// IDClaims are the claims of an ID token (OIDC Core §2, §5.1).
type IDClaims struct {
	Issuer          string   `json:"iss"`
	Subject         string   `json:"sub"`
	Audience        Audience `json:"aud"`
	Expiry          int64    `json:"exp"`
	IssuedAt        int64    `json:"iat"`
	AuthTime        int64    `json:"auth_time,omitempty"`
	Nonce           string   `json:"nonce,omitempty"`
	ACR             string   `json:"acr,omitempty"`
	AMR             []string `json:"amr,omitempty"`
	AuthorizedParty string   `json:"azp,omitempty"`
	SID             string   `json:"sid,omitempty"`
	AccessTokenHash string   `json:"at_hash,omitempty"`
	CodeHash        string   `json:"c_hash,omitempty"`
	UserClaims
}

// UserClaims are the standard claims released by the profile and email scopes
// (OIDC Core §5.4).
type UserClaims struct {
	Name              string `json:"name,omitempty"`
	GivenName         string `json:"given_name,omitempty"`
	FamilyName        string `json:"family_name,omitempty"`
	PreferredUsername string `json:"preferred_username,omitempty"`
	UpdatedAt         int64  `json:"updated_at,omitempty"`
	Email             string `json:"email,omitempty"`
	EmailVerified     *bool  `json:"email_verified,omitempty"`
}

// Minter signs tokens with the keyset.
type Minter struct {
	keys     *signing.Keyset
	issuer   string
	audience Audience
	// accessClaims remembers the claims decoded from verified access-token
	// payloads, by the SHA-256 of the payload: a resource server introspects
	// or calls userinfo with the same token again and again, and decoding its
	// JSON was a tenth of such a call once the signature check was cached.
	// It memoizes a pure function of bytes that already verified, so it
	// decides nothing: expiry, issuer and revocation are checked on every call.
	accessClaims *recent.Map[[sha256.Size]byte, AccessClaims]
}

// accessClaimsMemoSize is one generation of Minter.accessClaims, the same as
// the keyset's verification cache.
const accessClaimsMemoSize = 4096

// New returns a minter over keys for issuer. audience is the "aud" of the
// access tokens of clients without an audience of their own (RFC 9068 §3):
// tokens.audience, or the issuer, which names Castellan itself.
//
// The audience says what a token is for. A client's own audience names its
// APIs; the issuer as audience means "for Castellan". Castellan's own
// endpoints that serve the person (userinfo, the session endpoints) take a
// token whose audience holds the issuer or that was issued with openid: an
// OpenID Connect client's access token must work at userinfo whatever APIs
// it names (OIDC Core §5.3), and userinfo asks for openid in any case.
// Introspection and revocation answer for every token Castellan issued.
func New(keys *signing.Keyset, issuer string, audience []string) *Minter {
	return &Minter{keys: keys, issuer: issuer, audience: audience,
		accessClaims: recent.New[[sha256.Size]byte, AccessClaims](accessClaimsMemoSize)}
}

// Issuer is the "iss" of every token.
func (m *Minter) Issuer() string { return m.issuer }

// Audience is the "aud" of the access tokens of clients without their own.
func (m *Minter) Audience() []string { return m.audience }

// AccessAlgorithm is the algorithm access tokens are signed with.
func (m *Minter) AccessAlgorithm() string { return m.keys.Algorithms()[0] }

// Access signs an access token.
func (m *Minter) Access(c AccessClaims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	return m.keys.Sign(m.AccessAlgorithm(), TypeAccessToken, payload)
}

// ID signs an ID token with alg.
func (m *Minter) ID(alg string, c IDClaims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	return m.keys.Sign(alg, TypeIDToken, payload)
}

// Sign signs arbitrary claims with alg and typ (logout tokens and the like).
func (m *Minter) Sign(alg, typ string, claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return m.keys.Sign(alg, typ, payload)
}

// ErrInvalid means a token is not one Castellan issued, not of the expected
// type, or does not parse. ErrExpired means it was valid but its time passed.
var (
	ErrInvalid = errors.New("invalid token")
	ErrExpired = errors.New("token expired")
)

// ParseAccess verifies an access token Castellan signed: signature by a
// published key with an allowed algorithm, typ at+jwt, issuer and expiry.
// Revocation is the caller's to check (by Grant and JTI).
func (m *Minter) ParseAccess(token string, now time.Time) (AccessClaims, error) {
	payload, err := m.verify(token, TypeAccessToken)
	if err != nil {
		return AccessClaims{}, err
	}
	c, err := m.decodeAccess(payload)
	if err != nil {
		return c, err
	}
	if c.Issuer != m.issuer || c.Subject == "" || c.JTI == "" || c.ClientID == "" {
		return c, ErrInvalid
	}
	if now.Unix() >= c.Expiry {
		return c, ErrExpired
	}
	return c, nil
}

// ParseIDTokenHint verifies an ID token Castellan issued, as an id_token_hint
// (OIDC Core §3.1.2.1): signature and issuer are checked; expiry is not, since
// a hint may be an expired token.
func (m *Minter) ParseIDTokenHint(token string) (IDClaims, error) {
	var c IDClaims
	if err := m.parse(token, TypeIDToken, &c); err != nil {
		return c, err
	}
	if c.Issuer != m.issuer || c.Subject == "" {
		return c, ErrInvalid
	}
	return c, nil
}

// decodeAccess decodes a verified access-token payload, through the memo.
// Every caller gets its own copy of the slices and the confirmation, so none
// can change what the next one reads.
func (m *Minter) decodeAccess(payload []byte) (AccessClaims, error) {
	digest := sha256.Sum256(payload)
	if c, ok := m.accessClaims.Get(digest); ok {
		return c.clone(), nil
	}
	var c AccessClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return c, ErrInvalid
	}
	m.accessClaims.Put(digest, c.clone())
	return c, nil
}

func (c AccessClaims) clone() AccessClaims {
	c.Audience, c.AMR = slices.Clone(c.Audience), slices.Clone(c.AMR)
	if c.Confirmation != nil {
		cnf := *c.Confirmation
		c.Confirmation = &cnf
	}
	return c
}

func (m *Minter) parse(token, typ string, into any) error {
	payload, err := m.verify(token, typ)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(payload, into); err != nil {
		return ErrInvalid
	}
	return nil
}

// verify checks token's signature and typ and returns its payload, which may
// be shared with other callers (see signing.Keyset.Verify): read-only.
func (m *Minter) verify(token, typ string) ([]byte, error) {
	// RFC 7519 §7.2 step 1: the JWS Compact Serialization only. The JOSE
	// library would also take the JSON serialization and strip whitespace
	// anywhere, so a reshaped token would still verify; Castellan only accepts
	// a token exactly as it issued it.
	if len(token) > 16<<10 || !dpop.Compact(token) {
		return nil, ErrInvalid
	}
	payload, gotTyp, err := m.keys.Verify(token, m.keys.Algorithms())
	if err != nil || gotTyp != typ {
		return nil, ErrInvalid
	}
	return payload, nil
}

// HalfHash is the at_hash / c_hash of OIDC Core §3.1.3.6: the left half of the
// hash of the ASCII value, with the hash of the ID token's signing algorithm.
func HalfHash(alg, value string) (string, error) {
	var h hash.Hash
	switch alg {
	case "ES256", "RS256", "PS256":
		h = sha256.New()
	case "EdDSA":
		// Ed25519 is paired with SHA-512 (OIDC resolution for EdDSA at_hash).
		h = sha512.New()
	default:
		return "", fmt.Errorf("no hash known for %s", alg)
	}
	h.Write([]byte(value))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2]), nil
}
