// Package metrics holds Ordertune's Prometheus metrics. There is no global
// registry: one *Metrics is built at start-up and handed to the parts that
// record, so tests can build their own and read it back.
package metrics

import (
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the set of Ordertune's metrics and their registry.
type Metrics struct {
	reg *prometheus.Registry

	httpDuration  *prometheus.HistogramVec
	confirmations *prometheus.CounterVec
	ibkrCalls     *prometheus.CounterVec
	ibkrDuration  *prometheus.HistogramVec
	handshakes    *prometheus.CounterVec
	pools         *poolCollector
}

// New returns a fresh set of metrics with Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		httpDuration: histogram("ordertune_http_request_duration_seconds",
			"HTTP request latency by route template, method and status.",
			[]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}, "route", "method", "status"),
		confirmations: counter("ordertune_confirmations_total",
			"Confirmations by outcome (submitted, failed, unknown, refused, duplicate).", "outcome"),
		ibkrCalls: counter("ordertune_ibkr_requests_total",
			"Requests to the IBKR Web API by endpoint and HTTP status (\"error\" when no response).", "endpoint", "status"),
		ibkrDuration: histogram("ordertune_ibkr_request_duration_seconds", "IBKR Web API latency by endpoint.",
			[]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}, "endpoint"),
		handshakes: counter("ordertune_ibkr_handshakes_total",
			"Live session token handshakes by result (ok or the error kind).", "result"),
		pools: &poolCollector{},
	}
	m.reg.MustRegister(m.httpDuration, m.confirmations, m.ibkrCalls, m.ibkrDuration, m.handshakes, m.pools,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// counter returns a new counter vector with labels.
func counter(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

// histogram returns a new histogram vector with buckets (seconds) and labels.
func histogram(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry returns the registry, for packages that add collectors of their own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveHTTP records one HTTP request. route is the route template
// ("/api/v1/signals/:id"), never the raw path, to bound cardinality.
func (m *Metrics) ObserveHTTP(route, method string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.httpDuration.WithLabelValues(route, method, strconv.Itoa(status)).Observe(d.Seconds())
}

// Confirmation counts a confirmation's outcome.
func (m *Metrics) Confirmation(outcome string) { m.confirmations.WithLabelValues(outcome).Inc() }

// Handshake counts a live session token handshake's result.
func (m *Metrics) Handshake(result string) { m.handshakes.WithLabelValues(result).Inc() }

// Transport wraps next (nil means http.DefaultTransport) so every request
// to IBKR is counted by endpoint and status.
func (m *Metrics) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		start := time.Now()
		ep := Endpoint(req.URL.Path)
		resp, err := next.RoundTrip(req)
		status := "error"
		if err == nil {
			status = strconv.Itoa(resp.StatusCode)
		}
		m.ibkrCalls.WithLabelValues(ep, status).Inc()
		m.ibkrDuration.WithLabelValues(ep).Observe(time.Since(start).Seconds())
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

var (
	apiPrefix  = regexp.MustCompile(`^.*?/v1/api`)
	accountSeg = regexp.MustCompile(`/(DU|U)[0-9]+(/|$)`)
	numberSeg  = regexp.MustCompile(`/[0-9]+(/|$)`)
	idSeg      = regexp.MustCompile(`/[0-9a-fA-F-]{16,}(/|$)`)
)

// Endpoint reduces an IBKR URL path to its template, with account ids,
// order ids and question ids replaced, so labels stay few and carry no
// account number.
func Endpoint(path string) string {
	p := apiPrefix.ReplaceAllString(path, "")
	p = accountSeg.ReplaceAllString(p, "/{account}$2")
	p = idSeg.ReplaceAllString(p, "/{id}$1")
	for numberSeg.MatchString(p) {
		p = numberSeg.ReplaceAllString(p, "/{n}$1")
	}
	if p == "" {
		return "/"
	}
	return p
}

// RegisterPool exports the statistics of the pool called name (the pool
// label: main, account_locks, leases, lease_renewal) as gauges and
// counters.
func (m *Metrics) RegisterPool(name string, pool *pgxpool.Pool) {
	m.pools.mu.Lock()
	defer m.pools.mu.Unlock()
	m.pools.pools = append(m.pools.pools, namedPool{name, pool})
}

// RegisterSessions exports the count of cached IBKR sessions by state, read
// from states at every scrape.
func (m *Metrics) RegisterSessions(states func() map[string]int) {
	desc := prometheus.NewDesc("ordertune_ibkr_sessions", "Cached IBKR sessions by state.", []string{"state"}, nil)
	m.reg.MustRegister(collectorFunc{desc: desc, collect: func(ch chan<- prometheus.Metric) {
		for state, n := range states() {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(n), state)
		}
	}})
}

// RegisterOutbox exports the notification outbox's backlog, read from
// backlog at every scrape: the events waiting to be turned into deliveries
// and the age of the oldest (0 when none waits). A backlog that grows, or
// an age beyond a few seconds, means no replica's dispatcher is keeping up.
// A failed read exports nothing for that scrape.
func (m *Metrics) RegisterOutbox(backlog func() (events int, oldest time.Duration, err error)) {
	events := prometheus.NewDesc("ordertune_notification_outbox_events", "Notification events waiting in the outbox for their deliveries to be queued.", nil, nil)
	age := prometheus.NewDesc("ordertune_notification_outbox_oldest_seconds", "Age of the oldest event waiting in the outbox; 0 when none waits.", nil, nil)
	m.reg.MustRegister(collectorFunc{desc: events, also: []*prometheus.Desc{age}, collect: func(ch chan<- prometheus.Metric) {
		n, oldest, err := backlog()
		if err != nil {
			return
		}
		ch <- prometheus.MustNewConstMetric(events, prometheus.GaugeValue, float64(n))
		ch <- prometheus.MustNewConstMetric(age, prometheus.GaugeValue, oldest.Seconds())
	}})
}

type collectorFunc struct {
	desc    *prometheus.Desc
	also    []*prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	for _, d := range c.also {
		ch <- d
	}
}
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }

var (
	poolTotal    = prometheus.NewDesc("ordertune_db_pool_connections", "Database pool connections by state.", []string{"pool", "state"}, nil)
	poolMax      = prometheus.NewDesc("ordertune_db_pool_max_connections", "Database pool size limit.", []string{"pool"}, nil)
	poolAcquires = prometheus.NewDesc("ordertune_db_pool_acquires_total", "Connections acquired from the pool.", []string{"pool"}, nil)
	poolWaits    = prometheus.NewDesc("ordertune_db_pool_empty_acquires_total", "Acquires that had to wait for a connection.", []string{"pool"}, nil)
	poolWaitSecs = prometheus.NewDesc("ordertune_db_pool_acquire_wait_seconds_total", "Time spent waiting for a connection.", []string{"pool"}, nil)
)

// poolCollector reads every registered pool's statistics at a scrape.
type poolCollector struct {
	mu    sync.Mutex
	pools []namedPool
}

type namedPool struct {
	name string
	pool *pgxpool.Pool
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolTotal, poolMax, poolAcquires, poolWaits, poolWaitSecs} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	pools := c.pools
	c.mu.Unlock()
	for _, p := range pools {
		s := p.pool.Stat()
		ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.AcquiredConns()), p.name, "acquired")
		ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.IdleConns()), p.name, "idle")
		ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.ConstructingConns()), p.name, "constructing")
		ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.MaxConns()), p.name)
		ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.AcquireCount()), p.name)
		ch <- prometheus.MustNewConstMetric(poolWaits, prometheus.CounterValue, float64(s.EmptyAcquireCount()), p.name)
		ch <- prometheus.MustNewConstMetric(poolWaitSecs, prometheus.CounterValue, s.AcquireDuration().Seconds(), p.name)
	}
}
