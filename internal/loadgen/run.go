package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options describe a bench run.
type Options struct {
	// Target is the provider's issuer URL.
	Target string
	// Scenario is one of Scenarios; Mix weighs the kinds of the mixed one
	// (default DefaultMix).
	Scenario string
	Mix      map[string]int
	// Duration is the measured window; Warmup runs the same load before it,
	// unmeasured, so connections, caches and the server's pools are warm.
	Duration time.Duration
	Warmup   time.Duration
	// Concurrency is the number of virtual clients. In the closed loop each
	// sends its next operation when the previous one is answered; with Rate > 0
	// (the open model) operations start at fixed intervals of 1/Rate seconds,
	// and Concurrency bounds how many are in flight.
	Concurrency int
	Rate        float64
	// Timeout bounds one HTTP exchange (default 30 s).
	Timeout time.Duration
	// Credentials are the bench clients and users (CredentialsFrom).
	Credentials Credentials
	// ServerPID, if not 0, is a local server process to measure: CPU time and
	// resident memory from /proc.
	ServerPID int
	// Repeat runs each measurement this many times (default 1) and reports the
	// run with the median throughput, with every run's throughput beside it.
	Repeat int
	// FloodSignIns, if not 0, runs that many more virtual clients that do
	// nothing but full password sign-ins, each a new browser, back to back,
	// through the warm-up and the measured window: the overload case (a flood
	// of sign-ins must not starve the token endpoint). They are reported apart.
	FloodSignIns int
	// NetHTTP sends every exchange through net/http's client instead of the
	// lean wire client (a cross-check: the server's figures should not change,
	// only the load generator's own CPU per request).
	NetHTTP bool
	// NoBaseline skips measuring the cryptographic baseline.
	NoBaseline bool
	Baseline   BaselineOptions
	// Label names the setup in reports and chart files (e.g. "sqlite").
	Label string
	// Progress, if set, gets a status line once a second; ProgressTTY rewrites
	// one line in place instead of writing a line each time.
	Progress    io.Writer
	ProgressTTY bool
}

// Runner runs one scenario against one provider, at one or more
// concurrencies, keeping its virtual clients (with their sessions and
// refresh-token families) and the baseline between runs.
type Runner struct {
	opt      Options
	plan     *plan
	target   *Target
	vcs      []*vclient
	baseline *Baseline
	startRSS int64
	machine  Machine

	live  counters
	flood []*vclient
}

// NewRunner checks the options, finds the provider through discovery, and
// notes the server's resident memory before any load.
func NewRunner(ctx context.Context, opt Options) (*Runner, error) {
	if opt.Concurrency < 1 {
		return nil, errors.New("concurrency must be at least 1")
	}
	if opt.Duration <= 0 {
		return nil, errors.New("duration must be positive")
	}
	if opt.Rate < 0 {
		return nil, errors.New("rate must not be negative")
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 30 * time.Second
	}
	p, err := newPlan(opt.Scenario, opt.Mix)
	if err != nil {
		return nil, err
	}
	if err := p.check(&opt.Credentials); err != nil {
		return nil, err
	}
	if opt.FloodSignIns > 0 {
		if err := opt.Credentials.needs(true, false, false, true); err != nil {
			return nil, fmt.Errorf("sign-in flood: %w", err)
		}
	}
	r := &Runner{opt: opt, plan: p, machine: machine()}
	if opt.ServerPID != 0 {
		rss, _, err := memory(opt.ServerPID)
		if err != nil {
			return nil, fmt.Errorf("--server-pid %d: %w", opt.ServerPID, err)
		}
		r.startRSS = rss
	}
	r.target, err = Discover(ctx, opt.Target, opt.Concurrency+opt.FloodSignIns, opt.Timeout)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Close drops the runner's connections.
func (r *Runner) Close() {
	for _, vc := range r.vcs {
		vc.close()
	}
	r.target.Close()
}

// Run runs the scenario with the options' concurrency (Repeat times, keeping
// the median run).
func Run(ctx context.Context, opt Options) (*Result, error) {
	r, err := NewRunner(ctx, opt)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.RunMedian(ctx, opt.Concurrency)
}

// RunMedian runs at concurrency c Options.Repeat times and returns the run
// with the median throughput (the lower middle one for an even count), with
// the throughput of every run in Repeats.
func (r *Runner) RunMedian(ctx context.Context, c int) (*Result, error) {
	n := max(r.opt.Repeat, 1)
	var runs []*Result
	for i := 0; i < n; i++ {
		res, err := r.Run(ctx, c)
		if err != nil {
			return nil, err
		}
		runs = append(runs, res)
	}
	if n == 1 {
		return runs[0], nil
	}
	tp := make([]float64, n)
	for i, res := range runs {
		tp[i] = res.Throughput
	}
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b *Result) int { return cmpFloat(a.Throughput, b.Throughput) })
	med := sorted[(n-1)/2]
	med.Repeats = tp
	return med, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Sweep runs the scenario once at each concurrency in levels, one after the
// other, with the same virtual clients and baseline.
func Sweep(ctx context.Context, opt Options, levels []int) ([]*Result, error) {
	if len(levels) == 0 {
		return nil, errors.New("sweep: no concurrency levels")
	}
	opt.Concurrency = slices.Max(levels)
	r, err := NewRunner(ctx, opt)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if err := r.prepare(ctx, opt.Concurrency); err != nil {
		return nil, err
	}
	var out []*Result
	for _, c := range levels {
		res, err := r.RunMedian(ctx, c)
		if err != nil {
			return out, err
		}
		out = append(out, res)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	return out, nil
}

func (r *Runner) say(format string, args ...any) {
	if r.opt.Progress != nil {
		fmt.Fprintf(r.opt.Progress, format+"\n", args...)
	}
}

// prepare sets up n virtual clients (signing each in when the scenario needs
// a user) and measures the baseline, once.
func (r *Runner) prepare(ctx context.Context, n int) error {
	if have := len(r.vcs); have < n {
		withUser := r.plan.needsUser()
		if withUser {
			r.say("setting up %d virtual clients (a real sign-in and code flow each)…", n-have)
		}
		fresh := make([]*vclient, n-have)
		errc := make(chan error, len(fresh))
		sem := make(chan struct{}, 4)
		var wg sync.WaitGroup
		for i := range fresh {
			id := have + i
			vc := newVClient(r.target, id, &r.opt.Credentials, r.opt.NetHTTP)
			fresh[i] = vc
			if !withUser {
				continue
			}
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				if err := vc.setUp(ctx); err != nil {
					errc <- err
				}
			})
		}
		wg.Wait()
		close(errc)
		if err := <-errc; err != nil {
			return err
		}
		r.vcs = append(r.vcs, fresh...)
	}
	if r.baseline != nil || r.opt.NoBaseline {
		return nil
	}
	return r.measureBaseline(ctx)
}

// measureBaseline measures the cryptography with the algorithms seen in real
// tokens from the server (the access token's header, the ID token's header).
func (r *Runner) measureBaseline(ctx context.Context) error {
	cr := &r.opt.Credentials
	var sample Tokens
	if len(r.vcs) > 0 && r.vcs[0].tokens.Access != "" {
		sample = r.vcs[0].tokens
	} else if cr.Service.ID != "" {
		c := &client{t: r.target, rt: newBrowser(r.target, false)}
		tok, err := c.clientCredentials(ctx, &cr.Service)
		if err != nil {
			return fmt.Errorf("baseline: a sample token: %w", err)
		}
		sample = tok
	}
	accessAlg := jwtAlg(sample.Access)
	if accessAlg == "" && len(cr.Algorithms) > 0 {
		accessAlg = cr.Algorithms[0]
	}
	idAlg := jwtAlg(sample.ID)
	if idAlg == "" && cr.SPA.ID != "" {
		idAlg = cmp(cr.SPA.IDTokenAlg, "RS256")
	}
	r.say("measuring the baseline: %s signatures and argon2id m=%d t=%d p=%d on one core…",
		strings.Join(uniq(accessAlg, idAlg), " and "), cr.Argon2.MemoryKiB, cr.Argon2.Iterations, cr.Argon2.Parallelism)
	b, err := MeasureBaseline(ctx, accessAlg, idAlg, jwtPayload(sample.Access), cr.Argon2, r.opt.Baseline)
	if err != nil {
		return err
	}
	r.baseline = b
	return nil
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func uniq(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Run runs the scenario at concurrency c: warm-up, then the measured window.
func (r *Runner) Run(ctx context.Context, c int) (*Result, error) {
	if c < 1 {
		return nil, errors.New("concurrency must be at least 1")
	}
	if err := r.prepare(ctx, c); err != nil {
		return nil, err
	}
	var stopFlood func() *Flood
	if r.opt.FloodSignIns > 0 {
		stopFlood = r.startFlood(ctx)
	}
	if r.opt.Warmup > 0 {
		r.phase(ctx, c, r.opt.Warmup, "warm-up")
	}
	if ctx.Err() != nil {
		if stopFlood != nil {
			stopFlood()
		}
		return nil, ctx.Err()
	}
	var server, self *watcher
	if r.opt.ServerPID != 0 {
		w, err := newWatcher(r.opt.ServerPID, r.startRSS)
		if err != nil {
			return nil, fmt.Errorf("--server-pid %d: %w", r.opt.ServerPID, err)
		}
		server = w
	}
	if r.opt.ServerPID != os.Getpid() { // an in-process server (tests) would be counted twice
		if w, err := newWatcher(os.Getpid(), 0); err == nil {
			self = w
		}
	}
	started := time.Now()
	ph := r.phase(ctx, c, r.opt.Duration, "run")
	res := r.result(ph, c, started)
	if stopFlood != nil {
		res.Flood = stopFlood()
	}
	if server != nil {
		res.Server = server.finish(ph.window, res.Ops)
	}
	if self != nil {
		res.Loadgen = self.finish(ph.window, res.Ops)
		res.Loadgen.StartRSS = 0
	}
	res.derive()
	return res, nil
}

// tally is one worker's record of a phase.
type tally struct {
	live     *counters // nil: not on the progress line
	latency  Histogram
	kinds    map[string]*Histogram
	steps    map[string]*Histogram
	lag      Histogram
	errors   map[string]int64
	samples  map[string]string
	ok, bad  int64
	requests int64
	last     time.Time
}

// counters are the live figures of the progress line.
type counters struct{ ops, errs atomic.Int64 }

func (r *Runner) newTally() *tally { return newTally(&r.live) }

func newTally(live *counters) *tally {
	return &tally{live: live, kinds: map[string]*Histogram{}, steps: map[string]*Histogram{},
		errors: map[string]int64{}, samples: map[string]string{}}
}

func histogramOf(m map[string]*Histogram, name string) *Histogram {
	h := m[name]
	if h == nil {
		h = &Histogram{}
		m[name] = h
	}
	return h
}

func (t *tally) step(name string, d time.Duration) {
	histogramOf(t.steps, name).Record(d)
	t.requests++
}

// op records one finished operation. Latency histograms hold successful
// operations only; failures are counted by their key.
func (t *tally) op(k *kind, d time.Duration, err error) {
	t.last = time.Now()
	if t.live != nil {
		t.live.ops.Add(1)
	}
	if err != nil {
		t.bad++
		if t.live != nil {
			t.live.errs.Add(1)
		}
		key := errorKey(err)
		t.errors[key]++
		if _, ok := t.samples[key]; !ok {
			t.samples[key] = err.Error()
		}
		return
	}
	t.ok++
	t.latency.Record(d)
	histogramOf(t.kinds, k.name).Record(d)
}

// phaseResult is what the workers of one phase recorded.
type phaseResult struct {
	tallies []*tally
	start   time.Time
	window  time.Duration
	planned int64
}

// phase runs c workers for d: a closed loop, or the open model at the
// options' rate.
func (r *Runner) phase(ctx context.Context, c int, d time.Duration, label string) *phaseResult {
	r.live.ops.Store(0)
	r.live.errs.Store(0)
	start := time.Now()
	end := start.Add(d)
	ph := &phaseResult{start: start, tallies: make([]*tally, c)}
	var seq atomic.Int64
	var wg sync.WaitGroup
	for i := range c {
		vc := r.vcs[i]
		t := r.newTally()
		ph.tallies[i] = t
		vc.setStep(t.step)
		wg.Go(func() {
			defer vc.setStep(nil)
			if r.opt.Rate > 0 {
				r.openLoop(ctx, vc, t, &seq, start, end)
			} else {
				r.closedLoop(ctx, vc, t, end)
			}
		})
	}
	stop := r.progress(label, c, start, d)
	wg.Wait()
	stop()
	last := start
	for _, t := range ph.tallies {
		if t.last.After(last) {
			last = t.last
		}
	}
	ph.window = last.Sub(start)
	if r.opt.Rate > 0 {
		ph.planned = int64(d.Seconds() * r.opt.Rate)
	}
	return ph
}

func (r *Runner) closedLoop(ctx context.Context, vc *vclient, t *tally, end time.Time) {
	for {
		t0 := time.Now()
		if !t0.Before(end) || ctx.Err() != nil {
			return
		}
		k := r.plan.pick(vc.rnd)
		err := k.do(ctx, vc)
		if ctx.Err() != nil {
			return // interrupted: not the server's failure
		}
		t.op(k, time.Since(t0), err)
	}
}

// openLoop takes the next slot of a fixed schedule (start + i/rate) until the
// schedule passes end. Latency counts from the slot's time, not from when a
// worker got to it, so queueing in front of a slow server is measured.
func (r *Runner) openLoop(ctx context.Context, vc *vclient, t *tally, seq *atomic.Int64, start, end time.Time) {
	interval := float64(time.Second) / r.opt.Rate
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		i := seq.Add(1) - 1
		intended := start.Add(time.Duration(float64(i) * interval))
		if !intended.Before(end) || ctx.Err() != nil {
			return
		}
		if d := time.Until(intended); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		t.lag.Record(time.Since(intended))
		k := r.plan.pick(vc.rnd)
		err := k.do(ctx, vc)
		if ctx.Err() != nil {
			return
		}
		t.op(k, time.Since(intended), err)
	}
}

// progress writes a status line once a second until the returned func is called.
func (r *Runner) progress(label string, c int, start time.Time, d time.Duration) (stop func()) {
	w := r.opt.Progress
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	load := fmt.Sprintf("%d clients", c)
	if r.opt.Rate > 0 {
		load = fmt.Sprintf("%g/s open, ≤%d in flight", r.opt.Rate, c)
	}
	wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var prev int64
		for {
			select {
			case <-done:
				if r.opt.ProgressTTY {
					fmt.Fprint(w, "\r\033[K")
				}
				return
			case <-tick.C:
				ops, errs := r.live.ops.Load(), r.live.errs.Load()
				line := fmt.Sprintf("%s %s [%s]: %4.0fs/%.0fs  ops %d  rps %d  errors %d",
					r.plan.name, label, load, time.Since(start).Seconds(), d.Seconds(), ops, ops-prev, errs)
				prev = ops
				if r.opt.ProgressTTY {
					fmt.Fprint(w, "\r\033[K"+line)
				} else {
					fmt.Fprintln(w, line)
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func (r *Runner) result(ph *phaseResult, c int, started time.Time) *Result {
	res := &Result{
		Scenario: r.plan.name, Label: r.opt.Label, Target: r.target.Issuer, Model: "closed", Concurrency: c,
		Seconds: ph.window.Seconds(), WarmupSeconds: r.opt.Warmup.Seconds(), Started: started.UTC(),
		ErrorsByStatus: map[string]int64{}, ErrorSamples: map[string]string{}, Steps: map[string]Summary{},
		Baseline: r.baseline, Machine: r.machine,
	}
	if r.plan.name == Mixed {
		res.Mix = map[string]int{}
		for i, k := range r.plan.kinds {
			res.Mix[k.name] = r.plan.weights[i]
		}
	}
	var latency, lag Histogram
	kindsH, stepsH := map[string]*Histogram{}, map[string]*Histogram{}
	for _, t := range ph.tallies {
		latency.Merge(&t.latency)
		lag.Merge(&t.lag)
		for n, h := range t.kinds {
			histogramOf(kindsH, n).Merge(h)
		}
		for n, h := range t.steps {
			histogramOf(stepsH, n).Merge(h)
		}
		for k, n := range t.errors {
			res.ErrorsByStatus[k] += n
			if _, ok := res.ErrorSamples[k]; !ok {
				res.ErrorSamples[k] = t.samples[k]
			}
		}
		res.Ops += t.ok + t.bad
		res.Errors += t.bad
		res.Requests += t.requests
	}
	res.Latency = latency.Summary()
	for _, n := range slices.Sorted(maps.Keys(stepsH)) {
		res.Steps[n] = stepsH[n].Summary()
	}
	if len(kindsH) > 1 {
		res.Kinds = map[string]Summary{}
		for n, h := range kindsH {
			res.Kinds[n] = h.Summary()
		}
	}
	if r.opt.Rate > 0 {
		res.Model = "open"
		res.Rate = r.opt.Rate
		s := lag.Summary()
		res.SendLag = &s
		res.Backlog = max(ph.planned-res.Ops, 0)
	}
	if res.Seconds > 0 {
		res.Throughput = float64(res.Ops-res.Errors) / res.Seconds
		res.RequestRate = float64(res.Requests) / res.Seconds
	}
	if r.baseline != nil {
		res.FloorMicros = r.plan.floor(r.baseline)
	}
	return res
}

// Machine describes where the bench ran.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	GoVersion string `json:"go"`
	OS        string `json:"os"`
	// LoadAverage is the 1-minute load average when the run's setup began: other
	// work on the machine (figures from a busy machine are not comparable).
	LoadAverage float64 `json:"load_average"`
}

func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			m.LoadAverage, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "model name" {
				m.CPU = strings.TrimSpace(value)
				break
			}
		}
	}
	return m
}

// Flood is what the background sign-in flood saw during a run.
type Flood struct {
	Clients        int               `json:"clients"`
	Ops            int64             `json:"ops"`
	Errors         int64             `json:"errors"`
	Throughput     float64           `json:"throughput"`
	Latency        Summary           `json:"latency"`
	ErrorsByStatus map[string]int64  `json:"errors_by_status,omitempty"`
	ErrorSamples   map[string]string `json:"error_samples,omitempty"`
}

// startFlood starts the sign-in flood and returns the func that stops it and
// says what it saw.
func (r *Runner) startFlood(ctx context.Context) func() *Flood {
	for len(r.flood) < r.opt.FloodSignIns {
		r.flood = append(r.flood, newVClient(r.target, 1_000_000+len(r.flood), &r.opt.Credentials, r.opt.NetHTTP))
	}
	fctx, cancel := context.WithCancel(ctx)
	tallies := make([]*tally, len(r.flood))
	start := time.Now()
	var wg sync.WaitGroup
	for i, vc := range r.flood {
		t := newTally(nil)
		tallies[i] = t
		wg.Go(func() {
			for fctx.Err() == nil {
				t0 := time.Now()
				err := kinds[SignIn].do(fctx, vc)
				if fctx.Err() != nil {
					return
				}
				t.op(kinds[SignIn], time.Since(t0), err)
			}
		})
	}
	return func() *Flood {
		cancel()
		wg.Wait()
		f := &Flood{Clients: len(r.flood), ErrorsByStatus: map[string]int64{}, ErrorSamples: map[string]string{}}
		var lat Histogram
		for _, t := range tallies {
			lat.Merge(&t.latency)
			f.Ops += t.ok + t.bad
			f.Errors += t.bad
			for k, n := range t.errors {
				f.ErrorsByStatus[k] += n
				if _, ok := f.ErrorSamples[k]; !ok {
					f.ErrorSamples[k] = t.samples[k]
				}
			}
		}
		f.Latency = lat.Summary()
		if d := time.Since(start).Seconds(); d > 0 {
			f.Throughput = float64(f.Ops-f.Errors) / d
		}
		return f
	}
}
