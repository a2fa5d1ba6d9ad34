package cache

import (
	"time"
)

// Config is the cache's configuration, read once at start by
// internal/config, which declares the variables named below.
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

// Defaults for zero fields (internal/config declares the variables).
const (
	DefaultNamespace    = "replyrocket"
	DefaultL1MaxBytes   = 64 << 20
	DefaultRedisTimeout = 100 * time.Millisecond
	DefaultLoadTimeout  = 30 * time.Second
)
