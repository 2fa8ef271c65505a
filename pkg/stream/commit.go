package stream

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// offsetCommitter is the part of *kafka.Generation the committer uses.
type offsetCommitter interface {
	CommitOffsets(offsets map[string]map[int]int64) error
}

// committer gathers the offsets the partition workers of one generation
// want committed and commits them every interval, in one request for all
// partitions, and a last time on close. One goroutine commits, so the
// coordinator connection kafka-go shares with the heartbeat sees one
// commit at a time.
type committer struct {
	gen      offsetCommitter
	interval time.Duration
	logger   *zap.Logger
	errors   prometheus.Counter

	mu      sync.Mutex
	pending map[string]map[int]int64

	quit chan struct{}
	done chan struct{}
}

func newCommitter(gen offsetCommitter, interval time.Duration, logger *zap.Logger, errs prometheus.Counter) *committer {
	return &committer{
		gen:      gen,
		interval: interval,
		logger:   logger,
		errors:   errs,
		pending:  make(map[string]map[int]int64),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// set records offset as the one to commit for the partition; a later set
// replaces it.
func (c *committer) set(topic string, partition int, offset int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	byPartition := c.pending[topic]
	if byPartition == nil {
		byPartition = make(map[int]int64)
		c.pending[topic] = byPartition
	}
	byPartition[partition] = offset
}

// loop commits every interval until close.
func (c *committer) loop() {
	defer close(c.done)
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-c.quit:
			return
		case <-t.C:
			// A failure keeps the offsets pending for the next round.
			_ = c.flush()
		}
	}
}

// close stops the loop and commits what is pending, retrying a failure
// that may be transient a few times. The generation's coordinator accepts
// commits until the member rejoins, so the final commit of a rebalance
// still lands. If it fails for good, the next owner of the partitions
// re-reads from the previous commit: records are delivered again, not lost.
func (c *committer) close() {
	close(c.quit)
	<-c.done
	bo := backoff{min: 50 * time.Millisecond, max: 500 * time.Millisecond}
	for attempt := 1; ; attempt++ {
		err := c.flush()
		if err == nil || attempt == 3 || !commitRetriable(err) {
			return
		}
		time.Sleep(bo.next())
	}
}

// commitRetriable tells whether a commit may succeed if sent again in the
// same generation: not once the coordinator has moved the group on.
func commitRetriable(err error) bool {
	switch {
	case errors.Is(err, kafka.IllegalGeneration),
		errors.Is(err, kafka.UnknownMemberId),
		errors.Is(err, kafka.RebalanceInProgress):
		return false
	}
	return retriable(err)
}

func (c *committer) flush() error {
	c.mu.Lock()
	offsets := c.pending
	c.pending = make(map[string]map[int]int64)
	c.mu.Unlock()
	if len(offsets) == 0 {
		return nil
	}
	err := c.gen.CommitOffsets(offsets)
	if err == nil {
		return nil
	}
	c.errors.Inc()
	c.logger.Warn("commit offsets", zap.Any("offsets", offsets), zap.Error(err))
	// Put back what no later set replaced.
	c.mu.Lock()
	for topic, byPartition := range offsets {
		for partition, offset := range byPartition {
			if _, newer := c.pending[topic][partition]; newer {
				continue
			}
			if c.pending[topic] == nil {
				c.pending[topic] = make(map[int]int64)
			}
			c.pending[topic][partition] = offset
		}
	}
	c.mu.Unlock()
	return err
}
