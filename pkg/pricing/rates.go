package pricing

import (
	"cmp"
	"fmt"
	"slices"
)

// Categories of rates.csv, as named in the billing engine and ClickHouse.
const (
	Marketing                   = "marketing"
	Utility                     = "utility"
	Authentication              = "authentication"
	AuthenticationInternational = "authentication_international"
	Service                     = "service"
)

// Pricing models.
const (
	ModelCBP = "CBP"
	ModelPMP = "PMP"
)

// categories are the rate columns of rates.csv, in file order.
var categories = [...]string{Marketing, Utility, Authentication, AuthenticationInternational, Service}

const numCategories = len(categories)

// categoryIndex returns the column of category, or -1.
func categoryIndex(category string) int {
	switch category {
	case Marketing:
		return 0
	case Utility:
		return 1
	case Authentication:
		return 2
	case AuthenticationInternational:
		return 3
	case Service:
		return 4
	}
	return -1
}

var ratesHeader = []string{"pricing_model", "valid_from", "valid_to", "market", "currency",
	Marketing, Utility, Authentication, AuthenticationInternational, Service, "source"}

// Rate is a list rate.
type Rate struct {
	// Micros is the amount in millionths of the currency.
	Micros int64
	// Card names the rate card version, model/currency/valid_from, e.g.
	// "CBP/USD/2023-06-01" ("open" when the row has no valid_from).
	Card string
}

type rateKey struct {
	model, market, currency string
}

// rateRow is one row of rates.csv.
type rateRow struct {
	span
	micros [numCategories]int64
	has    [numCategories]bool // false: empty cell, no rate
	card   string
	line   int
}

// Rate returns the list rate of category for a unit of the pricing model
// ("CBP" or "PMP") charged on local date day to a customer in market, in
// currency. ok is false when no row covers that day, market and currency or
// the cell is empty: an empty cell is no rate, never 0. It does not
// allocate and is safe for concurrent use.
func (c *Catalog) Rate(model string, day Day, market, category, currency string) (r Rate, ok bool) {
	col := categoryIndex(category)
	if col < 0 {
		return Rate{}, false
	}
	rows := c.rates[rateKey{model: model, market: market, currency: currency}]
	// rows are sorted and disjoint: find the first that ends on or after day.
	i, _ := slices.BinarySearchFunc(rows, day, func(row rateRow, d Day) int { return cmp.Compare(row.to, d) })
	if i == len(rows) || !rows[i].contains(day) || !rows[i].has[col] {
		return Rate{}, false
	}
	return Rate{Micros: rows[i].micros[col], Card: rows[i].card}, true
}

// Currencies returns the currencies that have a rate card, sorted.
func (c *Catalog) Currencies() []string {
	return slices.Clone(c.currencies)
}

// HasCurrency reports whether some rate card is in currency.
func (c *Catalog) HasCurrency(currency string) bool {
	_, ok := slices.BinarySearch(c.currencies, currency)
	return ok
}

func validModel(m string) bool { return m == ModelCBP || m == ModelPMP }

// validCurrency reports whether cur looks like an ISO 4217 code.
func validCurrency(cur string) bool {
	if len(cur) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if cur[i] < 'A' || cur[i] > 'Z' {
			return false
		}
	}
	return true
}

// loadRates parses rates.csv rows, reporting every problem. markets are the
// market codes of markets.csv.
func loadRates(rows []record, file string, markets map[string]bool, p *problems) (map[rateKey][]rateRow, []string) {
	rates := make(map[rateKey][]rateRow)
	cards := make(map[string]string) // interned card names
	currencies := make(map[string]bool)
	for _, r := range rows {
		model, from, to, market, currency := r.fields[0], r.fields[1], r.fields[2], r.fields[3], r.fields[4]
		bad := false
		if !validModel(model) {
			p.addf(file, r.line, "pricing_model %q: want %s or %s", model, ModelCBP, ModelPMP)
			bad = true
		}
		s, err := parseSpan(from, to)
		if err != nil {
			p.add(file, r.line, err)
			bad = true
		}
		if !markets[market] {
			p.addf(file, r.line, "unknown market code %q: not in markets.csv", market)
			bad = true
		}
		if !validCurrency(currency) {
			p.addf(file, r.line, "currency %q: want 3 upper-case letters", currency)
			bad = true
		}
		row := rateRow{span: s, line: r.line}
		for col := range numCategories {
			cell := r.fields[5+col]
			if cell == "" {
				continue
			}
			v, err := ParseMicros(cell)
			if err != nil {
				p.addf(file, r.line, "%s: %w", categories[col], err)
				bad = true
				continue
			}
			row.micros[col], row.has[col] = v, true
		}
		if bad {
			continue
		}
		card := fmt.Sprintf("%s/%s/%s", model, currency, cmp.Or(from, "open"))
		if interned, ok := cards[card]; ok {
			card = interned
		} else {
			cards[card] = card
		}
		row.card = card
		key := rateKey{model: model, market: market, currency: currency}
		rates[key] = append(rates[key], row)
		currencies[currency] = true
	}
	keys := make([]rateKey, 0, len(rates))
	for key := range rates {
		keys = append(keys, key)
	}
	slices.SortFunc(keys, func(a, b rateKey) int { return cmp.Compare(rates[a][0].line, rates[b][0].line) })
	for _, key := range keys {
		rows := rates[key]
		slices.SortStableFunc(rows, func(a, b rateRow) int { return cmp.Compare(a.from, b.from) })
		reach := 0
		for i := 1; i < len(rows); i++ {
			prev, cur := rows[reach], rows[i]
			switch {
			case prev.span == cur.span:
				p.addf(file, cur.line, "duplicate row: (%s, %s, %s) %s is also on line %d", key.model, key.market, key.currency, cur.span, prev.line)
			case cur.from <= prev.to:
				p.addf(file, cur.line, "(%s, %s, %s): validity %s overlaps %s on line %d", key.model, key.market, key.currency, cur.span, prev.span, prev.line)
			}
			if cur.to > prev.to {
				reach = i
			}
		}
	}
	curList := make([]string, 0, len(currencies))
	for cur := range currencies {
		curList = append(curList, cur)
	}
	slices.Sort(curList)
	return rates, curList
}
