package cluster_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, to inspect the schema

	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
	"github.com/castellan-auth/castellan/internal/storage/storagetest"
)

// binary is the castellan command built from this tree by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		if os.Getenv(storagetest.PostgresEnv) == "" {
			return m.Run() // every test skips (or fails under CI=true)
		}
		dir, err := os.MkdirTemp("", "castellan-cluster-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "castellan")
		build := exec.Command(goTool(), "build", "-o", binary, "github.com/castellan-auth/castellan/cmd/castellan")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build castellan:", err)
			return 1
		}
		return m.Run()
	}())
}

// goTool finds the go command that runs these tests.
func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Timing of the test configuration: nodes re-read keys every second, so a new
// key is published for two seconds before it signs.
const (
	refreshInterval = time.Second
	propagation     = 2 * refreshInterval
	startTimeout    = 30 * time.Second
)

const (
	username     = "alice"
	password     = "wonderland"
	redirectURI  = "http://127.0.0.1:9100/callback"
	rsID         = "rs"
	rsSecret     = "resource-server-secret-0123456789abcdef"
	spaID        = "spa"
	spaScope     = "openid profile email offline_access"
	nodeNames    = "ABCDEFGH"
	defaultNodes = 3
)

type options struct {
	nodes int
	// grace is tokens.refresh_token_grace.
	grace time.Duration
	// proxy puts a TCP proxy between the nodes and PostgreSQL that the test
	// can cut, standing for the database going away.
	proxy bool
}

// cluster is several castellan processes on one PostgreSQL schema with one
// master key. The issuer is node A's URL for all of them; the test talks to
// each node by its own address, as a load balancer would.
type cluster struct {
	t      *testing.T
	dir    string
	dsn    string // the schema, directly
	issuer string
	proxy  *proxy
	nodes  []*node
	store  *sqlstore.Store // the test's own view of the data
	db     *sql.DB         // for invariants the storage interface cannot express
	http   *http.Client    // for API calls (no cookies)
}

// newCluster migrates a fresh schema once, creates the master key once, and
// starts the nodes all at once (they create the signing keys between them).
func newCluster(t *testing.T, o options) *cluster {
	t.Helper()
	if o.nodes == 0 {
		o.nodes = defaultNodes
	}
	c := &cluster{t: t, dir: t.TempDir(), dsn: storagetest.PostgresDSN(t),
		http: &http.Client{Timeout: 15 * time.Second}}
	nodeDSN := c.dsn
	if o.proxy {
		c.proxy = startProxy(t, c.dsn)
		nodeDSN = c.proxy.dsn(c.dsn)
	}
	ports := freePorts(t, o.nodes)
	c.issuer = "http://127.0.0.1:" + strconv.Itoa(ports[0])
	for i, port := range ports {
		n := &node{name: nodeNames[i : i+1], url: "http://127.0.0.1:" + strconv.Itoa(port),
			config: filepath.Join(c.dir, fmt.Sprintf("node-%c.yaml", nodeNames[i])),
			log:    filepath.Join(c.dir, fmt.Sprintf("node-%c.log", nodeNames[i]))}
		writeConfig(t, n.config, c.issuer, port, nodeDSN, filepath.Join(c.dir, "master.key"), o.grace)
		c.nodes = append(c.nodes, n)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.kill()
		}
		if t.Failed() {
			for _, n := range c.nodes {
				t.Logf("log of node %s (last lines):\n%s", n.name, n.tail(30))
			}
		}
	})

	// What an operator does once: migrate, and make the master key that every
	// node then gets a copy of.
	c.cli("migrate", "up")
	c.cli("keys", "list")
	for _, n := range c.nodes {
		n.start(t)
	}
	for _, n := range c.nodes {
		n.waitHealthy(t, startTimeout)
	}

	var err error
	c.store, err = sqlstore.Open(t.Context(), c.dsn, sqlstore.Options{SkipMigrations: true, MaxOpenConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.store.Close() })
	c.db, err = sql.Open("pgx", c.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.db.Close() })
	return c
}

func writeConfig(t *testing.T, path, issuer string, port int, dsn, keyFile string, grace time.Duration) {
	t.Helper()
	cfg := fmt.Sprintf(`issuer: %s
listen: 127.0.0.1:%d
storage: '%s'
key_file: %s
log: {format: json, level: info}
database: {max_open_conns: 8, migrate: false}
signing: {refresh_interval: %s}
tokens: {refresh_token_grace: %s}
# Cheap hashes: the tests sign in often; the cost of argon2id is not under test.
passwords: {memory_kib: 1024, iterations: 1, parallelism: 1}
clients:
  - client_id: %s
    token_endpoint_auth_method: none
    redirect_uris: [%s]
    grant_types: [authorization_code, refresh_token]
    scope: %s
    skip_consent: true
  - client_id: %s
    client_secret: %s
    token_endpoint_auth_method: client_secret_basic
    grant_types: [client_credentials]
users:
  - username: %s
    password: %s
    email: alice@example.com
    email_verified: true
`, issuer, port, dsn, keyFile, refreshInterval, grace, spaID, redirectURI, spaScope, rsID, rsSecret, username, password)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

// freePorts finds n ports free on the loopback interface now.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// cli runs an admin command with node A's configuration.
func (c *cluster) cli(args ...string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append(args, "--config", c.nodes[0].config)...)
	cmd.Env = nodeEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("castellan %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// nodeEnv is the environment of castellan processes: the test's, without
// CASTELLAN_* variables, so that only the config file configures them.
func nodeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CASTELLAN_") {
			env = append(env, kv)
		}
	}
	return env
}

// node is one castellan serve process; it can be killed and started again on
// the same address.
type node struct {
	name, url, config, log string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // of Wait, once exited
}

func (n *node) start(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(n.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "serve", "--config", n.config)
	cmd.Env = nodeEnv()
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start node %s: %v", n.name, err)
	}
	exited := make(chan struct{})
	n.mu.Lock()
	n.cmd, n.exited = cmd, exited
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		f.Close()
		n.mu.Lock()
		n.err = err
		n.mu.Unlock()
		close(exited)
	}()
}

// waitHealthy waits until /healthz answers 200.
func (n *node) waitHealthy(t *testing.T, timeout time.Duration) {
	t.Helper()
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exited:
			t.Fatalf("node %s exited while starting: %v\n%s", n.name, n.exitErr(), n.tail(20))
		default:
		}
		if healthz(client, n) == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s: /healthz not 200 after %s\n%s", n.name, timeout, n.tail(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// healthz returns the status of GET /healthz, or 0 if the node does not answer.
func healthz(client *http.Client, n *node) int {
	resp, err := client.Get(n.url + "/healthz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (n *node) exitErr() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// kill ends the process at once (SIGKILL), as a crash would.
func (n *node) kill() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// term asks the process to stop (SIGTERM) and returns how it exited.
func (n *node) term(timeout time.Duration) error {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return n.exitErr()
	case <-time.After(timeout):
		n.kill()
		return errors.New("did not stop in time; killed")
	}
}

// tail returns the last lines of the node's log.
func (n *node) tail(lines int) string {
	b, err := os.ReadFile(n.log)
	if err != nil {
		return err.Error()
	}
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// replaceHost returns dsn with its host:port replaced.
func replaceHost(dsn, hostport string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(err)
	}
	u.Host = hostport
	return u.String()
}
