package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want error // nil, flag.ErrHelp or ErrUsage
	}{
		{"no flags", nil, nil},
		{"a flag", []string{"-n", "3"}, nil},
		{"help", []string{"-h"}, flag.ErrHelp},
		{"unknown flag", []string{"-x"}, ErrUsage},
		{"bad value", []string{"-n", "three"}, ErrUsage},
		{"stray argument", []string{"-n", "3", "extra"}, ErrUsage},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.Int("n", 0, "a number")
			err := Parse(fs, c.args, io.Discard)
			if (c.want == nil) != (err == nil) || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("Parse(%q) = %v, want %v", c.args, err, c.want)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	for _, c := range []struct {
		name   string
		err    error
		code   int
		stderr string
	}{
		{"success", nil, 0, ""},
		{"help", flag.ErrHelp, 0, ""},
		{"usage", fmt.Errorf("%w: unexpected arguments [x]", ErrUsage), 2, "cmd: usage: unexpected arguments [x]\nUSAGE"},
		{"failure", errors.New("boom"), 1, "cmd: boom\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if got := exitCode("cmd", "USAGE", c.err, &stderr); got != c.code {
				t.Errorf("exit code %d, want %d", got, c.code)
			}
			if !strings.HasPrefix(stderr.String(), c.stderr) || (c.stderr == "" && stderr.Len() > 0) {
				t.Errorf("stderr %q, want %q", stderr.String(), c.stderr)
			}
		})
	}
}
