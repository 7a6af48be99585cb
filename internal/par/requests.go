package par

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"

	"github.com/castellan-auth/castellan/internal/authorize"
	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/oauth"
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
}

// notABrowser is stored where a pending request names its browser: a pushed
// request belongs to no browser until it is taken, and this value is no
// browser's digest, so a request_uri can never pass for a pending request.
var notABrowser = func() []byte { h := sha256.Sum256([]byte("castellan: pushed authorization request")); return h[:] }()

// Put stores a validated request of clientID and returns its request_uri.
func (q *Requests) Put(ctx context.Context, clientID string, data []byte) (string, error) {
	uri := authorize.RequestURIPrefix + opaque.New()
	now := q.Clock.Now()
	err := q.Store.CreatePendingRequest(ctx, storage.PendingRequest{
		IDHash: opaque.Hash(uri), BrowserHash: notABrowser, ClientID: clientID,
		Request: data, CreatedAt: now, ExpiresAt: now.Add(Lifetime),
	})
	return uri, err
}

var errInvalidURI = oauth.Errorf(oauth.ErrInvalidRequestURI, "request_uri is unknown, expired or already used; push the request again")

// Take implements authorize.PushedRequests.
func (q *Requests) Take(ctx context.Context, requestURI, clientID string) ([]byte, error) {
	if !opaque.Wellformed(strings.TrimPrefix(requestURI, authorize.RequestURIPrefix)) {
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
	p, err = q.Store.ConsumePendingRequest(ctx, h, now)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errInvalidURI // taken by a concurrent request
	}
	if err != nil {
		return nil, err
	}
	return p.Request, nil
}
