package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"

	"github.com/replyrocket/replyrocket/db/dbroute"
)

// healthTimeout is short on purpose: a load balancer asking is better told
// "no" quickly than left waiting on a stuck database.
const healthTimeout = time.Second

type poolStatsJSON struct {
	AcquiredConns        int32   `json:"acquired_conns"`
	IdleConns            int32   `json:"idle_conns"`
	ConstructingConns    int32   `json:"constructing_conns"`
	TotalConns           int32   `json:"total_conns"`
	MaxConns             int32   `json:"max_conns"`
	AcquireCount         int64   `json:"acquire_count"`
	EmptyAcquireCount    int64   `json:"empty_acquire_count"`
	CanceledAcquireCount int64   `json:"canceled_acquire_count"`
	AcquireDurationMS    float64 `json:"acquire_duration_ms"`
}

type healthJSON struct {
	// Status is ok, degraded (the primary answers but a replica is out of
	// rotation: reads still work) or unavailable (503).
	Status    string        `json:"status" enum:"ok,degraded,unavailable" description:"degraded: the primary answers but a read replica is out of rotation (reads fall back; still 200)"`
	LatencyMS float64       `json:"latency_ms"`
	Error     string        `json:"error,omitempty"`
	Pool      poolStatsJSON `json:"pool" description:"pgxpool statistics of the primary's request pool"`
	// Replicas are present when read replicas are configured.
	Replicas []replicaJSON `json:"replicas,omitempty" description:"present when DATABASE_REPLICA_URLS is set"`
}

type replicaJSON struct {
	Name       string        `json:"name"`
	State      string        `json:"state" enum:"in_rotation,lagging,not_standby,down,unchecked"`
	InRotation bool          `json:"in_rotation"`
	LagBytes   int64         `json:"lag_bytes"`
	LagSeconds float64       `json:"lag_seconds"`
	Pool       poolStatsJSON `json:"pool" description:"pgxpool statistics"`
}

func replicasHealth(r *dbroute.Router) (out []replicaJSON, allIn bool) {
	allIn = true
	if r == nil {
		return nil, true
	}
	for _, d := range r.Replicas() {
		s := d.State()
		allIn = allIn && s.InRotation
		out = append(out, replicaJSON{
			Name: d.Name, State: s.Label(), InRotation: s.InRotation,
			LagBytes: s.LagBytes, LagSeconds: s.LagSeconds, Pool: poolStats(d.Pool),
		})
	}
	return out, allIn
}

func poolStats(p *pgxpool.Pool) poolStatsJSON {
	s := p.Stat()
	return poolStatsJSON{
		AcquiredConns: s.AcquiredConns(), IdleConns: s.IdleConns(), ConstructingConns: s.ConstructingConns(),
		TotalConns: s.TotalConns(), MaxConns: s.MaxConns(), AcquireCount: s.AcquireCount(),
		EmptyAcquireCount: s.EmptyAcquireCount(), CanceledAcquireCount: s.CanceledAcquireCount(),
		AcquireDurationMS: float64(s.AcquireDuration().Microseconds()) / 1000,
	}
}

// healthDB answers 200 when the primary runs a query within healthTimeout
// and 503 with the same shape otherwise, so monitors parse one format. A
// replica out of rotation makes it "degraded", still 200: reads fall back
// to the primary and other replicas.
func healthDB(pool *pgxpool.Pool, router *dbroute.Router) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx, cancel := context.WithTimeout(c.Request().Context(), healthTimeout)
		defer cancel()
		start := time.Now()
		err := pool.Ping(ctx)
		h := healthJSON{Status: "ok", LatencyMS: float64(time.Since(start).Microseconds()) / 1000, Pool: poolStats(pool)}
		var allIn bool
		h.Replicas, allIn = replicasHealth(router)
		if !allIn {
			h.Status = "degraded"
		}
		if err != nil {
			h.Status = "unavailable"
			h.Error = "the database did not answer within 1s"
			c.Response().Header().Set(echo.HeaderRetryAfter, "5")
			return writeJSON(c, http.StatusServiceUnavailable, h)
		}
		return writeJSON(c, http.StatusOK, h)
	}
}
