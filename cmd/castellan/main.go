// Command castellan is Castellan's single binary: the provider (serve), a
// self-contained development setup (dev) and the administration commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `Castellan: OAuth 2.1 / OpenID Connect provider for single-page applications.

Usage:
  castellan serve   --config FILE        run the provider
  castellan bff     --config FILE        run the Backend-for-Frontend gateway for one SPA
  castellan dev                          provider with demo data on 127.0.0.1 (no config needed)
  castellan user    add|list|disable|enable|passwd|rm [flags] [USERNAME]
  castellan client  add|list|show|rm [flags] [CLIENT_ID]
  castellan keys    list|rotate --config FILE
  castellan migrate up|status --config FILE
  castellan version

Every config key can also come from CASTELLAN_<KEY> (nested keys joined by _).
Run "castellan COMMAND -h" for the flags of a command.
`

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if errors.Is(err, errUsage) {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "castellan:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	env := os.Environ()
	switch args[0] {
	case "serve":
		return cmdServe(ctx, args[1:], env, stderr)
	case "bff":
		return cmdBFF(ctx, args[1:], env, stderr)
	case "dev":
		return cmdDev(ctx, args[1:], env, stdout, stderr)
	case "user":
		return cmdUser(ctx, args[1:], env, stdin, stdout, stderr)
	case "client":
		return cmdClient(ctx, args[1:], env, stdin, stdout, stderr)
	case "keys":
		return cmdKeys(ctx, args[1:], env, stdout, stderr)
	case "migrate":
		return cmdMigrate(ctx, args[1:], env, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "castellan", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return errUsage
}
