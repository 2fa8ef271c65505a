package pricing

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
)

var tiersHeader = []string{"pricing_model", "valid_from", "market", "category", "tier_from", "tier_to", "rate_usd", "source"}

// tiersCurrency is the currency of tiers.csv.
const tiersCurrency = "USD"

// Tier is one volume tier: the From-th to the To-th message of a month
// (1-based, inclusive; To 0 = unbounded) cost Micros each.
type Tier struct {
	From, To uint64
	Micros   int64
}

func (t Tier) contains(n uint64) bool { return t.From <= n && (t.To == 0 || n <= t.To) }

type tierKey struct {
	model, market, category, currency string
}

// tierSet is the tier table of one key from a valid_from date on, until the
// next set of that key.
type tierSet struct {
	from  Day
	tiers []Tier
	line  int // of its first row
}

// Tiers returns the volume tiers in force on local date day for (model,
// market, category, currency): the set with the latest valid_from on or
// before day, ordered by From, contiguous from 1, the last unbounded. It
// returns nil when there is none, and then the list rate applies. tiers.csv
// is in USD, so only currency "USD" has tiers. The slice is shared: do not
// modify it.
func (c *Catalog) Tiers(model string, day Day, market, category, currency string) []Tier {
	tiers, _ := c.TiersSince(model, day, market, category, currency)
	return tiers
}

// TiersSince is Tiers and the valid_from date of the tier set it returns,
// which names the set's rate card (e.g. PMP/USD/tiers/2025-07-01#2).
func (c *Catalog) TiersSince(model string, day Day, market, category, currency string) ([]Tier, Day) {
	sets := c.tiers[tierKey{model: model, market: market, category: category, currency: currency}]
	// The first set starting after day; the one before it is in force.
	i, _ := slices.BinarySearchFunc(sets, day, func(s tierSet, d Day) int {
		if s.from <= d {
			return -1
		}
		return 1
	})
	if i == 0 {
		return nil, 0
	}
	return sets[i-1].tiers, sets[i-1].from
}

// TierFor returns the tier that contains the n-th (1-based) message of the
// month and its index in tiers. ok is false when no tier contains n.
func TierFor(tiers []Tier, n uint64) (index int, t Tier, ok bool) {
	i, _ := slices.BinarySearchFunc(tiers, n, func(t Tier, n uint64) int {
		if t.To != 0 && t.To < n {
			return -1
		}
		return 1
	})
	if i == len(tiers) || !tiers[i].contains(n) {
		return 0, Tier{}, false
	}
	return i, tiers[i], true
}

// tierRow is one parsed row of tiers.csv.
type tierRow struct {
	key  tierKey
	from Day
	tier Tier
	raw  string // valid_from as written
	line int
}

// tierCategories are the categories that have volume tiers (spec 5.4; Meta's
// tier files also have authentication-international).
var tierCategories = map[string]bool{Utility: true, Authentication: true, AuthenticationInternational: true}

// loadTiers parses tiers.csv rows, reporting every problem. markets are the
// market codes of markets.csv.
func loadTiers(rows []record, file string, markets map[string]bool, p *problems) map[tierKey][]tierSet {
	var parsed []tierRow
	// Sets with a bad row are incomplete: checking their order or end would
	// only repeat the problem already reported.
	type rawSetKey struct{ model, from, market, category string }
	badSets := make(map[rawSetKey]bool)
	for _, r := range rows {
		model, from, market, category, tierFrom, tierTo, rate := r.fields[0], r.fields[1], r.fields[2], r.fields[3], r.fields[4], r.fields[5], r.fields[6]
		row := tierRow{key: tierKey{model: model, market: market, category: category, currency: tiersCurrency}, from: dayMin, raw: from, line: r.line}
		bad := false
		if !validModel(model) {
			p.addf(file, r.line, "pricing_model %q: want %s or %s", model, ModelCBP, ModelPMP)
			bad = true
		}
		if from != "" {
			d, err := ParseDay(from)
			if err != nil {
				p.addf(file, r.line, "valid_from: %w", err)
				bad = true
			}
			row.from = d
		}
		if !markets[market] {
			p.addf(file, r.line, "unknown market code %q: not in markets.csv", market)
			bad = true
		}
		if !tierCategories[category] {
			p.addf(file, r.line, "category %q: want %s, %s or %s", category, Utility, Authentication, AuthenticationInternational)
			bad = true
		}
		n, err := strconv.ParseUint(tierFrom, 10, 64)
		if err != nil || n == 0 {
			p.addf(file, r.line, "tier_from %q: want a message count from 1", tierFrom)
			bad = true
		}
		row.tier.From = n
		if tierTo != "" {
			n, err := strconv.ParseUint(tierTo, 10, 64)
			switch {
			case err != nil || n == 0:
				p.addf(file, r.line, "tier_to %q: want a message count from 1, or empty for unbounded", tierTo)
				bad = true
			case n < row.tier.From:
				p.addf(file, r.line, "tier_to %d is below tier_from %d", n, row.tier.From)
				bad = true
			}
			row.tier.To = n
		}
		v, err := ParseMicros(rate)
		if err != nil {
			p.addf(file, r.line, "rate_usd: %w", err)
			bad = true
		}
		row.tier.Micros = v
		if bad {
			badSets[rawSetKey{model, from, market, category}] = true
			continue
		}
		parsed = append(parsed, row)
	}

	type setKey struct {
		key  tierKey
		from Day
	}
	sets := make(map[setKey]*tierSet)
	lastLine := make(map[setKey]int) // of the last tier accepted into a set
	rawFrom := make(map[setKey]string)
	var order []setKey
	for _, r := range parsed {
		sk := setKey{r.key, r.from}
		incomplete := badSets[rawSetKey{r.key.model, r.raw, r.key.market, r.key.category}]
		set := sets[sk]
		if set == nil {
			set = &tierSet{from: r.from, line: r.line}
			sets[sk] = set
			order = append(order, sk)
			rawFrom[sk] = r.raw
		}
		if k := len(set.tiers); k > 0 {
			prev := set.tiers[k-1]
			switch {
			case prev == r.tier:
				p.addf(file, r.line, "duplicate row: tier %s of %s is also on line %d", tierRange(r.tier), describeSet(sk.key, sk.from), lastLine[sk])
				continue
			case prev.To == 0 || r.tier.From <= prev.To:
				p.addf(file, r.line, "tier %s of %s overlaps or comes before the previous tier %s: rows of a set must be in order", tierRange(r.tier), describeSet(sk.key, sk.from), tierRange(prev))
				continue
			case r.tier.From != prev.To+1 && !incomplete:
				// Kept, so that the end of the set is still checked.
				p.addf(file, r.line, "tier %s of %s leaves messages %d to %d without a tier", tierRange(r.tier), describeSet(sk.key, sk.from), prev.To+1, r.tier.From-1)
			}
		} else if r.tier.From != 1 && !incomplete {
			p.addf(file, r.line, "first tier of %s starts at %d, want 1", describeSet(sk.key, sk.from), r.tier.From)
		}
		set.tiers = append(set.tiers, r.tier)
		lastLine[sk] = r.line
	}

	out := make(map[tierKey][]tierSet)
	for _, sk := range order {
		set := sets[sk]
		incomplete := badSets[rawSetKey{sk.key.model, rawFrom[sk], sk.key.market, sk.key.category}]
		if k := len(set.tiers); k > 0 && set.tiers[k-1].To != 0 && !incomplete {
			p.addf(file, set.line, "last tier of %s ends at %d: want the last tier unbounded (empty tier_to)", describeSet(sk.key, sk.from), set.tiers[k-1].To)
		}
		out[sk.key] = append(out[sk.key], *set)
	}
	for _, list := range out {
		slices.SortFunc(list, func(a, b tierSet) int { return cmp.Compare(a.from, b.from) })
	}
	return out
}

func describeSet(k tierKey, from Day) string {
	return fmt.Sprintf("(%s, %s, %s) from %s", k.model, k.market, k.category, dayBound(from))
}

func tierRange(t Tier) string {
	if t.To == 0 {
		return fmt.Sprintf("%d..", t.From)
	}
	return fmt.Sprintf("%d..%d", t.From, t.To)
}
