package stream

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// DefaultDeadLetterTopic is where poison records go unless configured
// otherwise.
const DefaultDeadLetterTopic = "whatsapp.dlq"

// Headers of a dead letter. The original record's headers follow them.
const (
	HeaderDLQReason          = "dlq_reason"           // machine reason: decode, no_key, late, ...
	HeaderDLQError           = "dlq_error"            // human message
	HeaderDLQSourceTopic     = "dlq_source_topic"     // topic of the original record
	HeaderDLQSourcePartition = "dlq_source_partition" // decimal
	HeaderDLQSourceOffset    = "dlq_source_offset"    // decimal
	HeaderDLQStage           = "dlq_stage"            // pipeline stage that gave up: normalize, window, ...
)

// maxDLQErrorBytes caps dlq_error: an error that embeds a whole payload
// must not make the dead letter too large to write.
const maxDLQErrorBytes = 4096

// reasonPattern keeps reasons (a metric label) short machine words.
var reasonPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// DeadLetterConfig configures DeadLetters.
type DeadLetterConfig struct {
	// Topic is the dead-letter topic. Default whatsapp.dlq.
	Topic string `yaml:"topic" env:"WAMETER_DLQ_TOPIC"`
	// Stage names the pipeline stage writing (normalize, window, account,
	// sink): header dlq_stage and the stage label of the counter.
	Stage string `yaml:"stage"`
}

// Validate reports every problem of c at once.
func (c *DeadLetterConfig) Validate() error {
	var errs []error
	if c.Stage == "" {
		errs = append(errs, errors.New("dead letters: stage is empty"))
	}
	return errors.Join(errs...)
}

// Letter is one record a stage gives up on.
type Letter struct {
	// Source is the record as consumed: its value and key are written
	// unchanged, and its topic, partition and offset go to headers.
	Source kafka.Message
	// Reason is a short machine word, stable across releases (it is a
	// metric label and what DLQ tooling filters on): [a-z0-9_.-], at most
	// 64 characters.
	Reason string
	// Err is the human explanation.
	Err error
}

// DeadLetters writes poison records to the dead-letter topic, synchronously
// and acknowledged by all in-sync replicas, so a handler can send a letter
// and then return the source offset for commit. Safe for concurrent use.
type DeadLetters struct {
	producer *Producer
	topic    string
	stage    string
	counter  *prometheus.CounterVec // stage, reason
}

// NewDeadLetters builds DeadLetters writing through producer (which it does
// not own: close the producer after the last Send). reg must not be nil.
func NewDeadLetters(producer *Producer, cfg DeadLetterConfig, reg prometheus.Registerer) (*DeadLetters, error) {
	if producer == nil {
		return nil, errors.New("new dead letters: nil producer")
	}
	if reg == nil {
		return nil, errors.New("new dead letters: nil registerer")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new dead letters: %w", err)
	}
	topic := cfg.Topic
	if topic == "" {
		topic = DefaultDeadLetterTopic
	}
	counter, err := register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "wameter", Subsystem: "stream",
		Name: "dead_letters_total",
		Help: "Records written to the dead-letter topic.",
	}, []string{"stage", "reason"}))
	if err != nil {
		return nil, fmt.Errorf("new dead letters: %w", err)
	}
	return &DeadLetters{producer: producer, topic: topic, stage: cfg.Stage, counter: counter}, nil
}

// Topic is the dead-letter topic written to.
func (d *DeadLetters) Topic() string { return d.topic }

// Send writes the letters and returns once all are acknowledged (retrying
// as Producer.WriteMessages does until ctx ends). Only then may the caller
// commit past their source offsets.
func (d *DeadLetters) Send(ctx context.Context, letters ...Letter) error {
	msgs := make([]kafka.Message, 0, len(letters))
	for _, l := range letters {
		m, err := deadLetterMessage(d.topic, d.stage, l)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	if err := d.producer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("send %d dead letters: %w", len(msgs), err)
	}
	for _, l := range letters {
		d.counter.WithLabelValues(d.stage, l.Reason).Inc()
	}
	return nil
}

// deadLetterMessage builds the dead-letter record for l.
func deadLetterMessage(topic, stage string, l Letter) (kafka.Message, error) {
	if !reasonPattern.MatchString(l.Reason) {
		return kafka.Message{}, fmt.Errorf("dead letter reason %q: want [a-z0-9_.-], at most 64 characters", l.Reason)
	}
	human := ""
	if l.Err != nil {
		human = l.Err.Error()
	}
	if len(human) > maxDLQErrorBytes {
		human = strings.ToValidUTF8(human[:maxDLQErrorBytes], "")
	}
	headers := make([]kafka.Header, 0, 6+len(l.Source.Headers))
	headers = append(headers,
		kafka.Header{Key: HeaderDLQReason, Value: []byte(l.Reason)},
		kafka.Header{Key: HeaderDLQError, Value: []byte(human)},
		kafka.Header{Key: HeaderDLQSourceTopic, Value: []byte(l.Source.Topic)},
		kafka.Header{Key: HeaderDLQSourcePartition, Value: []byte(strconv.Itoa(l.Source.Partition))},
		kafka.Header{Key: HeaderDLQSourceOffset, Value: []byte(strconv.FormatInt(l.Source.Offset, 10))},
		kafka.Header{Key: HeaderDLQStage, Value: []byte(stage)},
	)
	headers = append(headers, l.Source.Headers...)
	return kafka.Message{
		Topic:   topic,
		Key:     l.Source.Key,
		Value:   l.Source.Value,
		Headers: headers,
	}, nil
}
