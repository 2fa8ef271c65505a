package billing

// Category is a conversation or message category as billed.
type Category uint8

const (
	CatNone Category = iota
	CatMarketing
	CatUtility
	CatAuthentication
	CatAuthenticationIntl
	CatService
	CatReferralConversion
	CatUnknown // a pre-2023-06-01 message whose kind is not known
	numCategories
)

var categoryNames = [numCategories]string{"", "marketing", "utility", "authentication",
	"authentication_international", "service", "referral_conversion", "unknown"}

// String returns the category as stored in ClickHouse and in pricing data.
func (c Category) String() string {
	if c >= numCategories {
		return "invalid"
	}
	return categoryNames[c]
}

// Model is the pricing model of a unit.
type Model uint8

const (
	CBP Model = iota + 1
	PMP
)

func (m Model) String() string {
	switch m {
	case CBP:
		return "CBP"
	case PMP:
		return "PMP"
	}
	return "none"
}

// PricingType says why a unit costs what it costs (spec 6).
type PricingType uint8

const (
	PTNone PricingType = iota
	// PTChargeable is set by the per-key step on units the account step prices
	// (regular, or free_tier / tier / no_rate after the account step).
	PTChargeable
	PTRegular
	PTFreeTier
	PTFreeService
	PTFreeEntryPoint
	PTFreeCustomerService
	PTUnsupported
	PTNoRate
	numPricingTypes
)

var pricingTypeNames = [numPricingTypes]string{"", "chargeable", "regular", "free_tier",
	"free_service", "free_entry_point", "free_customer_service", "unsupported", "no_rate"}

func (p PricingType) String() string {
	if p >= numPricingTypes {
		return "invalid"
	}
	return pricingTypeNames[p]
}

// RuleSet is the set of billing rules in force at an instant (spec 3).
type RuleSet uint8

const (
	RulesNone    RuleSet = iota // before 2023-06-01: unsupported
	RulesCBP2023                // 2023-06-01 .. 2024-10-31
	RulesCBP2024                // 2024-11-01 .. 2025-06-30, service free
	RulesPMP2025                // 2025-07-01 .. open
	numRuleSets
)

var ruleSetNames = [numRuleSets]string{"none", "CBP-2023", "CBP-2024-11", "PMP-2025-07"}

func (r RuleSet) String() string {
	if r >= numRuleSets {
		return "invalid"
	}
	return ruleSetNames[r]
}

// Conversation is one opened conversation: a CBP conversation of a category,
// or a free entry point window under either model.
type Conversation struct {
	WABA          uint64
	PhoneNumberID uint64
	Customer      uint64
	Market        string
	Category      Category
	Model         Model
	RuleSet       RuleSet
	OpenedAt      int64 // Unix seconds UTC
	ExpiresAt     int64
	// OpeningMessageID is the message that opened it.
	OpeningMessageID   string
	MetaConversationID string
}

// Unit is one billing unit as the per-key step sees it: a CBP conversation or
// a PMP delivered message (or an unsupported pre-2023 message). The account
// step fills PricingType (when PTChargeable), Currency, Amount and RateCard.
type Unit struct {
	WABA          uint64
	PhoneNumberID uint64
	Customer      uint64
	Market        string
	Category      Category
	Model         Model
	RuleSet       RuleSet
	PricingType   PricingType
	BillingUnit   BillingUnit
	ChargedAt     int64 // CBP: the conversation's opening instant; PMP: delivery instant
	MessageID     string
	// ConversationOpenedAt identifies the conversation the unit belongs to
	// (0: none). With the key and category it derives the conversation id.
	ConversationCategory Category
	ConversationOpenedAt int64

	MetaConversationID string
	MetaCategory       string
	MetaPricingModel   string

	// Set by the account step.
	Currency    string
	AmountMicro int64 // amount in millionths of Currency (Decimal(18,6))
	RateCard    string
	Tier        int // 1-based volume tier used; 0 when none
}

// BillingUnit is what one charge row counts.
type BillingUnit uint8

const (
	UnitConversation BillingUnit = iota + 1
	UnitMessage
)

func (b BillingUnit) String() string {
	switch b {
	case UnitConversation:
		return "conversation"
	case UnitMessage:
		return "message"
	}
	return "none"
}
