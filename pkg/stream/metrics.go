package stream

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// register registers c on reg, or returns the collector already registered
// under the same description. Several components of one process (the
// embedded mode runs every stage in one binary) share one registry and tell
// their series apart by labels (group, topic, stage), so the second
// registration is expected, not a bug.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	if err := reg.Register(c); err != nil {
		var already prometheus.AlreadyRegisteredError
		if errors.As(err, &already) {
			if existing, ok := already.ExistingCollector.(T); ok {
				return existing, nil
			}
		}
		var zero T
		return zero, fmt.Errorf("register metric: %w", err)
	}
	return c, nil
}

// consumerMetrics are the series of Consumer; every one carries the group.
type consumerMetrics struct {
	lag          *prometheus.GaugeVec   // group, topic, partition
	records      *prometheus.CounterVec // group, topic, partition
	batches      *prometheus.CounterVec // group, topic, partition
	commitErrors *prometheus.CounterVec // group
	fetchErrors  *prometheus.CounterVec // group, topic
	generations  *prometheus.CounterVec // group
}

func newConsumerMetrics(reg prometheus.Registerer) (*consumerMetrics, error) {
	var m consumerMetrics
	var errs []error
	var err error
	m.lag, err = register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "wameter", Subsystem: "stream",
		Name: "consumer_lag",
		Help: "Records behind the high watermark of an assigned partition (high watermark minus next offset to read), as of the last fetch.",
	}, []string{"group", "topic", "partition"}))
	errs = append(errs, err)
	m.records, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "wameter", Subsystem: "stream",
		Name: "consumer_records_total",
		Help: "Records handed to the handler.",
	}, []string{"group", "topic", "partition"}))
	errs = append(errs, err)
	m.batches, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "wameter", Subsystem: "stream",
		Name: "consumer_batches_total",
		Help: "Batches handed to the handler.",
	}, []string{"group", "topic", "partition"}))
	errs = append(errs, err)
	m.commitErrors, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "wameter", Subsystem: "stream",
		Name: "consumer_commit_errors_total",
		Help: "Offset commits the group coordinator refused or that did not reach it.",
	}, []string{"group"}))
	errs = append(errs, err)
	m.fetchErrors, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "wameter", Subsystem: "stream",
		Name: "consumer_fetch_errors_total",
		Help: "Fetch errors reported by a partition reader (it retries by itself).",
	}, []string{"group", "topic"}))
	errs = append(errs, err)
	m.generations, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "wameter", Subsystem: "stream",
		Name: "consumer_generations_total",
		Help: "Consumer group generations this member took part in (each one follows a rebalance).",
	}, []string{"group"}))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &m, nil
}

// producerMetrics are the series of Producer.
type producerMetrics struct {
	messages *prometheus.CounterVec // topic
	retries  prometheus.Counter
	failures prometheus.Counter
}

func newProducerMetrics(reg prometheus.Registerer) (*producerMetrics, error) {
	var m producerMetrics
	var errs []error
	var err error
	m.messages, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "wameter", Subsystem: "stream",
		Name: "producer_messages_total",
		Help: "Messages acknowledged by all in-sync replicas.",
	}, []string{"topic"}))
	errs = append(errs, err)
	m.retries, err = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "wameter", Subsystem: "stream",
		Name: "producer_retries_total",
		Help: "WriteMessages attempts retried after a retriable error.",
	}))
	errs = append(errs, err)
	m.failures, err = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "wameter", Subsystem: "stream",
		Name: "producer_failures_total",
		Help: "WriteMessages calls that returned an error (final error or context ended).",
	}))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &m, nil
}
