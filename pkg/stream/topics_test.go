package stream

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/wameter/wameter/pkg/testenv"
)

func TestEnsureTopicsCreatesIdempotentlyAndReportsPartitions(t *testing.T) {
	cfg := testConfig(testenv.Broker(t))
	events, changelog := testTopic(t, "events"), testTopic(t, "changelog")
	specs := []TopicSpec{
		{Name: events, Partitions: 4, ReplicationFactor: 1},
		{Name: changelog, Partitions: 2, ReplicationFactor: 1, Configs: map[string]string{"cleanup.policy": "compact"}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	counts, err := EnsureTopics(ctx, cfg, specs)
	if err != nil {
		t.Fatal(err)
	}
	if counts[events] != 4 || counts[changelog] != 2 || len(counts) != 2 {
		t.Fatalf("counts %v, want %s=4 %s=2", counts, events, changelog)
	}

	// Again, asking for more partitions: the existing layout is reported.
	specs[0].Partitions = 8
	counts, err = EnsureTopics(ctx, cfg, specs)
	if err != nil {
		t.Fatalf("second EnsureTopics: %v", err)
	}
	if counts[events] != 4 || counts[changelog] != 2 {
		t.Fatalf("counts after second call %v, want the existing 4 and 2", counts)
	}

	client := newTestClient(t, cfg)
	resp, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: changelog, ConfigNames: []string{"cleanup.policy"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	var policy string
	for _, r := range resp.Resources {
		for _, e := range r.ConfigEntries {
			if e.ConfigName == "cleanup.policy" {
				policy = e.ConfigValue
			}
		}
	}
	if policy != "compact" {
		t.Errorf("cleanup.policy of %s = %q, want compact", changelog, policy)
	}
}

func TestEnsureTopicsRetriesUntilContextEnds(t *testing.T) {
	cfg := testConfig(freeAddr(t)) // nothing listens there
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	started := time.Now()
	_, err := EnsureTopics(ctx, cfg, []TopicSpec{{Name: "t", Partitions: 1, ReplicationFactor: 1}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("EnsureTopics = %v, want the context's deadline", err)
	}
	if elapsed := time.Since(started); elapsed < 600*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("returned after %s, want about the context's 700ms", elapsed)
	}
}

func TestEnsureTopicsRejectsBadSpecs(t *testing.T) {
	_, err := EnsureTopics(context.Background(), testConfig("127.0.0.1:1"), []TopicSpec{{Name: "", Partitions: 0}})
	if err == nil {
		t.Fatal("EnsureTopics accepted a spec without name, partitions or replication factor")
	}
}
