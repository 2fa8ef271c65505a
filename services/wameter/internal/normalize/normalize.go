// Package normalize is the stateless first stage: it decodes Meta webhook
// bodies and BSP send records into canonical message events, puts each in
// the events partition of the customer's wa_id (so all of a customer's
// events meet in one window partition; packed, wire.IsPacked) and
// dead-letters, with a reason, whatever cannot be decoded or keyed. After
// the events of each batch it writes a source mark (the highest event time
// read from that input partition so far) to every events partition, and
// marks an input partition idle once it has been quiet at its end for
// IdleAfter: the window's watermark follows its slowest source.
package normalize

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/stream"
	"github.com/wameter/wameter/pkg/webhook"
	"github.com/wameter/wameter/services/wameter/internal/wire"
)

// Config names the topics.
type Config struct {
	WebhooksTopic string
	SendsTopic    string
	EventsTopic   string
	// EventsPartitions is the partition count of EventsTopic: every one
	// gets the source marks.
	EventsPartitions int
	// IdleAfter: an input partition with no new records for this long
	// (wall clock), read to its end, is marked idle.
	IdleAfter time.Duration
	// Ends tells whether an input partition was read to its end.
	Ends EndOffsets
}

// EndOffsets returns the offset the next record written to a partition
// will get (stream.Progress).
type EndOffsets interface {
	EndOffset(ctx context.Context, topic string, partition int) (int64, error)
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.WebhooksTopic == "" || c.SendsTopic == "" || c.EventsTopic == "" {
		errs = append(errs, errors.New("normalize: a topic name is empty"))
	}
	if c.EventsPartitions <= 0 {
		errs = append(errs, errors.New("normalize: events partitions must be positive"))
	}
	if c.IdleAfter <= 0 {
		errs = append(errs, errors.New("normalize: idle after must be positive"))
	}
	if c.Ends == nil {
		errs = append(errs, errors.New("normalize: no end offsets"))
	}
	return errors.Join(errs...)
}

// Stage implements stream.Handler for the webhooks and sends topics.
type Stage struct {
	cfg      Config
	producer *stream.Producer
	dlq      *stream.DeadLetters
	logger   *zap.Logger
	records  *prometheus.CounterVec // topic, outcome
	events   *prometheus.CounterVec // kind
	idle     prometheus.Counter
	now      func() time.Time

	mu      sync.Mutex
	sources map[source]*sourceState
}

type source struct {
	topic     string
	partition int
}

// sourceState is one input partition's progress; only its partition's
// goroutine touches it.
type sourceState struct {
	maxTime  int64 // highest event time read (math.MinInt64: none yet)
	sent     int64 // the last mark written
	sentAt   time.Time
	next     int64 // next offset to read
	last     time.Time
	idle     bool // an idle mark was written, and no records since
	endAsked time.Time
}

// New returns the stage.
func New(cfg Config, producer *stream.Producer, dlq *stream.DeadLetters, logger *zap.Logger, reg prometheus.Registerer) (*Stage, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if producer == nil || dlq == nil || logger == nil || reg == nil {
		return nil, errors.New("normalize: nil dependency")
	}
	f := promauto.With(reg)
	return &Stage{cfg: cfg, producer: producer, dlq: dlq, logger: logger.Named("normalize"),
		records: f.NewCounterVec(prometheus.CounterOpts{Name: "wameter_normalize_records_total",
			Help: "Input records by topic and outcome (ok, dead_letter)."}, []string{"topic", "outcome"}),
		events: f.NewCounterVec(prometheus.CounterOpts{Name: "wameter_normalize_events_total",
			Help: "Canonical events emitted by kind (inbound, send, status)."}, []string{"kind"}),
		idle: f.NewCounter(prometheus.CounterOpts{Name: "wameter_normalize_idle_marks_total",
			Help: "Input partitions marked idle (quiet at their end for the idle flush interval)."}),
		now:     time.Now,
		sources: make(map[source]*sourceState),
	}, nil
}

func (s *Stage) source(topic string, p int) *sourceState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sources[source{topic, p}]
}

// Assigned starts at the committed offset: the stage keeps no state but a
// partition's progress, which starts again from what it reads (a window
// keeps the highest mark it got from each source).
func (s *Stage) Assigned(ctx context.Context, topic string, p int, committed int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sources[source{topic, p}] = &sourceState{maxTime: math.MinInt64, sent: math.MinInt64, next: committed, last: s.now()}
	return committed, nil
}

var kindNames = map[billing.EventKind]string{billing.Inbound: "inbound", billing.Send: "send", billing.Status: "status"}

// Handle decodes a batch, writes its events and dead letters, and returns
// the next offset (everything before it is durable downstream).
func (s *Stage) Handle(ctx context.Context, topic string, p int, batch []kafka.Message) (int64, error) {
	src := s.source(topic, p)
	var dec webhook.Decoder
	var evs []billing.Event
	// The batch's events go out packed per events partition (wire.IsPacked),
	// in order, in records of about wire.PackTarget bytes.
	packs := wire.NewPacker(s.cfg.EventsTopic, s.cfg.EventsPartitions)
	var key, encoded []byte
	var ok int
	var kinds [billing.Status + 1]int
	var letters []stream.Letter
	for i := range batch {
		m := &batch[i]
		var err error
		evs = evs[:0]
		switch topic {
		case s.cfg.SendsTopic:
			evs, err = dec.DecodeSend(m.Value, evs)
		default:
			evs, err = dec.DecodeWebhook(m.Value, headers(m.Headers), evs)
		}
		if err != nil {
			reason := "invalid"
			var we *webhook.Error
			if errors.As(err, &we) {
				reason = string(we.Reason)
			}
			letters = append(letters, stream.Letter{Source: *m, Reason: reason, Err: err})
			continue
		}
		ok++
		for j := range evs {
			ev := &evs[j]
			src.maxTime = max(src.maxTime, ev.Time)
			// In the partition a record keyed by the customer would get:
			// a customer's events meet in one window partition, whichever
			// normalize (packed or not) wrote them.
			key = strconv.AppendUint(key[:0], ev.Customer, 10)
			encoded = webhook.AppendEvent(encoded[:0], ev)
			packs.Add(key, encoded)
			if int(ev.Kind) < len(kinds) {
				kinds[ev.Kind]++
			} else {
				s.events.WithLabelValues(kindNames[ev.Kind]).Inc()
			}
		}
	}
	// Counted once per batch: a labelled counter's lookup costs more than
	// the rest of the loop for a small event.
	if ok > 0 {
		s.records.WithLabelValues(topic, "ok").Add(float64(ok))
	}
	if len(letters) > 0 {
		s.records.WithLabelValues(topic, "dead_letter").Add(float64(len(letters)))
	}
	for kind, n := range kinds {
		if n > 0 {
			s.events.WithLabelValues(kindNames[billing.EventKind(kind)]).Add(float64(n))
		}
	}
	if out := packs.Take(); len(out) > 0 {
		if err := s.producer.WriteMessages(ctx, out...); err != nil {
			return -1, fmt.Errorf("normalize %s/%d: write events: %w", topic, p, err)
		}
	}
	if len(letters) > 0 {
		if err := s.dlq.Send(ctx, letters...); err != nil {
			return -1, fmt.Errorf("normalize %s/%d: dead letters: %w", topic, p, err)
		}
	}
	// The mark goes out after the events it covers are written: a window
	// partition reads it after them. At most one per markEvery while the
	// source is busy (Tick writes the last one): small batches would
	// otherwise add a record to every events partition per batch.
	now := s.now()
	if src.idle || now.Sub(src.sentAt) >= markEvery {
		if err := s.markActive(ctx, topic, p, src, now); err != nil {
			return -1, err
		}
	}
	src.next, src.last = batch[len(batch)-1].Offset+1, now
	return src.next, nil
}

// markEvery is the least time between two marks of a busy source.
const markEvery = 100 * time.Millisecond

// markActive writes the source's mark if it has one that is not written
// yet, or if the source was marked idle.
func (s *Stage) markActive(ctx context.Context, topic string, p int, src *sourceState, now time.Time) error {
	if src.maxTime == math.MinInt64 || (src.maxTime == src.sent && !src.idle) {
		return nil
	}
	if err := s.writeMark(ctx, &wire.SourceMark{Topic: topic, Partition: int32(p), Mark: src.maxTime}); err != nil {
		return err
	}
	src.sent, src.sentAt, src.idle = src.maxTime, now, false
	return nil
}

// writeMark writes a source mark to every events partition.
func (s *Stage) writeMark(ctx context.Context, m *wire.SourceMark) error {
	v := wire.AppendSourceMark(nil, m)
	msgs := make([]kafka.Message, s.cfg.EventsPartitions)
	for q := range msgs {
		msgs[q] = stream.WithPartition(kafka.Message{Topic: s.cfg.EventsTopic, Value: v}, q)
	}
	if err := s.producer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("normalize %s/%d: write source mark: %w", m.Topic, m.Partition, err)
	}
	return nil
}

func headers(hs []kafka.Header) webhook.Headers {
	var h webhook.Headers
	for _, x := range hs {
		switch x.Key {
		case "phone_number_id":
			h.PhoneNumberID = string(x.Value)
		case "waba_id":
			h.WABA = string(x.Value)
		}
	}
	return h
}

// endTimeout bounds one question for a partition's end offset.
const endTimeout = 5 * time.Second

// Tick writes the source's mark that Handle held back, and marks the
// partition idle once it has had no records for IdleAfter
// and has been read to its end: until it has records again, the windows do
// not wait for it. Only quiet at the end counts: a partition that cannot
// be read (a broker outage) still has records, and they must not be late.
func (s *Stage) Tick(ctx context.Context, topic string, p int) (int64, error) {
	src := s.source(topic, p)
	now := s.now()
	if src == nil || src.idle {
		return -1, nil
	}
	// A mark Handle held back goes out once the source is quiet.
	if err := s.markActive(ctx, topic, p, src, now); err != nil {
		return -1, err
	}
	if now.Sub(src.last) < s.cfg.IdleAfter || now.Before(src.endAsked) {
		return -1, nil
	}
	src.endAsked = now.Add(s.cfg.IdleAfter / 10)
	actx, cancel := context.WithTimeout(ctx, endTimeout)
	end, err := s.cfg.Ends.EndOffset(actx, topic, p)
	cancel()
	if err != nil {
		s.logger.Warn("cannot tell whether an input partition was read to its end; not marked idle",
			zap.String("topic", topic), zap.Int("partition", p), zap.Error(err))
		return -1, nil
	}
	if end > src.next {
		return -1, nil
	}
	if err := s.writeMark(ctx, &wire.SourceMark{Topic: topic, Partition: int32(p), Mark: src.maxTime, Idle: true}); err != nil {
		return -1, err
	}
	src.idle = true
	s.idle.Inc()
	return -1, nil
}

// Revoked forgets the partition: every Handle wrote before returning.
func (s *Stage) Revoked(ctx context.Context, topic string, p int) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sources, source{topic, p})
	return -1, nil
}
