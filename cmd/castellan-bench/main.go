// Command castellan-bench is Castellan's load generator: it drives real
// OAuth/OIDC flows against a running provider and reports what they cost. It
// is a command of its own, not part of the castellan binary, so that the
// binary people deploy links none of its charting, font or PDF packages.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/loadgen"
)

const usage = `Usage: castellan-bench --config FILE --scenario NAME [flags]
       castellan-bench --print-config [--target URL] > bench.yaml
       castellan-bench --config FILE --serve-reference ADDR
       castellan-bench --table DIR [--report FILE]

Drives real OAuth/OIDC flows over HTTP against a running Castellan and reports
throughput, latency percentiles, errors by status, and (with --server-pid) the
server's CPU time per operation and peak RSS, next to a baseline measured in the
same run: one signature with the server's algorithm and one argon2id hash.

Scenarios: client_credentials, refresh, silent, signin, introspect, userinfo, mixed.
The clients and users it needs are declared in the provider's config; write one
with --print-config, start the provider with it, and pass the same file here.

--serve-reference ADDR serves, instead, the floor client_credentials is compared
with: a bare net/http token endpoint that checks the service client's Basic
header and signs one JWT with go-jose. Run it as a second process and point a
client_credentials run at it (--target http://ADDR --server-pid PID) in the same
minutes as the run against Castellan: the ratio of the two depends far less on
the machine and the hour than either rate does.

--table DIR reads the results docs/bench/rerun.sh wrote into DIR and prints the
tables of BENCHMARKS.md as Markdown; with --report FILE it replaces the
generated part of FILE with them instead.

Flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "castellan-bench:", err)
		os.Exit(1)
	}
}

// flags are the command line, parsed.
type flags struct {
	target, cfgPath, scenario, mix, sweep, chartDir, label string
	serveReference, cpuProfile, table, report              string
	printConfig, asJSON, netHTTP, noBaseline, quiet        bool
	duration, warmup, timeout, baselineTime                time.Duration
	concurrency, repeat, serverPID, flood                  int
	rate                                                   float64
	concurrencySet                                         bool
}

func parseFlags(args []string, stderr io.Writer) (*flags, error) {
	fs := flag.NewFlagSet("castellan-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	var f flags
	fs.StringVar(&f.target, "target", "", "issuer `URL` of the running provider (default: the config's issuer)")
	fs.StringVar(&f.cfgPath, "config", "", "the provider's config `FILE`, holding the bench clients and users (CASTELLAN_* variables apply)")
	fs.BoolVar(&f.printConfig, "print-config", false, "print a provider config with the clients and users the scenarios need, and exit")
	fs.StringVar(&f.scenario, "scenario", loadgen.ClientCredentials, "`NAME`: "+strings.Join(loadgen.Scenarios, ", "))
	fs.StringVar(&f.mix, "mix", "", "weights of the mixed scenario, e.g. introspect=40,refresh=25,userinfo=15,client_credentials=10,silent=9,signin=1")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "measured `time` per run")
	fs.DurationVar(&f.warmup, "warmup", 2*time.Second, "unmeasured `time` of the same load before each run")
	fs.IntVar(&f.concurrency, "concurrency", 8, "virtual clients (closed loop), or the most operations in flight with --rate (default 64 then)")
	fs.Float64Var(&f.rate, "rate", 0, "open model: start `R` operations per second on a fixed schedule (latency from the scheduled time)")
	fs.IntVar(&f.repeat, "repeat", 1, "run each measurement `N` times and report the median run by throughput")
	fs.StringVar(&f.sweep, "sweep", "", "run at each of these concurrencies, e.g. 1,2,4,8,16,32")
	fs.StringVar(&f.chartDir, "chart-dir", "", "with --sweep: write PNG charts and the JSON results to `DIR`")
	fs.StringVar(&f.label, "label", "", "name of the setup in reports and chart file names, e.g. sqlite or postgres")
	fs.BoolVar(&f.asJSON, "json", false, "print the results as JSON")
	fs.IntVar(&f.serverPID, "server-pid", 0, "`PID` of a local server: measure its CPU time per operation and peak RSS")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "bound on one HTTP exchange")
	fs.IntVar(&f.flood, "flood-signins", 0, "overload case: `N` more clients doing full password sign-ins back to back in the background (reported apart)")
	fs.BoolVar(&f.netHTTP, "net-http", false, "send every request through Go's net/http client instead of the lean keep-alive client (cross-check; costs the load generator more CPU)")
	fs.BoolVar(&f.noBaseline, "no-baseline", false, "skip the signature and argon2id baseline")
	fs.DurationVar(&f.baselineTime, "baseline-time", 500*time.Millisecond, "how long each baseline measurement runs")
	fs.BoolVar(&f.quiet, "quiet", false, "no progress line on stderr")
	fs.StringVar(&f.serveReference, "serve-reference", "", "serve the bare reference token endpoint (a Basic header check and one go-jose signature, nothing else) on `ADDR` until interrupted; measure it with --scenario client_credentials --target http://ADDR")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the load generator itself to `FILE` (is it the bottleneck?)")
	fs.StringVar(&f.table, "table", "", "print the report's tables from the results docs/bench/rerun.sh wrote into `DIR`, and exit")
	fs.StringVar(&f.report, "report", "", "with --table: replace the generated tables in `FILE` (e.g. BENCHMARKS.md) instead of printing them")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if f.report != "" && f.table == "" {
		return nil, errors.New("--report needs --table DIR")
	}
	fs.Visit(func(fl *flag.Flag) { f.concurrencySet = f.concurrencySet || fl.Name == "concurrency" })
	return &f, nil
}

func run(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	f, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if f.cpuProfile != "" {
		stop, err := startCPUProfile(f.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	switch {
	case f.printConfig:
		issuer := f.target
		if issuer == "" {
			issuer = "http://127.0.0.1:9000"
		}
		return loadgen.WriteConfig(stdout, loadgen.NewConfig(strings.TrimSuffix(issuer, "/")))
	case f.table != "":
		return writeTable(f.table, f.report, stdout)
	}
	if f.cfgPath == "" {
		return errors.New("--config FILE is required: the provider's config with the bench clients (castellan-bench --print-config writes one)")
	}
	cfg, err := config.Load(f.cfgPath, env)
	if err != nil {
		return err
	}
	creds, err := loadgen.CredentialsFrom(cfg)
	if err != nil {
		return err
	}
	if f.serveReference != "" {
		return serveReference(ctx, f.serveReference, creds, stderr)
	}
	opt, err := f.options(cfg, creds, stderr)
	if err != nil {
		return err
	}
	if f.sweep == "" {
		return runOnce(ctx, f, opt, stdout)
	}
	return runSweep(ctx, f, opt, stdout, stderr)
}

func startCPUProfile(path string) (stop func(), err error) {
	out, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		out.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); out.Close() }, nil
}

// options turns the flags into a run's options.
func (f *flags) options(cfg *config.Config, creds loadgen.Credentials, stderr io.Writer) (loadgen.Options, error) {
	opt := loadgen.Options{
		Target: f.target, Scenario: f.scenario, Duration: f.duration, Warmup: f.warmup,
		Concurrency: f.concurrency, Rate: f.rate, Timeout: f.timeout, Credentials: creds,
		ServerPID: f.serverPID, NetHTTP: f.netHTTP, FloodSignIns: f.flood, Repeat: f.repeat,
		NoBaseline: f.noBaseline, Baseline: loadgen.BaselineOptions{Budget: f.baselineTime},
		Label: f.label,
	}
	if opt.Target == "" {
		opt.Target = cfg.Issuer
	}
	if f.rate > 0 && !f.concurrencySet {
		opt.Concurrency = 64
	}
	if f.mix != "" {
		mix, err := loadgen.ParseMix(f.mix)
		if err != nil {
			return opt, err
		}
		opt.Mix = mix
	}
	if !f.quiet {
		opt.Progress = stderr
		if file, ok := stderr.(*os.File); ok && term.IsTerminal(int(file.Fd())) {
			opt.ProgressTTY = true
		}
	}
	if f.sweep == "" && f.chartDir != "" {
		return opt, errors.New("--chart-dir needs --sweep")
	}
	return opt, nil
}

func runOnce(ctx context.Context, f *flags, opt loadgen.Options, stdout io.Writer) error {
	res, err := loadgen.Run(ctx, opt)
	if err != nil {
		return err
	}
	if f.asJSON {
		return writeJSON(stdout, res)
	}
	return res.WriteText(stdout)
}

// runSweep runs at every concurrency of --sweep and, with --chart-dir, draws
// the charts and keeps the JSON beside them. A sweep cut short still reports
// the levels it finished, then the error.
func runSweep(ctx context.Context, f *flags, opt loadgen.Options, stdout, stderr io.Writer) error {
	levels, err := parseLevels(f.sweep)
	if err != nil {
		return err
	}
	results, err := loadgen.Sweep(ctx, opt, levels)
	if err != nil && len(results) == 0 {
		return err
	}
	if werr := writeSweep(stdout, f.asJSON, results); werr != nil {
		return werr
	}
	if f.chartDir != "" && len(results) > 0 {
		files, cerr := writeCharts(f.chartDir, f.label, results)
		if cerr != nil {
			return cerr
		}
		fmt.Fprintf(stderr, "wrote %s\n", strings.Join(files, ", "))
	}
	return err
}

func writeSweep(w io.Writer, asJSON bool, results []*loadgen.Result) error {
	if asJSON {
		return writeJSON(w, results)
	}
	for _, r := range results {
		if err := r.WriteText(w); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	return loadgen.WriteSweepTable(w, results)
}

// writeCharts writes the sweep's charts and its JSON results into dir, and
// returns the files written.
func writeCharts(dir, label string, results []*loadgen.Result) ([]string, error) {
	files, err := loadgen.WriteCharts(dir, results)
	if err != nil {
		return nil, err
	}
	name := results[0].Scenario + "-sweep.json"
	if label != "" {
		name = label + "-" + name
	}
	path := filepath.Join(dir, name)
	out, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	err = writeJSON(out, results)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return append(files, path), err
}

// writeTable renders the tables of a rerun's results, to stdout or into the
// generated part of the report.
func writeTable(dir, report string, stdout io.Writer) error {
	rr, err := loadgen.ReadRerun(dir)
	if err != nil {
		return err
	}
	var table strings.Builder
	if err := rr.WriteMarkdown(&table); err != nil {
		return err
	}
	if report == "" {
		_, err := io.WriteString(stdout, table.String())
		return err
	}
	doc, err := os.ReadFile(report)
	if err != nil {
		return err
	}
	doc, err = loadgen.SpliceTable(doc, []byte(table.String()))
	if err != nil {
		return fmt.Errorf("%s: %w", report, err)
	}
	return os.WriteFile(report, doc, 0o644)
}

func parseLevels(s string) ([]int, error) {
	var levels []int
	for part := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--sweep wants positive integers like 1,2,4,8, got %q", part)
		}
		levels = append(levels, n)
	}
	return levels, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
