package httpapi

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	logins   *prometheus.CounterVec
	refresh  *prometheus.CounterVec
	purged   prometheus.Counter
	// throttled counts 429 answers by the throttle scope that refused them.
	throttled *prometheus.CounterVec
}

// newMetrics registers Lanyard's metrics on a registry of its own, so tests
// and several servers in one process never collide on the global one.
func newMetrics(hashesInFlight func() int) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lanyard_http_requests_total", Help: "HTTP requests by method, route template and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lanyard_http_request_duration_seconds", Help: "HTTP request latency by method and route template.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lanyard_logins_total", Help: "Login attempts by result (success or the error code).",
		}, []string{"result"}),
		refresh: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lanyard_refreshes_total", Help: "Refresh attempts by result (success or the error code).",
		}, []string{"result"}),
		purged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lanyard_sessions_purged_total", Help: "Ended or expired sessions deleted by the cleanup job.",
		}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lanyard_throttled_requests_total", Help: "Requests refused with 429 by reason (the throttle scope).",
		}, []string{"reason"}),
	}
	m.registry.MustRegister(m.requests, m.duration, m.logins, m.refresh, m.purged, m.throttled,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "lanyard_password_hashes_in_flight", Help: "argon2id hashes running now (capped by LANYARD_HASH_CONCURRENCY).",
		}, func() float64 { return float64(hashesInFlight()) }),
	)
	return m
}
