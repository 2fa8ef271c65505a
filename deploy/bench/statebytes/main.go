// Command statebytes is a helper of deploy/bench/e2e.sh: it reads a
// compacted changelog topic from its first offset to its end, keeps the
// latest record of each key as compaction would, and prints
//
//	keys=<live keys> bytes=<key+value bytes of the live records> records=<records read>
//
// Keys whose latest value is empty (deleted) are not live. It measures the
// serialized checkpoint, not the in-memory size of the state.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/segmentio/kafka-go"
)

func main() {
	broker := flag.String("broker", "127.0.0.1:9092", "broker `ADDR`")
	topic := flag.String("topic", "wameter.window-state", "changelog `TOPIC`")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := run(ctx, *broker, *topic); err != nil {
		fmt.Fprintf(os.Stderr, "statebytes: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, broker, topic string) error {
	conn, err := kafka.DialContext(ctx, "tcp", broker)
	if err != nil {
		return err
	}
	partitions, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		return fmt.Errorf("partitions of %s: %w", topic, err)
	}
	latest := map[string]int{} // key → len(key)+len(value) of its latest record
	records := 0
	for _, p := range partitions {
		n, err := readPartition(ctx, broker, topic, p.ID, latest)
		records += n
		if err != nil {
			return err
		}
	}
	keys, bytes := 0, 0
	for _, size := range latest {
		if size > 0 {
			keys++
			bytes += size
		}
	}
	fmt.Printf("keys=%d bytes=%d records=%d\n", keys, bytes, records)
	return nil
}

// readPartition records in latest the size of each key's last record in
// partition (0 for a deletion) and returns how many records it read. Keys
// are prefixed with the partition: the same key may live in two partitions.
func readPartition(ctx context.Context, broker, topic string, partition int, latest map[string]int) (int, error) {
	conn, err := kafka.DialLeader(ctx, "tcp", broker, topic, partition)
	if err != nil {
		return 0, fmt.Errorf("%s/%d: dial leader: %w", topic, partition, err)
	}
	first, last, err := conn.ReadOffsets()
	conn.Close()
	if err != nil {
		return 0, fmt.Errorf("%s/%d: read offsets: %w", topic, partition, err)
	}
	if last <= first {
		return 0, nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: []string{broker}, Topic: topic, Partition: partition,
		MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 250 * time.Millisecond,
	})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return 0, err
	}
	prefix := fmt.Sprintf("%d/", partition)
	for n := 1; ; n++ {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return n - 1, fmt.Errorf("%s/%d: read at %d: %w", topic, partition, r.Offset(), err)
		}
		size := 0
		if len(m.Value) > 0 {
			size = len(m.Key) + len(m.Value)
		}
		latest[prefix+string(m.Key)] = size
		if m.Offset >= last-1 {
			return n, nil
		}
	}
}
