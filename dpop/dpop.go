// Package dpop validates DPoP proofs (RFC 9449): the JWTs a client sends in
// the DPoP header to show that it holds the private key an access or refresh
// token is bound to. Castellan's token and userinfo endpoints use it, and so
// does the public resource package for Go APIs, which is why it is public and
// imports nothing of Castellan's internals.
//
// A proof is accepted only if all of these hold (RFC 9449 §4.3):
//
//   - exactly one DPoP header, a JWS in the compact serialization;
//   - "typ" is dpop+jwt, "alg" is one of the allowed asymmetric algorithms
//     (never "none" nor an HMAC), and no "crit" header;
//   - "jwk" is a public key (private material is refused) and the signature
//     verifies with it;
//   - "htm" is the request's method and "htu" its URI without query and
//     fragment, compared after RFC 3986 normalization;
//   - "iat" is within MaxAge in the past and Leeway in the future;
//   - with an access token, "ath" is the base64url SHA-256 of it;
//   - "nonce", when the server requires one, is a current server nonce;
//   - "jti" was not seen before with the same key (the ReplayCache).
package dpop

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Error codes of RFC 9449 (§5, §7.1, §8, §9).
const (
	CodeInvalidProof = "invalid_dpop_proof"
	CodeUseNonce     = "use_dpop_nonce"
)

// Defaults for Config.
const (
	DefaultMaxAge = 5 * time.Minute
	DefaultLeeway = time.Minute
)

// DefaultAlgorithms are the proof algorithms accepted when Config.Algorithms
// is empty.
var DefaultAlgorithms = []string{"ES256", "EdDSA", "RS256", "PS256"}

// asymmetric are the algorithms Config.Algorithms may list. "none" and the
// HMAC algorithms make no sense for a proof of possession of a public key.
var asymmetric = map[string]bool{
	"ES256": true, "ES384": true, "ES512": true,
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"EdDSA": true,
}

const (
	maxProofSize = 8 << 10
	maxJTILength = 256
	minRSABits   = 2048
)

// Error is a refused proof. Code is CodeInvalidProof or CodeUseNonce;
// Reason is a fixed phrase, never a value taken from the proof, fit for an
// error_description.
type Error struct {
	Code   string
	Reason string
	err    error
}

func (e *Error) Error() string {
	if e.err != nil {
		return "dpop: " + e.Code + ": " + e.Reason + ": " + e.err.Error()
	}
	return "dpop: " + e.Code + ": " + e.Reason
}

func (e *Error) Unwrap() error { return e.err }

func invalid(reason string) *Error { return &Error{Code: CodeInvalidProof, Reason: reason} }

// ErrReplayed is what a ReplayCache returns for a key it already holds.
var ErrReplayed = errors.New("dpop: proof already used")

// ReplayCache remembers the proofs already accepted. Use stores key until
// expiresAt and returns ErrReplayed (or an error wrapping it) if the key is
// already stored; any other error means the cache cannot answer, and the
// proof is then neither accepted nor called invalid.
type ReplayCache interface {
	Use(ctx context.Context, key string, expiresAt time.Time) error
}

// Config configures a Validator.
type Config struct {
	// Algorithms are the JWS algorithms accepted (default DefaultAlgorithms).
	// Only asymmetric ones may be listed.
	Algorithms []string
	// MaxAge is how old a proof's "iat" may be (default 5 minutes).
	MaxAge time.Duration
	// Leeway is how far in the future "iat" may be, for clock skew (default 1
	// minute).
	Leeway time.Duration
	// Replay remembers accepted proofs; required.
	Replay ReplayCache
	// Nonces, when set, makes a "nonce" in a proof count: it must be one of
	// these (stale or foreign ones are refused with use_dpop_nonce).
	Nonces *Nonces
	// RequireNonce refuses proofs without a nonce (needs Nonces).
	RequireNonce bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Validator checks proofs. It is safe for concurrent use.
type Validator struct {
	algs         []jose.SignatureAlgorithm
	algNames     []string
	maxAge       time.Duration
	leeway       time.Duration
	replay       ReplayCache
	nonces       *Nonces
	requireNonce bool
	now          func() time.Time
}

// New returns a validator for cfg.
func New(cfg Config) (*Validator, error) {
	names := cfg.Algorithms
	if len(names) == 0 {
		names = DefaultAlgorithms
	}
	v := &Validator{
		maxAge: cfg.MaxAge, leeway: cfg.Leeway, replay: cfg.Replay, nonces: cfg.Nonces,
		requireNonce: cfg.RequireNonce, now: cfg.Now, algNames: append([]string(nil), names...),
	}
	for _, a := range names {
		if !asymmetric[a] {
			return nil, fmt.Errorf("dpop: algorithm %q is not allowed (only asymmetric JWS algorithms are)", a)
		}
		v.algs = append(v.algs, jose.SignatureAlgorithm(a))
	}
	if v.replay == nil {
		return nil, errors.New("dpop: a ReplayCache is required")
	}
	if v.requireNonce && v.nonces == nil {
		return nil, errors.New("dpop: RequireNonce needs Nonces")
	}
	if v.maxAge <= 0 {
		v.maxAge = DefaultMaxAge
	}
	if v.leeway <= 0 {
		v.leeway = DefaultLeeway
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v, nil
}

// Algorithms are the accepted algorithms, for discovery
// (dpop_signing_alg_values_supported) and WWW-Authenticate challenges.
func (v *Validator) Algorithms() []string { return append([]string(nil), v.algNames...) }

// Nonce returns a fresh server nonce for a DPoP-Nonce header ("" without
// Nonces).
func (v *Validator) Nonce() string {
	if v.nonces == nil {
		return ""
	}
	return v.nonces.Current(v.now())
}

// NoncesEnabled reports whether the validator has server nonces.
func (v *Validator) NoncesEnabled() bool { return v.nonces != nil }

// Request is the HTTP request a proof must match.
type Request struct {
	// Method is the request method (htm).
	Method string
	// URL is the absolute URL the request was sent to, as the client
	// addressed it (htu); its query and fragment are ignored.
	URL string
	// AccessToken is the access token sent with the proof at a resource;
	// empty at the token endpoint. When set, the proof must carry its "ath".
	AccessToken string
}

// Proof is an accepted proof.
type Proof struct {
	// JKT is the JWK SHA-256 thumbprint (RFC 7638) of the proof's key, the
	// value of an access token's cnf.jkt.
	JKT      string
	Key      jose.JSONWebKey
	JTI      string
	IssuedAt time.Time

	// replayKey and replayUntil are what Use remembers.
	replayKey   string
	replayUntil time.Time
}

type claims struct {
	JTI   string           `json:"jti"`
	HTM   string           `json:"htm"`
	HTU   string           `json:"htu"`
	IAT   *jwt.NumericDate `json:"iat"`
	ATH   *string          `json:"ath"`
	Nonce *string          `json:"nonce"`
}

// Check validates the DPoP header values of a request (all of them:
// more than one is refused, none is the caller's to handle before) against
// req, and uses up the proof's jti: Verify, then Use. A refused proof is an
// *Error; any other error means the replay cache failed.
func (v *Validator) Check(ctx context.Context, header []string, req Request) (*Proof, error) {
	p, err := v.Verify(header, req)
	if err != nil {
		return nil, err
	}
	if err := v.Use(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// Verify validates a proof as Check does, except that its jti is not yet
// remembered: it writes nothing. A server that accepts requests from anyone
// verifies the proof first, authenticates the request by other means, and
// calls Use only then, so that a stranger cannot fill its replay cache with
// proofs signed by keys of their own. A refused proof is an *Error.
func (v *Validator) Verify(header []string, req Request) (*Proof, error) {
	if len(header) != 1 {
		// RFC 9449 §4.3 step 1: exactly one DPoP header.
		return nil, invalid("send exactly one DPoP header")
	}
	raw := header[0]
	if len(raw) > maxProofSize || !Compact(raw) {
		return nil, invalid("the proof is not a compact JWS")
	}
	if err := checkHeader(raw); err != nil {
		return nil, err
	}
	jws, err := jose.ParseSignedCompact(raw, v.algs)
	if err != nil {
		// Among others: an algorithm not allowed ("none", HS256) or a jwk
		// with private key material, which go-jose refuses to parse.
		return nil, &Error{Code: CodeInvalidProof, Reason: "the proof is not a JWS with an accepted algorithm and a public jwk", err: err}
	}
	h := jws.Signatures[0].Protected
	jwk := h.JSONWebKey
	if jwk == nil || !jwk.Valid() || !jwk.IsPublic() {
		return nil, invalid("the proof's jwk header is missing or not a public key")
	}
	if k, ok := jwk.Key.(*rsa.PublicKey); ok && k.N.BitLen() < minRSABits {
		return nil, invalid("the proof's RSA key is shorter than 2048 bits")
	}
	payload, err := jws.Verify(jwk)
	if err != nil {
		return nil, &Error{Code: CodeInvalidProof, Reason: "the proof's signature does not verify with its jwk", err: err}
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, &Error{Code: CodeInvalidProof, Reason: "the proof's claims are malformed", err: err}
	}
	now := v.now()
	switch {
	case c.JTI == "" || len(c.JTI) > maxJTILength:
		return nil, invalid("the proof has no usable jti")
	case c.HTM == "" || c.HTU == "" || c.IAT == nil:
		return nil, invalid("the proof lacks htm, htu or iat")
	case c.HTM != req.Method:
		return nil, invalid("the proof's htm is not the request method")
	case !SameURI(c.HTU, req.URL):
		return nil, invalid("the proof's htu is not the request URI")
	case c.IAT.Time().Before(now.Add(-v.maxAge)):
		return nil, invalid("the proof is too old (iat)")
	case c.IAT.Time().After(now.Add(v.leeway)):
		return nil, invalid("the proof was issued in the future (iat)")
	}
	if req.AccessToken != "" {
		// RFC 9449 §4.3 step 11 / §7: a proof for a resource names the token.
		if c.ATH == nil {
			return nil, invalid("the proof lacks ath for the access token")
		}
		if subtle.ConstantTimeCompare([]byte(*c.ATH), []byte(AccessTokenHash(req.AccessToken))) != 1 {
			return nil, invalid("the proof's ath does not match the access token")
		}
	}
	switch {
	case c.Nonce == nil && v.requireNonce:
		return nil, &Error{Code: CodeUseNonce, Reason: "a DPoP nonce is required"}
	case c.Nonce != nil && v.nonces != nil && !v.nonces.Valid(*c.Nonce, now):
		return nil, &Error{Code: CodeUseNonce, Reason: "the DPoP nonce is stale or unknown"}
	}
	jkt, err := Thumbprint(jwk)
	if err != nil {
		return nil, &Error{Code: CodeInvalidProof, Reason: "the proof's jwk has no thumbprint", err: err}
	}
	// The replay key covers the proof's key, so one client cannot block
	// another's jti, and it is hashed to bound its length.
	sum := sha256.Sum256([]byte(jkt + "\x00" + c.JTI))
	return &Proof{JKT: jkt, Key: *jwk, JTI: c.JTI, IssuedAt: c.IAT.Time(),
		replayKey: "dpop:" + base64.RawURLEncoding.EncodeToString(sum[:]), replayUntil: c.IAT.Time().Add(v.maxAge + v.leeway)}, nil
}

// Use remembers the jti of a proof that Verify accepted, for as long as the
// proof could be accepted (RFC 9449 §11.1); a proof used before, here or on
// any instance sharing the ReplayCache, is refused with an *Error. Any
// other error means the replay cache failed.
func (v *Validator) Use(ctx context.Context, p *Proof) error {
	if p == nil || p.replayKey == "" {
		return invalid("the proof was not verified")
	}
	if err := v.replay.Use(ctx, p.replayKey, p.replayUntil); err != nil {
		if errors.Is(err, ErrReplayed) {
			return invalid("the proof was already used (jti)")
		}
		return fmt.Errorf("dpop: replay cache: %w", err)
	}
	return nil
}

// ReplayLookup is what a ReplayCache may also offer: whether a key is
// remembered, without remembering it. Validator.Used needs it.
type ReplayLookup interface {
	Used(ctx context.Context, key string) (bool, error)
}

// Used reports whether a proof that Verify accepted was used before, without
// using it up. A caller that may only remember a proof once the request has
// proved more (its grant, say) refuses a replay with it before acting, so a
// replayed request changes nothing; Use still decides, since two copies may
// race. It is false when the ReplayCache cannot look keys up.
func (v *Validator) Used(ctx context.Context, p *Proof) (bool, error) {
	lookup, ok := v.replay.(ReplayLookup)
	if !ok || p == nil || p.replayKey == "" {
		return false, nil
	}
	used, err := lookup.Used(ctx, p.replayKey)
	if err != nil {
		return false, fmt.Errorf("dpop: replay cache: %w", err)
	}
	return used, nil
}

// checkHeader reads the protected header before any key is used: typ must
// be dpop+jwt and no extension may be critical.
func checkHeader(raw string) error {
	seg, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return invalid("the proof's header is not base64url")
	}
	var h map[string]json.RawMessage
	if err := json.Unmarshal(b, &h); err != nil {
		return invalid("the proof's header is not a JSON object")
	}
	var typ string
	if err := json.Unmarshal(h["typ"], &typ); err != nil || !strings.EqualFold(typ, "dpop+jwt") {
		// RFC 9449 §4.2: typ dpop+jwt, so no other JWT passes for a proof.
		return invalid("the proof's typ is not dpop+jwt")
	}
	if _, ok := h["crit"]; ok {
		// RFC 7515 §4.1.11: no extension is understood, so none can be critical.
		return invalid("the proof has a critical header that is not understood")
	}
	if _, ok := h["b64"]; ok {
		return invalid("the proof has a b64 header")
	}
	return nil
}

// Thumbprint is the RFC 7638 JWK SHA-256 thumbprint of key, base64url
// encoded: the "jkt" of RFC 9449 §6.1.
func Thumbprint(key *jose.JSONWebKey) (string, error) {
	t, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(t), nil
}

// AccessTokenHash is the "ath" of a proof for token: base64url SHA-256 of
// its ASCII value (RFC 9449 §4.2).
func AccessTokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ValidThumbprint reports whether s has the shape of a SHA-256 thumbprint
// (43 base64url characters), e.g. the dpop_jkt authorization parameter.
func ValidThumbprint(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == sha256.Size && len(s) == 43
}

// Compact reports whether s has the shape of the JWS Compact Serialization,
// the only one a JWT may use (RFC 7519 §7.2): three base64url parts and
// nothing else (the JSON serialization, or whitespace anywhere, is refused).
func Compact(s string) bool {
	dots := 0
	for i := 0; i < len(s); i++ {
		switch compactByte[s[i]] {
		case '.':
			dots++
		case 0:
			return false
		}
	}
	return dots == 2
}

// compactByte maps the bytes a compact JWS may hold (the base64url alphabet
// and '.') to themselves and every other byte to 0: a table lookup per byte,
// since resource servers and introspection check every token they get.
var compactByte = func() (t [256]byte) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.") {
		t[c] = c
	}
	return t
}()
