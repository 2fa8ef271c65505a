// Package pricing holds Meta's WhatsApp Business Platform price data: the
// calling-code-to-market map, the list rates and the volume tiers, with
// their validity dates (spec 3, 4.3, 5.4 and 6).
//
// The data are three CSV files, described in data/SOURCES.md: markets.csv
// (calling_code,market,valid_from,valid_to,note), rates.csv
// (pricing_model,valid_from,valid_to,market,currency,marketing,utility,
// authentication,authentication_international,service,source) and tiers.csv
// (pricing_model,valid_from,market,category,tier_from,tier_to,rate_usd,source).
// A copy is compiled in (Default); an operator can point LoadDir at a
// directory holding newer files without a rebuild. valid_from and valid_to
// are inclusive local dates in the WABA's time zone; an empty bound is open.
//
// A Catalog is immutable once loaded and safe for concurrent use.
package pricing

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Catalog is a validated set of markets, rates and tiers.
type Catalog struct {
	markets    marketTrie
	rates      map[rateKey][]rateRow
	currencies []string // sorted
	tiers      map[tierKey][]tierSet
}

// The three files a catalog is loaded from.
const (
	MarketsFile = "markets.csv"
	RatesFile   = "rates.csv"
	TiersFile   = "tiers.csv"
)

//go:embed data/markets.csv data/rates.csv data/tiers.csv
var embedded embed.FS

var defaultCatalog = sync.OnceValues(func() (*Catalog, error) {
	sub, err := fs.Sub(embedded, "data")
	if err != nil {
		return nil, fmt.Errorf("embedded pricing data: %w", err)
	}
	return load(sub, func(name string) string { return "embedded data/" + name })
})

// Default returns the catalog compiled into the binary. It is parsed once;
// every call returns the same catalog.
func Default() (*Catalog, error) {
	return defaultCatalog()
}

// LoadDir loads markets.csv, rates.csv and tiers.csv from dir. It validates
// everything and returns every problem found, joined, each as file:line.
func LoadDir(dir string) (*Catalog, error) {
	return load(os.DirFS(dir), func(name string) string { return filepath.Join(dir, name) })
}

// load builds a catalog from the three files of fsys; label names a file in
// messages.
func load(fsys fs.FS, label func(name string) string) (*Catalog, error) {
	var p problems
	marketRows := readCSV(fsys, MarketsFile, label(MarketsFile), marketsHeader, &p)
	rateRows := readCSV(fsys, RatesFile, label(RatesFile), ratesHeader, &p)
	tierRows := readCSV(fsys, TiersFile, label(TiersFile), tiersHeader, &p)

	c := &Catalog{}
	c.markets = loadMarkets(marketRows, label(MarketsFile), &p)
	c.rates, c.currencies = loadRates(rateRows, label(RatesFile), c.markets.markets, &p)
	c.tiers = loadTiers(tierRows, label(TiersFile), c.markets.markets, &p)
	if err := p.err(); err != nil {
		return nil, fmt.Errorf("pricing data: %w", err)
	}
	return c, nil
}
