// Package account is the stage keyed by portfolio: it merges the units of
// every window partition in event-time order (a unit is released once the
// lowest watermark over all window partitions has passed it), prices them
// with the billing ledger (free tier per WABA, volume tiers per portfolio,
// rates) and emits charge rows. Duplicated units (a window partition that
// replays after a restart) are recognised by their per-source sequence
// numbers. State (ledger counters, watermarks, sequences) is checkpointed
// to a compacted changelog topic before the input offset is committed.
package account

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/sink"
	"github.com/wameter/wameter/pkg/stream"
	"github.com/wameter/wameter/services/wameter/internal/changelog"
	"github.com/wameter/wameter/services/wameter/internal/stage"
	"github.com/wameter/wameter/services/wameter/internal/wire"
)

// Config configures the account stage.
type Config struct {
	UnitsTopic string
	RowsTopic  string
	StateTopic string
	// Sources is the number of window partitions (the events topic's
	// partition count): the merge waits for the watermark of each.
	Sources int
	// RowsPartitions is the partition count of RowsTopic: charge rows are
	// packed per partition (wire.Packer).
	RowsPartitions int
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.UnitsTopic == "" || c.RowsTopic == "" || c.StateTopic == "" {
		errs = append(errs, errors.New("account: a topic name is empty"))
	}
	if c.Sources <= 0 {
		errs = append(errs, errors.New("account: sources must be positive"))
	}
	if c.RowsPartitions <= 0 {
		errs = append(errs, errors.New("account: rows partitions must be positive"))
	}
	return errors.Join(errs...)
}

// Stage implements stream.Handler for the units topic.
type Stage struct {
	stage.Deps
	cfg    Config
	logger *zap.Logger
	m      *metrics
	parts  stage.Parts[*part]
}

type metrics struct {
	charges    *prometheus.CounterVec // pricing_type
	duplicates prometheus.Counter
	late       prometheus.Counter
	noRate     prometheus.Counter
	buffered   *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		charges: f.NewCounterVec(prometheus.CounterOpts{Name: "wameter_account_charges_total",
			Help: "Charge rows emitted, by pricing type."}, []string{"pricing_type"}),
		duplicates: f.NewCounter(prometheus.CounterOpts{Name: "wameter_account_duplicate_units_total",
			Help: "Units dropped because their source sequence was already seen (window replay)."}),
		late: f.NewCounter(prometheus.CounterOpts{Name: "wameter_account_late_units_total",
			Help: "Units that arrived after the merge had passed their time (a window partition came back from idle); priced on arrival."}),
		noRate: f.NewCounter(prometheus.CounterOpts{Name: "wameter_account_no_rate_total",
			Help: "Units that should be charged but found no rate (pricing_type no_rate, amount 0)."}),
		buffered: f.NewGaugeVec(prometheus.GaugeOpts{Name: "wameter_account_buffered_units",
			Help: "Units waiting for the merge watermark, by partition."}, []string{"partition"}),
	}
}

// New returns the stage.
func New(cfg Config, deps stage.Deps) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := deps.Check("account"); err != nil {
		return nil, err
	}
	return &Stage{Deps: deps, cfg: cfg, logger: deps.Logger.Named("account"), m: newMetrics(deps.Registry)}, nil
}

type part struct {
	id       int
	label    string
	logger   *zap.Logger
	ledger   *billing.Ledger
	waiting  waiting
	wm       []int64  // per source window partition
	lastSeq  []uint64 // per source
	released int64
	// replayUntil: records below were read before the checkpoint.
	replayUntil int64
	next        int64
	noRateSeen  uint64
	rows        *wire.Packer // charge rows, packed per rows partition
	rowBuf      []byte
	letters     []stream.Letter
	// charged counts priced units by pricing type until the end of the
	// batch: a labelled counter's lookup per unit costs more than pricing.
	charged [256]int
}

func (s *Stage) part(p int) *part { return s.parts.Get(p) }

// Assigned restores the partition's ledger and merge positions.
func (s *Stage) Assigned(ctx context.Context, topic string, p int, committed int64) (int64, error) {
	led, err := billing.NewLedger(s.Catalog, s.Accounts)
	if err != nil {
		return 0, err
	}
	pt := &part{id: p, label: strconv.Itoa(p), logger: s.logger.With(zap.Int("partition", p)), ledger: led,
		wm: make([]int64, s.cfg.Sources), lastSeq: make([]uint64, s.cfg.Sources), released: math.MinInt64,
		rows: wire.NewPacker(s.cfg.RowsTopic, s.cfg.RowsPartitions)}
	for i := range pt.wm {
		pt.wm[i] = math.MinInt64
	}
	var meta []byte
	if _, err := changelog.RestoreRetrying(ctx, s.Kafka, s.cfg.StateTopic, p, func() { meta = nil }, func(key, value []byte) error {
		if len(key) == 1 && key[0] == 'm' {
			meta = value
		}
		return nil
	}, func(err error) { pt.logger.Warn("restore from the changelog failed; retrying", zap.Error(err)) }); err != nil {
		return 0, fmt.Errorf("account partition %d: restore: %w", p, err)
	}
	start := committed
	if meta != nil {
		replayFrom, err := pt.unmarshal(meta)
		if err != nil {
			return 0, fmt.Errorf("account partition %d: checkpoint: %w", p, err)
		}
		start = replayFrom
	}
	pt.logger.Info("partition assigned", zap.Int64("start", start), zap.Int64("replay_until", pt.replayUntil))
	s.parts.Put(p, pt)
	return start, nil
}

// Handle merges a batch of units and watermarks and prices what is released.
func (s *Stage) Handle(ctx context.Context, topic string, p int, batch []kafka.Message) (int64, error) {
	pt := s.part(p)
	var parts [][]byte
	for i := range batch {
		m := &batch[i]
		pt.next = m.Offset + 1
		if !wire.IsPacked(m.Value) {
			// One unit or watermark (watermarks, and units from a window
			// before packed units).
			s.record(pt, m, m.Value)
			continue
		}
		var err error
		if parts, err = wire.SplitPacked(m.Value, parts[:0]); err != nil {
			if m.Offset >= pt.replayUntil {
				pt.letters = append(pt.letters, stream.Letter{Source: *m, Reason: "bad_unit", Err: err})
			}
			continue
		}
		for _, part := range parts {
			s.record(pt, m, part)
		}
	}
	low := int64(math.MaxInt64)
	for _, w := range pt.wm {
		low = min(low, w)
	}
	if low > pt.released {
		latest := pt.released
		for pt.waiting.len() > 0 && pt.waiting.next().chargedAt <= low {
			u := pt.waiting.pop().unit
			latest = max(latest, u.ChargedAt)
			s.price(pt, &u)
		}
		if low == wire.Idle {
			// Every source is idle: all was released; a source that
			// wakes up later with older units gets them priced as late.
			low = latest
		}
		pt.released = low
	}
	for t := range pt.charged {
		if n := pt.charged[t]; n > 0 {
			s.m.charges.WithLabelValues(billing.PricingType(t).String()).Add(float64(n))
			pt.charged[t] = 0
		}
	}
	return s.flush(ctx, pt)
}

// price prices one unit and queues its charge row.
func (s *Stage) price(pt *part, u *billing.Unit) {
	pt.ledger.Price(u)
	// Keyed by the row's id: packed for the rows partition a record with
	// that key would get, where its copies meet.
	id := u.ID()
	pt.rowBuf = sink.AppendChargeRow(pt.rowBuf[:0], u, s.Accounts.Get(u.WABA).Portfolio)
	pt.rows.Add(id[:], pt.rowBuf)
	pt.charged[u.PricingType]++
	if d := pt.ledger.Stats.NoRate - pt.noRateSeen; d > 0 {
		s.m.noRate.Add(float64(d))
		pt.noRateSeen = pt.ledger.Stats.NoRate
	}
}

// Tick flushes nothing new: watermarks arrive as records.
func (s *Stage) Tick(ctx context.Context, topic string, p int) (int64, error) { return -1, nil }

// record merges one units-topic record of m (encoded in value: all of a
// single record, one part of a packed one), or dead-letters it.
func (s *Stage) record(pt *part, m *kafka.Message, value []byte) {
	var rec wire.Record
	if err := wire.Read(value, &rec); err != nil || int(rec.Source) >= s.cfg.Sources {
		if err == nil {
			err = fmt.Errorf("source partition %d, but the events topic has %d", rec.Source, s.cfg.Sources)
		}
		if m.Offset >= pt.replayUntil {
			source := *m
			source.Value = value
			pt.letters = append(pt.letters, stream.Letter{Source: source, Reason: "bad_unit", Err: err})
		}
		return
	}
	if m.Offset < pt.replayUntil {
		// Before the checkpoint: positions are restored; only units
		// still waiting at the checkpoint are buffered again.
		if !rec.IsWatermark && rec.Unit.ChargedAt > pt.released {
			pt.waiting.push(pending{rec.Unit, m.Offset})
		}
		return
	}
	src := rec.Source
	if rec.IsWatermark {
		pt.wm[src] = rec.Watermark
		return
	}
	if rec.Seq <= pt.lastSeq[src] {
		s.m.duplicates.Inc()
		return
	}
	pt.lastSeq[src] = rec.Seq
	if rec.Unit.ChargedAt <= pt.released {
		s.m.late.Inc()
		s.price(pt, &rec.Unit)
		return
	}
	pt.waiting.push(pending{rec.Unit, m.Offset})
}

// Revoked checkpoints a last time.
func (s *Stage) Revoked(ctx context.Context, topic string, p int) (int64, error) {
	pt := s.part(p)
	commit, err := s.flush(ctx, pt)
	s.parts.Delete(p)
	s.m.buffered.DeleteLabelValues(pt.label)
	return commit, err
}

func (s *Stage) flush(ctx context.Context, pt *part) (int64, error) {
	if len(pt.letters) > 0 {
		if err := s.DLQ.Send(ctx, pt.letters...); err != nil {
			return -1, fmt.Errorf("account partition %d: dead letters: %w", pt.id, err)
		}
		pt.letters = pt.letters[:0]
	}
	if rows := pt.rows.Take(); len(rows) > 0 {
		if err := s.Producer.WriteMessages(ctx, rows...); err != nil {
			return -1, fmt.Errorf("account partition %d: write charges: %w", pt.id, err)
		}
	}
	replayFrom := pt.next
	if offset, ok := pt.waiting.minOffset(); ok {
		replayFrom = min(replayFrom, offset)
	}
	meta, err := pt.marshal(replayFrom)
	if err != nil {
		return -1, err
	}
	msg := stream.WithPartition(kafka.Message{Topic: s.cfg.StateTopic, Key: []byte{'m'}, Value: meta}, pt.id)
	if err := s.Producer.WriteMessages(ctx, msg); err != nil {
		return -1, fmt.Errorf("account partition %d: checkpoint: %w", pt.id, err)
	}
	s.m.buffered.WithLabelValues(pt.label).Set(float64(pt.waiting.len()))
	return replayFrom, nil
}

func (pt *part) marshal(replayFrom int64) ([]byte, error) {
	led, err := pt.ledger.MarshalBinary()
	if err != nil {
		return nil, err
	}
	b := []byte{1}
	b = binary.AppendVarint(b, pt.released)
	b = binary.AppendVarint(b, pt.next)
	b = binary.AppendVarint(b, replayFrom)
	b = binary.AppendUvarint(b, uint64(len(pt.wm)))
	for i := range pt.wm {
		b = binary.AppendVarint(b, pt.wm[i])
		b = binary.AppendUvarint(b, pt.lastSeq[i])
	}
	b = binary.AppendUvarint(b, uint64(len(led)))
	return append(b, led...), nil
}

func (pt *part) unmarshal(b []byte) (replayFrom int64, err error) {
	if len(b) == 0 || b[0] != 1 {
		return 0, errors.New("bad version")
	}
	b = b[1:]
	bad := false
	varint := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	uvarint := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	pt.released = varint()
	pt.next = varint()
	pt.replayUntil = pt.next
	replayFrom = varint()
	n := int(uvarint())
	for i := 0; i < n && !bad; i++ {
		w, seq := varint(), uvarint()
		if i < len(pt.wm) {
			pt.wm[i], pt.lastSeq[i] = w, seq
		}
	}
	m := uvarint()
	if bad || m != uint64(len(b)) {
		return 0, errors.New("truncated")
	}
	// If the events topic gained partitions since the checkpoint, the new
	// sources start unknown (MinInt64) and the merge waits for them.
	return replayFrom, pt.ledger.UnmarshalBinary(b)
}
