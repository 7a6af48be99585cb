// Package grant is the domain of what a person granted a client: authorization
// codes (single use, bound to client, redirect URI and PKCE challenge), the
// grants they turn into, refresh-token families with rotation, reuse detection
// and a grace window, and the revocation that reaches JWT access tokens through
// the grant they name.
package grant

import (
	"context"
	"encoding/base64"
	"errors"
	"time"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/oauth"
	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/storage"
)

// Store is what the grant domain needs from storage.
type Store interface {
	storage.AuthCodes
	storage.Grants
	storage.ReplayCache
}

// Sessions tells whether an SSO session is alive (session.Manager).
type Sessions interface {
	Alive(ctx context.Context, sid string) (bool, error)
	// Live applies the same rules as Alive to a session already read.
	Live(t storage.SessionTimes, now time.Time) bool
}

// Policy sets lifetimes.
type Policy struct {
	CodeTTL         time.Duration
	AccessTTL       time.Duration
	RefreshIdle     time.Duration
	RefreshAbsolute time.Duration
	// Grace lets a rotated refresh token presented again within this time get
	// its (already issued) child back instead of counting as reuse.
	Grace time.Duration
}

// Service issues, redeems, rotates and revokes.
type Service struct {
	store    Store
	sessions Sessions
	clock    clock.Clock
	policy   Policy
	derive   seal.MAC
}

// New returns the grant service. Refresh-token children are derived from their
// parent with a key from the master key, so the grace window can hand the very
// same child back while only hashes are stored.
func New(store Store, sessions Sessions, clk clock.Clock, master *seal.Key, p Policy) *Service {
	return &Service{store: store, sessions: sessions, clock: clk, policy: p, derive: master.NewMAC("refresh-child")}
}

// Policy returns the lifetimes.
func (s *Service) Policy() Policy { return s.policy }

func invalidGrant(desc string) error {
	return &oauth.Error{Code: oauth.ErrInvalidGrant, Description: desc}
}

// CodeRequest is what an authorization code is issued for.
type CodeRequest struct {
	ClientID string
	UserID   string
	SID      string
	// RedirectURI is the redirect_uri of the authorization request if it had
	// one ("" if it was omitted and the only registered one was used).
	RedirectURI         string
	Scopes              []string
	Nonce               string
	CodeChallenge       string
	CodeChallengeMethod string
	AuthTime            time.Time
	AMR                 []string
	// DPoPJKT is the dpop_jkt of the authorization request (RFC 9449 §10):
	// the code can only be redeemed with a proof of that key.
	DPoPJKT string
}

// IssueCode stores a new authorization code and returns it.
func (s *Service) IssueCode(ctx context.Context, r CodeRequest) (string, error) {
	now := s.clock.Now()
	code := opaque.New()
	err := s.store.CreateAuthCode(ctx, storage.AuthCode{
		CodeHash: opaque.Hash(code), ClientID: r.ClientID, UserID: r.UserID, SID: r.SID,
		RedirectURI: r.RedirectURI, Scopes: r.Scopes, Nonce: r.Nonce,
		CodeChallenge: r.CodeChallenge, CodeChallengeMethod: r.CodeChallengeMethod,
		AuthTime: r.AuthTime, AMR: r.AMR, GrantID: opaque.ID(), DPoPJKT: r.DPoPJKT,
		CreatedAt: now, ExpiresAt: now.Add(s.policy.CodeTTL),
	})
	return code, err
}

// Issued is the outcome of a redemption or refresh.
type Issued struct {
	Grant storage.Grant
	// Scopes are the scopes of the access token to issue (a refresh may narrow them).
	Scopes []string
	// RefreshToken is the refresh token to return ("" for none).
	RefreshToken string
	// AccessExpiry is when the access token to issue must expire at the latest.
	AccessExpiry time.Time
	// Nonce is the authorization request's nonce (code redemption only).
	Nonce string
	// SID is the session the tokens to issue speak for, their "sid" claim:
	// the grant's session, or "" when an offline grant is refreshed after
	// that session ended. A token that names a session is inactive once the
	// session ends (AccessActive), so a token minted after the end must not
	// name it; one minted before still does and dies with it.
	SID string
	// Refreshed says the grant already existed and was found active (neither
	// revoked nor expired) in the transaction that used the refresh token.
	// Disabling or deleting a user revokes or deletes their grants in one
	// transaction, so the user was allowed to sign in at that moment.
	Refreshed bool
	// User is the grant's user, read in the transaction that redeemed the code
	// or used the refresh token (for a redemption, locked against a concurrent
	// disable until that transaction committed). Nil means it was not read:
	// read it.
	User *storage.User
}

// Redemption is a token request with grant_type=authorization_code.
type Redemption struct {
	Client storage.Client
	Code   string
	// RedirectURI is the redirect_uri parameter of the token request ("" if absent).
	RedirectURI string
	Verifier    string
	// Refresh says whether to start a refresh-token family.
	Refresh func(scopes []string) bool
	// SessionBound says whether a grant of these scopes ends with the SSO session.
	SessionBound func(scopes []string) bool
	// DPoPJKT is the thumbprint of the key of the token request's DPoP proof
	// ("" without one).
	DPoPJKT string
}

// RedeemCode exchanges a code for a grant. Every refusal is invalid_grant
// (RFC 6749 §5.2) and uses the code up; a second use revokes what the first
// issued (§4.1.2).
func (s *Service) RedeemCode(ctx context.Context, r Redemption) (Issued, error) {
	if !opaque.Wellformed(r.Code) {
		return Issued{}, invalidGrant("unknown, expired or used authorization code")
	}
	now := s.clock.Now()
	var out Issued
	_, u, err := s.store.RedeemAuthCode(ctx, opaque.Hash(r.Code), now, func(c storage.AuthCode) (storage.Grant, *storage.RefreshToken, error) {
		switch {
		case c.ClientID != r.Client.ID:
			// A code injected into another client's exchange (RFC 9700 §4.5).
			return storage.Grant{}, nil, invalidGrant("the code was issued to another client")
		case c.RedirectURI != "" && r.RedirectURI != c.RedirectURI,
			c.RedirectURI == "" && r.RedirectURI != "" && !oauth.MatchRedirectURI(r.RedirectURI, r.Client.RedirectURIs):
			// RFC 6749 §4.1.3: identical to the authorization request's redirect_uri.
			return storage.Grant{}, nil, invalidGrant("redirect_uri does not match the authorization request")
		case c.CodeChallenge == "" && r.Verifier != "":
			// RFC 9700 §4.8.2: a verifier for a code issued without a challenge is a downgrade attempt.
			return storage.Grant{}, nil, invalidGrant("code_verifier sent for a code issued without code_challenge")
		case c.CodeChallenge != "" && r.Verifier == "":
			return storage.Grant{}, nil, invalidGrant("code_verifier required")
		case c.CodeChallenge != "" && !oauth.VerifyPKCE(r.Verifier, c.CodeChallenge):
			return storage.Grant{}, nil, invalidGrant("code_verifier does not match the code_challenge")
		case c.DPoPJKT != "" && r.DPoPJKT != c.DPoPJKT:
			// RFC 9449 §10: the code is bound to the key named by dpop_jkt.
			return storage.Grant{}, nil, invalidGrant("the DPoP proof's key is not the one dpop_jkt named")
		}
		g := storage.Grant{
			ID: c.GrantID, ClientID: c.ClientID, UserID: c.UserID, SID: c.SID,
			SessionBound: r.SessionBound != nil && r.SessionBound(c.Scopes) && c.SID != "", Scopes: c.Scopes,
			AuthTime: c.AuthTime, AMR: c.AMR, DPoPJKT: refreshBinding(r.Client, r.DPoPJKT), CreatedAt: now,
			ExpiresAt: now.Add(s.policy.AccessTTL),
		}
		out = Issued{Scopes: c.Scopes, Nonce: c.Nonce, SID: c.SID, AccessExpiry: now.Add(s.policy.AccessTTL)}
		var rt *storage.RefreshToken
		if r.Refresh != nil && r.Refresh(c.Scopes) {
			g.ExpiresAt = now.Add(s.policy.RefreshAbsolute)
			out.RefreshToken = opaque.New()
			rt = &storage.RefreshToken{Hash: opaque.Hash(out.RefreshToken), GrantID: g.ID, CreatedAt: now,
				ExpiresAt: minTime(now.Add(s.policy.RefreshIdle), g.ExpiresAt)}
		}
		out.Grant = g
		return g, rt, nil
	})
	switch {
	case errors.Is(err, storage.ErrAlreadyUsed):
		return Issued{}, invalidGrant("authorization code already used; the tokens it issued are revoked")
	case errors.Is(err, storage.ErrNotFound):
		// Unknown or expired code, or (for a session-bound grant) the session
		// ended since the code was issued.
		return Issued{}, invalidGrant("unknown, expired or used authorization code")
	case err != nil:
		return Issued{}, err
	}
	out.User = &u
	return out, nil
}

// refreshBinding is the key a grant's refresh tokens are bound to: the DPoP
// key of the token request that started it, for a public client. RFC 9449 §5:
// a public client's refresh tokens are bound to its key, since it has no
// other credential; a confidential client's are already bound to it by
// client authentication and are not.
func refreshBinding(c storage.Client, jkt string) string {
	if c.Public() {
		return jkt
	}
	return ""
}

// childOf derives the refresh token that replaces parent.
func (s *Service) childOf(parent string) string {
	return base64.RawURLEncoding.EncodeToString(s.derive.Sum([]byte(parent)))
}

// RefreshRequest is a token request with grant_type=refresh_token.
type RefreshRequest struct {
	Client storage.Client
	Token  string
	// Scopes requested (nil: the grant's). Narrowing is allowed, widening is not (RFC 6749 §6).
	Scopes []string
	// Rotate replaces the token with a new one (always for public clients).
	Rotate bool
	// DPoPJKT is the thumbprint of the key of the request's DPoP proof ("" without one).
	DPoPJKT string
}

// Refresh uses a refresh token.
func (s *Service) Refresh(ctx context.Context, r RefreshRequest) (Issued, error) {
	if !opaque.Wellformed(r.Token) {
		return Issued{}, invalidGrant("unknown, expired or revoked refresh token")
	}
	now := s.clock.Now()
	child := s.childOf(r.Token)
	childHash := opaque.Hash(child)
	out := Issued{RefreshToken: r.Token}
	_, g, u, err := s.store.UseRefreshToken(ctx, opaque.Hash(r.Token), func(rt storage.RefreshToken, g storage.Grant, sess *storage.Session) storage.RefreshDecision {
		reject := func(e error) storage.RefreshDecision {
			return storage.RefreshDecision{Action: storage.RefreshReject, Err: e}
		}
		switch {
		case g.ClientID != r.Client.ID:
			return reject(invalidGrant("the refresh token was issued to another client"))
		case g.DPoPJKT != "" && r.DPoPJKT == "":
			// RFC 9449 §5: a bound refresh token needs a proof of its key.
			return reject(&oauth.Error{Code: oauth.ErrInvalidDPoPProof, Description: "this refresh token is bound to a DPoP key: send a proof"})
		case g.DPoPJKT != "" && r.DPoPJKT != g.DPoPJKT:
			// Checked before reuse detection, so someone who stole a rotated
			// token but not the key cannot revoke the family either.
			return reject(invalidGrant("the refresh token is bound to another DPoP key"))
		case !g.RevokedAt.IsZero():
			return reject(invalidGrant("unknown, expired or revoked refresh token"))
		case !now.Before(g.ExpiresAt) || !now.Before(rt.ExpiresAt):
			return reject(invalidGrant("refresh token expired"))
		case r.Scopes != nil && !oauth.Subset(r.Scopes, g.Scopes):
			return reject(&oauth.Error{Code: oauth.ErrInvalidScope, Description: "a refresh cannot widen the scope of the grant"})
		case g.SessionBound && (sess == nil || !s.sessions.Live(sess.Times(), now)):
			// A family bound to the SSO session dies with it, even if the
			// sweeper has not noticed the session's expiry yet.
			return storage.RefreshDecision{Action: storage.RefreshRevoke, RevokeAt: now,
				Err: invalidGrant("the sign-in session of this grant has ended")}
		}
		out.Scopes = g.Scopes
		if r.Scopes != nil {
			out.Scopes = r.Scopes
		}
		out.SID = g.SID
		if sess == nil || !s.sessions.Live(sess.Times(), now) {
			// Only an offline grant gets here without a live session: what it
			// issues now no longer speaks for the session it was made in.
			out.SID = ""
		}
		if !rt.UsedAt.IsZero() {
			if s.policy.Grace > 0 && now.Sub(rt.UsedAt) <= s.policy.Grace && seal.Equal(rt.ChildHash, childHash) {
				out.RefreshToken = child
				return storage.RefreshDecision{Action: storage.RefreshReturnChild}
			}
			// RFC 9700 §4.14.2: a rotated token used again means one of its
			// holders is not the client; end the whole family.
			return storage.RefreshDecision{Action: storage.RefreshRevoke, RevokeAt: now,
				Err: invalidGrant("refresh token already used; the grant is revoked")}
		}
		expires := minTime(now.Add(s.policy.RefreshIdle), g.ExpiresAt)
		if r.Rotate {
			out.RefreshToken = child
			return storage.RefreshDecision{Action: storage.RefreshRotate, Next: &storage.RefreshToken{
				Hash: childHash, GrantID: g.ID, Generation: rt.Generation + 1, CreatedAt: now, ExpiresAt: expires}}
		}
		return storage.RefreshDecision{Action: storage.RefreshKeep, Next: &storage.RefreshToken{ExpiresAt: expires}}
	})
	if errors.Is(err, storage.ErrNotFound) {
		return Issued{}, invalidGrant("unknown, expired or revoked refresh token")
	}
	if err != nil {
		return Issued{}, err
	}
	out.Grant, out.Refreshed, out.User = g, true, &u
	out.AccessExpiry = minTime(now.Add(s.policy.AccessTTL), g.ExpiresAt)
	return out, nil
}

// TokenRecord is what the server knows about a refresh token, for
// introspection and revocation.
type TokenRecord struct {
	Token  storage.RefreshToken
	Grant  storage.Grant
	Active bool
	// SID is the session the token speaks for: the grant's while that
	// session lives, "" once it ended (only an offline grant's token is
	// still active then), as for the tokens it issues (Issued.SID).
	SID string
}

// LookupRefresh finds a refresh token and says whether it can still be used.
func (s *Service) LookupRefresh(ctx context.Context, token string) (TokenRecord, error) {
	if !opaque.Wellformed(token) {
		return TokenRecord{}, storage.ErrNotFound
	}
	rt, g, err := s.store.GetRefreshToken(ctx, opaque.Hash(token))
	if err != nil {
		return TokenRecord{}, err
	}
	now := s.clock.Now()
	rec := TokenRecord{Token: rt, Grant: g, Active: g.Active(now) && rt.UsedAt.IsZero() && now.Before(rt.ExpiresAt)}
	if !rec.Active || g.SID == "" {
		return rec, nil
	}
	alive, err := s.sessions.Alive(ctx, g.SID)
	if err != nil {
		return TokenRecord{}, err
	}
	if alive {
		rec.SID = g.SID
	}
	// A session-bound family dies with its session.
	rec.Active = alive || !g.SessionBound
	return rec, nil
}

// RevokeGrant ends a grant and every token issued from it.
func (s *Service) RevokeGrant(ctx context.Context, id string) error {
	return s.store.RevokeGrant(ctx, id, s.clock.Now())
}

// revokedAccessKey is the replay-cache key of a revoked access token.
func revokedAccessKey(jti string) string { return "revoked-at:" + jti }

// RevokeAccessToken makes one access token inactive until it expires anyway.
func (s *Service) RevokeAccessToken(ctx context.Context, jti string, expiry time.Time) error {
	err := s.store.RememberDurably(ctx, revokedAccessKey(jti), expiry, s.clock.Now())
	if errors.Is(err, storage.ErrConflict) {
		return nil // already revoked
	}
	return err
}

// AccessActive reports whether an (already verified, unexpired) access token
// is still active: not revoked itself, its grant not revoked or expired, and
// its session alive when the grant is bound to it or the token names one
// (sid). So an access token that names a session that ended is inactive
// whatever its grant: an offline grant outlives the sign-out, but the access
// tokens it issued while the session lived speak for that session and die
// with it (those refreshed afterwards name none, see Issued.SID).
// Everything is read in one storage round trip: introspection and userinfo
// call this on every request.
//
// sid is the token's "sid" claim. Castellan mints a token's sid from its
// grant's session, which is the session AccessState reads, so the two never
// differ; a token whose sid is not its grant's cannot be minted, and is not
// looked for.
func (s *Service) AccessActive(ctx context.Context, jti, grantID, sid string) (bool, error) {
	now := s.clock.Now()
	st, err := s.store.AccessState(ctx, revokedAccessKey(jti), grantID, now)
	switch {
	case err != nil:
		return false, err
	case st.Revoked:
		return false, nil
	case grantID == "":
		return true, nil // no grant (client_credentials): only its own revocation counts
	case st.Grant == nil, !st.Grant.Active(now):
		return false, nil
	case st.Grant.SessionBound, sid != "":
		// A session that is gone (signed out, swept) is not alive either.
		return st.Session != nil && s.sessions.Live(*st.Session, now), nil
	}
	return true, nil
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// IssueImplicit records the grant behind tokens returned from the
// authorization endpoint (implicit grant): no code and no refresh token, but a
// grant all the same, so that sign-out and revocation reach the access token.
func (s *Service) IssueImplicit(ctx context.Context, g storage.Grant) (storage.Grant, error) {
	now := s.clock.Now()
	g.ID, g.CreatedAt, g.ExpiresAt = opaque.ID(), now, now.Add(s.policy.AccessTTL)
	return g, s.store.CreateGrant(ctx, g, nil)
}
