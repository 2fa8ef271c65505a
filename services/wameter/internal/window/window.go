// Package window is the stateful stage keyed by customer: it reorders each
// partition's events by event time (reorder.Buffer), applies them to the
// per-key billing states, and emits conversation rows (to the rows topic)
// and billing units (to the units topic, keyed by portfolio), followed by a
// watermark control record to every units partition. Its state is
// checkpointed to a compacted changelog topic after every batch, before the
// input offset is committed.
package window

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/keystate"
	"github.com/wameter/wameter/pkg/reorder"
	"github.com/wameter/wameter/pkg/sink"
	"github.com/wameter/wameter/pkg/stream"
	"github.com/wameter/wameter/pkg/webhook"
	"github.com/wameter/wameter/services/wameter/internal/changelog"
	"github.com/wameter/wameter/services/wameter/internal/slab"
	"github.com/wameter/wameter/services/wameter/internal/stage"
	"github.com/wameter/wameter/services/wameter/internal/wire"
)

// Config configures the window stage.
type Config struct {
	EventsTopic string
	UnitsTopic  string
	RowsTopic   string
	StateTopic  string
	// UnitsPartitions is the partition count of UnitsTopic: every one gets
	// the watermark control records.
	UnitsPartitions int
	// RowsPartitions is the partition count of RowsTopic: conversation rows
	// are packed per partition (wire.Packer).
	RowsPartitions int
	// Lateness is how long to wait for out-of-order events (event time).
	Lateness time.Duration
	// IdleFlush: a partition with no new events for this long (wall
	// clock) releases everything it holds.
	IdleFlush time.Duration
	// MessageMemory: see billing.Config.
	MessageMemory time.Duration
	// BufferBytes bounds each partition's reorder buffer in memory; past
	// it, events spill to sorted run files under SpillDir (0: unbounded).
	BufferBytes int64
	SpillDir    string
	// Upstream, if set, holds an idle flush until everything produced
	// upstream before it was due has reached the partition. Without it a
	// partition's own quiet is taken for the end of its input, and an
	// upstream stall longer than IdleFlush (a dead member holding some of
	// normalize's partitions for a session timeout) makes the events it
	// held back late.
	Upstream Upstream
	// HotKeys bounds the decoded per-key states a partition keeps (the
	// rest stay compact); 0: keystate.DefaultMaxHot.
	HotKeys int
	// Sources are the input partitions of normalize (topic → partition
	// count). With sources, a partition's watermark is the lowest source
	// mark (normalize's highest event time read from that input partition)
	// over the sources that are not idle, less Lateness: a replay that
	// reads some sources faster than others makes nothing late. Until
	// every source has a mark or is idle, nothing is released but by an
	// idle flush. A source that is not listed counts once its first mark
	// is read. Without sources the watermark is the highest event time
	// seen less Lateness, until a first source mark is read.
	Sources map[string]int
}

// Upstream tells the idle flush whether a partition's input is complete.
// Its methods are called concurrently for different partitions.
type Upstream interface {
	// Mark returns where the input upstream of the window ends now.
	Mark(ctx context.Context) (UpstreamMark, error)
	// Pending returns how many records produced upstream before mark, or
	// to events partition p from offset next on, have not been handled.
	Pending(ctx context.Context, mark UpstreamMark, p int, next int64) (int64, error)
}

// UpstreamMark is a position in the input upstream of the window: end
// offsets by topic and partition.
type UpstreamMark map[string][]int64

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	for name, v := range map[string]string{"events topic": c.EventsTopic, "units topic": c.UnitsTopic,
		"rows topic": c.RowsTopic, "state topic": c.StateTopic} {
		if v == "" {
			errs = append(errs, fmt.Errorf("window: %s is empty", name))
		}
	}
	if c.UnitsPartitions <= 0 {
		errs = append(errs, errors.New("window: units partitions must be positive"))
	}
	if c.RowsPartitions <= 0 {
		errs = append(errs, errors.New("window: rows partitions must be positive"))
	}
	if c.Lateness < 0 {
		errs = append(errs, errors.New("window: lateness must not be negative"))
	}
	if c.IdleFlush <= 0 {
		errs = append(errs, errors.New("window: idle flush must be positive"))
	}
	if c.BufferBytes < 0 {
		errs = append(errs, errors.New("window: buffer bytes must not be negative"))
	}
	if c.HotKeys < 0 {
		errs = append(errs, errors.New("window: hot keys must not be negative"))
	}
	if c.BufferBytes > 0 && c.SpillDir == "" {
		errs = append(errs, errors.New("window: a buffer bound needs a spill directory"))
	}
	return errors.Join(errs...)
}

// Stage implements stream.Handler for the events topic.
type Stage struct {
	stage.Deps
	cfg    Config
	logger *zap.Logger
	m      *metrics
	now    func() time.Time
	parts  stage.Parts[*part]
}

type metrics struct {
	events        *prometheus.CounterVec // outcome
	units         prometheus.Counter
	conversations prometheus.Counter
	keys          *prometheus.GaugeVec // partition
	stateBytes    *prometheus.GaugeVec // partition
	buffered      *prometheus.GaugeVec // partition
	spilled       *prometheus.GaugeVec // partition
	bufferBytes   *prometheus.GaugeVec // partition
	spills        prometheus.Counter
	spillBytes    prometheus.Counter
	unknownKind   prometheus.Counter
	restored      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		events: f.NewCounterVec(prometheus.CounterOpts{Name: "wameter_window_events_total",
			Help: "Events seen by the window stage by outcome (applied, late, bad, replayed)."}, []string{"outcome"}),
		units: f.NewCounter(prometheus.CounterOpts{Name: "wameter_window_units_total",
			Help: "Billing units emitted to the account stage."}),
		conversations: f.NewCounter(prometheus.CounterOpts{Name: "wameter_window_conversations_total",
			Help: "Conversation rows emitted."}),
		keys: f.NewGaugeVec(prometheus.GaugeOpts{Name: "wameter_window_state_keys",
			Help: "Per-key states held, by partition."}, []string{"partition"}),
		stateBytes: f.NewGaugeVec(prometheus.GaugeOpts{Name: "wameter_window_state_bytes",
			Help: "Memory the per-key states hold (estimate: arena, index, decoded hot states), by partition."}, []string{"partition"}),
		buffered: f.NewGaugeVec(prometheus.GaugeOpts{Name: "wameter_window_buffered_events",
			Help: "Events waiting for the watermark (in memory and spilled), by partition."}, []string{"partition"}),
		spilled: f.NewGaugeVec(prometheus.GaugeOpts{Name: "wameter_window_spilled_events",
			Help: "Events waiting for the watermark in spill files on disk, by partition."}, []string{"partition"}),
		bufferBytes: f.NewGaugeVec(prometheus.GaugeOpts{Name: "wameter_window_buffer_bytes",
			Help: "Estimated memory of the events waiting for the watermark in memory, by partition (bounded by WAMETER_BUFFER_MEMORY)."}, []string{"partition"}),
		spills: f.NewCounter(prometheus.CounterOpts{Name: "wameter_window_spills_total",
			Help: "Reorder buffers written to disk because they reached their memory share."}),
		spillBytes: f.NewCounter(prometheus.CounterOpts{Name: "wameter_window_spill_written_bytes_total",
			Help: "Bytes written to spill files (spills and merges of them)."}),
		unknownKind: f.NewCounter(prometheus.CounterOpts{Name: "wameter_window_unknown_kind_total",
			Help: "Delivered messages whose kind (template category or not) is unknown: no row."}),
		restored: f.NewCounter(prometheus.CounterOpts{Name: "wameter_window_restored_keys_total",
			Help: "Per-key states restored from the changelog."}),
	}
}

// New returns the stage. producer writes units, rows and the changelog.
func New(cfg Config, deps stage.Deps) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := deps.Check("window"); err != nil {
		return nil, err
	}
	return &Stage{Deps: deps, cfg: cfg, logger: deps.Logger.Named("window"), m: newMetrics(deps.Registry), now: time.Now}, nil
}

// part is one assigned partition's state; only its partition goroutine
// touches it.
type part struct {
	id     int
	label  string
	logger *zap.Logger
	buf    *reorder.Buffer
	eng    *billing.Engine
	states *keystate.Store
	dirty  map[billing.Key]struct{}
	seq    uint64 // last unit sequence number emitted
	// replayUntil: records below this offset were read before the
	// checkpoint; they are only re-buffered, never judged late again.
	replayUntil int64
	next        int64 // next input offset
	// handled is the offset after the last record handed to Handle (the
	// start offset at assignment); next is not, as it starts at the
	// checkpoint's while the replay is read.
	handled   int64
	lastInput time.Time
	// checkpointAt is when the last checkpoint was written; unsaved: a
	// flush since did not write one (see checkpointEvery).
	checkpointAt time.Time
	unsaved      bool
	idle         bool
	// mark: where the input upstream ended when the idle flush was due;
	// the flush waits until all of it has reached the partition (logged
	// once: held).
	mark        UpstreamMark
	held        bool
	nextAsk     time.Time // when the Upstream may be asked again
	published   int64     // watermark last published
	publishedOK bool
	lastSweep   int64
	unknownSeen uint64
	// sources: the marks read from normalize's input partitions (see
	// Config.Sources, and any other source whose mark was read); with
	// none, the watermark is the highest event time seen less the
	// lateness. srcReady is the watermark they allow, as of the last mark
	// (math.MinInt64 while a source that is not idle has none); allIdle:
	// every source is idle.
	sources  []sourceMark
	srcReady int64
	allIdle  bool
	// spills and spillWritten: the buffer's totals already counted.
	spills, spillWritten int64

	out     billing.Output
	bytes   slab.Slab    // keys and values of units, rows and checkpoints
	units   *wire.Packer // units, packed per units partition
	nUnits  int          // units in it
	unitKey []byte
	unitBuf []byte
	rows    *wire.Packer // conversation rows, packed per rows partition
	nRows   int          // rows in it
	rowBuf  []byte
	letters []stream.Letter
}

func (s *Stage) part(p int) *part { return s.parts.Get(p) }

// Assigned restores the partition's state from the changelog and returns
// the offset to replay from.
func (s *Stage) Assigned(ctx context.Context, topic string, p int, committed int64) (int64, error) {
	eng, err := billing.New(billing.Config{Catalog: s.Catalog, Accounts: s.Accounts,
		MessageMemory: int64(s.cfg.MessageMemory / time.Second)})
	if err != nil {
		return 0, err
	}
	buf, err := reorder.NewWithOptions(int64(s.cfg.Lateness/time.Second), reorder.Options{
		MaxBytes: s.cfg.BufferBytes, SpillDir: s.spillDir(topic, p)})
	if err != nil {
		return 0, fmt.Errorf("window partition %d: reorder buffer: %w", p, err)
	}
	pt := &part{id: p, label: strconv.Itoa(p), logger: s.logger.With(zap.Int("partition", p)),
		buf: buf, eng: eng, units: wire.NewPacker(s.cfg.UnitsTopic, s.cfg.UnitsPartitions),
		rows:   wire.NewPacker(s.cfg.RowsTopic, s.cfg.RowsPartitions),
		states: keystate.New(keystate.Config{MaxHot: s.cfg.HotKeys}), dirty: make(map[billing.Key]struct{}),
		lastInput: s.now()}
	s.initSources(pt)
	var meta *checkpoint
	started := time.Now()
	reset := func() { meta = nil; pt.states.Clear() }
	retry := func(err error) { pt.logger.Warn("restore from the changelog failed; retrying", zap.Error(err)) }
	n, err := changelog.RestoreRetrying(ctx, s.Kafka, s.cfg.StateTopic, p, reset, func(key, value []byte) error {
		switch {
		case len(key) == 1 && key[0] == 'm':
			var c checkpoint
			if err := c.unmarshal(value); err != nil {
				return err
			}
			meta = &c
		case len(key) == 17 && key[0] == 's':
			k := billing.Key{PhoneNumberID: binary.BigEndian.Uint64(key[1:9]), Customer: binary.BigEndian.Uint64(key[9:17])}
			if value == nil {
				pt.states.Delete(k)
				return nil
			}
			return pt.states.Put(k, value)
		}
		return nil
	}, retry)
	if err != nil {
		_ = buf.Close()
		return 0, fmt.Errorf("window partition %d: restore: %w", p, err)
	}
	start := committed
	if meta != nil {
		pt.buf.Restore(meta.released, meta.maxSeen)
		pt.seq, pt.replayUntil, pt.next = meta.seq, meta.next, meta.next
		pt.published, pt.publishedOK, pt.lastSweep = meta.released, true, meta.lastSweep
		pt.restoreSources(meta)
		start = meta.replayFrom
	} else if committed > 0 {
		pt.logger.Warn("no checkpoint in the changelog but a committed offset: starting with empty state",
			zap.Int64("committed", committed))
	}
	pt.handled = start
	s.m.restored.Add(float64(pt.states.Len()))
	s.m.keys.WithLabelValues(pt.label).Set(float64(pt.states.Len()))
	s.m.stateBytes.WithLabelValues(pt.label).Set(float64(pt.states.Bytes()))
	pt.logger.Info("partition assigned", zap.Int("changelog_records", n), zap.Int("keys", pt.states.Len()),
		zap.Int64("state_bytes", pt.states.Bytes()),
		zap.Int64("start", start), zap.Int64("replay_until", pt.replayUntil), zap.Duration("restore", time.Since(started)))
	s.parts.Put(p, pt)
	return start, nil
}

// sourceMark is what a partition read from one source.
type sourceMark struct {
	topic     string
	partition int32
	mark      int64
	seen      bool // a mark was read (else mark is meaningless)
	idle      bool
}

// initSources lists the configured sources, none seen yet.
func (s *Stage) initSources(pt *part) {
	topics := make([]string, 0, len(s.cfg.Sources))
	for t := range s.cfg.Sources {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	for _, t := range topics {
		for q := range s.cfg.Sources[t] {
			pt.sources = append(pt.sources, sourceMark{topic: t, partition: int32(q)})
		}
	}
	pt.srcReady = math.MinInt64
}

// applyMark records a source mark and recomputes the watermark the sources
// allow.
func (pt *part) applyMark(m *wire.SourceMark) {
	sm := pt.source(m.Topic, m.Partition)
	if !sm.seen || m.Mark > sm.mark {
		sm.mark = m.Mark
	}
	sm.seen = sm.seen || m.Mark != math.MinInt64
	sm.idle = m.Idle
	pt.recomputeSources()
}

// source returns the partition's record of a source, added if new.
func (pt *part) source(topic string, partition int32) *sourceMark {
	i := slices.IndexFunc(pt.sources, func(x sourceMark) bool { return x.topic == topic && x.partition == partition })
	if i < 0 {
		pt.sources = append(pt.sources, sourceMark{topic: topic, partition: partition})
		i = len(pt.sources) - 1
	}
	return &pt.sources[i]
}

// recomputeSources sets srcReady and allIdle from the marks: the lowest mark
// of the sources that are not idle less the lateness; with every source
// idle, everything seen so far.
func (pt *part) recomputeSources() {
	low, active := int64(math.MaxInt64), false
	for i := range pt.sources {
		sm := &pt.sources[i]
		if sm.idle {
			continue
		}
		if !sm.seen {
			pt.srcReady, pt.allIdle = math.MinInt64, false
			return
		}
		active = true
		low = min(low, sm.mark)
	}
	pt.allIdle = !active
	if !active {
		pt.srcReady = pt.buf.MaxSeen()
		return
	}
	pt.srcReady = low - pt.buf.Lateness()
}

// ready is the watermark the partition may release up to as of its last
// record: with source marks, what the slowest source allows; before the
// first one, the highest event time seen less the lateness.
func (pt *part) ready() int64 {
	if len(pt.sources) > 0 {
		return pt.srcReady
	}
	return pt.buf.Ready()
}

// Handle buffers a batch of events, releases what the watermark passed,
// and checkpoints.
func (s *Stage) Handle(ctx context.Context, topic string, p int, batch []kafka.Message) (int64, error) {
	pt := s.part(p)
	// Outcomes are counted once per batch: a labelled counter's lookup
	// costs about as much as buffering an event.
	var applied, replayed int
	var parts [][]byte
	for i := range batch {
		m := &batch[i]
		pt.next = m.Offset + 1
		pt.handled = m.Offset + 1
		if wire.IsSourceMark(m.Value) {
			var sm wire.SourceMark
			if err := wire.ReadSourceMark(m.Value, &sm); err != nil {
				if m.Offset >= pt.replayUntil {
					s.m.events.WithLabelValues("bad").Inc()
					pt.letters = append(pt.letters, stream.Letter{Source: *m, Reason: "bad_event", Err: err})
				}
				continue
			}
			// Marks before the checkpoint are in it.
			if m.Offset >= pt.replayUntil {
				pt.applyMark(&sm)
			}
			continue
		}
		if !wire.IsPacked(m.Value) {
			// A record of one event (a normalize before packed records).
			s.event(pt, m, m.Value, &applied, &replayed)
			continue
		}
		var err error
		if parts, err = wire.SplitPacked(m.Value, parts[:0]); err != nil {
			if m.Offset >= pt.replayUntil {
				s.m.events.WithLabelValues("bad").Inc()
				pt.letters = append(pt.letters, stream.Letter{Source: *m, Reason: "bad_event", Err: err})
			}
			continue
		}
		for _, part := range parts {
			s.event(pt, m, part, &applied, &replayed)
		}
	}
	if applied > 0 {
		s.m.events.WithLabelValues("applied").Add(float64(applied))
	}
	if replayed > 0 {
		s.m.events.WithLabelValues("replayed").Add(float64(replayed))
	}
	pt.lastInput = s.now()
	pt.idle, pt.mark, pt.held = false, nil, false
	s.release(pt, pt.ready())
	if err := s.bufferFailed(pt); err != nil {
		return -1, err
	}
	// Every source idle and nothing held: the account stage need not wait
	// for this partition (as after an idle flush).
	if len(pt.sources) > 0 && pt.allIdle && pt.buf.Len() == 0 {
		pt.idle = true
	}
	return s.flush(ctx, pt, pt.idle)
}

// event buffers one event of record m (encoded in value: all of a
// single-event record, one event of a packed one), or dead-letters it.
func (s *Stage) event(pt *part, m *kafka.Message, value []byte, applied, replayed *int) {
	// A view: the buffer keeps value's bytes, not ev's strings.
	var ev billing.Event
	if err := webhook.ReadEventView(value, &ev); err != nil {
		if m.Offset >= pt.replayUntil {
			s.m.events.WithLabelValues("bad").Inc()
			pt.letters = append(pt.letters, stream.Letter{Source: eventRecord(m, value, nil), Reason: "bad_event", Err: err})
		}
		return
	}
	if m.Offset < pt.replayUntil {
		if !pt.buf.Late(ev.Time) {
			pt.buf.AddEncoded(&ev, value, m.Offset)
		}
		*replayed++
		return
	}
	// Late is judged against the watermark as of this event (the
	// highest event time before it less the lateness), not only against
	// what the last batch released: which events are late, and so every
	// unit and its sequence number, must not depend on where batches
	// ended, or a partition replayed in other batches after a restart
	// would derive other units under the sequence numbers the account
	// stage has seen.
	if watermark := max(pt.buf.Released(), pt.ready()); ev.Time <= watermark || !pt.buf.AddEncoded(&ev, value, m.Offset) {
		s.m.events.WithLabelValues("late").Inc()
		pt.letters = append(pt.letters, stream.Letter{Source: eventRecord(m, value, &ev), Reason: "late",
			Err: fmt.Errorf("event time %s is at or behind the watermark %s (lateness %s)",
				time.Unix(ev.Time, 0).UTC().Format(time.RFC3339), time.Unix(watermark, 0).UTC().Format(time.RFC3339), s.cfg.Lateness)})
		return
	}
	*applied++
}

// eventRecord is the dead letter's source for one event of record m: m
// itself for a single-event record, else m's coordinates with the event's
// encoding as the value and, when it decoded, its customer as the key.
func eventRecord(m *kafka.Message, value []byte, ev *billing.Event) kafka.Message {
	if !wire.IsPacked(m.Value) {
		return *m
	}
	r := *m
	r.Value, r.Key = value, nil
	if ev != nil {
		r.Key = strconv.AppendUint(nil, ev.Customer, 10)
	}
	return r
}

// spillDir is where partition p's reorder buffer spills: its own folder,
// so that a new buffer of the partition removes only its stale files.
func (s *Stage) spillDir(topic string, p int) string {
	if s.cfg.BufferBytes == 0 {
		return ""
	}
	safe := strings.Map(func(r rune) rune {
		if r == '/' || r == os.PathSeparator || r == 0 {
			return '_'
		}
		return r
	}, topic)
	return filepath.Join(s.cfg.SpillDir, safe+"-"+strconv.Itoa(p))
}

// bufferFailed returns the reorder buffer's error (a spill file could not
// be written or read back). The buffer has then dropped events, so nothing
// it released in this batch may be written or checkpointed: the partition
// stops with the error, and its next owner replays from the last
// checkpoint, which still covers every event the buffer held.
func (s *Stage) bufferFailed(pt *part) error {
	err := pt.buf.Err()
	if err == nil {
		return nil
	}
	pt.units.Take()
	pt.rows.Take()
	pt.nUnits, pt.nRows, pt.letters = 0, 0, pt.letters[:0]
	pt.logger.Error("reorder buffer failed: the partition stops and is replayed from its last checkpoint", zap.Error(err))
	return fmt.Errorf("window partition %d: reorder buffer: %w", pt.id, err)
}

// Tick releases everything of a partition quiet for IdleFlush, so the tail
// of a stream is not held forever, and marks it idle for the account stage.
// With an Upstream it first waits until nothing produced upstream is still
// on its way to the partition.
func (s *Stage) Tick(ctx context.Context, topic string, p int) (int64, error) {
	pt := s.part(p)
	if pt.idle || s.now().Sub(pt.lastInput) < s.cfg.IdleFlush || !s.inputComplete(ctx, pt) {
		if pt.unsaved {
			// Quiet: the checkpoint the last batches left out.
			return s.flush(ctx, pt, true)
		}
		return -1, nil
	}
	if pt.buf.MaxSeen() > pt.buf.Released() {
		s.release(pt, pt.buf.MaxSeen())
	}
	if err := s.bufferFailed(pt); err != nil {
		return -1, err
	}
	pt.idle = true
	return s.flush(ctx, pt, true)
}

// upstreamTimeout bounds one question to the Upstream: a partition's Tick
// holds up its records meanwhile.
const upstreamTimeout = 5 * time.Second

// inputComplete reports whether the Upstream has nothing left for the
// partition. An idle flush is the one release that does not follow from the
// events: everything it passes is released, and events behind it are late.
// Quiet input alone does not show the end of the input: a stage upstream can
// be stalled (its partitions held by a member that died, for a session
// timeout) while the partition's other sources are drained.
func (s *Stage) inputComplete(ctx context.Context, pt *part) bool {
	if s.cfg.Upstream == nil {
		return true
	}
	// Ticks come every IdleFlush/20 or so: a partition held for a while
	// asks a tenth as often.
	now := s.now()
	if now.Before(pt.nextAsk) {
		return false
	}
	pt.nextAsk = now.Add(s.cfg.IdleFlush / 10)
	ctx, cancel := context.WithTimeout(ctx, upstreamTimeout)
	defer cancel()
	var pending int64
	var err error
	if pt.mark == nil {
		// What is produced from now on arrives after the partition was
		// quiet for IdleFlush: in real time it is newer than what the
		// partition holds, and waiting for it would hold a quiet
		// partition (and the account stage's merge) while others stay
		// busy.
		pt.mark, err = s.cfg.Upstream.Mark(ctx)
	}
	if err == nil {
		pending, err = s.cfg.Upstream.Pending(ctx, pt.mark, pt.id, pt.handled)
	}
	if err == nil && pending == 0 {
		return true
	}
	if !pt.held {
		pt.held = true
		if err != nil {
			pt.logger.Warn("idle flush waits: cannot tell whether records are still upstream", zap.Error(err))
		} else {
			pt.logger.Info("idle flush waits for records still upstream", zap.Int64("pending", pending))
		}
	}
	return false
}

// Revoked checkpoints a last time.
func (s *Stage) Revoked(ctx context.Context, topic string, p int) (int64, error) {
	pt := s.part(p)
	commit, err := int64(-1), s.bufferFailed(pt)
	if err == nil {
		commit, err = s.flush(ctx, pt, true)
	}
	if cerr := pt.buf.Close(); cerr != nil {
		pt.logger.Warn("removing the reorder buffer's spill files", zap.Error(cerr))
	}
	s.parts.Delete(p)
	s.m.keys.DeleteLabelValues(pt.label)
	s.m.stateBytes.DeleteLabelValues(pt.label)
	s.m.buffered.DeleteLabelValues(pt.label)
	s.m.spilled.DeleteLabelValues(pt.label)
	s.m.bufferBytes.DeleteLabelValues(pt.label)
	return commit, err
}

// sweepEvery is how much event time passes between evictions of idle keys.
// A key becomes idle at the earliest a message memory (at least 72h) after
// its last message, so a sweep every 6 hours keeps idle keys at most a few
// percent longer; a sweep reads every key, and an hourly one was 3% of the
// CPU of a replay (24 sweeps for a day) that evicted nothing.
const sweepEvery = 6 * 3600

// release applies every buffered event up to upTo to its key's state and
// queues what it derives.
func (s *Stage) release(pt *part, upTo int64) {
	pt.buf.Release(upTo, func(it *reorder.Item) {
		k := billing.KeyOf(&it.Event)
		pt.out.Reset()
		st, err := pt.states.Get(k)
		if err == nil {
			err = apply(pt.eng, st, &it.Event, &pt.out)
		}
		if err != nil {
			// A bug, not bad input: never stop the partition on it.
			// Dead-letter the event with its coordinates and go on.
			s.m.events.WithLabelValues("engine_failure").Inc()
			pt.logger.Error("billing engine failed on an event; dead-lettered", zap.Error(err),
				zap.Int64("offset", it.Offset), zap.Uint64("phone_number_id", k.PhoneNumberID), zap.String("message_id", it.Event.MessageID))
			pt.letters = append(pt.letters, stream.Letter{Reason: "engine_failure", Err: err,
				Source: kafka.Message{Topic: s.cfg.EventsTopic, Partition: pt.id, Offset: it.Offset,
					Key: strconv.AppendUint(nil, k.Customer, 10), Value: webhook.AppendEvent(nil, &it.Event)}})
			pt.out.Reset()
		}
		pt.dirty[k] = struct{}{}
		for i := range pt.out.Conversations {
			c := &pt.out.Conversations[i]
			// Keyed by the row's id: packed for the rows partition a
			// record with that key would get, where its copies meet.
			id := c.ID()
			pt.rowBuf = sink.AppendConversationRow(pt.rowBuf[:0], c, s.Accounts.Get(c.WABA).Portfolio)
			pt.rows.Add(id[:], pt.rowBuf)
			pt.nRows++
		}
		for i := range pt.out.Units {
			u := &pt.out.Units[i]
			pt.seq++
			// Keyed by portfolio: packed for the units partition a record
			// with that key would get.
			pt.unitKey = strconv.AppendUint(pt.unitKey[:0], s.Accounts.Get(u.WABA).Portfolio, 10)
			pt.unitBuf = wire.AppendUnit(pt.unitBuf[:0], int32(pt.id), pt.seq, u)
			pt.units.Add(pt.unitKey, pt.unitBuf)
			pt.nUnits++
		}
	})
	if d := pt.eng.Stats.UnknownKind - pt.unknownSeen; d > 0 {
		s.m.unknownKind.Add(float64(d))
		pt.unknownSeen = pt.eng.Stats.UnknownKind
	}
	released := pt.buf.Released()
	if released-pt.lastSweep >= sweepEvery {
		memory := pt.eng.MessageMemory()
		_, err := pt.states.Sweep(func(k billing.Key, st *billing.State) bool {
			if !st.Idle(released, memory) {
				return false
			}
			pt.dirty[k] = struct{}{}
			return true
		})
		if err != nil {
			// A bug: the key keeps its state, and the partition goes on.
			pt.logger.Error("idle sweep could not read states", zap.Error(err))
		}
		pt.lastSweep = released
	}
}

// apply runs the engine on one event, turning a panic into an error.
func apply(eng *billing.Engine, st *billing.State, ev *billing.Event, out *billing.Output) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("billing engine panic: %v", r)
		}
	}()
	eng.Apply(st, ev, out)
	return nil
}

// checkpointEvery is the least time between two checkpoints of a busy
// partition. A checkpoint writes every key the batches since the last one
// changed: in a backfill (dozens of batches a second) a customer's key is
// so written once for several batches instead of once per batch. The
// offset is committed only with a checkpoint, so a restart replays at most
// this much more.
const checkpointEvery = 250 * time.Millisecond

// flush makes everything released durable downstream, publishes the
// watermark, checkpoints (always with force; else at most once per
// checkpointEvery, and Tick writes the one left out once the partition is
// quiet), and returns the offset to commit (-1 without a checkpoint).
func (s *Stage) flush(ctx context.Context, pt *part, force bool) (int64, error) {
	if len(pt.letters) > 0 {
		if err := s.DLQ.Send(ctx, pt.letters...); err != nil {
			return -1, fmt.Errorf("window partition %d: dead letters: %w", pt.id, err)
		}
		pt.letters = pt.letters[:0]
	}
	// Units and rows first: a watermark must never overtake a unit it covers.
	if out := append(pt.rows.Take(), pt.units.Take()...); len(out) > 0 {
		if err := s.Producer.WriteMessages(ctx, out...); err != nil {
			return -1, fmt.Errorf("window partition %d: write units: %w", pt.id, err)
		}
		s.m.units.Add(float64(pt.nUnits))
		s.m.conversations.Add(float64(pt.nRows))
		pt.nRows, pt.nUnits = 0, 0
	}
	wm := pt.buf.Released()
	if pt.idle && pt.buf.Len() == 0 {
		wm = wire.Idle
	}
	if !pt.publishedOK || wm != pt.published {
		msgs := make([]kafka.Message, s.cfg.UnitsPartitions)
		for q := range msgs {
			msgs[q] = stream.WithPartition(kafka.Message{Topic: s.cfg.UnitsTopic, Value: wire.AppendWatermark(nil, int32(pt.id), wm)}, q)
		}
		if err := s.Producer.WriteMessages(ctx, msgs...); err != nil {
			return -1, fmt.Errorf("window partition %d: write watermark: %w", pt.id, err)
		}
		pt.published, pt.publishedOK = wm, true
	}
	if now := s.now(); force || now.Sub(pt.checkpointAt) >= checkpointEvery {
		if err := s.checkpoint(ctx, pt); err != nil {
			return -1, err
		}
		pt.checkpointAt, pt.unsaved = now, false
	} else {
		pt.unsaved = true
	}
	s.m.keys.WithLabelValues(pt.label).Set(float64(pt.states.Len()))
	s.m.stateBytes.WithLabelValues(pt.label).Set(float64(pt.states.Bytes()))
	s.m.buffered.WithLabelValues(pt.label).Set(float64(pt.buf.Len()))
	st := pt.buf.Stats()
	s.m.spilled.WithLabelValues(pt.label).Set(float64(st.SpilledEvents))
	s.m.bufferBytes.WithLabelValues(pt.label).Set(float64(st.MemoryBytes))
	if d := st.Spills - pt.spills; d > 0 {
		s.m.spills.Add(float64(d))
	}
	if d := st.WrittenBytes - pt.spillWritten; d > 0 {
		s.m.spillBytes.Add(float64(d))
	}
	pt.spills, pt.spillWritten = st.Spills, st.WrittenBytes
	if pt.unsaved {
		return -1, nil
	}
	if min := pt.buf.MinOffset(); min >= 0 {
		return min, nil
	}
	return pt.next, nil
}

// checkpoint writes the changed keys and the partition's positions to the
// changelog partition of the same number.
func (s *Stage) checkpoint(ctx context.Context, pt *part) error {
	msgs := make([]kafka.Message, 0, len(pt.dirty)+1)
	for k := range pt.dirty {
		key := append(pt.bytes.Begin(17), 's')
		key = binary.BigEndian.AppendUint64(key, k.PhoneNumberID)
		key = pt.bytes.End(binary.BigEndian.AppendUint64(key, k.Customer))
		// The store's binary form is immutable: the producer may hold it.
		value := pt.states.Binary(k)
		msgs = append(msgs, stream.WithPartition(kafka.Message{Topic: s.cfg.StateTopic, Key: key, Value: value}, pt.id))
	}
	replayFrom := pt.buf.MinOffset()
	if replayFrom < 0 {
		replayFrom = pt.next
	}
	c := checkpoint{released: pt.buf.Released(), maxSeen: pt.buf.MaxSeen(), seq: pt.seq,
		next: pt.next, replayFrom: replayFrom, lastSweep: pt.lastSweep,
		srcReady: pt.srcReady, allIdle: pt.allIdle, sources: pt.sources}
	msgs = append(msgs, stream.WithPartition(kafka.Message{Topic: s.cfg.StateTopic, Key: []byte{'m'}, Value: c.marshal()}, pt.id))
	if err := s.Producer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("window partition %d: checkpoint: %w", pt.id, err)
	}
	clear(pt.dirty)
	return nil
}

// restoreSources takes the source marks of a checkpoint: the watermark as
// of its offset, so that a replay judges late what was judged late before.
func (pt *part) restoreSources(c *checkpoint) {
	if len(c.sources) == 0 {
		return // a checkpoint before source marks, or of a partition without sources
	}
	pt.srcReady, pt.allIdle = c.srcReady, c.allIdle
	for _, r := range c.sources {
		*pt.source(r.topic, r.partition) = r
	}
	if !c.allIdle {
		// A source added to the configuration since holds the
		// watermark until its first mark.
		srcReady := pt.srcReady
		pt.recomputeSources()
		pt.srcReady = min(pt.srcReady, srcReady)
	}
}

// checkpoint is a partition's position: what it released, the unit
// sequence, where its input must be read again from, and the source marks.
type checkpoint struct {
	released, maxSeen int64
	seq               uint64
	next, replayFrom  int64
	lastSweep         int64
	// Version 2: source marks.
	srcReady int64
	allIdle  bool
	sources  []sourceMark
}

func (c *checkpoint) marshal() []byte {
	b := []byte{2}
	b = binary.AppendVarint(b, c.released)
	b = binary.AppendVarint(b, c.maxSeen)
	b = binary.AppendUvarint(b, c.seq)
	b = binary.AppendVarint(b, c.next)
	b = binary.AppendVarint(b, c.replayFrom)
	b = binary.AppendVarint(b, c.lastSweep)
	b = append(b, bits(len(c.sources) > 0, c.allIdle)) // bit 0: sources (read as their count)
	b = binary.AppendVarint(b, c.srcReady)
	b = binary.AppendUvarint(b, uint64(len(c.sources)))
	for i := range c.sources {
		sm := &c.sources[i]
		b = append(b, bits(sm.seen, sm.idle))
		b = binary.AppendUvarint(b, uint64(sm.partition))
		b = binary.AppendVarint(b, sm.mark)
		b = binary.AppendUvarint(b, uint64(len(sm.topic)))
		b = append(b, sm.topic...)
	}
	return b
}

// bits packs two flags: a in bit 0, b in bit 1.
func bits(a, b bool) byte {
	var f byte
	if a {
		f |= 1
	}
	if b {
		f |= 2
	}
	return f
}

func (c *checkpoint) unmarshal(b []byte) error {
	if len(b) == 0 || (b[0] != 1 && b[0] != 2) {
		return errors.New("window checkpoint: bad version")
	}
	version := b[0]
	b = b[1:]
	read := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			b = nil
			return 0
		}
		b = b[n:]
		return v
	}
	c.released = read()
	c.maxSeen = read()
	seq, n := binary.Uvarint(b)
	if n <= 0 {
		return errors.New("window checkpoint: truncated")
	}
	b = b[n:]
	c.seq = seq
	c.next = read()
	c.replayFrom = read()
	c.lastSweep = read()
	if b == nil {
		return errors.New("window checkpoint: truncated")
	}
	c.srcReady = math.MinInt64
	if version == 1 {
		return nil
	}
	truncated := errors.New("window checkpoint: truncated source marks")
	if len(b) == 0 {
		return truncated
	}
	flags := b[0]
	b = b[1:]
	c.allIdle = flags&2 != 0
	c.srcReady = read()
	count, k := binary.Uvarint(b)
	if b == nil || k <= 0 || count > uint64(len(b)) {
		return truncated
	}
	b = b[k:]
	c.sources = make([]sourceMark, 0, count)
	for range count {
		if len(b) == 0 {
			return truncated
		}
		f := b[0]
		b = b[1:]
		p, k := binary.Uvarint(b)
		if k <= 0 || p > math.MaxInt32 {
			return truncated
		}
		b = b[k:]
		mark := read()
		l, k := binary.Uvarint(b)
		if b == nil || k <= 0 || l > uint64(len(b)-k) {
			return truncated
		}
		topic := string(b[k : k+int(l)])
		b = b[k+int(l):]
		c.sources = append(c.sources, sourceMark{topic: topic, partition: int32(p), mark: mark, seen: f&1 != 0, idle: f&2 != 0})
	}
	if len(b) != 0 {
		return fmt.Errorf("window checkpoint: %d trailing bytes", len(b))
	}
	return nil
}
