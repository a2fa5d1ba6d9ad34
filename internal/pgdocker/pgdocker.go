// Package pgdocker runs a throwaway PostgreSQL server in a Docker container
// for `replyrocket dev` on machines without the PostgreSQL binaries.
//
// It drives the docker CLI rather than a Docker client library: the server
// binary is what a newcomer builds first, and the Docker client with its
// dependencies (testcontainers, moby, OpenTelemetry) doubled the modules it
// downloads and added a third of its Go packages, for a fallback that most
// machines never take. Tests keep testcontainers (internal/pgtest).
package pgdocker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Credentials of the container's superuser. The port is published on
// loopback only and the container is removed on Stop, so fixed values are
// fine.
const (
	user     = "postgres"
	password = "postgres"
)

// Timeouts: the engine's answer to a probe, and the server's first start
// (initdb inside the container, then a restart).
const (
	probeTimeout = 3 * time.Second
	readyTimeout = 90 * time.Second
	stopTimeout  = 10 * time.Second
)

// Options say what to run.
type Options struct {
	Image    string   // e.g. postgres:16-alpine; an image with the official image's contract
	Database string   // created at first start (POSTGRES_DB)
	Args     []string // server arguments, e.g. "-c", "shared_preload_libraries=pg_stat_statements"
}

// Server is a running container.
type Server struct {
	ID   string
	Addr string // host:port on loopback
	db   string
}

// Available reports whether the docker CLI is installed and its engine
// answers within a few seconds.
func Available(ctx context.Context) bool {
	if _, err := exec.LookPath("docker"); err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	_, err := docker(ctx, "version", "--format", "{{.Server.Version}}")
	return err == nil
}

// Start runs the image with its port published on a free loopback port and
// waits until the server accepts connections over TCP. The image's
// entrypoint initialises with a server that listens on its socket only, so
// a TCP connection succeeds only once the final server is up.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.Image == "" || o.Database == "" {
		return nil, errors.New("pgdocker: an image and a database name are required")
	}
	args := []string{"run", "--detach",
		"--publish", "127.0.0.1::5432",
		"--env", "POSTGRES_USER=" + user,
		"--env", "POSTGRES_PASSWORD=" + password,
		"--env", "POSTGRES_DB=" + o.Database,
		// SIGINT is PostgreSQL's fast shutdown; the default SIGTERM waits
		// for every client to leave.
		"--stop-signal", "SIGINT",
		o.Image}
	id, err := docker(ctx, append(args, o.Args...)...)
	if err != nil {
		return nil, fmt.Errorf("start a PostgreSQL container from %s: %w", o.Image, err)
	}
	s := &Server{ID: id, db: o.Database}
	if err := s.ready(ctx); err != nil {
		logs := s.logs()
		_ = s.Stop()
		return nil, fmt.Errorf("PostgreSQL container from %s: %w; its last log lines:\n%s", o.Image, err, logs)
	}
	return s, nil
}

// ready finds the published port and waits for the server to answer.
func (s *Server) ready(ctx context.Context) error {
	out, err := docker(ctx, "port", s.ID, "5432/tcp")
	if err != nil {
		return fmt.Errorf("published port: %w", err)
	}
	// One line per published address; the run published one.
	s.Addr = strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	if _, _, err := net.SplitHostPort(s.Addr); err != nil {
		return fmt.Errorf("published port %q: %w", out, err)
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, s.URL())
		if err == nil {
			return conn.Close(ctx)
		}
		if state, _ := docker(ctx, "inspect", "--format", "{{.State.Status}}", s.ID); state != "" && state != "running" {
			return fmt.Errorf("the container is %s", state)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not accepting connections after %s: %w", readyTimeout, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// logs returns the container's last log lines, both streams (the server
// logs to stderr).
func (s *Server) logs() string {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "logs", "--tail", "20", s.ID).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(docker logs: %v)", err)
	}
	return strings.TrimSpace(string(out))
}

// URL is the connection string of the database named in Options.
func (s *Server) URL() string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: s.Addr, Path: "/" + s.db, RawQuery: "sslmode=disable"}
	return u.String()
}

// Stop stops the server (fast shutdown) and removes the container with its
// anonymous data volume.
func (s *Server) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout+5*time.Second)
	defer cancel()
	_, stopErr := docker(ctx, "stop", "--time", fmt.Sprint(int(stopTimeout.Seconds())), s.ID)
	_, rmErr := docker(ctx, "rm", "--force", "--volumes", s.ID)
	if rmErr != nil {
		return errors.Join(stopErr, rmErr)
	}
	return nil
}

// docker runs the docker CLI and returns its trimmed standard output; a
// failure carries the CLI's own message.
func docker(ctx context.Context, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return "", fmt.Errorf("docker %s: %w: %s", args[0], err, msg)
		}
		return "", fmt.Errorf("docker %s: %w", args[0], err)
	}
	return strings.TrimSpace(stdout.String()), nil
}
