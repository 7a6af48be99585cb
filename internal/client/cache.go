package client

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/storage"
)

// CacheTTL is how long a node serves a client record from memory before
// reading it again. Clients change when a node starts with a changed config or
// through `castellan client`, both from another process, so a removed client
// or a rotated secret stops working on every node within this time (writes
// through the Cache itself take effect at once). A second keeps that window
// shorter than any admin's next command while a busy token endpoint still
// reads each client about once a second instead of on every request.
const CacheTTL = time.Second

// Cache keeps client records in memory for a short time, so that the token,
// introspection and authorization endpoints do not read the same record from
// storage on every request. Only found clients are kept: unknown ids always
// go to storage and cannot fill the cache. Writes through the Cache drop what
// it holds.
type Cache struct {
	store storage.Clients
	clock clock.Clock
	ttl   time.Duration

	mu      sync.RWMutex
	entries map[string]cacheEntry
}

type cacheEntry struct {
	client  storage.Client
	expires time.Time
}

var _ storage.Clients = (*Cache)(nil)

// NewCache caches store's clients for ttl.
func NewCache(store storage.Clients, clk clock.Clock, ttl time.Duration) *Cache {
	return &Cache{store: store, clock: clk, ttl: ttl, entries: map[string]cacheEntry{}}
}

// GetClient returns the client from memory if it was read less than the TTL
// ago, otherwise from storage.
func (c *Cache) GetClient(ctx context.Context, id string) (storage.Client, error) {
	now := c.clock.Now()
	c.mu.RLock()
	e, ok := c.entries[id]
	c.mu.RUnlock()
	if ok && now.Before(e.expires) {
		return clone(e.client), nil
	}
	cl, err := c.store.GetClient(ctx, id)
	c.mu.Lock()
	if err == nil {
		c.entries[id] = cacheEntry{client: clone(cl), expires: now.Add(c.ttl)}
	} else {
		delete(c.entries, id)
	}
	c.mu.Unlock()
	return cl, err
}

// ListClients reads every client from storage.
func (c *Cache) ListClients(ctx context.Context) ([]storage.Client, error) {
	return c.store.ListClients(ctx)
}

// UpsertClient writes the client and forgets the cached copy.
func (c *Cache) UpsertClient(ctx context.Context, cl storage.Client) error {
	defer c.Forget(cl.ID)
	return c.store.UpsertClient(ctx, cl)
}

// DeleteClient deletes the client and forgets the cached copy.
func (c *Cache) DeleteClient(ctx context.Context, id string) error {
	defer c.Forget(id)
	return c.store.DeleteClient(ctx, id)
}

// Forget drops one client from memory.
func (c *Cache) Forget(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

// Purge drops every client from memory.
func (c *Cache) Purge() {
	c.mu.Lock()
	clear(c.entries)
	c.mu.Unlock()
}

// clone copies the slices of a client, so that no caller can change the
// cached copy (or another request's) through a shared backing array.
func clone(c storage.Client) storage.Client {
	c.SecretDigest = slices.Clone(c.SecretDigest)
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	c.AllowedOrigins = slices.Clone(c.AllowedOrigins)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	c.ResponseTypes = slices.Clone(c.ResponseTypes)
	c.Scopes = slices.Clone(c.Scopes)
	return c
}
