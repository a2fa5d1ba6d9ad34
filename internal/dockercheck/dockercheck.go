// Package dockercheck decides whether tests can reach a Docker engine through
// testcontainers, and prepares testcontainers' environment for the machines
// this project is built on.
package dockercheck

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// pingTimeout bounds the probe so a missing or wedged engine costs a test
// package seconds, not the go test timeout.
const pingTimeout = 3 * time.Second

// Loopback is where published container ports are bound and dialled.
var Loopback = netip.MustParseAddr("127.0.0.1")

// Configure sets the testcontainers environment these machines need, leaving
// values the caller exported untouched. It must run before the first
// testcontainers call of the process because testcontainers reads its
// configuration once.
//
//   - TESTCONTAINERS_RYUK_DISABLED=true: the reaper image cannot be pulled
//     (no registry is reachable), so tests terminate their own containers.
//   - TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1: /.dockerenv exists here, which
//     makes testcontainers dial the default gateway, and traffic there is
//     forbidden.
func Configure() {
	setDefault("TESTCONTAINERS_RYUK_DISABLED", "true")
	setDefault("TESTCONTAINERS_HOST_OVERRIDE", Loopback.String())
}

func setDefault(key, value string) {
	if _, ok := os.LookupEnv(key); ok {
		return
	}
	// Setenv only fails for invalid keys, and these are constants.
	_ = os.Setenv(key, value)
}

// Available reports whether a Docker engine answers a ping within a few
// seconds. It never hangs and never panics when there is no engine.
func Available(ctx context.Context) bool {
	return Ping(ctx) == nil
}

// Ping returns why the Docker engine cannot be used, or nil when it answers.
func Ping(ctx context.Context) (err error) {
	Configure()
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	// testcontainers panics from some host-discovery paths when no engine is
	// installed; that means "no Docker", not a test failure.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("docker host discovery: %v", r)
		}
	}()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("docker client: %w", err)
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("docker ping: %w", err)
	}
	return nil
}

// BindLoopback publishes every exposed port of a container on 127.0.0.1 only,
// so test servers are never reachable from outside the machine. hostPort ""
// lets Docker pick a free port.
func BindLoopback(hostPort string, ports ...string) testcontainers.CustomizeRequestOption {
	return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
		if hc.PortBindings == nil {
			hc.PortBindings = network.PortMap{}
		}
		for _, p := range ports {
			hc.PortBindings[network.MustParsePort(p)] = []network.PortBinding{{HostIP: Loopback, HostPort: hostPort}}
		}
	})
}
