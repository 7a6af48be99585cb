package server_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// benchStack names what the load generator's charts pull in (gonum/plot with
// its fonts, LaTeX, PDF, SVG and rasterizer back ends): a package whose import
// path contains one of these belongs to castellan-bench, never to the binary
// people deploy.
var benchStack = []string{"gonum", "font", "latex", "pdf", "svg", "freetype", "internal/loadgen"}

// TestCastellanLinksNoBenchStack keeps the load generator out of the castellan
// binary: it is its own command, cmd/castellan-bench. The bench command itself
// is listed too, as the control that shows the check recognizes the stack.
func TestCastellanLinksNoBenchStack(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("go is not on PATH: %v", err)
		}
		t.Skipf("go is not on PATH: %v", err)
	}
	const mod = "github.com/castellan-auth/castellan/"
	tests := []struct {
		command   string
		wantBench bool
	}{
		{mod + "cmd/castellan", false},
		{mod + "cmd/castellan-bench", true},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.command, mod), func(t *testing.T) {
			out, err := exec.Command(goTool, "list", "-deps", tt.command).Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", tt.command, err)
			}
			deps := strings.Fields(string(out))
			if len(deps) == 0 || deps[len(deps)-1] != tt.command {
				t.Fatalf("go list -deps %s: got %d packages ending in %q, want the command last", tt.command, len(deps), deps[len(deps)-1:])
			}
			var bench []string
			for _, pkg := range deps {
				if inBenchStack(pkg) {
					bench = append(bench, pkg)
				}
			}
			switch {
			case tt.wantBench && len(bench) == 0:
				t.Errorf("%s links none of %v: the check no longer recognizes the bench stack", tt.command, benchStack)
			case !tt.wantBench && len(bench) > 0:
				t.Errorf("%s links %d packages of the bench stack, want none: %s", tt.command, len(bench), strings.Join(bench, " "))
			}
		})
	}
}

func inBenchStack(pkg string) bool {
	pkg = strings.ToLower(pkg)
	for _, word := range benchStack {
		if strings.Contains(pkg, word) {
			return true
		}
	}
	return false
}
