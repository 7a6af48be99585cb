package storage

import (
	"context"
	"time"
)

// Storage is everything Castellan persists. Backends: sqlstore (SQLite, PostgreSQL).
type Storage interface {
	Users
	Sessions
	Clients
	Consents
	PendingRequests
	AuthCodes
	Grants
	SigningKeys
	Throttles
	ReplayCache
	Locker
	BFFSessions
	LogoutNotices
	WriteProbe

	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error
	// DeleteExpired removes records whose lifetime ended before now (codes, pending
	// requests, refresh tokens, replay entries, stale throttle counters). Sessions
	// are ended through DeleteExpiredSessions so that their ending can be announced.
	DeleteExpired(ctx context.Context, now time.Time) (int64, error)
	Close() error
}

// Users stores people who sign in. Their lifecycle (adding, disabling,
// changing passwords, provisioning from the config) belongs to
// identity.Directory; other packages only read users.
type Users interface {
	// CreateUser returns ErrConflict if the username is taken (case-insensitively).
	CreateUser(ctx context.Context, u User) error
	// UpdateUser replaces every field but ID and CreatedAt; ErrConflict on a taken username.
	UpdateUser(ctx context.Context, u User) error
	// ModifyUser reads the user and stores what change makes of it, in one
	// transaction that no other writer of the user interleaves with, so
	// nothing written meanwhile is lost. change must do no I/O and may not
	// change ID or CreatedAt; an error from it is returned and nothing is
	// written. What it returns is stored with UpdatedAt set to now, unless it
	// equals what was read: then nothing is written and UpdatedAt stays. A
	// change that leaves the user disabled also ends their sessions, revokes
	// their grants and queues the logout notices, as DisableUser does, in the
	// same transaction. It returns the user as stored and the sessions that
	// ended; ErrNotFound if there is no such user.
	ModifyUser(ctx context.Context, id string, now time.Time, change func(User) (User, error)) (User, []Session, error)
	GetUser(ctx context.Context, id string) (User, error)
	// GetUserByUsername matches case-insensitively.
	GetUserByUsername(ctx context.Context, username string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// DeleteUser removes the user with their sessions, consents and grants, and
	// returns the sessions that ended (their logout notices queued, see
	// LogoutNotices).
	DeleteUser(ctx context.Context, id string, now time.Time) ([]Session, error)
	// DisableUser marks the user disabled, ends their sessions and revokes their
	// grants in one transaction, returning the sessions that ended (their logout
	// notices queued). Declared is left as it is.
	DisableUser(ctx context.Context, id string, now time.Time) ([]Session, error)
	// EnableUser clears Disabled; Declared is left as it is.
	EnableUser(ctx context.Context, id string, now time.Time) error
}

// Sessions stores SSO sessions.
type Sessions interface {
	CreateSession(ctx context.Context, s Session) error
	// GetSession reads exactly one row by the hash of the cookie value.
	GetSession(ctx context.Context, idHash []byte) (Session, error)
	// GetSessionAndUser is GetSession with the session's user, in one read.
	GetSessionAndUser(ctx context.Context, idHash []byte) (Session, User, error)
	GetSessionBySID(ctx context.Context, sid string) (Session, error)
	// TouchSession records activity for the idle timeout.
	TouchSession(ctx context.Context, idHash []byte, at time.Time) error
	// DeleteSession ends the session, revokes the grants bound to it and queues
	// its logout notices in one transaction; it returns the session that ended.
	DeleteSession(ctx context.Context, idHash []byte, now time.Time) (Session, error)
	// DeleteExpiredSessions ends (as DeleteSession does) at most limit sessions
	// whose LastActiveAt is not after idleAt (idle timeout reached) or whose
	// ExpiresAt is not after now (absolute timeout reached).
	DeleteExpiredSessions(ctx context.Context, idleAt, now time.Time, limit int) ([]Session, error)
	ListSessionsByUser(ctx context.Context, userID string) ([]Session, error)
}

// LogoutNotices holds the back-channel logout tokens owed to clients for
// sessions that ended (OIDC Back-Channel Logout 1.0). Every call that ends
// sessions (DeleteSession, DeleteExpiredSessions, DisableUser, DeleteUser)
// queues, in its own transaction, one notice per client holding a grant from
// the session, due at once: a notice outlives a crash or restart, and
// sessions ended by another process are announced by whichever server runs.
type LogoutNotices interface {
	// ClaimLogoutNotices returns at most limit notices due at now, oldest due
	// first, and makes each due again only at leaseUntil: until then no other
	// caller (or node) gets it, and if the claimer dies it comes back.
	ClaimLogoutNotices(ctx context.Context, now, leaseUntil time.Time, limit int) ([]LogoutNotice, error)
	// RetryLogoutNotice records a failed attempt: the attempts so far and when
	// the next may start. ErrNotFound if the notice is gone.
	RetryLogoutNotice(ctx context.Context, sid, clientID string, attempts int, dueAt time.Time) error
	// DeleteLogoutNotice removes a notice that was delivered or given up;
	// removing one that is gone is not an error.
	DeleteLogoutNotice(ctx context.Context, sid, clientID string) error
	// CountLogoutNotices counts the notices waiting, on every node, in one
	// read (for the metrics).
	CountLogoutNotices(ctx context.Context) (LogoutNoticeCounts, error)
}

// LogoutNoticeCounts is what CountLogoutNotices reads.
type LogoutNoticeCounts struct {
	// Pending is every notice not yet delivered or given up.
	Pending int64
	// Failing is those of them whose delivery failed at least once: their
	// receiver is down or refuses connections.
	Failing int64
}

// Clients stores registered OAuth clients.
type Clients interface {
	// UpsertClient creates the client or replaces every field but CreatedAt.
	UpsertClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, id string) (Client, error)
	ListClients(ctx context.Context) ([]Client, error)
	DeleteClient(ctx context.Context, id string) error
}

// Consents remembers what users granted to clients.
type Consents interface {
	GetConsent(ctx context.Context, userID, clientID string) (Consent, error)
	// SaveConsent replaces the stored scopes for the user and client.
	SaveConsent(ctx context.Context, c Consent) error
	DeleteConsent(ctx context.Context, userID, clientID string) error
}

// PendingRequests keeps authorization requests across the sign-in and consent pages.
type PendingRequests interface {
	// CreatePendingRequest stores p unless the requests held for
	// p.AddressHash, or those held in all, already reach limits: it then
	// stores nothing and returns a *FullError (ErrAddressFull, ErrFull).
	// Expired requests count until they are deleted, so the limits bound what
	// is on disk; when one is reached, the expired requests in its way are
	// deleted first. Counting and inserting are one atomic step, on every
	// node: no number of concurrent calls stores more than limits allow.
	// p.CreatedAt is the time the expiry is judged at.
	CreatePendingRequest(ctx context.Context, p PendingRequest, limits PendingLimits) error
	// GetPendingRequest returns ErrNotFound for unknown or expired requests.
	GetPendingRequest(ctx context.Context, idHash []byte, now time.Time) (PendingRequest, error)
	// ConsumePendingRequest deletes and returns the request atomically; of two
	// concurrent calls exactly one succeeds.
	ConsumePendingRequest(ctx context.Context, idHash []byte, now time.Time) (PendingRequest, error)
	// PendingRequestUsage reports the rows and bytes stored, expired requests
	// not yet deleted included.
	PendingRequestUsage(ctx context.Context) (PendingUsage, error)
}

// RedeemFunc validates a code being redeemed and returns the grant (and optional
// first refresh token) to create. It runs inside the redeeming transaction and
// must do no I/O. An error it returns is passed through; the code stays used.
type RedeemFunc func(AuthCode) (Grant, *RefreshToken, error)

// AuthCodes stores authorization codes.
type AuthCodes interface {
	CreateAuthCode(ctx context.Context, c AuthCode) error
	// RedeemAuthCode marks the code used and stores what issue returns, atomically.
	// A code presented a second time returns ErrAlreadyUsed (with the code) and
	// revokes the grant the first redemption created; an unknown or expired code,
	// or one whose user no longer exists, returns ErrNotFound. It also returns the
	// code's user, read in the same transaction as the code and kept from changing
	// until it commits (for the disabled check and the claims of the ID token,
	// without another round trip); the user is meaningful only without error.
	RedeemAuthCode(ctx context.Context, codeHash []byte, now time.Time, issue RedeemFunc) (AuthCode, User, error)
}

// RefreshAction is what the grant domain decided about a presented refresh token.
type RefreshAction int

const (
	// RefreshReject refuses the token and changes nothing.
	RefreshReject RefreshAction = iota
	// RefreshRotate marks the token used and stores Next as its child.
	RefreshRotate
	// RefreshReturnChild answers with the already stored child (grace window).
	RefreshReturnChild
	// RefreshKeep uses the token again without rotation (confidential clients).
	RefreshKeep
	// RefreshRevoke revokes the whole grant (reuse detected).
	RefreshRevoke
)

// RefreshDecision is returned by a RefreshFunc.
type RefreshDecision struct {
	Action RefreshAction
	// Next is the child for RefreshRotate; for RefreshKeep, a non-nil Next carries
	// the token's new idle expiry in ExpiresAt.
	Next *RefreshToken
	// RevokeAt is the revocation time for RefreshRevoke.
	RevokeAt time.Time
	// Err is returned to the caller for RefreshReject and RefreshRevoke.
	Err error
}

// RefreshFunc decides what to do with a presented refresh token. It is given
// the token, its grant and the SSO session the grant names, read together (the
// session is nil if the grant names none or it no longer exists). It must do no
// I/O, and may be called again if the token changed before its decision was
// applied (see Grants.UseRefreshToken).
type RefreshFunc func(RefreshToken, Grant, *Session) RefreshDecision

// Grants stores grants and their refresh-token families.
type Grants interface {
	// CreateGrant stores a grant and, optionally, its first refresh token. A
	// session-bound grant whose session no longer exists is refused with
	// ErrNotFound (so is RedeemAuthCode issuing one).
	CreateGrant(ctx context.Context, g Grant, rt *RefreshToken) error
	GetGrant(ctx context.Context, id string) (Grant, error)
	// RevokeGrant marks the grant revoked; revoking twice or an unknown grant is not an error.
	RevokeGrant(ctx context.Context, id string, now time.Time) error
	// GetRefreshToken returns the token with its grant.
	GetRefreshToken(ctx context.Context, hash []byte) (RefreshToken, Grant, error)
	// UseRefreshToken reads the token, its grant and the grant's session, asks
	// decide what to do, and applies the decision atomically, only if the token
	// and grant are still as decide saw them: a use that races with another is
	// decided again on what the other left, so decide may be called more than
	// once and only its last answer counts. It returns the token presented, its
	// grant and the grant's user as last read (the user for the claims of a
	// refreshed ID token, without another round trip).
	UseRefreshToken(ctx context.Context, hash []byte, decide RefreshFunc) (RefreshToken, Grant, User, error)
	ListGrantsByUser(ctx context.Context, userID string) ([]Grant, error)
	// AccessState reads, in one round trip, everything that decides whether a
	// JWT access token is still active: whether revokedKey is remembered in
	// the replay cache and not expired at now (the token itself was revoked),
	// the grant called grantID, and the session that grant names. grantID ""
	// (a token without a grant, e.g. client_credentials) reads only the
	// revocation. A missing grant or session is not an error: it is left nil.
	AccessState(ctx context.Context, revokedKey, grantID string, now time.Time) (AccessState, error)
}

// AccessState is what storage knows about a JWT access token (Grants.AccessState).
// It records facts; the grant domain decides what they mean.
type AccessState struct {
	// Revoked says the token's own revocation is remembered.
	Revoked bool
	// Grant is the status of the token's grant; nil without one or when it
	// no longer exists.
	Grant *GrantStatus
	// Session holds the timeouts of the SSO session the grant names; nil if
	// the grant names none or the session no longer exists (signed out,
	// expired and swept).
	Session *SessionTimes
}

// SigningKeys stores JOSE signing keys.
type SigningKeys interface {
	CreateSigningKey(ctx context.Context, k SigningKey) error
	// ScheduleSigningKey stores next and, when retire is not nil, sets the
	// stored RetiresAt and ExpiresAt of the key retire names, in one transaction
	// serialized with every other ScheduleSigningKey (on every node). It stores
	// nothing and returns ErrConflict unless, at now, every other key of next's
	// algorithm has retired (RetiresAt set and not after now) and retire, if
	// given, has no RetiresAt yet; ErrNotFound if retire names no key. So of two
	// nodes rotating at once exactly one succeeds, and an algorithm never has
	// two keys waiting to sign.
	ScheduleSigningKey(ctx context.Context, next SigningKey, retire *SigningKey, now time.Time) error
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// UpdateSigningKey sets the schedule fields (ActivatesAt, RetiresAt, ExpiresAt).
	UpdateSigningKey(ctx context.Context, k SigningKey) error
	DeleteSigningKey(ctx context.Context, kid string) error
}

// Locker takes named locks that let one node at a time do occasional work
// that every node would otherwise start at the same moment (signing-key
// rotation). A lock coordinates; it does not make the work safe on its own: a
// holder whose connection breaks may lose the lock without noticing, so the
// work must still go through atomic calls (as ScheduleSigningKey is).
type Locker interface {
	// TryLock takes the lock called name if nobody holds it, without waiting.
	// ok is false while another holder has it, on this node or another one.
	// unlock releases it and may be called more than once. A lock whose holder
	// dies (process killed, connection lost) is released by the backend.
	TryLock(ctx context.Context, name string) (unlock func(), ok bool, err error)
}

// Throttles counts failed sign-in attempts.
type Throttles interface {
	GetThrottle(ctx context.Context, key string) (ThrottleState, error)
	// AddFailure increments the counter atomically, starting over from one when the
	// last failure was before resetBefore, and returns the new state.
	AddFailure(ctx context.Context, key string, now, resetBefore time.Time) (ThrottleState, error)
	ClearThrottle(ctx context.Context, key string) error
}

// ReplayCache remembers one-time identifiers (jti of client assertions and DPoP
// proofs, revoked access-token ids) until they expire.
type ReplayCache interface {
	// Remember stores key until expiresAt; ErrConflict if it is already remembered
	// and not yet expired at now.
	Remember(ctx context.Context, key string, expiresAt, now time.Time) error
	// RememberDurably is Remember whose entry survives a power loss once it
	// returns (a revoked access token); Remember's may be lost with the last
	// commits before one.
	RememberDurably(ctx context.Context, key string, expiresAt, now time.Time) error
	// Remembered reports whether key is stored and not expired at now.
	Remembered(ctx context.Context, key string, now time.Time) (bool, error)
}
