package billing

import (
	"errors"
	"strconv"
	"time"

	"github.com/wameter/wameter/pkg/accounts"
	"github.com/wameter/wameter/pkg/pricing"
)

// FreeServicePerMonth is the CBP-2023 free tier: service conversations per
// WABA per calendar month (spec 4.4).
const FreeServicePerMonth = 1000

// LedgerStats counts what the account step did that an operator must see.
type LedgerStats struct {
	Units  uint64
	NoRate uint64 // units that should be charged but found no rate (priced 0, pricing_type no_rate)
}

// Ledger is the account-level step: it prices units with the counters that
// span all of an account's customers (CBP free tier per WABA, PMP volume
// tiers per portfolio) and the rate cards. Units must be priced in UnitLess
// order. A Ledger is not safe for concurrent use; its state is the counters,
// which MarshalBinary checkpoints.
type Ledger struct {
	catalog  *pricing.Catalog
	accounts *accounts.Book
	free     map[wabaMonth]uint32
	volume   map[volumeKey]uint64
	Stats    LedgerStats
}

type wabaMonth struct {
	waba  uint64
	month int32 // year*12 + month-1, local
}

type volumeKey struct {
	portfolio uint64
	month     int32
	category  Category
	market    string
}

// NewLedger returns an empty Ledger. A nil book gives every WABA the defaults.
func NewLedger(catalog *pricing.Catalog, book *accounts.Book) (*Ledger, error) {
	if catalog == nil {
		return nil, errors.New("billing: ledger needs a catalog")
	}
	if book == nil {
		book = accounts.Empty()
	}
	return &Ledger{catalog: catalog, accounts: book,
		free: make(map[wabaMonth]uint32), volume: make(map[volumeKey]uint64)}, nil
}

// UnitLess is the order in which the account step must see units (spec 4.4,
// 5.4): charged_at, then phone_number_id, customer wa_id, message id.
func UnitLess(a, b *Unit) bool {
	if a.ChargedAt != b.ChargedAt {
		return a.ChargedAt < b.ChargedAt
	}
	if a.PhoneNumberID != b.PhoneNumberID {
		return a.PhoneNumberID < b.PhoneNumberID
	}
	if a.Customer != b.Customer {
		return a.Customer < b.Customer
	}
	return a.MessageID < b.MessageID
}

// Portfolio returns the portfolio the unit's WABA belongs to.
func (l *Ledger) Portfolio(waba uint64) uint64 { return l.accounts.Get(waba).Portfolio }

// Price sets u's currency, pricing type, amount, rate card and tier.
func (l *Ledger) Price(u *Unit) {
	l.Stats.Units++
	acct := l.accounts.Get(u.WABA)
	u.Currency = acct.Currency
	if u.PricingType != PTChargeable {
		u.AmountMicro = 0
		return
	}
	local := time.Unix(u.ChargedAt, 0).In(acct.Location)
	y, m, _ := local.Date()
	month := int32(y*12 + int(m) - 1)
	day := pricing.DayOf(u.ChargedAt, acct.Location)
	model := u.Model.String()
	cat := u.Category.String()

	switch {
	case u.Model == CBP && u.Category == CatService:
		k := wabaMonth{u.WABA, month}
		n := l.free[k] + 1
		l.free[k] = n
		if n <= FreeServicePerMonth {
			u.PricingType = PTFreeTier
			u.AmountMicro = 0
			return
		}
	case u.Model == PMP && (u.Category == CatUtility || u.Category == CatAuthentication):
		if tiers := l.catalog.Tiers(model, day, u.Market, cat, acct.Currency); len(tiers) > 0 {
			k := volumeKey{acct.Portfolio, month, u.Category, u.Market}
			n := l.volume[k] + 1
			if i, tier, ok := pricing.TierFor(tiers, n); ok {
				l.volume[k] = n
				u.PricingType = PTRegular
				u.AmountMicro = tier.Micros
				u.Tier = i + 1
				u.RateCard = model + "/" + acct.Currency + "/tiers/" + day.String() + "#" + strconv.Itoa(i+1)
				return
			}
		}
	}
	rate, ok := l.catalog.Rate(model, day, u.Market, cat, acct.Currency)
	if !ok {
		l.Stats.NoRate++
		u.PricingType = PTNoRate
		u.AmountMicro = 0
		return
	}
	if u.Model == PMP && (u.Category == CatUtility || u.Category == CatAuthentication) {
		l.volume[volumeKey{acct.Portfolio, month, u.Category, u.Market}]++
	}
	u.PricingType = PTRegular
	u.AmountMicro = rate.Micros
	u.RateCard = rate.Card
}

// Forget drops the counters of local months before month (year*12+month-1):
// units of those months can no longer arrive once the watermark is past.
func (l *Ledger) Forget(beforeMonth int32) {
	for k := range l.free {
		if k.month < beforeMonth {
			delete(l.free, k)
		}
	}
	for k := range l.volume {
		if k.month < beforeMonth {
			delete(l.volume, k)
		}
	}
}
