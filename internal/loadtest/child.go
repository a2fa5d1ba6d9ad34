package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/replyrocket/replyrocket/internal/app"
	"github.com/replyrocket/replyrocket/internal/config"
	"github.com/replyrocket/replyrocket/internal/logbuf"
	"github.com/replyrocket/replyrocket/internal/profiles"
)

// Child roles: the benchmark starts its own binary again, with
// ChildArgs(role), for each server it measures.
const (
	RoleApp       = "app"
	RoleReference = "reference"
)

// ChildArgs are the arguments that make the benchmark's binary one of its
// children (see RunChild).
func ChildArgs(role string) []string { return []string{"-role", role} }

// RunChild is the whole of a child process: an app instance configured from
// getenv (logging as a served process does), or the bare reference server.
func RunChild(ctx context.Context, role string, getenv func(string) string, stdout, stderr io.Writer) error {
	switch role {
	case RoleApp:
		cfg, err := config.Load(getenv)
		if err != nil {
			return fmt.Errorf("configuration: %w", err)
		}
		log, closeLog := logbuf.ServerLogger(stderr, cfg.Logger)
		defer closeLog()
		return ServeApp(ctx, cfg, log, stdout)
	case RoleReference:
		return ServeReference(ctx, getenv(EnvReferenceKey), []byte(getenv(EnvReferenceBody)), getenv(EnvReferencePprof) == "true", stdout)
	}
	return fmt.Errorf("unknown loadtest role %q", role)
}

// ServeApp is the child side of an app instance: the server wired exactly
// as `replyrocket serve` wires it, from cfg, listening on a free loopback
// port whose address is the first line written to stdout.
func ServeApp(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) error {
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen on loopback: %w", err)
	}
	fmt.Fprintln(stdout, ln.Addr().String())
	return a.Serve(ctx, ln)
}

// ReferenceHandler is the "bare net/http" limit: it checks one bearer key
// held in memory and writes the given bytes, nothing else. No database, no
// router, no middleware: what the app costs on top of Go's HTTP server.
func ReferenceHandler(key string, body []byte) http.Handler {
	want := "Bearer " + key
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != want {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
}

// ServeReference is the child side of the reference server; like ServeApp
// it prints its address first. With withPprof (under -profile) it also
// serves net/http/pprof under /debug/pprof/, unauthenticated (a loopback
// child of the benchmark), so the reference is profiled beside the app:
// one prefix test per request, nothing else added to its path.
func ServeReference(ctx context.Context, key string, body []byte, withPprof bool, stdout io.Writer) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen on loopback: %w", err)
	}
	h := ReferenceHandler(key, body)
	if withPprof {
		h = withProfiles(h)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintln(stdout, ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// withProfiles serves the runtime profiles under /debug/pprof/ (the API's
// own handler of them, contention sampling included) and everything else
// through h.
func withProfiles(h http.Handler) http.Handler {
	const prefix = "/debug/pprof"
	prof := profiles.Handler(prefix)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, prefix+"/") {
			prof.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
