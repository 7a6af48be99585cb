// Package dpopcheck is Castellan's use of DPoP (RFC 9449) at its own
// endpoints: the proof validator of the public dpop package with the replay
// cache in storage (so a proof accepted by one node is refused by every
// other), stateless server nonces under a key derived from the master key (so
// any node accepts any node's nonce), and the request URI as the issuer names
// it (Castellan may sit behind a proxy that changes scheme, host or path).
package dpopcheck

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/castellan-auth/castellan/dpop"
	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/storage"
)

// Config configures a Checker.
type Config struct {
	// Issuer is the provider's public base URL; proofs name endpoints under it.
	Issuer string
	// Algorithms are the accepted proof algorithms (default dpop.DefaultAlgorithms).
	Algorithms []string
	// RequireNonce makes every proof carry a current server nonce (RFC 9449 §8).
	RequireNonce bool
	Store        storage.ReplayCache
	Master       *seal.Key
	Clock        clock.Clock
}

// Checker checks the DPoP proofs sent to Castellan.
type Checker struct {
	v            *dpop.Validator
	base         string // the issuer URL without a trailing slash
	algs         []string
	requireNonce bool
}

// New returns a checker.
func New(cfg Config) (*Checker, error) {
	iss, err := url.Parse(cfg.Issuer)
	if err != nil || iss.Host == "" {
		return nil, errors.New("dpopcheck: issuer is not an absolute URL")
	}
	now := cfg.Clock.Now
	v, err := dpop.New(dpop.Config{
		Algorithms:   cfg.Algorithms,
		Replay:       replayCache{store: cfg.Store, now: now},
		Nonces:       dpop.NewNonces(cfg.Master.Derive("dpop-nonce"), dpop.DefaultNoncePeriod),
		RequireNonce: cfg.RequireNonce,
		Now:          now,
	})
	if err != nil {
		return nil, err
	}
	base := iss.Scheme + "://" + iss.Host + strings.TrimSuffix(iss.EscapedPath(), "/")
	return &Checker{v: v, base: base, algs: v.Algorithms(), requireNonce: cfg.RequireNonce}, nil
}

// Algorithms are the accepted proof algorithms (discovery's
// dpop_signing_alg_values_supported, and the algs of challenges).
func (c *Checker) Algorithms() []string { return append([]string(nil), c.algs...) }

// RequireNonce reports whether proofs must carry a server nonce.
func (c *Checker) RequireNonce() bool { return c.requireNonce }

// Present reports whether r carries a DPoP header.
func Present(r *http.Request) bool { return len(r.Header.Values("DPoP")) > 0 }

// Check validates the DPoP proof of r, naming accessToken when it is a
// request to a resource (userinfo), and uses up its jti: Verify, then Use.
// It returns the proof, or an *oauth.Error with invalid_dpop_proof or
// use_dpop_nonce (status 400, as the token endpoint answers; resources turn
// it into a 401 challenge), or a storage error. The caller checks Present
// first: no header is not a proof.
func (c *Checker) Check(ctx context.Context, r *http.Request, accessToken string) (*dpop.Proof, error) {
	p, err := c.Verify(r, accessToken)
	if err != nil {
		return nil, err
	}
	if err := c.Use(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

// Verify validates the DPoP proof of r as Check does but writes nothing:
// its jti is remembered only by Use. An endpoint that a stranger can call
// verifies first and uses the proof once the request is authenticated (the
// client, the grant, the access token and its key), so that proofs signed
// with keys of the stranger's own never reach storage.
func (c *Checker) Verify(r *http.Request, accessToken string) (*dpop.Proof, error) {
	p, err := c.v.Verify(r.Header.Values("DPoP"), dpop.Request{
		// Handlers see paths with the issuer's path prefix stripped.
		Method: r.Method, URL: c.base + r.URL.EscapedPath(), AccessToken: accessToken,
	})
	return p, oauthError(err)
}

// Use remembers the jti of a proof Verify accepted, on every node; a proof
// used before is an *oauth.Error (invalid_dpop_proof), any other error a
// storage one.
func (c *Checker) Use(ctx context.Context, p *dpop.Proof) error {
	return oauthError(c.v.Use(ctx, p))
}

// Refuse refuses a proof Verify accepted that was used before, without using
// it up: an endpoint that may remember a proof only after acting (see Use)
// calls it before acting, so a replayed request changes nothing.
func (c *Checker) Refuse(ctx context.Context, p *dpop.Proof) error {
	used, err := c.v.Used(ctx, p)
	if err != nil {
		return err
	}
	if used {
		return &oauth.Error{Code: oauth.ErrInvalidDPoPProof, Description: "the proof was already used (jti)"}
	}
	return nil
}

// oauthError turns a refused proof into its protocol error.
func oauthError(err error) error {
	var de *dpop.Error
	if errors.As(err, &de) {
		return &oauth.Error{Code: de.Code, Description: de.Reason}
	}
	return err
}

// SetNonce writes a fresh server nonce in the DPoP-Nonce header (RFC 9449
// §8.2), so a client always holds a current one.
func (c *Checker) SetNonce(w http.ResponseWriter) {
	w.Header().Set("DPoP-Nonce", c.v.Nonce())
}

// replayCache keeps proofs' jti in storage, shared by every node.
type replayCache struct {
	store storage.ReplayCache
	now   func() time.Time
}

func (rc replayCache) Used(ctx context.Context, key string) (bool, error) {
	return rc.store.Remembered(ctx, key, rc.now())
}

func (rc replayCache) Use(ctx context.Context, key string, expiresAt time.Time) error {
	err := rc.store.Remember(ctx, key, expiresAt, rc.now())
	if errors.Is(err, storage.ErrConflict) {
		return dpop.ErrReplayed
	}
	return err
}
