package replay

import (
	"bufio"
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wameter/wameter/pkg/billing"
)

// The explanation (-explain) answers "why was this customer charged (twice)?"
// from the outside: it does not look into the engine's state, it rebuilds
// what matters from the key's events and derived rows. Per key (business
// number, customer), per derived row in time order, it prints the row, the
// rule that made it, the message that triggered it, the windows open at
// that instant, and the key's events since the previous row with their
// file:line. Events after the last row (late reads, messages that opened
// nothing) follow, so that nothing of the customer is hidden.

const day = int64(24 * 3600)

// explainRow is one unit to explain and the conversation it opened, if any.
type explainRow struct {
	unit *billing.Unit
	conv *billing.Conversation
}

// keyReport gathers one key's events (sorted by billing.Less, as indexes
// into input.events) and derived rows.
type keyReport struct {
	key    billing.Key
	events []int
	convs  []*billing.Conversation // every conversation of the key, by opening
	units  []*billing.Unit         // every charge of the key
	rows   []explainRow            // the ones selected for output
}

func writeExplain(w *bufio.Writer, in *input, res billing.Result, opts options) error {
	reports := map[billing.Key]*keyReport{}
	get := func(k billing.Key) *keyReport {
		r, ok := reports[k]
		if !ok {
			r = &keyReport{key: k}
			reports[k] = r
		}
		return r
	}
	selected := func(customer uint64) bool { return opts.customer == 0 || opts.customer == customer }
	for i := range res.Charges {
		u := &res.Charges[i]
		if selected(u.Customer) {
			r := get(billing.Key{PhoneNumberID: u.PhoneNumberID, Customer: u.Customer})
			r.units = append(r.units, u)
		}
	}
	for i := range res.Conversations {
		c := &res.Conversations[i]
		if selected(c.Customer) {
			r := get(billing.Key{PhoneNumberID: c.PhoneNumberID, Customer: c.Customer})
			r.convs = append(r.convs, c)
		}
	}
	for i := range in.events {
		ev := &in.events[i]
		if !selected(ev.Customer) {
			continue
		}
		k := billing.KeyOf(ev)
		if r, ok := reports[k]; ok || opts.customer != 0 {
			if !ok {
				r = get(k)
			}
			r.events = append(r.events, i)
		}
	}

	list := make([]*keyReport, 0, len(reports))
	for _, r := range reports {
		slices.SortStableFunc(r.events, func(a, b int) int {
			ea, eb := &in.events[a], &in.events[b]
			switch {
			case billing.Less(ea, eb):
				return -1
			case billing.Less(eb, ea):
				return 1
			}
			return 0
		})
		for _, u := range r.units {
			conv := r.openedBy(u)
			if opts.what == "conversations" && conv == nil {
				continue
			}
			r.rows = append(r.rows, explainRow{unit: u, conv: conv})
		}
		if len(r.rows) > 0 || opts.customer != 0 {
			list = append(list, r)
		}
	}
	slices.SortFunc(list, func(a, b *keyReport) int {
		return cmp.Or(cmp.Compare(a.key.Customer, b.key.Customer), cmp.Compare(a.key.PhoneNumberID, b.key.PhoneNumberID))
	})
	if len(list) == 0 {
		fmt.Fprintln(w, "no rows")
	}
	for i, r := range list {
		if i > 0 {
			w.WriteByte('\n')
		}
		r.write(w, in, opts)
	}
	return nil
}

// openedBy returns the conversation u opened, or nil.
func (r *keyReport) openedBy(u *billing.Unit) *billing.Conversation {
	for _, c := range r.convs {
		if c.OpeningMessageID == u.MessageID && c.OpenedAt == u.ChargedAt {
			return c
		}
	}
	return nil
}

func (r *keyReport) write(w *bufio.Writer, in *input, opts options) {
	var waba uint64
	market := ""
	for _, i := range r.events {
		if ev := &in.events[i]; ev.WABA != 0 {
			waba = ev.WABA
			break
		}
	}
	if len(r.units) > 0 {
		market = " (market " + r.units[0].Market + ")"
	}
	fmt.Fprintf(w, "customer %d%s on phone_number_id %d, waba_id %s: %d events, %d conversations, %d charges\n",
		r.key.Customer, market, r.key.PhoneNumberID, idOrUnknown(waba), len(r.events), len(r.convs), len(r.units))

	next := 0 // index into r.events of the first event not printed yet
	for n, row := range r.rows {
		trigger := r.trigger(in, row.unit)
		r.writeRow(w, in, row, n+1, trigger, opts)
		end := len(r.events)
		if trigger >= 0 {
			end = trigger + 1
		}
		if next < end {
			fmt.Fprintf(w, "  events since the previous row:\n")
			r.writeEvents(w, in, r.events[next:end], row.unit)
			next = end
		}
	}
	if next < len(r.events) {
		if len(r.rows) == 0 {
			fmt.Fprintf(w, "  no rows; events:\n")
		} else {
			fmt.Fprintf(w, "  events after the last row:\n")
		}
		r.writeEvents(w, in, r.events[next:], nil)
	}
}

// trigger returns the position in r.events of the delivery that billed u:
// its message's earliest delivered or read status, at u.ChargedAt; -1 if
// none (which would be an engine bug).
func (r *keyReport) trigger(in *input, u *billing.Unit) int {
	for p, i := range r.events {
		ev := &in.events[i]
		if isDelivery(ev) && ev.MessageID == u.MessageID && ev.Time == u.ChargedAt {
			return p
		}
	}
	return -1
}

func isDelivery(ev *billing.Event) bool {
	return ev.Kind == billing.Status && (ev.Status == billing.StatusDelivered || ev.Status == billing.StatusRead)
}

func (r *keyReport) writeRow(w *bufio.Writer, in *input, row explainRow, n int, trigger int, opts options) {
	u := row.unit
	if row.conv != nil && opts.what != "charges" {
		c := row.conv
		id := c.ID()
		fmt.Fprintf(w, "\nconversation %s: %s %s %s [%s, %s)\n", id, c.Category, c.Model, c.RuleSet, rfc3339(c.OpenedAt), rfc3339(c.ExpiresAt))
	}
	if opts.what != "conversations" {
		if row.conv == nil || opts.what == "charges" {
			w.WriteByte('\n')
		}
		id := u.ID()
		fmt.Fprintf(w, "charge %d of %d, %s: %s %s %s %s %s at %s", n, len(r.rows), id, u.Category, u.Model, u.PricingType, formatMicros(u.AmountMicro), u.Currency, rfc3339(u.ChargedAt))
		if u.RateCard != "" {
			fmt.Fprintf(w, ", rate card %s", u.RateCard)
		}
		if cid, ok := u.ConversationID(); ok && row.conv == nil {
			fmt.Fprintf(w, ", in conversation %s", cid)
		}
		w.WriteByte('\n')
	}
	fmt.Fprintf(w, "  why: %s\n", why(u, row.conv != nil))
	fmt.Fprintf(w, "  message %s: %s\n", u.MessageID, r.messageKind(in, u.MessageID))
	if trigger >= 0 {
		r.writeWindows(w, in, trigger, row)
	}
}

// why is the rule that made the unit, in words, with the spec section.
func why(u *billing.Unit, opened bool) string {
	var s string
	cat := u.Category.String()
	intl := ""
	if u.Category == billing.CatAuthenticationIntl {
		intl = " (rated authentication-international: the customer's country is not the business's, spec 4.5)"
	}
	switch {
	case u.PricingType == billing.PTUnsupported:
		return "delivered before 2023-06-01, when no supported rule set applies: recorded, amount 0 (spec 3)"
	case u.Model == billing.CBP && u.Category == billing.CatReferralConversion:
		s = "delivered within 24h of a customer message that came from an ad or call-to-action (referral): opens a free entry point conversation for 72h, free, and closes the other open conversations (spec 4.2.2)"
	case u.Model == billing.CBP && u.Category == billing.CatService:
		s = "a non-template message delivered while no conversation was open: opens a service conversation for 24h (spec 4.2.4)"
		switch u.PricingType {
		case billing.PTFreeTier:
			s += "; free: one of the WABA's first 1,000 service conversations this month (spec 4.4)"
		case billing.PTFreeService:
			s += "; free: service conversations are free from 2024-11-01 (spec 4.4)"
		case billing.PTRegular:
			s += "; charged at the service rate: the WABA's 1,000 free service conversations of the month are used up (spec 4.4)"
		}
	case u.Model == billing.CBP:
		s = fmt.Sprintf("a %s template delivered while no %s conversation was open: opens a %s conversation for 24h, charged once at the %s rate (spec 4.2.3)%s", cat, cat, cat, cat, intl)
	case u.PricingType == billing.PTFreeEntryPoint && opened:
		s = "delivered within 24h of a customer message that came from an ad or call-to-action (referral): opens a 72h free entry point window, and this message is free (spec 5.2)"
	case u.PricingType == billing.PTFreeEntryPoint:
		s = "delivered inside an open free entry point window: free (spec 5.2)"
	case u.Category == billing.CatService:
		s = "a non-template message: free under per-message pricing (spec 5.3)"
	case u.Category == billing.CatUtility && u.PricingType == billing.PTFreeCustomerService:
		s = "a utility template delivered inside the customer service window (24h from the customer's last message): free (spec 5.3)"
	case u.Category == billing.CatUtility:
		s = "a utility template delivered outside the customer service window: charged per message (spec 5.3)"
	default:
		s = fmt.Sprintf("a %s template: every delivered one is charged under per-message pricing (spec 5.3)%s", cat, intl)
	}
	if u.Tier > 0 {
		s += fmt.Sprintf("; volume tier %d of the portfolio's month (spec 5.4)", u.Tier)
	}
	if u.PricingType == billing.PTNoRate {
		s += "; but no rate exists for its (model, market, category, currency, date): amount 0, pricing_type no_rate (spec 6)"
	}
	return s
}

// messageKind says what the key's events tell of a message: its send record
// (authoritative) and Meta's pricing of it.
func (r *keyReport) messageKind(in *input, messageID string) string {
	var send, meta string
	for _, i := range r.events {
		ev := &in.events[i]
		if ev.MessageID != messageID {
			continue
		}
		switch {
		case ev.Kind == billing.Send && send == "":
			send = fmt.Sprintf("%s (send record, %s)", kindName(ev.MsgKind), in.where(in.srcs[i]))
		case ev.Kind == billing.Status && meta == "" && ev.MetaCategory != "":
			meta = "Meta: " + metaView(ev)
		}
	}
	switch {
	case send == "" && meta == "":
		return "no send record and no pricing object: kind unknown"
	case send == "":
		return "no send record; kind from Meta's pricing object; " + meta
	case meta == "":
		return send + "; Meta sent no pricing object"
	}
	return send + "; " + meta
}

func metaView(ev *billing.Event) string {
	s := strings.TrimSpace(ev.MetaPricingModel + " " + ev.MetaCategory)
	if ev.MetaConversationID != "" {
		s += ", conversation " + ev.MetaConversationID
	}
	return s
}

func kindName(k billing.MsgKind) string {
	switch k {
	case billing.KindNonTemplate:
		return "non-template"
	case billing.KindMarketing:
		return "template marketing"
	case billing.KindUtility:
		return "template utility"
	case billing.KindAuthentication:
		return "template authentication"
	case billing.KindAuthenticationIntl:
		return "template authentication_international"
	case billing.KindLegacy:
		return "legacy category"
	}
	return "unknown kind"
}

// writeWindows prints what was open when the trigger event was applied,
// rebuilt from the events before it and the key's conversations.
func (r *keyReport) writeWindows(w *bufio.Writer, in *input, trigger int, row explainRow) {
	t := in.events[r.events[trigger]].Time
	var lastInbound, lastReferral = -1, -1
	for _, i := range r.events[:trigger] {
		if ev := &in.events[i]; ev.Kind == billing.Inbound {
			lastInbound = i
			if ev.Referral {
				lastReferral = i
			}
		}
	}
	fmt.Fprintf(w, "  state when delivered at %s:\n", rfc3339(t))
	csw := "closed (no customer message before)"
	if lastInbound >= 0 {
		ev := &in.events[lastInbound]
		end := ev.Time + day
		from := fmt.Sprintf("customer message %s at %s, %s", ev.MessageID, rfc3339(ev.Time), in.where(in.srcs[lastInbound]))
		if t < end {
			csw = fmt.Sprintf("open until %s (%s)", rfc3339(end), from)
		} else {
			csw = fmt.Sprintf("closed since %s (last %s)", rfc3339(end), from)
		}
	}
	fmt.Fprintf(w, "    customer service window: %s\n", csw)

	fep := "none"
	for _, c := range r.convs {
		if c.Category == billing.CatReferralConversion && c.OpenedAt <= t && t < c.ExpiresAt && c != row.conv {
			fep = fmt.Sprintf("window open [%s, %s)", rfc3339(c.OpenedAt), rfc3339(c.ExpiresAt))
		}
	}
	if fep == "none" && lastReferral >= 0 {
		ev := &in.events[lastReferral]
		used := false
		for _, c := range r.convs {
			if c.Category == billing.CatReferralConversion && c.OpenedAt >= ev.Time && c != row.conv {
				used = true
			}
		}
		switch {
		case used:
			fep = fmt.Sprintf("referral of %s (%s) already used", rfc3339(ev.Time), in.where(in.srcs[lastReferral]))
		case t < ev.Time+day:
			fep = fmt.Sprintf("candidate until %s (referral message %s at %s, %s)", rfc3339(ev.Time+day), ev.MessageID, rfc3339(ev.Time), in.where(in.srcs[lastReferral]))
		default:
			fep = fmt.Sprintf("referral of %s expired unused at %s", rfc3339(ev.Time), rfc3339(ev.Time+day))
		}
	}
	fmt.Fprintf(w, "    free entry point: %s\n", fep)

	if row.unit.Model == billing.CBP || r.anyCBP() {
		var open []string
		for _, c := range r.convs {
			if c == row.conv || c.Category == billing.CatReferralConversion || c.Model != billing.CBP {
				continue
			}
			if end := r.effectiveEnd(c); c.OpenedAt <= t && t < end {
				open = append(open, fmt.Sprintf("%s until %s", c.Category, rfc3339(end)))
			}
		}
		if len(open) == 0 {
			open = []string{"none"}
		}
		fmt.Fprintf(w, "    open conversations: %s\n", strings.Join(open, ", "))
	}
	if row.conv != nil {
		var prev *billing.Conversation
		for _, c := range r.convs {
			if c != row.conv && c.Category == row.conv.Category && c.OpenedAt < row.conv.OpenedAt {
				prev = c
			}
		}
		if prev != nil {
			end := r.effectiveEnd(prev)
			how := "expired"
			if end < prev.ExpiresAt {
				how = "closed by a free entry point conversation"
			}
			fmt.Fprintf(w, "    previous %s conversation: [%s, %s), %s %s before this one opened\n",
				prev.Category, rfc3339(prev.OpenedAt), rfc3339(end), how, time.Duration(row.conv.OpenedAt-end)*time.Second)
		}
	}
}

func (r *keyReport) anyCBP() bool {
	for _, c := range r.convs {
		if c.Model == billing.CBP {
			return true
		}
	}
	return false
}

// effectiveEnd is when a CBP conversation stopped counting as open: its
// expiry, or the opening of a free entry point conversation (spec 4.2.2).
func (r *keyReport) effectiveEnd(c *billing.Conversation) int64 {
	end := c.ExpiresAt
	if c.Model != billing.CBP || c.Category == billing.CatReferralConversion {
		return end
	}
	for _, f := range r.convs {
		if f.Category == billing.CatReferralConversion && f.Model == billing.CBP && f.OpenedAt > c.OpenedAt && f.OpenedAt < end {
			end = f.OpenedAt
		}
	}
	return end
}

// writeEvents lists events, marking the delivery that billed u and
// explaining first deliveries that made no row.
func (r *keyReport) writeEvents(w *bufio.Writer, in *input, list []int, u *billing.Unit) {
	for _, i := range list {
		ev := &in.events[i]
		var what, detail string
		switch ev.Kind {
		case billing.Inbound:
			what = "inbound"
			if ev.Referral {
				detail = "with referral (free entry point candidate)"
			}
		case billing.Send:
			what = "send"
			detail = kindName(ev.MsgKind)
		case billing.Status:
			what = statusName(ev.Status)
			if ev.MetaCategory != "" {
				detail = "Meta: " + metaView(ev)
			}
		}
		note := ""
		switch {
		case u != nil && isDelivery(ev) && ev.MessageID == u.MessageID && ev.Time == u.ChargedAt:
			note = "  <- this row"
			if ev.Status == billing.StatusRead {
				note += " (no delivered status came first: the read proves delivery)"
			}
		case isDelivery(ev) && r.firstDelivery(in, i) && !r.hasUnit(ev.MessageID):
			note = "  <- " + r.noRowReason(in, ev)
		}
		fmt.Fprintf(w, "    %s  %-9s  %s", rfc3339(ev.Time), what, ev.MessageID)
		if detail != "" {
			fmt.Fprintf(w, "  %s", detail)
		}
		fmt.Fprintf(w, "  [%s]%s\n", in.where(in.srcs[i]), note)
	}
}

func statusName(s billing.StatusKind) string {
	switch s {
	case billing.StatusSent:
		return "sent"
	case billing.StatusDelivered:
		return "delivered"
	case billing.StatusRead:
		return "read"
	case billing.StatusFailed:
		return "failed"
	}
	return "status"
}

// firstDelivery reports whether event i is its message's earliest delivered
// or read status (in Less order, so the one the engine bills).
func (r *keyReport) firstDelivery(in *input, i int) bool {
	id := in.events[i].MessageID
	for _, j := range r.events {
		if ev := &in.events[j]; isDelivery(ev) && ev.MessageID == id {
			return j == i
		}
	}
	return false
}

func (r *keyReport) hasUnit(messageID string) bool {
	for _, u := range r.units {
		if u.MessageID == messageID {
			return true
		}
	}
	return false
}

// noRowReason says why a delivered message (its first delivery ev) made no
// row of its own.
func (r *keyReport) noRowReason(in *input, delivery *billing.Event) string {
	messageID := delivery.MessageID
	kind := billing.KindUnknown
	for _, i := range r.events {
		ev := &in.events[i]
		if ev.MessageID != messageID {
			continue
		}
		if ev.Kind == billing.Send && ev.MsgKind != billing.KindUnknown {
			kind = ev.MsgKind
			break
		}
		if ev.Kind == billing.Status && kind == billing.KindUnknown {
			kind = ev.MsgKind
		}
	}
	switch kind {
	case billing.KindUnknown:
		return "no row: kind unknown (no send record, no pricing object)"
	case billing.KindLegacy:
		return "no row: legacy pricing category (pre-2023), bills nothing"
	}
	t := delivery.Time
	for _, c := range r.convs {
		if c.OpenedAt <= t && t < r.effectiveEnd(c) && (c.Model == billing.CBP || c.Category == billing.CatReferralConversion) {
			return fmt.Sprintf("no row of its own: inside the %s conversation open since %s", c.Category, rfc3339(c.OpenedAt))
		}
	}
	return "no row of its own"
}

func rfc3339(unix int64) string { return time.Unix(unix, 0).UTC().Format(time.RFC3339) }

func idOrUnknown(id uint64) string {
	if id == 0 {
		return "unknown"
	}
	return fmt.Sprint(id)
}
