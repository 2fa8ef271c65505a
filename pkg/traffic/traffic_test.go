package traffic

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wameter/wameter/pkg/accounts"
	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/pricing"
	"github.com/wameter/wameter/pkg/webhook"
)

// testConfig is a day of a few hundred customers per account: small enough
// for -race, large enough for every kind of conversation to show up.
func testConfig(start string) Config {
	cfg := DefaultConfig()
	cfg.Start = mustTime(start)
	cfg.Accounts = DefaultAccounts(3, 400)
	return cfg
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// digest hashes every field of every record, in order.
func digest(t *testing.T, cfg Config) (sum [32]byte, n int) {
	t.Helper()
	h := sha256.New()
	var lastAt int64
	err := Generate(cfg, func(r Record) error {
		if r.At < lastAt {
			t.Fatalf("record %d arrives at %d, before the previous one (%d)", n, r.At, lastAt)
		}
		lastAt = r.At
		n++
		var num [8]byte
		binary.LittleEndian.PutUint64(num[:], uint64(r.At))
		h.Write(num[:])
		for _, part := range [][]byte{[]byte(r.Topic), r.Key, r.Value} {
			binary.LittleEndian.PutUint64(num[:], uint64(len(part)))
			h.Write(num[:])
			h.Write(part)
		}
		for _, k := range slices.Sorted(maps.Keys(r.Headers)) {
			h.Write([]byte(k + "=" + r.Headers[k] + ";"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h.Sum(sum[:0])
	return sum, n
}

func TestDeterministic(t *testing.T) {
	cfg := testConfig("2025-08-04T00:00:00Z")
	cfg.Malformed = 7
	cfg.Accounts[1].OnPremises = true
	a, n := digest(t, cfg)
	b, m := digest(t, cfg)
	if a != b || n != m {
		t.Errorf("same config, different streams: %d records %x, %d records %x", n, a, m, b)
	}
	if n < 5000 {
		t.Errorf("only %d records", n)
	}
	cfg.Seed++
	if c, _ := digest(t, cfg); c == a {
		t.Error("another seed gave the same stream")
	}
}

// decoded is a generated stream run through the webhook decoder.
type decoded struct {
	records, webhooks, sends int
	events                   []billing.Event
	rejected                 map[webhook.Reason]int
	statusesPerPayload       map[int]int
	duplicates               int // webhook values seen before (Meta's retries)
	referrals, onPremises    int
	sendAfterStatus          int // send records arriving after a status of their message
}

func decode(t *testing.T, cfg Config) *decoded {
	t.Helper()
	d := &decoded{rejected: map[webhook.Reason]int{}, statusesPerPayload: map[int]int{}}
	seen := map[[32]byte]bool{}
	statusSeen := map[string]bool{}
	var batch []billing.Event
	err := Generate(cfg, func(r Record) error {
		d.records++
		var err error
		batch = batch[:0]
		switch r.Topic {
		case TopicSends:
			d.sends++
			batch, err = webhook.DecodeSend(r.Value, batch)
		case TopicWebhooks:
			d.webhooks++
			hdr := webhook.Headers{PhoneNumberID: r.Headers["phone_number_id"], WABA: r.Headers["waba_id"]}
			if hdr.PhoneNumberID != "" {
				d.onPremises++
			}
			batch, err = webhook.DecodeWebhook(r.Value, hdr, batch)
			sum := sha256.Sum256(r.Value)
			if seen[sum] {
				d.duplicates++
			}
			seen[sum] = true
		default:
			t.Fatalf("record %d: topic %q", d.records, r.Topic)
		}
		if err != nil {
			e, ok := errors.AsType[*webhook.Error](err)
			if !ok {
				t.Fatalf("record %d: %v", d.records, err)
			}
			d.rejected[e.Reason]++
			return nil
		}
		statuses := 0
		for i := range batch {
			ev := &batch[i]
			switch ev.Kind {
			case billing.Status:
				statuses++
				statusSeen[ev.MessageID] = true
			case billing.Send:
				if statusSeen[ev.MessageID] {
					d.sendAfterStatus++
				}
			case billing.Inbound:
				if ev.Referral {
					d.referrals++
				}
			}
		}
		if statuses > 0 {
			d.statusesPerPayload[statuses]++
		}
		if len(r.Key) == 0 {
			t.Errorf("record %d has no key", d.records)
		}
		d.events = append(d.events, batch...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestEveryRecordDecodes(t *testing.T) {
	cfg := testConfig("2025-08-04T00:00:00Z")
	cfg.Accounts[2].OnPremises = true
	d := decode(t, cfg)
	if len(d.rejected) > 0 {
		t.Fatalf("rejected: %v", d.rejected)
	}
	if d.sends == 0 || d.webhooks < 2*d.sends {
		t.Errorf("%d send records and %d webhooks: want about 3 webhooks per send record", d.sends, d.webhooks)
	}
	// The disorder the pipeline must absorb is there.
	if d.duplicates == 0 || d.duplicates > d.webhooks/20 {
		t.Errorf("%d retried webhooks of %d: want about 1%%", d.duplicates, d.webhooks)
	}
	multi := 0
	for n, count := range d.statusesPerPayload {
		if n > 1 {
			multi += count
		}
	}
	if multi == 0 {
		t.Errorf("no payload with several statuses: %v", d.statusesPerPayload)
	}
	if d.referrals == 0 || d.onPremises == 0 || d.sendAfterStatus == 0 {
		t.Errorf("referrals %d, On-Premises payloads %d, late send records %d: want some of each", d.referrals, d.onPremises, d.sendAfterStatus)
	}
}

func TestMalformedAreRejected(t *testing.T) {
	for _, n := range []int{1, 25} {
		cfg := testConfig("2025-08-04T00:00:00Z")
		cfg.Malformed = n
		d := decode(t, cfg)
		total := 0
		for _, c := range d.rejected {
			total += c
		}
		if total != n {
			t.Errorf("Malformed %d: %d rejected (%v)", n, total, d.rejected)
		}
		if n >= len(malformedRecords) && len(d.rejected) < 6 {
			t.Errorf("Malformed %d: only reasons %v", n, d.rejected)
		}
	}
}

// derived runs a decoded stream through the billing engine.
type derived struct {
	res     billing.Result
	stats   billing.Stats
	ledger  billing.LedgerStats
	charges map[string]int // category/pricing_type
	convs   map[string]int // category
	// outbound delivered messages (a delivered or read status), by id
	delivered map[string]bool
}

func derive(t *testing.T, d *decoded) *derived {
	t.Helper()
	catalog, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	eng, err := billing.New(billing.Config{Catalog: catalog})
	if err != nil {
		t.Fatal(err)
	}
	led, err := billing.NewLedger(catalog, accounts.Empty())
	if err != nil {
		t.Fatal(err)
	}
	out := &derived{charges: map[string]int{}, convs: map[string]int{}, delivered: map[string]bool{}}
	for _, ev := range d.events {
		if ev.Kind == billing.Status && (ev.Status == billing.StatusDelivered || ev.Status == billing.StatusRead) {
			out.delivered[ev.MessageID] = true
		}
	}
	out.res = billing.Derive(slices.Clone(d.events), eng, led)
	out.stats, out.ledger = eng.Stats, led.Stats
	for _, u := range out.res.Charges {
		out.charges[u.Category.String()+"/"+u.PricingType.String()]++
	}
	for _, c := range out.res.Conversations {
		out.convs[c.Category.String()]++
	}
	return out
}

func TestDayThroughBillingPMP(t *testing.T) {
	d := decode(t, testConfig("2025-08-04T00:00:00Z"))
	r := derive(t, d)
	if r.stats.UnknownKind != 0 || r.ledger.NoRate != 0 {
		t.Errorf("unknown kind %d, no_rate %d: want 0 with send records on", r.stats.UnknownKind, r.ledger.NoRate)
	}
	for _, k := range []string{"marketing/regular", "utility/regular", "utility/free_customer_service",
		"authentication/regular", "service/free_customer_service", "referral_conversion/free_entry_point"} {
		if r.charges[k] == 0 {
			t.Errorf("no %s charge: %v", k, r.charges)
		}
	}
	if r.convs["referral_conversion"] == 0 || len(r.convs) != 1 {
		t.Errorf("conversations %v: want free entry point windows only", r.convs)
	}
	// Per-message pricing: one charge per delivered message, no more.
	if len(r.res.Charges) != len(r.delivered) {
		t.Errorf("%d charges for %d delivered messages", len(r.res.Charges), len(r.delivered))
	}
	// Most utility templates are updates outside any window; the free
	// ones are those sent during a chat.
	if free, paid := r.charges["utility/free_customer_service"], r.charges["utility/regular"]; free >= paid {
		t.Errorf("utility: %d free, %d charged: want fewer free", free, paid)
	}
	// The retailer (account 0) sends more marketing than codes; the
	// fintech (account 2) the reverse.
	byAccount := map[uint64]map[billing.Category]int{}
	for _, u := range r.res.Charges {
		if byAccount[u.WABA] == nil {
			byAccount[u.WABA] = map[billing.Category]int{}
		}
		byAccount[u.WABA][u.Category]++
	}
	accts := DefaultAccounts(3, 1)
	retail, fintech := byAccount[accts[0].WABA], byAccount[accts[2].WABA]
	if retail[billing.CatMarketing] <= retail[billing.CatAuthentication] || fintech[billing.CatAuthentication] <= 3*fintech[billing.CatMarketing] {
		t.Errorf("retailer %v, fintech %v: want marketing-heavy and authentication-heavy", retail, fintech)
	}
	// Meta's view agrees with the rules on every message's category.
	mismatch := 0
	for _, u := range r.res.Charges {
		if u.MetaCategory != u.Category.String() || u.MetaPricingModel != "PMP" {
			mismatch++
		}
	}
	if mismatch > 0 {
		t.Errorf("%d charges whose Meta category or model differs", mismatch)
	}
}

func TestDayThroughBillingCBP(t *testing.T) {
	d := decode(t, testConfig("2025-03-03T00:00:00Z"))
	r := derive(t, d)
	if r.stats.UnknownKind != 0 || r.ledger.NoRate != 0 {
		t.Errorf("unknown kind %d, no_rate %d", r.stats.UnknownKind, r.ledger.NoRate)
	}
	for _, c := range []string{"marketing", "utility", "authentication", "service", "referral_conversion"} {
		if r.convs[c] == 0 {
			t.Errorf("no %s conversation: %v", c, r.convs)
		}
	}
	for _, k := range []string{"marketing/regular", "utility/regular", "authentication/regular",
		"service/free_service", "referral_conversion/free_entry_point"} {
		if r.charges[k] == 0 {
			t.Errorf("no %s charge: %v", k, r.charges)
		}
	}
	if len(r.res.Charges) != len(r.res.Conversations) || len(r.res.Charges) >= len(r.delivered) {
		t.Errorf("%d charges, %d conversations, %d delivered messages: want one charge per conversation, fewer than messages",
			len(r.res.Charges), len(r.res.Conversations), len(r.delivered))
	}
	// Meta's conversations (the simulator's model of them) mostly match
	// the rules': reconciliation finds only the odd difference (a skipped
	// delivered whose read carries no pricing, a phone off for hours).
	match := 0
	for _, u := range r.res.Charges {
		if u.MetaCategory == u.Category.String() && u.MetaConversationID != "" {
			match++
		}
	}
	if match < len(r.res.Charges)*95/100 {
		t.Errorf("Meta's view matches %d of %d conversations", match, len(r.res.Charges))
	}
}

func TestWithoutSendRecords(t *testing.T) {
	cfg := testConfig("2025-08-04T00:00:00Z")
	cfg.MissingSendRate = 1
	d := decode(t, cfg)
	if d.sends != 0 {
		t.Fatalf("%d send records", d.sends)
	}
	r := derive(t, d)
	// Every delivered message is still priced from Meta's pricing object.
	if r.stats.UnknownKind != 0 || len(r.res.Charges) != len(r.delivered) {
		t.Errorf("unknown kind %d, %d charges for %d delivered messages", r.stats.UnknownKind, len(r.res.Charges), len(r.delivered))
	}
}

func TestSpike(t *testing.T) {
	marketingSends := func(cfg Config, waba uint64, from, to time.Time) int {
		n := 0
		err := Generate(cfg, func(r Record) error {
			if r.Topic == TopicSends && r.At >= from.UnixMilli() && r.At < to.UnixMilli() &&
				bytes.Contains(r.Value, []byte(`"category":"MARKETING"`)) &&
				bytes.Contains(r.Value, []byte(`"waba_id":"`+itoa(waba)+`"`)) {
				n++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	cfg := testConfig("2025-08-04T00:00:00Z")
	waba := cfg.Accounts[0].WABA
	from := cfg.Start.Add(14 * time.Hour)
	to := from.Add(time.Hour)
	base := marketingSends(cfg, waba, from, to)
	cfg.Spike = &Spike{WABA: waba, Start: from, Duration: time.Hour, Factor: 10}
	spiked := marketingSends(cfg, waba, from, to)
	if base == 0 || spiked < 5*base {
		t.Errorf("marketing send records in the spike hour: %d, %d without the spike: want about 10x", spiked, base)
	}
	if after := marketingSends(cfg, waba, to.Add(time.Hour), to.Add(2*time.Hour)); after > 3*base {
		t.Errorf("%d marketing send records the hour after the spike", after)
	}
}

func itoa(v uint64) string { return string(appendUint(nil, v)) }

func TestValidate(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	cfg.Duration = 0
	cfg.ReadRate = 2
	cfg.Accounts[1].WABA = cfg.Accounts[0].WABA
	cfg.Accounts[2].Markets = []MarketShare{{"FR", 1}}
	cfg.Spike = &Spike{WABA: 1, Duration: time.Hour, Factor: 2}
	err := cfg.Validate()
	for _, want := range []string{"Duration", "ReadRate", "twice", `market "FR"`, "Spike.WABA"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want it to mention %s", err, want)
		}
	}
	if err := Generate(cfg, func(Record) error { return nil }); err == nil {
		t.Error("Generate ran an invalid config")
	}
}

func TestEmitErrorStops(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := Generate(testConfig("2025-08-04T00:00:00Z"), func(Record) error {
		n++
		if n == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 10 {
		t.Errorf("Generate returned %v after %d records; want stop after 10", err, n)
	}
}

func TestCustomerNumbersAreUniqueAndPriced(t *testing.T) {
	gcd := func(a, b uint64) uint64 {
		for b != 0 {
			a, b = b, a%b
		}
		return a
	}
	for _, co := range countries {
		total := (pow10(co.width) - co.lowest) * uint64(len(co.prefixes))
		if total < maxCustomersPerAccount || gcd(7919, total) != 1 {
			t.Errorf("%s: %d numbers: want at least %d, coprime with 7919", co.code, total, maxCustomersPerAccount)
		}
	}
	cfg := DefaultConfig()
	cfg.Accounts = DefaultAccounts(3, 20000)
	g := newGenerator(&cfg, nil)
	catalog, err := pricing.Default()
	if err != nil {
		t.Fatal(err)
	}
	day := pricing.DayOf(cfg.Start.Unix(), time.UTC)
	for _, as := range g.accts {
		seen := make(map[uint64]bool, len(as.numbers))
		for c, num := range as.numbers {
			if seen[num] {
				t.Fatalf("account %d: number %d twice", as.a.WABA, num)
			}
			seen[num] = true
			code := countries[as.country[c]].code
			want, ok := map[string]string{"US": "NORTH_AMERICA", "DO": "REST_OF_LATIN_AMERICA", "ZW": "OTHER"}[code]
			if !ok {
				want = code
			}
			if m := catalog.Market(num, day); m != want {
				t.Fatalf("customer %d of %s is in market %s, want %s", num, code, m, want)
			}
			if c%16 != 0 {
				continue // libphonenumber is slow; a sample of every country is enough
			}
			if catalog.Country(num) != countries[as.country[c]].code {
				t.Fatalf("customer %d of %s: libphonenumber says %q", num, countries[as.country[c]].code, catalog.Country(num))
			}
		}
	}
}

func BenchmarkGenerate(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Accounts = DefaultAccounts(5, 20000)
	records := 0
	var bytes int64
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		err := Generate(cfg, func(r Record) error {
			records++
			bytes += int64(len(r.Value))
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start).Seconds()
	b.ReportMetric(float64(records)/elapsed, "records/s")
	b.ReportMetric(float64(bytes)/elapsed/1e6, "MB/s")
	b.ReportMetric(float64(records)/float64(b.N), "records/op")
}
