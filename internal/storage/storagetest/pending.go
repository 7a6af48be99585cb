package storagetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/storage"
)

// pendingFrom is pending request name from address, created at t0 and
// expiring after ttl.
func pendingFrom(name, address string, ttl time.Duration) storage.PendingRequest {
	p := newPending(name)
	p.AddressHash = h("address:" + address)
	p.ExpiresAt = t0.Add(ttl)
	return p
}

// wantFull checks err is a FullError of kind retrying at retryAt.
func wantFull(t *testing.T, what string, err, kind error, retryAt time.Time) {
	t.Helper()
	var fe *storage.FullError
	if !errors.As(err, &fe) || !errors.Is(err, kind) {
		t.Fatalf("%s: got %v, want a FullError %v", what, err, kind)
	}
	if !fe.RetryAt.Equal(retryAt) {
		t.Errorf("%s: RetryAt %v, want %v", what, fmtTime(fe.RetryAt), fmtTime(retryAt))
	}
}

func wantUsageRows(t *testing.T, s storage.Storage, want int64) storage.PendingUsage {
	t.Helper()
	u, err := s.PendingRequestUsage(t.Context())
	wantErr(t, "PendingRequestUsage", err, nil)
	if u.Rows != want {
		t.Fatalf("PendingRequestUsage: %d rows, want %d", u.Rows, want)
	}
	return u
}

// The requests of one address are bounded; another address is not held back,
// and the address round-trips.
func testPendingLimitPerAddress(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	limits := storage.PendingLimits{PerAddress: 3, Total: 100}
	for i := range 3 {
		p := pendingFrom(fmt.Sprint("a", i), "a", time.Duration(10-i)*time.Minute)
		wantErr(t, "CreatePendingRequest(a)", s.CreatePendingRequest(ctx, p, limits), nil)
	}
	err := s.CreatePendingRequest(ctx, pendingFrom("a3", "a", 10*time.Minute), limits)
	// The earliest of a's requests to expire is a2's, at 8 minutes.
	wantFull(t, "CreatePendingRequest(a, fourth)", err, storage.ErrAddressFull, t0.Add(8*time.Minute))
	_, err = s.GetPendingRequest(ctx, h("pending:a3"), t0)
	wantErr(t, "GetPendingRequest(refused)", err, storage.ErrNotFound)

	b := pendingFrom("b0", "b", 10*time.Minute)
	wantErr(t, "CreatePendingRequest(b)", s.CreatePendingRequest(ctx, b, limits), nil)
	got, err := s.GetPendingRequest(ctx, b.IDHash, t0)
	wantErr(t, "GetPendingRequest(b)", err, nil)
	wantEqual(t, "GetPendingRequest(b)", got, b)
	wantUsageRows(t, s, 4)
}

func testPendingLimitTotal(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	limits := storage.PendingLimits{PerAddress: 10, Total: 4}
	for i := range 4 {
		p := pendingFrom(fmt.Sprint("p", i), fmt.Sprint("addr", i%2), time.Duration(5+i)*time.Minute)
		wantErr(t, "CreatePendingRequest", s.CreatePendingRequest(ctx, p, limits), nil)
	}
	err := s.CreatePendingRequest(ctx, pendingFrom("p4", "other", time.Minute), limits)
	wantFull(t, "CreatePendingRequest(fifth)", err, storage.ErrFull, t0.Add(5*time.Minute))
	wantUsageRows(t, s, 4)
}

// Consuming a request and sweeping expired ones make room: the total kept
// beside the table follows every insert and delete.
func testPendingLimitFreedByDeletes(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	limits := storage.PendingLimits{PerAddress: 2, Total: 2}
	a, b := pendingFrom("a", "x", time.Minute), pendingFrom("b", "x", 2*time.Minute)
	for _, p := range []storage.PendingRequest{a, b} {
		wantErr(t, "CreatePendingRequest", s.CreatePendingRequest(ctx, p, limits), nil)
	}
	_, err := s.ConsumePendingRequest(ctx, a.IDHash, t0)
	wantErr(t, "ConsumePendingRequest", err, nil)
	c := pendingFrom("c", "x", time.Minute)
	wantErr(t, "CreatePendingRequest(after a consume)", s.CreatePendingRequest(ctx, c, limits), nil)
	wantFull(t, "CreatePendingRequest(full again)", s.CreatePendingRequest(ctx, pendingFrom("d", "y", time.Minute), limits),
		storage.ErrFull, t0.Add(time.Minute))

	if _, err := s.DeleteExpired(ctx, t0.Add(time.Minute)); err != nil {
		t.Fatalf("DeleteExpired: %v", err)
	}
	wantUsageRows(t, s, 1)
	d := pendingFrom("d", "y", time.Minute)
	wantErr(t, "CreatePendingRequest(after the sweep)", s.CreatePendingRequest(ctx, d, limits), nil)
}

// A limit reached by requests whose lifetime ended is no limit: they are
// deleted (only those in the way) and the new one is stored.
func testPendingLimitExpiredMakeRoom(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	limits := storage.PendingLimits{PerAddress: 2, Total: 3}
	for _, p := range []storage.PendingRequest{
		pendingFrom("x-old", "x", time.Minute), pendingFrom("x-live", "x", time.Hour), pendingFrom("y-old", "y", time.Minute),
	} {
		wantErr(t, "CreatePendingRequest", s.CreatePendingRequest(ctx, p, limits), nil)
	}
	later := func(p storage.PendingRequest) storage.PendingRequest {
		p.CreatedAt, p.ExpiresAt = t0.Add(time.Minute), t0.Add(time.Hour)
		return p
	}
	// The total is reached: every expired request goes.
	wantErr(t, "CreatePendingRequest(total reached by expired)", s.CreatePendingRequest(ctx, later(pendingFrom("z", "z", 0)), limits), nil)
	u := wantUsageRows(t, s, 2)
	if u.Bytes <= 0 {
		t.Errorf("PendingRequestUsage: %d bytes for 2 rows", u.Bytes)
	}
	_, err := s.GetPendingRequest(ctx, h("pending:x-live"), t0.Add(time.Minute))
	wantErr(t, "GetPendingRequest(live one kept)", err, nil)

	// x holds one live request of 2: the per-address limit is not reached.
	limits.Total = 10
	wantErr(t, "CreatePendingRequest(x again)", s.CreatePendingRequest(ctx, later(pendingFrom("x2", "x", 0)), limits), nil)
	wantFull(t, "CreatePendingRequest(x, third)", s.CreatePendingRequest(ctx, later(pendingFrom("x3", "x", 0)), limits),
		storage.ErrAddressFull, t0.Add(time.Hour))
}

func testPendingUsage(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	wantUsageRows(t, s, 0)
	p := pendingFrom("p", "a", time.Minute)
	p.ClientID = "clïent" // bytes, not characters
	wantErr(t, "CreatePendingRequest", s.CreatePendingRequest(ctx, p, storage.PendingLimits{}), nil)
	u := wantUsageRows(t, s, 1)
	want := int64(len(p.IDHash) + len(p.BrowserHash) + len(p.AddressHash) + len(p.Request) + len(p.ClientID) + 16)
	if u.Bytes != want {
		t.Errorf("PendingRequestUsage: %d bytes, want %d", u.Bytes, want)
	}
}

// Creations racing on several nodes never store more than the limits allow:
// each limit admits exactly as many as it says.
func testPendingLimitAcrossNodes(t *testing.T, open func() storage.Storage) {
	nodes := []storage.Storage{open(), open()}
	const perAddress, total = 7, 12
	limits := storage.PendingLimits{PerAddress: perAddress, Total: total}
	errs := concurrently(nodes[0], 2*concurrency, func(i int) error {
		// Half the callers share one address; the others have one each.
		address := fmt.Sprint("solo", i)
		if i%2 == 0 {
			address = "shared"
		}
		return nodes[i%2].CreatePendingRequest(t.Context(), pendingFrom(fmt.Sprint("p", i), address, time.Minute), limits)
	})
	var stored, sharedStored int
	for i, err := range errs {
		switch {
		case err == nil:
			stored++
			if i%2 == 0 {
				sharedStored++
			}
		case !errors.Is(err, storage.ErrFull) && !errors.Is(err, storage.ErrAddressFull):
			t.Errorf("CreatePendingRequest #%d: %v", i, err)
		}
	}
	if stored > total || sharedStored > perAddress {
		t.Fatalf("stored %d (%d from the shared address), limits %d and %d", stored, sharedStored, total, perAddress)
	}
	if stored != total {
		// 20 distinct solo addresses alone fill the total: it is reached.
		t.Errorf("stored %d, want exactly the total %d", stored, total)
	}
	wantUsageRows(t, nodes[1], int64(stored))
}
