package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/castellan-auth/castellan/dpop"
)

// DefaultLeeway is the clock skew allowed when Config.Leeway is zero.
const DefaultLeeway = 30 * time.Second

// MaxLeeway is the largest Config.Leeway New accepts.
const MaxLeeway = 5 * time.Minute

// defaultAlgorithms are the signing algorithms accepted when
// Config.Algorithms is empty.
var defaultAlgorithms = []string{"ES256", "RS256", "PS256", "EdDSA"}

// asymmetric are the algorithms Config.Algorithms may list: those verified
// with a public key. "none" and HS256/384/512 are never accepted.
var asymmetric = map[string]bool{
	"ES256": true, "ES384": true, "ES512": true,
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"EdDSA": true,
}

// maxTokenSize bounds the tokens Verify looks at.
const maxTokenSize = 16 << 10

// Config configures a Verifier. Issuer and Audience are required (and
// Audience is not the issuer); every other field is safe to leave empty.
//
// Without DPoP, a DPoP-bound token is refused (see Verify), and Require
// treats "Authorization: DPoP" as no token.
type Config struct {
	// Issuer is the provider's issuer URL, exactly as its tokens and its
	// discovery document state it (e.g. "https://login.example.com").
	Issuer string

	// Audience is this API's identifier: a token is accepted only if its "aud"
	// contains it (RFC 9068 §4). It is required, and must be what the
	// provider puts in the tokens of the clients that call this API: their
	// "audience" (or the provider's tokens.audience). New refuses the
	// issuer itself: a token whose audience is the issuer is meant for
	// Castellan, and every client without an audience of its own gets one,
	// so an API accepting it would accept every client's tokens
	// (AllowIssuerAudience, for an API that means that).
	Audience string

	// AllowIssuerAudience lets Audience be the issuer, so that the tokens of
	// every client without an audience of its own are accepted. Only for an
	// API that is part of the provider's own deployment and trusts all of
	// its clients alike.
	AllowIssuerAudience bool

	// Algorithms are the JWS algorithms accepted (default ES256, RS256, PS256
	// and EdDSA). Only asymmetric algorithms may be listed: New refuses
	// "none" and HS256/384/512.
	Algorithms []string

	// Leeway is the clock skew allowed on "exp", "nbf" and "iat". Zero means
	// DefaultLeeway (30 s); negative means none; New refuses more than
	// MaxLeeway.
	Leeway time.Duration

	// HTTPClient fetches discovery, keys and introspection answers. The
	// default has a 10 s timeout.
	HTTPClient *http.Client

	// Now returns the current time (default time.Now). It also times the key
	// cache and the revocation cache, so a test can move it.
	Now func() time.Time

	// Realm is the realm of the WWW-Authenticate challenges Require sends
	// (default: Audience).
	Realm string

	// RevocationCheck, when set, makes every token that passes the local checks
	// also be checked at the provider's introspection endpoint. Nil (the
	// default) checks tokens locally only. See RevocationCheck for the
	// trade-off.
	RevocationCheck *RevocationCheck

	// DPoP, when set, lets Require accept DPoP-bound tokens presented with
	// "Authorization: DPoP" and a valid DPoP proof (htm, htu, iat, jti
	// replay, ath, and the key's thumbprint equal to cnf.jkt), and challenge
	// for both schemes. Nil keeps refusing bound tokens; Verify stays
	// bearer-only either way (see VerifyDPoP).
	DPoP *DPoP
}

// Verifier checks Castellan access tokens. It is safe for concurrent use; make
// one per issuer and audience and share it.
type Verifier struct {
	issuer     string
	audience   string
	algs       []jose.SignatureAlgorithm
	leeway     time.Duration
	now        func() time.Time
	realm      string
	keys       *keySet
	revocation *revocation
	dpop       *dpopVerifier
}

// New returns a verifier for cfg. It does not contact the provider: discovery
// and keys are fetched when the first token arrives, so an API may start before
// its provider.
func New(cfg Config) (*Verifier, error) {
	var problems []string
	if !httpURL(cfg.Issuer) {
		problems = append(problems, fmt.Sprintf("Issuer %q is not an absolute http(s) URL", cfg.Issuer))
	}
	switch {
	case strings.TrimSpace(cfg.Audience) == "":
		problems = append(problems, "Audience is required: this API's identifier, as the provider's tokens name it in aud")
	case !cfg.AllowIssuerAudience && strings.TrimSuffix(cfg.Audience, "/") == strings.TrimSuffix(cfg.Issuer, "/"):
		problems = append(problems, "Audience is the issuer, which names the provider, not an API: every client's default tokens would be accepted (set AllowIssuerAudience to mean that)")
	}
	algNames := cfg.Algorithms
	if len(algNames) == 0 {
		algNames = defaultAlgorithms
	}
	algs := make([]jose.SignatureAlgorithm, 0, len(algNames))
	for _, a := range algNames {
		if !asymmetric[a] {
			problems = append(problems, fmt.Sprintf("algorithm %q is not allowed (only asymmetric JWS algorithms are)", a))
		}
		algs = append(algs, jose.SignatureAlgorithm(a))
	}
	leeway := cfg.Leeway
	switch {
	case leeway == 0:
		leeway = DefaultLeeway
	case leeway < 0:
		leeway = 0
	case leeway > MaxLeeway:
		problems = append(problems, fmt.Sprintf("Leeway %s is more than %s", leeway, MaxLeeway))
	}
	realm := cfg.Realm
	if realm == "" {
		realm = cfg.Audience
	}
	if strings.ContainsFunc(realm, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		problems = append(problems, "Realm has control characters")
	}
	if rc := cfg.RevocationCheck; rc != nil {
		problems = append(problems, rc.validate()...)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	var dv *dpopVerifier
	if cfg.DPoP != nil {
		var dp []string
		dv, dp = newDPoP(cfg.DPoP, now)
		problems = append(problems, dp...)
	}
	if len(problems) > 0 {
		return nil, errors.New("resource: " + strings.Join(problems, "; "))
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: fetchTimeout}
	}
	v := &Verifier{
		issuer: cfg.Issuer, audience: cfg.Audience, algs: algs, leeway: leeway, now: now, realm: realm,
		keys: &keySet{issuer: cfg.Issuer, client: client, now: now}, dpop: dv,
	}
	if rc := cfg.RevocationCheck; rc != nil {
		v.revocation = newRevocation(*rc, client, now, v.keys.introspectionEndpoint)
	}
	return v, nil
}

// Claims are the claims of a verified access token (RFC 9068 §2.2).
type Claims struct {
	Issuer string
	// Subject is the user, or the client itself for client credentials.
	Subject  string
	ClientID string
	// Scopes are the scopes granted, from the space-separated "scope".
	Scopes    []string
	Audience  []string
	Expiry    time.Time
	IssuedAt  time.Time
	NotBefore time.Time // zero without "nbf"
	AuthTime  time.Time // zero without "auth_time"
	// SID is the provider's session id (empty for client credentials).
	SID string
	// JTI is the token's unique id.
	JTI string
	// JKT is the thumbprint of the DPoP key the token is bound to (cnf.jkt,
	// RFC 9449 §6.1); empty for a bearer token.
	JKT string
	// Raw is every claim as decoded JSON (numbers are float64), for claims
	// without a field here, such as "amr" or "grant".
	Raw map[string]any
}

// HasScope reports whether the token was granted scope.
func (c *Claims) HasScope(scope string) bool {
	if c == nil {
		return false
	}
	for _, s := range c.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// wireClaims is the payload as Castellan writes it.
type wireClaims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  jwt.Audience     `json:"aud"`
	ClientID  string           `json:"client_id"`
	Scope     string           `json:"scope"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	NotBefore *jwt.NumericDate `json:"nbf"`
	Expiry    *jwt.NumericDate `json:"exp"`
	JTI       string           `json:"jti"`
	AuthTime  *jwt.NumericDate `json:"auth_time"`
	SID       string           `json:"sid"`
	// Confirmation binds the token to a key (RFC 7800; "jkt" for DPoP, RFC
	// 9449 §6.1).
	Confirmation json.RawMessage `json:"cnf"`
}

// Verify checks a bearer access token as the package documentation says and
// returns its claims. Errors match ErrInvalidToken (the token is not
// acceptable; an expired one is a *TokenExpiredError) or ErrUnavailable (it
// could not be checked now). ctx bounds the fetches it may wait for.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	c, bound, err := v.verify(ctx, token)
	if err != nil {
		return nil, err
	}
	if bound {
		// RFC 9449 §7.1: a DPoP-bound token needs a proof of the key; as a
		// bearer token anyone who saw it could use it. (DPoP support will
		// verify the proof and then accept it; Verify stays bearer-only.)
		return nil, invalid("is bound to a key (DPoP) and cannot be used as a bearer token")
	}
	if v.revocation != nil {
		if err := v.revocation.check(ctx, token, c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// verify does every local check except the one on "cnf", and reports whether
// the token is bound to a key.
func (v *Verifier) verify(ctx context.Context, token string) (*Claims, bool, error) {
	if len(token) > maxTokenSize || !dpop.Compact(token) {
		return nil, false, invalid("is not a JWT")
	}
	jws, err := jose.ParseSignedCompact(token, v.algs)
	if err != nil {
		// Among others: alg "none", HS256, or any algorithm not allowed.
		return nil, false, &invalidError{reason: "is not a JWT signed with an accepted algorithm", err: err}
	}
	h := jws.Signatures[0].Protected
	if !accessTokenType(h.ExtraHeaders[jose.HeaderType]) {
		return nil, false, invalid("is not an access token (typ is not at+jwt)")
	}
	if _, ok := h.ExtraHeaders["crit"]; ok {
		// RFC 7515 §4.1.11: we understand no extension, so none can be critical.
		return nil, false, invalid("has a critical header that is not understood")
	}
	if _, ok := h.ExtraHeaders["b64"]; ok {
		return nil, false, invalid("has a b64 header")
	}
	if h.KeyID == "" {
		return nil, false, invalid("names no key (kid)")
	}
	// The key's "alg", when it has one, must be the token's (keySet.find);
	// otherwise go-jose refuses a key of the wrong type for the algorithm.
	key, err := v.keys.key(ctx, h.KeyID, h.Algorithm)
	if err != nil {
		return nil, false, err
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return nil, false, &invalidError{reason: "has a signature that does not verify", err: err}
	}

	var w wireClaims
	if err := json.Unmarshal(payload, &w); err != nil {
		return nil, false, &invalidError{reason: "has malformed claims", err: err}
	}
	var raw map[string]any
	if err := json.Unmarshal(payload, &raw); err != nil {
		return nil, false, &invalidError{reason: "has malformed claims", err: err}
	}
	if err := v.checkClaims(&w); err != nil {
		return nil, false, err
	}
	c := &Claims{
		Issuer: w.Issuer, Subject: w.Subject, ClientID: w.ClientID, Scopes: strings.Fields(w.Scope),
		Audience: []string(w.Audience), Expiry: w.Expiry.Time(), IssuedAt: w.IssuedAt.Time(),
		SID: w.SID, JTI: w.JTI, Raw: raw,
	}
	if w.NotBefore != nil {
		c.NotBefore = w.NotBefore.Time()
	}
	if w.AuthTime != nil {
		c.AuthTime = w.AuthTime.Time()
	}
	bound := len(w.Confirmation) > 0 && string(w.Confirmation) != "null"
	if bound {
		var cnf struct {
			JKT string `json:"jkt"`
		}
		if json.Unmarshal(w.Confirmation, &cnf) == nil {
			c.JKT = cnf.JKT
		}
	}
	return c, bound, nil
}

// checkClaims checks issuer, audience, times and required claims.
func (v *Verifier) checkClaims(w *wireClaims) error {
	now := v.now()
	switch {
	case w.Issuer != v.issuer:
		return invalid("was issued by another issuer")
	case !w.Audience.Contains(v.audience):
		return invalid("is not meant for this API (aud)")
	case w.Expiry == nil || w.IssuedAt == nil || w.Subject == "" || w.ClientID == "" || w.JTI == "":
		return invalid("lacks a required claim (exp, iat, sub, client_id or jti)")
	case !now.Before(w.Expiry.Time().Add(v.leeway)):
		return &TokenExpiredError{Expiry: w.Expiry.Time()}
	case w.NotBefore != nil && now.Add(v.leeway).Before(w.NotBefore.Time()):
		return invalid("is not valid yet (nbf)")
	case now.Add(v.leeway).Before(w.IssuedAt.Time()):
		return invalid("was issued in the future (iat)")
	}
	return nil
}

// accessTokenType reports whether a "typ" header says at+jwt. Media types are
// case-insensitive and "application/" may be left out (RFC 7515 §4.1.9).
func accessTokenType(typ any) bool {
	s, ok := typ.(string)
	if !ok {
		return false
	}
	s = strings.ToLower(s)
	return s == "at+jwt" || s == "application/at+jwt"
}
