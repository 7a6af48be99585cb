package signing

import (
	"context"
	"fmt"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

// Rotate schedules a new key for alg: published now, signing after the
// propagation delay, when the current key retires; the retired key stays
// published until every token it signed has expired.
func (ks *Keyset) Rotate(ctx context.Context, alg string) (storage.SigningKey, error) {
	now := ks.clock.Now()
	cur := ks.current(alg, now)
	activates := now.Add(ks.policy.Propagation)
	if cur == nil {
		activates = now
	}
	rec, err := ks.create(ctx, alg, now, activates)
	if err != nil {
		return storage.SigningKey{}, err
	}
	if cur != nil {
		old := cur.rec
		old.RetiresAt = activates
		old.ExpiresAt = activates.Add(ks.policy.MaxTokenLifetime)
		if err := ks.store.UpdateSigningKey(ctx, old); err != nil {
			return storage.SigningKey{}, fmt.Errorf("retire signing key %s: %w", old.KID, err)
		}
	}
	return rec, ks.Load(ctx)
}

// Maintain rotates keys whose rotation period has passed (unless a successor is
// already scheduled), deletes keys that left the JWKS, and reloads.
func (ks *Keyset) Maintain(ctx context.Context) error {
	if err := ks.Load(ctx); err != nil {
		return err
	}
	now := ks.clock.Now()
	for _, alg := range ks.policy.Algorithms {
		cur := ks.current(alg, now)
		if cur == nil {
			if _, err := ks.Rotate(ctx, alg); err != nil {
				return err
			}
			continue
		}
		if now.Sub(cur.rec.ActivatesAt) >= ks.policy.RotationPeriod && cur.rec.RetiresAt.IsZero() && !ks.hasNext(alg, now) {
			if _, err := ks.Rotate(ctx, alg); err != nil {
				return err
			}
		}
	}
	ks.mu.RLock()
	var gone []string
	for kid, k := range ks.keys {
		if !k.rec.ExpiresAt.IsZero() && !now.Before(k.rec.ExpiresAt) {
			gone = append(gone, kid)
		}
	}
	ks.mu.RUnlock()
	for _, kid := range gone {
		if err := ks.store.DeleteSigningKey(ctx, kid); err != nil {
			ks.log.Warn("could not delete expired signing key", "kid", kid, "err", err)
		}
	}
	return ks.Load(ctx)
}

func (ks *Keyset) hasNext(alg string, now time.Time) bool {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	for _, k := range ks.keys {
		if k.rec.Algorithm == alg && now.Before(k.rec.ActivatesAt) {
			return true
		}
	}
	return false
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
