package par

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strings"
	"time"

	"github.com/castellan-auth/castellan/internal/authorize"
	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/opaque"
	"github.com/castellan-auth/castellan/internal/storage"
)

// Requests stores pushed requests in the pending-requests table, so that a
// request_uri pushed to one node works on every other one and is consumed
// exactly once. Only the SHA-256 of the whole request_uri is stored (as for
// every bearer value Castellan hands out); hashing the URN prefix with it
// keeps these rows apart from the sign-in pending requests.
type Requests struct {
	Store storage.PendingRequests
	Clock clock.Clock
	// Hold is how long a person has to sign in and consent once a browser
	// has taken a request (the authorization endpoint's PendingTTL): the
	// request_uri can be taken again only within Lifetime of the push, but
	// the claimed request stays until the authorization can complete.
	Hold time.Duration
	// Limits bound the requests stored, counted with the authorization
	// endpoint's pending requests (one table): per client address (the
	// pushing client's until a browser claims the request, then the
	// browser's) and in all.
	Limits storage.PendingLimits
}

// notABrowser is stored where a pending request names its browser: a pushed
// request belongs to no browser until it is taken, and this value is no
// browser's digest. (A request_uri cannot pass for a sign-in pending request
// either way: those ids are bare opaque values, hashed without the URN.)
var notABrowser = func() []byte { h := sha256.Sum256([]byte("castellan: pushed authorization request")); return h[:] }()

// Put stores a validated request of clientID, pushed from the client
// address addressHash (authorize.AddressKey), and returns its request_uri;
// past q.Limits it returns a *storage.FullError.
func (q *Requests) Put(ctx context.Context, clientID string, data, addressHash []byte) (string, error) {
	uri := authorize.RequestURIPrefix + opaque.New()
	now := q.Clock.Now()
	err := q.Store.CreatePendingRequest(ctx, storage.PendingRequest{
		IDHash: opaque.Hash(uri), BrowserHash: notABrowser, ClientID: clientID,
		Request: data, CreatedAt: now, ExpiresAt: now.Add(Lifetime), AddressHash: addressHash,
	}, q.Limits)
	return uri, err
}

// Withdraw removes a request just pushed whose answer is an error after all
// (its DPoP proof was a replay): nobody got its request_uri.
func (q *Requests) Withdraw(ctx context.Context, requestURI string) error {
	_, err := q.Store.ConsumePendingRequest(ctx, opaque.Hash(requestURI), q.Clock.Now())
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}

var errInvalidURI = authorize.ErrRequestURIUnknown

// Take implements authorize.PushedRequests. A pushed request is stored as
// no browser's; the first browser to take it claims it (the row is consumed
// and stored again under the same hash with that browser's digest, so of two
// browsers racing only one wins) and may take it again, for a second visit
// to the authorization endpoint before signing in (FAPI 2.0 Security
// Profile §5.3.2.2 note 3). Complete consumes it when the authorization
// completes.
func (q *Requests) Take(ctx context.Context, requestURI, clientID string, browserHash, addressHash []byte) ([]byte, error) {
	if !opaque.Wellformed(strings.TrimPrefix(requestURI, authorize.RequestURIPrefix)) || len(browserHash) == 0 {
		return nil, errInvalidURI
	}
	now := q.Clock.Now()
	h := opaque.Hash(requestURI)
	p, err := q.Store.GetPendingRequest(ctx, h, now)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errInvalidURI
	}
	if err != nil {
		return nil, err
	}
	if p.ClientID != clientID {
		// Bound to the client that pushed it (§4); another client's attempt
		// does not use it up.
		return nil, errInvalidURI
	}
	if subtle.ConstantTimeCompare(p.BrowserHash, browserHash) == 1 {
		if !now.Before(p.CreatedAt.Add(Lifetime)) {
			return nil, errInvalidURI // the request_uri itself has expired (expires_in)
		}
		return p.Request, nil // the claiming browser's revisit
	}
	if subtle.ConstantTimeCompare(p.BrowserHash, notABrowser) != 1 {
		return nil, errInvalidURI // claimed by another browser
	}
	p, err = q.Store.ConsumePendingRequest(ctx, h, now)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errInvalidURI // claimed by a concurrent request
	}
	if err != nil {
		return nil, err
	}
	p.BrowserHash, p.AddressHash = browserHash, addressHash
	// Completable while a sign-in started by a visit within Lifetime may be.
	p.ExpiresAt = p.CreatedAt.Add(Lifetime + q.Hold)
	// Counted against the browser's address from now on; past its limit the
	// browser is told to come back (the push is used up: the client pushes
	// again). CreatedAt stays the push's: revisits are judged by it.
	if err := q.Store.CreatePendingRequest(ctx, p, q.Limits); err != nil {
		return nil, err
	}
	return p.Request, nil
}

// Complete implements authorize.PushedRequests.
func (q *Requests) Complete(ctx context.Context, idHash []byte) error {
	_, err := q.Store.ConsumePendingRequest(ctx, idHash, q.Clock.Now())
	if errors.Is(err, storage.ErrNotFound) {
		return errInvalidURI
	}
	return err
}
