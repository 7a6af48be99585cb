package loadgen_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/loadgen"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// benchEnv starts a real provider (servertest: SQLite, real keys, cheap
// argon2id) with the bench clients and users declared in its config, as
// castellan-bench --print-config would declare them.
func benchEnv(t *testing.T) (*servertest.Env, loadgen.Credentials) {
	t.Helper()
	cfg := servertest.Config()
	bench := loadgen.NewConfig("http://127.0.0.1:19400")
	cfg.Clients = append(cfg.Clients, bench.Clients...)
	cfg.Users = append(cfg.Users, bench.Users...)
	env := servertest.New(t, servertest.Options{Config: cfg})
	creds, err := loadgen.CredentialsFrom(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return env, creds
}

func shortOptions(env *servertest.Env, creds loadgen.Credentials, scenario string) loadgen.Options {
	return loadgen.Options{
		Target: env.URL, Scenario: scenario, Credentials: creds,
		Duration: 300 * time.Millisecond, Concurrency: 2, Timeout: 10 * time.Second,
		// The provider runs in this process, so its /proc figures are ours.
		ServerPID: os.Getpid(),
		Baseline:  loadgen.BaselineOptions{Budget: 5 * time.Millisecond},
	}
}

func checkResult(t *testing.T, res *loadgen.Result, wantSteps ...string) {
	t.Helper()
	if res.Ops == 0 {
		t.Fatalf("no operation finished: %+v", res)
	}
	if res.Errors != 0 {
		t.Fatalf("got %d errors %v (first: %v), want none", res.Errors, res.ErrorsByStatus, res.ErrorSamples)
	}
	if res.Latency.Count != uint64(res.Ops) || res.Latency.P50 <= 0 || res.Latency.Max < res.Latency.P99 || res.Latency.P99 < res.Latency.P50 {
		t.Errorf("latency summary inconsistent with %d ops: %+v", res.Ops, res.Latency)
	}
	for _, s := range wantSteps {
		if res.Steps[s].Count == 0 {
			t.Errorf("step %s never timed; steps: %v", s, keys(res.Steps))
		}
	}
	if res.Requests < res.Ops {
		t.Errorf("requests %d < ops %d", res.Requests, res.Ops)
	}
	if res.Server == nil || res.Server.PeakRSS == 0 || res.Server.StartRSS == 0 {
		t.Errorf("server stats missing: %+v", res.Server)
	}
	if res.Baseline != nil && (res.Baseline.SignMicros[res.Baseline.AccessAlg] <= 0 || res.FloorMicros <= 0) {
		t.Errorf("baseline missing: %+v floor %v", res.Baseline, res.FloorMicros)
	}
	var out bytes.Buffer
	if err := res.WriteText(&out); err != nil || !strings.Contains(out.String(), "throughput") {
		t.Errorf("text report: %v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestScenariosAgainstARealProvider(t *testing.T) {
	env, creds := benchEnv(t)
	for _, c := range []struct {
		scenario string
		steps    []string
	}{
		{loadgen.ClientCredentials, []string{"token:client_credentials"}},
		// Errors would show a broken rotation: reusing a rotated-out token
		// revokes the family and answers invalid_grant.
		{loadgen.Refresh, []string{"token:refresh_token"}},
		{loadgen.Silent, []string{"authorize:prompt_none", "token:authorization_code"}},
		{loadgen.SignIn, []string{"authorize", "login_page", "login", "authorize:resume", "token:authorization_code"}},
		{loadgen.Introspect, []string{"introspect"}},
		{loadgen.Userinfo, []string{"userinfo"}},
		{loadgen.Mixed, []string{"introspect", "token:refresh_token"}},
	} {
		t.Run(c.scenario, func(t *testing.T) {
			res, err := loadgen.Run(context.Background(), shortOptions(env, creds, c.scenario))
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, res, c.steps...)
			if res.Baseline == nil || res.Efficiency <= 0 {
				t.Errorf("no baseline or efficiency: %+v, %v", res.Baseline, res.Efficiency)
			}
			if c.scenario == loadgen.Mixed && len(res.Kinds) < 2 {
				t.Errorf("mixed ran only %v", keys(res.Kinds))
			}
			if c.scenario == loadgen.SignIn && res.Baseline.Argon2Millis <= 0 {
				t.Errorf("no argon2id baseline for signin: %+v", res.Baseline)
			}
		})
	}
	// The same flows through net/http's client, the cross-check of the lean one.
	for _, scenario := range []string{loadgen.Silent, loadgen.Refresh} {
		t.Run(scenario+"/net-http", func(t *testing.T) {
			opt := shortOptions(env, creds, scenario)
			opt.NetHTTP = true
			res, err := loadgen.Run(context.Background(), opt)
			if err != nil {
				t.Fatal(err)
			}
			checkResult(t, res)
		})
	}
}

func TestOpenModel(t *testing.T) {
	env, creds := benchEnv(t)
	opt := shortOptions(env, creds, loadgen.ClientCredentials)
	opt.Rate, opt.Concurrency, opt.Duration = 40, 4, 500*time.Millisecond
	opt.NoBaseline = true
	res, err := loadgen.Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.Model != "open" || res.SendLag == nil || res.Rate != 40 {
		t.Fatalf("got model %q lag %v rate %v, want open with a send-lag summary at 40/s", res.Model, res.SendLag, res.Rate)
	}
	// 40/s for 0.5 s schedules 20 operations; none may run beyond the schedule.
	if res.Ops == 0 || res.Ops+res.Backlog > 20 {
		t.Errorf("got %d ops and backlog %d, want at most the 20 scheduled", res.Ops, res.Backlog)
	}
	if res.Errors != 0 {
		t.Errorf("errors %v", res.ErrorSamples)
	}
}

func TestRepeatKeepsTheMedianRun(t *testing.T) {
	env, creds := benchEnv(t)
	opt := shortOptions(env, creds, loadgen.Userinfo)
	opt.Repeat, opt.Duration, opt.NoBaseline = 3, 150*time.Millisecond, true
	res, err := loadgen.Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Repeats) != 3 {
		t.Fatalf("got repeats %v, want 3", res.Repeats)
	}
	sorted := slices.Sorted(slices.Values(res.Repeats))
	if res.Throughput != sorted[1] {
		t.Errorf("reported throughput %v, want the median of %v", res.Throughput, res.Repeats)
	}
}

func TestSignInFloodRunsBesideTheScenario(t *testing.T) {
	env, creds := benchEnv(t)
	opt := shortOptions(env, creds, loadgen.Refresh)
	opt.FloodSignIns = 3
	opt.NoBaseline = true
	// Long enough for a sign-in to finish on a loaded machine: the check is
	// that the flood ran, not how fast.
	opt.Duration = 2 * time.Second
	res, err := loadgen.Run(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, res, "token:refresh_token")
	if res.Flood == nil || res.Flood.Clients != 3 || res.Flood.Ops == 0 {
		t.Fatalf("flood: got %+v, want 3 clients that signed in", res.Flood)
	}
	if res.Steps["login"].Count != 0 {
		t.Errorf("the flood's sign-ins were counted in the measured steps: %v", keys(res.Steps))
	}
}

func TestSweepWritesCharts(t *testing.T) {
	env, creds := benchEnv(t)
	opt := shortOptions(env, creds, loadgen.Refresh)
	opt.Duration = 200 * time.Millisecond
	opt.Label = "sqlite"
	results, err := loadgen.Sweep(context.Background(), opt, []int{1, 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 || results[0].Concurrency != 1 || results[1].Concurrency != 3 {
		t.Fatalf("got %d results, want concurrency 1 then 3", len(results))
	}
	for _, r := range results {
		checkResult(t, r, "token:refresh_token")
	}
	dir := t.TempDir()
	files, err := loadgen.WriteCharts(dir, results)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "sqlite-refresh-throughput.png"), filepath.Join(dir, "sqlite-refresh-latency.png")}
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Errorf("got files %v, want %v", files, want)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
			t.Errorf("%s is not a PNG (%v)", f, err)
		}
	}
	var table bytes.Buffer
	loadgen.WriteSweepTable(&table, results)
	if n := strings.Count(table.String(), "\n"); n != 4 {
		t.Errorf("sweep table has %d lines, want header, rule and 2 rows:\n%s", n, table.String())
	}
}

func TestPrintedConfigLoads(t *testing.T) {
	var out bytes.Buffer
	if err := loadgen.WriteConfig(&out, loadgen.NewConfig("http://127.0.0.1:19400")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bench.yaml")
	os.WriteFile(path, out.Bytes(), 0o600)
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatalf("the printed config does not load: %v\n%s", err, out.String())
	}
	if cfg.Listen != "127.0.0.1:19400" || cfg.Issuer != "http://127.0.0.1:19400" {
		t.Errorf("issuer %q listen %q", cfg.Issuer, cfg.Listen)
	}
	creds, err := loadgen.CredentialsFrom(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if creds.SPA.ID != loadgen.SPAClient || creds.SPA.IDTokenAlg != "ES256" || creds.Service.Secret == "" ||
		creds.Resource.Secret == "" || len(creds.Users) == 0 || creds.Users[0].Password == "" {
		t.Errorf("credentials from the printed config: %+v", creds)
	}
	if creds.Argon2.MemoryKiB != 19456 || creds.Argon2.Iterations != 2 {
		t.Errorf("argon2id parameters %+v, want the defaults", creds.Argon2)
	}
	// Two configs never share secrets.
	if again := loadgen.NewConfig("http://127.0.0.1:19400"); again.Clients[1].ClientSecret == cfg.Clients[1].ClientSecret {
		t.Error("client secrets repeat between generated configs")
	}
}

func TestMissingPartsAreNamed(t *testing.T) {
	env, creds := benchEnv(t)
	for _, c := range []struct {
		scenario string
		drop     func(*loadgen.Credentials)
		want     string
	}{
		{loadgen.ClientCredentials, func(c *loadgen.Credentials) { c.Service = loadgen.Client{} }, "client bench-svc"},
		{loadgen.Introspect, func(c *loadgen.Credentials) { c.Resource = loadgen.Client{} }, "client bench-rs"},
		{loadgen.Refresh, func(c *loadgen.Credentials) { c.Users = nil }, "users bench-N"},
	} {
		t.Run(c.scenario, func(t *testing.T) {
			opt := shortOptions(env, creds, c.scenario)
			c.drop(&opt.Credentials)
			_, err := loadgen.Run(context.Background(), opt)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error naming %s", err, c.want)
			}
		})
	}
	opt := shortOptions(env, creds, "nonsense")
	if _, err := loadgen.Run(context.Background(), opt); err == nil || !strings.Contains(err.Error(), "unknown scenario") {
		t.Errorf("unknown scenario: got %v", err)
	}
}

func TestWrongPasswordIsReportedNotFatalLater(t *testing.T) {
	env, creds := benchEnv(t)
	opt := shortOptions(env, creds, loadgen.Silent)
	opt.Credentials.Users = []loadgen.User{{Username: creds.Users[0].Username, Password: "not the password"}}
	_, err := loadgen.Run(context.Background(), opt)
	if err == nil || !strings.Contains(err.Error(), "sign-in as") || !strings.Contains(err.Error(), "401") {
		t.Errorf("got %v, want the setup's sign-in failure with its status", err)
	}
}

func TestParseMix(t *testing.T) {
	mix, err := loadgen.ParseMix("introspect=3, refresh=1,signin=0")
	if err != nil || mix["introspect"] != 3 || mix["refresh"] != 1 || mix["signin"] != 0 {
		t.Errorf("got %v %v", mix, err)
	}
	for _, bad := range []string{"introspect", "introspect=-1", "bogus=1", "refresh=x"} {
		if _, err := loadgen.ParseMix(bad); err == nil {
			t.Errorf("ParseMix(%q) accepted", bad)
		}
	}
}
