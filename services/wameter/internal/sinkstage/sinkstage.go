// Package sinkstage consumes the rows topic and stores conversation and
// charge rows in ClickHouse through sink.Writer, committing a partition's
// offset only once its rows are stored (effectively once: see pkg/sink).
package sinkstage

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/sink"
	"github.com/wameter/wameter/pkg/stream"
	"github.com/wameter/wameter/services/wameter/internal/wire"
)

// Stage implements stream.Handler for the rows topic.
type Stage struct {
	writer *sink.Writer
	dlq    *stream.DeadLetters
	logger *zap.Logger

	// flushing counts Flushes in flight; skipped is set by a Handle that
	// left its due rows to the Flush in flight.
	flushing atomic.Int32
	skipped  atomic.Bool
}

// New returns the stage.
func New(writer *sink.Writer, dlq *stream.DeadLetters, logger *zap.Logger) (*Stage, error) {
	if writer == nil || dlq == nil || logger == nil {
		return nil, errors.New("sink stage: nil dependency")
	}
	return &Stage{writer: writer, dlq: dlq, logger: logger.Named("sink")}, nil
}

// Assigned reads back what ClickHouse holds of the partition and starts at
// the committed offset: rows stored already are skipped by the writer,
// whatever Kafka's committed offset says, and the rollup rows of the
// partition's last inserts that a kill cut off are inserted first.
// While ClickHouse is unreachable it retries with jittered backoff (the
// partition waits; the process stays up and reports not ready through the
// writer's health).
func (s *Stage) Assigned(ctx context.Context, topic string, p int, committed int64) (int64, error) {
	var res sink.Resumed
	for attempt := 0; ; attempt++ {
		var err error
		if res, err = s.writer.Resume(ctx, int32(p)); err == nil {
			break
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("sink partition %d: resume: %w", p, err)
		}
		wait := min(100*time.Millisecond<<min(attempt, 8), 10*time.Second)
		wait = wait/2 + time.Duration(rand.Int64N(int64(wait/2)+1))
		s.logger.Warn("resume from ClickHouse failed; retrying", zap.Int("partition", p), zap.Error(err), zap.Duration("in", wait))
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait):
		}
	}
	s.logger.Info("partition assigned", zap.Int("partition", p), zap.Int64("committed", committed),
		zap.Any("stored_max_offset", res.MaxOffset), zap.Int("recent_ids", res.RecentIDs),
		zap.Int("repaired_rollups", res.RepairedRollups))
	return committed, nil
}

// Handle batches the rows and stores them once the writer says an insert
// is due (see sink.Writer.Due): at once for a burst, about once per flush
// interval for a trickle. It returns the offset up to which rows are
// stored: rows batched but not yet stored are not committed.
func (s *Stage) Handle(ctx context.Context, topic string, p int, batch []kafka.Message) (int64, error) {
	var letters []stream.Letter
	var parts, rowParts []string
	var rows []sink.Row
	var err error
	for i := range batch {
		m := &batch[i]
		packed := wire.IsPacked(m.Value)
		// One copy of the record: the rows' strings are substrings of it.
		value := string(m.Value)
		if !packed {
			// A record of one row (a window or account before packed rows).
			parts = append(parts[:0], value)
		} else if parts, err = wire.SplitPackedString(value, parts[:0]); err != nil {
			letters = append(letters, stream.Letter{Source: *m, Reason: "bad_row", Err: err})
			continue
		}
		// A bad row of a packed record is dead-lettered alone: its own
		// bytes, the record's coordinates.
		bad := func(part string, err error) {
			source := *m
			if packed {
				source.Key, source.Value = nil, []byte(part)
			}
			letters = append(letters, stream.Letter{Source: source, Reason: "bad_row", Err: err})
		}
		rows, rowParts = rows[:0], rowParts[:0]
		for _, part := range parts {
			rows = append(rows, sink.Row{})
			if err := sink.DecodeRowString(part, &rows[len(rows)-1]); err != nil {
				rows = rows[:len(rows)-1]
				bad(part, err)
				continue
			}
			rowParts = append(rowParts, part)
		}
		s.writer.AddRecord(rows, int32(p), m.Offset, func(i int, err error) { bad(rowParts[i], err) })
	}
	if len(letters) > 0 {
		if err := s.dlq.Send(ctx, letters...); err != nil {
			return -1, fmt.Errorf("sink partition %d: dead letters: %w", p, err)
		}
	}
	next := batch[len(batch)-1].Offset + 1
	if s.writer.Pending() == 0 {
		// Everything was skipped as stored already (or dead-lettered).
		return s.flush(ctx, p, next)
	}
	due := s.writer.Due()
	if due && s.flushing.Load() > 0 && !s.writer.Full() {
		// An insert is in flight: do not wait for it, keep decoding (the
		// partition's next batches overlap with ClickHouse's work); the
		// Flush in flight stores these rows right after its own.
		s.skipped.Store(true)
		due = false
	}
	if !due {
		if off, ok := s.writer.Committable(int32(p)); ok {
			return off, nil
		}
		return -1, nil
	}
	return s.flush(ctx, p, next)
}

// maxRounds bounds how many times one flush stores the rows other
// partitions left to it: its own partition waits meanwhile.
const maxRounds = 4

func (s *Stage) flush(ctx context.Context, p int, next int64) (int64, error) {
	s.flushing.Add(1)
	defer s.flushing.Add(-1)
	s.skipped.Store(false) // this Flush stores what they left
	for round := 0; round == 0 || (round < maxRounds && s.skipped.Swap(false)); round++ {
		if err := s.writer.Flush(ctx); err != nil {
			return -1, fmt.Errorf("sink partition %d: %w", p, err)
		}
	}
	if off, ok := s.writer.Committable(int32(p)); ok {
		return max(off, next), nil
	}
	return next, nil
}

// Tick stores what other partitions' batches left pending.
func (s *Stage) Tick(ctx context.Context, topic string, p int) (int64, error) {
	if s.writer.Pending() == 0 {
		return -1, nil
	}
	if err := s.writer.Flush(ctx); err != nil {
		return -1, fmt.Errorf("sink partition %d: %w", p, err)
	}
	if off, ok := s.writer.Committable(int32(p)); ok {
		return off, nil
	}
	return -1, nil
}

// Revoked stores the partition's rows and forgets it.
func (s *Stage) Revoked(ctx context.Context, topic string, p int) (int64, error) {
	if err := s.writer.Flush(ctx); err != nil {
		return -1, fmt.Errorf("sink partition %d: %w", p, err)
	}
	off, ok := s.writer.Committable(int32(p))
	if err := s.writer.Release(int32(p)); err != nil {
		return -1, err
	}
	if !ok {
		return -1, nil
	}
	return off, nil
}
