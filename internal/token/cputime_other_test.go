//go:build !unix

package token_test

import "time"

// cpuTime is not measured here; benchmarks report wall-clock ratios only.
func cpuTime() time.Duration { return 0 }
