package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/castellan-auth/castellan/internal/clientkeys"
	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/storage"
)

// AssertionAlgorithms are the JWS algorithms a client assertion may use
// (never none or HS*; see oauth.ClientAssertionAlgorithms).
var AssertionAlgorithms = oauth.ClientAssertionAlgorithms

// AssertionLeeway absorbs clock differences between client and server.
const AssertionLeeway = 30 * time.Second

// Assertions verifies private_key_jwt client assertions (RFC 7523 §2.2, §3;
// OIDC Core §9).
//
// # Audience
//
// The 2025 "audience injection" attack on private_key_jwt (the finding behind
// draft-ietf-oauth-rfc7523bis) is a client that uses one key with several
// servers and takes the "aud" of its assertions from a server's metadata: a
// malicious server advertises an honest server's token endpoint as its own,
// the client signs an assertion for that URL and sends it to the malicious
// server, which replays it at the honest one. The rule that follows is that
// an assertion made for another server must never be accepted here: every
// value Castellan accepts in "aud" names Castellan itself.
//
// A client held to profile fapi2 may only use the issuer identifier, as a
// single string (FAPI 2.0 Security Profile §5.3.2.1): a client cannot be
// tricked into using another server's issuer, since it checks the issuer of
// the metadata it reads (RFC 8414 §3.3). Every other client may also use the
// token endpoint URL, which RFC 7523 §3 names and what most libraries send
// (oauth2c and Authlib), the URL of the endpoint it is calling (RFC 9126 §2
// makes the PAR endpoint's and the token endpoint's URLs a MUST at /par),
// and an array holding only such values (zitadel/oidc sends ["<issuer>"]).
// An array that also names anything else is refused: an assertion valid at
// another server too is exactly what the attack needs. Accepting endpoint
// URLs leaves such a client exposed if it builds "aud" from the metadata of
// a server it should not trust; a client that must not be, is put on
// profile fapi2.
//
// # Lifetime
//
// exp - iat (exp - now without iat) is at most MaxLifetime
// (client_assertion.max_lifetime, an hour by default: zitadel/oidc and
// Authlib sign for an hour), and the jti is remembered until exp, so an
// assertion is accepted once for its whole life, on every node.
type Assertions struct {
	// Issuer is the issuer identifier.
	Issuer string
	// TokenEndpoint is the token endpoint's URL, accepted in "aud" at every
	// endpoint (not for profile fapi2).
	TokenEndpoint string
	// MaxLifetime bounds an assertion's lifetime.
	MaxLifetime time.Duration
	Replay      storage.ReplayCache
	Keys        *clientkeys.Fetcher
	Clock       clock.Clock
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
// endpoint is the URL of the endpoint called, which "aud" may name.
func (a *Assertions) Verify(ctx context.Context, c storage.Client, assertion, endpoint string) error {
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
	if err := a.checkClaims(c, claims, endpoint); err != nil {
		return err
	}
	// RFC 7523 §3 item 7: the jti is single-use, across every node, for as
	// long as the assertion would be accepted.
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
func (a *Assertions) checkClaims(c storage.Client, cl *assertionClaims, endpoint string) error {
	now := a.Clock.Now()
	exp := func() time.Time { return cl.Expiry.Time() }
	switch {
	case cl.Issuer != c.ID || cl.Subject != c.ID:
		// §3 items 1 and 2; OIDC Core §9: iss and sub are both the client_id.
		return invalidClient("client_assertion iss and sub must both be the client_id")
	case c.Profile == config.ProfileFAPI2 && !a.issuerOnly(cl.Aud):
		return invalidClient("client_assertion aud must be the issuer identifier, as a single string (profile fapi2)")
	case c.Profile != config.ProfileFAPI2 && !a.namesThisServer(cl.Aud, endpoint):
		return invalidClient("client_assertion aud must name this server: the issuer, the token endpoint URL or the URL of this endpoint (or an array of only those)")
	case cl.Expiry == nil:
		return invalidClient("client_assertion has no exp")
	case now.After(exp().Add(AssertionLeeway)):
		return invalidClient("client_assertion has expired")
	case cl.IssuedAt == nil && exp().Sub(now) > a.MaxLifetime+AssertionLeeway:
		return invalidClient("client_assertion exp is too far in the future (at most " + a.MaxLifetime.String() + ")")
	case cl.NotBefore != nil && cl.NotBefore.Time().After(now.Add(AssertionLeeway)):
		return invalidClient("client_assertion is not valid yet (nbf)")
	case cl.IssuedAt != nil && cl.IssuedAt.Time().After(now.Add(AssertionLeeway)):
		return invalidClient("client_assertion iat is in the future")
	case cl.IssuedAt != nil && exp().Sub(cl.IssuedAt.Time()) > a.MaxLifetime:
		return invalidClient("client_assertion lifetime (exp - iat) is longer than " + a.MaxLifetime.String())
	case cl.ID == "" || len(cl.ID) > 256:
		// §3 item 7: jti lets the server refuse replays, so it is required.
		return invalidClient("client_assertion needs a jti (at most 256 characters)")
	}
	return nil
}

// issuerOnly accepts only the issuer as a JSON string: an array (even of the
// issuer alone) and endpoint URLs are refused (FAPI 2.0 Security Profile
// §5.3.2.1; draft-ietf-oauth-rfc7523bis).
func (a *Assertions) issuerOnly(raw json.RawMessage) bool {
	var aud string
	if a.Issuer == "" || json.Unmarshal(raw, &aud) != nil {
		return false
	}
	return aud == a.Issuer
}

// namesThisServer accepts "aud" as a string or a non-empty array of strings
// of which every one is the issuer, the token endpoint URL or the URL of the
// endpoint called: each names this server, none another (see Assertions).
// Values are compared exactly (no trailing slash or case folding).
func (a *Assertions) namesThisServer(raw json.RawMessage, endpoint string) bool {
	var auds []string
	var one string
	switch {
	case json.Unmarshal(raw, &one) == nil:
		auds = []string{one}
	case json.Unmarshal(raw, &auds) != nil || len(auds) == 0:
		return false
	}
	for _, aud := range auds {
		if aud == "" || aud != a.Issuer && aud != a.TokenEndpoint && aud != endpoint {
			return false
		}
	}
	return a.Issuer != ""
}

// endpointURL is the URL of the endpoint r calls: the issuer and the path
// within it (the server strips the issuer's own path before routing).
func (a *Assertions) endpointURL(r *http.Request) string {
	return strings.TrimSuffix(a.Issuer, "/") + r.URL.Path
}
