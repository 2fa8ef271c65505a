package migration_test

import (
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/shopspring/decimal"

	"go.uber.org/zap/zaptest"

	"github.com/wameter/wameter/pkg/migration"
	"github.com/wameter/wameter/pkg/testenv"
	"github.com/wameter/wameter/schemas"
)

func TestRealSchemas(t *testing.T) {
	files, err := migration.Load(schemas.FS)
	if err != nil {
		t.Fatalf("load schemas: %v", err)
	}
	if len(files) == 0 {
		t.Fatal("schemas.FS holds no schema file")
	}
	f := newFixture(t)
	applied, err := migration.Apply(t.Context(), f.opts, f.db, schemas.FS, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("apply schemas (applied %q): %v", applied, err)
	}
	if len(applied) != len(files) {
		t.Errorf("applied %d of %d files", len(applied), len(files))
	}
	again, err := migration.Apply(t.Context(), f.opts, f.db, schemas.FS, zaptest.NewLogger(t))
	if err != nil || len(again) != 0 {
		t.Errorf("second apply: applied %q, err %v; want nothing to do", again, err)
	}
}

// A database on the schema before insert ids (files up to 0008), holding
// rows the materialized views rolled up, upgrades to the current schema:
// the rollups keep those rows, the views are gone (nothing doubles an
// insert the sink rolls up itself), and the rollups take rows per insert.
func TestRealSchemasUpgradeKeepsRollups(t *testing.T) {
	files, err := fs.Glob(schemas.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	old := fstest.MapFS{}
	for _, name := range files {
		if name < "0009" {
			b, err := fs.ReadFile(schemas.FS, name)
			if err != nil {
				t.Fatal(err)
			}
			old[name] = file(string(b))
		}
	}
	if len(old) != 8 || len(files) <= 8 {
		t.Fatalf("%d old files of %d: the test expects files 0001..0008 before insert ids", len(old), len(files))
	}
	f := newFixture(t)
	if _, err := f.apply(old); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	conn, err := clickhouse.Open(testenv.ClickHouseOptions(f.opts.Addr[0], f.db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hour := time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC)
	charges, err := conn.PrepareBatch(ctx, "INSERT INTO charges (charge_id, waba_id, charged_at, currency, amount)")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		at := hour.Add(time.Duration(i) * 15 * time.Minute) // two months
		if err := charges.Append(fmt.Sprintf("c%d", i), "w1", at, "USD", decimal.New(int64(1_000_001+i), -6)); err != nil {
			t.Fatal(err)
		}
	}
	if err := charges.Send(); err != nil {
		t.Fatal(err)
	}
	convs, err := conn.PrepareBatch(ctx, "INSERT INTO conversations (conversation_id, waba_id, opened_at)")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := convs.Append(fmt.Sprintf("v%d", i), "w1", hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := convs.Send(); err != nil {
		t.Fatal(err)
	}
	const spend = "SELECT concat(toString(sum(units)), ' ', toString(sum(amount)), ' ', toString(uniqExact(hour))) FROM spend_hourly"
	const conversations = "SELECT toString(sum(conversations)) FROM conversations_hourly"
	str := func(q string) string {
		t.Helper()
		var s string
		if err := conn.QueryRow(ctx, q).Scan(&s); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return s
	}
	if got := str(spend); got != "10 10.000055 3" {
		t.Fatalf("spend_hourly before the upgrade: %q, want the view's 10 units", got)
	}

	applied, err := migration.Apply(ctx, f.opts, f.db, schemas.FS, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("upgrade (applied %q): %v", applied, err)
	}
	if len(applied) != len(files)-8 {
		t.Errorf("upgrade applied %q, want the %d files after 0008", applied, len(files)-8)
	}
	if got := str(spend); got != "10 10.000055 3" {
		t.Errorf("spend_hourly after the upgrade: %q, want the rows the view wrote", got)
	}
	if got := str(conversations); got != "3" {
		t.Errorf("conversations_hourly after the upgrade: %q, want 3", got)
	}
	if got := str("SELECT toString(count()) FROM system.tables WHERE database = currentDatabase() AND engine = 'MaterializedView'"); got != "0" {
		t.Errorf("%s materialized views after the upgrade, want none", got)
	}
	if got := str("SELECT toString(sum(insert_id)) FROM charges"); got != "0" {
		t.Errorf("insert_id of the old charges sums to %s, want 0", got)
	}
	for _, table := range []string{"spend_hourly", "conversations_hourly"} {
		key := str("SELECT sorting_key FROM system.tables WHERE database = currentDatabase() AND name = '" + table + "'")
		if !strings.HasSuffix(key, "insert_id") {
			t.Errorf("%s sorting key %q does not end with insert_id", table, key)
		}
	}

	// New charges no longer reach spend_hourly by themselves; rows of
	// another insert id stay apart from the old ones through merges.
	rollup, err := conn.PrepareBatch(ctx, "INSERT INTO spend_hourly (waba_id, currency, hour, units, amount, insert_id)")
	if err != nil {
		t.Fatal(err)
	}
	if err := rollup.Append("w1", "USD", hour, uint64(2), decimal.New(5, 0), uint64(77)); err != nil {
		t.Fatal(err)
	}
	if err := rollup.Send(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, "OPTIMIZE TABLE spend_hourly FINAL"); err != nil {
		t.Fatal(err)
	}
	if got := str(spend); got != "12 15.000055 3" {
		t.Errorf("spend_hourly after a new insert and merges: %q, want 12 15.000055 3", got)
	}
	if got := str("SELECT toString(count()) FROM spend_hourly WHERE insert_id = 77"); got != "1" {
		t.Errorf("%s rows of insert 77 after merges, want 1", got)
	}
}
