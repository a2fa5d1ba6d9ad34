package dbroute

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	reads     *prometheus.CounterVec
	retries   *prometheus.CounterVec
	lagBytes  *prometheus.GaugeVec
	lagSecs   *prometheus.GaugeVec
	inRot     *prometheus.GaugeVec
	rotations *prometheus.CounterVec
	// markerErrors are reads sent to the primary because the user's
	// read-your-writes marker could not be read (Redis down).
	markerErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		reads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replyrocket_db_reads_total",
			Help: "Read-only statements outside transactions, by the database that served them.",
		}, []string{"database"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replyrocket_db_read_retries_total",
			Help: "Reads retried on another database after a replica failed before returning a row, by the failed database.",
		}, []string{"database"}),
		lagBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "replyrocket_db_replica_lag_bytes",
			Help: "WAL the primary wrote that the replica has not replayed.",
		}, []string{"replica"}),
		lagSecs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "replyrocket_db_replica_lag_seconds",
			Help: "How long ago the primary passed the replica's replay position (0 when caught up).",
		}, []string{"replica"}),
		inRot: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "replyrocket_db_replica_in_rotation",
			Help: "1 while reads may go to the replica.",
		}, []string{"replica"}),
		rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replyrocket_db_replica_rotation_changes_total",
			Help: "Replicas entering (direction=in) and leaving (direction=out) rotation.",
		}, []string{"replica", "direction"}),
		markerErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "replyrocket_db_ryw_marker_errors_total",
			Help: "Requests whose read-your-writes marker could not be read (their reads went to the primary).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.reads, m.retries, m.lagBytes, m.lagSecs, m.inRot, m.rotations, m.markerErrors)
	}
	return m
}

func (m *metrics) lag(name string, s ReplicaState) {
	m.lagBytes.WithLabelValues(name).Set(float64(s.LagBytes))
	m.lagSecs.WithLabelValues(name).Set(s.LagSeconds)
	v := 0.0
	if s.InRotation {
		v = 1
	}
	m.inRot.WithLabelValues(name).Set(v)
}

func (m *metrics) rotation(name string, in bool) {
	dir := "out"
	if in {
		dir = "in"
	}
	m.rotations.WithLabelValues(name, dir).Inc()
}
