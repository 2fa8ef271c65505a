package sink

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Duplicate-skip reasons, the label values of wameter_sink_duplicates_skipped_total.
const (
	reasonOffset = "offset" // at or below the highest offset stored for the partition
	reasonID     = "id"     // the id is stored (or batched) already: re-emitted upstream
)

type metrics struct {
	inserted      *prometheus.CounterVec
	skipped       *prometheus.CounterVec
	insertSeconds *prometheus.HistogramVec
	batchRows     *prometheus.HistogramVec
	insertErrors  *prometheus.CounterVec
	healthy       prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		inserted: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wameter_sink_rows_inserted_total",
			Help: "Rows stored in ClickHouse, by table.",
		}, []string{"table"}),
		skipped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wameter_sink_duplicates_skipped_total",
			Help: "Rows not inserted because ClickHouse holds them already, by table and reason (offset: at or below the partition's stored offset; id: same id stored or batched).",
		}, []string{"table", "reason"}),
		insertSeconds: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wameter_sink_insert_duration_seconds",
			Help:    "Duration of one INSERT attempt, by table.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10), // 5ms .. ~19s
		}, []string{"table"}),
		batchRows: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wameter_sink_batch_rows",
			Help:    "Rows per INSERT, by table.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 11), // 1 .. ~1M
		}, []string{"table"}),
		insertErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "wameter_sink_insert_errors_total",
			Help: "Failed INSERT attempts (and failed read-backs before a retry), by table.",
		}, []string{"table"}),
		healthy: f.NewGauge(prometheus.GaugeOpts{
			Name: "wameter_sink_healthy",
			Help: "1 while the last insert succeeded, 0 while inserts fail and are retried.",
		}),
	}
}
