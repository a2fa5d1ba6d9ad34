package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/replyrocket/replyrocket/internal/cli"
	"github.com/replyrocket/replyrocket/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// runCLI runs the command in-process against url and returns its stdout.
func runCLI(t *testing.T, url string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(k string) string {
		if k == "DATABASE_URL" {
			return url
		}
		return ""
	}
	err := run(context.Background(), args, getenv, &out, &errOut)
	return out.String(), err
}

func mustCLI(t *testing.T, url string, args ...string) string {
	t.Helper()
	out, err := runCLI(t, url, args...)
	if err != nil {
		t.Fatalf("replyrocket %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func TestMaintenanceCommands(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)

	if out := mustCLI(t, url, "migrate", "status"); !strings.Contains(out, "00002_emails.sql") || strings.Contains(out, "pending") {
		t.Fatalf("migrate status:\n%s", out)
	}
	if out := mustCLI(t, url, "migrate", "up"); !strings.Contains(out, "no pending") {
		t.Fatalf("migrate up:\n%s", out)
	}
	mustCLI(t, url, "migrate", "redo")

	if out := mustCLI(t, url, "partitions", "ensure", "--ahead", "2"); strings.Count(out, "created emails_p") != 3 {
		t.Fatalf("partitions ensure:\n%s", out)
	}
	if out := mustCLI(t, url, "partitions", "ensure", "--ahead", "2"); !strings.Contains(out, "already exist") {
		t.Fatalf("second ensure:\n%s", out)
	}

	out := mustCLI(t, url, "users", "create", "--email", "grace@example.com", "--name", "Grace")
	if !regexp.MustCompile(`\n  rr_[A-Za-z0-9_-]{43}\n`).MatchString(out) {
		t.Fatalf("users create printed no key:\n%s", out)
	}
	if _, err := runCLI(t, url, "users", "create", "--email", "GRACE@example.com", "--name", "Again"); err == nil {
		t.Fatal("a second user with the same email was created")
	}

	out = mustCLI(t, url, "seed", "--users", "2", "--campaigns-per-user", "2", "--emails-per-campaign", "300", "--months", "4")
	if !strings.Contains(out, "Seeded 2 users, 4 campaigns and 1200 emails over 4 months") {
		t.Fatalf("seed:\n%s", out)
	}
	out = mustCLI(t, url, "partitions", "list")
	if strings.Count(out, "emails_p") < 6 || !strings.Contains(out, "emails_default") {
		t.Fatalf("partitions list:\n%s", out)
	}
	out = mustCLI(t, url, "partitions", "retain", "--older-than", "2")
	if !strings.Contains(out, "detached (kept as a table)") {
		t.Fatalf("partitions retain:\n%s", out)
	}
}

// -h prints a command's flags and runs nothing: no server, no database
// (the URL here points nowhere), not even dev's embedded PostgreSQL.
func TestHelpFlagRunsNothing(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"serve", "-h"}, {"dev", "-h"}, {"seed", "-h"}, {"config", "-h"}} {
		if _, err := runCLI(t, "postgres://nowhere.invalid/x", args...); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("replyrocket %v: %v, want flag.ErrHelp", args, err)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{}, {"nope"}, {"migrate"}, {"migrate", "sideways"}, {"partitions", "shuffle"},
		{"users", "create", "--email", "a@b.co"}, {"seed", "--users", "x"}, {"serve", "extra"},
	} {
		_, err := runCLI(t, "postgres://unused", args...)
		if !errors.Is(err, cli.ErrUsage) {
			t.Errorf("replyrocket %v: %v, want a usage error", args, err)
		}
	}
	if _, err := runCLI(t, "", "serve"); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") {
		t.Fatalf("serve without DATABASE_URL: %v", err)
	}
}

// syncBuffer is written by the server's logger and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeMigratesAndStops: `serve --migrate` on an empty database applies
// the schema, creates partitions, answers, and returns cleanly when its
// context ends (what SIGINT/SIGTERM do through signal.NotifyContext).
func TestServeMigratesAndStops(t *testing.T) {
	t.Parallel()
	server := pgtest.ServerURL(t)
	name := "serve_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	admin, err := pgx.Connect(context.Background(), server)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, _ := url.Parse(server)
	u.Path = "/" + name
	env := map[string]string{"DATABASE_URL": u.String(), "PORT": "0", "APP_ENV": "prod"}

	ctx, stop := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--migrate"}, func(k string) string { return env[k] }, io.Discard, logs)
	}()

	addrRE := regexp.MustCompile(`"msg":"serving","addr":"[^"]*:(\d+)"`)
	var port string
	deadline := time.Now().Add(time.Minute)
	for port == "" {
		if m := addrRE.FindStringSubmatch(logs.String()); m != nil {
			port = m[1]
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	res, err := http.Get("http://127.0.0.1:" + port + "/health/db")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("health: %d", res.StatusCode)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v\n%s", err, logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s")
	}
	if !strings.Contains(logs.String(), `"msg":"created email partitions"`) || !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Fatalf("logs lack partition creation or a clean stop:\n%s", logs)
	}
}

// `config` and `--help` list every variable, with the URL's password masked;
// the usage names every subcommand flag docs/cli.md documents.
func TestConfigAndHelpListEveryVariable(t *testing.T) {
	for _, args := range [][]string{{"config"}, {"--help"}} {
		out, err := runCLI(t, "postgres://app:hunter2@db:5432/rr", args...)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "hunter2") {
			t.Errorf("%v printed the database password:\n%s", args, out)
		}
		for _, want := range []string{"postgres://app:xxxxx@db:5432/rr", "REDIS_URL", "CACHE_REDIS_TIMEOUT", "MONITOR_RETENTION", "DB_POOL_SIZE"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v output lacks %s:\n%s", args, want, out)
			}
		}
	}
	if !strings.Contains(usage, "--workers") || !strings.Contains(usage, "replyrocket config") {
		t.Errorf("usage omits --workers or config:\n%s", usage)
	}
}
