package cache

import (
	"fmt"
	"strconv"
	"time"
)

// Config is the cache's configuration, read once at start.
type Config struct {
	// Namespace prefixes every Redis key and the invalidation channel, so
	// several applications (or test runs) can share one Redis and Clear
	// removes only this one's keys (CACHE_NAMESPACE).
	Namespace string
	// Disabled turns every annotated read into a bypass (CACHE_DISABLED=1).
	Disabled bool
	// ScopesDisabled makes every write invalidate as if it knew none of
	// its rows' scope values (CACHE_SCOPES_DISABLED=1): the table-and-column
	// invalidation of before scopes, kept as the control of what scoping
	// saves (tests, benchmarks).
	ScopesDisabled bool
	// L1MaxBytes bounds the in-process tier by the encoded size of its
	// values (CACHE_L1_MAX_BYTES).
	L1MaxBytes int64
	// L1Disabled keeps nothing in process: every hit is an L2 hit
	// (CACHE_L1_DISABLED=1), for instances short of memory.
	L1Disabled bool
	// RedisURL enables the shared tier (REDIS_URL); empty means L1 only.
	RedisURL string
	// RedisTimeout bounds every Redis dial, read, write and pool wait, so a
	// slow or dead Redis costs a request at most this long before the cache
	// fails open (CACHE_REDIS_TIMEOUT, milliseconds).
	RedisTimeout time.Duration
	// ResyncFloor is how long after a resync with Redis every load reads
	// the primary: bumps missed meanwhile carried write positions this
	// instance never learnt. Set to the replicas' maximum lag when there
	// are replicas (a replica further behind is out of rotation); zero
	// without replicas. Not read from the environment.
	ResyncFloor time.Duration
	// LoadTimeout bounds a database load shared by concurrent callers: it
	// runs detached from the first caller's context so that caller leaving
	// does not fail the others (CACHE_LOAD_TIMEOUT, seconds).
	LoadTimeout time.Duration
}

// Defaults for unset variables.
const (
	DefaultNamespace    = "replyrocket"
	DefaultL1MaxBytes   = 64 << 20
	DefaultRedisTimeout = 100 * time.Millisecond
	DefaultLoadTimeout  = 30 * time.Second
)

// ConfigFromEnv reads the CACHE_* variables and REDIS_URL through getenv
// (os.Getenv in production). A bad value is an error naming the variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{
		Namespace:    DefaultNamespace,
		L1MaxBytes:   DefaultL1MaxBytes,
		RedisURL:     getenv("REDIS_URL"),
		RedisTimeout: DefaultRedisTimeout,
		LoadTimeout:  DefaultLoadTimeout,
	}
	if ns := getenv("CACHE_NAMESPACE"); ns != "" {
		cfg.Namespace = ns
	}
	if v := getenv("CACHE_DISABLED"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("CACHE_DISABLED: %q is not a boolean", v)
		}
		cfg.Disabled = b
	}
	if v := getenv("CACHE_SCOPES_DISABLED"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("CACHE_SCOPES_DISABLED: %q is not a boolean", v)
		}
		cfg.ScopesDisabled = b
	}
	if v := getenv("CACHE_L1_DISABLED"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Config{}, fmt.Errorf("CACHE_L1_DISABLED: %q is not a boolean", v)
		}
		cfg.L1Disabled = b
	}
	if err := parsePositive(getenv, "CACHE_L1_MAX_BYTES", &cfg.L1MaxBytes); err != nil {
		return Config{}, err
	}
	ms := int64(cfg.RedisTimeout / time.Millisecond)
	if err := parsePositive(getenv, "CACHE_REDIS_TIMEOUT", &ms); err != nil {
		return Config{}, err
	}
	cfg.RedisTimeout = time.Duration(ms) * time.Millisecond
	secs := int64(cfg.LoadTimeout / time.Second)
	if err := parsePositive(getenv, "CACHE_LOAD_TIMEOUT", &secs); err != nil {
		return Config{}, err
	}
	cfg.LoadTimeout = time.Duration(secs) * time.Second
	return cfg, nil
}

func parsePositive(getenv func(string) string, name string, dst *int64) error {
	raw := getenv(name)
	if raw == "" {
		return nil
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 1 {
		return fmt.Errorf("%s: %q is not a positive whole number", name, raw)
	}
	*dst = n
	return nil
}
