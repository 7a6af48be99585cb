package token

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/castellan-auth/castellan/internal/mint"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/web"
)

// revoke is RFC 7009. A refresh token ends its whole grant (family), and with
// it every access token issued from that grant; an access token is revoked on
// its own. Tokens that are unknown, already invalid, or belong to another
// client are answered 200 and left alone (§2.2), so the endpoint reveals
// nothing. A storage failure is a 5xx, never a false 200.
func (e *Endpoint) revoke(w http.ResponseWriter, r *http.Request) {
	e.crossOrigin(w, r)
	err := func() error {
		form, err := parseForm(r)
		if err != nil {
			return err
		}
		c, err := e.Auth.Authenticate(r.Context(), r, form)
		if err != nil {
			return err
		}
		if err := e.originAllowed(w, r, c); err != nil {
			return err
		}
		token := form["token"]
		if token == "" {
			return &oauth.Error{Code: oauth.ErrInvalidRequest, Description: "token required"}
		}
		return e.revokeToken(r.Context(), c, token)
	}()
	if err != nil {
		e.writeError(w, r, "revocation", err)
		return
	}
	web.NoStore(w)
	w.WriteHeader(http.StatusOK)
}

func (e *Endpoint) revokeToken(ctx context.Context, c storage.Client, token string) error {
	// The hint only saves a lookup (§2.1); both kinds are tried.
	if opaque.Wellformed(token) {
		rec, err := e.Grants.LookupRefresh(ctx, token)
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return err
		case rec.Grant.ClientID == c.ID:
			return e.Grants.RevokeGrant(ctx, rec.Grant.ID)
		default:
			return nil
		}
	}
	claims, err := e.Mint.ParseAccess(token, e.Clock.Now())
	if errors.Is(err, mint.ErrInvalid) || errors.Is(err, mint.ErrExpired) {
		return nil
	}
	if err != nil || claims.ClientID != c.ID {
		return err
	}
	return e.Grants.RevokeAccessToken(ctx, claims.JTI, time.Unix(claims.Expiry, 0))
}
