package migration_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/shopspring/decimal"
	"go.uber.org/zap/zaptest"

	"github.com/wameter/wameter/pkg/migration"
	"github.com/wameter/wameter/pkg/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func file(sql string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(sql)} }

// baseFS is a small schema in the shape of the real one: a table, a
// rollup target, and a materialized view from one into the other.
func baseFS() fstest.MapFS {
	return fstest.MapFS{
		"0001_charges.sql": file("-- raw rows\nCREATE TABLE charges\n(\n    id String,\n    amount Decimal(18, 6)\n)\nENGINE = MergeTree()\nORDER BY id;\n"),
		"0002_totals.sql":  file("CREATE TABLE totals (id String, amount Decimal(18, 6)) ENGINE = SummingMergeTree((amount)) ORDER BY id"),
		"0003_totals_mv.sql": file(`/* rollup */ CREATE MATERIALIZED VIEW totals_mv TO totals
AS SELECT id, CAST(sum(amount) AS Decimal(18, 6)) AS amount FROM charges GROUP BY id`),
		"README.md": file("not SQL: ignored"),
	}
}

type fixture struct {
	t    *testing.T
	opts *clickhouse.Options
	db   string
}

func newFixture(t *testing.T) fixture {
	addr := testenv.ClickHouse(t)
	// A name nobody created yet: Apply creates the database itself.
	db := testenv.Database(t, addr) + "_m"
	return fixture{t: t, opts: testenv.ClickHouseOptions(addr, ""), db: db}
}

func (f fixture) apply(fsys fstest.MapFS) ([]string, error) {
	f.t.Helper()
	return migration.Apply(f.t.Context(), f.opts, f.db, fsys, zaptest.NewLogger(f.t))
}

func (f fixture) mustApply(fsys fstest.MapFS, want ...string) {
	f.t.Helper()
	got, err := f.apply(fsys)
	if err != nil {
		f.t.Fatalf("apply: %v", err)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		f.t.Fatalf("applied %q, want %q", got, want)
	}
}

func (f fixture) tables() string {
	f.t.Helper()
	conn := testenv.ClickHouseConn(f.t, f.opts.Addr[0], "")
	rows, err := conn.Query(f.t.Context(), "SELECT name FROM system.tables WHERE database = ? ORDER BY name", f.db)
	if err != nil {
		f.t.Fatalf("list tables: %v", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			f.t.Fatalf("list tables: %v", err)
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

func TestApplyInOrderOnce(t *testing.T) {
	f := newFixture(t)
	fsys := baseFS()
	f.mustApply(fsys, "0001_charges.sql", "0002_totals.sql", "0003_totals_mv.sql")
	if got, want := f.tables(), "charges,schema_migrations,totals,totals_mv"; got != want {
		t.Errorf("tables %s, want %s", got, want)
	}
	f.mustApply(fsys) // nothing left to do

	fsys["0004_later.sql"] = file("CREATE TABLE later (x UInt8) ENGINE = MergeTree() ORDER BY x")
	f.mustApply(fsys, "0004_later.sql")

	// The view was created with unqualified names on a connection to the
	// target database, and still feeds the right table from any connection.
	conn := testenv.ClickHouseConn(t, f.opts.Addr[0], "")
	batch, err := conn.PrepareBatch(t.Context(), "INSERT INTO "+f.db+".charges (id, amount)")
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	for _, a := range []string{"0.5", "0.25"} {
		if err := batch.Append("w1", decimal.RequireFromString(a)); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("send: %v", err)
	}
	var total decimal.Decimal
	if err := conn.QueryRow(t.Context(), "SELECT CAST(sum(amount) AS Decimal(18, 6)) FROM "+f.db+".totals WHERE id = 'w1'").Scan(&total); err != nil {
		t.Fatalf("read totals: %v", err)
	}
	if !total.Equal(decimal.RequireFromString("0.75")) {
		t.Errorf("totals amount %s, want 0.75", total)
	}
}

func TestApplyRefusesChangedFile(t *testing.T) {
	f := newFixture(t)
	fsys := baseFS()
	f.mustApply(fsys, "0001_charges.sql", "0002_totals.sql", "0003_totals_mv.sql")

	// Rewording comments and blank lines of an applied file is fine.
	fsys["0001_charges.sql"] = file("-- raw rows, one per charge\n\nCREATE TABLE charges\n(\n    id String,\n\n    amount Decimal(18, 6) -- money\n)\nENGINE = MergeTree()\nORDER BY id\n")
	f.mustApply(fsys)

	// Changing its SQL is refused, and nothing else is applied either.
	fsys["0002_totals.sql"] = file("CREATE TABLE totals (id String, amount Decimal(18, 6), n UInt64) ENGINE = SummingMergeTree((amount)) ORDER BY id")
	fsys["0004_later.sql"] = file("CREATE TABLE later (x UInt8) ENGINE = MergeTree() ORDER BY x")
	applied, err := f.apply(fsys)
	if err == nil || !strings.Contains(err.Error(), "0002_totals.sql changed") {
		t.Fatalf("error %v, want one saying 0002_totals.sql changed", err)
	}
	if len(applied) != 0 || strings.Contains(f.tables(), "later") {
		t.Errorf("applied %q (tables %s) despite the refusal", applied, f.tables())
	}
	_, err = migration.Plan(t.Context(), f.opts, f.db, fsys)
	if err == nil || !strings.Contains(err.Error(), "0002_totals.sql changed") {
		t.Errorf("Plan error %v, want the same refusal", err)
	}
}

func TestApplyRefusesMissingOrRenamedFile(t *testing.T) {
	f := newFixture(t)
	fsys := baseFS()
	f.mustApply(fsys, "0001_charges.sql", "0002_totals.sql", "0003_totals_mv.sql")

	missing := baseFS()
	delete(missing, "0003_totals_mv.sql")
	if _, err := f.apply(missing); err == nil || !strings.Contains(err.Error(), "0003_totals_mv.sql (version 3) was applied") {
		t.Errorf("error %v, want one naming the applied file that is gone", err)
	}

	renamed := baseFS()
	renamed["0003_rollup_mv.sql"] = renamed["0003_totals_mv.sql"]
	delete(renamed, "0003_totals_mv.sql")
	if _, err := f.apply(renamed); err == nil || !strings.Contains(err.Error(), "now 0003_rollup_mv.sql") {
		t.Errorf("error %v, want one naming the rename", err)
	}
}

func TestApplyStopsAtFailingFile(t *testing.T) {
	f := newFixture(t)
	fsys := baseFS()
	fsys["0002_totals.sql"] = file("CREATE TABLE totals (id String) ENGINE = NoSuchEngine()")
	applied, err := f.apply(fsys)
	if err == nil || !strings.Contains(err.Error(), "apply 0002_totals.sql") {
		t.Fatalf("error %v, want one naming 0002_totals.sql", err)
	}
	if strings.Join(applied, ",") != "0001_charges.sql" {
		t.Errorf("applied %q, want only 0001_charges.sql", applied)
	}
	// Fixed, the run picks up where it stopped.
	f.mustApply(baseFS(), "0002_totals.sql", "0003_totals_mv.sql")
}

func TestPlan(t *testing.T) {
	f := newFixture(t)
	fsys := baseFS()
	f.t.Helper()
	names := func(files []migration.File) string {
		var s []string
		for _, file := range files {
			s = append(s, file.Name)
		}
		return strings.Join(s, ",")
	}
	todo, err := migration.Plan(t.Context(), f.opts, f.db, fsys)
	if err != nil {
		t.Fatalf("plan on a missing database: %v", err)
	}
	if got := names(todo); got != "0001_charges.sql,0002_totals.sql,0003_totals_mv.sql" {
		t.Errorf("plan %s, want all three files", got)
	}
	f.mustApply(fsys, "0001_charges.sql", "0002_totals.sql", "0003_totals_mv.sql")
	fsys["0004_later.sql"] = file("CREATE TABLE later (x UInt8) ENGINE = MergeTree() ORDER BY x")
	todo, err = migration.Plan(t.Context(), f.opts, f.db, fsys)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if got := names(todo); got != "0004_later.sql" {
		t.Errorf("plan %s, want 0004_later.sql", got)
	}
}

func TestLoadRejects(t *testing.T) {
	f := func(fsys fstest.MapFS, want ...string) {
		t.Helper()
		_, err := migration.Load(fsys)
		if err == nil {
			t.Fatalf("Load accepted %v", fsys)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not mention %q", err, w)
			}
		}
	}
	f(fstest.MapFS{"charges.sql": file("SELECT 1")}, "charges.sql: name is not NNNN_name.sql")
	f(fstest.MapFS{"0001_Charges.sql": file("SELECT 1")}, "0001_Charges.sql: name")
	f(fstest.MapFS{"0000_zero.sql": file("SELECT 1")}, "positive")
	f(fstest.MapFS{"0001_a.sql": file("SELECT 1"), "00001_b.sql": file("SELECT 2")}, "version 1 already used")
	f(fstest.MapFS{"0001_a.sql": file("SELECT 1; SELECT 2")}, "holds 2 statements")
	f(fstest.MapFS{"0001_a.sql": file("-- nothing\n")}, "holds 0 statements")
	f(fstest.MapFS{"0001_a.sql": file("SELECT 'x")}, "unterminated")
	// Every bad file is reported at once.
	f(fstest.MapFS{"x.sql": file("SELECT 1"), "0002_b.sql": file("")}, "x.sql", "0002_b.sql")
}

func TestLoadChecksumIgnoresComments(t *testing.T) {
	a, err := migration.Load(fstest.MapFS{"0001_a.sql": file("-- one\nCREATE TABLE a (x UInt8) ENGINE = Memory;\n")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := migration.Load(fstest.MapFS{"0001_a.sql": file("/* two */\n\nCREATE TABLE a (x UInt8) ENGINE = Memory   -- three\n")})
	if err != nil {
		t.Fatal(err)
	}
	if a[0].Checksum != b[0].Checksum {
		t.Errorf("checksums differ for the same statement: %q vs %q", a[0].Statement, b[0].Statement)
	}
}
