package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is one measured run. Its JSON form is what --json prints.
type Result struct {
	Scenario      string         `json:"scenario"`
	Label         string         `json:"label,omitempty"`
	Target        string         `json:"target"`
	Mix           map[string]int `json:"mix,omitempty"`
	Model         string         `json:"model"` // closed or open
	Concurrency   int            `json:"concurrency"`
	Rate          float64        `json:"rate,omitempty"`
	Started       time.Time      `json:"started"`
	Seconds       float64        `json:"seconds"`
	WarmupSeconds float64        `json:"warmup_seconds"`

	// Ops counts finished operations (one flow each: a silent renewal is an
	// authorization request and a token request), Errors the failed ones,
	// Requests the HTTP exchanges of all of them.
	Ops      int64 `json:"ops"`
	Errors   int64 `json:"errors"`
	Requests int64 `json:"requests"`
	// Throughput is successful operations per second; RequestRate HTTP
	// exchanges per second.
	Throughput  float64 `json:"throughput"`
	RequestRate float64 `json:"requests_per_second"`
	// Repeats, when the run was repeated, holds every run's throughput; the
	// other figures are those of the median run.
	Repeats []float64 `json:"repeats,omitempty"`
	// Latency is of successful operations; in the open model from the intended
	// start, so queueing is included.
	Latency Summary            `json:"latency"`
	Kinds   map[string]Summary `json:"kinds,omitempty"`
	Steps   map[string]Summary `json:"steps"`
	// SendLag (open model) is how late operations started against the
	// schedule; Backlog how many scheduled ones never started in the window.
	SendLag *Summary `json:"send_lag,omitempty"`
	Backlog int64    `json:"backlog,omitempty"`

	ErrorsByStatus map[string]int64  `json:"errors_by_status,omitempty"`
	ErrorSamples   map[string]string `json:"error_samples,omitempty"`

	// Flood is the background sign-in flood, if one ran (Options.FloodSignIns).
	Flood *Flood `json:"flood,omitempty"`

	Server  *ProcessStats `json:"server,omitempty"`
	Loadgen *ProcessStats `json:"loadgen,omitempty"`

	Baseline *Baseline `json:"baseline,omitempty"`
	// FloorMicros is the cryptography one operation cannot avoid (the
	// baseline's signatures, verifications and hashes it needs), in µs.
	FloorMicros float64 `json:"floor_us_per_op,omitempty"`
	// CeilingThroughput is what every core doing nothing but that floor would
	// reach; CeilingFraction is Throughput over it.
	CeilingThroughput float64 `json:"ceiling_throughput,omitempty"`
	CeilingFraction   float64 `json:"ceiling_fraction,omitempty"`
	// Efficiency is FloorMicros over the server's CPU µs per operation (needs
	// ServerPID). For client_credentials: µs of one signature ÷ server CPU-µs
	// per token.
	Efficiency float64 `json:"efficiency,omitempty"`

	Machine Machine `json:"machine"`
}

// derive computes the figures that combine the baseline with the run.
func (r *Result) derive() {
	if r.FloorMicros <= 0 {
		return
	}
	r.CeilingThroughput = float64(r.Machine.Cores) * 1e6 / r.FloorMicros
	r.CeilingFraction = r.Throughput / r.CeilingThroughput
	if r.Server != nil && r.Server.CPUMicrosPerOp > 0 {
		r.Efficiency = r.FloorMicros / r.Server.CPUMicrosPerOp
	}
}

// warnings say when figures should not be trusted.
func (r *Result) warnings() []string {
	var ws []string
	if r.Machine.LoadAverage > 0.5*float64(r.Machine.Cores) {
		ws = append(ws, fmt.Sprintf("load average %.2f on %d cores before the run: the machine was busy, figures are not comparable", r.Machine.LoadAverage, r.Machine.Cores))
	}
	if r.Efficiency > 1 {
		ws = append(ws, "efficiency above 1: either the server did less cryptography than the floor counts (it remembers tokens it verified, so repeated introspection and userinfo calls skip the signature check), or the baseline and the server were measured under different contention")
	}
	if r.Loadgen != nil && r.Server != nil && r.Loadgen.Cores+r.Server.Cores > 0.9*float64(r.Machine.Cores) {
		ws = append(ws, fmt.Sprintf("server and load generator used %.2f of %d cores: the load generator may be limiting throughput", r.Loadgen.Cores+r.Server.Cores, r.Machine.Cores))
	}
	return ws
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func fms(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f ms", v)
}

func percentiles(s Summary) string {
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s  mean %s", fms(s.P50), fms(s.P90), fms(s.P99), fms(s.Max), fms(s.Mean))
}

// WriteText writes the result for people.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	load := fmt.Sprintf("closed loop, %d virtual clients", r.Concurrency)
	if r.Model == "open" {
		load = fmt.Sprintf("open model, %g ops/s scheduled, at most %d in flight", r.Rate, r.Concurrency)
	}
	label := ""
	if r.Label != "" {
		label = " [" + r.Label + "]"
	}
	p("castellan-bench: %s%s against %s (%s, %.1fs measured after %.0fs warm-up)\n", r.Scenario, label, r.Target, load, r.Seconds, r.WarmupSeconds)
	if len(r.Mix) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.Mix)) {
			parts = append(parts, fmt.Sprintf("%s=%d", k, r.Mix[k]))
		}
		p("  mix         %s\n", strings.Join(parts, " "))
	}
	p("  throughput  %.1f ops/s  (%.1f HTTP requests/s; %d ops, %d errors)\n", r.Throughput, r.RequestRate, r.Ops, r.Errors)
	if len(r.Repeats) > 1 {
		var parts []string
		for _, t := range r.Repeats {
			parts = append(parts, fmt.Sprintf("%.1f", t))
		}
		p("  repeats     %d runs: %s ops/s; the figures here are the median run's\n", len(r.Repeats), strings.Join(parts, ", "))
	}
	p("  latency     %s\n", percentiles(r.Latency))
	if r.SendLag != nil {
		p("  send lag    p50 %s  p99 %s  max %s  (start behind schedule); backlog %d\n", fms(r.SendLag.P50), fms(r.SendLag.P99), fms(r.SendLag.Max), r.Backlog)
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	if len(r.Kinds) > 0 {
		for _, k := range slices.Sorted(maps.Keys(r.Kinds)) {
			s := r.Kinds[k]
			fmt.Fprintf(tw, "  kind\t%s\t%d ok\t%s\n", k, s.Count, percentiles(s))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Steps)) {
		s := r.Steps[k]
		fmt.Fprintf(tw, "  step\t%s\t%d\t%s\n", k, s.Count, percentiles(s))
	}
	tw.Flush()
	if len(r.ErrorsByStatus) > 0 {
		var parts []string
		keys := slices.SortedFunc(maps.Keys(r.ErrorsByStatus), func(a, b string) int { return int(r.ErrorsByStatus[b] - r.ErrorsByStatus[a]) })
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s ×%d", k, r.ErrorsByStatus[k]))
		}
		p("  errors      %s\n", strings.Join(parts, ", "))
		for _, k := range keys {
			p("    first %s: %s\n", k, r.ErrorSamples[k])
		}
	}
	if f := r.Flood; f != nil {
		p("  flood       %d sign-in clients in the background: %.1f sign-ins/s, %d attempts, %d refused or failed", f.Clients, f.Throughput, f.Ops, f.Errors)
		if len(f.ErrorsByStatus) > 0 {
			var parts []string
			for _, k := range slices.Sorted(maps.Keys(f.ErrorsByStatus)) {
				parts = append(parts, fmt.Sprintf("%s ×%d", k, f.ErrorsByStatus[k]))
			}
			p(" (%s)", strings.Join(parts, ", "))
		}
		p("\n              successful sign-ins: %s\n", percentiles(f.Latency))
	}
	if s := r.Server; s != nil {
		p("  server      pid %d: CPU %.2fs = %.0f µs/op (%.2f cores)\n", s.PID, s.CPUSeconds, s.CPUMicrosPerOp, s.Cores)
		p("  server RSS  peak %s in the window (%s at its start, %s before setup; lifetime high-water %s)\n",
			mib(s.PeakRSS), mib(s.WindowStartRSS), mib(s.StartRSS), mib(s.HWM))
	}
	if s := r.Loadgen; s != nil {
		p("  load gen    CPU %.2fs = %.0f µs/op (%.2f cores); peak RSS %s\n", s.CPUSeconds, s.CPUMicrosPerOp, s.Cores, mib(s.PeakRSS))
	}
	if bl := r.Baseline; bl != nil {
		var parts []string
		for _, alg := range uniq(bl.AccessAlg, bl.IDAlg) {
			parts = append(parts, fmt.Sprintf("%s sign %.0f µs, verify %.0f µs", alg, bl.SignMicros[alg], bl.VerifyMicros[alg]))
		}
		if bl.Argon2Millis > 0 {
			parts = append(parts, fmt.Sprintf("argon2id m=%d t=%d p=%d %.1f ms", bl.Argon2.MemoryKiB, bl.Argon2.Iterations, bl.Argon2.Parallelism, bl.Argon2Millis))
		}
		p("  baseline    %s (CPU time, one core, this process)\n", strings.Join(parts, "; "))
	}
	if r.FloorMicros > 0 {
		p("  ceiling     crypto floor %.0f µs/op → %.0f ops/s on %d cores; throughput is %.1f%% of it\n",
			r.FloorMicros, r.CeilingThroughput, r.Machine.Cores, 100*r.CeilingFraction)
	}
	if r.Efficiency > 0 {
		p("  efficiency  %.2f  (floor %.0f µs ÷ server CPU %.0f µs per op)\n", r.Efficiency, r.FloorMicros, r.Server.CPUMicrosPerOp)
	}
	for _, w := range r.warnings() {
		p("  warning     %s\n", w)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteSweepTable writes one line per result of a sweep, as a Markdown table
// ready for BENCHMARKS.md.
func WriteSweepTable(w io.Writer, results []*Result) error {
	var b strings.Builder
	b.WriteString("| concurrency | ops/s | p50 ms | p90 ms | p99 ms | max ms | errors | server CPU µs/op | efficiency | peak RSS MiB |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		cpu, eff, rss := "–", "–", "–"
		if r.Server != nil {
			cpu = fmt.Sprintf("%.0f", r.Server.CPUMicrosPerOp)
			rss = fmt.Sprintf("%.1f", float64(r.Server.PeakRSS)/(1<<20))
		}
		if r.Efficiency > 0 {
			eff = fmt.Sprintf("%.2f", r.Efficiency)
		}
		fmt.Fprintf(&b, "| %d | %.0f | %.2f | %.2f | %.2f | %.2f | %d | %s | %s | %s |\n",
			r.Concurrency, r.Throughput, r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max, r.Errors, cpu, eff, rss)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
