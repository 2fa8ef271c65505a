package sink

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/shopspring/decimal"
	"go.uber.org/zap/zaptest"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/testenv"
)

// testDB is a fresh database with the schemas applied on the test server.
type testDB struct {
	addr string
	db   string
	conn clickhouse.Conn
}

func TestMain(m *testing.M) { testenv.Main(m) }

func newEnv(t testing.TB) *testDB {
	t.Helper()
	addr := testenv.ClickHouse(t)
	db := testenv.Database(t, addr)
	conn := openDB(t, addr, db)
	applySchemas(t, conn)
	return &testDB{addr: addr, db: db, conn: conn}
}

// applySchemas applies schemas/*.sql in file-name order, each file one
// statement, as the migration applier does.
func applySchemas(t testing.TB, conn clickhouse.Conn) {
	t.Helper()
	files, err := filepath.Glob("../../schemas/[0-9]*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("schemas: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := conn.Exec(context.Background(), string(b)); err != nil {
			t.Fatalf("apply %s: %v", filepath.Base(f), err)
		}
	}
}

func openDB(t testing.TB, addr, db string) clickhouse.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := Open(ctx, Config{Addr: addr, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// fastRetry keeps retry tests short.
func fastRetry(c Config) Config {
	c.RetryMin, c.RetryMax = 10*time.Millisecond, 100*time.Millisecond
	return c
}

func newWriter(t testing.TB, conn clickhouse.Conn, cfg Config) *Writer {
	t.Helper()
	w, err := NewWriter(conn, cfg, zaptest.NewLogger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func resume(t testing.TB, w *Writer, partitions ...int32) {
	t.Helper()
	for _, p := range partitions {
		if _, err := w.Resume(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
}

func flush(t testing.TB, w *Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func add(t testing.TB, w *Writer, r *Row, partition int32, offset int64) {
	t.Helper()
	if err := w.Add(r, partition, offset); err != nil {
		t.Fatal(err)
	}
}

// record is a row as the sink consumes it: decoded from its encoding.
type record struct {
	row       Row
	partition int32
	offset    int64
}

// testUnit returns the i-th of a family of distinct priced units, spread
// over three accounts, categories, markets, two currencies and the hours of
// June and July 2025.
func testUnit(i int) billing.Unit {
	cats := []billing.Category{billing.CatMarketing, billing.CatUtility, billing.CatAuthentication, billing.CatService}
	pts := []billing.PricingType{billing.PTRegular, billing.PTFreeTier, billing.PTRegular, billing.PTFreeCustomerService, billing.PTNoRate}
	markets := []string{"IN", "BR", "NORTH_AMERICA", "REST_OF_AFRICA"}
	// Every 240th unit has the same rollup key; the hours cross a month.
	chargedAt := time.Date(2025, 6, 30, 20, 0, 0, 0, time.UTC).Unix() + int64(i%48)*1800 + int64(i%7)
	u := billing.Unit{
		WABA:          uint64(100 + i%3),
		PhoneNumberID: uint64(1000 + i%5),
		Customer:      uint64(5511900000000 + i),
		Market:        markets[i%len(markets)],
		Category:      cats[i%len(cats)],
		Model:         billing.PMP,
		RuleSet:       billing.RulesPMP2025,
		PricingType:   pts[i%len(pts)],
		BillingUnit:   billing.UnitMessage,
		ChargedAt:     chargedAt,
		MessageID:     fmt.Sprintf("wamid.test-%08d", i),
		Currency:      []string{"USD", "INR"}[i%2],
		RateCard:      "2025-07-01",
		Tier:          i % 4,
	}
	if u.PricingType == billing.PTRegular {
		u.AmountMicro = int64(i%9+1)*12_345 + int64(i) // odd micros: sums must stay exact
	}
	if i%3 == 0 {
		u.ConversationCategory, u.ConversationOpenedAt = u.Category, chargedAt-60
		u.MetaConversationID, u.MetaCategory, u.MetaPricingModel = fmt.Sprintf("meta-%d", i), "utility", "PMP"
	}
	return u
}

func testConversation(i int) billing.Conversation {
	openedAt := time.Date(2024, 11, 30, 22, 0, 0, 0, time.UTC).Unix() + int64(i%40)*1231 + int64(i/40)
	return billing.Conversation{
		WABA:               uint64(100 + i%3),
		PhoneNumberID:      uint64(1000 + i%5),
		Customer:           uint64(14155550000 + i),
		Market:             []string{"US", "MX", "REST_OF_WESTERN_EUROPE"}[i%3],
		Category:           []billing.Category{billing.CatMarketing, billing.CatUtility, billing.CatService}[i%3],
		Model:              billing.CBP,
		RuleSet:            billing.RulesCBP2024,
		OpenedAt:           openedAt,
		ExpiresAt:          openedAt + 24*3600,
		OpeningMessageID:   fmt.Sprintf("wamid.open-%d", i),
		MetaConversationID: fmt.Sprintf("c-%d", i),
	}
}

func decode(t testing.TB, b []byte) Row {
	t.Helper()
	var r Row
	if err := DecodeRow(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func chargeRecord(t testing.TB, i int) Row {
	u := testUnit(i)
	return decode(t, AppendChargeRow(nil, &u, uint64(7+i%2)))
}

func conversationRecord(t testing.TB, i int) Row {
	c := testConversation(i)
	return decode(t, AppendConversationRow(nil, &c, 7))
}

func count(t testing.TB, conn clickhouse.Conn, query string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// storedCharges reads the charges table back, in (partition, offset) order.
func storedCharges(t testing.TB, conn clickhouse.Conn) []record {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT charge_id, waba_id, portfolio_id,
		phone_number_id, customer_wa_id, market, category, pricing_model, pricing_type,
		billing_unit, conversation_id, message_id, charged_at, currency, toString(amount), amount,
		rate_card, tier, rule_set, meta_conversation_id, meta_category, meta_pricing_model,
		sink_partition, sink_offset FROM charges ORDER BY sink_partition, sink_offset`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []record
	for rows.Next() {
		var c ChargeRow
		var amountText string
		var amount decimal.Decimal
		var partition uint32
		var offset uint64
		if err := rows.Scan(&c.ChargeID, &c.WABAID, &c.PortfolioID, &c.PhoneNumberID, &c.CustomerWaID,
			&c.Market, &c.Category, &c.PricingModel, &c.PricingType, &c.BillingUnit, &c.ConversationID,
			&c.MessageID, &c.ChargedAt, &c.Currency, &amountText, &amount, &c.RateCard, &c.Tier, &c.RuleSet,
			&c.MetaConversationID, &c.MetaCategory, &c.MetaPricingModel, &partition, &offset); err != nil {
			t.Fatal(err)
		}
		if loc := c.ChargedAt.Location().String(); loc != "UTC" {
			t.Fatalf("charged_at read back in %s", loc)
		}
		c.ChargedAt = c.ChargedAt.UTC()
		micros := amount.Shift(6)
		if !micros.IsInteger() {
			t.Fatalf("amount %s is not whole micros", amount)
		}
		c.AmountMicro = micros.IntPart()
		if want := decimal.New(c.AmountMicro, -6).StringFixed(6); amountText != want {
			t.Fatalf("amount as text %q, want %q", amountText, want)
		}
		out = append(out, record{Row{Table: TableCharges, Charge: c}, int32(partition), int64(offset)})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func storedConversations(t testing.TB, conn clickhouse.Conn) []record {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT conversation_id, waba_id, portfolio_id,
		phone_number_id, customer_wa_id, market, category, pricing_model, rule_set, opened_at,
		expires_at, opening_message_id, meta_conversation_id, sink_partition, sink_offset
		FROM conversations ORDER BY sink_partition, sink_offset`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []record
	for rows.Next() {
		var c ConversationRow
		var partition uint32
		var offset uint64
		if err := rows.Scan(&c.ConversationID, &c.WABAID, &c.PortfolioID, &c.PhoneNumberID,
			&c.CustomerWaID, &c.Market, &c.Category, &c.PricingModel, &c.RuleSet, &c.OpenedAt,
			&c.ExpiresAt, &c.OpeningMessageID, &c.MetaConversationID, &partition, &offset); err != nil {
			t.Fatal(err)
		}
		if c.OpenedAt.Location().String() != "UTC" || c.ExpiresAt.Location().String() != "UTC" {
			t.Fatalf("times read back in %s, %s", c.OpenedAt.Location(), c.ExpiresAt.Location())
		}
		c.OpenedAt, c.ExpiresAt = c.OpenedAt.UTC(), c.ExpiresAt.UTC()
		out = append(out, record{Row{Table: TableConversations, Conversation: c}, int32(partition), int64(offset)})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func counterValue(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	close(ch)
	var total float64
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		switch {
		case d.Counter != nil:
			total += d.Counter.GetValue()
		case d.Gauge != nil:
			total += d.Gauge.GetValue()
		case d.Histogram != nil:
			total += float64(d.Histogram.GetSampleCount())
		}
	}
	return total
}

func inserted(t testing.TB, w *Writer, table Table) float64 {
	return counterValue(t, w.m.inserted.WithLabelValues(table.String()))
}

func skipped(t testing.TB, w *Writer, table Table, reason string) float64 {
	return counterValue(t, w.m.skipped.WithLabelValues(table.String(), reason))
}

// keyValues runs q, which selects two strings, a key and a value, and
// returns them as a map.
func keyValues(t testing.TB, conn clickhouse.Conn, q string) map[string]string {
	t.Helper()
	rows, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var key, value string
		if err := rows.Scan(&key, &value); err != nil {
			t.Fatal(err)
		}
		out[key] = value
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
