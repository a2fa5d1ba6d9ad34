package monitor

import (
	"context"
	"fmt"
	"strings"
)

// replicationLagWarn is the replay lag past which a standby is called
// behind: the API's routing takes a replica out of rotation at
// DB_REPLICA_MAX_LAG (10 s by default), so this is the same bar.
const replicationLagWarn = 10.0

// Standby is one walsender's view of a streaming replica: how much WAL it
// has not yet written, flushed and replayed, in bytes, and the lags the
// primary measured, in seconds (NULL while idle: PostgreSQL reports no lag
// when there is nothing to replay).
type Standby struct {
	Name          string   `json:"application_name"`
	ClientAddr    string   `json:"client_addr"`
	State         string   `json:"state"`
	SyncState     string   `json:"sync_state"`
	SentLagBytes  int64    `json:"sent_lag_bytes"`
	WriteLagBytes int64    `json:"write_lag_bytes"`
	FlushLagBytes int64    `json:"flush_lag_bytes"`
	ReplayBytes   int64    `json:"replay_lag_bytes"`
	WriteLag      *float64 `json:"write_lag_seconds"`
	FlushLag      *float64 `json:"flush_lag_seconds"`
	ReplayLag     *float64 `json:"replay_lag_seconds"`
}

func (m *Monitor) checkReplication(ctx context.Context) (Check, error) {
	standbys, err := catalogRows[Standby](ctx, m, `
SELECT coalesce(application_name, ''), coalesce(host(client_addr), 'local'), coalesce(state, ''), coalesce(sync_state, ''),
       coalesce(pg_current_wal_lsn() - sent_lsn, 0)::int8,
       coalesce(pg_current_wal_lsn() - write_lsn, 0)::int8,
       coalesce(pg_current_wal_lsn() - flush_lsn, 0)::int8,
       coalesce(pg_current_wal_lsn() - replay_lsn, 0)::int8,
       extract(epoch FROM write_lag)::float8, extract(epoch FROM flush_lag)::float8, extract(epoch FROM replay_lag)::float8
FROM pg_stat_replication ORDER BY application_name, client_addr`)
	if err != nil {
		return Check{}, classify(err)
	}
	if standbys == nil {
		standbys = []Standby{}
	}
	d := map[string]any{"standbys": standbys, "lag_threshold_seconds": replicationLagWarn}
	if len(standbys) == 0 {
		return ok("no standby streams from this server (read replicas, if any, are elsewhere or down)", d), nil
	}
	var behind []string
	for _, s := range standbys {
		switch {
		case s.State != "streaming":
			behind = append(behind, fmt.Sprintf("%s is %s, not streaming", s.Name, s.State))
		case s.ReplayLag != nil && *s.ReplayLag > replicationLagWarn:
			behind = append(behind, fmt.Sprintf("%s replays %.1fs behind (%d bytes)", s.Name, *s.ReplayLag, s.ReplayBytes))
		}
	}
	if len(behind) > 0 {
		return warn(strings.Join(behind, "; ")+": a replica this far behind is out of the API's read rotation; look at its disk and CPU, and at long queries on it (hot_standby_feedback, max_standby_streaming_delay)", d), nil
	}
	return ok(fmt.Sprintf("%d standbys streaming, none more than %.0fs behind", len(standbys), replicationLagWarn), d), nil
}

// Slot is a replication slot and the WAL it keeps on the primary's disk.
type Slot struct {
	Name        string `json:"slot_name"`
	Type        string `json:"slot_type"`
	Active      bool   `json:"active"`
	RetainBytes int64  `json:"wal_retained_bytes"`
}

func (m *Monitor) checkReplicationSlots(ctx context.Context) (Check, error) {
	slots, err := catalogRows[Slot](ctx, m, `
SELECT slot_name::text, slot_type, active,
       coalesce(pg_current_wal_lsn() - restart_lsn, 0)::int8
FROM pg_replication_slots ORDER BY slot_name`)
	if err != nil {
		return Check{}, classify(err)
	}
	if slots == nil {
		slots = []Slot{}
	}
	var inactive []string
	for _, s := range slots {
		if !s.Active {
			inactive = append(inactive, fmt.Sprintf("%s (%d bytes of WAL retained)", s.Name, s.RetainBytes))
		}
	}
	d := map[string]any{"slots": slots}
	if len(inactive) > 0 {
		return warn("inactive replication slots keep WAL until the disk fills: "+strings.Join(inactive, ", ")+
			"; reconnect their replica or drop them with pg_drop_replication_slot", d), nil
	}
	return ok(fmt.Sprintf("%d replication slots, all active", len(slots)), d), nil
}
