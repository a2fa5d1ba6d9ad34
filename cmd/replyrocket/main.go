// Command replyrocket is the one binary of ReplyRocket: the API server, a
// one-command development mode, migrations, partition maintenance, user
// management and data seeding.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/replyrocket/replyrocket/handlers"
	"github.com/replyrocket/replyrocket/internal/cli"
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
  replyrocket config                       every environment variable: default, current value (secrets masked)
  replyrocket openapi                      print the OpenAPI 3.1 document (as served at /openapi.json)

Environment: see below, or ` + "`replyrocket config`" + `.
`

func main() { cli.Main("replyrocket", usage, run) }

// env is what every command gets: the signal-bound context, the
// environment (read once, through getenv) and the output streams.
type env struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return cli.ErrUsage
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
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		fmt.Fprintln(stdout)
		return config.Print(stdout, getenv)
	}
	return fmt.Errorf("%w: unknown command %q", cli.ErrUsage, cmd)
}

// flags parses a subcommand's flags (see cli.Parse).
func (e env) flags(name string, args []string, define func(fs *flag.FlagSet)) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	define(fs)
	return cli.Parse(fs, args, e.stderr)
}
