package storagetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

// A probe commits again and again for one node, for others beside it, and
// when the clock has moved a day on (which drops the other nodes' rows).
func testProbeWrite(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for i, p := range []struct {
		node string
		at   time.Time
	}{
		{"node-a", t0},
		{"node-a", t0.Add(time.Second)},
		{"node-b", t0.Add(time.Second)},
		{"node-a", t0.Add(48 * time.Hour)},
		{"node-b", t0.Add(48 * time.Hour)},
		{"node-a", t0}, // a clock that went back
	} {
		if err := s.ProbeWrite(ctx, p.node, p.at); err != nil {
			t.Fatalf("probe %d (%s at %v): %v", i, p.node, p.at, err)
		}
	}
}

// Nodes probe at the same moment, under one name and under their own,
// without one probe failing for another's.
func testProbeAcrossNodes(t *testing.T, open func() storage.Storage) {
	ctx := context.Background()
	nodes := []storage.Storage{open(), open()}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		for n, s := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := "shared"
				if i%2 == 0 {
					name = fmt.Sprintf("node-%d", n)
				}
				if err := s.ProbeWrite(ctx, name, t0.Add(time.Duration(i)*time.Second)); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent probe: %v", err)
	}
}
