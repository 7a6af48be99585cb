package identity

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

var cheap = Params{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}

func TestHashAndVerify(t *testing.T) {
	h := HashPassword("hunter22", cheap)
	if !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("PHC string: got %q", h)
	}
	if err := ParsePHC(h); err != nil {
		t.Fatal(err)
	}
	ok, stale, err := verifyPassword("hunter22", h, cheap)
	if !ok || stale || err != nil {
		t.Fatalf("verify right password: got %v %v %v", ok, stale, err)
	}
	if ok, _, _ := verifyPassword("hunter23", h, cheap); ok {
		t.Fatal("wrong password verified")
	}
	if _, stale, _ := verifyPassword("hunter22", h, DefaultParams); !stale {
		t.Error("hash with other parameters not reported stale")
	}
	if h == HashPassword("hunter22", cheap) {
		t.Error("two hashes of one password are equal: salt not random")
	}
}

func TestParsePHCRefuses(t *testing.T) {
	for _, s := range []string{
		"", "plain", "$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=16$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=1024,t=0,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=1024,t=1,p=1$!!$aGFzaGhhc2hoYXNoaGFzaA",
	} {
		if err := ParsePHC(s); err == nil {
			t.Errorf("ParsePHC(%q) accepted", s)
		}
	}
}

func TestHasherBoundsConcurrency(t *testing.T) {
	h := NewHasher(cheap, 1024, 20*time.Millisecond)
	if h.Slots() != 1 {
		t.Fatalf("slots: got %d, want 1", h.Slots())
	}
	// Hold the only slot: the next caller waits the queue timeout and is told busy.
	if err := h.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, _, err := h.Verify(context.Background(), "x", HashPassword("x", cheap))
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("verify with no free slot: got %v, want ErrBusy", err)
	}
	h.release()
	if ok, _, err := h.Verify(context.Background(), "x", HashPassword("x", cheap)); !ok || err != nil {
		t.Fatalf("verify after release: got %v %v", ok, err)
	}
}

func TestNewHasherSlots(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, tc := range []struct {
		name        string
		procs       int
		memoryKiB   uint32
		parallelism uint8
		limitKiB    int
		want        int
	}{
		{"memory bound: 256 MiB / 19 MiB", 16, 19456, 1, 256 * 1024, 13},
		{"core bound: 2 cores, one left for the rest", 2, 19456, 1, 256 * 1024, 1},
		{"core bound: 8 cores, 2 lanes per hash", 8, 19456, 2, 256 * 1024, 3},
		{"at least one: one core", 1, 19456, 1, 256 * 1024, 1},
		{"at least one: memory below one hash", 4, 19456, 1, 1024, 1},
		{"at least one: more lanes than cores", 2, 19456, 4, 256 * 1024, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runtime.GOMAXPROCS(tc.procs)
			h := NewHasher(Params{MemoryKiB: tc.memoryKiB, Iterations: 1, Parallelism: tc.parallelism}, tc.limitKiB, time.Second)
			if n := h.Slots(); n != tc.want {
				t.Errorf("slots: got %d, want %d", n, tc.want)
			}
		})
	}
}

// TestDummyPHC: the dummy verified for unknown users is a well-formed hash
// with the configured parameters that no password matches, and two hashers
// get different ones.
func TestDummyPHC(t *testing.T) {
	d := dummyPHC(cheap)
	if err := ParsePHC(d); err != nil {
		t.Fatalf("dummy %q: %v", d, err)
	}
	if !strings.Contains(d, "$m=1024,t=1,p=1$") {
		t.Errorf("dummy %q: want the configured parameters", d)
	}
	for _, pw := range []string{"", "castellan dummy password", "x"} {
		if ok, _, err := verifyPassword(pw, d, cheap); ok || err != nil {
			t.Errorf("password %q against the dummy: got %v %v, want a plain mismatch", pw, ok, err)
		}
	}
	if dummyPHC(cheap) == d {
		t.Error("two dummies are equal: want a random salt and key each")
	}
}
