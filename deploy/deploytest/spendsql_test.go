package deploytest

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/migration"
	"github.com/wameter/wameter/pkg/testenv"
	"github.com/wameter/wameter/schemas"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The spend dashboard's SQL runs on a real ClickHouse server with the
// schemas applied (the oldest supported release where `make test` installs
// it), with Grafana's macros and variables expanded as the plugin does, and
// every panel returns rows for charges inside its range.
func TestSpendDashboardQueriesRun(t *testing.T) {
	addr := testenv.ClickHouse(t)
	db := testenv.Database(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := migration.Apply(ctx, testenv.ClickHouseOptions(addr, ""), db, schemas.FS, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	conn := testenv.ClickHouseConn(t, addr, db)

	// The range ends at `to`; charges in its last day, the day before, and
	// earlier, so that the day-over-day panels have both sides.
	to := time.Date(2025, 8, 5, 0, 0, 0, 0, time.UTC)
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO charges (charge_id, waba_id, portfolio_id, category, market, pricing_model, pricing_type, currency, charged_at, amount)")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id, waba, category, market, pricingType string
		before                                  time.Duration
		amount                                  string
	}{
		{"c1", "111", "marketing", "BR", "regular", 2 * time.Hour, "1.5"},
		{"c2", "111", "marketing", "BR", "regular", 30 * time.Hour, "2.25"},
		{"c3", "222", "utility", "IN", "free_tier", 3 * time.Hour, "0"},
		{"c4", "222", "authentication", "IN", "no_rate", 5 * time.Hour, "0"},
		{"c5", "222", "utility", "IN", "regular", 50 * time.Hour, "0.4"},
	} {
		if err := batch.Append(c.id, c.waba, c.waba, c.category, c.market, "PMP", c.pricingType, "USD",
			to.Add(-c.before), decimal.RequireFromString(c.amount)); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}
	// The sink writes spend_hourly after each charges insert; do as it does.
	if err := conn.Exec(ctx, `INSERT INTO spend_hourly
		(waba_id, portfolio_id, category, market, pricing_model, pricing_type, currency, hour, units, amount, insert_id)
		SELECT waba_id, portfolio_id, category, market, pricing_model, pricing_type, currency,
			toStartOfHour(charged_at) AS hour, count(), CAST(sum(amount) AS Decimal(18, 6)), insert_id
		FROM charges
		GROUP BY waba_id, portfolio_id, category, market, pricing_model, pricing_type, currency, hour, insert_id`); err != nil {
		t.Fatal(err)
	}

	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				RawSQL string `json:"rawSql"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query string `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(loadTestBundle(t)[grafanaDir+"/dashboards/wameter-spend.json"], &d); err != nil {
		t.Fatal(err)
	}
	from := to.Add(-7 * 24 * time.Hour)
	expand := macroExpander(from, to, 3600, map[string][]string{"currency": {"USD"}, "waba_id": {"111", "222"}})

	queries := map[string]string{}
	for _, v := range d.Templating.List {
		queries["variable "+v.Name] = v.Query
	}
	for _, p := range d.Panels {
		for i, tg := range p.Targets {
			if tg.RawSQL != "" {
				queries[p.Title+" #"+string(rune('A'+i))] = expand(tg.RawSQL)
			}
		}
	}
	if len(queries) < 5 {
		t.Fatalf("only %d queries found in the spend dashboard", len(queries))
	}
	for name, q := range queries {
		if strings.Contains(q, "$") {
			t.Errorf("%s: unexpanded macro or variable in\n%s", name, q)
			continue
		}
		rows, err := conn.Query(ctx, q)
		if err != nil {
			t.Errorf("%s: %v\n%s", name, err, q)
			continue
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		rows.Close()
		if n == 0 {
			t.Errorf("%s: no rows for charges inside the range\n%s", name, q)
		}
	}

	// The headline number is the sum of the charges in the range.
	var spend decimal.Decimal
	for _, p := range d.Panels {
		if p.Title == "Spend in range" {
			if err := conn.QueryRow(ctx, expand(p.Targets[0].RawSQL)).Scan(&spend); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !spend.Equal(decimal.RequireFromString("4.15")) {
		t.Errorf("Spend in range = %s, want 4.15", spend)
	}
}

// macroExpander replaces the grafana-clickhouse-datasource macros and the
// dashboard variables the way the plugin and Grafana do.
func macroExpander(from, to time.Time, intervalSeconds int, vars map[string][]string) func(string) string {
	timeFilter := regexp.MustCompile(`\$__timeFilter\(([a-zA-Z_]+)\)`)
	variable := regexp.MustCompile(`\$\{([a-zA-Z0-9_]+)(?::([a-z]+))?\}`)
	fromSQL := "toDateTime(" + itoa(from.Unix()) + ")"
	toSQL := "toDateTime(" + itoa(to.Unix()) + ")"
	return func(q string) string {
		q = timeFilter.ReplaceAllString(q, "$1 >= "+fromSQL+" AND $1 <= "+toSQL)
		q = strings.NewReplacer("$__interval_s", itoa(int64(intervalSeconds)), "$__fromTime", fromSQL, "$__toTime", toSQL).Replace(q)
		return variable.ReplaceAllStringFunc(q, func(m string) string {
			sm := variable.FindStringSubmatch(m)
			values, ok := vars[sm[1]]
			if !ok {
				return m
			}
			if sm[2] == "singlequote" {
				quoted := make([]string, len(values))
				for i, v := range values {
					quoted[i] = "'" + v + "'"
				}
				return strings.Join(quoted, ",")
			}
			return strings.Join(values, ",")
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
