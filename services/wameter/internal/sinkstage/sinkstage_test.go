package sinkstage

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/migration"
	"github.com/wameter/wameter/pkg/sink"
	"github.com/wameter/wameter/pkg/stream"
	"github.com/wameter/wameter/pkg/testenv"
	"github.com/wameter/wameter/schemas"
	"github.com/wameter/wameter/services/wameter/internal/stage/stagetest"
	"github.com/wameter/wameter/services/wameter/internal/wire"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// chargeRow is the rows-topic encoding of a charge, its id from i.
func chargeRow(i int) []byte {
	u := billing.Unit{WABA: 9, PhoneNumberID: 1065000, Customer: 14155550000 + uint64(i), Market: "US",
		Category: billing.CatMarketing, Model: billing.PMP, RuleSet: billing.RulesPMP2025, PricingType: billing.PTRegular,
		BillingUnit: billing.UnitMessage, ChargedAt: 1754265600 + int64(i), MessageID: "wamid." + strconv.Itoa(i),
		Currency: "USD", AmountMicro: 25000, RateCard: "2025-07-01", Tier: 1}
	return sink.AppendChargeRow(nil, &u, 7)
}

// Rows come packed (many to a record, the rows of every flush upstream) or
// one to a record (a window or account before packed rows): both are
// stored, each row once, and a bad row of a packed record is dead-lettered
// alone, with its own bytes and the record's coordinates, while the rows
// around it are stored. A bad packed record is dead-lettered whole.
func TestPackedAndSingleRowsAreStored(t *testing.T) {
	ctx := context.Background()
	addr := testenv.ClickHouse(t)
	db := testenv.Database(t, addr)
	if _, err := migration.Apply(ctx, testenv.ClickHouseOptions(addr, db), db, schemas.FS, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	conn := testenv.ClickHouseConn(t, addr, db)
	broker := testenv.Broker(t)
	dlqTopic := fmt.Sprintf("sinkstage-test-%d-dlq", time.Now().UnixNano())
	k := stagetest.New(t, broker, "sink", dlqTopic, nil)
	w, err := sink.NewWriter(conn, sink.Config{}, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(w, k.DLQ, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Assigned(ctx, "rows", 0, 0); err != nil {
		t.Fatal(err)
	}

	garbage := []byte{1, 2, 0xff} // a charge row cut short
	packed := wire.BeginPacked(nil)
	for i := range 40 {
		packed = wire.AppendPacked(packed, chargeRow(i))
		if i == 20 {
			packed = wire.AppendPacked(packed, garbage)
		}
	}
	badPacked := append(wire.BeginPacked(nil), 5, 1) // a part longer than the record
	batch := []kafka.Message{
		{Topic: "rows", Partition: 0, Offset: 0, Value: chargeRow(100)},
		{Topic: "rows", Partition: 0, Offset: 1, Value: packed},
		{Topic: "rows", Partition: 0, Offset: 2, Value: badPacked},
		{Topic: "rows", Partition: 0, Offset: 3, Value: chargeRow(101)},
		// Delivered again (an upstream replay): stored once.
		{Topic: "rows", Partition: 0, Offset: 4, Value: slices.Clone(packed)},
	}
	if _, err := s.Handle(ctx, "rows", 0, batch); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoked(ctx, "rows", 0); err != nil {
		t.Fatal(err)
	}

	var n, ids uint64
	if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(charge_id) FROM charges").Scan(&n, &ids); err != nil {
		t.Fatal(err)
	}
	if n != 42 || ids != 42 {
		t.Errorf("%d charges stored (%d ids), want the 40 packed and 2 single ones once", n, ids)
	}
	var atOne uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM charges WHERE sink_offset = 1").Scan(&atOne); err != nil {
		t.Fatal(err)
	}
	if atOne != 40 {
		t.Errorf("%d charges at the packed record's offset, want 40", atOne)
	}

	var dead []string
	for _, m := range testenv.ReadPartition(t, broker, dlqTopic, 0) {
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		dead = append(dead, h[stream.HeaderDLQReason]+"@"+h[stream.HeaderDLQSourceOffset]+":"+strconv.Quote(string(m.Value)))
	}
	want := []string{"bad_row@1:" + strconv.Quote(string(garbage)), "bad_row@2:" + strconv.Quote(string(badPacked)),
		"bad_row@4:" + strconv.Quote(string(garbage))}
	if !slices.Equal(dead, want) {
		t.Errorf("dead letters %q, want %q", dead, want)
	}
}
