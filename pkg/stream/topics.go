package stream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// TopicSpec is a topic a component needs. Partitions and ReplicationFactor
// apply only when the topic is created: an existing topic keeps its layout.
type TopicSpec struct {
	Name              string            `yaml:"name"`
	Partitions        int               `yaml:"partitions"`
	ReplicationFactor int               `yaml:"replication_factor"`
	Configs           map[string]string `yaml:"configs"` // e.g. cleanup.policy: compact
}

// Validate reports every problem of s at once.
func (s TopicSpec) Validate() error {
	var errs []error
	if s.Name == "" {
		errs = append(errs, errors.New("topic name is empty"))
	}
	if s.Partitions < 1 {
		errs = append(errs, fmt.Errorf("topic %q: partitions %d, want at least 1", s.Name, s.Partitions))
	}
	if s.ReplicationFactor < 1 {
		errs = append(errs, fmt.Errorf("topic %q: replication factor %d, want at least 1", s.Name, s.ReplicationFactor))
	}
	return errors.Join(errs...)
}

// ensureTopicsBackoff bounds the wait between attempts of EnsureTopics.
var ensureTopicsBackoff = backoff{min: 200 * time.Millisecond, max: 5 * time.Second}

// EnsureTopics creates the topics of specs that do not exist yet and returns
// the partition count of every one of them, as the cluster has it (which is
// not the spec's for a topic created earlier with another count: callers
// that route by partition must use the returned count).
//
// It asks the controller (kafka-go Conn.CreateTopics), treats "already
// exists" as success, and waits until each topic shows up in the metadata
// with its partitions. While no broker answers, or the cluster answers with
// a temporary error, it retries with backoff until ctx ends; a final error
// (invalid config or replication factor, authorization) returns at once.
//
// Run it at start-up before any consumer or producer touches the topics:
// kafka-go's metadata requests ask the broker to auto-create unknown topics,
// and a broker with auto-creation on would create them with its defaults.
func EnsureTopics(ctx context.Context, cfg Config, specs []TopicSpec) (map[string]int, error) {
	var errs []error
	for _, s := range specs {
		errs = append(errs, s.Validate())
	}
	if err := errors.Join(append(errs, cfg.Validate())...); err != nil {
		return nil, fmt.Errorf("ensure topics: %w", err)
	}
	if len(specs) == 0 {
		return map[string]int{}, nil
	}
	dialer, err := cfg.Dialer()
	if err != nil {
		return nil, fmt.Errorf("ensure topics: %w", err)
	}
	bo := ensureTopicsBackoff
	for {
		counts, err := ensureTopicsOnce(ctx, dialer, cfg.brokerAddrs(), specs)
		if err == nil {
			return counts, nil
		}
		if !retriable(err) {
			return nil, fmt.Errorf("ensure topics: %w", err)
		}
		if !bo.wait(ctx) {
			return nil, fmt.Errorf("ensure topics: %w (last error: %w)", ctx.Err(), err)
		}
	}
}

// errTopicsPending means the topics were created but the metadata does not
// show them all yet.
var errTopicsPending = errors.New("topics not yet in metadata")

func ensureTopicsOnce(ctx context.Context, dialer *kafka.Dialer, brokers []string, specs []TopicSpec) (map[string]int, error) {
	conn, err := dialAny(ctx, dialer, brokers)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline(ctx, 15*time.Second)); err != nil {
		return nil, fmt.Errorf("set deadline: %w", err)
	}

	// Create every topic rather than only those missing from the metadata:
	// kafka-go's Conn metadata request asks for auto-creation, which on a
	// broker that allows it would create a missing topic with the broker's
	// defaults instead of the spec. CreateTopics of an existing topic is a
	// no-op.
	names := make([]string, 0, len(specs))
	topics := make([]kafka.TopicConfig, 0, len(specs))
	for _, s := range specs {
		names = append(names, s.Name)
		tc := kafka.TopicConfig{
			Topic:             s.Name,
			NumPartitions:     s.Partitions,
			ReplicationFactor: s.ReplicationFactor,
		}
		keys := make([]string, 0, len(s.Configs))
		for k := range s.Configs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: s.Configs[k]})
		}
		topics = append(topics, tc)
	}

	controller, err := conn.Controller()
	if err != nil {
		return nil, fmt.Errorf("find controller: %w", err)
	}
	cconn, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort(controller.Host, strconv.Itoa(controller.Port)))
	if err != nil {
		return nil, fmt.Errorf("dial controller: %w", err)
	}
	defer cconn.Close()
	if err := cconn.SetDeadline(deadline(ctx, 15*time.Second)); err != nil {
		return nil, fmt.Errorf("set deadline: %w", err)
	}
	if err := cconn.CreateTopics(topics...); err != nil {
		return nil, fmt.Errorf("create topics: %w", err)
	}

	counts, err := partitionCounts(conn, names)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if counts[n] == 0 {
			return nil, fmt.Errorf("topic %s: %w", n, errTopicsPending)
		}
	}
	return counts, nil
}

// partitionCounts reads the partition count of each topic; a topic that does
// not exist is absent from the map.
func partitionCounts(conn *kafka.Conn, topics []string) (map[string]int, error) {
	counts := make(map[string]int, len(topics))
	// One topic per request: kafka-go fails the whole metadata read when any
	// topic in it is unknown.
	for _, t := range topics {
		parts, err := conn.ReadPartitions(t)
		if errors.Is(err, kafka.UnknownTopicOrPartition) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read partitions of %s: %w", t, err)
		}
		for _, p := range parts {
			if p.Topic == t {
				counts[t]++
			}
		}
	}
	return counts, nil
}

func dialAny(ctx context.Context, dialer *kafka.Dialer, brokers []string) (*kafka.Conn, error) {
	var errs []error
	for _, b := range brokers {
		conn, err := dialer.DialContext(ctx, "tcp", b)
		if err == nil {
			return conn, nil
		}
		errs = append(errs, fmt.Errorf("dial %s: %w", b, err))
	}
	return nil, errors.Join(errs...)
}

// deadline is now+d, or ctx's deadline when that is earlier.
func deadline(ctx context.Context, d time.Duration) time.Time {
	dl := time.Now().Add(d)
	if ctxDL, ok := ctx.Deadline(); ok && ctxDL.Before(dl) {
		return ctxDL
	}
	return dl
}
