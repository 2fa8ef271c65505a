// Package e2e runs the whole pipeline as real processes: the embedded
// broker, a ClickHouse server and `wameter all-in-one`, produces webhook
// payloads and send records over Kafka (out of order, duplicated, with
// malformed records) and asserts the rows in ClickHouse and the dead letters.
package e2e

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/segmentio/kafka-go"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/pricing"
	"github.com/wameter/wameter/pkg/testenv"
	"github.com/wameter/wameter/pkg/webhook"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type stack struct {
	t        *testing.T
	broker   string
	chAddr   string
	database string
	prefix   string
	env      []string
	ch       clickhouse.Conn
	// transport, if set, is how produce reaches the broker (SASL, TLS).
	transport kafka.RoundTripper
}

func topic(prefix, name string) string { return prefix + "." + name }

func newStack(t *testing.T) *stack {
	return newStackOn(t, testenv.Broker(t), testenv.ClickHouse(t))
}

// newStackOn is newStack on the given broker and ClickHouse server.
func newStackOn(t *testing.T, broker, chAddr string) *stack {
	var suffix [4]byte
	_, _ = crand.Read(suffix[:])
	s := &stack{t: t, broker: broker, chAddr: chAddr,
		prefix: "e2e" + hex.EncodeToString(suffix[:])}
	s.database = testenv.Database(t, s.chAddr)
	s.env = []string{
		"KAFKA_BROKERS=" + s.broker,
		"CLICKHOUSE_ADDR=" + s.chAddr,
		"CLICKHOUSE_DATABASE=" + s.database,
		// A compressed replay: a day of traffic in a second, started on an
		// idle pipeline and paused between the eras. An input partition
		// idle since the pause does not hold the watermark until normalize
		// has read its first new record; meanwhile the others advance it by
		// hours of event time (see the README: backfills that pause need
		// the lateness raised).
		"WAMETER_LATENESS=48h",
		"WAMETER_IDLE_FLUSH=2s",
		"WAMETER_OPS_ADDR=127.0.0.1:0",
		"WAMETER_PARTITIONS=3",
		"WAMETER_GROUP_PREFIX=" + s.prefix,
		"WAMETER_WEBHOOKS_TOPIC=" + topic(s.prefix, "webhooks"),
		"WAMETER_SENDS_TOPIC=" + topic(s.prefix, "sends"),
		"WAMETER_DLQ_TOPIC=" + topic(s.prefix, "dlq"),
		"WAMETER_EVENTS_TOPIC=" + topic(s.prefix, "events"),
		"WAMETER_UNITS_TOPIC=" + topic(s.prefix, "units"),
		"WAMETER_ROWS_TOPIC=" + topic(s.prefix, "rows"),
		"WAMETER_WINDOW_STATE_TOPIC=" + topic(s.prefix, "window-state"),
		"WAMETER_ACCOUNT_STATE_TOPIC=" + topic(s.prefix, "account-state"),
	}
	s.ch = testenv.ClickHouseConn(t, s.chAddr, s.database)
	return s
}

func (s *stack) start() *testenv.Proc { return s.startRole("all-in-one") }

// startRole starts `wameter ROLE` on the stack.
func (s *stack) startRole(role string) *testenv.Proc {
	bin := testenv.BuildBinary(s.t, "./services/wameter")
	return testenv.StartProcess(s.t, bin, []string{role}, s.env)
}

// produce writes the corpus in event-time order with a few minutes of
// disorder (well within the lateness).
func (s *stack) produce(ctx context.Context, recs []record, seed uint64) {
	s.t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	type keyed struct {
		r   record
		key int64
	}
	var ks []keyed
	for _, r := range recs {
		ks = append(ks, keyed{r, r.at.Unix() + rng.Int64N(300)})
	}
	sort.SliceStable(ks, func(i, j int) bool { return ks[i].key < ks[j].key })
	w := &kafka.Writer{Addr: kafka.TCP(s.broker), Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond, AllowAutoTopicCreation: false, Transport: s.transport}
	defer w.Close()
	var msgs []kafka.Message
	for _, k := range ks {
		m := kafka.Message{Topic: topic(s.prefix, k.r.topic), Value: []byte(k.r.value)}
		for hk, hv := range k.r.headers {
			m.Headers = append(m.Headers, kafka.Header{Key: hk, Value: []byte(hv)})
		}
		msgs = append(msgs, m)
	}
	// One record at a time keeps the production order across partitions.
	// The pipeline creates its topics at start: until then, retry.
	for _, m := range msgs {
		for {
			err := w.WriteMessages(ctx, m)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				s.t.Fatalf("produce: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// expected derives the reference result from the corpus in memory.
func expected(t *testing.T, recs []record) (billing.Result, int) {
	t.Helper()
	var evs []billing.Event
	for _, r := range recs {
		if r.reason != "" {
			continue
		}
		var err error
		if r.topic == "sends" {
			evs, err = webhook.DecodeSend([]byte(r.value), evs)
		} else {
			evs, err = webhook.DecodeWebhook([]byte(r.value), webhook.Headers{PhoneNumberID: r.headers["phone_number_id"], WABA: r.headers["waba_id"]}, evs)
		}
		if err != nil {
			t.Fatalf("corpus record does not decode: %v\n%s", err, r.value)
		}
	}
	cat, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	eng, _ := billing.New(billing.Config{Catalog: cat})
	led, _ := billing.NewLedger(cat, nil)
	n := len(evs)
	return billing.Derive(evs, eng, led), n
}

type chargeRow struct {
	ID, Category, PricingType, PricingModel, Market, Amount, Customer string
}

// chargeRows is what stack.charges should read for a reference result.
func chargeRows(want billing.Result) []chargeRow {
	var rows []chargeRow
	for _, u := range want.Charges {
		id := u.ID()
		rows = append(rows, chargeRow{ID: id.String(), Category: u.Category.String(),
			PricingType: u.PricingType.String(), PricingModel: u.Model.String(), Market: u.Market,
			Amount:   strings.TrimRight(strings.TrimRight(fmt.Sprintf("%d.%06d", u.AmountMicro/1e6, u.AmountMicro%1e6), "0"), "."),
			Customer: fmt.Sprint(u.Customer)})
	}
	slices.SortFunc(rows, func(a, b chargeRow) int { return strings.Compare(a.ID, b.ID) })
	return rows
}

// conversationRows is what stack.conversations should read for a reference result.
func conversationRows(want billing.Result) []string {
	var rows []string
	for _, cv := range want.Conversations {
		id := cv.ID()
		rows = append(rows, strings.Join([]string{id.String(), cv.Category.String(), cv.Model.String(),
			time.Unix(cv.OpenedAt, 0).UTC().Format("2006-01-02 15:04:05")}, " "))
	}
	slices.Sort(rows)
	return rows
}

// checkTables reports charges and conversations in ClickHouse that differ
// from the reference derivation want.
func (s *stack) checkTables(ctx context.Context, want billing.Result) {
	s.t.Helper()
	if got, w := s.charges(ctx), chargeRows(want); !slices.Equal(got, w) {
		s.t.Errorf("charges in ClickHouse differ from the reference derivation:\n got %d: %v\nwant %d: %v", len(got), got, len(w), w)
	}
	if got, w := s.conversations(ctx), conversationRows(want); !slices.Equal(got, w) {
		s.t.Errorf("conversations differ:\n got %v\nwant %v", got, w)
	}
}

func (s *stack) charges(ctx context.Context) []chargeRow {
	rows, err := s.ch.Query(ctx, "SELECT charge_id, category, pricing_type, pricing_model, market, toString(amount), customer_wa_id FROM charges ORDER BY charge_id")
	if err != nil {
		s.t.Fatalf("query charges: %v", err)
	}
	defer rows.Close()
	var out []chargeRow
	for rows.Next() {
		var c chargeRow
		if err := rows.Scan(&c.ID, &c.Category, &c.PricingType, &c.PricingModel, &c.Market, &c.Amount, &c.Customer); err != nil {
			s.t.Fatal(err)
		}
		// toString of a Decimal keeps trailing zeros on some versions only.
		if strings.Contains(c.Amount, ".") {
			c.Amount = strings.TrimRight(strings.TrimRight(c.Amount, "0"), ".")
		}
		out = append(out, c)
	}
	return out
}

func (s *stack) conversations(ctx context.Context) []string {
	rows, err := s.ch.Query(ctx, "SELECT conversation_id, category, pricing_model, toString(opened_at) FROM conversations ORDER BY conversation_id")
	if err != nil {
		s.t.Fatalf("query conversations: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, cat, model, opened string
		if err := rows.Scan(&id, &cat, &model, &opened); err != nil {
			s.t.Fatal(err)
		}
		out = append(out, strings.Join([]string{id, cat, model, opened}, " "))
	}
	return out
}

func (s *stack) count(ctx context.Context, query string) uint64 {
	var n uint64
	if err := s.ch.QueryRow(ctx, query).Scan(&n); err != nil {
		s.t.Fatalf("%s: %v", query, err)
	}
	return n
}

func (s *stack) str(ctx context.Context, query string) string {
	var v string
	if err := s.ch.QueryRow(ctx, query).Scan(&v); err != nil {
		s.t.Fatalf("%s: %v", query, err)
	}
	return v
}

// deadLetters reads every record of the DLQ topic: reason → count.
func (s *stack) deadLetters(ctx context.Context) (map[string]int, int) {
	conn, err := kafka.DialContext(ctx, "tcp", s.broker)
	if err != nil {
		s.t.Fatal(err)
	}
	parts, err := conn.ReadPartitions(topic(s.prefix, "dlq"))
	conn.Close()
	if err != nil {
		s.t.Fatal(err)
	}
	reasons := map[string]int{}
	total := 0
	for _, p := range parts {
		for _, m := range testenv.ReadPartition(s.t, s.broker, p.Topic, p.ID) {
			total++
			for _, h := range m.Headers {
				if h.Key == "dlq_reason" {
					reasons[string(h.Value)]++
				}
			}
		}
	}
	return reasons, total
}

// waitSynced waits until every role's consumer group of proc has started a
// generation (all four for all-in-one).
func (s *stack) waitSynced(p *testenv.Proc, roles ...string) {
	s.t.Helper()
	if len(roles) == 0 {
		roles = []string{"normalize", "window", "account", "sink"}
	}
	waitFor(s.t, "every consumer group to sync", 2*time.Minute, func() bool {
		log := p.Log()
		for _, role := range roles {
			if !strings.Contains(log, `"msg":"generation started","group":"`+s.prefix+"-"+role+`"`) {
				return false
			}
		}
		return true
	})
}

// splitEras splits a corpus into its CBP-era records (with the malformed
// ones) and its PMP-era records: produced one after the other, as they would
// arrive in real time, a year apart.
func splitEras(recs []record) (cbp, pmp []record) {
	for _, r := range recs {
		if r.at.Year() == 2024 || r.reason != "" {
			cbp = append(cbp, r)
		} else {
			pmp = append(pmp, r)
		}
	}
	return cbp, pmp
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func TestPipelineEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	s := newStack(t)
	c := buildCorpus()
	want, nEvents := expected(t, c.records)
	if len(want.Charges) < 10 || len(want.Conversations) < 5 {
		t.Fatalf("corpus derives %d charges, %d conversations: too few to test", len(want.Charges), len(want.Conversations))
	}
	s.start()
	// Two eras, a year apart: the second is produced once the first is in
	// ClickHouse, as it would arrive in real time.
	cbp, pmp := splitEras(c.records)
	firstEra, _ := expected(t, cbp)
	s.produce(ctx, cbp, 1)
	waitFor(t, "the CBP era's charges in ClickHouse", 3*time.Minute, func() bool {
		return s.count(ctx, "SELECT count() FROM charges") >= uint64(len(firstEra.Charges))
	})
	s.produce(ctx, pmp, 1)
	waitFor(t, "all charges in ClickHouse", 3*time.Minute, func() bool {
		return s.count(ctx, "SELECT count() FROM charges") >= uint64(len(want.Charges))
	})
	time.Sleep(3 * time.Second) // anything extra would show now

	s.checkTables(ctx, want)
	gotCharges := s.charges(ctx)
	// What a user checks first: the worked examples' outcome.
	byType := map[string]int{}
	for _, c := range gotCharges {
		byType[c.PricingModel+"/"+c.Category+"/"+c.PricingType]++
	}
	for k, n := range map[string]int{
		"CBP/marketing/regular": 1, "CBP/service/free_tier": 2, "CBP/utility/regular": 1, "CBP/authentication/regular": 1,
		"PMP/marketing/regular": 1, "PMP/utility/free_customer_service": 1, "PMP/service/free_customer_service": 1,
		"PMP/authentication/regular": 1, "PMP/referral_conversion/free_entry_point": 2,
	} {
		if byType[k] != n {
			t.Errorf("%s: %d charges, want %d (all: %v)", k, byType[k], n, byType)
		}
	}
	// Rollups agree with the raw rows.
	if a, b := s.str(ctx, "SELECT toString(sum(amount)) FROM charges"),
		s.str(ctx, "SELECT toString(sum(amount)) FROM spend_hourly"); a != b || a == "0" {
		t.Errorf("spend_hourly sums %s, charges %s", b, a)
	}
	if a, b := s.count(ctx, "SELECT count() FROM charges"), s.count(ctx, "SELECT sum(units) FROM spend_hourly"); a != b {
		t.Errorf("spend_hourly counts %d units, charges has %d rows", b, a)
	}

	reasons, total := s.deadLetters(ctx)
	for _, r := range c.records {
		if r.reason != "" && reasons[r.reason] == 0 {
			t.Errorf("malformed record not dead-lettered with reason %s (got %v)", r.reason, reasons)
		}
	}
	if total != 3 {
		t.Errorf("%d dead letters after the first run, want the 3 malformed records (%v)", total, reasons)
	}

	// The same corpus again: every event is behind the watermark. It is
	// dead-lettered as late and no table changes.
	before := s.charges(ctx)
	beforeConvs := s.conversations(ctx)
	s.produce(ctx, cbp, 2)
	s.produce(ctx, pmp, 2)
	waitFor(t, "the replayed corpus in the dead-letter topic", 3*time.Minute, func() bool {
		_, n := s.deadLetters(ctx)
		return n >= 3+3+nEvents
	})
	time.Sleep(3 * time.Second)
	after := s.charges(ctx)
	if !slices.Equal(after, before) || !slices.Equal(s.conversations(ctx), beforeConvs) {
		t.Errorf("producing the corpus twice changed the tables: charges %d → %d", len(before), len(after))
	}
	reasons, _ = s.deadLetters(ctx)
	if reasons["late"] != nEvents {
		t.Errorf("%d late dead letters, want %d (one per event of the replay): %v", reasons["late"], nEvents, reasons)
	}
}

// kill -9 of the pipeline at random moments while the corpus streams in,
// each time restarted: the tables equal the reference derivation exactly
// (nothing lost, nothing counted twice), with plain count() and sum().
func TestPipelineSurvivesKills(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s := newStack(t)
	s.env = append(s.env, "WAMETER_SESSION_TIMEOUT=6s")
	c := buildCorpusN(12)
	want, _ := expected(t, c.records)
	cbp, pmp := splitEras(c.records)
	firstEra, _ := expected(t, cbp)

	rng := rand.New(rand.NewPCG(2026, 11))
	proc := s.start()
	kills := 0
	chaos := func(recs []record, seed uint64) {
		// Produce in chunks; after some chunks, kill -9 and restart.
		chunk := len(recs)/4 + 1
		for i := 0; i < len(recs); i += chunk {
			s.produce(ctx, recs[i:min(i+chunk, len(recs))], seed+uint64(i))
			time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
			if rng.IntN(3) > 0 {
				// At any moment, also before the process's consumer
				// groups had their first generation: its members then
				// hold partitions for a session timeout while the next
				// process runs the rest, and a window partition must
				// not idle-flush ahead of the normalize partitions
				// they hold.
				if err := proc.Kill(); err != nil {
					t.Fatalf("kill: %v", err)
				}
				<-proc.Exited()
				kills++
				proc = s.start()
			}
		}
	}
	chaos(cbp, 10)
	waitFor(t, "the CBP era's charges", 4*time.Minute, func() bool {
		return s.count(ctx, "SELECT count() FROM charges") >= uint64(len(firstEra.Charges))
	})
	chaos(pmp, 20)
	waitFor(t, "all charges", 4*time.Minute, func() bool {
		return s.count(ctx, "SELECT count() FROM charges") >= uint64(len(want.Charges))
	})
	time.Sleep(5 * time.Second)
	if kills == 0 {
		t.Fatal("the seed killed nothing: the test proves nothing")
	}
	t.Logf("%d kills survived", kills)

	var wantIDs []string
	wantTotal := int64(0)
	for _, u := range want.Charges {
		id := u.ID()
		wantIDs = append(wantIDs, id.String())
		wantTotal += u.AmountMicro
	}
	slices.Sort(wantIDs)
	var gotIDs []string
	for _, c := range s.charges(ctx) {
		gotIDs = append(gotIDs, c.ID)
	}
	if !slices.Equal(gotIDs, wantIDs) {
		t.Errorf("after %d kills: %d charges in ClickHouse, want %d", kills, len(gotIDs), len(wantIDs))
	}
	if n := s.count(ctx, "SELECT count() FROM conversations"); n != uint64(len(want.Conversations)) {
		t.Errorf("after %d kills: %d conversations, want %d", kills, n, len(want.Conversations))
	}
	wantSum := strings.TrimRight(strings.TrimRight(fmt.Sprintf("%d.%06d", wantTotal/1e6, wantTotal%1e6), "0"), ".")
	for _, q := range []string{"SELECT toString(sum(amount)) FROM charges", "SELECT toString(sum(amount)) FROM spend_hourly"} {
		got := s.str(ctx, q)
		if strings.Contains(got, ".") {
			got = strings.TrimRight(strings.TrimRight(got, "0"), ".")
		}
		if got != wantSum {
			t.Errorf("%s = %s, want %s", q, got, wantSum)
		}
	}
	if a, b := s.count(ctx, "SELECT count() FROM charges"), s.count(ctx, "SELECT sum(units) FROM spend_hourly"); a != b {
		t.Errorf("spend_hourly counts %d units, charges has %d rows", b, a)
	}
}

// Two pipeline processes share the consumer groups (each owns some of the
// partitions of every stage): the result equals the reference derivation,
// as with one.
func TestPipelineTwoInstances(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	s := newStack(t)
	s.env = append(s.env, "WAMETER_SESSION_TIMEOUT=6s")
	c := buildCorpusN(6)
	want, _ := expected(t, c.records)
	cbp, pmp := splitEras(c.records)
	firstEra, _ := expected(t, cbp)
	a, b := s.start(), s.start()
	s.waitSynced(a)
	s.waitSynced(b)
	s.produce(ctx, cbp, 3)
	waitFor(t, "the CBP era's charges", 3*time.Minute, func() bool {
		return s.count(ctx, "SELECT count() FROM charges") >= uint64(len(firstEra.Charges))
	})
	s.produce(ctx, pmp, 4)
	waitFor(t, "all charges", 3*time.Minute, func() bool {
		return s.count(ctx, "SELECT count() FROM charges") >= uint64(len(want.Charges))
	})
	time.Sleep(3 * time.Second)
	var wantIDs, gotIDs []string
	for _, u := range want.Charges {
		id := u.ID()
		wantIDs = append(wantIDs, id.String()+" "+u.PricingType.String())
	}
	slices.Sort(wantIDs)
	for _, c := range s.charges(ctx) {
		gotIDs = append(gotIDs, c.ID+" "+c.PricingType)
	}
	if !slices.Equal(gotIDs, wantIDs) {
		t.Errorf("two instances: %d charges, want %d", len(gotIDs), len(wantIDs))
	}
	if n := s.count(ctx, "SELECT count() FROM conversations"); n != uint64(len(want.Conversations)) {
		t.Errorf("two instances: %d conversations, want %d", n, len(want.Conversations))
	}
	for _, p := range []*testenv.Proc{a, b} {
		if !strings.Contains(p.Log(), `"msg":"partition assigned"`) {
			t.Errorf("an instance was assigned no partition: the test did not share the work")
		}
	}
}
