package stream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// openFunc starts fetching one partition at an absolute offset. It returns
// the records in offset order, a channel that carries at most one final
// fetch error, and a function that stops fetching and waits until it has.
type openFunc func(topic string, partition int, start int64, logger *zap.Logger) (records <-chan kafka.Message, fatal <-chan error, stop func())

// partitionWorker calls the Handler for one assigned partition. Everything
// it does happens on the goroutine that calls run.
type partitionWorker struct {
	topic     string
	partition int
	handler   Handler
	cfg       ConsumerConfig
	logger    *zap.Logger
	commits   *committer

	lag           prometheus.Gauge
	records       prometheus.Counter
	batches       prometheus.Counter
	forgetMetrics func()
}

func (c *Consumer) newPartitionWorker(topic string, partition int, commits *committer, logger *zap.Logger) *partitionWorker {
	p := strconv.Itoa(partition)
	group := c.cfg.GroupID
	return &partitionWorker{
		topic:     topic,
		partition: partition,
		handler:   c.handler,
		cfg:       c.cfg,
		logger:    logger.With(zap.String("topic", topic), zap.Int("partition", partition)),
		commits:   commits,
		lag:       c.metrics.lag.WithLabelValues(group, topic, p),
		records:   c.metrics.records.WithLabelValues(group, topic, p),
		batches:   c.metrics.batches.WithLabelValues(group, topic, p),
		// A partition that moved to another member must not report a
		// stale lag from here.
		forgetMetrics: func() { c.metrics.lag.DeleteLabelValues(group, topic, p) },
	}
}

// handlerError marks an error returned by the Handler, after which the
// partition gets no more calls (not even Revoked).
type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }
func (e *handlerError) Unwrap() error { return e.err }

// run drives the partition from assignment to revocation: Assigned, fetch
// from the offset it returns, Handle and Tick until stopCtx ends, then
// Revoked and the final commit. Handler calls get handlerCtx, which outlives
// stopCtx so that Revoked can finish the partition's work.
func (w *partitionWorker) run(stopCtx, handlerCtx context.Context, committed int64, open openFunc) error {
	defer w.forgetMetrics()
	start, err := w.handler.Assigned(handlerCtx, w.topic, w.partition, committed)
	if err != nil {
		return fmt.Errorf("assigned %s/%d: %w", w.topic, w.partition, err)
	}
	if start < 0 {
		return fmt.Errorf("assigned %s/%d: start offset %d, want an absolute offset", w.topic, w.partition, start)
	}
	w.logger.Debug("partition assigned", zap.Int64("committed", committed), zap.Int64("start", start))

	records, fatal, stopFetch := open(w.topic, w.partition, start, w.logger)
	loopErr := w.loop(stopCtx, handlerCtx, records, fatal)
	stopFetch()
	var herr *handlerError
	if errors.As(loopErr, &herr) {
		return loopErr
	}

	final, err := w.handler.Revoked(handlerCtx, w.topic, w.partition)
	if err != nil {
		return errors.Join(loopErr, fmt.Errorf("revoked %s/%d: %w", w.topic, w.partition, err))
	}
	if final >= 0 {
		w.commits.set(w.topic, w.partition, final)
	}
	w.logger.Debug("partition revoked", zap.Int64("commit", final))
	return loopErr
}

// loop batches records for Handle and calls Tick when the partition is
// idle, until stopCtx ends (nil), the handler fails (*handlerError) or the
// fetch fails for good.
func (w *partitionWorker) loop(stopCtx, handlerCtx context.Context, records <-chan kafka.Message, fatal <-chan error) error {
	batchDue := time.NewTimer(w.cfg.BatchWait)
	batchDue.Stop()
	defer batchDue.Stop()
	idle := time.NewTimer(w.cfg.IdleInterval)
	defer idle.Stop()

	var batch []kafka.Message
	flush := func() error {
		batchDue.Stop()
		last := batch[len(batch)-1]
		commit, err := w.handler.Handle(handlerCtx, w.topic, w.partition, batch)
		if err != nil {
			return &handlerError{fmt.Errorf("handle %s/%d offsets %d-%d: %w", w.topic, w.partition, batch[0].Offset, last.Offset, err)}
		}
		w.records.Add(float64(len(batch)))
		w.batches.Inc()
		w.lag.Set(float64(max(0, last.HighWaterMark-(last.Offset+1))))
		if commit >= 0 {
			w.commits.set(w.topic, w.partition, commit)
		}
		// A fresh slice: the handler may keep the one it got.
		batch = nil
		return nil
	}

	for {
		select {
		case <-stopCtx.Done():
			return nil
		case err := <-fatal:
			return err
		case m := <-records:
			if batch == nil {
				batch = make([]kafka.Message, 0, w.cfg.BatchSize)
				batchDue.Reset(w.cfg.BatchWait)
			}
			batch = append(batch, m)
			// Take what the pump has queued without a select (and a timer
			// reset) per record: a one-case non-blocking receive is a
			// plain channel receive.
		drain:
			for len(batch) < w.cfg.BatchSize {
				select {
				case m := <-records:
					batch = append(batch, m)
				default:
					break drain
				}
			}
			idle.Reset(w.cfg.IdleInterval)
			if len(batch) >= w.cfg.BatchSize {
				if err := flush(); err != nil {
					return err
				}
			}
		case <-batchDue.C:
			if len(batch) > 0 {
				if err := flush(); err != nil {
					return err
				}
			}
		case <-idle.C:
			if len(batch) == 0 {
				commit, err := w.handler.Tick(handlerCtx, w.topic, w.partition)
				if err != nil {
					return &handlerError{fmt.Errorf("tick %s/%d: %w", w.topic, w.partition, err)}
				}
				if commit >= 0 {
					w.commits.set(w.topic, w.partition, commit)
				}
			}
			idle.Reset(w.cfg.IdleInterval)
		}
	}
}

// openReader fetches one partition with kafka.Client Fetch requests (the
// Transport sends each to the partition's leader, from metadata it keeps
// fresh). A pump goroutine fetches from start, copies each response's
// records into messages whose keys and values share a few allocations, and
// hands them to the worker over a channel of QueueCapacity+BatchSize
// records, so the worker can select on records, timers and stop together
// and then take what is queued in one go. A full channel stops the
// fetching (back-pressure). Failed fetches are retried with backoff
// (broker restarts, leader moves); an offset that fell off retention skips
// to the partition's first offset; an error no retry can fix is sent on
// the fatal channel.
//
// The kafka-go Reader did the same with a channel hop and two allocations
// per record, about a fifth of the pipeline's CPU.
func (c *Consumer) openReader(topic string, partition int, start int64, logger *zap.Logger) (<-chan kafka.Message, <-chan error, func()) {
	records := make(chan kafka.Message, c.cfg.QueueCapacity+c.cfg.BatchSize)
	fatal := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	pumped := make(chan struct{})
	f := &fetcher{
		client:    c.client,
		cfg:       c.cfg,
		topic:     topic,
		partition: partition,
		records:   records,
		logger:    logger,
		errors:    c.metrics.fetchErrors.WithLabelValues(c.cfg.GroupID, topic),
	}
	go func() {
		defer close(pumped)
		if err := f.run(ctx, start); err != nil {
			fatal <- fmt.Errorf("fetch %s/%d: %w", topic, partition, err)
		}
	}()
	return records, fatal, func() {
		cancel()
		<-pumped
	}
}
