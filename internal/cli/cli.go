// Package cli is what the project's commands share around their own logic:
// the signal-bound context, flag parsing with one notion of a usage
// mistake, and the exit codes.
package cli

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

// ErrUsage marks a command-line mistake: Main prints the usage and exits 2.
var ErrUsage = errors.New("usage")

// Run is a command's body: its arguments (without the program name), the
// environment it reads (through getenv only) and its output streams.
type Run func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// Main runs run with a context cancelled by SIGINT or SIGTERM and exits:
// 0 on success or after -h, 2 with usage printed on a usage mistake, 1 with
// "name: error" otherwise.
func Main(name, usage string, run Run) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(name, usage, err, os.Stderr))
}

func exitCode(name, usage string, err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		fmt.Fprintln(stderr, name+":", err)
		fmt.Fprint(stderr, usage)
		return 2
	default:
		fmt.Fprintln(stderr, name+":", err)
		return 1
	}
}

// Parse parses args into fs, whose output goes to stderr. After -h (the
// flags printed) it returns flag.ErrHelp, which Main turns into exit 0
// without running anything; a bad flag or a stray argument is an ErrUsage
// error.
func Parse(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected arguments %v", ErrUsage, fs.Args())
	}
	return nil
}
