package billing

import (
	"errors"
	"time"

	"github.com/wameter/wameter/pkg/accounts"
	"github.com/wameter/wameter/pkg/pricing"
)

const (
	hour = int64(3600)
	// conversationLength is a CBP conversation's and the customer service window's length.
	conversationLength = 24 * hour
	// freeEntryPointLength is a free entry point window's length.
	freeEntryPointLength = 72 * hour
	// DefaultMessageMemory is how long a key remembers an outbound message
	// (from first sight or delivery) so that a late read or a retried status
	// bills nothing: Meta retries webhooks for up to 7 days.
	DefaultMessageMemory = 7 * 24 * hour
	// DefaultMaxMessagesPerKey bounds one key's message memory (a flood for
	// one customer degrades to forgetting its oldest messages, counted).
	DefaultMaxMessagesPerKey = 1024
)

// Config configures an Engine.
type Config struct {
	Catalog  *pricing.Catalog
	Accounts *accounts.Book
	// MessageMemory in seconds; 0 means DefaultMessageMemory.
	MessageMemory int64
	// MaxMessagesPerKey; 0 means DefaultMaxMessagesPerKey.
	MaxMessagesPerKey int
}

// Stats counts conditions of the per-key step that produce no rows but that
// an operator must see.
type Stats struct {
	Events           uint64
	UnknownKind      uint64 // delivered messages of unknown kind: opened nothing
	Legacy           uint64 // delivered messages of a legacy category: billed nothing
	RepeatDeliveries uint64 // a read or repeated delivered status of a billed message
	MessagesDropped  uint64 // remembered messages dropped by MaxMessagesPerKey
}

// Output collects what Apply derives. The caller owns it and resets it.
type Output struct {
	Conversations []Conversation
	Units         []Unit
}

// Reset empties o, keeping its capacity.
func (o *Output) Reset() {
	o.Conversations = o.Conversations[:0]
	o.Units = o.Units[:0]
}

// Engine applies events to per-key states (spec sections 2 to 5). It caches
// per-account rule-set switch instants, so it is not safe for concurrent use:
// use one Engine per goroutine (they can share Catalog and Accounts).
type Engine struct {
	cfg   Config
	rules map[uint64]*accountRules
	Stats Stats
}

// accountRules is what an account's time zone makes of the spec's dates.
type accountRules struct {
	acct *accounts.Account
	// switches are the instants (Unix) of local midnight of 2023-06-01,
	// 2024-11-01 and 2025-07-01: the starts of the rule sets.
	switches [3]int64
}

func (r *accountRules) ruleSet(t int64) RuleSet {
	switch {
	case t < r.switches[0]:
		return RulesNone
	case t < r.switches[1]:
		return RulesCBP2023
	case t < r.switches[2]:
		return RulesCBP2024
	}
	return RulesPMP2025
}

// ruleSetStarts are the local dates the rule sets start (spec 3). A later
// rule set is one more entry here and one more case in ruleSet.
var ruleSetStarts = [3][3]int{{2023, 6, 1}, {2024, 11, 1}, {2025, 7, 1}}

// New returns an Engine. Catalog is required; a nil Accounts means every WABA
// gets the defaults.
func New(cfg Config) (*Engine, error) {
	if cfg.Catalog == nil {
		return nil, errors.New("billing: Config.Catalog is required")
	}
	if cfg.Accounts == nil {
		cfg.Accounts = accounts.Empty()
	}
	if cfg.MessageMemory <= 0 {
		cfg.MessageMemory = DefaultMessageMemory
	}
	if cfg.MaxMessagesPerKey <= 0 {
		cfg.MaxMessagesPerKey = DefaultMaxMessagesPerKey
	}
	return &Engine{cfg: cfg, rules: make(map[uint64]*accountRules)}, nil
}

// MessageMemory returns the configured message memory in seconds.
func (e *Engine) MessageMemory() int64 { return e.cfg.MessageMemory }

func (e *Engine) rulesFor(waba uint64) *accountRules {
	if r, ok := e.rules[waba]; ok {
		return r
	}
	acct := e.cfg.Accounts.Get(waba)
	r := &accountRules{acct: acct}
	for i, d := range ruleSetStarts {
		r.switches[i] = time.Date(d[0], time.Month(d[1]), d[2], 0, 0, 0, 0, acct.Location).Unix()
	}
	e.rules[waba] = r
	return r
}

// Apply applies one event to the state of its key and appends what it derives
// to out. Events of a key must come in Less order; exact duplicates are
// harmless. Apply never fails: an event it cannot bill is counted in Stats.
func (e *Engine) Apply(s *State, ev *Event, out *Output) {
	e.Stats.Events++
	if ev.WABA != 0 {
		s.WABA = ev.WABA
	}
	switch ev.Kind {
	case Inbound:
		// Spec 4.1 / 5.1.
		s.csWindowEnd = ev.Time + conversationLength
		if ev.Referral {
			s.fepEligibleUntil = ev.Time + conversationLength
		}
	case Send:
		if ev.MsgKind != KindUnknown {
			e.message(s, ev).sendKind = ev.MsgKind
		}
	case Status:
		switch ev.Status {
		case StatusDelivered, StatusRead:
			m := e.message(s, ev)
			if m.pricingKind == KindUnknown {
				m.pricingKind = ev.MsgKind
			}
			if m.deliveredAt != 0 {
				e.Stats.RepeatDeliveries++
				return
			}
			m.deliveredAt = ev.Time
			kind := m.sendKind
			if kind == KindUnknown {
				kind = m.pricingKind
			}
			e.deliver(s, ev, kind, out)
		default:
			// sent, failed and others bill nothing, but their pricing
			// object may be the only word on the message's kind.
			if ev.MsgKind != KindUnknown {
				if m := e.message(s, ev); m.pricingKind == KindUnknown {
					m.pricingKind = ev.MsgKind
				}
			}
		}
	}
}

// fnv64 hashes a message id (FNV-1a), without allocating.
func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// message finds or adds the record of ev's message. A record older than
// the message memory is forgotten, not found: whether it was still there
// must not depend on when the window last swept idle keys or added a
// message (a replay with another lateness or batching would then derive
// something else).
func (e *Engine) message(s *State, ev *Event) *msgRec {
	h := fnv64(ev.MessageID)
	for i := len(s.msgs) - 1; i >= 0; i-- {
		if s.msgs[i].hash == h {
			if s.msgs[i].lastAt() > ev.Time-e.cfg.MessageMemory {
				return &s.msgs[i]
			}
			break
		}
	}
	if len(s.msgs) > 0 && (len(s.msgs) >= e.cfg.MaxMessagesPerKey || s.msgs[0].lastAt() <= ev.Time-e.cfg.MessageMemory) {
		e.forget(s, ev.Time)
	}
	s.msgs = append(s.msgs, msgRec{hash: h, seenAt: ev.Time})
	return &s.msgs[len(s.msgs)-1]
}

// forget drops messages older than the memory, and the oldest ones beyond
// the per-key bound, keeping order.
func (e *Engine) forget(s *State, now int64) {
	kept := s.msgs[:0]
	for _, m := range s.msgs {
		if m.lastAt() > now-e.cfg.MessageMemory {
			kept = append(kept, m)
		}
	}
	if over := len(kept) - e.cfg.MaxMessagesPerKey + 1; over > 0 {
		e.Stats.MessagesDropped += uint64(over)
		kept = kept[:copy(kept, kept[over:])]
	}
	clear(s.msgs[len(kept):])
	s.msgs = kept
}

// templateCategory is the category of a template message kind, CatNone for
// a non-template.
func templateCategory(k MsgKind) Category {
	switch k {
	case KindMarketing:
		return CatMarketing
	case KindUtility:
		return CatUtility
	case KindAuthentication:
		return CatAuthentication
	case KindAuthenticationIntl:
		return CatAuthenticationIntl
	}
	return CatNone
}

// deliver bills an outbound message delivered at ev.Time.
func (e *Engine) deliver(s *State, ev *Event, kind MsgKind, out *Output) {
	r := e.rulesFor(s.WABA)
	t := ev.Time
	rs := r.ruleSet(t)
	day := pricing.DayOf(t, r.acct.Location)
	u := Unit{
		WABA: s.WABA, PhoneNumberID: ev.PhoneNumberID, Customer: ev.Customer,
		Market:    e.cfg.Catalog.Market(ev.Customer, day),
		RuleSet:   rs,
		ChargedAt: t, MessageID: ev.MessageID, BillingUnit: UnitMessage,
		MetaConversationID: ev.MetaConversationID, MetaCategory: ev.MetaCategory, MetaPricingModel: ev.MetaPricingModel,
	}
	if rs == RulesNone {
		// Spec 3: before 2023-06-01 every delivered message is one
		// unsupported row, whatever its kind.
		u.Category = templateCategory(kind)
		switch {
		case kind == KindNonTemplate:
			u.Category = CatService
		case u.Category == CatNone:
			u.Category = CatUnknown
		}
		u.PricingType = PTUnsupported
		out.Units = append(out.Units, u)
		return
	}
	switch kind {
	case KindUnknown:
		e.Stats.UnknownKind++
		return
	case KindLegacy:
		e.Stats.Legacy++
		return
	}
	if rs == RulesPMP2025 {
		u.Model = PMP
		e.deliverPMP(s, r, &u, kind, day, out)
		return
	}
	u.Model = CBP
	e.deliverCBP(s, r, &u, kind, day, out)
}

// deliverCBP applies spec 4.2.
func (e *Engine) deliverCBP(s *State, r *accountRules, u *Unit, kind MsgKind, day pricing.Day, out *Output) {
	t := u.ChargedAt
	if t < s.fepUntil {
		return // 4.2.1: part of the free entry point conversation
	}
	if t < s.fepEligibleUntil {
		// 4.2.2: opens a free entry point conversation that closes the others.
		s.fepUntil = t + freeEntryPointLength
		s.fepEligibleUntil = 0
		s.open = [len(cbpCats)]int64{}
		u.Category = CatReferralConversion
		u.PricingType = PTFreeEntryPoint
		e.open(u, freeEntryPointLength, out)
		return
	}
	cat := templateCategory(kind)
	if cat == CatNone {
		// 4.2.4: a non-template opens service only when nothing is open.
		for _, end := range s.open {
			if t < end {
				return
			}
		}
		cat = CatService
	} else {
		cat = e.authCategory(r, u, cat, day)
		if t < s.open[cbpSlot(cat)] {
			return // 4.2.3: a conversation of that category is open
		}
	}
	s.open[cbpSlot(cat)] = t + conversationLength
	u.Category = cat
	u.PricingType = PTChargeable
	if cat == CatService && u.RuleSet == RulesCBP2024 {
		u.PricingType = PTFreeService // 4.4
	}
	e.open(u, conversationLength, out)
}

// open records the conversation u opens, and u as its charge.
func (e *Engine) open(u *Unit, length int64, out *Output) {
	u.ConversationCategory = u.Category
	u.ConversationOpenedAt = u.ChargedAt
	if u.Model == CBP {
		u.BillingUnit = UnitConversation
	}
	out.Conversations = append(out.Conversations, Conversation{
		WABA: u.WABA, PhoneNumberID: u.PhoneNumberID, Customer: u.Customer,
		Market: u.Market, Category: u.Category, Model: u.Model, RuleSet: u.RuleSet,
		OpenedAt: u.ChargedAt, ExpiresAt: u.ChargedAt + length,
		OpeningMessageID: u.MessageID, MetaConversationID: u.MetaConversationID,
	})
	out.Units = append(out.Units, *u)
}

// deliverPMP applies spec 4.6 and 5.
func (e *Engine) deliverPMP(s *State, r *accountRules, u *Unit, kind MsgKind, day pricing.Day, out *Output) {
	t := u.ChargedAt
	if kind == KindUtility && t < s.open[cbpSlot(CatUtility)] {
		return // 4.6: inside a CBP utility conversation that spans the switch
	}
	switch {
	case t < s.fepUntil:
		u.Category = CatReferralConversion
		u.PricingType = PTFreeEntryPoint
		u.ConversationCategory = CatReferralConversion
		u.ConversationOpenedAt = s.fepUntil - freeEntryPointLength
		out.Units = append(out.Units, *u)
		return
	case t < s.fepEligibleUntil:
		s.fepUntil = t + freeEntryPointLength
		s.fepEligibleUntil = 0
		u.Category = CatReferralConversion
		u.PricingType = PTFreeEntryPoint
		e.open(u, freeEntryPointLength, out)
		return
	}
	cat := templateCategory(kind)
	switch cat {
	case CatNone:
		u.Category = CatService
		u.PricingType = PTFreeCustomerService
	case CatUtility:
		u.Category = CatUtility
		u.PricingType = PTChargeable
		if t < s.csWindowEnd {
			u.PricingType = PTFreeCustomerService
		}
	case CatAuthentication:
		u.Category = e.authCategory(r, u, cat, day)
		u.PricingType = PTChargeable
	default:
		u.Category = cat
		u.PricingType = PTChargeable
	}
	out.Units = append(out.Units, *u)
}

// authCategory applies spec 4.5: an authentication template is rated
// authentication-international when the WABA has a country, the message is
// at or after auth_international_from, the customer's market has such a rate
// that day and the customer's country differs from the WABA's.
func (e *Engine) authCategory(r *accountRules, u *Unit, cat Category, day pricing.Day) Category {
	a := r.acct
	if cat != CatAuthentication || a.Country == "" || !a.HasAuthIntlFrom || u.ChargedAt < a.AuthIntlFrom {
		return cat
	}
	model := "CBP"
	if r.ruleSet(u.ChargedAt) == RulesPMP2025 {
		model = "PMP"
	}
	if _, ok := e.cfg.Catalog.Rate(model, day, u.Market, CatAuthenticationIntl.String(), a.Currency); !ok {
		return cat
	}
	if c := e.cfg.Catalog.Country(u.Customer); c == "" || c == a.Country {
		return cat
	}
	return CatAuthenticationIntl
}
