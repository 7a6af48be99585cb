package token

import (
	"context"

	"github.com/castellan-auth/castellan/internal/grant"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/storage"
)

// authorizationCode is grant_type=authorization_code (RFC 6749 §4.1.3, RFC 7636 §4.5).
type authorizationCode struct{}

func (authorizationCode) handle(ctx context.Context, e *Endpoint, req *request) (*Response, error) {
	code := req.form["code"]
	if code == "" {
		return nil, &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "code required"}
	}
	c := req.client
	is, err := e.Grants.RedeemCode(ctx, grant.Redemption{
		Client:       c,
		Code:         code,
		RedirectURI:  req.form["redirect_uri"],
		Verifier:     req.form["code_verifier"],
		DPoPJKT:      req.jkt,
		Refresh:      func(scopes []string) bool { return issuesRefresh(c, scopes) },
		SessionBound: func(scopes []string) bool { return sessionBound(c, scopes) },
	})
	if err != nil {
		return nil, err
	}
	return e.respond(ctx, c, is, is.Nonce, req.jkt)
}

// issuesRefresh says whether a grant gets a refresh token: the client must be
// allowed the refresh_token grant, and an OpenID request must ask for
// offline_access (OIDC Core §11), which the authorization endpoint only keeps
// when consent covers it or the client is first-party (skip_consent).
func issuesRefresh(c storage.Client, scopes []string) bool {
	if !oauth.Contains(c.GrantTypes, oauth.GrantRefreshToken) {
		return false
	}
	if oauth.Contains(scopes, oauth.ScopeOpenID) {
		return oauth.Contains(scopes, oauth.ScopeOfflineAccess)
	}
	return true
}

// sessionBound says whether a grant ends with the SSO session, so that
// signing out (or the session expiring) ends every renewal. Only an offline
// grant outlives it: a confidential client that asked for offline_access, or a
// public client configured for offline access (offline_refresh). A browser
// app's refresh tokens are bound by default: the person's presence at
// Castellan keeps its meaning.
func sessionBound(c storage.Client, scopes []string) bool {
	if c.Public() {
		return !c.OfflineRefresh
	}
	return !oauth.Contains(scopes, oauth.ScopeOfflineAccess)
}
