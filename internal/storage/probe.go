package storage

import (
	"context"
	"time"
)

// WriteProbe lets a readiness check find out whether the database takes
// writes: a node whose disk is full, or whose database went read-only, still
// answers reads (Ping), while every sign-in and token request fails.
type WriteProbe interface {
	// ProbeWrite commits one small write: the time of node's last probe, in
	// a row of its own. It fails when the database cannot commit a write.
	// Rows of nodes that stopped probing go after a day.
	ProbeWrite(ctx context.Context, node string, now time.Time) error
}
