package redistest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"

	"github.com/replyrocket/replyrocket/internal/dockercheck"
)

const redisPort = "6379/tcp"

// container is a testcontainers Redis. Its host port is chosen up front and
// bound explicitly because Docker gives a stopped-then-started container a
// new random port otherwise, and Restart must keep the address clients use.
type container struct {
	ctr  *tcredis.RedisContainer
	host string
}

func dockerAvailable(ctx context.Context) bool { return dockercheck.Available(ctx) }

func startContainer(ctx context.Context, image string) (*container, error) {
	var err error
	for range 3 {
		var port int
		if port, err = freePort(); err != nil {
			return nil, err
		}
		var c *container
		if c, err = runContainer(ctx, image, port); err == nil {
			return c, nil
		}
		// Retry only when the port was taken between picking and binding it;
		// any other failure (no image, engine error) would just repeat.
		if portFree(port) {
			return nil, err
		}
	}
	return nil, err
}

func runContainer(ctx context.Context, image string, port int) (*container, error) {
	ctr, err := tcredis.Run(ctx, image,
		dockercheck.BindLoopback(strconv.Itoa(port), redisPort),
		// Same behaviour as the local backend: no persistence, so a restart
		// comes back empty instead of reloading a dump.
		testcontainers.WithCmdArgs("--save", "", "--appendonly", "no"),
	)
	if err != nil {
		if ctr != nil {
			_ = testcontainers.TerminateContainer(ctr)
		}
		return nil, fmt.Errorf("run redis container %s: %w", image, err)
	}
	return &container{ctr: ctr, host: net.JoinHostPort(dockercheck.Loopback.String(), strconv.Itoa(port))}, nil
}

func portFree(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

func (c *container) name() string { return "redis container" }
func (c *container) addr() string { return c.host }

func (c *container) stop(ctx context.Context) error {
	timeout := 10 * time.Second
	if err := c.ctr.Stop(ctx, &timeout); err != nil {
		return fmt.Errorf("stop redis container: %w", err)
	}
	return nil
}

func (c *container) start(ctx context.Context) error {
	if err := c.ctr.Start(ctx); err != nil {
		return fmt.Errorf("start redis container: %w", err)
	}
	return nil
}

func (c *container) close(context.Context) error {
	if err := testcontainers.TerminateContainer(c.ctr); err != nil {
		return fmt.Errorf("terminate redis container: %w", err)
	}
	return nil
}
