// Package app wires the server together: configuration from the
// environment, pool, store, cache, monitor and router, and runs it with a
// graceful shutdown.
package app

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/db/dbroute"
	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/monitor"
)

// Config is read once at start and passed down; nothing reads the
// environment after.
type Config struct {
	Env             string // "prod" or "dev"
	Port            int
	AdminKey        string
	RequestTimeout  time.Duration
	ShutdownTimeout time.Duration
	// TrustedProxies are the networks whose X-Forwarded-For is believed.
	// Empty: the peer address is the client.
	TrustedProxies []*net.IPNet
	// PartitionsAhead is how many months of email partitions past the
	// current one are kept ready.
	PartitionsAhead int
	LogLevel        slog.Level
	Pool            db.PoolConfig
	// Replicas are the read replicas (DATABASE_REPLICA_URLS and friends).
	Replicas dbroute.Config
	Monitor  monitor.Config
	Cache    cache.Config
	// HTTP and Limits are the hardening block (config_hardening.go).
	HTTP   HTTPConfig
	Limits Limits

	// Profiling (issue 11). Pprof serves net/http/pprof under /debug/pprof
	// behind the admin key (PPROF_ENABLED, off by default).
	Pprof bool
}

// ConfigFromEnv reads the configuration through getenv (os.Getenv in
// production). An invalid value is an error naming its variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	pool, err := db.PoolConfigFromEnv(getenv)
	if err != nil {
		return Config{}, err
	}
	replicas, err := dbroute.ConfigFromEnv(getenv)
	if err != nil {
		return Config{}, err
	}
	mon, err := monitor.ConfigFromEnv(getenv)
	if err != nil {
		return Config{}, err
	}
	cc, err := cache.ConfigFromEnv(getenv)
	if err != nil {
		return Config{}, err
	}
	c := Config{
		Env: pool.Env, Port: 8080, AdminKey: getenv("ADMIN_API_KEY"),
		RequestTimeout: 10 * time.Second, ShutdownTimeout: 20 * time.Second,
		PartitionsAhead: 3, Pool: pool, Replicas: replicas, Monitor: mon, Cache: cc,
	}
	if err := intVar(getenv, "PORT", 0, 65535, &c.Port); err != nil {
		return Config{}, err
	}
	if err := intVar(getenv, "PARTITIONS_AHEAD", 0, 120, &c.PartitionsAhead); err != nil {
		return Config{}, err
	}
	for name, dst := range map[string]*time.Duration{"REQUEST_TIMEOUT": &c.RequestTimeout, "SHUTDOWN_TIMEOUT": &c.ShutdownTimeout} {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return Config{}, fmt.Errorf("%s: want a positive duration such as 10s, got %q", name, v)
			}
			*dst = d
		}
	}
	if v := getenv("TRUSTED_PROXIES"); v != "" {
		for _, s := range strings.Split(v, ",") {
			_, n, err := net.ParseCIDR(strings.TrimSpace(s))
			if err != nil {
				return Config{}, fmt.Errorf("TRUSTED_PROXIES: %q is not a CIDR such as 10.0.0.0/8", s)
			}
			c.TrustedProxies = append(c.TrustedProxies, n)
		}
	}
	if c.HTTP, c.Limits, err = hardeningFromEnv(getenv, c.RequestTimeout); err != nil {
		return Config{}, err
	}
	if v := getenv("PPROF_ENABLED"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("PPROF_ENABLED: want true or false, got %q", v)
		}
		c.Pprof = b
	}
	if v := getenv("LOG_LEVEL"); v != "" {
		if err := c.LogLevel.UnmarshalText([]byte(v)); err != nil {
			return Config{}, fmt.Errorf("LOG_LEVEL: want debug, info, warn or error, got %q", v)
		}
	}
	return c, nil
}

func intVar(getenv func(string) string, name string, min, max int, dst *int) error {
	v := getenv(name)
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return fmt.Errorf("%s: want a whole number from %d to %d, got %q", name, min, max, v)
	}
	*dst = n
	return nil
}

// IPExtractor believes X-Forwarded-For only from the trusted proxies;
// without any, the TCP peer is the client, since a header anyone can send
// proves nothing.
func (c Config) IPExtractor() echo.IPExtractor {
	if len(c.TrustedProxies) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range c.TrustedProxies {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// Logger logs JSON in production, for log pipelines, and text in
// development, for people.
func (c Config) Logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.Env == "prod" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
