package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wameter/wameter/pkg/billing"
)

func TestWriterStoresRowsExactly(t *testing.T) {
	e := newEnv(t)
	w := newWriter(t, e.conn, Config{})
	resume(t, w, 0, 1)

	var want []record
	offsets := map[int32]int64{}
	put := func(r Row, partition int32) {
		rec := record{r, partition, offsets[partition]}
		offsets[partition]++
		add(t, w, &rec.row, rec.partition, rec.offset)
		want = append(want, rec)
	}
	for i := range 150 {
		put(chargeRecord(t, i), int32(i%2))
		if i%3 == 0 {
			put(conversationRecord(t, i), int32(i%2))
		}
	}
	// Extremes of the columns.
	extreme := testUnit(1000)
	extreme.AmountMicro, extreme.Tier, extreme.WABA = maxAmountMicro, 65535, 0
	put(decode(t, AppendChargeRow(nil, &extreme, 0)), 0)
	extreme = testUnit(1001)
	extreme.AmountMicro = -maxAmountMicro
	put(decode(t, AppendChargeRow(nil, &extreme, 0)), 0)

	flush(t, w)

	var wantCharges, wantConvs []record
	for _, r := range want {
		if r.row.Table == TableCharges {
			wantCharges = append(wantCharges, r)
		} else {
			wantConvs = append(wantConvs, r)
		}
	}
	sortRecords(wantCharges)
	sortRecords(wantConvs)
	compareRecords(t, "charges", storedCharges(t, e.conn), wantCharges)
	compareRecords(t, "conversations", storedConversations(t, e.conn), wantConvs)

	if got := inserted(t, w, TableCharges); got != float64(len(wantCharges)) {
		t.Errorf("inserted charges metric %v, want %d", got, len(wantCharges))
	}
	for p, next := range offsets {
		if got, ok := w.Committable(p); !ok || got != next {
			t.Errorf("Committable(%d) = %d, %v; want %d", p, got, ok, next)
		}
	}
	if n := count(t, e.conn, "SELECT count() FROM charges WHERE inserted_at < now() - 3600"); n != 0 {
		t.Errorf("%d rows without a current inserted_at", n)
	}
}

func sortRecords(rs []record) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && (rs[j].partition < rs[j-1].partition ||
			rs[j].partition == rs[j-1].partition && rs[j].offset < rs[j-1].offset); j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

func compareRecords(t *testing.T, table string, got, want []record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows stored, want %d", table, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s row %d:\n got %+v\nwant %+v", table, i, got[i], want[i])
		}
	}
}

func TestWriterSkipsDuplicates(t *testing.T) {
	e := newEnv(t)
	w := newWriter(t, e.conn, Config{})
	resume(t, w, 0)

	rows := make([]Row, 120)
	for i := range rows {
		rows[i] = chargeRecord(t, i)
	}
	for i := range 100 {
		add(t, w, &rows[i], 0, int64(i))
	}
	flush(t, w)

	// Redelivered at the same offsets (a consumer restarted before its
	// commit): all skipped by offset.
	for i := range 100 {
		add(t, w, &rows[i], 0, int64(i))
	}
	flush(t, w)
	if got := skipped(t, w, TableCharges, reasonOffset); got != 100 {
		t.Errorf("skipped by offset %v, want 100", got)
	}

	// Re-emitted upstream at new offsets, between new rows and twice within
	// one batch: skipped by id.
	add(t, w, &rows[10], 0, 100)
	add(t, w, &rows[100], 0, 101)
	add(t, w, &rows[20], 0, 102)
	add(t, w, &rows[101], 0, 103)
	add(t, w, &rows[101], 0, 104)
	flush(t, w)
	if got := skipped(t, w, TableCharges, reasonID); got != 3 {
		t.Errorf("skipped by id %v, want 3", got)
	}

	if n := count(t, e.conn, "SELECT count() FROM charges"); n != 102 {
		t.Fatalf("%d rows stored, want 102", n)
	}
	if n := count(t, e.conn, "SELECT uniqExact(charge_id) FROM charges"); n != 102 {
		t.Fatalf("%d distinct ids, want 102", n)
	}
	if next, _ := w.Committable(0); next != 105 {
		t.Errorf("Committable = %d, want 105", next)
	}
	if n := count(t, e.conn, "SELECT toUInt64(sum(units)) FROM spend_hourly"); n != 102 {
		t.Errorf("rollup counts %d units, want 102", n)
	}
}

func TestWriterResumeAfterCrash(t *testing.T) {
	e := newEnv(t)
	const p = 3
	rec := func(i int) Row {
		if i%4 == 0 {
			return conversationRecord(t, i)
		}
		return chargeRecord(t, i)
	}

	// The first process stores offsets 0..199, batches 200..249, and dies
	// before flushing them or committing anything.
	first := newWriter(t, e.conn, Config{})
	resume(t, first, p)
	for i := range 250 {
		r := rec(i)
		add(t, first, &r, p, int64(i))
		if i == 199 {
			flush(t, first)
		}
	}

	// The next one starts from Kafka's committed offset (none: 0), and the
	// upstream re-emits two stored rows at new offsets.
	second := newWriter(t, e.conn, Config{})
	res, err := second.Resume(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if res.MaxOffset[TableConversations] != 196 || res.MaxOffset[TableCharges] != 199 || res.RecentIDs != 200 {
		t.Fatalf("resumed %+v, want max offsets 196/199 and 200 ids", res)
	}
	if js, err := json.Marshal(res.MaxOffset); err != nil || string(js) != `{"charges":199,"conversations":196}` {
		t.Errorf("MaxOffset as JSON: %s, %v", js, err)
	}
	for i := range 250 {
		r := rec(i)
		add(t, second, &r, p, int64(i))
	}
	dupConv, dupCharge, fresh := rec(8), rec(9), rec(251)
	add(t, second, &dupConv, p, 250)
	add(t, second, &dupCharge, p, 251)
	add(t, second, &fresh, p, 252)
	flush(t, second)

	// Within the id horizon (all of it here) stored rows are recognised by
	// id, not offset: see TestWriterResumeFillsAGapBelowTheHighestOffset.
	if got := skipped(t, second, TableCharges, reasonOffset) + skipped(t, second, TableConversations, reasonOffset); got != 0 {
		t.Errorf("skipped by offset %v, want 0", got)
	}
	if got := skipped(t, second, TableCharges, reasonID) + skipped(t, second, TableConversations, reasonID); got != 202 {
		t.Errorf("skipped by id %v, want 202 (200 stored rows, 2 re-emitted)", got)
	}
	convs := count(t, e.conn, "SELECT count() FROM conversations")
	charges := count(t, e.conn, "SELECT count() FROM charges")
	if convs != 63 || charges != 188 {
		t.Fatalf("stored %d conversations and %d charges, want 63 and 188", convs, charges)
	}
	if next, ok := second.Committable(p); !ok || next != 253 {
		t.Errorf("Committable = %d, %v; want 253", next, ok)
	}

	// A small horizon bounds what a resumed writer remembers, but never
	// cuts the partition's last insert (which a crash may have cut off):
	// the ids reach back to the end of the insert before it.
	small := newWriter(t, e.conn, Config{DedupHorizon: 10})
	res, err = small.Resume(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	// The last inserts hold offsets 200..252 (conversations) after ones
	// up to 196: offsets 197..252 hold 54 stored rows (250, 251 skipped).
	if res.RecentIDs != 54 {
		t.Fatalf("resumed with horizon 10: %d ids, want 54", res.RecentIDs)
	}
	again := rec(245) // stored at offset 245, within the horizon of 252
	add(t, small, &again, p, 300)
	flush(t, small)
	if got := count(t, e.conn, "SELECT count() FROM charges"); got != 188 {
		t.Fatalf("re-emission within the horizon stored: %d charges", got)
	}
}

// An insert whose rows span two months is two parts; a ClickHouse server
// killed between them stores one. The rows it lost have offsets below the
// highest stored one: a resumed writer must store them, not skip them by
// offset, and must still skip every row that is stored.
func TestWriterResumeFillsAGapBelowTheHighestOffset(t *testing.T) {
	e := newEnv(t)
	rec := func(i int) Row {
		if i%4 == 0 {
			return conversationRecord(t, i)
		}
		return chargeRecord(t, i)
	}
	rows := func(p int) uint64 {
		q := fmt.Sprintf("SELECT (SELECT count() FROM charges WHERE sink_partition = %d) + (SELECT count() FROM conversations WHERE sink_partition = %d)", p, p)
		return count(t, e.conn, q)
	}
	// The first writer stores offsets lo..lo+99 but those of the part the
	// server never stored; the next one, given them all again, must store
	// exactly the missing ones: with the default horizon and with one far
	// smaller than the insert.
	for _, c := range []struct {
		p       int32
		lo      int
		horizon int
	}{{2, 0, 0}, {3, 200, 5}} {
		first := newWriter(t, e.conn, Config{DedupHorizon: c.horizon})
		resume(t, first, c.p)
		for i := c.lo; i < c.lo+100; i++ {
			if i >= c.lo+40 && i < c.lo+60 {
				continue // the part the server never stored
			}
			r := rec(i)
			add(t, first, &r, c.p, int64(i))
		}
		flush(t, first)
		if got := rows(int(c.p)); got != 80 {
			t.Fatalf("partition %d: first writer stored %d rows, want 80", c.p, got)
		}
		second := newWriter(t, e.conn, Config{DedupHorizon: c.horizon})
		resume(t, second, c.p)
		for i := c.lo; i < c.lo+100; i++ {
			r := rec(i)
			add(t, second, &r, c.p, int64(i))
		}
		flush(t, second)
		if got := rows(int(c.p)); got != 100 {
			t.Errorf("partition %d, horizon %d: %d rows after the resumed writer, want 100 (the 20 lost stored, none twice)", c.p, c.horizon, got)
		}
		if got := skipped(t, second, TableCharges, reasonID) + skipped(t, second, TableConversations, reasonID); got != 80 {
			t.Errorf("partition %d: skipped by id %v, want the 80 stored rows", c.p, got)
		}
		checkRollups(t, e.conn, fmt.Sprintf("partition %d after the gap is filled", c.p))
	}
}

func TestRollupsMatchRawTables(t *testing.T) {
	e := newEnv(t)
	w := newWriter(t, e.conn, Config{})
	resume(t, w, 0, 1, 2)
	var totalMicros int64
	offsets := map[int32]int64{}
	next := func(p int32) int64 { o := offsets[p]; offsets[p]++; return o }
	for i := range 1200 {
		p := int32(i % 3)
		r := chargeRecord(t, i)
		totalMicros += r.Charge.AmountMicro
		add(t, w, &r, p, next(p))
		if i%5 == 0 {
			c := conversationRecord(t, i)
			add(t, w, &c, p, next(p))
		}
		if i%250 == 249 { // several inserts: several rows per rollup key
			flush(t, w)
		}
	}
	flush(t, w)

	ctx := context.Background()
	const spendKey = "concat(waba_id, '|', portfolio_id, '|', category, '|', market, '|', pricing_model, '|', pricing_type, '|', currency, '|', toString(hour))"
	rawSpend := keyValues(t, e.conn, "SELECT "+spendKey+" AS k, toString(count()) "+
		"FROM (SELECT *, toStartOfHour(charged_at) AS hour FROM charges) GROUP BY k")
	if len(rawSpend) < 100 {
		t.Fatalf("charges fall in %d rollup groups: too few to test", len(rawSpend))
	}
	check := func(when string) {
		t.Helper()
		checkRollups(t, e.conn, when)
		var total string
		if err := e.conn.QueryRow(ctx, "SELECT toString(sum(amount)) FROM spend_hourly").Scan(&total); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("%d.%06d", totalMicros/1e6, totalMicros%1e6); total != want {
			t.Fatalf("%s: total spend %s, want %s", when, total, want)
		}
	}
	check("before merges")
	if n := count(t, e.conn, "SELECT count() FROM spend_hourly"); n <= uint64(len(rawSpend)) {
		t.Fatalf("test does not exercise unmerged rollup rows: %d rows for %d groups", n, len(rawSpend))
	}
	for _, table := range []string{"spend_hourly", "conversations_hourly"} {
		if err := e.conn.Exec(ctx, "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
			t.Fatal(err)
		}
	}
	check("after OPTIMIZE FINAL")
}

func TestWriterAPIErrors(t *testing.T) {
	e := newEnv(t)
	w := newWriter(t, e.conn, Config{})
	r := chargeRecord(t, 1)
	if err := w.Add(&r, 5, 0); !errors.Is(err, ErrNotResumed) {
		t.Fatalf("Add before Resume: %v", err)
	}
	resume(t, w, 5)
	if _, err := w.Resume(context.Background(), 5); err == nil {
		t.Fatal("second Resume accepted")
	}
	bad := r
	bad.Charge.ChargeID = strings.ToUpper(bad.Charge.ChargeID)
	if err := w.Add(&bad, 5, 0); err == nil || !strings.Contains(err.Error(), "not 32 hex digits") {
		t.Fatalf("Add with bad id: %v", err)
	}
	if err := w.Add(&Row{}, 5, 0); err == nil {
		t.Fatal("Add of an empty row accepted")
	}
	if _, ok := w.Committable(5); ok {
		t.Fatal("Committable before any Flush")
	}
	add(t, w, &r, 5, 0)
	if w.Pending() != 1 || w.Full() {
		t.Fatalf("Pending %d Full %v", w.Pending(), w.Full())
	}
	if err := w.Release(5); !errors.Is(err, ErrPending) {
		t.Fatalf("Release with a pending row: %v", err)
	}
	flush(t, w)
	if err := w.Release(5); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.Committable(5); ok {
		t.Fatal("Committable after Release")
	}
	if _, err := NewWriter(e.conn, Config{}, nil, nil); err == nil {
		t.Fatal("NewWriter without logger or registry accepted")
	}
	if !w.Healthy() {
		t.Fatal("not healthy after a good flush")
	}
}

// A schema the batch cannot fit is not retried forever.
func TestFlushStopsOnPermanentError(t *testing.T) {
	e := newEnv(t)
	if err := e.conn.Exec(context.Background(), "ALTER TABLE charges DROP COLUMN rate_card"); err != nil {
		t.Fatal(err)
	}
	w := newWriter(t, e.conn, fastRetry(Config{}))
	resume(t, w, 0)
	r := chargeRecord(t, 1)
	add(t, w, &r, 0, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := w.Flush(ctx)
	if err == nil || ctx.Err() != nil {
		t.Fatalf("Flush = %v (ctx %v), want a prompt error", err, ctx.Err())
	}
	if !strings.Contains(err.Error(), "rate_card") || w.Healthy() {
		t.Fatalf("error %v, healthy %v", err, w.Healthy())
	}
	if w.Release(0) == nil {
		t.Fatal("the failed row was dropped")
	}
}

// testUnitIDs guards the fixtures: every test row is distinct.
func TestFixturesAreDistinct(t *testing.T) {
	seen := map[billing.ID]int{}
	for i := range 1300 {
		u := testUnit(i)
		if j, dup := seen[u.ID()]; dup {
			t.Fatalf("units %d and %d share an id", i, j)
		}
		seen[u.ID()] = i
		c := testConversation(i)
		if j, dup := seen[c.ID()]; dup {
			t.Fatalf("conversation %d and %d share an id", i, j)
		}
		seen[c.ID()] = i
	}
}

// A database where an old materialized view still fills a rollup (schemas
// not applied, or applied while an old sink runs) is refused: both would
// count every row.
func TestWriterRefusesWhileRollupViewsExist(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.conn.Exec(ctx, "CREATE VIEW spend_hourly_mv AS SELECT 1 AS x"); err != nil {
		t.Fatal(err)
	}
	w := newWriter(t, e.conn, Config{})
	_, err := w.Resume(ctx, 0)
	if err == nil || !strings.Contains(err.Error(), "spend_hourly_mv") || !strings.Contains(err.Error(), "wameter migrate") {
		t.Fatalf("Resume with the view present: %v; want a refusal naming the view and what to do", err)
	}
	if err := e.conn.Exec(ctx, "DROP TABLE spend_hourly_mv"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Resume(ctx, 0); err != nil {
		t.Fatalf("Resume once the view is gone: %v", err)
	}
}

// The rows of one packed record share its offset. Added one by one, a Flush
// between two of them stores the first, and the second is then skipped as
// stored ("offset at or below the highest stored one"); AddRecord batches
// them together, so they land in one insert. Rows AddRecord refuses (a bad
// id) are rejected one by one, and the others stored.
func TestRowsOfOneRecordLandTogether(t *testing.T) {
	e := newEnv(t)
	w := newWriter(t, e.conn, Config{})
	resume(t, w, 0)

	// One by one, with a Flush in between: the second row is lost. This is
	// what AddRecord prevents; the assertion guards the reason for it.
	add(t, w, ptr(chargeRecord(t, 0)), 0, 0)
	flush(t, w)
	add(t, w, ptr(chargeRecord(t, 1)), 0, 0)
	flush(t, w)
	if n := count(t, e.conn, "SELECT count() FROM charges"); n != 1 {
		t.Fatalf("%d charges stored from rows added one by one around a flush, want 1 (the premise changed?)", n)
	}

	// A packed record at offset 1: four rows, one with a bad id.
	rows := []Row{chargeRecord(t, 2), chargeRecord(t, 3), chargeRecord(t, 4), conversationRecord(t, 5)}
	rows[2].Charge.ChargeID = "not-an-id"
	var rejected []int
	w.AddRecord(rows, 0, 1, func(i int, err error) {
		if err == nil {
			t.Errorf("row %d rejected without an error", i)
		}
		rejected = append(rejected, i)
	})
	if len(rejected) != 1 || rejected[0] != 2 {
		t.Fatalf("rejected rows %v, want [2]", rejected)
	}
	flush(t, w)
	if n := count(t, e.conn, "SELECT count() FROM charges WHERE sink_offset = 1"); n != 2 {
		t.Errorf("%d charges stored at offset 1, want 2", n)
	}
	if n := count(t, e.conn, "SELECT count() FROM conversations WHERE sink_offset = 1"); n != 1 {
		t.Errorf("%d conversations stored at offset 1, want 1", n)
	}
	// Delivered again (a restart before the commit): all skipped.
	w.AddRecord(rows, 0, 1, func(int, error) {})
	flush(t, w)
	if n := count(t, e.conn, "SELECT count() FROM charges"); n != 3 {
		t.Errorf("%d charges after the record came again, want 3", n)
	}
}

func ptr[T any](v T) *T { return &v }
