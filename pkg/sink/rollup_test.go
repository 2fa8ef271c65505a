package sink

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// checkRollups fails t unless spend_hourly and conversations_hourly, read
// with sum() ... GROUP BY, equal the groups of charges and conversations
// (count and sum(amount) per key, as the old views computed them).
func checkRollups(t *testing.T, conn clickhouse.Conn, when string) {
	t.Helper()
	query := func(q string) map[string]string {
		t.Helper()
		return keyValues(t, conn, q)
	}
	compare := func(name string, got, want map[string]string) {
		t.Helper()
		if len(want) == 0 {
			t.Fatalf("%s: %s: the table is empty: the test checks nothing", when, name)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s[%s] = %q, the table gives %q", when, name, k, got[k], v)
			}
		}
		for k, v := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: %s[%s] = %q, not in the table", when, name, k, v)
			}
		}
	}
	const spendKey = "concat(waba_id, '|', portfolio_id, '|', category, '|', market, '|', pricing_model, '|', pricing_type, '|', currency, '|', toString(hour))"
	compare("spend_hourly",
		query("SELECT "+spendKey+" AS k, concat(toString(sum(units)), ' ', toString(sum(amount))) FROM spend_hourly GROUP BY k"),
		query("SELECT "+spendKey+" AS k, concat(toString(count()), ' ', toString(sum(amount))) "+
			"FROM (SELECT *, toStartOfHour(charged_at) AS hour FROM charges) GROUP BY k"))
	const convKey = "concat(waba_id, '|', category, '|', market, '|', pricing_model, '|', toString(hour))"
	compare("conversations_hourly",
		query("SELECT "+convKey+" AS k, toString(sum(conversations)) FROM conversations_hourly GROUP BY k"),
		query("SELECT "+convKey+" AS k, toString(count()) "+
			"FROM (SELECT *, toStartOfHour(opened_at) AS hour FROM conversations) GROUP BY k"))
}

// addRows adds n charges and n/4 conversations to partition 0 from offset
// first on, and returns the next offset. The rows span two months.
func addRows(t *testing.T, w *Writer, seed, n int, first int64) int64 {
	t.Helper()
	offset := first
	for i := seed; i < seed+n; i++ {
		r := chargeRecord(t, i)
		add(t, w, &r, 0, offset)
		offset++
		if i%4 == 0 {
			c := conversationRecord(t, i)
			add(t, w, &c, 0, offset)
			offset++
		}
	}
	return offset
}

var errCrash = errors.New("simulated crash")

func TestRollupsRepairedAfterCrashBetweenInserts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	// A first flush with its rollups, then one whose charges rollup never
	// comes: the process dies after the charges insert.
	w1 := newWriter(t, e.conn, fastRetry(Config{}))
	resume(t, w1, 0)
	next := addRows(t, w1, 0, 200, 0)
	flush(t, w1)
	checkRollups(t, e.conn, "after a normal flush")
	w1.hookBeforeRollup = func(table Table) error {
		if table == TableCharges {
			return permanentError{errCrash}
		}
		return nil
	}
	next = addRows(t, w1, 200, 200, next)
	if err := w1.Flush(ctx); !errors.Is(err, errCrash) {
		t.Fatalf("flush with failing rollup: %v, want the simulated crash", err)
	}
	if err := w1.Release(0); !errors.Is(err, ErrPending) {
		t.Fatalf("release with a rollup not stored: %v, want ErrPending", err)
	}
	if n := count(t, e.conn, "SELECT count() FROM charges"); n != 400 {
		t.Fatalf("charges has %d rows, want 400", n)
	}
	if n := count(t, e.conn, "SELECT toUInt64(sum(units)) FROM spend_hourly"); n != 200 {
		t.Fatalf("spend_hourly counts %d units before the repair, want 200 (the crash left it short)", n)
	}

	// Another process resumes the partition: the rollups are completed,
	// once, however often the partition is resumed.
	w2 := newWriter(t, e.conn, Config{})
	res, err := w2.Resume(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The charges of the lost insert span two months.
	if res.RepairedRollups != 2 {
		t.Errorf("first resume repaired %d (insert, month) rollups, want 2", res.RepairedRollups)
	}
	checkRollups(t, e.conn, "after the repair")
	for i := range 2 {
		if err := w2.Release(0); err != nil {
			t.Fatal(err)
		}
		res, err := w2.Resume(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if res.RepairedRollups != 0 {
			t.Errorf("resume %d after the repair repaired %d rollups, want 0", i+2, res.RepairedRollups)
		}
	}
	w3 := newWriter(t, e.conn, Config{})
	if res, err := w3.Resume(ctx, 0); err != nil || res.RepairedRollups != 0 {
		t.Errorf("resume by a third writer: repaired %d, err %v; want 0, nil", res.RepairedRollups, err)
	}
	checkRollups(t, e.conn, "after resuming again")

	// The partition goes on, and the rollups stay exact through merges.
	addRows(t, w2, 0, 400, next) // the same rows again: all skipped
	addRows(t, w2, 400, 100, next+600)
	flush(t, w2)
	if n := count(t, e.conn, "SELECT count() FROM charges"); n != 500 {
		t.Fatalf("charges has %d rows, want 500", n)
	}
	checkRollups(t, e.conn, "after more inserts")
	for _, table := range []string{"spend_hourly", "conversations_hourly"} {
		if err := e.conn.Exec(ctx, "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
			t.Fatal(err)
		}
	}
	checkRollups(t, e.conn, "after OPTIMIZE FINAL")
}

// A process killed while its rollup insert had stored one month of two
// (one part per month): the repair adds the other month only.
func TestRollupRepairAddsOnlyMissingMonths(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	w1 := newWriter(t, e.conn, Config{})
	resume(t, w1, 0)
	addRows(t, w1, 0, 200, 0)
	w1.hookBeforeRollup = func(table Table) error {
		if table != TableCharges {
			return nil
		}
		// Store the rollup of the first month of the insert, then die.
		id := w1.pending[table].id
		months, err := w1.months(ctx, fmt.Sprintf("SELECT DISTINCT toYYYYMM(%s) FROM %s WHERE insert_id = %d", timeColumn(table), table, id))
		if err != nil || len(months) != 2 {
			return fmt.Errorf("months of the insert: %v, %v; want two", months, err)
		}
		first := uint32(0)
		for m := range months {
			if first == 0 || m < first {
				first = m
			}
		}
		if err := e.conn.Exec(ctx, rollupInsert(table)+"\n"+rollupSelect(table, id, first)); err != nil {
			return err
		}
		return permanentError{errCrash}
	}
	if err := w1.Flush(ctx); !errors.Is(err, errCrash) {
		t.Fatalf("flush: %v, want the simulated crash", err)
	}
	w2 := newWriter(t, e.conn, Config{})
	res, err := w2.Resume(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.RepairedRollups != 1 {
		t.Errorf("repaired %d (insert, month) rollups, want 1: the charges rollup died before its second month", res.RepairedRollups)
	}
	checkRollups(t, e.conn, "after the repair")
}

// A rollup insert the server stored but did not acknowledge is not
// inserted again by the retry.
func TestRollupRetryAfterLostAckDoesNotDuplicate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	w := newWriter(t, e.conn, fastRetry(Config{}))
	resume(t, w, 0)
	addRows(t, w, 0, 300, 0)
	failures := map[Table]int{}
	w.hookBeforeRollup = func(table Table) error {
		if failures[table] > 0 {
			return nil
		}
		failures[table]++
		// The attempt reaches the server, the answer is lost.
		p := &w.pending[table]
		for m := range map[uint32]bool{202411: true, 202412: true, 202506: true, 202507: true} {
			if err := e.conn.Exec(ctx, rollupInsert(table)+"\n"+rollupSelect(table, p.id, m)); err != nil {
				return err
			}
		}
		return errors.New("connection reset")
	}
	flush(t, w)
	if failures[TableCharges] != 1 || failures[TableConversations] != 1 {
		t.Fatalf("hook ran %v: the test did not exercise a retry", failures)
	}
	checkRollups(t, e.conn, "after retried rollup inserts")
	if err := w.Release(0); err != nil {
		t.Fatal(err)
	}
	if res, err := w.Resume(ctx, 0); err != nil || res.RepairedRollups != 0 {
		t.Errorf("resume: repaired %d, err %v; want 0, nil", res.RepairedRollups, err)
	}
}

// A table insert retried after a partly stored attempt keeps its insert id:
// the rollup covers the rows of both attempts once.
func TestRollupAfterRetriedTableInsert(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	w := newWriter(t, e.conn, fastRetry(Config{}))
	resume(t, w, 0)
	addRows(t, w, 0, 100, 0)
	var ids []uint64
	w.hookBeforeSend = func(table Table) error {
		ids = append(ids, w.pending[table].id)
		if len(ids) == 1 {
			return errors.New("connection reset")
		}
		return nil
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 || ids[0] != ids[1] || ids[0] == ids[2] {
		t.Fatalf("insert ids by send attempt %v: want a retry with the same id, then another table's", ids)
	}
	w.hookBeforeSend = nil
	addRows(t, w, 100, 100, 200)
	flush(t, w)
	if n := count(t, e.conn, "SELECT uniqExact(insert_id) FROM charges"); n != 2 {
		t.Errorf("charges hold %d insert ids, want 2", n)
	}
	checkRollups(t, e.conn, "after a retried insert")
}

// An insert holding rows of two partitions, cut off before its rollup,
// is repaired once when the partitions go to two new owners: by the
// owner of the lower one.
func TestRollupRepairedOnceAcrossOwners(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	w1 := newWriter(t, e.conn, Config{})
	resume(t, w1, 0, 1)
	for i := range 200 {
		r := chargeRecord(t, i)
		add(t, w1, &r, int32(i%2), int64(i/2))
	}
	w1.hookBeforeRollup = func(Table) error { return permanentError{errCrash} }
	if err := w1.Flush(ctx); !errors.Is(err, errCrash) {
		t.Fatalf("flush: %v, want the simulated crash", err)
	}
	if n := count(t, e.conn, "SELECT count() FROM spend_hourly"); n != 0 {
		t.Fatalf("spend_hourly has %d rows before the repair, want 0", n)
	}

	owner1 := newWriter(t, e.conn, Config{})
	if res, err := owner1.Resume(ctx, 1); err != nil || res.RepairedRollups != 0 {
		t.Fatalf("resume of partition 1: repaired %d, err %v; want 0, nil (partition 0 is the insert's lowest)", res.RepairedRollups, err)
	}
	if n := count(t, e.conn, "SELECT count() FROM spend_hourly"); n != 0 {
		t.Fatalf("spend_hourly has %d rows after the owner of partition 1 resumed, want 0", n)
	}
	owner0 := newWriter(t, e.conn, Config{})
	if res, err := owner0.Resume(ctx, 0); err != nil || res.RepairedRollups != 2 {
		t.Fatalf("resume of partition 0: repaired %d, err %v; want 2 (two months), nil", res.RepairedRollups, err)
	}
	if n := count(t, e.conn, "SELECT toUInt64(sum(units)) FROM spend_hourly"); n != 200 {
		t.Fatalf("spend_hourly counts %d units after the repair, want 200", n)
	}
	if n := count(t, e.conn, "SELECT count() FROM conversations"); n != 0 {
		t.Fatalf("conversations has %d rows, want none", n)
	}
	// checkRollups wants both tables filled.
	w := newWriter(t, e.conn, Config{})
	resume(t, w, 2)
	c := conversationRecord(t, 1)
	add(t, w, &c, 2, 0)
	flush(t, w)
	checkRollups(t, e.conn, "after the repair")
}
