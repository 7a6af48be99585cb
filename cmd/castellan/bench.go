package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/loadgen"
)

const benchUsage = `Usage: castellan bench --config FILE --scenario NAME [flags]
       castellan bench --print-config [--target URL] > bench.yaml
       castellan bench --config FILE --serve-reference ADDR

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

Flags:
`

func cmdBench(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), benchUsage)
		fs.PrintDefaults()
	}
	target := fs.String("target", "", "issuer `URL` of the running provider (default: the config's issuer)")
	cfgPath := fs.String("config", "", "the provider's config `FILE`, holding the bench clients and users (CASTELLAN_* variables apply)")
	printConfig := fs.Bool("print-config", false, "print a provider config with the clients and users the scenarios need, and exit")
	scenario := fs.String("scenario", loadgen.ClientCredentials, "`NAME`: "+strings.Join(loadgen.Scenarios, ", "))
	mix := fs.String("mix", "", "weights of the mixed scenario, e.g. introspect=40,refresh=25,userinfo=15,client_credentials=10,silent=9,signin=1")
	duration := fs.Duration("duration", 10*time.Second, "measured `time` per run")
	warmup := fs.Duration("warmup", 2*time.Second, "unmeasured `time` of the same load before each run")
	concurrency := fs.Int("concurrency", 8, "virtual clients (closed loop), or the most operations in flight with --rate (default 64 then)")
	rate := fs.Float64("rate", 0, "open model: start `R` operations per second on a fixed schedule (latency from the scheduled time)")
	repeat := fs.Int("repeat", 1, "run each measurement `N` times and report the median run by throughput")
	sweep := fs.String("sweep", "", "run at each of these concurrencies, e.g. 1,2,4,8,16,32")
	chartDir := fs.String("chart-dir", "", "with --sweep: write PNG charts and the JSON results to `DIR`")
	label := fs.String("label", "", "name of the setup in reports and chart file names, e.g. sqlite or postgres")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	serverPID := fs.Int("server-pid", 0, "`PID` of a local server: measure its CPU time per operation and peak RSS")
	timeout := fs.Duration("timeout", 30*time.Second, "bound on one HTTP exchange")
	flood := fs.Int("flood-signins", 0, "overload case: `N` more clients doing full password sign-ins back to back in the background (reported apart)")
	netHTTP := fs.Bool("net-http", false, "send every request through Go's net/http client instead of the lean keep-alive client (cross-check; costs the load generator more CPU)")
	noBaseline := fs.Bool("no-baseline", false, "skip the signature and argon2id baseline")
	baselineTime := fs.Duration("baseline-time", 500*time.Millisecond, "how long each baseline measurement runs")
	quiet := fs.Bool("quiet", false, "no progress line on stderr")
	serveReference := fs.String("serve-reference", "", "serve the bare reference token endpoint (a Basic header check and one go-jose signature, nothing else) on `ADDR` until interrupted; measure it with --scenario client_credentials --target http://ADDR")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the load generator itself to `FILE` (is it the bottleneck?)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *printConfig {
		issuer := *target
		if issuer == "" {
			issuer = "http://127.0.0.1:9000"
		}
		return loadgen.WriteConfig(stdout, loadgen.NewConfig(strings.TrimSuffix(issuer, "/")))
	}
	if *cfgPath == "" {
		return errors.New("bench: --config FILE is required: the provider's config with the bench clients (castellan bench --print-config writes one)")
	}
	cfg, err := config.Load(*cfgPath, env)
	if err != nil {
		return err
	}
	creds, err := loadgen.CredentialsFrom(cfg)
	if err != nil {
		return err
	}
	if *serveReference != "" {
		return serveReferenceEndpoint(ctx, *serveReference, creds, stderr)
	}
	opt := loadgen.Options{
		Target: *target, Scenario: *scenario, Duration: *duration, Warmup: *warmup,
		Concurrency: *concurrency, Rate: *rate, Timeout: *timeout, Credentials: creds,
		ServerPID: *serverPID, NetHTTP: *netHTTP, FloodSignIns: *flood, Repeat: *repeat, NoBaseline: *noBaseline, Baseline: loadgen.BaselineOptions{Budget: *baselineTime},
		Label: *label,
	}
	if opt.Target == "" {
		opt.Target = cfg.Issuer
	}
	if *rate > 0 && !flagSet(fs, "concurrency") {
		opt.Concurrency = 64
	}
	if *mix != "" {
		if opt.Mix, err = loadgen.ParseMix(*mix); err != nil {
			return err
		}
	}
	if !*quiet {
		opt.Progress = stderr
		if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			opt.ProgressTTY = true
		}
	}

	if *sweep == "" {
		if *chartDir != "" {
			return errors.New("bench: --chart-dir needs --sweep")
		}
		res, err := loadgen.Run(ctx, opt)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSONTo(stdout, res)
		}
		return res.WriteText(stdout)
	}

	levels, err := parseLevels(*sweep)
	if err != nil {
		return err
	}
	results, err := loadgen.Sweep(ctx, opt, levels)
	if err != nil && len(results) == 0 {
		return err
	}
	if *asJSON {
		if err := writeJSONTo(stdout, results); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			if err := r.WriteText(stdout); err != nil {
				return err
			}
			fmt.Fprintln(stdout)
		}
		if err := loadgen.WriteSweepTable(stdout, results); err != nil {
			return err
		}
	}
	if *chartDir != "" && len(results) > 0 {
		files, cerr := loadgen.WriteCharts(*chartDir, results)
		if cerr != nil {
			return cerr
		}
		name := results[0].Scenario + "-sweep.json"
		if *label != "" {
			name = *label + "-" + name
		}
		path := filepath.Join(*chartDir, name)
		f, cerr := os.Create(path)
		if cerr != nil {
			return cerr
		}
		cerr = writeJSONTo(f, results)
		if closeErr := f.Close(); cerr == nil {
			cerr = closeErr
		}
		if cerr != nil {
			return cerr
		}
		fmt.Fprintf(stderr, "wrote %s\n", strings.Join(append(files, path), ", "))
	}
	return err
}

// serveReferenceEndpoint runs loadgen.Reference on addr until ctx ends. It
// signs with the algorithm Castellan signs access tokens with under the same
// config (the first of signing.algorithms) and accepts the bench's service
// client, so that the same client_credentials run can be pointed at either.
func serveReferenceEndpoint(ctx context.Context, addr string, creds loadgen.Credentials, stderr io.Writer) error {
	alg := "ES256"
	if len(creds.Algorithms) > 0 {
		alg = creds.Algorithms[0]
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("bench: --serve-reference: %w", err)
	}
	issuer := "http://" + ln.Addr().String()
	ref, err := loadgen.NewReference(issuer, creds.Service, alg)
	if err != nil {
		ln.Close()
		return fmt.Errorf("bench: --serve-reference: %w", err)
	}
	srv := &http.Server{Handler: ref, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Fprintf(stderr, "castellan bench: reference token endpoint (%s, client %s) at %s until interrupted\n", alg, creds.Service.ID, issuer)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdown)
	}
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func parseLevels(s string) ([]int, error) {
	var levels []int
	for part := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bench: --sweep wants positive integers like 1,2,4,8, got %q", part)
		}
		levels = append(levels, n)
	}
	return levels, nil
}

func writeJSONTo(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
