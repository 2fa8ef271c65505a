// Package normalize is the stateless first stage: it decodes Meta webhook
// bodies and BSP send records into canonical message events, keys each by
// the customer's wa_id (so all of a customer's events meet in one window
// partition) and dead-letters, with a reason, whatever cannot be decoded or
// keyed.
package normalize

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/stream"
	"github.com/wameter/wameter/pkg/webhook"
	"github.com/wameter/wameter/services/wameter/internal/slab"
)

// Config names the topics.
type Config struct {
	WebhooksTopic string
	SendsTopic    string
	EventsTopic   string
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	if c.WebhooksTopic == "" || c.SendsTopic == "" || c.EventsTopic == "" {
		return errors.New("normalize: a topic name is empty")
	}
	return nil
}

// Stage implements stream.Handler for the webhooks and sends topics.
type Stage struct {
	cfg      Config
	producer *stream.Producer
	dlq      *stream.DeadLetters
	logger   *zap.Logger
	records  *prometheus.CounterVec // topic, outcome
	events   *prometheus.CounterVec // kind
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
	}, nil
}

// Assigned starts at the committed offset: the stage has no state.
func (s *Stage) Assigned(ctx context.Context, topic string, p int, committed int64) (int64, error) {
	return committed, nil
}

var kindNames = map[billing.EventKind]string{billing.Inbound: "inbound", billing.Send: "send", billing.Status: "status"}

// Handle decodes a batch, writes its events and dead letters, and returns
// the next offset (everything before it is durable downstream).
func (s *Stage) Handle(ctx context.Context, topic string, p int, batch []kafka.Message) (int64, error) {
	var dec webhook.Decoder
	var evs []billing.Event
	out := make([]kafka.Message, 0, len(batch))
	// Keys and values of the batch share a few chunks instead of two
	// allocations per event.
	var bytes slab.Slab
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
			key := bytes.End(strconv.AppendUint(bytes.Begin(20), ev.Customer, 10))
			value := bytes.End(webhook.AppendEvent(bytes.Begin(webhook.EventSizeHint(ev)), ev))
			out = append(out, kafka.Message{Topic: s.cfg.EventsTopic, Key: key, Value: value})
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
	if len(out) > 0 {
		if err := s.producer.WriteMessages(ctx, out...); err != nil {
			return -1, fmt.Errorf("normalize %s/%d: write events: %w", topic, p, err)
		}
	}
	if len(letters) > 0 {
		if err := s.dlq.Send(ctx, letters...); err != nil {
			return -1, fmt.Errorf("normalize %s/%d: dead letters: %w", topic, p, err)
		}
	}
	return batch[len(batch)-1].Offset + 1, nil
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

// Tick has nothing to flush.
func (s *Stage) Tick(ctx context.Context, topic string, p int) (int64, error) { return -1, nil }

// Revoked has nothing to flush: every Handle wrote before returning.
func (s *Stage) Revoked(ctx context.Context, topic string, p int) (int64, error) { return -1, nil }
