package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Replicas are the metrics of a replicated deployment (issue 18): the
// tenant session leases this replica holds, hand-overs, requests forwarded
// to other replicas and the batch renewal's latency.
type Replicas struct {
	handovers *prometheus.CounterVec
	forwarded *prometheus.CounterVec
	renewals  *prometheus.HistogramVec
}

// RegisterReplicas exports the replica metrics; held is read at every
// scrape.
func (m *Metrics) RegisterReplicas(held func() int) *Replicas {
	r := &Replicas{
		handovers: counter("ordertune_session_lease_handovers_total",
			"Tenant session leases changing hands: taken over from an expired owner (takeover) or given up on shutdown (released).", "kind"),
		forwarded: counter("ordertune_forwarded_requests_total",
			"Requests forwarded to the replica owning the tenant's session, by result (ok, owner_unreachable).", "result"),
		renewals: histogram("ordertune_session_lease_renewal_seconds",
			"Latency of the batch renewal of this replica's leases (one statement), by result.",
			[]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}, "result"),
	}
	desc := prometheus.NewDesc("ordertune_session_leases_held", "Tenant session leases this replica holds.", nil, nil)
	m.reg.MustRegister(r.handovers, r.forwarded, r.renewals, collectorFunc{desc: desc, collect: func(ch chan<- prometheus.Metric) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, float64(held()))
	}})
	return r
}

// Takeover counts a lease taken over from an expired owner.
func (r *Replicas) Takeover() { r.handovers.WithLabelValues("takeover").Inc() }

// Released counts leases given up on shutdown.
func (r *Replicas) Released(n int) { r.handovers.WithLabelValues("released").Add(float64(n)) }

// Forwarded counts a request forwarded to another replica.
func (r *Replicas) Forwarded(result string) { r.forwarded.WithLabelValues(result).Inc() }

// Renewal records one batch renewal.
func (r *Replicas) Renewal(d time.Duration, _ int, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	r.renewals.WithLabelValues(result).Observe(d.Seconds())
}
