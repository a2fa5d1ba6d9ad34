// Command replyrocket is the one binary of ReplyRocket: the API server, a
// one-command development mode, migrations, partition maintenance, user
// management and data seeding.
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

	"github.com/replyrocket/replyrocket/handlers"
	"github.com/replyrocket/replyrocket/internal/config"
)

const usage = `replyrocket — cold-outreach API

Usage:
  replyrocket serve [--migrate]            run the API (DATABASE_URL required)
  replyrocket dev [--replicas N]           embedded PostgreSQL (+ N streaming replicas) + demo data + API on :8080
  replyrocket migrate up|down|status|redo  manage the schema
  replyrocket partitions ensure [--ahead N] | list | retain --older-than N [--drop]
  replyrocket users create --email E --name N
  replyrocket seed --users N --campaigns-per-user M --emails-per-campaign K [--months 12] [--workers 2]
  replyrocket loadtest [-c 32] [-d 8s] [-scale]  load benchmark on an embedded database (loopback only)
  replyrocket config                       every environment variable: default, current value (secrets masked)
  replyrocket openapi                      print the OpenAPI 3.1 document (as served at /openapi.json)

Environment: see below, or ` + "`replyrocket config`" + `.
`

// errUsage marks a command line mistake: usage is printed, exit code 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "replyrocket:", err)
		os.Exit(1)
	}
}

// env is what every command gets: the signal-bound context, the
// environment (read once, through getenv) and the output streams.
type env struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	e := env{getenv: getenv, stdout: stdout, stderr: stderr}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return e.serve(ctx, rest)
	case "dev":
		return e.dev(ctx, rest)
	case "migrate":
		return e.migrate(ctx, rest)
	case "partitions":
		return e.partitions(ctx, rest)
	case "users":
		return e.users(ctx, rest)
	case "seed":
		return e.seed(ctx, rest)
	case "config":
		if err := e.flags("config", rest, func(*flag.FlagSet) {}); err != nil {
			return err
		}
		return config.Print(stdout, getenv)
	case "openapi":
		if err := e.flags("openapi", rest, func(*flag.FlagSet) {}); err != nil {
			return err
		}
		_, err := stdout.Write(append(handlers.OpenAPI(), '\n'))
		return err
	case "loadtest":
		return e.loadtest(ctx, rest)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		fmt.Fprintln(stdout)
		return config.Print(stdout, getenv)
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}

// flags parses a subcommand's flags; errors come back as usage errors.
func (e env) flags(name string, args []string, define func(fs *flag.FlagSet)) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	define(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %v", errUsage, fs.Args())
	}
	return nil
}
