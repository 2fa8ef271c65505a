package pricing

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadDirReplacesData shows that an operator can change rates without a
// rebuild: a rate card ends, a new one starts, and a new currency appears.
func TestLoadDirReplacesData(t *testing.T) {
	b, err := embedded.ReadFile("data/" + RatesFile)
	if err != nil {
		t.Fatal(err)
	}
	rates := string(b)
	const old = "PMP,2026-10-01,,BR,USD,0.0625,"
	if !strings.Contains(rates, old) {
		t.Fatalf("rates.csv has no row %q", old)
	}
	rates = strings.Replace(rates, old, "PMP,2026-10-01,2026-12-31,BR,USD,0.0625,", 1)
	rates += "PMP,2027-01-01,,BR,USD,0.0700,0.0070,0.0070,,0.0070,test\n"
	rates += "PMP,2026-10-01,,BR,EUR,0.0520,0.0056,0.0056,,0.0056,test\n"

	c, err := LoadDir(dataDir(t, map[string]string{RatesFile: rates}))
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	f := func(day, currency string, wantMicros int64, wantCard string) {
		t.Helper()
		got, ok := c.Rate(ModelPMP, mustDay(t, day), "BR", Marketing, currency)
		if !ok || got.Micros != wantMicros || got.Card != wantCard {
			t.Errorf("Rate(PMP, %s, BR, marketing, %s) = %+v, %v; want %d %s", day, currency, got, ok, wantMicros, wantCard)
		}
	}
	f("2026-12-31", "USD", 62500, "PMP/USD/2026-10-01")
	f("2027-01-01", "USD", 70000, "PMP/USD/2027-01-01")
	f("2026-10-01", "EUR", 52000, "PMP/EUR/2026-10-01")
	if !c.HasCurrency("EUR") {
		t.Error("HasCurrency(EUR) = false after adding a EUR card")
	}
	// The embedded default is untouched.
	if got, _ := defaultCatalogT(t).Rate(ModelPMP, mustDay(t, "2027-01-01"), "BR", Marketing, "USD"); got.Micros != 62500 {
		t.Errorf("default Rate changed: %+v", got)
	}
}

func TestLoadDirReportsEveryProblem(t *testing.T) {
	const markets = `calling_code,market,valid_from,valid_to,note
1,NORTH_AMERICA,,,ok
263,OTHER,,2025-09-30,ok
263,REST_OF_AFRICA,2025-09-30,,overlaps the row above by one day
44,GB,2025-13-01,,bad date
49,DE,2025-07-01,2025-06-30,ends before it starts
55,BRAZIL,,,unknown market
1,NORTH_AMERICA,,,duplicate
07,OTHER,,,leading zero
7,RU,,
`
	const rates = `pricing_model,valid_from,valid_to,market,currency,marketing,utility,authentication,authentication_international,service,source
PMP,2025-07-01,2025-09-30,NORTH_AMERICA,USD,0.0250,0.0040,0.0040,,0,ok
PMP,2025-09-01,2025-12-31,NORTH_AMERICA,USD,0.0250,0.0040,0.0040,,0,overlap
PMP,2025-07-01,2025-09-30,NORTH_AMERICA,USD,0.0250,0.0040,0.0040,,0,duplicate
PMP,2025-07-01,2025-09-30,XX,USD,0.0250,0.0040,0.0040,,0,unknown market
PMP,2025-07-01,2025-09-30,GB,usd,0.0x,0.0040,0.0040,,0,bad currency and decimal
CBP,2025-07-01,2025-06-01,GB,USD,0.0250,0.0040,0.0040,,0,ends before it starts
PMP,2025-07-01,2025-09-30,GB,USD,0.0000001,0.0040,0.0040,,0,seven decimals
PMP,2025-07-01,2025-09-31,DE,USD,0.0250,0.0040,0.0040,,0,bad date
`
	const tiers = `pricing_model,valid_from,market,category,tier_from,tier_to,rate_usd,source
PMP,2025-07-01,GB,utility,1,1000,0.0014,ok
PMP,2025-07-01,GB,utility,500,2000,0.0012,overlaps
PMP,2025-07-01,GB,utility,1001,,0.0010,ok
PMP,2025-07-01,GB,marketing,1,,0.01,no tiers for marketing
PMP,2025-07-01,ZZ,utility,1,,0.01,unknown market
PMP,2025-07-01,NORTH_AMERICA,utility,2,,0.01,first tier not 1
PMP,2025/07/01,NORTH_AMERICA,authentication,1,,0.01,bad date
PMP,2025-07-01,REST_OF_AFRICA,utility,1,100,0.01,bounded last tier
PMP,2025-07-01,GB,authentication,1,100,0.01,ok
PMP,2025-07-01,GB,authentication,1,100,0.01,duplicate
PMP,2025-07-01,GB,authentication,101,,0.0x,bad rate
PMP,2025-07-01,OTHER,utility,1,10,0.01,ok
PMP,2025-07-01,OTHER,utility,20,,0.01,gap
`
	dir := dataDir(t, map[string]string{MarketsFile: markets, RatesFile: rates, TiersFile: tiers})
	_, err := LoadDir(dir)
	if err == nil {
		t.Fatal("LoadDir: no error")
	}
	m := filepath.Join(dir, MarketsFile)
	r := filepath.Join(dir, RatesFile)
	ti := filepath.Join(dir, TiersFile)
	want := []string{
		m + ":4: calling_code 263: validity 2025-09-30..open overlaps open..2025-09-30 on line 3",
		m + ":5: valid_from: bad date \"2025-13-01\"",
		m + ":6: valid_to 2025-06-30 is before valid_from 2025-07-01",
		m + ":7: unknown market code \"BRAZIL\"",
		m + ":8: duplicate row: calling_code 1 NORTH_AMERICA open..open is also on line 2",
		m + ":9: calling_code \"07\"",
		m + ":10: 4 fields, want 5",
		r + ":3: (PMP, NORTH_AMERICA, USD): validity 2025-09-01..2025-12-31 overlaps 2025-07-01..2025-09-30 on line 2",
		r + ":4: duplicate row: (PMP, NORTH_AMERICA, USD) 2025-07-01..2025-09-30 is also on line 2",
		r + ":5: unknown market code \"XX\"",
		r + ":6: currency \"usd\"",
		r + ":6: marketing: bad decimal \"0.0x\"",
		r + ":7: valid_to 2025-06-01 is before valid_from 2025-07-01",
		r + ":8: marketing: bad decimal \"0.0000001\": more than 6 decimals",
		r + ":9: valid_to: bad date \"2025-09-31\"",
		ti + ":3: tier 500..2000 of (PMP, GB, utility) from 2025-07-01 overlaps",
		ti + ":5: category \"marketing\"",
		ti + ":6: unknown market code \"ZZ\"",
		ti + ":7: first tier of (PMP, NORTH_AMERICA, utility) from 2025-07-01 starts at 2, want 1",
		ti + ":8: valid_from: bad date \"2025/07/01\"",
		ti + ":9: last tier of (PMP, REST_OF_AFRICA, utility) from 2025-07-01 ends at 100",
		ti + ":11: duplicate row",
		ti + ":12: rate_usd: bad decimal \"0.0x\"",
		ti + ":14: tier 20.. of (PMP, OTHER, utility) from 2025-07-01 leaves messages 11 to 19 without a tier",
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %q", w)
		}
	}
	if got := strings.Count(msg, "\n") + 1; got != len(want) {
		t.Errorf("error has %d lines, want %d:\n%s", got, len(want), msg)
	}
}

func TestLoadDirBadFiles(t *testing.T) {
	f := func(override map[string]string, remove string, want ...string) {
		t.Helper()
		dir := dataDir(t, override)
		if remove != "" {
			if err := os.Remove(filepath.Join(dir, remove)); err != nil {
				t.Fatal(err)
			}
		}
		_, err := LoadDir(dir)
		if err == nil {
			t.Fatalf("LoadDir: no error, want %q", want)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), strings.ReplaceAll(w, "DIR", dir)) {
				t.Errorf("error %q lacks %q", err, w)
			}
		}
	}
	f(nil, TiersFile, "DIR/tiers.csv: open")
	f(map[string]string{TiersFile: ""}, "", "DIR/tiers.csv:1: empty file")
	f(map[string]string{MarketsFile: "code,market\n1,NORTH_AMERICA\n"}, "", `DIR/markets.csv:1: header is "code,market"`)
	f(map[string]string{TiersFile: "pricing_model,valid_from,market,category,tier_from,tier_to,rate_usd,source\nPMP,\"2025-07-01,IN\n"},
		"", "DIR/tiers.csv:2:", "extraneous or missing \" in quoted-field")
}

func TestDefaultLoads(t *testing.T) {
	c := defaultCatalogT(t)
	again, err := Default()
	if err != nil || again != c {
		t.Errorf("second Default() = %p, %v; want the same catalog %p", again, err, c)
	}
	// The files beside the embedded copy load the same way through LoadDir.
	if _, err := LoadDir(dataDir(t, nil)); err != nil {
		t.Errorf("LoadDir(copy of embedded data): %v", err)
	}
}
