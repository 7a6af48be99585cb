package token

import (
	"context"

	"github.com/castellan-auth/castellan/internal/grant"
	"github.com/castellan-auth/castellan/internal/oauth"
)

// refreshToken is grant_type=refresh_token (RFC 6749 §6). Public clients'
// tokens rotate on every use (OAuth 2.1 §4.3.1); confidential clients' rotate
// when configured.
type refreshToken struct{}

func (refreshToken) handle(ctx context.Context, e *Endpoint, req *request) (*Response, error) {
	token := req.form["refresh_token"]
	if token == "" {
		return nil, &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "refresh_token required"}
	}
	scopes, err := requestedScopes(req.form)
	if err != nil {
		return nil, err
	}
	c := req.client
	is, err := e.Grants.Refresh(ctx, grant.RefreshRequest{
		Client: c, Token: token, Scopes: scopes, Rotate: c.Public() || c.RotateRefreshTokens, DPoPJKT: req.jkt,
	})
	if err != nil {
		return nil, err
	}
	if e.Activity != nil && is.SID != "" {
		e.Activity.RenewalActivity(ctx, c, is.SID)
	}
	// OIDC Core §12.2: the refreshed ID token has no nonce.
	return e.respond(ctx, c, is, "", req.jkt)
}
