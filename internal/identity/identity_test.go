package identity

import (
	"context"
	"errors"
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

func TestNewHasherSlotsFromMemory(t *testing.T) {
	if n := NewHasher(Params{MemoryKiB: 19456, Iterations: 2, Parallelism: 1}, 256*1024, time.Second).Slots(); n != 13 {
		t.Errorf("slots for 256 MiB / 19 MiB: got %d, want 13", n)
	}
}
