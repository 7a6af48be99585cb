// Package client is the client registry: it turns declared clients into stored
// ones and keeps client secrets as keyed digests that take microseconds to
// check. (Slow password hashes are for low-entropy human passwords; a client
// secret carries at least 256 bits or 32 characters, so a keyed SHA-256 is as
// strong and keeps client authentication off the CPU profile.)
package client

import (
	"context"
	"crypto/sha256"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/storage"
)

// Secrets computes and checks client-secret digests.
type Secrets struct {
	mac seal.MAC
}

// NewSecrets keys the digests with the master key.
func NewSecrets(master *seal.Key) Secrets { return Secrets{mac: master.NewMAC("client-secret")} }

// Digest is the stored form of a secret: HMAC-SHA256(pepper, SHA-256(secret)).
// Hashing the secret first lets a config give only SHA-256(secret)
// (client_secret_hash) and still be stored keyed.
func (s Secrets) Digest(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return s.DigestOfHash(h[:])
}

// DigestOfHash is Digest for a secret known only by its SHA-256.
func (s Secrets) DigestOfHash(sum []byte) []byte { return s.mac.Sum(sum) }

// Check compares a presented secret with a stored digest in constant time.
func (s Secrets) Check(presented string, digest []byte) bool {
	if len(digest) == 0 {
		return false
	}
	return seal.Equal(s.Digest(presented), digest)
}

// FromConfig builds the stored client for a declared one.
func FromConfig(c config.Client, secrets Secrets, existing *storage.Client, clk clock.Clock) storage.Client {
	now := clk.Now()
	method := c.TokenEndpointAuthMethod
	if method == "" {
		method = oauth.AuthClientSecretBasic
		if c.ClientSecret == "" && c.ClientSecretHash == "" {
			method = oauth.AuthNone
		}
	}
	grants := c.GrantTypes
	if len(grants) == 0 {
		grants = []string{oauth.GrantAuthorizationCode}
	}
	responses := c.ResponseTypes
	if len(responses) == 0 && oauth.Contains(grants, oauth.GrantAuthorizationCode) {
		responses = []string{oauth.ResponseCode}
	}
	scopes, _ := oauth.ParseScope(c.Scope)
	if len(scopes) == 0 {
		scopes = []string{oauth.ScopeOpenID}
	}
	name := c.ClientName
	if name == "" {
		name = c.ClientID
	}
	pkce, par, dpop := c.Requires() // with what its profile turns on
	out := storage.Client{
		ID:                       c.ClientID,
		Name:                     name,
		TokenEndpointAuthMethod:  method,
		RedirectURIs:             c.RedirectURIs,
		PostLogoutRedirectURIs:   c.PostLogoutRedirectURIs,
		AllowedOrigins:           c.AllowedOrigins,
		GrantTypes:               grants,
		ResponseTypes:            responses,
		Scopes:                   scopes,
		SkipConsent:              c.SkipConsent,
		RequirePKCE:              pkce,
		DPoPBoundAccessTokens:    dpop,
		IDTokenSignedResponseAlg: c.IDTokenSignedResponseAlg,
		BackchannelLogoutURI:     c.BackchannelLogoutURI,
		// Castellan always sends sid, so the session is always identifiable.
		BackchannelLogoutSessionRequired:  c.BackchannelLogoutURI != "",
		FrontchannelLogoutURI:             c.FrontchannelLogoutURI,
		FrontchannelLogoutSessionRequired: c.FrontchannelLogoutURI != "",
		OfflineRefresh:                    c.OfflineRefresh,
		RenewalCountsAsActivity:           c.RenewalCountsAsActivity,
		RotateRefreshTokens:               c.RotateRefreshTokens,
		// The declared set is stored as given: config validation parsed it.
		JWKS:                               string(c.JWKS),
		JWKSURI:                            c.JWKSURI,
		TokenEndpointAuthSigningAlg:        c.TokenEndpointAuthSigningAlg,
		RequirePushedAuthorizationRequests: par,
		Profile:                            c.Profile,
		StrictTokenEndpointAuthMethod:      c.StrictTokenEndpointAuthMethod,
		Audience:                           c.Audience,
		CreatedAt:                          now,
		UpdatedAt:                          now,
	}
	if existing != nil {
		out.CreatedAt = existing.CreatedAt
	}
	switch {
	case c.ClientSecret != "":
		out.SecretDigest = secrets.Digest(c.ClientSecret)
	case c.ClientSecretHash != "":
		sum, _ := config.ParseSecretHash(c.ClientSecretHash) // validated with the config
		out.SecretDigest = secrets.DigestOfHash(sum)
	}
	return out
}

// Provision creates or updates every declared client. Clients that are no
// longer declared are left alone: removing one is an explicit admin action.
func Provision(ctx context.Context, store storage.Clients, declared []config.Client, secrets Secrets, clk clock.Clock) error {
	for _, c := range declared {
		var existing *storage.Client
		if cur, err := store.GetClient(ctx, c.ClientID); err == nil {
			existing = &cur
		}
		if err := store.UpsertClient(ctx, FromConfig(c, secrets, existing, clk)); err != nil {
			return err
		}
	}
	return nil
}
