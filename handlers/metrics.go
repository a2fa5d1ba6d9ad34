package handlers

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/puzpuzpuz/xsync/v4"
)

type httpMetrics struct {
	latency *prometheus.HistogramVec
	// series holds each label set's observer: looking it up in the vec
	// hashes the three label values on every request, about a microsecond
	// of a cached request's 30 (the loadtest's CPU profile). The label sets
	// are bounded (methods, route patterns, statuses), so is the map.
	series *xsync.Map[seriesKey, prometheus.Observer]
}

// seriesKey is a label set, its method as an index into methods: a lookup
// hashes one string, the route pattern.
type seriesKey struct {
	route          string
	method, status int
}

// Labels are the route pattern, never the raw path: ids in paths would make
// one series per id.
//
// replyrocket_http_requests_total is the histogram's count of each series,
// exposed as a counter at scrape time (requestCounts): a counter of its
// own was a second shared atomic per request, 0.2 µs of a cached read's
// path, counting what the histogram counts anyway.
func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	labels := []string{"method", "route", "status"}
	m := &httpMetrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "replyrocket_http_request_duration_seconds",
			Help:    "HTTP request latency by method, route pattern and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, labels),
		series: xsync.NewMap[seriesKey, prometheus.Observer](),
	}
	requests := requestCounts{latency: m.latency, desc: prometheus.NewDesc("replyrocket_http_requests_total",
		"HTTP requests by method, route pattern and status.", labels, nil)}
	reg.MustRegister(m.latency, requests)
	return m
}

// methods bound the method label: a client inventing methods must not
// invent time series. Index 0 is every other method.
var methods = [...]string{"OTHER", http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions}

// methodIndex is method's index in methods, found by comparing it with
// each (a map lookup would hash the method as well as the route).
func methodIndex(method string) int {
	for i, m := range methods[1:] {
		if m == method {
			return i + 1
		}
	}
	return 0
}

func (m *httpMetrics) observe(method, route string, status int, d time.Duration) {
	k := seriesKey{route: route, method: methodIndex(method), status: status}
	// Load first: LoadOrCompute's closures would be made on every call.
	o, ok := m.series.Load(k)
	if !ok {
		o, _ = m.series.LoadOrCompute(k, func() (prometheus.Observer, bool) {
			return m.latency.WithLabelValues(methods[k.method], route, strconv.Itoa(status)), false
		})
	}
	o.Observe(d.Seconds())
}

// requestCounts exposes, for each series of the latency histogram, its
// count of observations as a counter with the same labels.
type requestCounts struct {
	latency *prometheus.HistogramVec
	desc    *prometheus.Desc
}

func (r requestCounts) Describe(ch chan<- *prometheus.Desc) { ch <- r.desc }

func (r requestCounts) Collect(ch chan<- prometheus.Metric) {
	series := make(chan prometheus.Metric)
	go func() {
		r.latency.Collect(series)
		close(series)
	}()
	for s := range series {
		var d dto.Metric
		if err := s.Write(&d); err != nil {
			ch <- prometheus.NewInvalidMetric(r.desc, fmt.Errorf("read latency series: %w", err))
			continue
		}
		// The histogram's labels come sorted by name, which is the order
		// of labels: method, route, status.
		values := make([]string, 0, len(d.GetLabel()))
		for _, l := range d.GetLabel() {
			values = append(values, l.GetValue())
		}
		ch <- prometheus.MustNewConstMetric(r.desc, prometheus.CounterValue, float64(d.GetHistogram().GetSampleCount()), values...)
	}
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
