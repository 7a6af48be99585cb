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
		Refresh:      func(scopes []string) bool { return issuesRefresh(c, scopes) },
		SessionBound: sessionBound(c),
	})
	if err != nil {
		return nil, err
	}
	return e.respond(ctx, c, is, is.Nonce)
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

// sessionBound says whether a client's grants end with the SSO session: by
// default for public clients (a browser app's refresh tokens must not outlive
// the person's sign-in), unless the client is configured for offline access.
func sessionBound(c storage.Client) bool {
	return c.Public() && !c.OfflineRefresh
}
