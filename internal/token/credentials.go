package token

import (
	"context"
	"time"

	"github.com/castellan-auth/castellan/internal/mint"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/oidc"
)

// clientCredentials is grant_type=client_credentials (RFC 6749 §4.4): the
// client acts for itself. There is no user, no grant record and no refresh
// token; the access token's subject is the client (RFC 9068 §2.2), and it is
// revoked by its own identifier.
//
// Its scopes are the client's own that need no person (oidc.NeedsUser):
// never openid, profile, email, address, phone or offline_access, whether
// asked for or not. Without a scope parameter the token gets all of those
// (RFC 6749 §3.3: the server "MUST either process the request using a
// pre-defined default value or fail"); when the client has none, the default
// is the empty set and the token carries no scope at all (nothing to list in
// the response either, §5.1), which an API can still tell apart by its
// audience and client_id.
type clientCredentials struct{}

func (clientCredentials) handle(ctx context.Context, e *Endpoint, req *request) (*Response, error) {
	c := req.client
	if c.Public() {
		return nil, &oauth.Error{Code: oauth.ErrUnauthorizedClient, Description: "client_credentials needs a confidential client"}
	}
	scopes, err := requestedScopes(req.form)
	if err != nil {
		return nil, err
	}
	allowed := make([]string, 0, len(c.Scopes))
	for _, s := range c.Scopes {
		if !oidc.NeedsUser(s) {
			allowed = append(allowed, s)
		}
	}
	if scopes == nil {
		scopes = allowed
	} else if !oauth.Subset(scopes, allowed) {
		return nil, &oauth.Error{Code: oauth.ErrInvalidScope, Description: "scope not allowed for this client (openid, profile, email, address, phone and offline_access need a user)"}
	}
	now := e.Clock.Now()
	exp := now.Add(e.Grants.Policy().AccessTTL)
	at, _, err := e.Mint.NewAccess(mint.AccessParams{ClientID: c.ID, Subject: c.ID, Scopes: scopes, IssuedAt: now, Expiry: exp,
		JKT: req.jkt, Audience: c.Audience})
	if err != nil {
		return nil, err
	}
	return &Response{AccessToken: at, TokenType: tokenType(req.jkt), ExpiresIn: int64(exp.Sub(now) / time.Second), Scope: oauth.JoinScope(scopes)}, nil
}
