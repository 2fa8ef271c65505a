package stream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// scriptHandler records the calls of one partition as lines such as
// "handle 0-2 @100ms".
type scriptHandler struct {
	start    time.Time
	startAt  int64 // offset Assigned returns; -1 echoes committed
	failAt   int64 // Handle fails on a batch holding this offset; -1 never
	tickNext int64 // what Tick returns
	mu       sync.Mutex
	calls    []string
}

func (h *scriptHandler) record(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	line := fmt.Sprintf(format, args...)
	h.calls = append(h.calls, fmt.Sprintf("%s @%s", line, time.Since(h.start)))
}

func (h *scriptHandler) Assigned(_ context.Context, topic string, partition int, committed int64) (int64, error) {
	h.record("assigned %s/%d committed=%d", topic, partition, committed)
	if h.startAt >= 0 {
		return h.startAt, nil
	}
	return committed, nil
}

func (h *scriptHandler) Handle(_ context.Context, _ string, _ int, batch []kafka.Message) (int64, error) {
	first, last := batch[0].Offset, batch[len(batch)-1].Offset
	h.record("handle %d-%d", first, last)
	if h.failAt >= first && h.failAt <= last {
		return 0, errors.New("store down")
	}
	return last + 1, nil
}

func (h *scriptHandler) Tick(context.Context, string, int) (int64, error) {
	h.record("tick")
	return h.tickNext, nil
}

func (h *scriptHandler) Revoked(context.Context, string, int) (int64, error) {
	h.record("revoked")
	return 1000, nil
}

func (h *scriptHandler) lines() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.calls, "\n")
}

type recordingGen struct {
	mu      sync.Mutex
	commits []map[string]map[int]int64
	fail    error
}

func (g *recordingGen) CommitOffsets(offsets map[string]map[int]int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fail != nil {
		return g.fail
	}
	g.commits = append(g.commits, offsets)
	return nil
}

func testWorker(h Handler, gen offsetCommitter, cfg ConsumerConfig) *partitionWorker {
	return &partitionWorker{
		topic: "events", partition: 2, handler: h, cfg: cfg.withDefaults(),
		logger:        zap.NewNop(),
		commits:       newCommitter(gen, time.Second, zap.NewNop(), prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})),
		lag:           prometheus.NewGauge(prometheus.GaugeOpts{Name: "lag"}),
		records:       prometheus.NewCounter(prometheus.CounterOpts{Name: "records"}),
		batches:       prometheus.NewCounter(prometheus.CounterOpts{Name: "batches"}),
		forgetMetrics: func() {},
	}
}

// fakeSource hands the worker records pushed by the test.
type fakeSource struct {
	records chan kafka.Message
	fatal   chan error
	start   int64
	stopped bool
}

func (s *fakeSource) open(_ string, _ int, start int64, _ *zap.Logger) (<-chan kafka.Message, <-chan error, func()) {
	s.start = start
	return s.records, s.fatal, func() { s.stopped = true }
}

func (s *fakeSource) push(from, to int64) {
	for o := from; o <= to; o++ {
		s.records <- kafka.Message{Topic: "events", Partition: 2, Offset: o, HighWaterMark: 100}
	}
}

func TestPartitionWorkerBatchesTicksAndRevokes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &scriptHandler{start: time.Now(), startAt: -1, failAt: -1, tickNext: -1}
		gen := &recordingGen{}
		w := testWorker(h, gen, ConsumerConfig{BatchSize: 3, BatchWait: 100 * time.Millisecond, IdleInterval: time.Second})
		src := &fakeSource{records: make(chan kafka.Message), fatal: make(chan error, 1)}
		stopCtx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.run(stopCtx, context.Background(), 10, src.open) }()

		src.push(10, 16) // two full batches at once, one record waits for BatchWait
		time.Sleep(500 * time.Millisecond)
		src.push(17, 17)
		time.Sleep(2500 * time.Millisecond) // batch of one, then idle ticks
		stop()
		if err := <-done; err != nil {
			t.Fatalf("run: %v", err)
		}
		want := strings.Join([]string{
			"assigned events/2 committed=10 @0s",
			"handle 10-12 @0s",
			"handle 13-15 @0s",
			"handle 16-16 @100ms",
			"handle 17-17 @600ms",
			"tick @1.5s",
			"tick @2.5s",
			"revoked @3s",
		}, "\n")
		if got := h.lines(); got != want {
			t.Errorf("calls:\n%s\nwant:\n%s", got, want)
		}
		if src.start != 10 || !src.stopped {
			t.Errorf("fetch started at %d, stopped %t; want 10, true", src.start, src.stopped)
		}
		// Revoked's offset is the last word for the partition.
		if err := w.commits.flush(); err != nil {
			t.Fatal(err)
		}
		if len(gen.commits) != 1 || gen.commits[0]["events"][2] != 1000 {
			t.Errorf("commits %v, want one commit of events/2 at 1000", gen.commits)
		}
	})
}

func TestPartitionWorkerHandlerErrorSkipsRevoked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &scriptHandler{start: time.Now(), startAt: 5, failAt: 7, tickNext: -1}
		gen := &recordingGen{}
		w := testWorker(h, gen, ConsumerConfig{BatchSize: 2, BatchWait: 100 * time.Millisecond})
		src := &fakeSource{records: make(chan kafka.Message), fatal: make(chan error, 1)}
		done := make(chan error, 1)
		go func() { done <- w.run(context.Background(), context.Background(), 3, src.open) }()
		src.push(5, 8)
		err := <-done
		if err == nil || !strings.Contains(err.Error(), "store down") || !strings.Contains(err.Error(), "offsets 7-8") {
			t.Fatalf("run = %v, want the handler's error with its offsets", err)
		}
		want := "assigned events/2 committed=3 @0s\nhandle 5-6 @0s\nhandle 7-8 @0s"
		if got := h.lines(); got != want {
			t.Errorf("calls:\n%s\nwant:\n%s", got, want)
		}
		if src.start != 5 {
			t.Errorf("fetch started at %d, want the handler's 5", src.start)
		}
		if err := w.commits.flush(); err != nil {
			t.Fatal(err)
		}
		if len(gen.commits) != 1 || gen.commits[0]["events"][2] != 7 {
			t.Errorf("commits %v, want events/2 at 7 (the last batch that succeeded)", gen.commits)
		}
	})
}

func TestPartitionWorkerFetchErrorRevokes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &scriptHandler{start: time.Now(), startAt: -1, failAt: -1, tickNext: -1}
		w := testWorker(h, &recordingGen{}, ConsumerConfig{})
		src := &fakeSource{records: make(chan kafka.Message), fatal: make(chan error, 1)}
		src.fatal <- kafka.TopicAuthorizationFailed
		err := w.run(context.Background(), context.Background(), 0, src.open)
		if !errors.Is(err, kafka.TopicAuthorizationFailed) {
			t.Fatalf("run = %v, want the fetch error", err)
		}
		if got := h.lines(); !strings.HasSuffix(got, "revoked @0s") {
			t.Errorf("calls:\n%s\nwant Revoked after a fetch failure", got)
		}
	})
}

func TestCommitterKeepsFailedOffsets(t *testing.T) {
	gen := &recordingGen{fail: kafka.NotCoordinatorForGroup}
	c := newCommitter(gen, time.Hour, zap.NewNop(), prometheus.NewCounter(prometheus.CounterOpts{Name: "x"}))
	c.set("a", 0, 10)
	c.set("a", 1, 20)
	if err := c.flush(); !errors.Is(err, kafka.NotCoordinatorForGroup) {
		t.Fatalf("flush = %v", err)
	}
	c.set("a", 1, 25) // newer than the failed 20
	gen.fail = nil
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
	got := gen.commits[0]["a"]
	if len(gen.commits) != 1 || got[0] != 10 || got[1] != 25 {
		t.Errorf("commits %v, want a/0=10 (kept after failure) and a/1=25 (newest)", gen.commits)
	}
}
