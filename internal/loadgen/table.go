package loadgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Backends are the storage backends a rerun measures, in the order the report
// lists them, by the labels docs/bench/rerun.sh gives their results.
var Backends = []string{"sqlite", "postgres"}

// The markers around the part of the report that WriteMarkdown writes, so
// that SpliceTable can replace it and nothing else.
const (
	tableBegin = "<!-- castellan-bench --table: generated, do not edit by hand -->"
	tableEnd   = "<!-- end of castellan-bench --table -->"
)

// reportWindowSeconds and reportRepeats are the measured window and the runs
// per table cell docs/bench/rerun.sh takes unless told otherwise (DURATION,
// REPEAT): a table from shorter windows or fewer runs is a smoke run.
const (
	reportWindowSeconds = 3
	reportRepeats       = 3
)

// busiestShown is how many of the busiest other processes (top.txt) the
// table names, and busyPercent the CPU share from which one counts.
const (
	busiestShown = 3
	busyPercent  = 5.0
)

// Rerun is what docs/bench/rerun.sh wrote into one directory: every scenario
// on every backend, the pairs against the bare reference endpoint, the
// overload and open-model runs, start-up and the micro-benchmarks.
type Rerun struct {
	// Scenarios holds each backend's scenario runs, by backend then scenario.
	Scenarios map[string]map[string]*Result
	// Pairs are the alternating runs against the reference endpoint and
	// against Castellan, in the order they ran.
	Pairs []Pair
	// Flood, OpenCC and OpenRefresh are the overload and open-model runs,
	// by backend.
	Flood, OpenCC, OpenRefresh map[string]*Result
	// Startup is start to healthy and idle RSS, by backend.
	Startup map[string]Startup
	// TokenEndpoint holds the token endpoint micro-benchmark's cost in CPU
	// time of one ES256 signature (x-es256-cpu), by grant, every run.
	TokenEndpoint map[string][]float64
	// When and Commit are as rerun.sh noted them (empty if it did not).
	When, Commit string
	// Memory and StartLoad describe the machine as rerun.sh found it before
	// it started anything (machine.txt): its memory, and the 1-minute load
	// average then, which says whether something else was running (negative
	// when not recorded). The load averages in the results themselves count
	// the bench's own server, load generator and PostgreSQL.
	Memory, Kernel string
	StartLoad      float64
	// Busiest names the processes that used the most CPU in the second
	// before the script started (top.txt), with their share: "link 125%".
	Busiest []string
}

// Pair is one reference run and the Castellan run beside it.
type Pair struct{ Reference, Castellan *Result }

// ThroughputRatio is Castellan's throughput over the bare endpoint's.
func (p Pair) ThroughputRatio() float64 {
	return ratio(p.Castellan.Throughput, p.Reference.Throughput)
}

// CPURatio is the bare endpoint's server CPU per token over Castellan's: the
// share of Castellan's cost that signing alone accounts for.
func (p Pair) CPURatio() float64 { return ratio(cpuPerOp(p.Reference), cpuPerOp(p.Castellan)) }

// Startup is start to healthy, every start, and the idle RSS after the last.
type Startup struct {
	HealthyMillis []float64
	IdleRSSKiB    int64
}

// ReadRerun reads the results in dir. Files that are missing leave their part
// empty; a file that is there but does not parse is an error.
func ReadRerun(dir string) (*Rerun, error) {
	rr := &Rerun{
		Scenarios: map[string]map[string]*Result{}, Flood: map[string]*Result{},
		OpenCC: map[string]*Result{}, OpenRefresh: map[string]*Result{},
		Startup: map[string]Startup{}, TokenEndpoint: map[string][]float64{}, StartLoad: -1,
	}
	read := func(name string) (*Result, error) { return readResult(filepath.Join(dir, name)) }
	for _, b := range Backends {
		for _, s := range Scenarios {
			res, err := read(b + "-" + s + ".json")
			if err != nil {
				return nil, err
			}
			if res != nil {
				if rr.Scenarios[b] == nil {
					rr.Scenarios[b] = map[string]*Result{}
				}
				rr.Scenarios[b][s] = res
			}
		}
		for name, into := range map[string]map[string]*Result{"flood": rr.Flood, "open-cc": rr.OpenCC, "open-refresh": rr.OpenRefresh} {
			res, err := read(b + "-" + name + ".json")
			if err != nil {
				return nil, err
			}
			if res != nil {
				into[b] = res
			}
		}
	}
	for i := 1; ; i++ {
		ref, err := read(fmt.Sprintf("ref%d-reference.json", i))
		if err != nil {
			return nil, err
		}
		ours, err := read(fmt.Sprintf("ref%d-castellan.json", i))
		if err != nil {
			return nil, err
		}
		if ref == nil || ours == nil {
			break
		}
		rr.Pairs = append(rr.Pairs, Pair{Reference: ref, Castellan: ours})
	}
	if err := rr.readText(dir); err != nil {
		return nil, err
	}
	return rr, nil
}

// readResult reads one --json result; nil, nil when the file does not exist.
func readResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// readText reads the files rerun.sh writes as text: when it ran, the commit,
// start-up and the micro-benchmarks.
func (rr *Rerun) readText(dir string) error {
	for name, into := range map[string]*string{"when.txt": &rr.When, "commit.txt": &rr.Commit} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		*into = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "machine.txt")); err == nil {
		rr.parseMachine(b)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if b, err := os.ReadFile(filepath.Join(dir, "top.txt")); err == nil {
		rr.Busiest = parseTop(b)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if b, err := os.ReadFile(filepath.Join(dir, "startup.txt")); err == nil {
		rr.Startup = parseStartup(b)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if b, err := os.ReadFile(filepath.Join(dir, "microbench.txt")); err == nil {
		rr.TokenEndpoint = parseTokenEndpointBench(b)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// parseMachine reads rerun.sh's machine.txt, lines of "key: value"; it uses
// "memory" and the first field of "load" (/proc/loadavg).
func (rr *Rerun) parseMachine(b []byte) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.TrimSpace(key) {
		case "memory":
			rr.Memory = value
		case "kernel":
			rr.Kernel = value
		case "load":
			if f := strings.Fields(value); len(f) > 0 {
				if v, err := strconv.ParseFloat(f[0], 64); err == nil {
					rr.StartLoad = v
				}
			}
		}
	}
}

// parseTop reads one frame of top -b: the processes below its PID header
// line, busiest first, of which it keeps those at busyPercent or more.
func parseTop(b []byte) []string {
	var out []string
	cpuCol, commandCol := -1, -1
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 && f[0] == "PID" {
			cpuCol, commandCol = slices.Index(f, "%CPU"), slices.Index(f, "COMMAND")
			continue
		}
		if cpuCol < 0 || commandCol < 0 || len(f) <= max(cpuCol, commandCol) || len(out) == busiestShown {
			continue
		}
		if cpu, err := strconv.ParseFloat(f[cpuCol], 64); err == nil && cpu >= busyPercent {
			out = append(out, fmt.Sprintf("%s %.0f%%", f[commandCol], cpu))
		}
	}
	return out
}

// parseStartup reads rerun.sh's startup.txt: "== BACKEND", then a line
// "healthy after N ms" per start and "VmRSS: N kB" after the last.
func parseStartup(b []byte) map[string]Startup {
	out := map[string]Startup{}
	backend := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if name, ok := strings.CutPrefix(line, "== "); ok {
			backend = name
			continue
		}
		st := out[backend]
		if v, ok := strings.CutPrefix(line, "healthy after "); ok {
			if ms, err := strconv.ParseFloat(strings.TrimSuffix(v, " ms"), 64); err == nil {
				st.HealthyMillis = append(st.HealthyMillis, ms)
			}
		} else if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			st.IdleRSSKiB, _ = strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
		if backend != "" {
			out[backend] = st
		}
	}
	return out
}

// parseTokenEndpointBench picks the x-es256-cpu figure of every
// BenchmarkTokenEndpoint/GRANT line of go test -bench output.
func parseTokenEndpointBench(b []byte) map[string][]float64 {
	out := map[string][]float64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		grant, ok := strings.CutPrefix(f[0], "BenchmarkTokenEndpoint/")
		if !ok {
			continue
		}
		if i := strings.LastIndexByte(grant, '-'); i > 0 {
			grant = grant[:i] // the GOMAXPROCS suffix
		}
		for i := 1; i < len(f); i++ {
			if f[i] != "x-es256-cpu" {
				continue
			}
			if v, err := strconv.ParseFloat(f[i-1], 64); err == nil {
				out[grant] = append(out[grant], v)
			}
		}
	}
	return out
}

// WriteMarkdown writes the report's tables: the crypto cost measured in the
// run, Castellan against the bare endpoint, every scenario as ratios to both,
// the overload and open-model runs, start-up, and the in-process token
// endpoint; framed by the markers SpliceTable looks for.
func (rr *Rerun) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString(tableBegin + "\n\n")
	rr.writeHeader(&b)
	rr.writeBaseline(&b)
	rr.writePairs(&b)
	rr.writeScenarios(&b)
	rr.writePressure(&b)
	rr.writeMicro(&b)
	b.WriteString(tableEnd + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// all returns every result of the rerun, for what they share (the machine).
func (rr *Rerun) all() []*Result {
	var out []*Result
	for _, b := range Backends {
		for _, s := range Scenarios {
			if r := rr.Scenarios[b][s]; r != nil {
				out = append(out, r)
			}
		}
		for _, m := range []map[string]*Result{rr.Flood, rr.OpenCC, rr.OpenRefresh} {
			if r := m[b]; r != nil {
				out = append(out, r)
			}
		}
	}
	for _, p := range rr.Pairs {
		out = append(out, p.Reference, p.Castellan)
	}
	return out
}

func (rr *Rerun) writeHeader(b *strings.Builder) {
	all := rr.all()
	if len(all) == 0 {
		b.WriteString("No results.\n\n")
		return
	}
	m := all[0].Machine
	window := all[0].Seconds
	for _, r := range all {
		window = min(window, r.Seconds)
	}
	when := strings.ReplaceAll(rr.When, "\n", ", ")
	if when == "" {
		when = "at " + all[0].Started.UTC().Format("2006-01-02 15:04 UTC")
	}
	commit := ""
	if rr.Commit != "" {
		commit = fmt.Sprintf(", commit `%s`", rr.Commit)
	}
	memory := ""
	if rr.Memory != "" {
		memory = ", " + rr.Memory + " of memory"
	}
	if rr.Kernel != "" {
		memory += ", " + rr.Kernel
	}
	load := "not recorded"
	if rr.StartLoad >= 0 {
		load = strconv.FormatFloat(rr.StartLoad, 'f', 2, 64)
	}
	others := ""
	if len(rr.Busiest) > 0 {
		others = fmt.Sprintf(" (busiest processes then: %s)", strings.Join(rr.Busiest, ", "))
	}
	fmt.Fprintf(b, "Measured by `docs/bench/rerun.sh` (%s%s) on %d cores, CPU %q%s, %s %s; "+
		"1-minute load average before it started: %s%s.\n\n", when, commit, m.Cores, m.CPU, memory, m.GoVersion, m.OS, load, others)
	var smoke []string
	if busy := 0.5 * float64(m.Cores); rr.StartLoad > busy {
		smoke = append(smoke, fmt.Sprintf("the machine was busy (load average %.2f on %d cores before it started; above %.1f the figures are not comparable)", rr.StartLoad, m.Cores, busy))
	}
	if window < reportWindowSeconds-0.5 {
		smoke = append(smoke, fmt.Sprintf("the measured windows were %.1f s, shorter than the %d s the script takes by default", window, reportWindowSeconds))
	}
	if n := rr.repeats(); n > 0 && n < reportRepeats {
		smoke = append(smoke, fmt.Sprintf("each table cell is %s, not the median of %d", runsOf(n), reportRepeats))
	}
	if len(smoke) > 0 {
		fmt.Fprintf(b, "> **Smoke run, to be replaced**: %s. Rerun on a quiet machine before quoting any figure.\n\n", strings.Join(smoke, "; "))
	}
}

// repeats is the number of runs behind each scenario's figures (0 without
// scenario results).
func (rr *Rerun) repeats() int {
	n := 0
	for _, runs := range rr.Scenarios {
		for _, r := range runs {
			n = max(n, len(r.Repeats), 1)
		}
	}
	return n
}

func runsOf(n int) string {
	if n == 1 {
		return "one run"
	}
	return fmt.Sprintf("the median of %d runs", n)
}

func (rr *Rerun) writeBaseline(b *strings.Builder) {
	var parts []string
	for _, backend := range Backends {
		runs := rr.Scenarios[backend]
		cc, signin := runs[ClientCredentials], runs[SignIn]
		var costs []string
		if cc != nil && cc.Baseline != nil {
			bl := cc.Baseline
			costs = append(costs, fmt.Sprintf("%s sign %.0f µs, verify %.0f µs", bl.AccessAlg, bl.SignMicros[bl.AccessAlg], bl.VerifyMicros[bl.AccessAlg]))
		}
		if signin != nil && signin.Baseline != nil && signin.Baseline.Argon2Millis > 0 {
			a := signin.Baseline.Argon2
			costs = append(costs, fmt.Sprintf("argon2id (m=%d KiB, t=%d, p=%d) %.1f ms", a.MemoryKiB, a.Iterations, a.Parallelism, signin.Baseline.Argon2Millis))
		}
		if len(costs) > 0 {
			parts = append(parts, fmt.Sprintf("beside the %s runs %s", backendName(backend), strings.Join(costs, "; ")))
		}
	}
	if len(parts) == 0 {
		return
	}
	fmt.Fprintf(b, "**The raw crypto cost, measured in the same run** (CPU time on one core, go-jose and x/crypto, "+
		"in the load generator's process before each scenario): %s. Each scenario's floor below is made of the costs measured beside it.\n\n", strings.Join(parts, "; "))
}

func (rr *Rerun) writePairs(b *strings.Builder) {
	if len(rr.Pairs) == 0 {
		return
	}
	fmt.Fprintf(b, "**Castellan against the bare token endpoint** (`--serve-reference`: a Basic header check and one go-jose signature), "+
		"`client_credentials` at %d connections, alternating, each pair within the same minute, a fresh SQLite server each:\n\n", rr.Pairs[0].Castellan.Concurrency)
	b.WriteString("| pair | bare ops/s | bare CPU µs/token | Castellan ops/s | Castellan CPU µs/token | throughput: Castellan ÷ bare | CPU per token: bare ÷ Castellan |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	var tp, cpu []float64
	for i, p := range rr.Pairs {
		tp, cpu = append(tp, p.ThroughputRatio()), append(cpu, p.CPURatio())
		fmt.Fprintf(b, "| %d | %s | %s | %s | %s | %s | %s |\n", i+1,
			count(p.Reference.Throughput), count(cpuPerOp(p.Reference)), count(p.Castellan.Throughput), count(cpuPerOp(p.Castellan)),
			num(p.ThroughputRatio(), 2), num(p.CPURatio(), 2))
	}
	fmt.Fprintf(b, "| **median** | | | | | **%s** | **%s** |\n\n", num(median(tp), 2), num(median(cpu), 2))
}

// bareTokenMicros is the median CPU per token of the reference runs: the unit
// of the scenario table's "in bare tokens" column (0 without pairs).
func (rr *Rerun) bareTokenMicros() float64 {
	var us []float64
	for _, p := range rr.Pairs {
		us = append(us, cpuPerOp(p.Reference))
	}
	return median(us)
}

func (rr *Rerun) writeScenarios(b *strings.Builder) {
	var rows []string
	conc := 0
	bare := rr.bareTokenMicros()
	for _, s := range Scenarios {
		for _, backend := range Backends {
			r := rr.Scenarios[backend][s]
			if r == nil {
				continue
			}
			conc = r.Concurrency
			rows = append(rows, fmt.Sprintf("| `%s` | %s | %s | %s | %d | %s | %s | %s | %s |", s, backendName(backend),
				count(r.Throughput), millis(r.Latency.P99), r.Errors, count(cpuPerOp(r)),
				multiple(ratio(cpuPerOp(r), bare)), count(r.FloorMicros), num(r.Efficiency, 2)))
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(b, "**Every scenario** at %d connections, %s each; one server per backend runs them in this order. "+
		"*In bare tokens*: the server's CPU per operation over the bare endpoint's CPU per token (the pairs' median). "+
		"*Floor ÷ CPU*: the operation's raw crypto cost over the server's CPU per operation (above 1 where the server remembers tokens it verified):\n\n", conc, runsOf(rr.repeats()))
	b.WriteString("| scenario | backend | ops/s | p99 ms | errors | server CPU µs/op | in bare tokens | crypto floor µs/op | floor ÷ CPU |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	b.WriteString(strings.Join(rows, "\n") + "\n\n")
}

func (rr *Rerun) writePressure(b *strings.Builder) {
	var present []string
	for _, backend := range Backends {
		if rr.Flood[backend] != nil || rr.OpenCC[backend] != nil || rr.OpenRefresh[backend] != nil || len(rr.Startup[backend].HealthyMillis) > 0 {
			present = append(present, backend)
		}
	}
	if len(present) == 0 {
		return
	}
	row := func(name string, cell func(backend string) string) {
		cells := []string{name}
		for _, backend := range present {
			cells = append(cells, cell(backend))
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	b.WriteString("**Under pressure and at rest**:\n\n|")
	for _, backend := range present {
		b.WriteString(" | " + backendName(backend))
	}
	b.WriteString(" |\n|---" + strings.Repeat("|---", len(present)) + "|\n")
	row("sign-in flood: clients; sign-ins that succeeded; attempts refused", func(backend string) string {
		r := rr.Flood[backend]
		if r == nil || r.Flood == nil {
			return "–"
		}
		return fmt.Sprintf("%s; %s/s; %s of %s", count(float64(r.Flood.Clients)), num(r.Flood.Throughput, 1), countOrZero(r.Flood.Errors), countOrZero(r.Flood.Ops))
	})
	row("server peak RSS during the flood", func(backend string) string {
		if r := rr.Flood[backend]; r != nil && r.Server != nil {
			return fmt.Sprintf("%s MiB", num(float64(r.Server.PeakRSS)/(1<<20), 0))
		}
		return "–"
	})
	row("`refresh` beside the flood: clients; ops/s; p99", func(backend string) string {
		if r := rr.Flood[backend]; r != nil {
			return fmt.Sprintf("%d; %s/s; %s ms", r.Concurrency, count(r.Throughput), millis(r.Latency.P99))
		}
		return "–"
	})
	for _, open := range []struct {
		name string
		runs map[string]*Result
	}{{"client_credentials", rr.OpenCC}, {"refresh", rr.OpenRefresh}} {
		row(fmt.Sprintf("open model, `%s`: scheduled; achieved; p99 from the schedule", open.name), func(backend string) string {
			if r := open.runs[backend]; r != nil {
				return fmt.Sprintf("%s/s; %s/s; %s ms", count(r.Rate), count(r.Throughput), millis(r.Latency.P99))
			}
			return "–"
		})
	}
	row("start to healthy, median of the starts", func(backend string) string {
		if st := rr.Startup[backend]; len(st.HealthyMillis) > 0 {
			return fmt.Sprintf("%s ms (%d starts)", num(median(st.HealthyMillis), 0), len(st.HealthyMillis))
		}
		return "–"
	})
	row("idle RSS", func(backend string) string {
		if st := rr.Startup[backend]; st.IdleRSSKiB > 0 {
			return fmt.Sprintf("%s MiB", num(float64(st.IdleRSSKiB)/1024, 1))
		}
		return "–"
	})
	b.WriteString("\n")
}

func (rr *Rerun) writeMicro(b *strings.Builder) {
	var parts []string
	for _, grant := range []string{"client_credentials", "authorization_code", "refresh_token"} {
		vs := rr.TokenEndpoint[grant]
		if len(vs) == 0 {
			continue
		}
		var s []string
		for _, v := range vs {
			s = append(s, num(v, 2))
		}
		parts = append(parts, fmt.Sprintf("`%s` %s", grant, strings.Join(s, ", ")))
	}
	if len(parts) == 0 {
		return
	}
	fmt.Fprintf(b, "**In process** (`BenchmarkTokenEndpoint`, client and provider in one process, no network), "+
		"one token request in CPU time of one ES256 signature timed beside it, every run: %s.\n\n", strings.Join(parts, "; "))
}

// SpliceTable returns doc with the generated part (between the markers
// WriteMarkdown writes) replaced by table, which must carry the markers too.
func SpliceTable(doc, table []byte) ([]byte, error) {
	begin := bytes.Index(doc, []byte(tableBegin))
	end := bytes.Index(doc, []byte(tableEnd))
	if begin < 0 || end < begin {
		return nil, fmt.Errorf("no generated table to replace: the report needs the lines %q and %q", tableBegin, tableEnd)
	}
	if bytes.Count(doc, []byte(tableBegin)) > 1 {
		return nil, errors.New("the report holds the table's first marker more than once")
	}
	if !bytes.HasPrefix(table, []byte(tableBegin)) || !bytes.HasSuffix(bytes.TrimSpace(table), []byte(tableEnd)) {
		return nil, errors.New("the table lacks its markers")
	}
	end += len(tableEnd)
	if end < len(doc) && doc[end] == '\n' {
		end++
	}
	out := slices.Concat(doc[:begin], table, doc[end:])
	return out, nil
}

func backendName(label string) string {
	switch label {
	case "sqlite":
		return "SQLite"
	case "postgres":
		return "PostgreSQL"
	}
	return label
}

func cpuPerOp(r *Result) float64 {
	if r == nil || r.Server == nil {
		return 0
	}
	return r.Server.CPUMicrosPerOp
}

// ratio is a / b, or 0 when either is not a measurement.
func ratio(a, b float64) float64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return a / b
}

// median of vs (the mean of the middle two for an even count; 0 for none).
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(vs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// num formats v with prec decimals, or an en dash when it is not a measurement.
func num(v float64, prec int) string {
	if v <= 0 {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// multiple formats a ratio above 1 with the digits that matter: 1.25, 12.5, 125.
func multiple(v float64) string {
	switch {
	case v < 10:
		return num(v, 2)
	case v < 100:
		return num(v, 1)
	}
	return num(v, 0)
}

// millis formats a latency in ms with three significant digits or so, as the
// load generator's text report does: 4.25, 42.5, 425, 4,250.
func millis(v float64) string {
	switch {
	case v < 10:
		return num(v, 2)
	case v < 100:
		return num(v, 1)
	}
	return count(v)
}

// countOrZero is count for tallies, where 0 is a figure, not a missing one.
func countOrZero(n int64) string {
	if n == 0 {
		return "0"
	}
	return count(float64(n))
}

// count formats a rate with thousands separators, as the report writes them.
func count(v float64) string {
	if v <= 0 {
		return "–"
	}
	s := strconv.FormatFloat(v, 'f', 0, 64)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}
