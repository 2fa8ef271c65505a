package stream

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/wameter/wameter/pkg/testenv"
)

func TestProgressGroupLag(t *testing.T) {
	cfg := testConfig(testenv.Broker(t))
	topic := testTopic(t, "raw")
	ensureTopic(t, cfg, topic, 3)
	p := newTestProducer(t, cfg, ProducerConfig{})
	produceKeyed(t, p, topic, 0, 30)
	ends := endOffsets(t, cfg, topic, 3)
	progress, err := NewProgress(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	group := testTopic(t, "group")
	lag := func() int64 {
		t.Helper()
		ends, err := progress.EndOffsets(ctx, map[string]int{topic: 3})
		if err != nil {
			t.Fatal(err)
		}
		n, err := progress.GroupLag(ctx, group, ends)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := lag(); got != 30 {
		t.Errorf("a group that committed nothing: lag %d, want every record (30)", got)
	}
	client := newTestClient(t, cfg)
	commit := func(offsets map[int]int64) {
		t.Helper()
		var cs []kafka.OffsetCommit
		for q, o := range offsets {
			cs = append(cs, kafka.OffsetCommit{Partition: q, Offset: o})
		}
		resp, err := client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1, Topics: map[string][]kafka.OffsetCommit{topic: cs}})
		if err != nil {
			t.Fatal(err)
		}
		for _, ps := range resp.Topics {
			for _, r := range ps {
				if r.Error != nil {
					t.Fatalf("commit %s/%d: %v", topic, r.Partition, r.Error)
				}
			}
		}
	}
	commit(map[int]int64{0: ends[0]})
	if got, want := lag(), 30-ends[0]; got != want {
		t.Errorf("partition 0 committed to its end: lag %d, want %d", got, want)
	}
	commit(ends)
	if got := lag(); got != 0 {
		t.Errorf("every partition committed to its end: lag %d, want 0", got)
	}
	before, err := progress.EndOffsets(ctx, map[string]int{topic: 3})
	if err != nil {
		t.Fatal(err)
	}
	produceKeyed(t, p, topic, 30, 1)
	if got := lag(); got != 1 {
		t.Errorf("one record produced since: lag %d, want 1", got)
	}
	// Against the end offsets read before that record, nothing is behind.
	if got, err := progress.GroupLag(ctx, group, before); err != nil || got != 0 {
		t.Errorf("lag before the new record: %d, %v; want 0", got, err)
	}
	for q, want := range endOffsets(t, cfg, topic, 3) {
		if got, err := progress.EndOffset(ctx, topic, q); err != nil || got != want {
			t.Errorf("EndOffset(%d) = %d, %v; want %d", q, got, err, want)
		}
	}
}
