package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// Progress reads how far consumer groups have got: partitions' end offsets
// and groups' committed offsets. It is safe for concurrent use.
type Progress struct {
	client *kafka.Client
}

// NewProgress returns a Progress that asks the cluster of conn. It does not
// connect until asked.
func NewProgress(conn Config) (*Progress, error) {
	if err := conn.Validate(); err != nil {
		return nil, fmt.Errorf("new progress: %w", err)
	}
	transport, err := conn.Transport()
	if err != nil {
		return nil, fmt.Errorf("new progress: %w", err)
	}
	return &Progress{client: &kafka.Client{Addr: kafka.TCP(conn.brokerAddrs()...), Timeout: 10 * time.Second, Transport: transport}}, nil
}

// EndOffsets returns, for each topic (name → partition count), the offset
// the next record written to each of its partitions will get.
func (p *Progress) EndOffsets(ctx context.Context, topics map[string]int) (map[string][]int64, error) {
	req := &kafka.ListOffsetsRequest{Topics: make(map[string][]kafka.OffsetRequest, len(topics))}
	for topic, n := range topics {
		for q := range n {
			req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(q))
		}
	}
	got, err := p.listOffsets(ctx, req)
	if err != nil {
		return nil, err
	}
	ends := make(map[string][]int64, len(topics))
	for topic, n := range topics {
		ends[topic] = make([]int64, n)
		for q := range n {
			po, ok := got[topic][q]
			if !ok {
				return nil, fmt.Errorf("%s/%d: no offsets in answer", topic, q)
			}
			ends[topic][q] = po.LastOffset
		}
	}
	return ends, nil
}

// GroupLag returns how many records before ends (as EndOffsets returns
// them) group has not committed: the sum over the partitions of the end
// less the group's committed offset, or less the partition's first offset
// where the group has committed none (or does not exist). A record the
// group has committed has had its effect downstream (see Handler), so a
// lag of 0 means everything written before ends was processed.
func (p *Progress) GroupLag(ctx context.Context, group string, ends map[string][]int64) (int64, error) {
	fetch := &kafka.OffsetFetchRequest{GroupID: group, Topics: make(map[string][]int, len(ends))}
	list := &kafka.ListOffsetsRequest{Topics: make(map[string][]kafka.OffsetRequest, len(ends))}
	for topic, offsets := range ends {
		for q := range offsets {
			fetch.Topics[topic] = append(fetch.Topics[topic], q)
			list.Topics[topic] = append(list.Topics[topic], kafka.FirstOffsetOf(q))
		}
	}
	committed, err := p.client.OffsetFetch(ctx, fetch)
	if err != nil {
		return 0, fmt.Errorf("group %s committed offsets: %w", group, err)
	}
	// A group that does not exist yet has committed nothing.
	if committed.Error != nil && !errors.Is(committed.Error, kafka.GroupIdNotFound) {
		return 0, fmt.Errorf("group %s committed offsets: %w", group, committed.Error)
	}
	firsts, err := p.listOffsets(ctx, list)
	if err != nil {
		return 0, err
	}
	var lag int64
	for topic, offsets := range ends {
		got := make(map[int]int64, len(offsets))
		for _, po := range committed.Topics[topic] {
			if po.Error != nil {
				return 0, fmt.Errorf("group %s committed offset of %s/%d: %w", group, topic, po.Partition, po.Error)
			}
			got[po.Partition] = po.CommittedOffset
		}
		for q, end := range offsets {
			from, ok := got[q]
			if !ok || from < 0 {
				first, ok := firsts[topic][q]
				if !ok {
					return 0, fmt.Errorf("%s/%d: no offsets in answer", topic, q)
				}
				from = first.FirstOffset
			}
			lag += max(0, end-from)
		}
	}
	return lag, nil
}

// EndOffset returns the offset the next record written to the partition
// will get.
func (p *Progress) EndOffset(ctx context.Context, topic string, partition int) (int64, error) {
	got, err := p.listOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(partition)}}})
	if err != nil {
		return 0, err
	}
	po, ok := got[topic][partition]
	if !ok {
		return 0, fmt.Errorf("%s/%d: no offsets in answer", topic, partition)
	}
	return po.LastOffset, nil
}

func (p *Progress) listOffsets(ctx context.Context, req *kafka.ListOffsetsRequest) (map[string]map[int]kafka.PartitionOffsets, error) {
	resp, err := p.client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	out := make(map[string]map[int]kafka.PartitionOffsets, len(resp.Topics))
	for topic, parts := range resp.Topics {
		out[topic] = make(map[int]kafka.PartitionOffsets, len(parts))
		for _, po := range parts {
			if po.Error != nil {
				return nil, fmt.Errorf("list offsets of %s/%d: %w", topic, po.Partition, po.Error)
			}
			out[topic][po.Partition] = po
		}
	}
	return out, nil
}
