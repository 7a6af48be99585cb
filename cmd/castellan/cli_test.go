package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/identity"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
)

// cli runs the command line with stdin and returns what it wrote.
func cli(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errw bytes.Buffer
	err = run(t.Context(), args, strings.NewReader(stdin), &out, &errw)
	return out.String(), errw.String(), err
}

// installation writes a config for a SQLite installation in a temporary
// directory, with cheap argon2id parameters, and returns its path and storage DSN.
func installation(t *testing.T) (path, dsn string) {
	t.Helper()
	dir := t.TempDir()
	dsn = "sqlite://" + filepath.Join(dir, "castellan.db") // sqlite:///abs/path
	yaml := "storage: " + dsn + "\n" +
		"key_file: " + filepath.Join(dir, "master.key") + "\n" +
		"passwords: {memory_kib: 1024, iterations: 1, parallelism: 1}\n"
	path = filepath.Join(dir, "castellan.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, dsn
}

func TestServeRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, yaml, key string
	}{
		{"fail/unknown-key", "issuer: http://127.0.0.1:9000\nsesion: {idle_timeout: 10m}\n", "sesion: line 2: unknown key"},
		{"fail/http-issuer-non-loopback", "issuer: http://auth.example.com\n", "issuer: http on a non-loopback host"},
		{"fail/duplicate-client-id", "clients:\n  - {client_id: a, redirect_uris: [http://127.0.0.1/cb]}\n  - {client_id: a, redirect_uris: [http://127.0.0.1/cb]}\n",
			"clients[1].client_id: duplicate"},
		{"fail/bad-duration", "session: {idle_timeout: 30}\n", "session.idle_timeout: line 1: want a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, "/", "-")+".yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := cli(t, "", "serve", "--config", path)
			if err == nil {
				t.Fatal("got no error, want a refusal to start")
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Errorf("got %T, want *config.Error", err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("got %q, want one line", msg)
			}
			if !strings.Contains(msg, path) || !strings.Contains(msg, tt.key) {
				t.Errorf("got %q, want it to name %s and %q", msg, path, tt.key)
			}
		})
	}
	// Nothing was opened or created next to the configs.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".yaml") {
			t.Errorf("got %s in the directory, want nothing created", e.Name())
		}
	}
}

func TestServeMissingConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.yaml")
	_, _, err := cli(t, "", "serve", "--config", path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("got %v, want an error naming %s", err, path)
	}
}

func TestUser(t *testing.T) {
	cfgPath, dsn := installation(t)
	const password = "correct horse battery"
	const newPassword = "tr0ub4dor&3-staple"
	var transcript strings.Builder // everything the commands wrote
	user := func(stdin string, args ...string) (string, error) {
		t.Helper()
		out, errOut, err := cli(t, stdin, append([]string{"user"}, append(args, "--config", cfgPath)...)...)
		transcript.WriteString(out + errOut)
		if err != nil {
			transcript.WriteString(err.Error())
		}
		return out, err
	}
	mustUser := func(stdin string, args ...string) string {
		t.Helper()
		out, err := user(stdin, args...)
		if err != nil {
			t.Fatalf("user %s: got %v, want no error", strings.Join(args, " "), err)
		}
		return out
	}
	listed := func(name string) []string {
		t.Helper()
		for _, line := range strings.Split(mustUser("", "list"), "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[0] == name {
				return f
			}
		}
		return nil
	}

	out := mustUser(password+"\n", "add", "alice", "--email", "alice@example.com", "--email-verified", "--name", "Alice", "--password-stdin")
	if !strings.Contains(out, "added alice") {
		t.Errorf("add: got %q, want it to say added alice", out)
	}
	row := listed("alice")
	if row == nil {
		t.Fatal("list: got no row for alice, want one")
	}
	if !strings.Contains(strings.Join(row, " "), "alice@example.com true Alice active") {
		t.Errorf("list: got %q, want email, verified, name and active", row)
	}

	// Flags before the username work as well.
	mustUser("another-password\n", "add", "--password-stdin", "bob")
	if listed("bob") == nil {
		t.Error("list: got no row for bob, want one")
	}

	if _, err := user(password+"\n", "add", "ALICE", "--password-stdin"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("add ALICE: got %v, want already exists", err)
	}
	if _, err := user("short\n", "add", "carol", "--password-stdin"); err == nil || !strings.Contains(err.Error(), "too short") {
		t.Errorf("add with a short password: got %v, want too short", err)
	}
	if listed("carol") != nil {
		t.Error("list: got carol, want her refused")
	}
	if _, err := user("", "add", "dave", "--password-stdin"); err == nil {
		t.Error("add with no password: got no error, want one")
	}

	mustUser("", "disable", "Alice") // usernames ignore case
	if row := listed("alice"); row == nil || row[len(row)-2] != "disabled" {
		t.Errorf("list after disable: got %q, want status disabled", row)
	}
	mustUser("", "enable", "alice")
	if row := listed("alice"); row == nil || row[len(row)-2] != "active" {
		t.Errorf("list after enable: got %q, want status active", row)
	}

	before := getUser(t, dsn, "alice")
	mustUser(newPassword+"\n", "passwd", "alice", "--password-stdin")
	after := getUser(t, dsn, "alice")
	if after.PasswordHash == before.PasswordHash {
		t.Error("passwd: got the same hash, want a new one")
	}
	h := identity.NewHasher(identity.Params{MemoryKiB: 1024, Iterations: 1, Parallelism: 1}, 64*1024, time.Second)
	if ok, _, err := h.Verify(t.Context(), newPassword, after.PasswordHash); !ok || err != nil {
		t.Errorf("passwd: new password verifies %t, %v; want true", ok, err)
	}
	if ok, _, _ := h.Verify(t.Context(), password, after.PasswordHash); ok {
		t.Error("passwd: old password still verifies, want it not to")
	}
	if _, err := user("short\n", "passwd", "alice", "--password-stdin"); err == nil {
		t.Error("passwd with a short password: got no error, want one")
	}

	mustUser("", "rm", "alice")
	if listed("alice") != nil {
		t.Error("list after rm: got alice, want her gone")
	}
	if _, err := user("", "rm", "alice"); err == nil || !strings.Contains(err.Error(), `no user "alice"`) {
		t.Errorf("rm twice: got %v, want no user", err)
	}
	if _, err := user("", "disable", "nobody"); err == nil {
		t.Error("disable nobody: got no error, want one")
	}

	for _, pw := range []string{password, newPassword, "another-password"} {
		if strings.Contains(transcript.String(), pw) {
			t.Errorf("a password appeared in the output: %q", transcript.String())
		}
	}
}

func getUser(t *testing.T, dsn, name string) storage.User {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), dsn, sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := s.GetUserByUsername(context.Background(), name)
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return u
}

func TestUserUsage(t *testing.T) {
	cfgPath, _ := installation(t)
	for _, args := range [][]string{
		{"user"},
		{"user", "frobnicate", "alice", "--config", cfgPath},
		{"user", "add", "--config", cfgPath},
		{"user", "list", "extra", "--config", cfgPath},
	} {
		if _, _, err := cli(t, "", args...); !errors.Is(err, errUsage) {
			t.Errorf("%q: got %v, want the usage", args, err)
		}
	}
	// Usage errors come before anything is opened or created.
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfgPath), "master.key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v, want no master key created by a usage error", err)
	}
	if _, _, err := cli(t, "", "user", "list"); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("user list without an installation: got %v, want it to ask for --config", err)
	}
}

// keyRows returns the rows of the keys table (header left out), as fields.
func keyRows(t *testing.T, out string) [][]string {
	t.Helper()
	var rows [][]string
	header := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "KID":
			header = true
		case header:
			if len(f) != 6 {
				t.Fatalf("got row %q, want 6 columns", line)
			}
			rows = append(rows, f)
		}
	}
	if !header {
		t.Fatalf("got %q, want a table with a KID header", out)
	}
	return rows
}

func TestKeys(t *testing.T) {
	cfgPath, _ := installation(t)
	keys := func(args ...string) string {
		t.Helper()
		out, _, err := cli(t, "", append([]string{"keys"}, append(args, "--config", cfgPath)...)...)
		if err != nil {
			t.Fatalf("keys %q: got %v, want no error", args, err)
		}
		return out
	}

	if rows := keyRows(t, keys("list")); len(rows) != 0 {
		t.Errorf("list on a new installation: got %q, want no keys", rows)
	}

	// The first rotation gives every configured algorithm a current key.
	rows := keyRows(t, keys("rotate"))
	if len(rows) != 2 {
		t.Fatalf("after the first rotate: got %q, want 2 keys (ES256, RS256)", rows)
	}
	first := map[string]string{} // alg → kid
	for _, r := range rows {
		if r[2] != "current" || r[4] != "-" {
			t.Errorf("after the first rotate: got %q, want a current key that does not retire", r)
		}
		first[r[1]] = r[0]
	}

	// The second schedules a next key and retires the current one when it activates.
	out := keys("rotate", "--alg", "ES256")
	if !strings.Contains(out, "rotated ES256: new key ") {
		t.Errorf("rotate: got %q, want it to name the new key", out)
	}
	rows = keyRows(t, keys("list"))
	if len(rows) != 3 {
		t.Fatalf("after the second rotate: got %q, want 3 keys", rows)
	}
	var next, old []string
	for _, r := range rows {
		switch {
		case r[1] == "ES256" && r[2] == "next":
			next = r
		case r[0] == first["ES256"]:
			old = r
		case r[0] == first["RS256"]:
			if r[2] != "current" || r[4] != "-" {
				t.Errorf("RS256 key: got %q, want it current and untouched", r)
			}
		default:
			t.Errorf("got unexpected key %q", r)
		}
	}
	if next == nil || old == nil {
		t.Fatalf("got %q, want a next ES256 key and the old one", rows)
	}
	if next[0] == old[0] {
		t.Errorf("got the same kid %s twice, want a new key", next[0])
	}
	if old[2] != "current" {
		t.Errorf("old key: got state %s, want current until the next one activates", old[2])
	}
	retires, err := time.Parse(time.RFC3339, old[4])
	if err != nil {
		t.Fatalf("old key: got RETIRES %q, want a time", old[4])
	}
	if old[4] != next[3] {
		t.Errorf("got old key retiring at %s and next signing from %s, want the same time", old[4], next[3])
	}
	if _, err := time.Parse(time.RFC3339, old[5]); err != nil {
		t.Errorf("old key: got LEAVES JWKS %q, want a time", old[5])
	}
	if d := time.Until(retires); d <= 0 || d > 3*time.Minute {
		t.Errorf("old key retires in %s, want within the propagation delay (2m)", d)
	}
	// Rows are sorted by algorithm, then activation.
	if rows[0][1] != "ES256" || rows[0][0] != old[0] || rows[1][0] != next[0] || rows[2][1] != "RS256" {
		t.Errorf("got rows in order %q, want ES256 oldest first, then RS256", rows)
	}

	if _, _, err := cli(t, "", "keys", "rotate", "--alg", "HS256", "--config", cfgPath); err == nil || !strings.Contains(err.Error(), "signing.algorithms") {
		t.Errorf("rotate --alg HS256: got %v, want a refusal naming signing.algorithms", err)
	}
	if _, _, err := cli(t, "", "keys", "delete"); !errors.Is(err, errUsage) {
		t.Errorf("keys delete: got %v, want the usage", err)
	}
}

func TestMigrate(t *testing.T) {
	cfgPath, _ := installation(t)
	applied := func(out string) string {
		t.Helper()
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "1" {
				return f[2]
			}
		}
		t.Fatalf("got %q, want a row for version 1", out)
		return ""
	}
	out, _, err := cli(t, "", "migrate", "status", "--config", cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := applied(out); got != "false" {
		t.Errorf("status on a new database: got applied %s, want false", got)
	}
	if out, _, err = cli(t, "", "migrate", "up", "--config", cfgPath); err != nil {
		t.Fatal(err)
	}
	if got := applied(out); got != "true" {
		t.Errorf("up: got applied %s, want true", got)
	}
	if out, _, err = cli(t, "", "migrate", "status", "--config", cfgPath); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "VERSION") || applied(out) != "true" {
		t.Errorf("status after up: got %q, want version 1 applied", out)
	}
}

func TestMigrateStatusAfterUserAdd(t *testing.T) {
	// Any admin command migrates (database.migrate defaults to true).
	cfgPath, _ := installation(t)
	if _, _, err := cli(t, "password1\n", "user", "add", "alice", "--password-stdin", "--config", cfgPath); err != nil {
		t.Fatal(err)
	}
	out, _, err := cli(t, "", "migrate", "status", "--config", cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "00001_initial.sql") || !strings.Contains(out, "true") {
		t.Errorf("got %q, want 00001_initial.sql applied", out)
	}
}

func TestVersionAndUsage(t *testing.T) {
	out, _, err := cli(t, "", "version")
	if err != nil || !strings.HasPrefix(out, "castellan ") || len(strings.TrimSpace(out)) <= len("castellan") {
		t.Errorf("version: got %q, %v; want castellan and a version", out, err)
	}
	if out, _, err := cli(t, "", "help"); err != nil || !strings.Contains(out, "castellan serve") {
		t.Errorf("help: got %q, %v; want the usage", out, err)
	}
	for _, args := range [][]string{nil, {"frobnicate"}} {
		if _, _, err := cli(t, "", args...); !errors.Is(err, errUsage) {
			t.Errorf("%q: got %v, want the usage", args, err)
		}
	}
}
