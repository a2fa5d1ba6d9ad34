package pgtest

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/replyrocket/replyrocket/internal/dockercheck"
)

// Credentials of the container's superuser. The server is bound to loopback
// and thrown away with the test package, so fixed values are fine.
const (
	containerUser     = "replyrocket"
	containerPassword = "replyrocket"
	containerDB       = "postgres"
)

// containerSettings tune the server for throwaway test databases. Durability
// is worthless here and every test clones a database, which is I/O bound.
var containerSettings = []string{
	"-c", "shared_preload_libraries=pg_stat_statements",
	"-c", "pg_stat_statements.track=all",
	"-c", "synchronous_commit=off",
	"-c", "full_page_writes=off",
	"-c", "max_connections=300",
}

// dockerAvailable reports whether a Docker engine answers within seconds.
func dockerAvailable(ctx context.Context) bool { return dockercheck.Available(ctx) }

// startContainer runs PostgreSQL from image with testcontainers and returns an
// admin URL (database "postgres") and a function that removes the container.
func startContainer(ctx context.Context, image string) (url string, stop func(), err error) {
	dockercheck.Configure()
	ctr, err := postgres.Run(ctx, image,
		postgres.WithUsername(containerUser),
		postgres.WithPassword(containerPassword),
		postgres.WithDatabase(containerDB),
		testcontainers.WithCmdArgs(containerSettings...),
		postgres.BasicWaitStrategies(),
		dockercheck.BindLoopback("", "5432/tcp"),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			// Docker's 64 MiB /dev/shm is too small for parallel query
			// workers; the data directory on tmpfs makes CREATE DATABASE
			// ... TEMPLATE (one per test) cheap.
			hc.ShmSize = 256 << 20
			hc.Tmpfs = map[string]string{"/var/lib/postgresql/data": "rw"}
		}),
		testcontainers.WithConfigModifier(func(c *container.Config) {
			// SIGTERM is a "smart" shutdown that waits for the harness's own
			// pools; SIGINT is the fast shutdown the official image declares.
			c.StopSignal = "SIGINT"
		}),
	)
	if err != nil {
		if ctr != nil {
			_ = testcontainers.TerminateContainer(ctr)
		}
		return "", nil, fmt.Errorf("run postgres container: %w", err)
	}
	url, err = ctr.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		_ = testcontainers.TerminateContainer(ctr)
		return "", nil, fmt.Errorf("postgres container connection string: %w", err)
	}
	stop = func() {
		// Tests are over; the data is disposable, so no graceful wait.
		if err := testcontainers.TerminateContainer(ctr, testcontainers.StopTimeout(5*time.Second)); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: terminate postgres container %s: %v\n", ctr.GetContainerID(), err)
		}
	}
	return url, stop, nil
}
