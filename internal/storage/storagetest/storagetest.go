// Package storagetest is the one conformance suite every storage backend runs,
// so that SQLite and PostgreSQL (and any later backend) keep exactly the
// semantics that storage.Storage documents: named errors, cascades, atomic
// single-use operations and what survives a rolled-back transaction.
//
// Tests use a fixed clock (base time t0) and never sleep.
package storagetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

// Run runs the suite. newDB must create a fresh, empty database for the test
// and return a function that opens a migrated store on it, registering the
// store's cleanup with t.Cleanup. Most tests open one store; those standing for
// several nodes open one per node.
func Run(t *testing.T, newDB func(t *testing.T) (open func() storage.Storage)) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newDB(t)()) })
	}
	for _, c := range nodeCases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newDB(t)) })
	}
}

// cases lists every subtest; names read "area/behaviour".
var cases = []struct {
	name string
	fn   func(*testing.T, storage.Storage)
}{
	{"ping", testPing},
	{"probe/write", testProbeWrite},

	{"users/create-get-update", testUsersCreateGetUpdate},
	{"users/unknown-not-found", testUsersUnknown},
	{"users/username-case-insensitive-unique", testUsersUsernameUnique},
	{"users/rename-moves-username", testUsersRename},
	{"users/list", testUsersList},
	{"users/delete-cascades", testUsersDeleteCascades},
	{"users/disable-ends-sessions-revokes-grants", testUsersDisable},
	{"users/modify", testUsersModify},
	{"users/modify-that-disables-ends-sessions", testUsersModifyDisables},
	{"users/concurrent-modify-loses-nothing", testUsersModifyConcurrent},

	{"sessions/create-get", testSessionsCreateGet},
	{"sessions/unique-and-foreign-keys", testSessionsConstraints},
	{"sessions/touch-never-moves-back", testSessionsTouch},
	{"sessions/list-by-user", testSessionsListByUser},
	{"sessions/delete-revokes-bound-grants", testSessionsDelete},
	{"sessions/delete-expired-revokes-bound-grants", testSessionsDeleteExpired},

	{"clients/upsert-get-replace", testClientsUpsert},
	{"clients/public-client-nil-secret", testClientsPublicSecret},
	{"clients/list-delete", testClientsListDelete},

	{"consents/save-get-replace-delete", testConsents},

	{"pending/create-get-consume", testPendingCreateGetConsume},
	{"pending/expired-not-found", testPendingExpired},
	{"pending/concurrent-consume-one-winner", testPendingConcurrentConsume},
	{"pending/limit-per-address", testPendingLimitPerAddress},
	{"pending/limit-total", testPendingLimitTotal},
	{"pending/limit-freed-by-consume-and-sweep", testPendingLimitFreedByDeletes},
	{"pending/limit-expired-make-room", testPendingLimitExpiredMakeRoom},
	{"pending/usage-rows-and-bytes", testPendingUsage},

	{"codes/create-redeem", testCodesRedeem},
	{"codes/unknown-or-expired-not-found", testCodesNotFound},
	{"codes/user-disabled-or-deleted", testCodesUserGone},
	{"codes/redeem-twice-revokes-grant", testCodesRedeemTwice},
	{"codes/reuse-after-expiry-revokes-grant", testCodesReuseAfterExpiry},
	{"codes/rolled-back-on-insert-failure", testCodesRolledBack},
	{"codes/redeem-func-error-keeps-code-used", testCodesIssueError},
	{"codes/concurrent-redeem-one-winner", testCodesConcurrentRedeem},

	{"grants/create-get", testGrantsCreateGet},
	{"grants/create-is-atomic", testGrantsCreateAtomic},
	{"grants/revoke", testGrantsRevoke},
	{"grants/list-by-user", testGrantsListByUser},
	{"grants/access-state", testGrantsAccessState},

	{"refresh/unknown-not-found", testRefreshUnknown},
	{"refresh/rotate", testRefreshRotate},
	{"refresh/rotate-failure-changes-nothing", testRefreshRotateFailure},
	{"refresh/keep", testRefreshKeep},
	{"refresh/return-child", testRefreshReturnChild},
	{"refresh/reject", testRefreshReject},
	{"refresh/revoke-commits-and-returns-error", testRefreshRevoke},
	{"refresh/decide-sees-grant-state", testRefreshSeesGrant},
	{"refresh/decide-sees-session", testRefreshSeesSession},
	{"refresh/concurrent-rotation-one-winner", testRefreshConcurrentRotation},

	{"keys/create-list-update-delete", testKeys},
	{"keys/schedule-one-pending-per-algorithm", testKeysSchedule},
	{"keys/schedule-rolled-back-on-insert-failure", testKeysScheduleRolledBack},

	{"locks/try-lock-excludes", testLocks},

	{"throttles/add-get-clear", testThrottles},
	{"throttles/reset-after-quiet-period", testThrottlesReset},
	{"throttles/concurrent-add-failure", testThrottlesConcurrent},

	{"replay/remember-twice-conflicts", testReplayRemember},
	{"replay/expired-key-can-be-remembered-again", testReplayExpired},
	{"replay/concurrent-remember-one-winner", testReplayConcurrent},

	{"bff/create-get", testBFFCreateGet},
	{"bff/update-tokens-never-revives", testBFFUpdateTokens},
	{"bff/touch-never-moves-back", testBFFTouch},
	{"bff/delete", testBFFDelete},
	{"bff/delete-by-sid-and-subject", testBFFDeleteBySIDAndSubject},
	{"bff/delete-expired", testBFFDeleteExpired},
	{"bff/concurrent-delete-and-update", testBFFConcurrentDelete},

	{"logout-notices/queued-when-sessions-end", testLogoutNoticesQueued},
	{"logout-notices/lease-retry-delete", testLogoutNoticesLease},

	{"expiry/delete-expired", testDeleteExpired},
	{"expiry/expired-grant-takes-refresh-tokens", testDeleteExpiredGrantCascade},
}

// nodeCases are tests that open several stores on one database, each standing
// for a node.
var nodeCases = []struct {
	name string
	fn   func(t *testing.T, open func() storage.Storage)
}{
	{"locks/excludes-other-nodes", testLocksAcrossNodes},
	{"locks/concurrent-one-holder", testLocksConcurrent},
	{"locks/lock-waits-for-holder", testLockWaits},
	{"keys/concurrent-schedule-one-winner", testKeysScheduleConcurrent},
	{"sessions/concurrent-sweep-ends-each-once", testSessionsSweepAcrossNodes},
	{"logout-notices/concurrent-claims-take-each-once", testLogoutNoticesClaimAcrossNodes},
	{"probe/concurrent-across-nodes", testProbeAcrossNodes},
	{"pending/concurrent-create-never-over-limits", testPendingLimitAcrossNodes},
}

// t0 is the fixed base time; its nanoseconds check that times keep full precision.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)

// concurrency is how many goroutines race for a single-use record.
const concurrency = 20

// h is a stand-in for the SHA-256 hashes the callers store.
func h(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

func newUser(id, username string) storage.User {
	return storage.User{
		ID:            id,
		Username:      username,
		PasswordHash:  "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$" + id,
		Email:         id + "@example.com",
		EmailVerified: true,
		Name:          "Name " + id,
		GivenName:     "Given " + id,
		FamilyName:    "Family " + id,
		CreatedAt:     t0,
		UpdatedAt:     t0.Add(time.Second),
	}
}

func newSession(userID, sid string) storage.Session {
	return storage.Session{
		IDHash:       h("session:" + sid),
		SID:          sid,
		UserID:       userID,
		AuthTime:     t0,
		AMR:          []string{"pwd", "otp"},
		CreatedAt:    t0.Add(time.Millisecond),
		LastActiveAt: t0.Add(time.Minute),
		ExpiresAt:    t0.Add(12 * time.Hour),
	}
}

// newClient fills every field so that a round trip checks each one.
func newClient(id string) storage.Client {
	return storage.Client{
		ID:                                 id,
		SecretDigest:                       h("secret:" + id),
		Name:                               "Client " + id,
		TokenEndpointAuthMethod:            "client_secret_basic",
		RedirectURIs:                       []string{"https://" + id + ".example/cb", "http://127.0.0.1/cb"},
		PostLogoutRedirectURIs:             []string{"https://" + id + ".example/"},
		AllowedOrigins:                     []string{"https://" + id + ".example"},
		GrantTypes:                         []string{"authorization_code", "refresh_token"},
		ResponseTypes:                      []string{"code"},
		Scopes:                             []string{"openid", "profile", "offline_access"},
		SkipConsent:                        true,
		RequirePKCE:                        true,
		DPoPBoundAccessTokens:              true,
		IDTokenSignedResponseAlg:           "RS256",
		BackchannelLogoutURI:               "https://" + id + ".example/bcl",
		BackchannelLogoutSessionRequired:   true,
		FrontchannelLogoutURI:              "https://" + id + ".example/fcl",
		FrontchannelLogoutSessionRequired:  true,
		OfflineRefresh:                     true,
		RenewalCountsAsActivity:            true,
		RotateRefreshTokens:                true,
		RequirePushedAuthorizationRequests: true,
		JWKS:                               `{"keys":[]}`,
		JWKSURI:                            "https://" + id + ".example/jwks",
		TokenEndpointAuthSigningAlg:        "PS256",
		Profile:                            "fapi2",
		StrictTokenEndpointAuthMethod:      true,
		Audience:                           []string{"https://" + id + ".example/api", "orders"},
		CreatedAt:                          t0,
		UpdatedAt:                          t0.Add(time.Second),
	}
}

func newGrant(id, clientID, userID, sid string) storage.Grant {
	return storage.Grant{
		ID:           id,
		ClientID:     clientID,
		UserID:       userID,
		SID:          sid,
		SessionBound: true,
		Scopes:       []string{"openid", "offline_access"},
		AuthTime:     t0,
		AMR:          []string{"pwd"},
		DPoPJKT:      "jkt-" + id,
		CreatedAt:    t0.Add(time.Minute),
		ExpiresAt:    t0.Add(720 * time.Hour),
	}
}

func newRefresh(grantID, name string, generation int) storage.RefreshToken {
	return storage.RefreshToken{
		Hash:       h("refresh:" + name),
		GrantID:    grantID,
		Generation: generation,
		CreatedAt:  t0.Add(time.Duration(generation) * time.Minute),
		ExpiresAt:  t0.Add(24 * time.Hour),
	}
}

func newCode(name, clientID, userID, sid, grantID string) storage.AuthCode {
	return storage.AuthCode{
		CodeHash:            h("code:" + name),
		ClientID:            clientID,
		UserID:              userID,
		SID:                 sid,
		RedirectURI:         "https://" + clientID + ".example/cb",
		Scopes:              []string{"openid", "profile"},
		Nonce:               "nonce-" + name,
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
		AuthTime:            t0,
		AMR:                 []string{"pwd"},
		GrantID:             grantID,
		DPoPJKT:             "jkt-" + name,
		CreatedAt:           t0,
		ExpiresAt:           t0.Add(time.Minute),
	}
}

// grantFor is what a RedeemFunc normally returns: the grant the code names.
func grantFor(c storage.AuthCode) storage.Grant {
	g := newGrant(c.GrantID, c.ClientID, c.UserID, c.SID)
	g.Scopes, g.AuthTime, g.AMR, g.DPoPJKT = c.Scopes, c.AuthTime, c.AMR, c.DPoPJKT
	return g
}

// fixture is one user with a session at one client: what most tests start from.
type fixture struct {
	user    storage.User
	client  storage.Client
	session storage.Session
}

func setup(t *testing.T, s storage.Storage, userID string) fixture {
	t.Helper()
	f := fixture{
		user:    newUser(userID, "user-"+userID),
		client:  newClient("client-" + userID),
		session: newSession(userID, "sid-"+userID),
	}
	mustCreateUser(t, s, f.user)
	mustUpsertClient(t, s, f.client)
	mustCreateSession(t, s, f.session)
	return f
}

func mustCreateUser(t *testing.T, s storage.Storage, u storage.User) {
	t.Helper()
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%q): %v", u.ID, err)
	}
}

func mustUpsertClient(t *testing.T, s storage.Storage, c storage.Client) {
	t.Helper()
	if err := s.UpsertClient(t.Context(), c); err != nil {
		t.Fatalf("UpsertClient(%q): %v", c.ID, err)
	}
}

func mustCreateSession(t *testing.T, s storage.Storage, x storage.Session) {
	t.Helper()
	if err := s.CreateSession(t.Context(), x); err != nil {
		t.Fatalf("CreateSession(%q): %v", x.SID, err)
	}
}

func mustCreateGrant(t *testing.T, s storage.Storage, g storage.Grant, rt *storage.RefreshToken) {
	t.Helper()
	if err := s.CreateGrant(t.Context(), g, rt); err != nil {
		t.Fatalf("CreateGrant(%q): %v", g.ID, err)
	}
}

func mustCreateCode(t *testing.T, s storage.Storage, c storage.AuthCode) {
	t.Helper()
	if err := s.CreateAuthCode(t.Context(), c); err != nil {
		t.Fatalf("CreateAuthCode: %v", err)
	}
}

func mustGetGrant(t *testing.T, s storage.Storage, id string) storage.Grant {
	t.Helper()
	g, err := s.GetGrant(t.Context(), id)
	if err != nil {
		t.Fatalf("GetGrant(%q): %v", id, err)
	}
	return g
}

func mustGetRefresh(t *testing.T, s storage.Storage, hash []byte) (storage.RefreshToken, storage.Grant) {
	t.Helper()
	r, g, err := s.GetRefreshToken(t.Context(), hash)
	if err != nil {
		t.Fatalf("GetRefreshToken(%x): %v", hash, err)
	}
	return r, g
}

// wantErr fails unless err matches target (target nil: no error).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) { // errors.Is(err, nil) is err == nil
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// wantRevokedAt checks a grant's revocation time (zero: still not revoked).
func wantRevokedAt(t *testing.T, s storage.Storage, id string, want time.Time) {
	t.Helper()
	g := mustGetGrant(t, s, id)
	if !g.RevokedAt.Equal(want) {
		t.Errorf("grant %q RevokedAt: got %v, want %v", id, fmtTime(g.RevokedAt), fmtTime(want))
	}
}

// concurrently runs fn(0) … fn(n-1) at the same moment and returns their errors.
//
// It first pings the store from n goroutines so that a pooled backend has its
// connections open: otherwise the first call finishes while the others are
// still connecting, and a missing row lock goes unnoticed.
func concurrently(s storage.Storage, n int, fn func(i int) error) []error {
	race(n, func(int) error { return s.Ping(context.Background()) })
	return race(n, fn)
}

// race runs fn(0) … fn(n-1), released together.
func race(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWinner checks that exactly one call succeeded and every other failed with loser.
func oneWinner(t *testing.T, what string, errs []error, loser error) (winner int) {
	t.Helper()
	winner = -1
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
			winner = i
		case !errors.Is(err, loser):
			t.Errorf("%s #%d: got error %v, want nil or %v", what, i, err, loser)
		}
	}
	if wins != 1 {
		t.Fatalf("%s: got %d successes of %d, want exactly 1", what, wins, len(errs))
	}
	return winner
}

// sortBy sorts records by a string key so that lists compare regardless of the
// order a backend returns them in (the interface promises none).
func sortBy[T any](l []T, key func(T) string) []T {
	slices.SortFunc(l, func(a, b T) int { return strings.Compare(key(a), key(b)) })
	return l
}

func testPing(t *testing.T, s storage.Storage) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: got %v, want nil", err)
	}
}
