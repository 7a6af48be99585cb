package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/castellan-auth/castellan/internal/clock"
	"github.com/castellan-auth/castellan/internal/config"
	"github.com/castellan-auth/castellan/internal/identity"
	"github.com/castellan-auth/castellan/internal/seal"
	"github.com/castellan-auth/castellan/internal/signing"
	"github.com/castellan-auth/castellan/internal/storage"
	"github.com/castellan-auth/castellan/internal/storage/sqlstore"
)

// adminFlags are the flags every administration command shares: which
// installation to act on.
type adminFlags struct {
	config string
	dev    bool
}

func (a *adminFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.config, "config", "", "config `FILE` of the installation")
	fs.BoolVar(&a.dev, "dev", false, "act on the castellan dev data in "+devDir)
}

func (a *adminFlags) load(env []string) (*config.Config, error) {
	if a.dev {
		// Its users are read only to say what a start will do with a change.
		cfg := devConfig(devDir, "unused")
		return &cfg, nil
	}
	if a.config == "" && !hasEnv(env, config.EnvPrefix+"STORAGE") {
		return nil, errors.New("say which installation: --config FILE, --dev, or CASTELLAN_STORAGE")
	}
	return config.Load(a.config, env)
}

func hasEnv(env []string, name string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}

// adminStore opens the installation's storage.
func adminStore(ctx context.Context, cfg *config.Config, stderr io.Writer) (*sqlstore.Store, *seal.Key, error) {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return openStore(ctx, cfg, log)
}

func hasherFor(cfg *config.Config) *identity.Hasher {
	p := cfg.Passwords
	return identity.NewHasher(identity.Params{MemoryKiB: uint32(p.MemoryKiB), Iterations: uint32(p.Iterations), Parallelism: uint8(p.Parallelism)},
		p.MemoryLimitMiB*1024, p.QueueTimeout.D())
}

const userUsage = `Usage:
  castellan user add USERNAME [--email E] [--email-verified] [--name N] [--given-name G] [--family-name F] [--password-stdin]
  castellan user list
  castellan user disable USERNAME     (ends their sessions and revokes their grants)
  castellan user enable USERNAME
  castellan user passwd USERNAME [--password-stdin]
  castellan user rm USERNAME
Clients that registered a backchannel_logout_uri are told about the sessions
that disable and rm end by the server running on the same database (at once if
it runs, else when it next starts).
For a user the config file declares, disable, enable and passwd take that field
from the config: a restart no longer changes it. rm does not: the next start
creates a declared user again.
Each takes --config FILE or --dev. Passwords are read from a prompt, or from the
first line of standard input with --password-stdin; never from the command line.
`

func cmdUser(ctx context.Context, args, env []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, userUsage)
		return errUsage
	}
	verb := args[0]
	switch verb {
	case "add", "list", "disable", "enable", "passwd", "rm":
	default:
		// Before opening anything: an unknown verb must not create a key or a database.
		fmt.Fprint(stderr, userUsage)
		return errUsage
	}
	fs := flag.NewFlagSet("user "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var af adminFlags
	af.register(fs)
	var p identity.Profile
	passwordStdin := false
	if verb == "add" || verb == "passwd" {
		fs.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
	}
	if verb == "add" {
		fs.StringVar(&p.Email, "email", "", "e-mail address")
		fs.BoolVar(&p.EmailVerified, "email-verified", false, "the e-mail address is verified")
		fs.StringVar(&p.Name, "name", "", "full name")
		fs.StringVar(&p.GivenName, "given-name", "", "given name")
		fs.StringVar(&p.FamilyName, "family-name", "", "family name")
	}
	// Flags may come before or after the username.
	rest, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	needName := verb != "list"
	if needName && len(rest) != 1 || !needName && len(rest) != 0 {
		fmt.Fprint(stderr, userUsage)
		return errUsage
	}
	cfg, err := af.load(env)
	if err != nil {
		return err
	}
	store, _, err := adminStore(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer store.Close()
	dir := identity.NewDirectory(store, hasherFor(cfg), clock.System{}, slog.New(slog.NewTextHandler(stderr, nil)))

	if verb == "list" {
		return listUsers(ctx, dir, stdout)
	}
	name := rest[0]
	if verb == "add" {
		p.Username = name
		if !identity.ValidUsername(p.Username) {
			return fmt.Errorf("invalid username %q: 1 to 128 printable characters, no leading or trailing space", p.Username)
		}
		// Before asking for a password that would be of no use.
		if _, err := dir.Lookup(ctx, p.Username); err == nil {
			return fmt.Errorf("user %q already exists (usernames ignore case)", p.Username)
		}
		pw, err := readPassword(stdin, stderr, passwordStdin, true)
		if err != nil {
			return err
		}
		u, err := dir.Add(ctx, p, pw)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added %s (id %s)\n", u.Username, u.ID)
		if _, ok := declaredUser(cfg, u.Username); ok {
			fmt.Fprintf(stdout, "%s is declared in the config: its next start takes over each field that agrees with the declaration and leaves the others as set here\n", u.Username)
		}
		return nil
	}
	u, err := dir.Lookup(ctx, name)
	if errors.Is(err, identity.ErrNoUser) {
		return fmt.Errorf("no user %q", name)
	}
	if err != nil {
		return err
	}
	var ch identity.Change
	switch verb {
	case "disable":
		if ch, err = dir.Disable(ctx, u.ID); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "disabled %s; ended %d session(s) and revoked their grants\n", u.Username, len(ch.Ended))
	case "enable":
		if ch, err = dir.Enable(ctx, u.ID); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "enabled %s\n", u.Username)
	case "passwd":
		pw, err := readPassword(stdin, stderr, passwordStdin, true)
		if err != nil {
			return err
		}
		if ch, err = dir.SetPassword(ctx, u.ID, pw); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "password changed for %s\n", u.Username)
	case "rm":
		if ch, err = dir.Delete(ctx, u.ID); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s; ended %d session(s)\n", u.Username, len(ch.Ended))
	}
	d, inConfig := declaredUser(cfg, u.Username)
	if note := configNote(verb, u.Username, ch, d, inConfig); note != "" {
		fmt.Fprintln(stdout, note)
	}
	return nil
}

func listUsers(ctx context.Context, dir *identity.Directory, stdout io.Writer) error {
	users, err := dir.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tID\tEMAIL\tVERIFIED\tNAME\tSTATUS\tCREATED")
	for _, u := range users {
		status := "active"
		if u.Disabled {
			status = "disabled"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%s\t%s\n", u.Username, u.ID, u.Email, u.EmailVerified, u.Name, status, u.CreatedAt.Format(time.DateOnly))
	}
	return tw.Flush()
}

// declaredUser finds the config's declaration of username (usernames ignore case).
func declaredUser(cfg *config.Config, username string) (config.User, bool) {
	for _, d := range cfg.Users {
		if strings.EqualFold(d.Username, username) {
			return d, true
		}
	}
	return config.User{}, false
}

// configNote says what a start will do after an administrator's change of a
// user the config declares (d, when inConfig), or declared when it last
// provisioned them (ch.Undeclared); "" for a user the config has no say in.
func configNote(verb, name string, ch identity.Change, d config.User, inConfig bool) string {
	switch verb {
	case "disable", "enable":
		if ch.Undeclared&storage.FieldDisabled == 0 && !inConfig {
			return ""
		}
		state := map[bool]string{true: "disabled", false: "enabled"}
		now := ch.User.Disabled
		switch {
		case !inConfig:
			return fmt.Sprintf("%s was declared in the config; it no longer decides whether %s is disabled", name, name)
		case d.Disabled == now:
			return fmt.Sprintf("%s is declared in the config with disabled: %t as well, and it goes on deciding it", name, now)
		default:
			return fmt.Sprintf("%s is declared in the config with disabled: %t, which a restart no longer applies: %s stays %s (the config decides again once it says disabled: %t)",
				name, d.Disabled, name, state[now], now)
		}
	case "passwd":
		if ch.Undeclared&storage.FieldPassword == 0 && !inConfig {
			return ""
		}
		return fmt.Sprintf("%s is declared in the config, which no longer changes this password: a restart keeps the one set now (it governs the password again once it declares this same one)", name)
	case "rm":
		if ch.Undeclared == 0 && !inConfig {
			return ""
		}
		return fmt.Sprintf("%s is declared in the config: its next start creates %s again, as a new account with a new id, unless %s is removed from it first", name, name, name)
	}
	return ""
}

// parseInterspersed parses flags that may appear before or after positional
// arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return rest, nil
		}
		rest = append(rest, args[0])
		args = args[1:]
	}
}

// readPassword reads a new password from a terminal prompt (twice) or from
// the first line of stdin; the Directory checks its length.
func readPassword(stdin io.Reader, stderr io.Writer, fromStdin, confirm bool) (string, error) {
	var pw string
	if f, ok := stdin.(*os.File); ok && !fromStdin && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		pw = string(b)
		if confirm {
			fmt.Fprint(stderr, "Again: ")
			b2, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(stderr)
			if err != nil {
				return "", err
			}
			if string(b2) != pw {
				return "", errors.New("the passwords differ")
			}
		}
	} else {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	return pw, nil
}

func cmdKeys(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "rotate") {
		fmt.Fprint(stderr, "Usage: castellan keys list|rotate [--alg ALG] --config FILE\n")
		return errUsage
	}
	verb := args[0]
	fs := flag.NewFlagSet("keys "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var af adminFlags
	af.register(fs)
	alg := fs.String("alg", "", "rotate only this algorithm (default: every configured one)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprint(stderr, "Usage: castellan keys list|rotate [--alg ALG] --config FILE\n")
		return errUsage
	}
	cfg, err := af.load(env)
	if err != nil {
		return err
	}
	if *alg != "" && !slices.Contains(cfg.Signing.Algorithms, *alg) {
		// A key of an algorithm the provider does not sign with would only be published.
		return fmt.Errorf("--alg %s: not in signing.algorithms (%s)", *alg, strings.Join(cfg.Signing.Algorithms, ", "))
	}
	store, master, err := adminStore(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer store.Close()
	ks := signing.New(store, master, clock.System{}, signing.Policy{
		Algorithms:       cfg.Signing.Algorithms,
		RotationPeriod:   cfg.Signing.RotationPeriod.D(),
		Propagation:      2 * cfg.Signing.RefreshInterval.D(),
		MaxTokenLifetime: max(cfg.Tokens.AccessTokenTTL.D(), cfg.Tokens.IDTokenTTL.D()) + time.Minute,
	}, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err := ks.Load(ctx); err != nil {
		return err
	}
	if verb == "rotate" {
		algs := cfg.Signing.Algorithms
		if *alg != "" {
			algs = []string{*alg}
		}
		for _, a := range algs {
			k, err := ks.Rotate(ctx, a)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "rotated %s: new key %s signs from %s\n", a, k.KID, k.ActivatesAt.Format(time.RFC3339))
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tSIGNS FROM\tRETIRES\tLEAVES JWKS")
	keys := ks.Keys()
	// Keys() comes in map order: show each algorithm's keys oldest first.
	slices.SortFunc(keys, func(a, b signing.KeyInfo) int {
		return cmp.Or(cmp.Compare(a.Algorithm, b.Algorithm), a.ActivatesAt.Compare(b.ActivatesAt), cmp.Compare(a.KID, b.KID))
	})
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.KID, k.Algorithm, k.State, fmtTime(k.ActivatesAt), fmtTime(k.RetiresAt), fmtTime(k.ExpiresAt))
	}
	return tw.Flush()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func cmdMigrate(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "up" && args[0] != "status") {
		fmt.Fprint(stderr, "Usage: castellan migrate up|status --config FILE\n")
		return errUsage
	}
	verb := args[0]
	fs := flag.NewFlagSet("migrate "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var af adminFlags
	af.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := af.load(env)
	if err != nil {
		return err
	}
	store, err := sqlstore.Open(ctx, cfg.Storage, sqlstore.Options{SkipMigrations: verb == "status",
		Log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	defer store.Close()
	st, err := store.Migrations(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tMIGRATION\tAPPLIED")
	for _, m := range st {
		fmt.Fprintf(tw, "%d\t%s\t%t\n", m.Version, m.Name, m.Applied)
	}
	return tw.Flush()
}
