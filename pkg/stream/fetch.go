package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// fetcher fetches one partition for openReader.
type fetcher struct {
	client    *kafka.Client
	cfg       ConsumerConfig
	topic     string
	partition int
	records   chan<- kafka.Message
	logger    *zap.Logger
	errors    prometheus.Counter

	chunk []byte // keys and values of the records handed over share it
}

// fetchChunk is the size of the allocations keys and values are copied
// into: the messages of one fetch response share a few of them.
const fetchChunk = 256 << 10

// run fetches from offset until ctx ends (nil) or an error no retry can
// fix.
func (f *fetcher) run(ctx context.Context, offset int64) error {
	bo := backoff{min: 100 * time.Millisecond, max: time.Second}
	for {
		next, err := f.fetch(ctx, offset)
		offset = next
		if err == nil {
			bo.reset()
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		f.errors.Inc()
		if errors.Is(err, kafka.OffsetOutOfRange) {
			first, last, lerr := f.bounds(ctx)
			switch {
			case lerr != nil:
				err = fmt.Errorf("%w (then the partition's offsets: %w)", err, lerr)
			case offset < first:
				f.logger.Error("fetch offset fell off the log (retention deleted records this group had not read): skipping to its start",
					zap.Int64("offset", offset), zap.Int64("first", first), zap.Int64("skipped", first-offset))
				offset = first
				continue
			case offset > last:
				// The log ends before what this group committed: it was
				// truncated or recreated. Nothing is skipped silently: the
				// partition waits, and says so at every attempt.
				f.logger.Error("fetch offset is beyond the end of the log (topic truncated or recreated?); waiting",
					zap.Int64("offset", offset), zap.Int64("first", first), zap.Int64("last", last))
			}
			// offset < last: records have come since; retry after a
			// backoff, not in a tight loop if the broker keeps refusing.
		} else if !retriable(err) {
			return err
		}
		// Once per failure, not per attempt: a broker restart logs one
		// line per partition and then one per backoff.
		f.logger.Warn("fetch failed, retrying", zap.Int64("offset", offset), zap.Int("attempt", bo.attempt+1), zap.Error(err))
		if !bo.wait(ctx) {
			return nil
		}
	}
}

// fetch sends one fetch request from offset and hands the records over; it
// returns the offset to fetch next.
func (f *fetcher) fetch(ctx context.Context, offset int64) (int64, error) {
	// The broker holds the request up to MaxWait; the rest bounds a
	// connection that hangs.
	rctx, cancel := context.WithTimeout(ctx, f.cfg.MaxWait+10*time.Second)
	defer cancel()
	res, err := f.client.Fetch(rctx, &kafka.FetchRequest{
		Topic:     f.topic,
		Partition: f.partition,
		Offset:    offset,
		MinBytes:  int64(f.cfg.MinBytes),
		MaxBytes:  int64(f.cfg.MaxBytes),
		MaxWait:   f.cfg.MaxWait,
	})
	if err != nil {
		return offset, timedOut(ctx, err)
	}
	if c, ok := res.Records.(io.Closer); ok {
		defer c.Close()
	}
	if res.Error != nil {
		return offset, res.Error
	}
	for {
		r, err := res.Records.ReadRecord()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return offset, nil
			}
			return offset, fmt.Errorf("read records at %d: %w", offset, err)
		}
		if r.Offset < offset {
			// A compressed batch comes whole, from before the offset
			// asked for.
			continue
		}
		m := kafka.Message{
			Topic:         f.topic,
			Partition:     f.partition,
			Offset:        r.Offset,
			HighWaterMark: res.HighWatermark,
			Time:          r.Time,
		}
		if m.Key, err = f.copy(r.Key); err == nil {
			m.Value, err = f.copy(r.Value)
		}
		if err != nil {
			return offset, fmt.Errorf("read record %d: %w", r.Offset, err)
		}
		if len(r.Headers) > 0 {
			m.Headers = make([]kafka.Header, len(r.Headers))
			for i, h := range r.Headers {
				m.Headers[i] = kafka.Header{Key: h.Key, Value: append([]byte(nil), h.Value...)}
			}
		}
		select {
		case f.records <- m:
		default:
			select {
			case f.records <- m:
			case <-ctx.Done():
				return offset, ctx.Err()
			}
		}
		offset = r.Offset + 1
	}
}

// copy reads b into the current chunk (nil for a nil b).
func (f *fetcher) copy(b kafka.Bytes) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	defer b.Close()
	n := b.Len()
	if cap(f.chunk)-len(f.chunk) < n {
		f.chunk = make([]byte, 0, max(n, fetchChunk))
	}
	start := len(f.chunk)
	f.chunk = f.chunk[:start+n]
	if _, err := io.ReadFull(b, f.chunk[start:]); err != nil {
		return nil, err
	}
	return f.chunk[start : start+n : start+n], nil
}

// bounds returns the partition's first offset and its end (the offset the
// next record will get).
func (f *fetcher) bounds(ctx context.Context) (first, end int64, err error) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := f.client.ListOffsets(rctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		f.topic: {kafka.FirstOffsetOf(f.partition), kafka.LastOffsetOf(f.partition)},
	}})
	if err != nil {
		return 0, 0, err
	}
	for _, po := range res.Topics[f.topic] {
		if po.Partition != f.partition {
			continue
		}
		if po.Error != nil {
			return 0, 0, po.Error
		}
		return po.FirstOffset, po.LastOffset, nil
	}
	return 0, 0, fmt.Errorf("%s/%d: no offsets in answer", f.topic, f.partition)
}
