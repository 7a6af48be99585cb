package loadgen_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/loadgen"
)

const (
	tableBegin = "<!-- castellan-bench --table: generated, do not edit by hand -->"
	tableEnd   = "<!-- end of castellan-bench --table -->"
)

// run says how a rerun went: the machine before it started, its windows and
// its runs per table cell.
type run struct {
	machine   loadgen.Machine
	startLoad string // the first field of /proc/loadavg; "" not recorded
	seconds   float64
	repeats   int
}

// result is a --json result as a run on machine m would write it.
func result(scenario, label string, throughput, cpuMicros, floor float64, rn run) *loadgen.Result {
	m, seconds := rn.machine, rn.seconds
	r := &loadgen.Result{
		Scenario: scenario, Label: label, Model: "closed", Concurrency: 32, Seconds: seconds,
		Started: time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC), Throughput: throughput, Ops: int64(throughput * seconds),
		Latency: loadgen.Summary{P50: 1, P99: 4.25, Max: 9}, Server: &loadgen.ProcessStats{CPUMicrosPerOp: cpuMicros},
		FloorMicros: floor, Machine: m,
		Baseline: &loadgen.Baseline{AccessAlg: "ES256", IDAlg: "ES256", SignMicros: map[string]float64{"ES256": 50}, VerifyMicros: map[string]float64{"ES256": 110}},
	}
	if floor > 0 {
		r.Efficiency = floor / cpuMicros
	}
	if rn.repeats > 1 {
		for range rn.repeats {
			r.Repeats = append(r.Repeats, throughput)
		}
	}
	return r
}

func writeJSON(t *testing.T, dir, name string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// rerunDir writes what docs/bench/rerun.sh writes, with figures chosen so that
// every ratio is known: three reference pairs, two scenarios on SQLite, a
// flood, start-up, the micro-benchmarks and the machine before it started.
func rerunDir(t *testing.T, rn run) string {
	t.Helper()
	dir := t.TempDir()
	pairs := []struct{ bareOps, bareCPU, oursOps, oursCPU float64 }{
		{20000, 80, 18000, 100}, // 0.90, 0.80
		{20000, 90, 16000, 100}, // 0.80, 0.90
		{10000, 70, 10000, 100}, // 1.00, 0.70
	}
	for i, p := range pairs {
		n := string(rune('1' + i))
		writeJSON(t, dir, "ref"+n+"-reference.json", result(loadgen.ClientCredentials, "", p.bareOps, p.bareCPU, 50, rn))
		writeJSON(t, dir, "ref"+n+"-castellan.json", result(loadgen.ClientCredentials, "", p.oursOps, p.oursCPU, 50, rn))
	}
	writeJSON(t, dir, "sqlite-client_credentials.json", result(loadgen.ClientCredentials, "sqlite", 15000, 100, 50, rn))
	signin := result(loadgen.SignIn, "sqlite", 30, 40000, 38000, rn)
	signin.Baseline.Argon2 = loadgen.Argon2Params{MemoryKiB: 19456, Iterations: 2, Parallelism: 1}
	signin.Baseline.Argon2Millis = 31.5
	writeJSON(t, dir, "sqlite-signin.json", signin)
	flood := result(loadgen.Refresh, "sqlite", 2300, 600, 100, rn)
	flood.Concurrency = 8
	flood.Server.PeakRSS = 227 << 20
	flood.Flood = &loadgen.Flood{Clients: 1000, Ops: 2014, Errors: 1701, Throughput: 28.3}
	writeJSON(t, dir, "sqlite-flood.json", flood)
	files := map[string]string{
		"when.txt":    "started 2026-12-04T21:00:00Z\nended 2026-12-04T21:15:00Z\n",
		"commit.txt":  "abc1234\n",
		"machine.txt": "cores: 2\ncpu: Test CPU\nmemory: 23 GiB\nkernel: Linux 6.18.44\n",
		"top.txt": "top - 21:22:44 up 42 min,  0 user,  load average: 8.92, 7.70, 4.49\n\n" +
			"  PID USER      PR  NI    VIRT    RES    SHR S  %CPU  %MEM     TIME+ COMMAND\n" +
			"12491 root      20   0 1663008 392268 252940 S 124.8   1.6   0:01.27 link\n" +
			"12034 root      20   0 1448.0g 183132 143064 S  31.0   0.7   0:00.58 chromium\n" +
			"11843 root      20   0 1807444  35736  22596 S   3.0   0.1   0:00.36 browser.test\n",
		"startup.txt": "== sqlite\nhealthy after 18 ms\nhealthy after 12 ms\nhealthy after 17 ms\nVmRSS:\t   27524 kB\n",
		"microbench.txt": "BenchmarkTokenEndpoint/client_credentials-2  1000  116079 ns/op  43964 es256-ns  2.640 x-es256  2.589 x-es256-cpu  28532 B/op  326 allocs/op\n" +
			"BenchmarkTokenEndpoint/client_credentials-2  1000  127171 ns/op  48061 es256-ns  2.646 x-es256  2.624 x-es256-cpu  28519 B/op  326 allocs/op\n" +
			"BenchmarkSignES256-2  27721  45947 ns/op\n",
	}
	if rn.startLoad != "" {
		files["machine.txt"] += "load: " + rn.startLoad + " 0.50 0.40 1/300 4242\n"
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func table(t *testing.T, dir string) string {
	t.Helper()
	rr, err := loadgen.ReadRerun(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := rr.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The report's ratios are computed from the run's own files: each pair's two
// ratios and their medians, each scenario's CPU in bare tokens and its floor
// over its CPU, the crypto cost measured beside them.
func TestRerunTableRatios(t *testing.T) {
	// The runs' own load averages count the bench itself; the machine was
	// quiet before it started.
	m := loadgen.Machine{CPU: "Test CPU", Cores: 2, GoVersion: "go1.26.8", OS: "linux/amd64", LoadAverage: 2.5}
	got := table(t, rerunDir(t, run{machine: m, startLoad: "0.30", seconds: 3, repeats: 3}))
	for _, want := range []string{
		"| 1 | 20,000 | 80 | 18,000 | 100 | 0.90 | 0.80 |",
		"| 3 | 10,000 | 70 | 10,000 | 100 | 1.00 | 0.70 |",
		"| **median** | | | | | **0.90** | **0.80** |",
		// 100 µs over the bare endpoint's median 80 µs per token; floor 50 ÷ 100.
		"| `client_credentials` | SQLite | 15,000 | 4.25 | 0 | 100 | 1.25 | 50 | 0.50 |",
		"| `signin` | SQLite | 30 | 4.25 | 0 | 40,000 | 500 | 38,000 | 0.95 |",
		"ES256 sign 50 µs, verify 110 µs; argon2id (m=19456 KiB, t=2, p=1) 31.5 ms",
		"at 32 connections, the median of 3 runs each;",
		"| sign-in flood: clients; sign-ins that succeeded; attempts refused | 1,000; 28.3/s; 1,701 of 2,014 |",
		"| server peak RSS during the flood | 227 MiB |",
		"| start to healthy, median of the starts | 17 ms (3 starts) |",
		"| idle RSS | 26.9 MiB |",
		"`client_credentials` 2.59, 2.62",
		"commit `abc1234`",
		`CPU "Test CPU", 23 GiB of memory, Linux 6.18.44, go1.26.8 linux/amd64; 1-minute load average before it started: 0.30 (busiest processes then: link 125%, chromium 31%).`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q\n%s", want, got)
		}
	}
	if strings.Contains(got, "Smoke run") {
		t.Errorf("a quiet full-length run marked as a smoke run:\n%s", got)
	}
	if !strings.HasPrefix(got, tableBegin) || !strings.HasSuffix(got, tableEnd+"\n") {
		t.Errorf("table not framed by its markers:\n%s", got)
	}
}

// A table from a machine busy before the script started, from short windows
// or from fewer runs per cell says in the table that it is a smoke run to be
// replaced; a full run on a quiet machine says nothing of the kind, however
// loaded the bench itself made it.
func TestRerunTableMarksSmokeRuns(t *testing.T) {
	tests := []struct {
		name      string
		startLoad string
		seconds   float64
		repeats   int
		wantSmoke []string
	}{
		{"ok/quiet", "0.40", 3, 3, nil},
		{"ok/not-recorded", "", 3, 3, nil},
		{"smoke/busy", "7.90", 3, 3, []string{"the machine was busy (load average 7.90 on 2 cores before it started"}},
		{"smoke/short", "0.40", 1, 3, []string{"the measured windows were 1.0 s"}},
		{"smoke/one-run", "0.40", 3, 1, []string{"each table cell is one run, not the median of 3"}},
		{"smoke/all", "7.90", 1, 1, []string{"busy", "1.0 s", "one run"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := loadgen.Machine{CPU: "Test CPU", Cores: 2, LoadAverage: 3.1}
			got := table(t, rerunDir(t, run{machine: m, startLoad: tt.startLoad, seconds: tt.seconds, repeats: tt.repeats}))
			if marked := strings.Contains(got, "Smoke run, to be replaced"); marked != (tt.wantSmoke != nil) {
				t.Fatalf("marked as a smoke run: got %v, want %v\n%s", marked, tt.wantSmoke != nil, got)
			}
			for _, want := range tt.wantSmoke {
				if !strings.Contains(got, want) {
					t.Errorf("smoke note lacks %q\n%s", want, got)
				}
			}
			if tt.startLoad == "" && !strings.Contains(got, "load average before it started: not recorded") {
				t.Errorf("an unrecorded load is not said to be so:\n%s", got)
			}
		})
	}
}

func TestReadRerunRefusesBrokenResult(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "sqlite-refresh.json"), []byte(`{"scenario": "refresh",`), 0o644)
	if _, err := loadgen.ReadRerun(dir); err == nil || !strings.Contains(err.Error(), "sqlite-refresh.json") {
		t.Errorf("got %v, want an error naming the file", err)
	}
	empty := table(t, t.TempDir())
	if !strings.Contains(empty, "No results.") {
		t.Errorf("empty directory: got\n%s", empty)
	}
}

// SpliceTable replaces the generated part of the report and nothing else, and
// refuses a report or a table without its markers.
func TestSpliceTable(t *testing.T) {
	table := tableBegin + "\n\nnew figures\n\n" + tableEnd + "\n"
	tests := []struct {
		name, doc, table, want, wantErr string
	}{
		{name: "ok/replaces", doc: "# Report\n\n" + tableBegin + "\nold figures\n" + tableEnd + "\n\n## Charts\n", table: table,
			want: "# Report\n\n" + table + "\n## Charts\n"},
		{name: "ok/at-end", doc: "intro\n" + tableBegin + "\nold\n" + tableEnd, table: table, want: "intro\n" + table},
		{name: "fail/no-markers", doc: "# Report\n", table: table, wantErr: "no generated table"},
		{name: "fail/end-before-begin", doc: tableEnd + "\n" + tableBegin + "\n", table: table, wantErr: "no generated table"},
		{name: "fail/twice", doc: tableBegin + "\n" + tableEnd + "\n" + tableBegin + "\n" + tableEnd + "\n", table: table, wantErr: "more than once"},
		{name: "fail/table-without-markers", doc: tableBegin + "\n" + tableEnd + "\n", table: "figures\n", wantErr: "lacks its markers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadgen.SpliceTable([]byte(tt.doc), []byte(tt.table))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}
