package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/wameter/wameter/pkg/stream"
)

// A backfill on the default lateness (10m, which covers the corpus's 5
// minutes of disorder): both eras, a year apart, are in the input topics
// before the pipeline starts, and normalize reads its six input partitions
// at their own speeds, each far ahead of the others in event time. The
// windows' watermark follows the slowest input partition (source marks), so
// no event is late and the tables equal the reference derivation. With the
// highest event time seen as the watermark, the first partition read made
// the others' events late.
func TestPipelineBackfillOnDefaultLateness(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s := newStack(t)
	s.env = append(s.env, "WAMETER_LATENESS=10m")
	c := buildCorpus()
	want, _ := expected(t, c.records)
	// The input topics as the pipeline creates them (WAMETER_PARTITIONS=3),
	// so that the backlog is there before it starts.
	if _, err := stream.EnsureTopics(ctx, stream.Config{Brokers: []string{s.broker}}, []stream.TopicSpec{
		{Name: topic(s.prefix, "webhooks"), Partitions: 3, ReplicationFactor: 1},
		{Name: topic(s.prefix, "sends"), Partitions: 3, ReplicationFactor: 1},
	}); err != nil {
		t.Fatal(err)
	}
	s.produce(ctx, c.records, 1)
	s.waitSynced(s.start()) // the schemas are applied before the groups start
	waitFor(t, "all charges in ClickHouse", 3*time.Minute, func() bool {
		return s.count(ctx, "SELECT count() FROM charges") >= uint64(len(want.Charges))
	})
	time.Sleep(3 * time.Second) // anything extra would show now

	s.checkTables(ctx, want)
	reasons, total := s.deadLetters(ctx)
	if reasons["late"] != 0 || total != 3 {
		t.Errorf("%d dead letters (%v), want only the 3 malformed records and none late", total, reasons)
	}
}
