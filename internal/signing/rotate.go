package signing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

// lockName is the storage lock under which a node changes keys. Several nodes
// run Maintain on the same schedule; the lock lets one of them rotate while the
// others pick up its result on their next Load.
const lockName = "signing-keys"

// firstKeySkew back-dates the activation of a first key so that nodes whose
// clocks lag this much behind the creator's still see it as current.
const firstKeySkew = time.Minute

// ErrRotationPending means the algorithm already has a next key, published and
// waiting to sign; a second one is not scheduled.
var ErrRotationPending = errors.New("a key rotation is already pending")

// lock waits for the maintenance lock until ctx ends (Ensure, Rotate: work
// that must be done); its holder is done within moments.
func (ks *Keyset) lock(ctx context.Context) (func(), error) {
	return storage.Lock(ctx, ks.store, lockName)
}

// Rotate schedules a new key for alg: published now, signing after the
// propagation delay, when the current key retires; the retired key stays
// published until every token it signed has expired. If alg already has a next
// key, Rotate returns it with ErrRotationPending. It waits for any other node
// that is changing keys.
func (ks *Keyset) Rotate(ctx context.Context, alg string) (storage.SigningKey, error) {
	unlock, err := ks.lock(ctx)
	if err != nil {
		return storage.SigningKey{}, err
	}
	defer unlock()
	if err := ks.Load(ctx); err != nil {
		return storage.SigningKey{}, err
	}
	rec, err := ks.rotate(ctx, alg, ks.clock.Now())
	if lerr := ks.Load(ctx); err == nil {
		err = lerr
	}
	return rec, err
}

// rotate schedules the next key of alg as of now, under the lock. Storage
// refuses a second next key even if the lock was lost on the way (its
// connection broke), so two nodes can never both schedule one.
func (ks *Keyset) rotate(ctx context.Context, alg string, now time.Time) (storage.SigningKey, error) {
	if next := ks.next(alg, now); next != nil {
		return next.rec, fmt.Errorf("%w for %s: key %s signs from %s", ErrRotationPending, alg, next.rec.KID, next.rec.ActivatesAt.Format(time.RFC3339))
	}
	cur := ks.current(alg, now)
	activates := now.Add(ks.policy.Propagation)
	if cur == nil {
		// Nothing signs with this algorithm (first start, or an algorithm newly
		// configured): rather than fail, the key signs at once, on every node,
		// including those whose clocks are a little behind.
		activates = now.Add(-firstKeySkew)
	}
	rec, err := ks.newKey(alg, now, activates)
	if err != nil {
		return storage.SigningKey{}, err
	}
	var retire *storage.SigningKey
	if cur != nil {
		old := cur.rec
		old.RetiresAt = activates
		old.ExpiresAt = activates.Add(ks.policy.MaxTokenLifetime)
		retire = &old
	}
	switch err := ks.store.ScheduleSigningKey(ctx, rec, retire, now); {
	case errors.Is(err, storage.ErrConflict):
		// Another node did it without the lock (it had lost it): show its key.
		if err := ks.Load(ctx); err != nil {
			return storage.SigningKey{}, err
		}
		var pending storage.SigningKey
		if next := ks.next(alg, now); next != nil {
			pending = next.rec
		}
		return pending, fmt.Errorf("%w for %s: scheduled by another node", ErrRotationPending, alg)
	case err != nil:
		return storage.SigningKey{}, fmt.Errorf("store signing key: %w", err)
	}
	ks.log.Info("signing key created", "kid", rec.KID, "alg", alg, "activates_at", activates)
	return rec, nil
}

// Maintain reloads the keys (picking up what other nodes did), and, when it
// is time, rotates keys whose rotation period has passed (unless a successor
// is already scheduled) and deletes keys that left the JWKS. Only one node at a
// time changes keys: a node that finds another at it leaves the work to it.
func (ks *Keyset) Maintain(ctx context.Context) error {
	if err := ks.Load(ctx); err != nil {
		return err
	}
	if !ks.due(ks.clock.Now()) {
		return nil
	}
	unlock, ok, err := ks.store.TryLock(ctx, lockName)
	if err != nil {
		return fmt.Errorf("lock signing keys: %w", err)
	}
	if !ok {
		return nil
	}
	defer unlock()
	// What the previous holder of the lock did is in storage, not yet here.
	if err := ks.Load(ctx); err != nil {
		return err
	}
	now := ks.clock.Now()
	for _, alg := range ks.policy.Algorithms {
		if !ks.rotationDue(alg, now) {
			continue
		}
		if _, err := ks.rotate(ctx, alg, now); err != nil && !errors.Is(err, ErrRotationPending) {
			return err
		}
	}
	for _, kid := range ks.expired(now) {
		if err := ks.store.DeleteSigningKey(ctx, kid); err != nil && !errors.Is(err, storage.ErrNotFound) {
			ks.log.Warn("could not delete expired signing key", "kid", kid, "err", err)
		}
	}
	return ks.Load(ctx)
}

// due reports whether Maintain has anything to change at now.
func (ks *Keyset) due(now time.Time) bool {
	for _, alg := range ks.policy.Algorithms {
		if ks.rotationDue(alg, now) {
			return true
		}
	}
	return len(ks.expired(now)) > 0
}

// rotationDue reports whether alg needs a next key: it has none waiting, and
// either no current key or one that has signed for the rotation period.
func (ks *Keyset) rotationDue(alg string, now time.Time) bool {
	if ks.next(alg, now) != nil {
		return false
	}
	cur := ks.current(alg, now)
	return cur == nil || (now.Sub(cur.rec.ActivatesAt) >= ks.policy.RotationPeriod && cur.rec.RetiresAt.IsZero())
}

// expired lists the keys that have left the JWKS.
func (ks *Keyset) expired(now time.Time) []string {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	var gone []string
	for kid, k := range ks.keys {
		if !k.rec.ExpiresAt.IsZero() && !now.Before(k.rec.ExpiresAt) {
			gone = append(gone, kid)
		}
	}
	return gone
}

// next is alg's key that is published but does not sign yet, if any.
func (ks *Keyset) next(alg string, now time.Time) *key {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	for _, k := range ks.keys {
		if k.rec.Algorithm == alg && now.Before(k.rec.ActivatesAt) {
			return k
		}
	}
	return nil
}

// KeyInfo describes a key for administrators.
type KeyInfo struct {
	KID, Algorithm, State             string
	ActivatesAt, RetiresAt, ExpiresAt time.Time
}

// Keys lists the keys with their state now: next, current, previous or expired.
func (ks *Keyset) Keys() []KeyInfo {
	now := ks.clock.Now()
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	var out []KeyInfo
	for _, k := range ks.keys {
		state := "current"
		switch {
		case now.Before(k.rec.ActivatesAt):
			state = "next"
		case !k.rec.ExpiresAt.IsZero() && !now.Before(k.rec.ExpiresAt):
			state = "expired"
		case !k.rec.RetiresAt.IsZero() && !now.Before(k.rec.RetiresAt):
			state = "previous"
		}
		out = append(out, KeyInfo{KID: k.rec.KID, Algorithm: k.rec.Algorithm, State: state,
			ActivatesAt: k.rec.ActivatesAt, RetiresAt: k.rec.RetiresAt, ExpiresAt: k.rec.ExpiresAt})
	}
	return out
}
