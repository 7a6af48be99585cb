package token

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/castellan-auth/castellan/internal/grant"
	"github.com/castellan-auth/castellan/internal/mint"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/oidc"
	"github.com/castellan-auth/castellan/internal/storage"
)

// respond mints the access token (and the ID token when the grant is an OpenID
// one) for what a grant type established; jkt binds the access token to a
// DPoP key.
func (e *Endpoint) respond(ctx context.Context, c storage.Client, is grant.Issued, nonce, jkt string) (*Response, error) {
	now := e.Clock.Now()
	g := is.Grant
	// The person must still be allowed to sign in. Disabling a user revokes
	// their grants, but a code issued before that (and redeemed within its
	// minute) would start a new grant, not bound to any session, after it: a
	// redemption reads the user with the code (grant.Issued.User, locked until
	// the grant was stored, so a concurrent disable either sees the grant or is
	// seen here), and its grant is revoked if the user is disabled. A refresh
	// found its grant active, which proves it (grant.Issued.Refreshed), and read
	// the user with it for the claims of the ID token. A deleted user's code
	// never gets this far (storage.ErrNotFound). Only an Issued without User
	// (none today) costs a read here.
	var u storage.User
	var err error
	switch {
	case is.User != nil:
		u = *is.User
	case !is.Refreshed || oauth.Contains(g.Scopes, oauth.ScopeOpenID) && needsUserClaims(is.Scopes):
		u, err = e.Users.GetUser(ctx, g.UserID)
	}
	if errors.Is(err, storage.ErrNotFound) || err == nil && u.Disabled {
		if err := e.Grants.RevokeGrant(ctx, g.ID); err != nil {
			return nil, err
		}
		return nil, &oauth.Error{Code: oauth.ErrInvalidGrant, Description: "unknown, expired or revoked grant"}
	}
	if err != nil {
		return nil, err
	}
	at, _, err := e.Mint.NewAccess(mint.AccessParams{
		ClientID: c.ID, Subject: g.UserID, Scopes: is.Scopes, GrantID: g.ID, SID: is.SID,
		AuthTime: g.AuthTime, AMR: g.AMR, IssuedAt: now, Expiry: is.AccessExpiry, JKT: jkt, Audience: c.Audience,
	})
	if err != nil {
		return nil, err
	}
	resp := &Response{
		AccessToken: at, TokenType: tokenType(jkt), ExpiresIn: int64(is.AccessExpiry.Sub(now).Seconds()),
		RefreshToken: is.RefreshToken, Scope: oauth.JoinScope(is.Scopes),
	}
	if oauth.Contains(g.Scopes, oauth.ScopeOpenID) {
		alg := oidc.IDTokenAlgorithm(c, e.Algorithms)
		resp.IDToken, err = e.Mint.NewID(alg, mint.IDParams{
			ClientID: c.ID, Subject: g.UserID, SID: is.SID, Nonce: nonce, AuthTime: g.AuthTime,
			AMR: g.AMR, ACR: oidc.ACR, IssuedAt: now, Expiry: now.Add(e.IDTokenTTL),
			AccessToken: at, User: oidc.UserClaims(u, is.Scopes),
		})
		if err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// tokenType is "DPoP" for a token bound to a key (RFC 9449 §5), else "Bearer".
func tokenType(jkt string) string {
	if jkt != "" {
		return "DPoP"
	}
	return "Bearer"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// needsUserClaims says whether an ID token for scopes carries claims from the
// user record (oidc.UserClaims).
func needsUserClaims(scopes []string) bool {
	return oauth.Contains(scopes, oauth.ScopeProfile) || oauth.Contains(scopes, oauth.ScopeEmail)
}
