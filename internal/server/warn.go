package server

import (
	"context"
	"time"

	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/storage"
)

// warnRotationWithoutGrace warns when tokens.refresh_token_grace is 0 while
// some client's refresh tokens rotate: then a rotated token presented again
// — a retry after a lost response, two tabs, two BFF nodes refreshing one
// session at once — counts as reuse, revokes the family and signs the
// person out. Public clients always rotate; confidential ones with
// rotate_refresh_tokens.
func warnRotationWithoutGrace(ctx context.Context, store storage.Clients, grace time.Duration, warn func(msg string, args ...any)) error {
	if grace > 0 {
		return nil
	}
	clients, err := store.ListClients(ctx)
	if err != nil {
		return err
	}
	var rotating []string
	for _, c := range clients {
		if oauth.Contains(c.GrantTypes, oauth.GrantRefreshToken) && (c.Public() || c.RotateRefreshTokens) {
			rotating = append(rotating, c.ID)
		}
	}
	if len(rotating) > 0 {
		warn("tokens.refresh_token_grace is 0s and these clients' refresh tokens rotate: a refresh retried after a lost response, "+
			"or two gateway nodes or tabs refreshing at once, revokes the family and signs the person out; set a few seconds",
			"client_ids", rotating)
	}
	return nil
}
