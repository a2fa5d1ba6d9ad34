package app

import (
	"fmt"
	"strconv"
	"time"
)

// HTTPConfig bounds what one connection may cost the server: header size,
// how long each phase of a request may take, and how much of a rejected
// body is read so the client can read the 413.
//
// The variables of issue 10 (hardening) are read here, apart from the rest,
// so that they port as one block into a single configuration struct.
type HTTPConfig struct {
	// MaxHeaderBytes (HTTP_MAX_HEADER_BYTES) bounds the request line and
	// headers; past it net/http answers 431 itself.
	MaxHeaderBytes int
	// ReadHeaderTimeout (HTTP_READ_HEADER_TIMEOUT) bounds reading the
	// headers: a slowloris client is cut off after it.
	ReadHeaderTimeout time.Duration
	// ReadTimeout (HTTP_READ_TIMEOUT) bounds reading the whole request,
	// body included (a 16 MiB bulk import over a slow link needs time).
	ReadTimeout time.Duration
	// WriteTimeout (HTTP_WRITE_TIMEOUT) bounds everything after the headers
	// were read: body, handler and response. It must exceed
	// REQUEST_TIMEOUT, or a slow request would be cut before it can say 504.
	WriteTimeout time.Duration
	// IdleTimeout (HTTP_IDLE_TIMEOUT) closes kept-alive connections that
	// stay idle that long.
	IdleTimeout time.Duration
	// BodyDrainBytes (HTTP_BODY_DRAIN_BYTES) is how much of a body over the
	// limit is read and thrown away before the 413 is sent, so a client that
	// writes its whole body before reading gets the 413 rather than a
	// connection reset. Larger bodies are not drained: the connection is
	// closed.
	BodyDrainBytes int64
}

// Limits are the per-key and per-address limits and the idempotency store.
type Limits struct {
	// RatePerMinute (RATE_LIMIT_PER_MINUTE) is a key's default budget in
	// cost units per minute; RateBurst (RATE_LIMIT_BURST) how many may be
	// spent at once. A key's own rate_limit_per_minute overrides the rate.
	RatePerMinute int
	RateBurst     int
	// AdminRatePerMinute (ADMIN_RATE_LIMIT_PER_MINUTE) is the shared budget
	// of the admin routes.
	AdminRatePerMinute int
	// RateLimitDisabled (RATE_LIMIT_DISABLED) turns every limit off.
	RateLimitDisabled bool
	// AuthFailuresPerMinute (AUTH_FAIL_LIMIT_PER_MINUTE) is how many failed
	// authentications one client address may make per minute before 429.
	AuthFailuresPerMinute int
	// UnknownKeyTTL (AUTH_UNKNOWN_KEY_TTL) is how long an unknown key's hash
	// is remembered, so a repeat does not reach the database.
	UnknownKeyTTL time.Duration
	// IdempotencyTTL (IDEMPOTENCY_TTL) is how long a stored response
	// answers retries with the same Idempotency-Key.
	IdempotencyTTL time.Duration
}

func defaultHTTPConfig() HTTPConfig {
	return HTTPConfig{
		MaxHeaderBytes:    64 << 10,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BodyDrainBytes:    32 << 20,
	}
}

func defaultLimits() Limits {
	return Limits{
		RatePerMinute:         600,
		RateBurst:             100,
		AdminRatePerMinute:    120,
		AuthFailuresPerMinute: 30,
		UnknownKeyTTL:         30 * time.Second,
		IdempotencyTTL:        24 * time.Hour,
	}
}

// hardeningFromEnv reads the HTTP_*, RATE_LIMIT_*, AUTH_* and
// IDEMPOTENCY_* variables. requestTimeout is REQUEST_TIMEOUT, which the
// write timeout must exceed.
func hardeningFromEnv(getenv func(string) string, requestTimeout time.Duration) (HTTPConfig, Limits, error) {
	h, l := defaultHTTPConfig(), defaultLimits()
	if err := intVar(getenv, "HTTP_MAX_HEADER_BYTES", 4<<10, 16<<20, &h.MaxHeaderBytes); err != nil {
		return h, l, err
	}
	drain := int(h.BodyDrainBytes)
	if err := intVar(getenv, "HTTP_BODY_DRAIN_BYTES", 0, 1<<30, &drain); err != nil {
		return h, l, err
	}
	h.BodyDrainBytes = int64(drain)
	durations := []struct {
		name string
		dst  *time.Duration
	}{
		{"HTTP_READ_HEADER_TIMEOUT", &h.ReadHeaderTimeout},
		{"HTTP_READ_TIMEOUT", &h.ReadTimeout},
		{"HTTP_WRITE_TIMEOUT", &h.WriteTimeout},
		{"HTTP_IDLE_TIMEOUT", &h.IdleTimeout},
		{"AUTH_UNKNOWN_KEY_TTL", &l.UnknownKeyTTL},
		{"IDEMPOTENCY_TTL", &l.IdempotencyTTL},
	}
	for _, d := range durations {
		if err := durationVar(getenv, d.name, d.dst); err != nil {
			return h, l, err
		}
	}
	if h.WriteTimeout <= requestTimeout {
		return h, l, fmt.Errorf("HTTP_WRITE_TIMEOUT: %s must exceed REQUEST_TIMEOUT (%s), or slow requests are cut before their 504", h.WriteTimeout, requestTimeout)
	}
	ints := []struct {
		name     string
		min, max int
		dst      *int
	}{
		{"RATE_LIMIT_PER_MINUTE", 1, 1_000_000, &l.RatePerMinute},
		{"RATE_LIMIT_BURST", 1, 1_000_000, &l.RateBurst},
		{"ADMIN_RATE_LIMIT_PER_MINUTE", 1, 1_000_000, &l.AdminRatePerMinute},
		{"AUTH_FAIL_LIMIT_PER_MINUTE", 1, 1_000_000, &l.AuthFailuresPerMinute},
	}
	for _, v := range ints {
		if err := intVar(getenv, v.name, v.min, v.max, v.dst); err != nil {
			return h, l, err
		}
	}
	if v := getenv("RATE_LIMIT_DISABLED"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return h, l, fmt.Errorf("RATE_LIMIT_DISABLED: want true or false, got %q", v)
		}
		l.RateLimitDisabled = b
	}
	return h, l, nil
}

func durationVar(getenv func(string) string, name string, dst *time.Duration) error {
	v := getenv(name)
	if v == "" {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return fmt.Errorf("%s: want a positive duration such as 10s, got %q", name, v)
	}
	*dst = d
	return nil
}
