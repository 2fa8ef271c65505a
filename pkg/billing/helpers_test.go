package billing

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wameter/wameter/pkg/accounts"
	"github.com/wameter/wameter/pkg/pricing"
)

const (
	testWABA = 102938475610
	testPN   = 106540352242922
	usCust   = 14155550100 // +1 415: NORTH_AMERICA
	doCust   = 18095550100 // +1 809: REST_OF_LATIN_AMERICA
	brCust   = 5511987654321
	inCust   = 919876543210
)

func mustTime(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.Unix()
}

func hours(h float64) int64 { return int64(h * 3600) }

// scenario builds one customer's events concisely.
type scenario struct {
	t        *testing.T
	base     int64
	pn, cust uint64
	waba     uint64
	events   []Event
	n        int
}

func newScenario(t *testing.T, base string) *scenario {
	return &scenario{t: t, base: mustTime(base), pn: testPN, cust: usCust, waba: testWABA}
}

func (s *scenario) id() string {
	s.n++
	return fmt.Sprintf("wamid.%s.%04d", s.t.Name(), s.n)
}

func (s *scenario) at(h float64) int64 { return s.base + hours(h) }

// inbound adds a customer message at hour h.
func (s *scenario) inbound(h float64) *scenario {
	s.events = append(s.events, Event{Kind: Inbound, Time: s.at(h), WABA: s.waba,
		PhoneNumberID: s.pn, Customer: s.cust, MessageID: s.id()})
	return s
}

// referral adds a customer message carrying a referral at hour h.
func (s *scenario) referral(h float64) *scenario {
	s.inbound(h)
	s.events[len(s.events)-1].Referral = true
	return s
}

// out adds an outbound message of kind k (known from its send record) sent
// and delivered at hour h, and returns its message id.
func (s *scenario) out(h float64, k MsgKind) string {
	id := s.id()
	s.events = append(s.events,
		Event{Kind: Send, Time: s.at(h), WABA: s.waba, PhoneNumberID: s.pn, Customer: s.cust, MessageID: id, MsgKind: k},
		Event{Kind: Status, Status: StatusSent, Time: s.at(h), WABA: s.waba, PhoneNumberID: s.pn, Customer: s.cust, MessageID: id},
		Event{Kind: Status, Status: StatusDelivered, Time: s.at(h), WABA: s.waba, PhoneNumberID: s.pn, Customer: s.cust, MessageID: id})
	return id
}

func testCatalog(t testing.TB) *pricing.Catalog {
	t.Helper()
	c, err := pricing.Default()
	if err != nil {
		t.Fatalf("pricing.Default: %v", err)
	}
	return c
}

func testBook(t testing.TB, yaml string) *accounts.Book {
	t.Helper()
	if yaml == "" {
		return accounts.Empty()
	}
	b, err := accounts.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("accounts.Parse: %v", err)
	}
	return b
}

type harness struct {
	cat  *pricing.Catalog
	book *accounts.Book
	eng  *Engine
	led  *Ledger
}

func newHarness(t testing.TB, cat *pricing.Catalog, accountsYAML string) *harness {
	t.Helper()
	if cat == nil {
		cat = testCatalog(t)
	}
	h := &harness{cat: cat, book: testBook(t, accountsYAML)}
	var err error
	if h.eng, err = New(Config{Catalog: h.cat, Accounts: h.book}); err != nil {
		t.Fatal(err)
	}
	if h.led, err = NewLedger(h.cat, h.book); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) derive(events []Event) Result {
	evs := append([]Event(nil), events...)
	return Derive(evs, h.eng, h.led)
}

// convLine renders a conversation as "category@+Hh/model" relative to base.
func convLine(base int64, c Conversation) string {
	return fmt.Sprintf("%s@%s/%s", c.Category, relH(base, c.OpenedAt), c.Model)
}

// chargeLine renders a charge as "category@+Hh/type/amount".
func chargeLine(base int64, u Unit) string {
	return fmt.Sprintf("%s@%s/%s/%s", u.Category, relH(base, u.ChargedAt), u.PricingType, micros(u.AmountMicro))
}

func relH(base, t int64) string {
	d := t - base
	if d%3600 == 0 {
		return fmt.Sprintf("%dh", d/3600)
	}
	return fmt.Sprintf("%ds", d)
}

func micros(m int64) string { return fmt.Sprintf("%d.%06d", m/1e6, m%1e6) }

func convLines(base int64, r Result) string {
	var b []string
	for _, c := range r.Conversations {
		b = append(b, convLine(base, c))
	}
	return strings.Join(b, " ")
}

func chargeLines(base int64, r Result) string {
	var b []string
	for _, u := range r.Charges {
		b = append(b, chargeLine(base, u))
	}
	return strings.Join(b, " ")
}

// expect derives the scenario and compares conversations and charges.
func (s *scenario) expect(h *harness, wantConvs, wantCharges string) Result {
	s.t.Helper()
	r := h.derive(s.events)
	if got := convLines(s.base, r); got != wantConvs {
		s.t.Errorf("conversations:\n got: %s\nwant: %s", got, wantConvs)
	}
	if got := chargeLines(s.base, r); got != wantCharges {
		s.t.Errorf("charges:\n got: %s\nwant: %s", got, wantCharges)
	}
	return r
}

// rate returns the list rate the catalog has, failing the test when none.
func rate(t *testing.T, c *pricing.Catalog, model, date, market, cat string) string {
	t.Helper()
	d, err := pricing.ParseDay(date)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := c.Rate(model, d, market, cat, "USD")
	if !ok {
		t.Fatalf("no %s rate for %s %s %s", model, date, market, cat)
	}
	return micros(r.Micros)
}
