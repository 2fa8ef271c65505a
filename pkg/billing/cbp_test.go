package billing

import (
	"fmt"
	"testing"
)

// Meta's worked example (conversation-based pricing): a marketing template at
// h0 opens a marketing conversation; the customer writes at h4; an
// interactive message at h5 falls into the open conversation; it expires at
// h24; a text at h25 (inside the service window) opens a service
// conversation; a text at h26 opens nothing.
func TestCBPMetaWorkedExample(t *testing.T) {
	h := newHarness(t, nil, "")
	s := newScenario(t, "2024-03-04T00:00:00Z")
	s.out(0, KindMarketing)
	s.inbound(4)
	s.out(5, KindNonTemplate)
	s.out(25, KindNonTemplate)
	s.out(26, KindNonTemplate)
	r := s.expect(h,
		"marketing@0h/CBP service@25h/CBP",
		"marketing@0h/regular/0.025000 service@25h/free_tier/0.000000")
	if r.Conversations[0].ExpiresAt != s.at(24) {
		t.Errorf("marketing conversation expires at %s, want 24h", relH(s.base, r.Conversations[0].ExpiresAt))
	}
	if u := r.Charges[0]; u.BillingUnit != UnitConversation || u.Model != CBP || u.Currency != "USD" || u.RateCard == "" {
		t.Errorf("charge row %+v: want a CBP conversation unit in USD with a rate card", u)
	}
}

func TestCBPConversationWindowIsHalfOpen(t *testing.T) {
	h := newHarness(t, nil, "")
	s := newScenario(t, "2024-03-04T00:00:00Z")
	s.out(0, KindUtility)
	s.events = append(s.events, Event{Kind: Send, Time: s.at(24) - 1, PhoneNumberID: s.pn, Customer: s.cust, MessageID: "wamid.last-second", MsgKind: KindUtility},
		Event{Kind: Status, Status: StatusDelivered, Time: s.at(24) - 1, PhoneNumberID: s.pn, Customer: s.cust, MessageID: "wamid.last-second"})
	s.out(24, KindUtility)
	s.expect(h, "utility@0h/CBP utility@24h/CBP",
		"utility@0h/regular/0.015000 utility@24h/regular/0.015000")
}

func TestCBPSeveralCategoriesOpenAtOnce(t *testing.T) {
	h := newHarness(t, nil, "")
	s := newScenario(t, "2024-03-04T00:00:00Z")
	s.out(0, KindMarketing)
	s.out(1, KindUtility)
	s.out(2, KindAuthentication)
	s.out(3, KindMarketing)       // marketing already open
	s.out(4, KindUtility)         // utility already open
	s.out(5, KindNonTemplate)     // something is open: no service conversation
	s.out(23.5, KindMarketing)    // still inside
	s.out(24.5, KindMarketing)    // marketing expired at 24h
	s.out(24.75, KindNonTemplate) // marketing reopened at 24.5: still nothing
	s.expect(h,
		"marketing@0h/CBP utility@1h/CBP authentication@2h/CBP marketing@88200s/CBP",
		"marketing@0h/regular/0.025000 utility@1h/regular/0.015000 authentication@2h/regular/0.013500 marketing@88200s/regular/0.025000")
}

func TestCBPServiceOpensOnlyWhenNothingIsOpen(t *testing.T) {
	h := newHarness(t, nil, "")
	s := newScenario(t, "2024-03-04T00:00:00Z")
	s.inbound(0)
	s.out(1, KindNonTemplate) // opens service
	s.out(2, KindUtility)     // a template opens its own category even inside service
	s.out(3, KindNonTemplate) // service open: nothing
	s.expect(h, "service@1h/CBP utility@2h/CBP",
		"service@1h/free_tier/0.000000 utility@2h/regular/0.015000")
}

func TestCBP2024ServiceConversationsAreFree(t *testing.T) {
	h := newHarness(t, nil, "")
	s := newScenario(t, "2024-12-02T00:00:00Z")
	s.inbound(0)
	s.out(1, KindNonTemplate)
	s.out(30, KindNonTemplate)
	s.expect(h, "service@1h/CBP service@30h/CBP",
		"service@1h/free_service/0.000000 service@30h/free_service/0.000000")
}

func TestCBPFreeEntryPoint(t *testing.T) {
	h := newHarness(t, nil, "")
	s := newScenario(t, "2024-03-04T00:00:00Z")
	s.referral(0)
	s.out(1, KindMarketing)  // opens the free entry point conversation [1h, 73h)
	s.out(2, KindUtility)    // free, inside it
	s.out(72.5, KindUtility) // still inside
	s.out(73, KindMarketing) // the window is half-open: a new marketing conversation
	r := s.expect(h, "referral_conversion@1h/CBP marketing@73h/CBP",
		"referral_conversion@1h/free_entry_point/0.000000 marketing@73h/regular/0.025000")
	if got := r.Conversations[0].ExpiresAt - r.Conversations[0].OpenedAt; got != 72*3600 {
		t.Errorf("free entry point lasts %ds, want 72h", got)
	}
}

func TestCBPFreeEntryPointCandidateLasts24h(t *testing.T) {
	h := newHarness(t, nil, "")
	s := newScenario(t, "2024-03-04T00:00:00Z")
	s.referral(0)
	s.out(24, KindMarketing) // the candidate ended at 24h
	s.expect(h, "marketing@24h/CBP", "marketing@24h/regular/0.025000")
}

func TestCBPFreeEntryPointCandidateIsUsedUp(t *testing.T) {
	h := newHarness(t, nil, "")
	s := newScenario(t, "2024-03-04T00:00:00Z")
	s.referral(0)
	s.out(1, KindMarketing)
	s.inbound(10) // no referral: no new candidate
	s.out(74, KindUtility)
	s.expect(h, "referral_conversion@1h/CBP utility@74h/CBP",
		"referral_conversion@1h/free_entry_point/0.000000 utility@74h/regular/0.015000")
}

// A free entry point closes the other open conversations (4.2.2): visible
// when a CBP utility conversation would otherwise span the PMP switch (4.6).
func TestCBPFreeEntryPointClosesOtherConversations(t *testing.T) {
	h := newHarness(t, nil, "")
	s := newScenario(t, "2025-06-30T12:00:00Z")
	s.out(0, KindUtility)   // CBP utility until 2025-07-01T12:00
	s.referral(8)           // 20:00
	s.out(9, KindMarketing) // 21:00: free entry point, closes the utility conversation
	s.out(13, KindUtility)  // 2025-07-01T01:00, PMP, inside the free entry point window
	cbpUtility := rate(t, h.cat, "CBP", "2025-06-30", "NORTH_AMERICA", "utility")
	s.expect(h, "utility@0h/CBP referral_conversion@9h/CBP",
		"utility@0h/regular/"+cbpUtility+" referral_conversion@9h/free_entry_point/0.000000 referral_conversion@13h/free_entry_point/0.000000")
}

// 4.6: a CBP utility conversation open at the switch stays open until it
// expires; utility templates delivered into it are free with no row; other
// categories follow section 5.
func TestCBPUtilityConversationSpansSwitchToPMP(t *testing.T) {
	h := newHarness(t, nil, "")
	s := newScenario(t, "2025-06-30T12:00:00Z")
	s.out(0, KindUtility)    // CBP utility until 2025-07-01T12:00Z
	s.out(1, KindMarketing)  // CBP marketing until 2025-07-01T13:00Z
	s.out(13, KindUtility)   // PMP, inside the CBP utility conversation: no row
	s.out(14, KindMarketing) // PMP: the CBP marketing conversation does not carry over
	s.out(24, KindUtility)   // the CBP conversation expired at 24h: PMP utility, no service window
	pmpUtility := rate(t, h.cat, "PMP", "2025-07-01", "NORTH_AMERICA", "utility")
	pmpMarketing := rate(t, h.cat, "PMP", "2025-07-01", "NORTH_AMERICA", "marketing")
	cbpUtility := rate(t, h.cat, "CBP", "2025-06-30", "NORTH_AMERICA", "utility")
	s.expect(h, "utility@0h/CBP marketing@1h/CBP",
		"utility@0h/regular/"+cbpUtility+" marketing@1h/regular/0.025000 marketing@14h/regular/"+pmpMarketing+" utility@24h/regular/"+pmpUtility)
}

// 4.4: the first 1,000 service conversations of a WABA in a calendar month
// are free, by opening instant, ties by phone_number_id then customer wa_id.
func TestCBPFreeTierThousandthAndThousandFirst(t *testing.T) {
	h := newHarness(t, nil, "")
	base := mustTime("2024-03-01T00:00:00Z")
	var events []Event
	add := func(pn, cust uint64, at int64, id string) {
		events = append(events,
			Event{Kind: Inbound, Time: at - 60, WABA: testWABA, PhoneNumberID: pn, Customer: cust, MessageID: id + ".in"},
			Event{Kind: Send, Time: at, WABA: testWABA, PhoneNumberID: pn, Customer: cust, MessageID: id, MsgKind: KindNonTemplate},
			Event{Kind: Status, Status: StatusDelivered, Time: at, WABA: testWABA, PhoneNumberID: pn, Customer: cust, MessageID: id})
	}
	for i := 0; i < 998; i++ {
		add(testPN, usCust+uint64(i), base+int64(i)*60, fmt.Sprintf("wamid.%d", i))
	}
	// Three conversations open at the same instant: ties by phone_number_id, then wa_id.
	tie := base + 2000*60
	add(testPN+1, usCust, tie, "wamid.tie-a")      // 1001st: higher phone_number_id
	add(testPN, usCust+5000, tie, "wamid.tie-b")   // 1000th
	add(testPN, usCust+4000, tie, "wamid.tie-c")   // 999th
	add(testPN, usCust+9000, tie+1, "wamid.later") // 1002nd
	// Next month starts again.
	add(testPN, usCust+9000, mustTime("2024-04-01T00:00:00Z"), "wamid.april")

	r := h.derive(events)
	if len(r.Charges) != 1003 {
		t.Fatalf("%d charges, want 1003", len(r.Charges))
	}
	free := 0
	for _, u := range r.Charges[:998] {
		if u.PricingType == PTFreeTier {
			free++
		}
	}
	if free != 998 {
		t.Errorf("%d of the first 998 are free_tier, want all", free)
	}
	want := []struct {
		msg, typ, amount string
	}{
		{"wamid.tie-c", "free_tier", "0.000000"},
		{"wamid.tie-b", "free_tier", "0.000000"},
		{"wamid.tie-a", "regular", "0.008800"},
		{"wamid.later", "regular", "0.008800"},
		{"wamid.april", "free_tier", "0.000000"},
	}
	for i, w := range want {
		u := r.Charges[998+i]
		if u.MessageID != w.msg || u.PricingType.String() != w.typ || micros(u.AmountMicro) != w.amount {
			t.Errorf("charge %d: %s %s %s, want %s %s %s", 999+i, u.MessageID, u.PricingType, micros(u.AmountMicro), w.msg, w.typ, w.amount)
		}
	}
}

// The month of the free tier is the WABA's local month.
func TestCBPFreeTierMonthIsLocal(t *testing.T) {
	h := newHarness(t, nil, "accounts:\n  - waba_id: \"102938475610\"\n    timezone: Asia/Kolkata\n")
	var events []Event
	base := mustTime("2024-03-01T00:00:00Z")
	for i := 0; i < 1000; i++ {
		at := base + int64(i)*60
		id := fmt.Sprintf("wamid.%d", i)
		events = append(events,
			Event{Kind: Send, Time: at, WABA: testWABA, PhoneNumberID: testPN, Customer: usCust + uint64(i), MessageID: id, MsgKind: KindNonTemplate},
			Event{Kind: Status, Status: StatusDelivered, Time: at, WABA: testWABA, PhoneNumberID: testPN, Customer: usCust + uint64(i), MessageID: id})
	}
	// 2024-03-31T18:29:59Z is March in UTC+5:30; 18:30:00Z is April.
	for _, e := range []struct {
		at   string
		id   string
		cust uint64
	}{{"2024-03-31T18:29:59Z", "wamid.march", brCust}, {"2024-03-31T18:30:00Z", "wamid.april", brCust + 1}} {
		at := mustTime(e.at)
		events = append(events,
			Event{Kind: Send, Time: at, WABA: testWABA, PhoneNumberID: testPN, Customer: e.cust, MessageID: e.id, MsgKind: KindNonTemplate},
			Event{Kind: Status, Status: StatusDelivered, Time: at, WABA: testWABA, PhoneNumberID: testPN, Customer: e.cust, MessageID: e.id})
	}
	r := h.derive(events)
	got := map[string]string{}
	for _, u := range r.Charges {
		got[u.MessageID] = u.PricingType.String()
	}
	if got["wamid.march"] != "regular" || got["wamid.april"] != "free_tier" {
		t.Errorf("march: %s (want regular, the 1001st), april: %s (want free_tier)", got["wamid.march"], got["wamid.april"])
	}
}

func TestCBPAuthenticationInternational(t *testing.T) {
	const yaml = `accounts:
  - waba_id: "102938475610"
    country: IN
    auth_international_from: 2024-07-01T00:00:00Z
  - waba_id: "222"
`
	idCust := uint64(6281234567890) // Indonesia: auth-intl rate from 2024-06-01
	cases := []struct {
		name string
		waba uint64
		cust uint64
		at   string
		want string
	}{
		{"foreign customer with an auth-intl rate", testWABA, idCust, "2024-07-10T00:00:00Z", "authentication_international"},
		{"before auth_international_from", testWABA, idCust, "2024-06-20T00:00:00Z", "authentication"},
		{"customer in the business's country", testWABA, inCust, "2024-07-10T00:00:00Z", "authentication"},
		{"market without an auth-intl rate", testWABA, usCust, "2024-07-10T00:00:00Z", "authentication"},
		{"WABA without a country", 222, idCust, "2024-07-10T00:00:00Z", "authentication"},
		{"PMP, foreign customer", testWABA, idCust, "2025-08-10T00:00:00Z", "authentication_international"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, nil, yaml)
			s := newScenario(t, c.at)
			s.waba, s.cust = c.waba, c.cust
			s.out(0, KindAuthentication)
			s.out(1, KindAuthentication) // CBP: same category open; PMP: charged again
			r := h.derive(s.events)
			if len(r.Charges) == 0 {
				t.Fatal("no charge")
			}
			u := r.Charges[0]
			if u.Category.String() != c.want || u.PricingType != PTRegular || u.AmountMicro <= 0 {
				t.Errorf("charged %s %s %s, want %s regular > 0", u.Category, u.PricingType, micros(u.AmountMicro), c.want)
			}
			want := 1
			if u.Model == PMP {
				want = 2
			}
			if len(r.Charges) != want {
				t.Errorf("%d charges, want %d", len(r.Charges), want)
			}
		})
	}
}
