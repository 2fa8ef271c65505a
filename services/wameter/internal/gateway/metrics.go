package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Request outcomes, the values of the outcome label of
// wameter_gateway_requests_total.
const (
	outcomeAccepted         = "accepted"
	outcomeBadSignature     = "bad_signature"
	outcomeTooLarge         = "too_large"
	outcomeBadRequest       = "bad_request" // the body could not be read (client went away)
	outcomeKafkaUnavailable = "kafka_unavailable"
	outcomeClientGone       = "client_gone" // the client hung up during the Kafka write
	outcomeVerifyOK         = "verify_ok"
	outcomeVerifyDenied     = "verify_denied"
	outcomeMethodNotAllowed = "method_not_allowed"
)

var outcomes = []string{outcomeAccepted, outcomeBadSignature, outcomeTooLarge, outcomeBadRequest,
	outcomeKafkaUnavailable, outcomeClientGone, outcomeVerifyOK, outcomeVerifyDenied, outcomeMethodNotAllowed}

type metrics struct {
	requests *prometheus.CounterVec   // outcome
	writes   *prometheus.HistogramVec // result: ok, error
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	m := &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "wameter", Subsystem: "gateway",
			Name: "requests_total",
			Help: "Webhook requests by outcome.",
		}, []string{"outcome"}),
		writes: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "wameter", Subsystem: "gateway",
			Name:    "write_seconds",
			Help:    "Time to write one webhook body to Kafka with acks from all in-sync replicas, by result (ok, error).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"result"}),
	}
	// Every outcome is exported from the start, so rate() sees the first one.
	for _, o := range outcomes {
		m.requests.WithLabelValues(o)
	}
	return m
}
