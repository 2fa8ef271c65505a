package account

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/accounts"
	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/pricing"
	"github.com/wameter/wameter/pkg/stream"
	"github.com/wameter/wameter/pkg/testenv"
	"github.com/wameter/wameter/services/wameter/internal/stage"
	"github.com/wameter/wameter/services/wameter/internal/stage/stagetest"
	"github.com/wameter/wameter/services/wameter/internal/wire"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// Units packed into records (the window packs a flush's units per units
// partition) price exactly as the same units one to a record, in any
// batches; an undecodable unit in a packed record is dead-lettered alone,
// with the record's coordinates and its own bytes, and the others go on.
func TestPackedUnitsPriceAsSingleUnits(t *testing.T) {
	broker := testenv.Broker(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Two window partitions' units over a PMP day: marketing and utility
	// messages to three markets, each source's sequence numbers rising,
	// then both sources' watermarks past the day.
	var single []kafka.Message
	markets := []string{"BR", "IN", "NORTH_AMERICA"}
	seq := [2]uint64{}
	for i := range 600 {
		src := int32(i % 2)
		seq[src]++
		u := billing.Unit{WABA: 102938475610, PhoneNumberID: 106540352242922, Customer: 5511900000000 + uint64(i%50),
			Market: markets[i%3], Category: billing.CatMarketing, Model: billing.PMP, RuleSet: billing.RulesPMP2025,
			PricingType: billing.PTChargeable, BillingUnit: billing.UnitMessage,
			ChargedAt: time.Date(2025, 8, 4, 0, 0, 0, 0, time.UTC).Unix() + int64(i)*60, MessageID: fmt.Sprintf("wamid.%d", i)}
		if i%4 == 0 {
			u.Category = billing.CatUtility
		}
		single = append(single, kafka.Message{Value: wire.AppendUnit(nil, src, seq[src], &u)})
	}
	for src := range int32(2) {
		single = append(single, kafka.Message{Value: wire.AppendWatermark(nil, src, wire.Idle)})
	}
	number := func(msgs []kafka.Message) []kafka.Message {
		for i := range msgs {
			msgs[i].Topic, msgs[i].Partition, msgs[i].Offset = "units", 0, int64(i)
		}
		return msgs
	}
	number(single)
	// packed: the units in records of up to 37, each watermark alone.
	pack := func(msgs []kafka.Message) []kafka.Message {
		var out []kafka.Message
		var open []byte
		for i, m := range msgs {
			var r wire.Record
			if err := wire.Read(m.Value, &r); err != nil {
				t.Fatal(err)
			}
			if !r.IsWatermark {
				if open == nil {
					open = wire.BeginPacked(nil)
				}
				open = wire.AppendPacked(open, m.Value)
			}
			if open != nil && (r.IsWatermark || i%37 == 36) {
				out = append(out, kafka.Message{Value: open})
				open = nil
			}
			if r.IsWatermark {
				out = append(out, m)
			}
		}
		return number(out)
	}

	run := func(msgs []kafka.Message, batch int) (rows []string, dead []string) {
		prefix := fmt.Sprintf("account-packed-%d", time.Now().UnixNano())
		rowsTopic, stateTopic, dlqTopic := prefix+"-rows", prefix+"-state", prefix+"-dlq"
		k := stagetest.New(t, broker, "account", dlqTopic, map[string]int{rowsTopic: 1, stateTopic: 1})
		cat, err := pricing.Default()
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(Config{UnitsTopic: "units", RowsTopic: rowsTopic, StateTopic: stateTopic, Sources: 2, RowsPartitions: 1},
			stage.Deps{Kafka: k.Config, Catalog: cat, Accounts: accounts.Empty(), Producer: k.Producer, DLQ: k.DLQ, Logger: zap.NewNop(), Registry: k.Registry})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Assigned(ctx, "units", 0, 0); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(msgs); i += batch {
			if _, err := s.Handle(ctx, "units", 0, slices.Clone(msgs[i:min(i+batch, len(msgs))])); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Revoked(ctx, "units", 0); err != nil {
			t.Fatal(err)
		}
		for _, row := range stagetest.Parts(t, broker, rowsTopic, 0) {
			rows = append(rows, string(row))
		}
		for _, m := range testenv.ReadPartition(t, broker, dlqTopic, 0) {
			h := map[string]string{}
			for _, x := range m.Headers {
				h[x.Key] = string(x.Value)
			}
			dead = append(dead, h[stream.HeaderDLQReason]+"@"+h[stream.HeaderDLQSourceOffset]+":"+strconv.Quote(string(m.Value)))
		}
		return rows, dead
	}

	want, dead := run(single, 1000)
	if len(want) != 600 || len(dead) != 0 {
		t.Fatalf("one unit a record: %d charge rows, dead letters %v; want 600 and none", len(want), dead)
	}
	packed := pack(single)
	if len(packed) >= len(single)/10 {
		t.Fatalf("%d packed records for %d units: not packed", len(packed), len(single))
	}
	for _, batch := range []int{1, 4, len(packed)} {
		if rows, dead := run(packed, batch); !slices.Equal(rows, want) || len(dead) != 0 {
			t.Errorf("packed, batches of %d: %d rows (equal: %v), dead letters %v", batch, len(rows), slices.Equal(rows, want), dead)
		}
	}

	// A garbage part between two units of the first packed record: it is
	// dead-lettered alone, and every unit is priced.
	parts, err := wire.SplitPacked(packed[0].Value, nil)
	if err != nil {
		t.Fatal(err)
	}
	garbage := []byte{1, 'X', 0xff}
	mixed := wire.BeginPacked(nil)
	for i, part := range parts {
		mixed = wire.AppendPacked(mixed, part)
		if i == 0 {
			mixed = wire.AppendPacked(mixed, garbage)
		}
	}
	withBad := slices.Clone(packed)
	withBad[0].Value = mixed
	rows, dead := run(withBad, 3)
	if !slices.Equal(rows, want) || !slices.Equal(dead, []string{"bad_unit@0:" + strconv.Quote(string(garbage))}) {
		t.Errorf("with a bad part: %d rows (equal: %v), dead letters %v", len(rows), slices.Equal(rows, want), dead)
	}
}
