package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/loadgen"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// The markers of the generated part of the report (loadgen.SpliceTable).
const (
	tableBegin = "<!-- castellan-bench --table: generated, do not edit by hand -->"
	tableEnd   = "<!-- end of castellan-bench --table -->"
)

// bench runs the command line and returns what it printed.
func bench(t *testing.T, args ...string) string {
	t.Helper()
	var out, errw bytes.Buffer
	if err := run(t.Context(), args, nil, &out, &errw); err != nil {
		t.Fatalf("castellan-bench %s: %v\n%s", strings.Join(args, " "), err, errw.String())
	}
	return out.String()
}

// printedConfig writes the config castellan-bench --print-config prints and
// returns its path.
func printedConfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bench.yaml")
	if err := os.WriteFile(path, []byte(bench(t, "--print-config", "--target", "http://127.0.0.1:19400")), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// benchProvider starts a real provider with the bench clients and users of a
// printed config, and returns its URL and the config's path.
func benchProvider(t *testing.T) (url, configPath string) {
	t.Helper()
	configPath = printedConfig(t)
	printed, err := config.Load(configPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := servertest.Config()
	cfg.Clients = append(cfg.Clients, printed.Clients...)
	cfg.Users = append(cfg.Users, printed.Users...)
	env := servertest.New(t, servertest.Options{Config: cfg})
	return env.URL, configPath
}

// serveReferenceForTest starts --serve-reference on a free port and returns
// its URL once it listens; the test's end stops it.
func serveReferenceForTest(t *testing.T, configPath string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--config", configPath, "--serve-reference", "127.0.0.1:0"}, nil, io.Discard, pw)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("--serve-reference: %v", err)
		}
	})
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("--serve-reference said nothing: %v", <-done)
	}
	go io.Copy(io.Discard, pr)
	_, after, ok := strings.Cut(lines.Text(), " at ")
	url, _, _ := strings.Cut(after, " ")
	if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("--serve-reference: no address in %q", lines.Text())
	}
	return url
}

// The command end to end as docs/bench/rerun.sh drives it: a config printed
// by the command itself, a scenario against a real provider and the bare
// reference endpoint beside it, with JSON results, and the report's table
// rendered from that JSON into a report file.
func TestBenchCommandEndToEnd(t *testing.T) {
	url, configPath := benchProvider(t)
	refURL := serveReferenceForTest(t, configPath)
	pid := strconv.Itoa(os.Getpid()) // both servers run in this process
	short := []string{"--config", configPath, "--quiet", "--json", "--server-pid", pid, "--concurrency", "2",
		"--duration", "200ms", "--warmup", "0s", "--baseline-time", "5ms", "--scenario", loadgen.ClientCredentials}

	dir := t.TempDir()
	for name, target := range map[string]string{
		"sqlite-client_credentials.json": url, "ref1-castellan.json": url, "ref1-reference.json": refURL,
	} {
		out := bench(t, append(short, "--target", target)...)
		var res loadgen.Result
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatal(err)
		}
		if res.Ops == 0 || res.Errors != 0 || res.Target != target || res.Server == nil {
			t.Errorf("%s against %s: %d ops, %d errors %v, target %s, server %+v", name, target, res.Ops, res.Errors, res.ErrorSamples, res.Target, res.Server)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	report := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	stale := "# Benchmarks\n\n" + tableBegin + "\nstale figures\n" + tableEnd + "\n\n## Charts\n"
	if err := os.WriteFile(report, []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := bench(t, "--table", dir, "--report", report); out != "" {
		t.Errorf("--report printed %q, want nothing", out)
	}
	got, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Benchmarks\n\n" + tableBegin, "| 1 | ", "| **median** |", "| `client_credentials` | SQLite |", tableEnd + "\n\n## Charts\n"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(string(got), "stale figures") {
		t.Errorf("report keeps the old table:\n%s", got)
	}
	if printed := bench(t, "--table", dir); !strings.HasPrefix(printed, tableBegin) {
		t.Errorf("--table without --report printed\n%s", printed)
	}
}

func TestBenchCommandRefusesBadFlags(t *testing.T) {
	configPath := printedConfig(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"fail/no-config", []string{"--scenario", "refresh"}, "--config FILE is required"},
		{"fail/argument", []string{"--config", configPath, "refresh"}, `unexpected argument "refresh"`},
		{"fail/report-without-table", []string{"--report", "BENCHMARKS.md"}, "--report needs --table"},
		{"fail/chart-dir-without-sweep", []string{"--config", configPath, "--chart-dir", t.TempDir()}, "--chart-dir needs --sweep"},
		{"fail/sweep-levels", []string{"--config", configPath, "--sweep", "1,0"}, "--sweep wants positive integers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(t.Context(), tt.args, nil, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
