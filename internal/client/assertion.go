package client

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/castellan-auth/castellan/internal/clientkeys"
	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/storage"
)

// AssertionAlgorithms are the JWS algorithms a client assertion may use
// (never none or HS*; see oauth.ClientAssertionAlgorithms).
var AssertionAlgorithms = oauth.ClientAssertionAlgorithms

// Limits of a client assertion's lifetime.
const (
	// MaxAssertionLifetime bounds exp: an assertion is made for one request,
	// and its jti is remembered until it expires.
	MaxAssertionLifetime = 5 * time.Minute
	// AssertionLeeway absorbs clock differences between client and server.
	AssertionLeeway = 30 * time.Second
)

// Assertions verifies private_key_jwt client assertions (RFC 7523 §2.2, §3;
// OIDC Core §9).
type Assertions struct {
	// Issuer is the one value "aud" may hold, as a single string: the issuer
	// identifier, never an endpoint URL and never an array (FAPI 2.0 Security
	// Profile §5.3.2.1; draft-ietf-oauth-rfc7523bis, updating RFC 7523 §3,
	// after the 2025 "audience injection" finding: an assertion a client made
	// for another server's endpoint must not be replayable here).
	Issuer string
	Replay storage.ReplayCache
	Keys   *clientkeys.Fetcher
	Clock  clock.Clock
}

// assertionClaims are the claims Castellan reads from an assertion.
type assertionClaims struct {
	jwt.Claims
	// Aud is "aud" as sent (it shadows Claims.Audience), so that an array is
	// told apart from a string.
	Aud json.RawMessage `json:"aud"`
}

// subject returns the client id an assertion names, without verifying it, so
// that the client (and its keys) can be looked up. Everything is checked later.
func assertionSubject(assertion string) (string, error) {
	tok, err := jwt.ParseSigned(assertion, signatureAlgorithms())
	if err != nil {
		return "", invalidClient("client_assertion is not a compact JWS with an accepted algorithm (" + strings.Join(AssertionAlgorithms, ", ") + ")")
	}
	var c assertionClaims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return "", invalidClient("client_assertion claims are malformed")
	}
	if c.Subject == "" {
		return "", invalidClient("client_assertion has no sub")
	}
	return c.Subject, nil
}

func signatureAlgorithms() []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(AssertionAlgorithms))
	for i, a := range AssertionAlgorithms {
		out[i] = jose.SignatureAlgorithm(a)
	}
	return out
}

// Verify checks assertion as client c's authentication and, when it is
// good, remembers its jti so that it cannot be presented again. Every failure
// is invalid_client; only storage or network failures are plain errors.
func (a *Assertions) Verify(ctx context.Context, c storage.Client, assertion string) error {
	tok, err := jwt.ParseSigned(assertion, signatureAlgorithms())
	if err != nil {
		return invalidClient("client_assertion is not a compact JWS with an accepted algorithm")
	}
	if len(tok.Headers) != 1 {
		return invalidClient("client_assertion must carry one signature")
	}
	h := tok.Headers[0]
	if c.TokenEndpointAuthSigningAlg != "" && h.Algorithm != c.TokenEndpointAuthSigningAlg {
		// RFC 7591 §2: the client registered the one algorithm it signs with.
		return invalidClient("client_assertion alg differs from the client's token_endpoint_auth_signing_alg")
	}
	if _, ok := h.ExtraHeaders["crit"]; ok {
		// RFC 7515 §4.1.11: no extension is understood, so none may be critical
		// (go-jose would accept crit ["b64"]).
		return invalidClient("client_assertion has a critical header that is not understood")
	}
	if _, ok := h.ExtraHeaders["b64"]; ok {
		return invalidClient("client_assertion has a b64 header")
	}
	if typ, ok := h.ExtraHeaders["typ"].(string); ok && !assertionType(typ) {
		// A DPoP proof, logout token or access token is not a client assertion.
		return invalidClient("client_assertion has typ " + typ)
	}
	claims, err := a.verifySignature(ctx, c, tok, h)
	if err != nil {
		return err
	}
	if err := a.checkClaims(c, claims); err != nil {
		return err
	}
	// RFC 7523 §3 item 7: the jti is single-use, across every node.
	exp := claims.Expiry.Time().Add(AssertionLeeway)
	err = a.Replay.Remember(ctx, "client-assertion:"+c.ID+":"+claims.ID, exp, a.Clock.Now())
	if errors.Is(err, storage.ErrConflict) {
		return invalidClient("client_assertion was already used (jti replayed)")
	}
	return err
}

// assertionType accepts the typ values of a JWT used as a client assertion:
// none at all, "JWT", and the explicit type of draft-ietf-oauth-rfc7523bis.
func assertionType(typ string) bool {
	t := strings.ToLower(strings.TrimPrefix(strings.ToLower(typ), "application/"))
	return t == "jwt" || t == "client-authentication+jwt"
}

// verifySignature finds the client's key for the assertion and verifies the
// signature with it; an unknown kid makes a jwks_uri be fetched again.
func (a *Assertions) verifySignature(ctx context.Context, c storage.Client, tok *jwt.JSONWebToken, h jose.Header) (*assertionClaims, error) {
	for attempt := 0; attempt < 2; attempt++ {
		set, err := a.keys(ctx, c, attempt > 0)
		if err != nil {
			return nil, err
		}
		candidates := set.Keys
		if h.KeyID != "" {
			candidates = set.Key(h.KeyID)
		}
		for i, k := range candidates {
			if i >= 8 {
				break // a kid-less assertion against a huge set costs bounded work
			}
			if k.Algorithm != "" && k.Algorithm != h.Algorithm {
				continue
			}
			var claims assertionClaims
			if err := tok.Claims(k.Key, &claims); err == nil {
				return &claims, nil
			}
		}
		if c.JWKSURI == "" || (h.KeyID != "" && len(candidates) > 0) {
			break
		}
	}
	return nil, invalidClient("client_assertion is not signed by a key of this client")
}

// keys returns the client's registered key set.
func (a *Assertions) keys(ctx context.Context, c storage.Client, refetch bool) (jose.JSONWebKeySet, error) {
	switch {
	case c.JWKS != "":
		set, err := clientkeys.Parse([]byte(c.JWKS))
		if err != nil {
			return set, invalidClient("the client's registered jwks is unusable")
		}
		return set, nil
	case c.JWKSURI != "" && a.Keys != nil:
		set, err := a.Keys.Keys(ctx, c.JWKSURI, refetch)
		if err != nil {
			// The client's key server failing is the client's problem, not ours:
			// answer invalid_client, not server_error.
			return set, invalidClient("the client's jwks_uri could not be read")
		}
		return set, nil
	}
	return jose.JSONWebKeySet{}, invalidClient("the client has no registered keys")
}

// checkClaims applies RFC 7523 §3 to the verified claims.
func (a *Assertions) checkClaims(c storage.Client, cl *assertionClaims) error {
	now := a.Clock.Now()
	switch {
	case cl.Issuer != c.ID || cl.Subject != c.ID:
		// §3 items 1 and 2; OIDC Core §9: iss and sub are both the client_id.
		return invalidClient("client_assertion iss and sub must both be the client_id")
	case !a.audienceOK(cl.Aud):
		return invalidClient("client_assertion aud must be the issuer identifier, as a single string")
	case cl.Expiry == nil:
		return invalidClient("client_assertion has no exp")
	case now.After(cl.Expiry.Time().Add(AssertionLeeway)):
		return invalidClient("client_assertion has expired")
	case cl.Expiry.Time().Sub(now) > MaxAssertionLifetime+AssertionLeeway:
		return invalidClient("client_assertion exp is too far in the future (at most 5 minutes)")
	case cl.NotBefore != nil && cl.NotBefore.Time().After(now.Add(AssertionLeeway)):
		return invalidClient("client_assertion is not valid yet (nbf)")
	case cl.IssuedAt != nil && cl.IssuedAt.Time().After(now.Add(AssertionLeeway)):
		return invalidClient("client_assertion iat is in the future")
	case cl.IssuedAt != nil && cl.Expiry.Time().Sub(cl.IssuedAt.Time()) > MaxAssertionLifetime:
		return invalidClient("client_assertion lifetime (exp - iat) is longer than 5 minutes")
	case cl.ID == "" || len(cl.ID) > 256:
		// §3 item 7: jti lets the server refuse replays, so it is required.
		return invalidClient("client_assertion needs a jti (at most 256 characters)")
	}
	return nil
}

// audienceOK accepts only the issuer as a JSON string: an array (even of the
// issuer alone) and the token or PAR endpoint URL are refused
// (draft-ietf-oauth-rfc7523bis, updating RFC 7523 §3; FAPI 2.0 Security Profile §5.3.2.1).
func (a *Assertions) audienceOK(raw json.RawMessage) bool {
	var aud string
	if a.Issuer == "" || json.Unmarshal(raw, &aud) != nil {
		return false
	}
	return aud == a.Issuer
}
