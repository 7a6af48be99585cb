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
		Refresh:      func([]string) bool { return issuesRefresh(c) },
		SessionBound: func(scopes []string) bool { return sessionBound(c, scopes) },
	})
	if err != nil {
		return nil, err
	}
	return e.respond(ctx, c, is, is.Nonce, req.jkt)
}

// issuesRefresh says whether a code redemption starts a refresh-token family:
// for every client allowed the refresh_token grant, with or without
// offline_access. Without it (or for a client that may not have offline
// tokens) the family is bound to the SSO session and dies with it, so a
// refresh token needs no more consent than the sign-in itself: it renews
// only while the person is signed in (OIDC Core §11 asks for consent to
// offline access, which this is not).
func issuesRefresh(c storage.Client) bool {
	return oauth.Contains(c.GrantTypes, oauth.GrantRefreshToken)
}

// sessionBound says whether a grant ends with the SSO session, so that
// signing out (or the session expiring) ends every renewal. Only an offline
// grant outlives it, and only when both sides want it: the request asked for
// offline_access (which the authorization endpoint keeps only with consent or
// for a skip_consent client, OIDC Core §11) and the client may hold offline
// tokens (offlineAllowed). Otherwise offline_access in the scope changes
// nothing: the refresh token is the session-bound one every client gets.
func sessionBound(c storage.Client, scopes []string) bool {
	return !oauth.Contains(scopes, oauth.ScopeOfflineAccess) || !offlineAllowed(c)
}

// offlineAllowed says whether a client may hold refresh tokens that outlive
// the SSO session: a confidential client whose registered scope lists
// offline_access, or a public client registered with offline_refresh. A
// public client's scope is not enough: a refresh token in a browser that
// survives sign-out is a risk its operator must take on purpose.
func offlineAllowed(c storage.Client) bool {
	if c.Public() {
		return c.OfflineRefresh
	}
	return oauth.Contains(c.Scopes, oauth.ScopeOfflineAccess)
}
