// Package resource lets an API (a resource server) accept the access tokens
// that a Castellan provider issues. Castellan's access tokens are JWTs (RFC
// 9068), so an API can check them on its own, with the provider's public keys
// and no call per request:
//
//	v, err := resource.New(resource.Config{
//		Issuer:   "https://login.example.com",   // the provider
//		Audience: "https://api.example.com",     // this API, as tokens name it in "aud"
//	})
//	mux.Handle("GET /orders", v.Require("orders:read")(ordersHandler))
//
// and, in the handler, resource.ClaimsFrom(r.Context()) returns who called.
//
// # What is checked
//
// A token is accepted only if all of these hold:
//
//   - It is a JWS in the compact serialization (RFC 7519 §7.2), signed with
//     one of Config.Algorithms (default ES256, RS256, PS256, EdDSA; "none"
//     and the HMAC algorithms can never be allowed, so a public key can never
//     be used as an HMAC secret).
//   - Its "kid" names a key in the JWKS published at the jwks_uri of the
//     issuer's discovery document, whose "alg" (when the key states one) is the
//     token's "alg", and the signature verifies with that key. Keys come only
//     from there: "jku", "x5u", "x5c" and "jwk" headers are ignored.
//   - Its "typ" header is "at+jwt" or "application/at+jwt", in any case (RFC
//     9068 §2.1, §4), so an ID token or a logout token, signed by the same
//     keys, is not mistaken for an access token.
//   - It has no "crit" header (no extension is understood) and no "b64".
//   - "iss" is Config.Issuer exactly; "aud" contains Config.Audience.
//
// # Audience
//
// Castellan puts in "aud" what a client's access tokens are for: the
// client's registered audience (RFC 9068 §3), else the provider's
// tokens.audience, else the issuer, which names Castellan itself. A
// verifier needs an explicit audience, the identifier of this API, and New
// refuses the issuer as one (unless Config.AllowIssuerAudience says so):
// with it, an API would accept the tokens of every client that has no
// audience of its own, single-page apps and other services alike. Register
// the API's identifier as the audience of the clients that call it.
//   - "exp" has not passed, "nbf" (if any) has come and "iat" is not in the
//     future, each with Config.Leeway (default 30 s) for clock skew.
//   - "sub", "client_id" and "jti" are present (RFC 9068 §2.2).
//   - It has no "cnf" claim: a token bound to a key (DPoP, RFC 9449 §6) is
//     worthless without a proof of that key, so it is refused as a bearer
//     token (see DPoP below for accepting it with one).
//   - With Config.RevocationCheck set: the provider's introspection endpoint
//     still calls it active (see below).
//
// # Keys
//
// The issuer's discovery document is fetched on first use (its "issuer" must
// be Config.Issuer, OpenID Connect Discovery §4.3), then its JWKS. The keys are
// cached for the JWKS response's Cache-Control max-age, kept between 1 and 15
// minutes (5 without one). A token naming an unknown key triggers a refetch,
// because Castellan rotates keys; at most one fetch starts per 10 seconds, so a
// flood of tokens with made-up key ids cannot turn into a flood of requests to
// the provider. When the provider does not answer, cached keys stay in use (for
// up to 6 hours past their refresh time) while refetches are retried in the
// background, so a brief outage of the provider is not an outage of the API.
// Until keys were fetched once, or after that window, tokens cannot be checked
// and Verify returns ErrUnavailable (Require answers 503).
//
// # Revocation
//
// A JWT access token stays valid until it expires, even after the person signs
// out or the grant is revoked: the API cannot tell by looking at it. Setting
// Config.RevocationCheck makes the verifier also ask the provider's
// introspection endpoint (RFC 7662) about every token that passed the local
// checks, with a short cache. That makes sign-out visible at the API at once,
// at the cost of a request to the provider per token and cache period, and of
// the API depending on the provider being up (a failed check is a refusal:
// Verify returns ErrUnavailable). Without it, keep access tokens short-lived.
//
// # DPoP
//
// With Config.DPoP set, Require also accepts DPoP-bound tokens (RFC 9449):
// "Authorization: DPoP <token>" with a "DPoP" header holding a proof. On top
// of every check above (except the one on "cnf"), the token's cnf.jkt must be
// the RFC 7638 thumbprint of the proof's key, and the proof must be a
// dpop+jwt signed with an allowed asymmetric algorithm by its public "jwk",
// for this request's method and URL (DPoP.BaseURL and the path), issued
// within DPoP.MaxAge, naming the token in "ath", and not seen before. Seen
// proofs are kept in DPoP.Replay: in this process's memory by default, which
// is right for a single instance only; give several instances a shared cache.
// A stolen DPoP-bound token is useless without the private key: sent as a
// bearer token, or with a proof by another key, it is refused.
//
// # Errors
//
// Require answers as RFC 6750 §3 says: 401 with a bare
// `WWW-Authenticate: Bearer realm="…"` when the request carries no token, 400
// invalid_request for a malformed Authorization header or a token anywhere but
// the Authorization header, 401 invalid_token for a token that fails a check,
// and 403 insufficient_scope, naming the scopes needed, for a token without
// them. Verify returns errors that match ErrInvalidToken (errors.Is), a
// *TokenExpiredError for an expired one, or ErrUnavailable.
package resource
