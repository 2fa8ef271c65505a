package traffic

// Pricing models of Meta's pricing object.
const (
	modelNone uint8 = iota // no pricing object (a failed message)
	modelCBP
	modelPMP
)

// Categories of Meta's pricing object (and conversation origin).
const (
	catMarketing uint8 = iota + 1
	catUtility
	catAuthentication
	catService
	catReferral
	catBusinessInitiated
	catUserInitiated
)

var categoryNames = [...]string{"", "marketing", "utility", "authentication", "service",
	"referral_conversion", "business_initiated", "user_initiated"}

// PMP pricing types.
const (
	ptRegular uint8 = iota + 1
	ptFreeCustomerService
	ptFreeEntryPoint
)

var pricingTypeNames = [...]string{"", "regular", "free_customer_service", "free_entry_point"}

// metaView is Meta's pricing of one delivered message, as its statuses say.
type metaView struct {
	model       uint8
	category    uint8
	pricingType uint8 // PMP only
	billable    bool
	// The conversation object: CBP always, PMP inside a free entry point.
	convCategory uint8 // 0: no conversation object
	convOpenedAt int64
	convLength   int64
}

// CBP conversation slots of custState.openedAt.
var slotCategory = [4]uint8{catMarketing, catUtility, catAuthentication, catService}

// meta prices an outbound message of kind delivered at t (Unix seconds) the
// way Meta would, and updates Meta's conversations of the customer. It is a
// model of Meta's behaviour for the pricing objects, simpler than the
// engine's rules (no authentication-international, no account time zone).
func (g *generator) meta(cs *custState, kind uint8, t int64) metaView {
	pmp := t >= pmpStart
	// Free entry point, both models.
	if cs.freeEntryOpenedAt != 0 && t < cs.freeEntryOpenedAt+freeEntry {
		return freeEntryView(pmp, cs.freeEntryOpenedAt)
	}
	if t < cs.freeEntryEligible {
		cs.freeEntryOpenedAt, cs.freeEntryEligible = t, 0
		if !pmp {
			cs.openedAt = [4]int64{} // it closes the other conversations
		}
		return freeEntryView(pmp, t)
	}
	if pmp {
		v := metaView{model: modelPMP, pricingType: ptRegular, billable: true}
		switch kind {
		case mkMarketing:
			v.category = catMarketing
		case mkUtility:
			v.category = catUtility
			if t < cs.serviceWindowEnd {
				v.pricingType, v.billable = ptFreeCustomerService, false
			}
		case mkAuthentication:
			v.category = catAuthentication
		default:
			v.category, v.pricingType, v.billable = catService, ptFreeCustomerService, false
		}
		return v
	}

	// Conversation-based: join the open conversation of the template's
	// category (a non-template joins any open one), or open one.
	slot := -1
	switch kind {
	case mkMarketing:
		slot = 0
	case mkUtility:
		slot = 1
	case mkAuthentication:
		slot = 2
	default:
		for s, opened := range cs.openedAt {
			if opened != 0 && t < opened+conversation && (slot < 0 || opened > cs.openedAt[slot]) {
				slot = s
			}
		}
		if slot < 0 {
			slot = 3
		}
	}
	if opened := cs.openedAt[slot]; opened == 0 || t >= opened+conversation {
		cs.openedAt[slot] = t
	}
	cat := slotCategory[slot]
	v := metaView{model: modelCBP, category: cat, billable: true,
		convCategory: cat, convOpenedAt: cs.openedAt[slot], convLength: conversation}
	switch {
	case t < cbpStart && cat == catService:
		v.category, v.convCategory = catUserInitiated, catUserInitiated
	case t < cbpStart:
		v.category, v.convCategory = catBusinessInitiated, catBusinessInitiated
	case cat == catService && t >= serviceFree:
		v.billable = false
	}
	return v
}

func freeEntryView(pmp bool, openedAt int64) metaView {
	v := metaView{model: modelCBP, category: catReferral, convCategory: catReferral,
		convOpenedAt: openedAt, convLength: freeEntry}
	if pmp {
		v.model, v.pricingType = modelPMP, ptFreeEntryPoint
	}
	return v
}
