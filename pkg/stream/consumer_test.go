package stream

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/wameter/wameter/pkg/testenv"
)

type topicPartition struct {
	topic     string
	partition int
}

// deliveries counts, over all members of a test, how often each record was
// handed to a Handler.
type deliveries struct {
	mu    sync.Mutex
	count map[topicPartition]map[int64]int
	total int
}

func newDeliveries() *deliveries {
	return &deliveries{count: map[topicPartition]map[int64]int{}}
}

func (d *deliveries) add(tp topicPartition, offset int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.count[tp] == nil {
		d.count[tp] = map[int64]int{}
	}
	d.count[tp][offset]++
	d.total++
}

func (d *deliveries) totalHandled() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.total
}

// checkExactlyOnce fails t unless every offset below end was delivered
// exactly once and nothing else was.
func (d *deliveries) checkExactlyOnce(t *testing.T, topic string, end map[int]int64) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for p, hw := range end {
		got := d.count[topicPartition{topic, p}]
		for o := int64(0); o < hw; o++ {
			if got[o] != 1 {
				t.Errorf("%s/%d offset %d delivered %d times, want once", topic, p, o, got[o])
			}
		}
		if int64(len(got)) != hw {
			t.Errorf("%s/%d: %d distinct offsets delivered, want %d", topic, p, len(got), hw)
		}
	}
}

// member is a Handler that checks per-partition order and remembers what it
// was assigned and what it committed on revoke.
type member struct {
	name string
	all  *deliveries

	mu        sync.Mutex
	next      map[topicPartition]int64 // next offset expected
	committed map[topicPartition]int64 // committed offset at the last Assigned
	revokedAt map[topicPartition]int64 // offset returned by the last Revoked
	owned     map[topicPartition]bool
	handled   int
	revokes   int
	problems  []string
}

func newMember(name string, all *deliveries) *member {
	return &member{
		name: name, all: all,
		next: map[topicPartition]int64{}, committed: map[topicPartition]int64{},
		revokedAt: map[topicPartition]int64{}, owned: map[topicPartition]bool{},
	}
}

func (m *member) Assigned(_ context.Context, topic string, partition int, committed int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	tp := topicPartition{topic, partition}
	if m.owned[tp] {
		m.problems = append(m.problems, fmt.Sprintf("%s: %v assigned twice without Revoked", m.name, tp))
	}
	m.owned[tp] = true
	m.committed[tp] = committed
	m.next[tp] = committed
	return committed, nil
}

func (m *member) Handle(_ context.Context, topic string, partition int, batch []kafka.Message) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	tp := topicPartition{topic, partition}
	for _, r := range batch {
		if r.Topic != topic || r.Partition != partition {
			m.problems = append(m.problems, fmt.Sprintf("%s: record of %s/%d in a batch of %v", m.name, r.Topic, r.Partition, tp))
		}
		if r.Offset != m.next[tp] {
			m.problems = append(m.problems, fmt.Sprintf("%s: %v offset %d, want %d", m.name, tp, r.Offset, m.next[tp]))
		}
		m.next[tp] = r.Offset + 1
		m.all.add(tp, r.Offset)
	}
	m.handled += len(batch)
	return m.next[tp], nil
}

func (m *member) Tick(context.Context, string, int) (int64, error) { return -1, nil }

func (m *member) Revoked(_ context.Context, topic string, partition int) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	tp := topicPartition{topic, partition}
	if !m.owned[tp] {
		m.problems = append(m.problems, fmt.Sprintf("%s: %v revoked but not assigned", m.name, tp))
	}
	delete(m.owned, tp)
	m.revokes++
	m.revokedAt[tp] = m.next[tp]
	return m.next[tp], nil
}

func (m *member) snapshot() (handled, revokes int, owned []topicPartition) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for tp := range m.owned {
		owned = append(owned, tp)
	}
	sort.Slice(owned, func(i, j int) bool { return owned[i].partition < owned[j].partition })
	return m.handled, m.revokes, owned
}

func (m *member) check(t *testing.T) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.problems {
		t.Error(p)
	}
}

func testConsumerConfig(group string, topics ...string) ConsumerConfig {
	return ConsumerConfig{
		GroupID: group, Topics: topics,
		BatchSize: 50, BatchWait: 20 * time.Millisecond,
		IdleInterval: 200 * time.Millisecond, CommitInterval: 100 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond, SessionTimeout: 6 * time.Second,
		RebalanceTimeout: 5 * time.Second, JoinGroupBackoff: 200 * time.Millisecond,
		ShutdownTimeout: 5 * time.Second,
	}
}

// running is a Consumer's Run in a goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan error
	reg    *prometheus.Registry
}

func startConsumer(t *testing.T, cfg Config, ccfg ConsumerConfig, h Handler) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	c, err := NewConsumer(cfg, ccfg, h, testLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), reg: reg}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and waits for it; Run must return nil.
func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.done == nil {
		return
	}
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run = %v, want nil after cancel", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	r.done = nil
}

func (r *running) metric(t *testing.T, name string) float64 {
	t.Helper()
	families, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

func TestConsumerGroupDeliversEachRecordOnceAndResumes(t *testing.T) {
	cfg := testConfig(testenv.Broker(t))
	topic := testTopic(t, "events")
	ensureTopic(t, cfg, topic, 4)
	p := newTestProducer(t, cfg, ProducerConfig{})
	group := testTopic(t, "group")
	ccfg := testConsumerConfig(group, topic)
	all := newDeliveries()

	produceKeyed(t, p, topic, 0, 400)
	a := newMember("a", all)
	runA := startConsumer(t, cfg, ccfg, a)
	waitFor(t, 15*time.Second, "a to handle records", func() bool { h, _, _ := a.snapshot(); return h > 0 })

	b := newMember("b", all)
	runB := startConsumer(t, cfg, ccfg, b)
	waitFor(t, 15*time.Second, "the rebalance to give b partitions", func() bool {
		_, _, ownedB := b.snapshot()
		_, _, ownedA := a.snapshot()
		return len(ownedB) == 2 && len(ownedA) == 2
	})
	produceKeyed(t, p, topic, 400, 400)
	waitFor(t, 15*time.Second, "all 800 records", func() bool { return all.totalHandled() >= 800 })

	runA.stop(t)
	runB.stop(t)
	a.check(t)
	b.check(t)
	end := endOffsets(t, cfg, topic, 4)
	all.checkExactlyOnce(t, topic, end)
	handledA, revokesA, _ := a.snapshot()
	handledB, _, _ := b.snapshot()
	if handledB == 0 {
		t.Errorf("b handled nothing (a handled %d)", handledA)
	}
	if revokesA < 4 {
		t.Errorf("a had %d partitions revoked, want its 4 at the rebalance at least", revokesA)
	}
	if got := runA.metric(t, "wameter_stream_consumer_records_total") + runB.metric(t, "wameter_stream_consumer_records_total"); got != 800 {
		t.Errorf("records_total over both members = %v, want 800", got)
	}

	committed := committedOffsets(t, cfg, group, topic, 4)
	for part, hw := range end {
		if committed[part] != hw {
			t.Errorf("partition %d committed %d, want the end %d", part, committed[part], hw)
		}
	}

	// A restarted member resumes from the commits: nothing is delivered
	// again, and new records are.
	c := newMember("c", all)
	runC := startConsumer(t, cfg, ccfg, c)
	waitFor(t, 15*time.Second, "c to own all partitions", func() bool { _, _, owned := c.snapshot(); return len(owned) == 4 })
	c.mu.Lock()
	for tp, off := range c.committed {
		if off != end[tp.partition] {
			t.Errorf("c assigned %v at %d, want the committed %d", tp, off, end[tp.partition])
		}
	}
	c.mu.Unlock()
	time.Sleep(500 * time.Millisecond)
	if h, _, _ := c.snapshot(); h != 0 {
		t.Errorf("restarted member handled %d old records", h)
	}
	produceKeyed(t, p, topic, 800, 40)
	waitFor(t, 15*time.Second, "the 40 new records", func() bool { return all.totalHandled() >= 840 })
	runC.stop(t)
	c.check(t)
	all.checkExactlyOnce(t, topic, endOffsets(t, cfg, topic, 4))
	if h, _, _ := c.snapshot(); h != 40 {
		t.Errorf("restarted member handled %d records, want the 40 new ones", h)
	}
}

func TestConsumerRevokesOnRebalanceBeforeTheNewOwnerStarts(t *testing.T) {
	cfg := testConfig(testenv.Broker(t))
	topic := testTopic(t, "events")
	ensureTopic(t, cfg, topic, 4)
	p := newTestProducer(t, cfg, ProducerConfig{})
	group := testTopic(t, "group")
	ccfg := testConsumerConfig(group, topic)
	// Commit only on revoke: what the new owner starts from must be what
	// the old one handed over in Revoked.
	ccfg.CommitInterval = time.Hour
	all := newDeliveries()

	produceKeyed(t, p, topic, 0, 200)
	a := newMember("a", all)
	startConsumer(t, cfg, ccfg, a)
	waitFor(t, 15*time.Second, "a to handle all 200", func() bool { return all.totalHandled() >= 200 })
	if _, revokes, owned := a.snapshot(); revokes != 0 || len(owned) != 4 {
		t.Fatalf("before b joins: a revoked %d and owns %v, want 0 and 4 partitions", revokes, owned)
	}

	b := newMember("b", all)
	startConsumer(t, cfg, ccfg, b)
	waitFor(t, 15*time.Second, "b to own partitions", func() bool { _, _, owned := b.snapshot(); return len(owned) == 2 })

	_, revokes, ownedA := a.snapshot()
	if revokes != 4 {
		t.Errorf("a had %d partitions revoked at the rebalance, want 4 (kafka-go's eager protocol)", revokes)
	}
	if len(ownedA) != 2 {
		t.Errorf("a owns %v after the rebalance, want 2 partitions", ownedA)
	}
	a.mu.Lock()
	b.mu.Lock()
	for tp, start := range b.committed {
		if want := a.revokedAt[tp]; start != want || start == 0 {
			t.Errorf("b got %v at committed %d, a handed it over at %d", tp, start, want)
		}
	}
	b.mu.Unlock()
	a.mu.Unlock()
	a.check(t)
	b.check(t)
	all.checkExactlyOnce(t, topic, endOffsets(t, cfg, topic, 4))
}

func TestConsumerServesSeveralTopics(t *testing.T) {
	cfg := testConfig(testenv.Broker(t))
	events, units := testTopic(t, "events"), testTopic(t, "units")
	ensureTopic(t, cfg, events, 2)
	ensureTopic(t, cfg, units, 3)
	p := newTestProducer(t, cfg, ProducerConfig{})
	produceKeyed(t, p, events, 0, 50)
	produceKeyed(t, p, units, 0, 70)

	all := newDeliveries()
	m := newMember("m", all)
	run := startConsumer(t, cfg, testConsumerConfig(testTopic(t, "group"), events, units), m)
	waitFor(t, 15*time.Second, "records of both topics", func() bool { return all.totalHandled() >= 120 })
	run.stop(t)
	m.check(t)
	all.checkExactlyOnce(t, events, endOffsets(t, cfg, events, 2))
	all.checkExactlyOnce(t, units, endOffsets(t, cfg, units, 3))
}

// failingMember fails Handle on one record of one partition.
type failingMember struct {
	*member
	failPartition int
	failOffset    int64
}

var errStoreDown = errors.New("store down")

func (f *failingMember) Handle(ctx context.Context, topic string, partition int, batch []kafka.Message) (int64, error) {
	if partition == f.failPartition && batch[0].Offset <= f.failOffset && f.failOffset <= batch[len(batch)-1].Offset {
		return 0, errStoreDown
	}
	return f.member.Handle(ctx, topic, partition, batch)
}

func TestConsumerStopsOnHandlerErrorAndRevokesTheOthers(t *testing.T) {
	cfg := testConfig(testenv.Broker(t))
	topic := testTopic(t, "events")
	ensureTopic(t, cfg, topic, 4)
	p := newTestProducer(t, cfg, ProducerConfig{})
	produceKeyed(t, p, topic, 0, 200)
	group := testTopic(t, "group")

	m := newMember("m", newDeliveries())
	h := &failingMember{member: m, failPartition: 1, failOffset: 10}
	c, err := NewConsumer(cfg, testConsumerConfig(group, topic), h, testLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = c.Run(ctx)
	if !errors.Is(err, errStoreDown) {
		t.Fatalf("Run = %v, want the handler's error", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run returned only when its context ended")
	}
	_, revokes, owned := m.snapshot()
	if revokes != 3 || len(owned) != 1 || owned[0].partition != 1 {
		t.Errorf("revoked %d partitions, still owning %v; want the 3 healthy ones revoked, partition 1 not", revokes, owned)
	}
	m.check(t)
	committed := committedOffsets(t, cfg, group, topic, 4)
	m.mu.Lock()
	for tp, at := range m.revokedAt {
		if committed[tp.partition] != at {
			t.Errorf("%v committed %d, want %d from Revoked", tp, committed[tp.partition], at)
		}
	}
	m.mu.Unlock()
	if committed[1] > 10 {
		t.Errorf("partition 1 committed %d, past the failed record 10", committed[1])
	}
}
