// Package storage defines the records Castellan keeps, the Storage interface that
// every backend implements, and the named errors backends return.
//
// The interface is shaped around atomic operations rather than generic
// read-modify-write: single-use things (authorization codes, pending
// authorization requests, refresh-token rotation, replay caches) are consumed by
// one call that a backend implements as a single statement or one transaction,
// so that two requests (or two nodes) can never both succeed. Driver errors never
// leak through it: callers match ErrNotFound, ErrConflict and friends.
package storage
