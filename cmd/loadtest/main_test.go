package main

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/replyrocket/replyrocket/internal/cli"
)

// Command-line mistakes are usage errors before anything starts: no
// database, no child process.
func TestRunRefusesBadFlags(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
	}{
		{"unknown flag", []string{"-nope"}},
		{"extra argument", []string{"now"}},
		{"zero concurrency", []string{"-c", "0"}},
		{"negative duration", []string{"-d", "-1s"}},
		{"env without =", []string{"-env", "DB_POOL_SIZE"}},
		{"env without name", []string{"-env", "=8"}},
		{"sizes not ascending", []string{"-scale", "-scale-sizes", "2000000,1000000"}},
		{"sizes too small", []string{"-scale", "-scale-sizes", "1000"}},
		{"sizes not numbers", []string{"-scale", "-scale-sizes", "a lot"}},
		{"zero reps", []string{"-scale", "-scale-sizes", "1000000", "-scale-reps", "0"}},
		{"bulk size zero", []string{"-events", "-bulk-sizes", "10,0"}},
		{"bulk size past the route's limit", []string{"-events", "-bulk-sizes", "1001"}},
		{"bulk size not a number", []string{"-events", "-bulk-sizes", "ten"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := run(context.Background(), c.args, func(string) string { return "" }, io.Discard, io.Discard)
			if !errors.Is(err, cli.ErrUsage) {
				t.Fatalf("run(%q) = %v, want a usage error", c.args, err)
			}
		})
	}
}

func TestRunRefusesUnknownRole(t *testing.T) {
	err := run(context.Background(), []string{"-role", "nope"}, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || errors.Is(err, cli.ErrUsage) {
		t.Fatalf("run(-role nope) = %v, want an unknown-role error", err)
	}
}

func TestParseEnv(t *testing.T) {
	got, err := parseEnv("DB_POOL_SIZE=8,CACHE_DISABLED=true,EMPTY=")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"DB_POOL_SIZE": "8", "CACHE_DISABLED": "true", "EMPTY": ""}
	if len(got) != len(want) {
		t.Fatalf("parseEnv = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("parseEnv[%s] = %q, want %q", k, got[k], v)
		}
	}
}
