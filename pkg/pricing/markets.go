package pricing

import (
	"cmp"
	"slices"

	"github.com/nyaruka/phonenumbers"
)

// Other is the market of a number whose calling code no row of markets.csv
// covers on the day asked.
const Other = "OTHER"

// regionMarkets are the multi-country markets of spec 6; every other market
// is an ISO 3166-1 alpha-2 code.
var regionMarkets = map[string]bool{
	"NORTH_AMERICA":                  true,
	"REST_OF_AFRICA":                 true,
	"REST_OF_ASIA_PACIFIC":           true,
	"REST_OF_CENTRAL_EASTERN_EUROPE": true,
	"REST_OF_LATIN_AMERICA":          true,
	"REST_OF_MIDDLE_EAST":            true,
	"REST_OF_WESTERN_EUROPE":         true,
	Other:                            true,
}

// validMarketCode reports whether m is a market code spec 6 allows.
func validMarketCode(m string) bool {
	return regionMarkets[m] || (len(m) == 2 && phonenumbers.GetSupportedRegions()[m])
}

var marketsHeader = []string{"calling_code", "market", "valid_from", "valid_to", "note"}

// maxDigits is the most decimal digits a uint64 has.
const maxDigits = 20

var pow10 = func() (p [maxDigits]uint64) {
	p[0] = 1
	for i := 1; i < maxDigits; i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// marketSpan is one row of markets.csv: the market of a prefix on a range of days.
type marketSpan struct {
	span
	market string
	line   int
}

// trieNode is a node of the calling-code trie. Node 0 is the root, so a
// child index of 0 means "no child".
type trieNode struct {
	child [10]int32
	spans []marketSpan // sorted by from, not overlapping
}

// marketTrie maps calling-code prefixes to markets by day.
type marketTrie struct {
	nodes    []trieNode
	maxDepth int // length of the longest prefix
	markets  map[string]bool
}

// Market returns the rating market of the customer number waID (E.164
// digits, calling code first) on the local date day: the market of the
// longest calling-code prefix valid on that day, or Other. It does not
// allocate and is safe for concurrent use.
func (c *Catalog) Market(waID uint64, day Day) string {
	t := &c.markets
	n := 1
	for n < maxDigits && waID >= pow10[n] {
		n++
	}
	depth := min(n, t.maxDepth)
	// The leading depth digits, most significant first; one division by a
	// table value, then divisions by constants.
	var digits [maxDigits]byte
	head := waID / pow10[n-depth]
	for i := depth - 1; i >= 0; i-- {
		digits[i] = byte(head % 10)
		head /= 10
	}
	market := Other
	node := int32(0)
	for i := 0; i < depth; i++ {
		node = t.nodes[node].child[digits[i]]
		if node == 0 {
			break
		}
		for j := range t.nodes[node].spans {
			if s := &t.nodes[node].spans[j]; s.contains(day) {
				market = s.market
				break
			}
		}
	}
	return market
}

// loadMarkets parses markets.csv rows into the trie, reporting every problem.
func loadMarkets(rows []record, file string, p *problems) marketTrie {
	t := marketTrie{nodes: make([]trieNode, 1), markets: map[string]bool{Other: true}}
	for _, r := range rows {
		code, market, from, to := r.fields[0], r.fields[1], r.fields[2], r.fields[3]
		bad := false
		if code == "" || len(code) >= maxDigits || !allDigits(code) || code[0] == '0' {
			p.addf(file, r.line, "calling_code %q: want 1 to %d digits, not starting with 0", code, maxDigits-1)
			bad = true
		}
		if validMarketCode(market) {
			t.markets[market] = true // even when the row is bad: no follow-on errors in rates.csv
		} else {
			p.addf(file, r.line, "unknown market code %q: want an ISO 3166-1 alpha-2 code or one of the region markets of the spec", market)
			bad = true
		}
		s, err := parseSpan(from, to)
		if err != nil {
			p.add(file, r.line, err)
			bad = true
		}
		if bad {
			continue
		}
		node := int32(0)
		for i := 0; i < len(code); i++ {
			d := code[i] - '0'
			next := t.nodes[node].child[d]
			if next == 0 {
				next = int32(len(t.nodes))
				t.nodes = append(t.nodes, trieNode{})
				t.nodes[node].child[d] = next
			}
			node = next
		}
		t.nodes[node].spans = append(t.nodes[node].spans, marketSpan{span: s, market: market, line: r.line})
		t.maxDepth = max(t.maxDepth, len(code))
	}
	// Sort each prefix's rows by date and reject overlaps: on any day a
	// prefix must name one market.
	var walk func(node int32, prefix []byte)
	walk = func(node int32, prefix []byte) {
		spans := t.nodes[node].spans
		slices.SortStableFunc(spans, func(a, b marketSpan) int { return cmp.Compare(a.from, b.from) })
		reach := 0 // the earlier row that ends last
		for i := 1; i < len(spans); i++ {
			prev, cur := spans[reach], spans[i]
			switch {
			case prev.span == cur.span && prev.market == cur.market:
				p.addf(file, cur.line, "duplicate row: calling_code %s %s %s is also on line %d", prefix, cur.market, cur.span, prev.line)
			case cur.from <= prev.to:
				p.addf(file, cur.line, "calling_code %s: validity %s overlaps %s on line %d", prefix, cur.span, prev.span, prev.line)
			}
			if cur.to > prev.to {
				reach = i
			}
		}
		for d, child := range t.nodes[node].child {
			if child != 0 {
				walk(child, append(prefix, byte('0'+d)))
			}
		}
	}
	walk(0, nil)
	return t
}
