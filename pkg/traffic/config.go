package traffic

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Config says what traffic to generate. Start from DefaultConfig and change
// what matters: Generate uses the values as given (zero rates mean "never").
type Config struct {
	// Start and Duration bound when conversations start and messages are
	// sent; statuses of the last messages (reads, late deliveries, Meta's
	// retries) arrive after Start+Duration.
	Start    time.Time
	Duration time.Duration
	// Seed makes the stream: the same Config gives the same bytes.
	Seed     uint64
	Accounts []Account
	// MessagesPerCustomerPerDay is the mean number of messages, both
	// directions, a customer exchanges with one account per day
	// (approximately: conversations are drawn, and their length varies).
	MessagesPerCustomerPerDay float64
	// Mix weighs the kinds of conversation; an Account's own Mix, when
	// set, replaces it.
	Mix Mix

	// RetryRate is the share of webhook payloads Meta delivers twice (its
	// retries after a slow or failed acknowledgement), a few seconds to ten
	// minutes apart.
	RetryRate float64
	// BatchRate is the share of status payloads that gather the statuses
	// of the following second of the same business number (up to 5).
	BatchRate float64
	// MissingSendRate is the share of outbound messages without a send
	// record (the BSP lost it): their kind comes from Meta's pricing only.
	MissingSendRate float64
	// LateSendRate is the share of send records that arrive after the
	// message's statuses.
	LateSendRate float64
	// FailRate is the share of outbound messages that fail (no delivery).
	FailRate float64
	// SkipDeliveredRate is the share of delivered messages for which Meta
	// sends no delivered status, only a read.
	SkipDeliveredRate float64
	// ReadRate is the share of delivered messages the customer reads.
	ReadRate float64
	// OfflineRate is the share of messages delivered late (the phone is
	// off): minutes to hours after sending.
	OfflineRate float64

	// Malformed is how many malformed records to add to the stream (each
	// rejected by the webhook decoder with some reason), spread over it.
	Malformed int
	// Spike, when set, multiplies one WABA's marketing volume for a while.
	Spike *Spike
}

// Account is one WhatsApp Business Account of the BSP and its customers.
type Account struct {
	WABA           uint64
	PhoneNumberIDs []uint64 // customers are spread over them; at most 255
	Customers      int
	// Markets is the customers' country mix; nil means DefaultMarkets.
	Markets []MarketShare
	// Mix, when not zero, replaces Config.Mix for this account.
	Mix Mix
	// OnPremises: the account's webhooks use the On-Premises API shape
	// (no envelope); the record headers carry phone_number_id and waba_id.
	OnPremises bool
	// NumericTimestamps: the BSP writes send-record timestamps as JSON
	// numbers instead of strings.
	NumericTimestamps bool
}

// MarketShare is the weight of one customer country: US, BR, IN, MX, ID,
// DE, GB, NG, DO (+1 809/829/849) or ZW.
type MarketShare struct {
	Country string
	Share   float64
}

// Mix weighs the kinds of conversation (relative weights, any scale).
type Mix struct {
	Marketing      float64 // a marketing template, sometimes a reply and a chat
	Utility        float64 // order and shipping updates, sometimes a question
	Authentication float64 // one-time codes, sometimes resent
	Service        float64 // the customer writes first; answers, buttons, a utility template in the window
	Referral       float64 // the customer comes from a Click-to-WhatsApp ad (free entry point), later a marketing template
}

func (m Mix) weights() [numThreadKinds]float64 {
	return [numThreadKinds]float64{m.Marketing, m.Utility, m.Authentication, m.Service, m.Referral}
}

func (m Mix) total() float64 {
	var sum float64
	for _, w := range m.weights() {
		sum += w
	}
	return sum
}

// Spike multiplies the marketing volume of one WABA by Factor over
// [Start, Start+Duration): a campaign blast, for alert tests.
type Spike struct {
	WABA     uint64
	Start    time.Time
	Duration time.Duration
	Factor   float64
}

// DefaultMarkets is a customer mix over every supported country.
var DefaultMarkets = []MarketShare{
	{"US", 0.20}, {"BR", 0.18}, {"IN", 0.18}, {"MX", 0.10}, {"ID", 0.10},
	{"DE", 0.06}, {"GB", 0.06}, {"NG", 0.05}, {"DO", 0.04}, {"ZW", 0.03},
}

// DefaultMix is a general BSP's mix of conversations.
var DefaultMix = Mix{Marketing: 0.30, Utility: 0.25, Authentication: 0.20, Service: 0.20, Referral: 0.05}

// DefaultConfig is one day of 2025-08-04 (per-message pricing) for
// DefaultAccounts(3, 1000).
func DefaultConfig() Config {
	return Config{
		Start:                     time.Date(2025, 8, 4, 0, 0, 0, 0, time.UTC),
		Duration:                  24 * time.Hour,
		Seed:                      1,
		Accounts:                  DefaultAccounts(3, 1000),
		MessagesPerCustomerPerDay: 2,
		Mix:                       DefaultMix,
		RetryRate:                 0.01,
		BatchRate:                 0.3,
		LateSendRate:              0.02,
		FailRate:                  0.02,
		SkipDeliveredRate:         0.02,
		ReadRate:                  0.6,
		OfflineRate:               0.05,
	}
}

// accountProfiles are the kinds of business DefaultAccounts cycles through.
var accountProfiles = []struct {
	markets []MarketShare
	mix     Mix
}{
	{nil, Mix{}}, // a global retailer: DefaultMarkets, Config.Mix
	{[]MarketShare{{"BR", 0.6}, {"MX", 0.2}, {"DO", 0.1}, {"US", 0.1}},
		Mix{Marketing: 0.25, Utility: 0.2, Authentication: 0.05, Service: 0.35, Referral: 0.15}}, // Latin American commerce, ads
	{[]MarketShare{{"IN", 0.55}, {"ID", 0.2}, {"NG", 0.1}, {"ZW", 0.05}, {"GB", 0.05}, {"DE", 0.05}},
		Mix{Marketing: 0.1, Utility: 0.3, Authentication: 0.45, Service: 0.13, Referral: 0.02}}, // a fintech: codes and receipts
}

// DefaultAccounts returns n accounts of customers each, with plausible
// Meta ids; every second one has two business numbers, and they cycle
// through a retailer, a Latin American shop and a fintech profile.
func DefaultAccounts(n, customers int) []Account {
	accts := make([]Account, n)
	for i := range accts {
		p := accountProfiles[i%len(accountProfiles)]
		a := Account{
			WABA:              102290129340398 + uint64(i)*1_000_003,
			Customers:         customers,
			Markets:           p.markets,
			Mix:               p.mix,
			NumericTimestamps: i%2 == 1,
		}
		phones := 1 + i%2
		for j := range phones {
			a.PhoneNumberIDs = append(a.PhoneNumberIDs, 106540352242922+uint64(i)*10_007+uint64(j))
		}
		accts[i] = a
	}
	return accts
}

const maxCustomersPerAccount = 8_000_000 // every country's numbers have room for them

// Validate reports every problem of c at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Start.IsZero() {
		errs = append(errs, errors.New("traffic: Start is not set"))
	}
	if c.Duration <= 0 {
		errs = append(errs, fmt.Errorf("traffic: Duration %v: want > 0", c.Duration))
	}
	if len(c.Accounts) == 0 {
		errs = append(errs, errors.New("traffic: no Accounts"))
	}
	if len(c.Accounts) > math.MaxUint16 {
		errs = append(errs, fmt.Errorf("traffic: %d Accounts: at most %d", len(c.Accounts), math.MaxUint16))
	}
	if !(c.MessagesPerCustomerPerDay >= 0) || math.IsInf(c.MessagesPerCustomerPerDay, 0) {
		errs = append(errs, fmt.Errorf("traffic: MessagesPerCustomerPerDay %v: want >= 0", c.MessagesPerCustomerPerDay))
	}
	errs = append(errs, c.Mix.validate("Mix"))
	for _, r := range []struct {
		name string
		v    float64
	}{{"RetryRate", c.RetryRate}, {"BatchRate", c.BatchRate}, {"MissingSendRate", c.MissingSendRate},
		{"LateSendRate", c.LateSendRate}, {"FailRate", c.FailRate}, {"SkipDeliveredRate", c.SkipDeliveredRate},
		{"ReadRate", c.ReadRate}, {"OfflineRate", c.OfflineRate}} {
		if !(r.v >= 0 && r.v <= 1) {
			errs = append(errs, fmt.Errorf("traffic: %s %v: want 0..1", r.name, r.v))
		}
	}
	if c.Malformed < 0 {
		errs = append(errs, fmt.Errorf("traffic: Malformed %d: want >= 0", c.Malformed))
	}
	seen := map[uint64]bool{}
	phones := map[uint64]bool{}
	for i := range c.Accounts {
		a := &c.Accounts[i]
		at := fmt.Sprintf("traffic: Accounts[%d]", i)
		if a.WABA == 0 {
			errs = append(errs, fmt.Errorf("%s: WABA is 0", at))
		} else if seen[a.WABA] {
			errs = append(errs, fmt.Errorf("%s: WABA %d twice", at, a.WABA))
		}
		seen[a.WABA] = true
		if len(a.PhoneNumberIDs) == 0 || len(a.PhoneNumberIDs) > math.MaxUint8 {
			errs = append(errs, fmt.Errorf("%s: %d PhoneNumberIDs: want 1 to %d", at, len(a.PhoneNumberIDs), math.MaxUint8))
		}
		for _, p := range a.PhoneNumberIDs {
			if p == 0 || phones[p] {
				errs = append(errs, fmt.Errorf("%s: phone number id %d is 0 or used twice", at, p))
			}
			phones[p] = true
		}
		if a.Customers < 1 || a.Customers > maxCustomersPerAccount {
			errs = append(errs, fmt.Errorf("%s: Customers %d: want 1 to %d", at, a.Customers, maxCustomersPerAccount))
		}
		var total float64
		for _, m := range a.Markets {
			if countryIndex(m.Country) < 0 {
				errs = append(errs, fmt.Errorf("%s: market %q: not one of US, BR, IN, MX, ID, DE, GB, NG, DO, ZW", at, m.Country))
			}
			if !(m.Share >= 0) || math.IsInf(m.Share, 0) {
				errs = append(errs, fmt.Errorf("%s: market %s share %v: want >= 0", at, m.Country, m.Share))
			}
			total += m.Share
		}
		if len(a.Markets) > 0 && !(total > 0) {
			errs = append(errs, fmt.Errorf("%s: market shares sum to %v", at, total))
		}
		if a.Mix != (Mix{}) {
			errs = append(errs, a.Mix.validate(at+".Mix"))
		}
	}
	if s := c.Spike; s != nil {
		if !seen[s.WABA] {
			errs = append(errs, fmt.Errorf("traffic: Spike.WABA %d is not one of the Accounts", s.WABA))
		}
		if s.Duration <= 0 || !(s.Factor >= 1) || math.IsInf(s.Factor, 0) {
			errs = append(errs, fmt.Errorf("traffic: Spike: Duration %v and Factor %v: want > 0 and >= 1", s.Duration, s.Factor))
		}
	}
	return errors.Join(errs...)
}

func (m Mix) validate(name string) error {
	var errs []error
	for _, w := range m.weights() {
		if !(w >= 0) || math.IsInf(w, 0) {
			errs = append(errs, fmt.Errorf("traffic: %s: weight %v: want >= 0", name, w))
		}
	}
	if len(errs) == 0 && !(m.total() > 0) {
		errs = append(errs, fmt.Errorf("traffic: %s: every weight is 0", name))
	}
	return errors.Join(errs...)
}
