// Package config is the binary's one configuration: every environment
// variable, its default per APP_ENV, its meaning and its validation, in one
// struct loaded once at start by github.com/caarlos0/env. Each package gets
// its part as its own type (db.PoolConfig, cache.Config, monitor.Config)
// through internal/wire; nothing else reads the environment. This package
// imports none of the packages it configures, so loading the configuration
// builds none of them.
//
// Adding a variable:
//  1. add a field to the section of the package that uses it (or a new
//     section, with a `section` tag naming its table in docs/), with the tags
//     env:"NAME"            the variable
//     envDefault:"…"        its default (in dev, and in prod unless prod says)
//     prod:"…"              the default when APP_ENV=prod, if it differs
//     help:"…"              one line for `replyrocket config` and the docs
//     secret:"true"         `replyrocket config` masks the value
//     Field names are unique across sections: errors are reported by
//     variable, and the library names fields, not variables.
//  2. check its range in validate, naming the variable;
//  3. pass it on in internal/wire's function for its section (Pool, Cache, …);
//  4. run `go test ./internal/config -update` to regenerate the tables in
//     docs/ (a test fails while they are stale; a new section needs its
//     markers in the document of its topic first).
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/jackc/pgx/v5/pgconn"
)

// renamed maps variables that were renamed to their new names. Setting an
// old name is an error that names the new one: a deploy that still sets it
// must not lose the setting silently.
var renamed = map[string]string{
	// Every off switch is spelled …_DISABLED.
	"MONITOR_DISABLE_HYPOPG": "MONITOR_HYPOPG_DISABLED",
}

// Envs are the values of APP_ENV; each picks the defaults of its column.
var Envs = []string{"dev", "prod"}

// Config is every setting of the binary.
type Config struct {
	Env      string `env:"APP_ENV" envDefault:"dev" help:"dev or prod: picks the defaults of its column; prod logs JSON, dev logs text" section:"server"`
	Server   Server
	HTTP     HTTP
	Limits   Limits
	DB       DB
	Replicas Replicas
	Cache    Cache
	Monitor  Monitor
	Events   Events
}

// Server is the HTTP server's part (internal/app, handlers).
type Server struct {
	Port            int           `env:"PORT" envDefault:"8080" help:"listen port (0 = any free port)" section:"server"`
	AdminKey        string        `env:"ADMIN_API_KEY" secret:"true" help:"enables the admin routes and /db-monitor (dev mints one into ./.data/admin-key when unset)" section:"server"`
	RequestTimeout  time.Duration `env:"REQUEST_TIMEOUT" envDefault:"10s" help:"per-request deadline; it reaches the database query" section:"server"`
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s" help:"how long in-flight requests may finish after SIGINT/SIGTERM" section:"server"`
	TrustedProxies  Networks      `env:"TRUSTED_PROXIES" help:"comma-separated CIDRs whose X-Forwarded-For is trusted; unset = the TCP peer is the client" section:"server"`
	PartitionsAhead int           `env:"PARTITIONS_AHEAD" envDefault:"3" help:"months of email partitions kept ready past this one (checked at start and every 6 h), 0–120" section:"server"`
	LogLevel        slog.Level    `env:"LOG_LEVEL" envDefault:"info" help:"debug, info, warn or error" section:"server"`
	Pprof           bool          `env:"PPROF_ENABLED" envDefault:"false" help:"serves net/http/pprof under /debug/pprof, behind the admin key" section:"server"`
	DevImage        string        `env:"DEV_PG_IMAGE" envDefault:"postgres:16-alpine" help:"dev only: the PostgreSQL image run through the docker CLI when there are no local PostgreSQL binaries" section:"server"`
}

// HTTP bounds what one connection may cost the server (internal/app's
// http.Server and the body limit): header size, how long each phase of a
// request may take, and how much of a rejected body is read so the client
// can read the 413.
type HTTP struct {
	MaxHeaderBytes    int           `env:"HTTP_MAX_HEADER_BYTES" envDefault:"65536" help:"request line + headers; past it net/http answers 431 before any handler (4096–16777216)" section:"hardening"`
	ReadHeaderTimeout time.Duration `env:"HTTP_READ_HEADER_TIMEOUT" envDefault:"10s" help:"time to read the headers: a slowloris client is cut off after it" section:"hardening"`
	ReadTimeout       time.Duration `env:"HTTP_READ_TIMEOUT" envDefault:"1m" help:"time to read the whole request, body included" section:"hardening"`
	WriteTimeout      time.Duration `env:"HTTP_WRITE_TIMEOUT" envDefault:"90s" help:"time for everything after the headers (body, handler, response); must exceed REQUEST_TIMEOUT so a slow request can still say 504. A deadline may land up to 1/64 of it late, never early, so that a connection's requests share one timer (decision 0017)" section:"hardening"`
	IdleTimeout       time.Duration `env:"HTTP_IDLE_TIMEOUT" envDefault:"2m" help:"a kept-alive connection idle this long is closed" section:"hardening"`
	BodyDrainBytes    int64         `env:"HTTP_BODY_DRAIN_BYTES" envDefault:"33554432" help:"bytes of an over-limit body read and dropped before the 413, so the client reads it rather than a reset; larger bodies close the connection (0–1073741824, 0 = drain nothing)" section:"hardening"`
}

// Limits are the per-key and per-address limits and the idempotency store
// (handlers, internal/ratelimit).
type Limits struct {
	RatePerMinute         int           `env:"RATE_LIMIT_PER_MINUTE" envDefault:"600" help:"a key's default budget in cost units per minute (a key's own rate_limit_per_minute overrides it), 1–1000000" section:"hardening"`
	RateBurst             int           `env:"RATE_LIMIT_BURST" envDefault:"100" help:"how many cost units a key may spend at once, 1–1000000" section:"hardening"`
	AdminRatePerMinute    int           `env:"ADMIN_RATE_LIMIT_PER_MINUTE" envDefault:"120" help:"the admin routes' own budget per minute (also their burst), 1–1000000" section:"hardening"`
	RateLimitDisabled     bool          `env:"RATE_LIMIT_DISABLED" envDefault:"false" help:"no rate limits at all" section:"hardening"`
	AuthFailuresPerMinute int           `env:"AUTH_FAIL_LIMIT_PER_MINUTE" envDefault:"30" help:"failed authentications per client address per minute before 429 (also the burst), 1–1000000" section:"hardening"`
	UnknownKeyTTL         time.Duration `env:"AUTH_UNKNOWN_KEY_TTL" envDefault:"30s" help:"how long an unknown key's hash is remembered, so a repeat does not reach the database" section:"hardening"`
	IdempotencyTTL        time.Duration `env:"IDEMPOTENCY_TTL" envDefault:"24h" help:"how long a stored Idempotency-Key response answers retries (purged hourly)" section:"hardening"`
}

// DB is the connection pool's part (db.PoolConfig).
type DB struct {
	URL         string  `env:"DATABASE_URL" secret:"password" help:"the connection string; required by serve, dev starts an embedded PostgreSQL when unset" section:"pool"`
	PoolSize    int     `env:"DB_POOL_SIZE" envDefault:"2" prod:"5" help:"pgxpool MinConns: connections kept open even when idle" section:"pool"`
	MaxOverflow int     `env:"DB_MAX_OVERFLOW" envDefault:"5" prod:"10" help:"MaxConns = DB_POOL_SIZE + DB_MAX_OVERFLOW; connections above the size close after one idle minute" section:"pool"`
	PoolTimeout Seconds `env:"DB_POOL_TIMEOUT" envDefault:"30" help:"seconds a statement waits for a free connection before a pool exhausted error (HTTP 503)" section:"pool"`
	PoolRecycle Seconds `env:"DB_POOL_RECYCLE" envDefault:"1800" help:"seconds: pgxpool MaxConnLifetime, a connection is replaced after that long (with jitter)" section:"pool"`
	// The background pool keeps slow admin or bulk work (the monitor,
	// partition maintenance, seeding) off the connections requests need.
	BackgroundPoolSize    int     `env:"DB_BACKGROUND_POOL_SIZE" envDefault:"2" prod:"3" help:"most connections of the background pool, a second pool on the primary for long-running work (the monitor, the scheduled jobs, the dev seed); none kept open when idle, at least 1" section:"pool"`
	BackgroundPoolTimeout Seconds `env:"DB_BACKGROUND_POOL_TIMEOUT" envDefault:"120" help:"seconds background work waits for a free background connection" section:"pool"`
	PgBouncer             bool    `env:"DB_PGBOUNCER" envDefault:"false" help:"the URLs point at PgBouncer in transaction pooling mode: statements run unprepared (pgx QueryExecModeExec)" section:"pool"`
}

// Replicas are the read replicas' part (dbroute.Config).
type Replicas struct {
	ReplicaURLs     URLList       `env:"DATABASE_REPLICA_URLS" secret:"passwords" help:"comma-separated connection strings of streaming read replicas; unset = everything uses DATABASE_URL" section:"replicas"`
	ReplicaPoolSize int           `env:"DB_REPLICA_POOL_SIZE" envDefault:"0" help:"MinConns of each replica's pool (its MaxConns adds DB_MAX_OVERFLOW); 0 = DB_POOL_SIZE" section:"replicas"`
	ReplicaMaxLag   time.Duration `env:"DB_REPLICA_MAX_LAG" envDefault:"10s" help:"a replica further behind the primary leaves rotation; also how long after a cache resync loads read the primary" section:"replicas"`
}

// Cache is the query cache's part (cache.Config).
type Cache struct {
	RedisURL       string       `env:"REDIS_URL" secret:"password" help:"enables the Redis tier (L2); unset = in-process only" section:"cache"`
	Namespace      string       `env:"CACHE_NAMESPACE" envDefault:"replyrocket" help:"prefix of every Redis key and channel" section:"cache"`
	L1MaxBytes     int64        `env:"CACHE_L1_MAX_BYTES" envDefault:"67108864" help:"in-process tier bound, in encoded bytes" section:"cache"`
	L1Disabled     bool         `env:"CACHE_L1_DISABLED" envDefault:"false" help:"no in-process tier" section:"cache"`
	CacheDisabled  bool         `env:"CACHE_DISABLED" envDefault:"false" help:"every data read bypasses the cache; API-key lookups stay cached (with L1 or Redis), revocations still refuse at once" section:"cache"`
	RedisTimeout   Milliseconds `env:"CACHE_REDIS_TIMEOUT" envDefault:"100" help:"milliseconds, per Redis dial/read/write/pool wait" section:"cache"`
	LoadTimeout    Seconds      `env:"CACHE_LOAD_TIMEOUT" envDefault:"30" help:"seconds, per shared database load" section:"cache"`
	ScopesDisabled bool         `env:"CACHE_SCOPES_DISABLED" envDefault:"false" help:"every write invalidates as if it knew none of its rows' scope values (table-and-column invalidation): the control of what scoping saves" section:"cache"`
}

// Monitor is the database monitor's part (monitor.Config).
type Monitor struct {
	AllowAnalyze      bool          `env:"MONITOR_ALLOW_ANALYZE" envDefault:"false" help:"allow EXPLAIN ANALYZE (run in a READ ONLY transaction that is rolled back)" section:"monitor"`
	ExplainTimeout    time.Duration `env:"MONITOR_EXPLAIN_TIMEOUT" envDefault:"5s" help:"statement_timeout for analyze-query and optimize-query" section:"monitor"`
	CatalogTimeout    time.Duration `env:"MONITOR_CATALOG_TIMEOUT" envDefault:"2s" help:"statement_timeout per catalog query" section:"monitor"`
	LockTimeout       time.Duration `env:"MONITOR_LOCK_TIMEOUT" envDefault:"1s" help:"lock_timeout for every monitor statement" section:"monitor"`
	LongQuery         time.Duration `env:"MONITOR_LONG_QUERY" envDefault:"1m" help:"a running query older than this is flagged" section:"monitor"`
	IdleInTransaction time.Duration `env:"MONITOR_IDLE_IN_TRANSACTION" envDefault:"1m" help:"an idle-in-transaction session older than this is flagged" section:"monitor"`
	SlowMean          time.Duration `env:"MONITOR_SLOW_MEAN" envDefault:"20ms" help:"a slow statement has a mean time of at least this…" section:"monitor"`
	SlowCalls         int64         `env:"MONITOR_SLOW_CALLS" envDefault:"100" help:"…over at least this many calls" section:"monitor"`
	SnapshotInterval  time.Duration `env:"MONITOR_SNAPSHOT_INTERVAL" envDefault:"1m" help:"how often statement counters are snapshotted, for time windows" section:"monitor"`
	Retention         time.Duration `env:"MONITOR_RETENTION" envDefault:"1h" help:"how long snapshots are kept (the longest window)" section:"monitor"`
	HypoPGDisabled    bool          `env:"MONITOR_HYPOPG_DISABLED" envDefault:"false" help:"force the unverified pg_stats heuristic for index advice" section:"monitor"`
}

// Events is the event ingest's part (internal/ingest): how tracking events
// are grouped into one transaction per batch, and how long their ids are
// remembered against retries. docs/writes.md tells how to tune them.
type Events struct {
	BatchMax      int           `env:"EVENT_BATCH_MAX" envDefault:"500" help:"a batch of events closes once it holds this many, 1–10000" section:"server"`
	BatchWait     time.Duration `env:"EVENT_BATCH_WAIT" envDefault:"2ms" help:"…or this long after its first event (up to 1s); it keeps filling while EVENT_BATCH_IN_FLIGHT batches run" section:"server"`
	BatchInFlight int           `env:"EVENT_BATCH_IN_FLIGHT" envDefault:"2" help:"batches applied at once, each on a connection of the request pool, 1–64" section:"server"`
	DedupTTL      time.Duration `env:"EVENT_DEDUP_TTL" envDefault:"168h" help:"how long an event id is remembered, so that a retry is a no-op (purged hourly)" section:"server"`
}

// Logger logs JSON in production, for log pipelines, and text in
// development, for people.
func (c Config) Logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Server.LogLevel}
	if c.Env == "prod" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Load reads the configuration through getenv (os.Getenv in production).
// An unset variable takes its APP_ENV default; a bad value is an error that
// names the variable.
func Load(getenv func(string) string) (Config, error) {
	appEnv := getenv("APP_ENV")
	if appEnv == "" {
		appEnv = "dev"
	}
	if !validEnv(appEnv) {
		return Config{}, fmt.Errorf("APP_ENV: %q is neither prod nor dev", appEnv)
	}
	for old, now := range renamed {
		if getenv(old) != "" {
			return Config{}, fmt.Errorf("%s was renamed %s: set that instead", old, now)
		}
	}
	vars := Variables()
	// The library sees only the declared variables, each either as set or
	// as its default for this APP_ENV: per-environment defaults are not
	// something envDefault can say.
	environ := make(map[string]string, len(vars))
	byField := make(map[string]Variable, len(vars))
	for _, v := range vars {
		byField[v.Field] = v
		if s := getenv(v.Name); s != "" {
			environ[v.Name] = s
		} else if d := v.Default(appEnv); d != "" {
			environ[v.Name] = d
		}
	}
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Environment: environ}); err != nil {
		return Config{}, nameVariables(err, byField, environ)
	}
	if err := c.validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func validEnv(s string) bool {
	for _, e := range Envs {
		if s == e {
			return true
		}
	}
	return false
}

// nameVariables turns the library's errors, which name struct fields, into
// errors that name the variable and its value.
func nameVariables(err error, byField map[string]Variable, environ map[string]string) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	var out []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if v, ok := byField[pe.Name]; ok {
				shown := strconv.Quote(environ[v.Name])
				if v.Secret != "" {
					// A secret's value is never repeated in an error.
					shown = Mask(v, environ[v.Name])
				}
				out = append(out, fmt.Errorf("%s: %s: %w", v.Name, shown, unwrapAll(pe.Err)))
				continue
			}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// unwrapAll drops strconv's "parsing …: " wrapping, which repeats the value.
func unwrapAll(err error) error {
	var ne *strconv.NumError
	if errors.As(err, &ne) {
		return errors.New("not a whole number in range")
	}
	return err
}

func (c Config) validate() error {
	var errs []error
	check := func(ok bool, name, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
		}
	}
	s := c.Server
	check(s.Port >= 0 && s.Port <= 65535, "PORT", "want 0 to 65535, got %d", s.Port)
	check(s.RequestTimeout > 0, "REQUEST_TIMEOUT", "want a positive duration such as 10s, got %s", s.RequestTimeout)
	check(s.ShutdownTimeout > 0, "SHUTDOWN_TIMEOUT", "want a positive duration such as 20s, got %s", s.ShutdownTimeout)
	check(s.PartitionsAhead >= 0 && s.PartitionsAhead <= 120, "PARTITIONS_AHEAD", "want 0 to 120, got %d", s.PartitionsAhead)

	h := c.HTTP
	check(h.MaxHeaderBytes >= 4<<10 && h.MaxHeaderBytes <= 16<<20, "HTTP_MAX_HEADER_BYTES", "want 4096 to 16777216, got %d", h.MaxHeaderBytes)
	check(h.BodyDrainBytes >= 0 && h.BodyDrainBytes <= 1<<30, "HTTP_BODY_DRAIN_BYTES", "want 0 to 1073741824, got %d", h.BodyDrainBytes)
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"HTTP_READ_HEADER_TIMEOUT", h.ReadHeaderTimeout}, {"HTTP_READ_TIMEOUT", h.ReadTimeout},
		{"HTTP_WRITE_TIMEOUT", h.WriteTimeout}, {"HTTP_IDLE_TIMEOUT", h.IdleTimeout},
		{"AUTH_UNKNOWN_KEY_TTL", c.Limits.UnknownKeyTTL}, {"IDEMPOTENCY_TTL", c.Limits.IdempotencyTTL},
	} {
		check(d.v > 0, d.name, "want a positive duration such as 10s, got %s", d.v)
	}
	if h.WriteTimeout > 0 && s.RequestTimeout > 0 {
		check(h.WriteTimeout > s.RequestTimeout, "HTTP_WRITE_TIMEOUT", "%s must exceed REQUEST_TIMEOUT (%s), or slow requests are cut before their 504", h.WriteTimeout, s.RequestTimeout)
	}
	l := c.Limits
	for _, v := range []struct {
		name string
		n    int
	}{
		{"RATE_LIMIT_PER_MINUTE", l.RatePerMinute}, {"RATE_LIMIT_BURST", l.RateBurst},
		{"ADMIN_RATE_LIMIT_PER_MINUTE", l.AdminRatePerMinute}, {"AUTH_FAIL_LIMIT_PER_MINUTE", l.AuthFailuresPerMinute},
	} {
		check(v.n >= 1 && v.n <= 1_000_000, v.name, "want 1 to 1000000, got %d", v.n)
	}

	d := c.DB
	check(d.PoolSize >= 0, "DB_POOL_SIZE", "%d is below the minimum of 0", d.PoolSize)
	check(d.MaxOverflow >= 0, "DB_MAX_OVERFLOW", "%d is below the minimum of 0", d.MaxOverflow)
	check(d.PoolSize+d.MaxOverflow >= 1, "DB_POOL_SIZE + DB_MAX_OVERFLOW", "must allow at least one connection, got %d + %d", d.PoolSize, d.MaxOverflow)
	check(d.BackgroundPoolSize >= 1, "DB_BACKGROUND_POOL_SIZE", "%d is below the minimum of 1", d.BackgroundPoolSize)

	r := c.Replicas
	check(r.ReplicaPoolSize >= 0, "DB_REPLICA_POOL_SIZE", "%d is below the minimum of 0", r.ReplicaPoolSize)
	check(r.ReplicaMaxLag > 0, "DB_REPLICA_MAX_LAG", "want a positive duration such as 10s, got %s", r.ReplicaMaxLag)

	k := c.Cache
	check(k.Namespace != "", "CACHE_NAMESPACE", "must not be empty")
	check(k.L1MaxBytes >= 1, "CACHE_L1_MAX_BYTES", "want a positive whole number, got %d", k.L1MaxBytes)

	m := c.Monitor
	for name, v := range map[string]time.Duration{
		"MONITOR_EXPLAIN_TIMEOUT": m.ExplainTimeout, "MONITOR_CATALOG_TIMEOUT": m.CatalogTimeout,
		"MONITOR_LOCK_TIMEOUT": m.LockTimeout, "MONITOR_LONG_QUERY": m.LongQuery,
		"MONITOR_IDLE_IN_TRANSACTION": m.IdleInTransaction, "MONITOR_SLOW_MEAN": m.SlowMean,
		"MONITOR_SNAPSHOT_INTERVAL": m.SnapshotInterval, "MONITOR_RETENTION": m.Retention,
	} {
		check(v > 0, name, "want a positive duration such as 5s, got %s", v)
	}
	check(m.SlowCalls >= 1, "MONITOR_SLOW_CALLS", "want a positive whole number, got %d", m.SlowCalls)

	e := c.Events
	check(e.BatchMax >= 1 && e.BatchMax <= 10_000, "EVENT_BATCH_MAX", "want 1 to 10000, got %d", e.BatchMax)
	check(e.BatchWait > 0 && e.BatchWait <= time.Second, "EVENT_BATCH_WAIT", "want a duration above 0 and up to 1s such as 2ms, got %s", e.BatchWait)
	check(e.BatchInFlight >= 1 && e.BatchInFlight <= 64, "EVENT_BATCH_IN_FLIGHT", "want 1 to 64, got %d", e.BatchInFlight)
	check(e.DedupTTL > 0, "EVENT_DEDUP_TTL", "want a positive duration such as 168h, got %s", e.DedupTTL)
	return errors.Join(errs...)
}

// Seconds is a duration written as a whole number of seconds, at least 1.
type Seconds time.Duration

// UnmarshalText implements encoding.TextUnmarshaler for the library.
func (s *Seconds) UnmarshalText(b []byte) error {
	n, err := positiveInt(string(b))
	*s = Seconds(time.Duration(n) * time.Second)
	return err
}

// Milliseconds is a duration written as a whole number of milliseconds, at
// least 1.
type Milliseconds time.Duration

// UnmarshalText implements encoding.TextUnmarshaler for the library.
func (m *Milliseconds) UnmarshalText(b []byte) error {
	n, err := positiveInt(string(b))
	*m = Milliseconds(time.Duration(n) * time.Millisecond)
	return err
}

func positiveInt(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, errors.New("not a positive whole number")
	}
	return n, nil
}

// URLList is a comma-separated list of PostgreSQL connection strings.
type URLList []string

// UnmarshalText implements encoding.TextUnmarshaler for the library. An
// error says which entry, never its text: it may hold a password.
func (l *URLList) UnmarshalText(b []byte) error {
	*l = nil
	if strings.TrimSpace(string(b)) == "" {
		return nil
	}
	for i, u := range strings.Split(string(b), ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			return fmt.Errorf("entry %d is empty", i+1)
		}
		if _, err := pgconn.ParseConfig(u); err != nil {
			return fmt.Errorf("entry %d is not a PostgreSQL connection string", i+1)
		}
		*l = append(*l, u)
	}
	return nil
}

// Networks is a comma-separated list of CIDRs.
type Networks []*net.IPNet

// UnmarshalText implements encoding.TextUnmarshaler for the library.
func (n *Networks) UnmarshalText(b []byte) error {
	*n = nil
	for _, s := range strings.Split(string(b), ",") {
		_, ipn, err := net.ParseCIDR(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", strings.TrimSpace(s))
		}
		*n = append(*n, ipn)
	}
	return nil
}

// Variable describes one environment variable, from the struct's tags.
type Variable struct {
	Name, Field, Section, Help string
	DevDefault, ProdDefault    string
	// Secret is "true" (mask the whole value), "password" (a URL: mask
	// its password) or "passwords" (comma-separated URLs: mask each one's).
	Secret string
}

// Default is the variable's default under appEnv.
func (v Variable) Default(appEnv string) string {
	if appEnv == "prod" && v.ProdDefault != "" {
		return v.ProdDefault
	}
	return v.DevDefault
}

// Variables lists every variable in declaration order.
func Variables() []Variable {
	var out []Variable
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			name := f.Tag.Get("env")
			if name == "" {
				if f.Type.Kind() == reflect.Struct {
					walk(f.Type)
				}
				continue
			}
			out = append(out, Variable{
				Name: name, Field: f.Name, Section: f.Tag.Get("section"), Help: f.Tag.Get("help"),
				DevDefault: f.Tag.Get("envDefault"), ProdDefault: f.Tag.Get("prod"), Secret: f.Tag.Get("secret"),
			})
		}
	}
	walk(reflect.TypeFor[Config]())
	return out
}
