package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/castellan-auth/castellan/internal/identity"
	"github.com/castellan-auth/castellan/internal/server/servertest"
)

// TestDeclaredUserChangedByCLISurvivesRestart: a provider declares alice and
// bob; the admin CLI disables alice and gives bob a new password; a restart
// with the same config keeps both changes (alice stays disabled, bob's old
// password fails), changes nothing else, and the CLI said so.
func TestDeclaredUserChangedByCLISurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	first := servertest.New(t, servertest.Options{Dir: dir})
	ctx := t.Context()

	// The CLI's view of the same installation, declaring the same users.
	cfgPath := filepath.Join(dir, "castellan.yaml")
	yaml := "storage: sqlite://" + filepath.Join(dir, "castellan.db") + "\n" +
		"key_file: " + filepath.Join(dir, "master.key") + "\n" +
		"passwords: {memory_kib: 1024, iterations: 1, parallelism: 1}\n" +
		"users:\n" +
		"  - {username: alice, password: '" + servertest.Password + "'}\n" +
		"  - {username: bob, password: '" + servertest.Password + "'}\n"
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := cli(t, "", "user", "disable", "alice", "--config", cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if want := "alice is declared in the config with disabled: false, which a restart no longer applies: alice stays disabled"; !strings.Contains(out, want) {
		t.Errorf("disable: got %q, want it to say %q", out, want)
	}
	const newPassword = "a password set with the CLI"
	out, _, err = cli(t, newPassword+"\n", "user", "passwd", "bob", "--password-stdin", "--config", cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if want := "bob is declared in the config, which no longer changes this password: a restart keeps the one set now"; !strings.Contains(out, want) {
		t.Errorf("passwd: got %q, want it to say %q", out, want)
	}
	before := map[string]any{}
	for _, name := range []string{"alice", "bob"} {
		u, err := first.Store.GetUserByUsername(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		before[name] = u
	}

	restarted := servertest.New(t, servertest.Options{Dir: dir})
	users := restarted.Server.Users
	if _, err := users.Authenticate(ctx, "alice", servertest.Password); !errors.Is(err, identity.ErrBadCredentials) {
		t.Errorf("alice after the restart: got %v, want her still disabled (%v)", err, identity.ErrBadCredentials)
	}
	if _, err := users.Authenticate(ctx, "bob", servertest.Password); !errors.Is(err, identity.ErrBadCredentials) {
		t.Errorf("bob's declared old password after the restart: got %v, want it refused", err)
	}
	if _, err := users.Authenticate(ctx, "bob", newPassword); err != nil {
		t.Errorf("bob's password from the CLI after the restart: got %v, want it accepted", err)
	}
	for _, name := range []string{"alice", "bob"} {
		u, err := restarted.Store.GetUserByUsername(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		// bob's sign-ins may not upgrade his hash: it has the configured parameters.
		if u != before[name] {
			t.Errorf("%s after the restart: got %+v, want unchanged %+v", name, u, before[name])
		}
	}

	out, _, err = cli(t, "", "user", "rm", "alice", "--config", cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if want := "alice is declared in the config: its next start creates alice again, as a new account"; !strings.Contains(out, want) {
		t.Errorf("rm: got %q, want it to say %q", out, want)
	}
}
