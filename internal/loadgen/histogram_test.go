package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBucketBoundsHoldTheirValues(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	values := []int64{0, 1, 127, 128, 129, 255, 256, 257, 511, 512, 1 << 20, 1<<20 - 1, math.MaxInt64}
	for range 100000 {
		values = append(values, r.Int64N(1<<uint(r.IntN(62)+1)))
	}
	for _, v := range values {
		i := bucket(v)
		lo, hi := bucketBounds(i)
		if v < lo || v > hi {
			t.Fatalf("value %d: bucket %d holds [%d, %d]", v, i, lo, hi)
		}
		if v >= 256 && float64(hi-lo+1)/float64(lo) > 1.0/subCount {
			t.Fatalf("value %d: bucket [%d, %d] wider than 1/%d of its value", v, lo, hi, subCount)
		}
	}
	// Buckets tile the number line: each starts right after the previous one.
	for i := 1; i < bucket(math.MaxInt64); i++ {
		_, prevHi := bucketBounds(i - 1)
		lo, _ := bucketBounds(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, want %d", i, lo, prevHi+1)
		}
	}
}

func TestEmptyHistogram(t *testing.T) {
	var h Histogram
	if got := h.Quantile(0.5); got != 0 {
		t.Errorf("Quantile(0.5) of nothing: got %v, want 0", got)
	}
	if s := h.Summary(); s != (Summary{}) {
		t.Errorf("Summary of nothing: got %+v, want zero", s)
	}
}

func TestSingleValue(t *testing.T) {
	var h Histogram
	h.Record(1234567 * time.Nanosecond)
	for _, q := range []float64{0, 0.5, 0.99, 1} {
		if got := h.Quantile(q); got != 1234567 {
			t.Errorf("Quantile(%v): got %d, want 1234567 (clamped to the only value)", q, got)
		}
	}
	if h.Mean() != 1234567 || h.Count() != 1 {
		t.Errorf("mean %d count %d, want 1234567 and 1", h.Mean(), h.Count())
	}
}

func TestSmallValuesAreExact(t *testing.T) {
	var h Histogram
	for v := int64(1); v <= 100; v++ {
		h.RecordValue(v)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.01, 1}, {0.5, 50}, {0.9, 90}, {0.99, 99}, {0.999, 100}, {1, 100}, {0, 1}} {
		if got := h.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v): got %d, want %d", c.q, got, c.want)
		}
	}
}

// exactQuantile is the nearest-rank quantile of sorted values, the definition
// Histogram.Quantile approximates.
func exactQuantile(sorted []int64, q float64) int64 {
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func TestQuantilesWithinPrecision(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	dists := map[string]func() int64{
		"uniform":     func() int64 { return r.Int64N(10_000_000) },
		"exponential": func() int64 { return int64(r.ExpFloat64() * 2e6) },
		"bimodal": func() int64 {
			if r.IntN(100) < 95 {
				return 500_000 + r.Int64N(100_000)
			}
			return 40_000_000 + r.Int64N(10_000_000)
		},
	}
	for name, gen := range dists {
		t.Run(name, func(t *testing.T) {
			var h Histogram
			values := make([]int64, 200_000)
			for i := range values {
				values[i] = gen()
				h.RecordValue(values[i])
			}
			slices.Sort(values)
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
				want := exactQuantile(values, q)
				got := int64(h.Quantile(q))
				if got < want || float64(got-want) > float64(want)/subCount+1 {
					t.Errorf("Quantile(%v): got %d, want %d (at most 1/%d above)", q, got, want, subCount)
				}
			}
			if h.Max() != time.Duration(values[len(values)-1]) || h.Min() != time.Duration(values[0]) {
				t.Errorf("min/max: got %d/%d, want %d/%d", h.Min(), h.Max(), values[0], values[len(values)-1])
			}
			var sum float64
			for _, v := range values {
				sum += float64(v)
			}
			if want := time.Duration(sum / float64(len(values))); h.Mean() != want {
				t.Errorf("mean: got %d, want %d", h.Mean(), want)
			}
		})
	}
}

func TestMergeEqualsRecordingEverything(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var all, a, b, empty Histogram
	for i := range 50_000 {
		v := r.Int64N(1 << uint(10+i%30))
		all.RecordValue(v)
		if i%3 == 0 {
			a.RecordValue(v)
		} else {
			b.RecordValue(v)
		}
	}
	var merged Histogram
	merged.Merge(&empty)
	merged.Merge(&a)
	merged.Merge(&b)
	merged.Merge(nil)
	if merged.Summary() != all.Summary() {
		t.Errorf("merged summary %+v, want %+v", merged.Summary(), all.Summary())
	}
}

func TestNegativeCountsAsZero(t *testing.T) {
	var h Histogram
	h.Record(-time.Second)
	if h.Max() != 0 || h.Min() != 0 || h.Count() != 1 {
		t.Errorf("got min %v max %v count %d, want 0 0 1", h.Min(), h.Max(), h.Count())
	}
}
