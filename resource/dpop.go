package resource

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/castellan-auth/castellan/dpop"
)

// DPoP makes a Verifier accept DPoP-bound access tokens (RFC 9449): Require
// then takes "Authorization: DPoP <token>" with a DPoP proof header, made
// with the key whose thumbprint is the token's cnf.jkt, for this request
// (htm, htu), recently (iat), naming the token (ath), and never seen before
// (jti, in Replay). Bearer tokens keep working unless Required is set; a
// DPoP-bound token is never accepted as a bearer token.
type DPoP struct {
	// Required refuses bearer tokens: every request needs a DPoP-bound token
	// and its proof.
	Required bool

	// Algorithms are the proof algorithms accepted (default
	// dpop.DefaultAlgorithms: ES256, EdDSA, RS256, PS256); only asymmetric
	// ones may be listed.
	Algorithms []string

	// MaxAge is how old a proof may be (default 5 minutes), Leeway how far in
	// the future its iat may be (default 1 minute).
	MaxAge, Leeway time.Duration

	// Replay remembers the proofs accepted, so none is accepted twice.
	// The default is a dpop.MemoryReplayCache in this process: enough for one
	// instance of the API. An API running several instances must share one
	// (e.g. in its database or Redis), or a proof captured on the way to one
	// instance could be replayed once to each of the others.
	Replay dpop.ReplayCache

	// Nonces, when set, lets the API hand out server nonces (DPoP-Nonce) and
	// RequireNonce refuses proofs without a current one (use_dpop_nonce).
	Nonces       *dpop.Nonces
	RequireNonce bool

	// BaseURL is this API's external URL as clients address it (scheme,
	// host, and any path prefix a proxy strips), e.g.
	// "https://api.example.com". A proof's htu must be BaseURL followed by
	// the request path. Empty: taken from the request (https when it came
	// over TLS, else http, and its Host) — wrong behind a TLS-terminating
	// proxy, so set it there.
	BaseURL string
}

// dpopVerifier is a Verifier's DPoP part.
type dpopVerifier struct {
	required bool
	proofs   *dpop.Validator
	base     string
}

func newDPoP(d *DPoP, now func() time.Time) (*dpopVerifier, []string) {
	replay := d.Replay
	if replay == nil {
		replay = &dpop.MemoryReplayCache{Now: now}
	}
	var problems []string
	if d.BaseURL != "" && !httpURL(d.BaseURL) {
		problems = append(problems, "DPoP.BaseURL is not an absolute http(s) URL")
	}
	v, err := dpop.New(dpop.Config{
		Algorithms: d.Algorithms, MaxAge: d.MaxAge, Leeway: d.Leeway, Replay: replay,
		Nonces: d.Nonces, RequireNonce: d.RequireNonce, Now: now,
	})
	if err != nil {
		problems = append(problems, strings.TrimPrefix(err.Error(), "dpop: "))
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return &dpopVerifier{required: d.Required, proofs: v, base: strings.TrimSuffix(d.BaseURL, "/")}, nil
}

// requestURL is the URL a proof for r must name.
func (d *dpopVerifier) requestURL(r *http.Request) string {
	if d.base != "" {
		return d.base + r.URL.EscapedPath()
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath()
}

// ProofError is a refused DPoP proof. Code is "invalid_dpop_proof" or
// "use_dpop_nonce" (RFC 9449 §7.1, §9). Nothing is said about the token
// itself, so it does not match ErrInvalidToken; Require answers it with 401
// and a DPoP challenge naming Code.
type ProofError struct {
	Code   string
	Reason string
	err    error
}

func (e *ProofError) Error() string { return "resource: DPoP proof refused: " + e.Reason }
func (e *ProofError) Unwrap() error { return e.err }

// VerifyDPoP checks a token presented with "Authorization: DPoP" and the
// DPoP header values of its request: every check of Verify, except that the
// token must be bound to a key (cnf.jkt), and a proof of that key for method
// and requestURL (the absolute URL the client sent the request to). Errors
// match ErrInvalidToken or ErrUnavailable as Verify's do, or are a
// *ProofError. It fails when the Verifier has no Config.DPoP.
func (v *Verifier) VerifyDPoP(ctx context.Context, token string, proofs []string, method, requestURL string) (*Claims, error) {
	if v.dpop == nil {
		return nil, invalid("was sent with the DPoP scheme, which this API does not accept")
	}
	c, _, err := v.verify(ctx, token)
	if err != nil {
		return nil, err
	}
	if c.JKT == "" {
		return nil, invalid("is not bound to a DPoP key")
	}
	if len(proofs) == 0 {
		return nil, &ProofError{Code: dpop.CodeInvalidProof, Reason: "a DPoP proof is required"}
	}
	p, err := v.dpop.proofs.Check(ctx, proofs, dpop.Request{Method: method, URL: requestURL, AccessToken: token})
	var de *dpop.Error
	if errors.As(err, &de) {
		return nil, &ProofError{Code: de.Code, Reason: de.Reason, err: err}
	}
	if err != nil {
		return nil, unavailable(err)
	}
	if p.JKT != c.JKT {
		// RFC 9449 §7.1: the proof must be made with the token's key.
		return nil, &ProofError{Code: dpop.CodeInvalidProof, Reason: "the proof's key is not the access token's"}
	}
	if v.revocation != nil {
		if err := v.revocation.check(ctx, token, c); err != nil {
			return nil, err
		}
	}
	return c, nil
}
