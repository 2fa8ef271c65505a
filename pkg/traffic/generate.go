package traffic

import (
	"fmt"
)

// Kinds of conversation thread (the fields of Mix, in order).
const (
	thMarketing uint8 = iota
	thUtility
	thAuthentication
	thService
	thReferral
	numThreadKinds
)

// meanMessages is the mean number of messages (both directions) of a thread
// of each kind, from the scripts in threads.go.
var meanMessages = [numThreadKinds]float64{1.6, 1.47, 1.08, 4.61, 4.6}

// custState is what Meta's side knows of one (business number, customer):
// enough to write the pricing and conversation objects of its statuses.
// Times are Unix seconds; 0 is none.
type custState struct {
	serviceWindowEnd  int64
	freeEntryEligible int64    // a referral arrived: the next delivered message opens a free entry point
	freeEntryOpenedAt int64    // open free entry point window [at, at+72h)
	openedAt          [4]int64 // CBP conversations by slot: marketing, utility, authentication, service
}

// acctState is an account with its customers laid out.
type acctState struct {
	a       *Account
	numbers []uint64 // customer wa_id by customer index
	country []uint8  // index into countries
	states  []custState
	mixCum  [numThreadKinds]float64
	headers []map[string]string // per phone number: On-Premises record headers, else nil
	display []uint64            // per phone number: display_phone_number
	// threadsPerMs is the mean rate of new threads (before the daily rhythm).
	threadsPerMs float64
}

// thread is one running conversation script.
type thread struct {
	kind    uint8
	step    uint8
	acct    uint16
	cust    uint32
	lastOut uint64 // the last outbound message, for replies' context
}

type generator struct {
	cfg  *Config
	emit func(Record) error
	r    *rng
	salt uint64 // from the seed, scatters ids

	accts      []acctState
	acctCum    []float64
	start, end int64 // Unix ms

	candidatesPerMs float64
	nextCandidate   int64
	spikeAcct       int
	spikePerMs      float64
	spikeEnd        int64
	nextSpike       int64

	threads     []thread
	freeThreads []int32
	actions     minHeap

	slab      []pending
	freeSlots []int32
	records   minHeap
	seq       uint64 // insertion order, breaks ties in the heaps
	msgSeq    uint64 // message ids

	buf, key    []byte
	batch       []int32
	lastEmitted int64
	malformed   struct {
		left    int
		n       int     // injected so far
		every   float64 // records between two injections
		emitted int     // records emitted so far
	}
}

func newGenerator(cfg *Config, emit func(Record) error) *generator {
	g := &generator{cfg: cfg, emit: emit, r: newRNG(cfg.Seed), salt: mix64(cfg.Seed ^ 0x5bd1e995)}
	g.start = cfg.Start.UnixMilli()
	g.end = g.start + cfg.Duration.Milliseconds()
	var total, expectedMessages float64
	days := float64(cfg.Duration.Milliseconds()) / msPerDay
	for i := range cfg.Accounts {
		a := &cfg.Accounts[i]
		as := g.layout(i, a)
		mix := cfg.Mix
		if a.Mix != (Mix{}) {
			mix = a.Mix
		}
		var sum, meanLen float64
		for k, w := range mix.weights() {
			sum += w
			as.mixCum[k] = sum
			meanLen += w * meanMessages[k]
		}
		meanLen /= sum
		perDay := float64(a.Customers) * cfg.MessagesPerCustomerPerDay / meanLen
		as.threadsPerMs = perDay / msPerDay
		expectedMessages += perDay * days * meanLen
		total += as.threadsPerMs
		g.acctCum = append(g.acctCum, total)
		g.accts = append(g.accts, as)
	}
	// Candidates are thinned by the daily rhythm: draw them faster so
	// that the accepted ones keep the configured mean.
	g.candidatesPerMs = total / meanDiurnal()
	g.nextCandidate = g.advance(g.start, g.candidatesPerMs, g.end)
	g.nextSpike = never
	if s := cfg.Spike; s != nil {
		for i := range g.accts {
			if g.accts[i].a.WABA == s.WABA {
				g.spikeAcct = i
			}
		}
		as := &g.accts[g.spikeAcct]
		marketingShare := as.mixCum[thMarketing] / as.mixCum[numThreadKinds-1]
		g.spikePerMs = (s.Factor - 1) * as.threadsPerMs * marketingShare / meanDiurnal()
		from := max(s.Start.UnixMilli(), g.start)
		g.spikeEnd = min(s.Start.Add(s.Duration).UnixMilli(), g.end)
		g.nextSpike = g.advance(from, g.spikePerMs, g.spikeEnd)
	}
	if n := cfg.Malformed; n > 0 {
		// Spread evenly over the expected stream (about 2.5 records per
		// message); if it is shorter, the rest come at its end, so that
		// exactly n are injected.
		g.malformed.left = n
		g.malformed.every = 2.5 * expectedMessages / float64(n)
	}
	return g
}

// layout derives an account's customers: their countries by the market
// shares, and their numbers, unique within the account (the subscriber part
// is a bijection of the customer index).
func (g *generator) layout(i int, a *Account) acctState {
	as := acctState{a: a, numbers: make([]uint64, a.Customers), country: make([]uint8, a.Customers),
		states: make([]custState, a.Customers)}
	markets := a.Markets
	if len(markets) == 0 {
		markets = DefaultMarkets
	}
	cum := make([]float64, len(markets))
	var sum float64
	for j, m := range markets {
		sum += m.Share
		cum[j] = sum
	}
	acctSalt := mix64(g.salt + uint64(i)*0x9e3779b97f4a7c15)
	for c := range a.Customers {
		h := mix64(acctSalt ^ uint64(c)) // picks the country
		x := float64(h>>11) * 0x1p-53 * sum
		m := len(markets) - 1
		for j, v := range cum {
			if x < v {
				m = j
				break
			}
		}
		ci := countryIndex(markets[m].Country)
		co := &countries[ci]
		// The customer index is scattered over all of the country's numbers
		// by c -> c*7919+off modulo their count: 7919 is a prime, coprime
		// with every count here (2^a*5^b times 3, 4 or 8), so this is a
		// bijection, and numbers are unique within the account.
		space := pow10(co.width) - co.lowest
		total := space * uint64(len(co.prefixes))
		n := (uint64(c)*7919 + acctSalt%total) % total
		as.numbers[c] = co.prefixes[n/space]*pow10(co.width) + co.lowest + n%space
		as.country[c] = uint8(ci)
	}
	for _, p := range a.PhoneNumberIDs {
		as.display = append(as.display, 15550100000+(p%90000))
		var hdr map[string]string
		if a.OnPremises {
			hdr = map[string]string{"phone_number_id": fmt.Sprint(p), "waba_id": fmt.Sprint(a.WABA)}
		}
		as.headers = append(as.headers, hdr)
	}
	return as
}

func pow10(n int) uint64 {
	v := uint64(1)
	for range n {
		v *= 10
	}
	return v
}

// advance returns the next arrival of a Poisson process of the given rate
// after t, or never if it is at or past end.
func (g *generator) advance(t int64, perMs float64, end int64) int64 {
	if perMs <= 0 {
		return never
	}
	next := t + int64(g.r.exp(1/perMs))
	if next >= end {
		return never
	}
	return next
}

func (g *generator) run() error {
	for {
		next := min(g.nextCandidate, g.nextSpike)
		if len(g.actions) > 0 {
			next = min(next, g.actions.top().at)
		}
		if next == never {
			break
		}
		// Whatever arrives before the next action is final: actions only
		// add records after their own time.
		if err := g.flush(next); err != nil {
			return err
		}
		switch {
		case next == g.nextCandidate:
			g.candidate(next, false)
			g.nextCandidate = g.advance(next, g.candidatesPerMs, g.end)
		case next == g.nextSpike:
			g.candidate(next, true)
			g.nextSpike = g.advance(next, g.spikePerMs, g.spikeEnd)
		default:
			it := g.actions.pop()
			g.step(it.slot, it.at)
		}
	}
	if err := g.flush(never); err != nil {
		return err
	}
	for g.malformed.left > 0 {
		if err := g.injectMalformed(g.lastAt()); err != nil {
			return err
		}
	}
	return nil
}

func (g *generator) lastAt() int64 { return max(g.end, g.lastEmitted) }

// candidate may start a thread at t: the customer is drawn, and kept with
// the probability of the hour in their time zone.
func (g *generator) candidate(t int64, spike bool) {
	ai := g.spikeAcct
	if !spike {
		ai = g.r.pick(g.acctCum)
	}
	as := &g.accts[ai]
	c := g.r.intn(len(as.numbers))
	local := t/1000 + countries[as.country[c]].offset
	hour := (local%86400 + 86400) % 86400 / 3600
	if !g.r.chance(diurnal[hour]) {
		return
	}
	kind := thMarketing
	if !spike {
		kind = uint8(g.r.pick(as.mixCum[:]))
	}
	var ti int32
	if n := len(g.freeThreads); n > 0 {
		ti = g.freeThreads[n-1]
		g.freeThreads = g.freeThreads[:n-1]
	} else {
		g.threads = append(g.threads, thread{})
		ti = int32(len(g.threads) - 1)
	}
	g.threads[ti] = thread{kind: kind, acct: uint16(ai), cust: uint32(c)}
	g.step(ti, t)
}

// step runs the thread's current step at now and schedules its next one.
func (g *generator) step(ti int32, now int64) {
	th := &g.threads[ti]
	delay := g.script(th, now)
	if delay < 0 || now+delay >= g.end {
		g.freeThreads = append(g.freeThreads, ti)
		return
	}
	g.seq++
	g.actions.push(heapItem{at: now + delay, seq: g.seq, slot: ti})
}

// push schedules a record to arrive at at.
func (g *generator) push(p pending, at int64) {
	var slot int32
	if n := len(g.freeSlots); n > 0 {
		slot = g.freeSlots[n-1]
		g.freeSlots = g.freeSlots[:n-1]
		g.slab[slot] = p
	} else {
		g.slab = append(g.slab, p)
		slot = int32(len(g.slab) - 1)
	}
	g.seq++
	g.records.push(heapItem{at: at, seq: g.seq, slot: slot})
}

func (g *generator) release(slot int32) {
	g.slab[slot] = pending{}
	g.freeSlots = append(g.freeSlots, slot)
}

// latency is how long Meta takes to post a webhook after the event.
func (g *generator) latency() int64 {
	if g.r.chance(0.01) {
		return g.r.between(5_000, 60_000) // a backlog at Meta
	}
	return g.r.between(300, 2_500)
}
