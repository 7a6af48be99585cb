package oidc

import (
	"github.com/castellan-auth/castellan/internal/mint"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/storage"
)

// Scopes lists the scopes with a meaning to Castellan itself.
var Scopes = []string{oauth.ScopeOpenID, oauth.ScopeProfile, oauth.ScopeEmail, oauth.ScopeOfflineAccess}

// userScopes are the scopes that ask for something of a person: an ID token
// and claims (OIDC Core §3.1.2.1, §5.4) or a refresh token for when the
// person is away (§11).
var userScopes = []string{oauth.ScopeOpenID, oauth.ScopeProfile, oauth.ScopeEmail, "address", "phone", oauth.ScopeOfflineAccess}

// NeedsUser reports whether scope only has a meaning with a signed-in
// person, so that a client acting for itself (client credentials) can
// never be granted it.
func NeedsUser(scope string) bool { return oauth.Contains(userScopes, scope) }

// Claims lists the claims Castellan can release.
var Claims = []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid",
	"name", "given_name", "family_name", "preferred_username", "updated_at", "email", "email_verified"}

// ACR is the authentication context class Castellan reports: single-factor
// password authentication.
const ACR = "1"

// UserClaims releases the standard claims the scopes ask for (OIDC Core §5.4).
func UserClaims(u storage.User, scopes []string) mint.UserClaims {
	var c mint.UserClaims
	if oauth.Contains(scopes, oauth.ScopeProfile) {
		c.Name, c.GivenName, c.FamilyName = u.Name, u.GivenName, u.FamilyName
		c.PreferredUsername = u.Username
		c.UpdatedAt = u.UpdatedAt.Unix()
	}
	if oauth.Contains(scopes, oauth.ScopeEmail) && u.Email != "" {
		c.Email = u.Email
		v := u.EmailVerified
		c.EmailVerified = &v
	}
	return c
}

// IDTokenAlgorithm is the algorithm a client's ID tokens are signed with: its
// registered id_token_signed_response_alg, else RS256 when available (the
// default of OIDC Dynamic Client Registration §2), else the first configured.
func IDTokenAlgorithm(c storage.Client, configured []string) string {
	if c.IDTokenSignedResponseAlg != "" && oauth.Contains(configured, c.IDTokenSignedResponseAlg) {
		return c.IDTokenSignedResponseAlg
	}
	if oauth.Contains(configured, oauth.AlgRS256) {
		return oauth.AlgRS256
	}
	return configured[0]
}
