package resource

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DefaultRevocationCacheTTL is how long an "active" answer is reused when
// RevocationCheck.CacheTTL is zero.
const DefaultRevocationCacheTTL = 5 * time.Second

// maxRevocationEntries bounds the revocation cache.
const maxRevocationEntries = 10000

// Client authentication methods a RevocationCheck may use at the
// introspection endpoint (RFC 6749 §2.3.1).
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
)

// RevocationCheck configures the online check of tokens at the provider's
// introspection endpoint (RFC 7662), found through discovery.
//
// A JWT access token carries everything needed to accept it, so without this
// check a token stays usable at the API until it expires, even after the
// person signed out or the grant was revoked. With it, such a token is refused
// within CacheTTL. The price: one request to the provider per token per
// CacheTTL, and the API refusing requests (ErrUnavailable, 503) while the
// introspection endpoint cannot be reached, since an unchecked token is not
// accepted. The provider must know the API as a confidential client.
type RevocationCheck struct {
	// ClientID and ClientSecret authenticate the API at the introspection
	// endpoint. Required.
	ClientID     string
	ClientSecret string
	// AuthMethod is how they are sent: AuthClientSecretBasic (the default) or
	// AuthClientSecretPost, as the client is registered at the provider.
	AuthMethod string
	// CacheTTL is how long an "active" answer is reused for the same token:
	// the longest a revoked token may still be accepted. Zero means
	// DefaultRevocationCacheTTL; negative means every request asks. An
	// "inactive" answer is kept until the token expires.
	CacheTTL time.Duration
}

func (rc *RevocationCheck) validate() []string {
	var problems []string
	if rc.ClientID == "" || rc.ClientSecret == "" {
		problems = append(problems, "RevocationCheck needs ClientID and ClientSecret")
	}
	switch rc.AuthMethod {
	case "", AuthClientSecretBasic, AuthClientSecretPost:
	default:
		problems = append(problems, fmt.Sprintf("RevocationCheck.AuthMethod %q: want %s or %s", rc.AuthMethod, AuthClientSecretBasic, AuthClientSecretPost))
	}
	return problems
}

// revocation asks the introspection endpoint and caches the answers by jti.
type revocation struct {
	cfg      RevocationCheck
	client   *http.Client
	now      func() time.Time
	endpoint func(context.Context) (string, error)

	mu    sync.Mutex
	cache map[string]answer
}

type answer struct {
	active bool
	until  time.Time
}

func newRevocation(cfg RevocationCheck, client *http.Client, now func() time.Time, endpoint func(context.Context) (string, error)) *revocation {
	if cfg.AuthMethod == "" {
		cfg.AuthMethod = AuthClientSecretBasic
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultRevocationCacheTTL
	}
	return &revocation{cfg: cfg, client: client, now: now, endpoint: endpoint, cache: map[string]answer{}}
}

// check returns nil if the provider calls token (already verified, with claims
// c) active.
func (rv *revocation) check(ctx context.Context, token string, c *Claims) error {
	now := rv.now()
	rv.mu.Lock()
	a, ok := rv.cache[c.JTI]
	rv.mu.Unlock()
	if !ok || !now.Before(a.until) {
		active, err := rv.introspect(ctx, token)
		if err != nil {
			return unavailable(fmt.Errorf("revocation check: %w", err))
		}
		a = answer{active: active, until: c.Expiry}
		if active {
			if rv.cfg.CacheTTL < 0 {
				a.until = now
			} else if t := now.Add(rv.cfg.CacheTTL); t.Before(a.until) {
				a.until = t
			}
		}
		rv.store(c.JTI, a, now)
	}
	if !a.active {
		return invalid("is no longer active (revoked, or its session ended)")
	}
	return nil
}

func (rv *revocation) store(jti string, a answer, now time.Time) {
	if !now.Before(a.until) {
		return
	}
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if len(rv.cache) >= maxRevocationEntries {
		for k, e := range rv.cache {
			if !now.Before(e.until) {
				delete(rv.cache, k)
			}
		}
		if len(rv.cache) >= maxRevocationEntries {
			clear(rv.cache)
		}
	}
	rv.cache[jti] = a
}

// introspect asks the provider whether token is active (RFC 7662 §2).
func (rv *revocation) introspect(ctx context.Context, token string) (bool, error) {
	endpoint, err := rv.endpoint(ctx)
	if err != nil {
		return false, err
	}
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	if rv.cfg.AuthMethod == AuthClientSecretPost {
		form.Set("client_id", rv.cfg.ClientID)
		form.Set("client_secret", rv.cfg.ClientSecret)
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if rv.cfg.AuthMethod == AuthClientSecretBasic {
		// RFC 6749 §2.3.1: both parts are form-encoded before Base64.
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString(
			[]byte(url.QueryEscape(rv.cfg.ClientID)+":"+url.QueryEscape(rv.cfg.ClientSecret))))
	}
	resp, err := rv.client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxDocument))
		return false, fmt.Errorf("introspection endpoint answered status %d", resp.StatusCode)
	}
	var out struct {
		Active *bool `json:"active"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDocument)).Decode(&out); err != nil {
		return false, fmt.Errorf("introspection response: %w", err)
	}
	if out.Active == nil {
		return false, fmt.Errorf("introspection response has no active member")
	}
	return *out.Active, nil
}
