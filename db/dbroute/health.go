package dbroute

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Database is one server the router sends statements to.
type Database struct {
	// Name labels the database in logs, metrics and /health/db:
	// "primary", "replica-1", ...
	Name string
	// Addr is host:port/database, without credentials.
	Addr string
	Pool *pgxpool.Pool

	mu    sync.Mutex
	state ReplicaState
}

// ReplicaState is what the last health check found.
type ReplicaState struct {
	// Up: the replica answered the last check.
	Up bool `json:"up"`
	// InRecovery: it is a standby (a promoted or misconfigured server is
	// kept out of rotation: its data may have diverged from the primary's).
	InRecovery bool `json:"in_recovery"`
	// InRotation: reads may go to it.
	InRotation bool `json:"in_rotation"`
	// ReplayLSN is the last position it replayed.
	ReplayLSN LSN `json:"-"`
	// LagBytes is how much WAL the primary wrote that it has not replayed.
	LagBytes int64 `json:"lag_bytes"`
	// LagSeconds is how long ago the primary first passed the replica's
	// replay position: 0 for a caught-up replica, idle or not.
	LagSeconds float64 `json:"lag_seconds"`
	// Error is why the last check failed (no driver text reaches clients:
	// this is shown to admins and logs only).
	Error     string    `json:"error,omitempty"`
	CheckedAt time.Time `json:"checked_at"`
}

// State is the replica's last health check.
func (d *Database) State() ReplicaState {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state
}

func (d *Database) setState(s ReplicaState) (prev ReplicaState) {
	d.mu.Lock()
	defer d.mu.Unlock()
	prev, d.state = d.state, s
	return prev
}

// servable reports whether reads needing floor may go to d.
func (d *Database) servable(floor LSN) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state.InRotation && d.state.ReplayLSN >= floor
}

// markDown takes d out of rotation at once after a read failed on it for a
// connection reason, without waiting for the next check.
func (d *Database) markDown(err error) (changed bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	changed = d.state.InRotation
	d.state.Up, d.state.InRotation = false, false
	d.state.Error = err.Error()
	return changed
}

// walSamples remember when the primary was at which position, which is how
// lag in seconds is measured without trusting the replay timestamp (the
// last replayed commit's time, which grows while an idle primary writes
// nothing and would call an idle, caught-up replica "behind").
type walSamples struct {
	mu   sync.Mutex
	keep time.Duration
	s    []walSample
}

type walSample struct {
	at  time.Time
	lsn LSN
}

func (w *walSamples) add(at time.Time, lsn LSN) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.s = append(w.s, walSample{at, lsn})
	cut := 0
	for cut < len(w.s)-1 && at.Sub(w.s[cut].at) > w.keep {
		cut++
	}
	w.s = w.s[cut:]
}

// lag is how far behind a replica that replayed up to replay is at now:
// bytes behind the newest primary position, and the time since the oldest
// sample the primary had passed it. ok is false before any sample.
func (w *walSamples) lag(replay LSN, now time.Time) (bytes int64, secs float64, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.s) == 0 {
		return 0, 0, false
	}
	newest := w.s[len(w.s)-1]
	if replay >= newest.lsn {
		return 0, 0, true
	}
	bytes = int64(newest.lsn - replay)
	for _, s := range w.s {
		if s.lsn > replay {
			return bytes, now.Sub(s.at).Seconds(), true
		}
	}
	return bytes, 0, true // unreachable: newest.lsn > replay
}

const replicaCheckSQL = `SELECT pg_is_in_recovery(),
	coalesce((pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, 0)`

// checkLoop runs the health checks until ctx ends: each round samples the
// primary's position, then checks every replica at once.
func (r *Router) checkLoop(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.cfg.CheckEvery)
	defer t.Stop()
	for {
		r.checkOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *Router) checkOnce(ctx context.Context) {
	// Generous against a busy machine: a replica that is merely slow to
	// answer a trivial query should not flap out of rotation.
	timeout := max(2*time.Second, 4*r.cfg.CheckEvery)
	pctx, cancel := context.WithTimeout(ctx, timeout)
	var plsn int64
	if err := r.primary.Pool.QueryRow(pctx, primaryLSNSQL).Scan(&plsn); err == nil {
		r.samples.add(time.Now(), LSN(plsn))
	} else if ctx.Err() == nil {
		r.log.Warn("replica health: cannot read the primary's WAL position", "error", err)
	}
	cancel()
	var wg sync.WaitGroup
	for _, d := range r.replicas {
		wg.Go(func() { r.checkReplica(ctx, d, timeout) })
	}
	wg.Wait()
}

func (r *Router) checkReplica(ctx context.Context, d *Database, timeout time.Duration) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var s ReplicaState
	var replay int64
	err := d.Pool.QueryRow(cctx, replicaCheckSQL).Scan(&s.InRecovery, &replay)
	if ctx.Err() != nil {
		return // shutting down: a canceled check says nothing of the replica
	}
	s.CheckedAt = time.Now()
	if err != nil {
		s.Error = checkError(err)
	} else {
		s.Up = true
		s.ReplayLSN = LSN(replay)
		var ok bool
		s.LagBytes, s.LagSeconds, ok = r.samples.lag(s.ReplayLSN, s.CheckedAt)
		switch {
		case !s.InRecovery:
			s.Error = "not a standby (pg_is_in_recovery() is false): kept out of rotation"
		case !ok:
			s.Error = "the primary's WAL position is unknown"
		case s.LagSeconds > r.cfg.MaxLag.Seconds():
			s.Error = fmt.Sprintf("replay lag %.1fs is over the maximum of %s", s.LagSeconds, r.cfg.MaxLag)
		default:
			s.InRotation = true
		}
	}
	prev := d.setState(s)
	r.metrics.lag(d.Name, s)
	if prev.InRotation != s.InRotation {
		r.rotationChanged(d, s.InRotation, s.Error)
	}
}

func checkError(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "the health check timed out"
	}
	return err.Error()
}

func (r *Router) rotationChanged(d *Database, in bool, reason string) {
	r.metrics.rotation(d.Name, in)
	if in {
		r.log.Info("replica back in rotation", "replica", d.Name, "addr", d.Addr)
		return
	}
	r.log.Warn("replica out of rotation", "replica", d.Name, "addr", d.Addr, "reason", reason)
}

// Replicas are the replicas' databases, for reports.
func (r *Router) Replicas() []*Database { return r.replicas }

// Primary is the primary's database.
func (r *Router) Primary() *Database { return r.primary }

// Label is the state in one word, for /health/db (which is public, so it
// carries no error text): in_rotation, lagging, not_standby, down, or
// unchecked before the first check.
func (s ReplicaState) Label() string {
	switch {
	case s.InRotation:
		return "in_rotation"
	case s.CheckedAt.IsZero():
		return "unchecked"
	case !s.Up:
		return "down"
	case !s.InRecovery:
		return "not_standby"
	default:
		return "lagging"
	}
}
