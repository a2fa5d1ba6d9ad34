package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/puzpuzpuz/xsync/v4"
)

type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// series holds each label set's children: looking them up in the vecs
	// hashes the three label values on every request, about a microsecond
	// of a cached request's 30 (the loadtest's CPU profile). The label sets
	// are bounded (methods, route patterns, statuses), so is the map.
	series *xsync.Map[seriesKey, routeSeries]
}

type seriesKey struct {
	method, route string
	status        int
}

type routeSeries struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// Labels are the route pattern, never the raw path: ids in paths would make
// one series per id.
func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replyrocket_http_requests_total",
			Help: "HTTP requests by method, route pattern and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "replyrocket_http_request_duration_seconds",
			Help:    "HTTP request latency by method, route pattern and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route", "status"}),
		series: xsync.NewMap[seriesKey, routeSeries](),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

// knownMethods bounds the method label: a client inventing methods must
// not invent time series.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

func (m *httpMetrics) observe(method, route string, status int, d time.Duration) {
	if !knownMethods[method] {
		method = "OTHER"
	}
	k := seriesKey{method: method, route: route, status: status}
	// Load first: LoadOrCompute's closures would be made on every call.
	rs, ok := m.series.Load(k)
	if !ok {
		rs, _ = m.series.LoadOrCompute(k, func() (routeSeries, bool) {
			s := strconv.Itoa(status)
			return routeSeries{
				requests: m.requests.WithLabelValues(method, route, s),
				latency:  m.latency.WithLabelValues(method, route, s),
			}, false
		})
	}
	rs.requests.Inc()
	rs.latency.Observe(d.Seconds())
}

// poolCollector reads pgxpool.Stat at scrape time, so the figures are
// current and nothing polls in the background.
type poolCollector struct{ pool *pgxpool.Pool }

var (
	poolAcquired     = prometheus.NewDesc("replyrocket_db_pool_acquired_conns", "Connections in use.", nil, nil)
	poolIdle         = prometheus.NewDesc("replyrocket_db_pool_idle_conns", "Idle connections.", nil, nil)
	poolConstructing = prometheus.NewDesc("replyrocket_db_pool_constructing_conns", "Connections being opened.", nil, nil)
	poolTotal        = prometheus.NewDesc("replyrocket_db_pool_total_conns", "Open connections.", nil, nil)
	poolMax          = prometheus.NewDesc("replyrocket_db_pool_max_conns", "Pool size limit.", nil, nil)
	poolAcquires     = prometheus.NewDesc("replyrocket_db_pool_acquires_total", "Successful acquires.", nil, nil)
	poolEmptyWaits   = prometheus.NewDesc("replyrocket_db_pool_empty_acquires_total", "Acquires that had to wait for a connection.", nil, nil)
	poolCanceled     = prometheus.NewDesc("replyrocket_db_pool_canceled_acquires_total", "Acquires canceled before a connection freed up.", nil, nil)
	poolWait         = prometheus.NewDesc("replyrocket_db_pool_acquire_wait_seconds_total", "Time spent waiting for a connection.", nil, nil)
)

func (poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolAcquired, poolIdle, poolConstructing, poolTotal, poolMax, poolAcquires, poolEmptyWaits, poolCanceled, poolWait} {
		ch <- d
	}
}

func (p poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := p.pool.Stat()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(poolAcquired, float64(s.AcquiredConns()))
	gauge(poolIdle, float64(s.IdleConns()))
	gauge(poolConstructing, float64(s.ConstructingConns()))
	gauge(poolTotal, float64(s.TotalConns()))
	gauge(poolMax, float64(s.MaxConns()))
	counter(poolAcquires, float64(s.AcquireCount()))
	counter(poolEmptyWaits, float64(s.EmptyAcquireCount()))
	counter(poolCanceled, float64(s.CanceledAcquireCount()))
	counter(poolWait, s.AcquireDuration().Seconds())
}

func metricsHandler(reg *prometheus.Registry) http.Handler {
	// The router's gzip middleware compresses; promhttp doing it too would
	// compress twice.
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, DisableCompression: true})
}
