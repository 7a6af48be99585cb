package storage

import (
	"strings"
	"time"
)

// User is a person who can sign in.
type User struct {
	ID string
	// Username is kept as entered; uniqueness is case-insensitive (see UsernameKey).
	Username      string
	PasswordHash  string // argon2id PHC string
	Email         string
	EmailVerified bool
	Name          string
	GivenName     string
	FamilyName    string
	Disabled      bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// Declared is what the config file governs of the user: nothing for a
	// user created and kept by other means.
	Declared Declaration
}

// Declaration records which fields of a user the config file governs, so that
// a restart applies the config to those alone and a change made since by other
// means (the admin CLI) stands.
type Declaration struct {
	// Fields are the fields the config governs.
	Fields UserFields
	// PasswordHash is the PHC string the config last set as the password, kept
	// while Fields holds FieldPassword: a sign-in that upgrades the stored hash
	// to new parameters leaves it, so the config's password is still recognised.
	PasswordHash string
}

// UserFields is a set of the fields of a User that the config file declares.
type UserFields uint16

// The fields of a user the config file declares, by their config key.
const (
	// FieldUsername is the case of the username (the name itself is the key).
	FieldUsername UserFields = 1 << iota
	FieldEmail
	FieldEmailVerified
	FieldName
	FieldGivenName
	FieldFamilyName
	FieldDisabled
	FieldPassword

	// AllUserFields is every field the config file can declare.
	AllUserFields = FieldUsername | FieldEmail | FieldEmailVerified | FieldName | FieldGivenName |
		FieldFamilyName | FieldDisabled | FieldPassword
)

// userFieldNames are the config keys of the fields, in bit order.
var userFieldNames = [...]string{"username", "email", "email_verified", "name", "given_name", "family_name", "disabled", "password"}

// Names returns the config keys of the fields in f, in a fixed order.
func (f UserFields) Names() []string {
	var names []string
	for i, n := range userFieldNames {
		if f&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	return names
}

// String is the config keys of the fields joined by ", " ("" when empty).
func (f UserFields) String() string { return strings.Join(f.Names(), ", ") }

// Session is a single sign-on session at Castellan. Its cookie value is never
// stored: IDHash is the SHA-256 of it.
type Session struct {
	IDHash []byte
	// SID is the public session identifier placed in tokens (OIDC "sid" claim).
	// It is unrelated to the cookie value, so a leaked token does not leak the cookie.
	SID      string
	UserID   string
	AuthTime time.Time
	AMR      []string
	// CreatedAt, LastActiveAt and ExpiresAt drive the idle and absolute timeouts.
	CreatedAt    time.Time
	LastActiveAt time.Time
	ExpiresAt    time.Time
}

// Times is the part of the session its timeouts are decided on.
func (s Session) Times() SessionTimes {
	return SessionTimes{LastActiveAt: s.LastActiveAt, ExpiresAt: s.ExpiresAt}
}

// SessionTimes is what AccessState reads of a session: the times its idle
// and absolute timeouts run from.
type SessionTimes struct {
	LastActiveAt time.Time
	ExpiresAt    time.Time
}

// LogoutNotice is a back-channel logout token owed to a client: the session
// SID of UserID ended and ClientID received tokens in it.
type LogoutNotice struct {
	SID, ClientID, UserID string
	CreatedAt             time.Time
	// Attempts is how many deliveries failed so far; DueAt is when the next
	// may start (zero: at once).
	Attempts int
	DueAt    time.Time
}

// Client is a registered OAuth client. Field names follow RFC 7591.
type Client struct {
	ID string
	// SecretDigest is the keyed digest of the client secret; nil for public clients.
	SecretDigest                      []byte
	Name                              string
	TokenEndpointAuthMethod           string
	RedirectURIs                      []string
	PostLogoutRedirectURIs            []string
	AllowedOrigins                    []string
	GrantTypes                        []string
	ResponseTypes                     []string
	Scopes                            []string
	SkipConsent                       bool
	RequirePKCE                       bool
	DPoPBoundAccessTokens             bool
	IDTokenSignedResponseAlg          string
	BackchannelLogoutURI              string
	BackchannelLogoutSessionRequired  bool
	FrontchannelLogoutURI             string
	FrontchannelLogoutSessionRequired bool
	// OfflineRefresh lets a public client's refresh tokens outlive the SSO
	// session when it asks for offline_access (a confidential client needs
	// offline_access in its Scopes instead).
	OfflineRefresh bool
	// RenewalCountsAsActivity makes silent renewals extend the SSO session's idle timer.
	RenewalCountsAsActivity bool
	// RotateRefreshTokens forces rotation for a confidential client (always on for public ones).
	RotateRefreshTokens                bool
	RequirePushedAuthorizationRequests bool
	JWKS                               string // JSON Web Key Set for private_key_jwt, as JSON
	JWKSURI                            string
	// TokenEndpointAuthSigningAlg, if set, is the only alg of the client's assertions.
	TokenEndpointAuthSigningAlg string
	// Profile is the security profile the client is held to ("" or "fapi2").
	Profile string
	// StrictTokenEndpointAuthMethod refuses a client_secret_basic client's
	// secret in the form, and a client_secret_post client's in Basic.
	StrictTokenEndpointAuthMethod bool
	// Audience is the "aud" of the client's access tokens; empty: the
	// provider's default.
	Audience  []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Public reports whether the client has no credentials of its own.
func (c Client) Public() bool { return c.TokenEndpointAuthMethod == "none" }

// Consent remembers the scopes a user granted to a client.
type Consent struct {
	UserID    string
	ClientID  string
	Scopes    []string
	GrantedAt time.Time
}

// PendingRequest is an authorization request waiting for the person to sign in or
// consent. It is bound to the browser that started it and consumed once.
type PendingRequest struct {
	IDHash      []byte
	BrowserHash []byte
	ClientID    string
	// Request is the validated authorization request, encoded by its owner.
	Request   []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	// AddressHash names the client address the request came from (a digest
	// its owner derives): requests are counted per address.
	AddressHash []byte
}

// PendingLimits bound the pending requests kept: anyone can make the
// authorization endpoint create one, so the table must not grow without end.
// Zero means no limit.
type PendingLimits struct {
	// PerAddress is the most requests one AddressHash may hold.
	PerAddress int
	// Total is the most requests held in all.
	Total int
}

// PendingUsage is what the pending requests take: rows, and the bytes of
// their values.
type PendingUsage struct {
	Rows  int64
	Bytes int64
}

// AuthCode is an issued authorization code; only its hash is stored.
type AuthCode struct {
	CodeHash            []byte
	ClientID            string
	UserID              string
	SID                 string
	RedirectURI         string
	Scopes              []string
	Nonce               string
	CodeChallenge       string
	CodeChallengeMethod string
	AuthTime            time.Time
	AMR                 []string
	// GrantID names the grant the redemption creates, so that a second use can
	// revoke what the first one issued (RFC 6749 §4.1.2).
	GrantID   string
	DPoPJKT   string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until redeemed
}

// Grant is what every token names: the consent of one user to one client for some
// scopes, established at one moment. Revoking it makes every access and refresh
// token issued from it inactive. For refresh tokens it is the "family".
type Grant struct {
	ID       string
	ClientID string
	UserID   string
	// SID is the SSO session the grant was made in (for the "sid" claim).
	SID string
	// SessionBound makes the grant end with that session (sign-out or expiry);
	// offline grants outlive it.
	SessionBound bool
	Scopes       []string
	AuthTime     time.Time
	AMR          []string
	// DPoPJKT is the thumbprint of the DPoP key the grant's refresh tokens
	// are bound to (public clients that used DPoP; RFC 9449 §5), or "".
	DPoPJKT   string
	CreatedAt time.Time
	// ExpiresAt is when the last token issued from the grant stops being valid:
	// the refresh family's absolute lifetime, or the access token's expiry when no
	// refresh token was issued. Zero means never (not used by Castellan itself).
	ExpiresAt time.Time
	RevokedAt time.Time // zero while active
}

// Active reports whether the grant is neither revoked nor past its absolute lifetime.
func (g Grant) Active(now time.Time) bool { return g.Status().Active(now) }

// Status is the part of the grant that decides whether its access tokens are
// active (Grants.AccessState).
func (g Grant) Status() GrantStatus {
	return GrantStatus{SessionBound: g.SessionBound, ExpiresAt: g.ExpiresAt, RevokedAt: g.RevokedAt}
}

// GrantStatus is what AccessState reads of a grant: no more than the
// decision needs, since introspection and userinfo read it on every call.
type GrantStatus struct {
	SessionBound bool
	ExpiresAt    time.Time // zero means never
	RevokedAt    time.Time // zero while active
}

// Active reports whether the grant is neither revoked nor past its absolute lifetime.
func (g GrantStatus) Active(now time.Time) bool {
	return g.RevokedAt.IsZero() && (g.ExpiresAt.IsZero() || now.Before(g.ExpiresAt))
}

// RefreshToken is one member of a grant's refresh-token family.
type RefreshToken struct {
	Hash    []byte
	GrantID string
	// Generation counts rotations within the family, starting at 0.
	Generation int
	CreatedAt  time.Time
	ExpiresAt  time.Time // idle lifetime
	UsedAt     time.Time // zero until rotated
	ChildHash  []byte    // set when rotated
}

// SigningKey is a JOSE signing key, stored sealed with the master key.
type SigningKey struct {
	KID       string
	Algorithm string
	Sealed    []byte
	CreatedAt time.Time
	// ActivatesAt is when nodes may start signing with it; until then it is only
	// published, so every node serves it in JWKS before any token names it.
	ActivatesAt time.Time
	// RetiresAt is when signing stops (zero: not scheduled).
	RetiresAt time.Time
	// ExpiresAt is when the key leaves JWKS (zero: not scheduled).
	ExpiresAt time.Time
}

// ThrottleState counts failed attempts for one key (an account or an address).
type ThrottleState struct {
	Key           string
	Failures      int
	LastFailureAt time.Time
}
