package bff

import "context"

// Tokens returns the access and refresh tokens held by the session whose
// cookie value is cookie, so tests can ask the provider about them.
func (g *Gateway) Tokens(ctx context.Context, cookie string) (access, refresh string, err error) {
	s, err := g.loadSessionByHash(ctx, hashID(cookie), false)
	if err != nil {
		return "", "", err
	}
	return s.tok.AccessToken, s.tok.RefreshToken, nil
}
