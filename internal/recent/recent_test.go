package recent_test

import (
	"testing"

	"github.com/castellan-auth/castellan/internal/recent"
)

func TestGetPut(t *testing.T) {
	m := recent.New[string, int](4)
	if _, ok := m.Get("a"); ok {
		t.Fatal("empty map returned a value")
	}
	m.Put("a", 1)
	m.Put("a", 2) // replacing is not a new entry
	if v, ok := m.Get("a"); !ok || v != 2 {
		t.Fatalf("Get(a) = %v, %v; want 2, true", v, ok)
	}
	if n := m.Len(); n != 1 {
		t.Fatalf("Len = %d, want 1", n)
	}
}

// Entries in use survive generation changes; unused ones are gone after two,
// and the map never holds more than two generations.
func TestGenerations(t *testing.T) {
	const size = 4
	m := recent.New[int, int](size)
	m.Put(-1, -1) // used throughout
	for i := range 10 * size {
		m.Put(i, i)
		if _, ok := m.Get(-1); !ok {
			t.Fatalf("entry in use dropped after %d puts", i+1)
		}
		if n := m.Len(); n > 2*size+1 { // +1: the promoted copy
			t.Fatalf("after %d puts Len = %d, over two generations of %d", i+1, n, size)
		}
	}
	for i := range 2 * size {
		if _, ok := m.Get(i); ok {
			t.Fatalf("entry %d, unused for many generations, still there", i)
		}
	}
	if v, ok := m.Get(10*size - 1); !ok || v != 10*size-1 {
		t.Fatalf("latest entry: got %v, %v", v, ok)
	}
}

func TestSizeAtLeastOne(t *testing.T) {
	m := recent.New[int, int](0)
	m.Put(1, 1)
	if v, ok := m.Get(1); !ok || v != 1 {
		t.Fatalf("Get(1) = %v, %v with size 0; want 1, true", v, ok)
	}
}
