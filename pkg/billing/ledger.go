package billing

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
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
		if tiers, since := l.catalog.TiersSince(model, day, u.Market, cat, acct.Currency); len(tiers) > 0 {
			k := volumeKey{acct.Portfolio, month, u.Category, u.Market}
			n := l.volume[k] + 1
			if i, tier, ok := pricing.TierFor(tiers, n); ok {
				l.volume[k] = n
				u.PricingType = PTRegular
				u.AmountMicro = tier.Micros
				u.Tier = i + 1
				u.RateCard = model + "/" + acct.Currency + "/tiers/" + since.String() + "#" + strconv.Itoa(i+1)
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

const ledgerVersion = 1

// MarshalBinary returns the ledger's counters (not its stats), in a stable
// order, for a checkpoint.
func (l *Ledger) MarshalBinary() ([]byte, error) {
	dst := []byte{ledgerVersion}
	free := make([]wabaMonth, 0, len(l.free))
	for k := range l.free {
		free = append(free, k)
	}
	slices.SortFunc(free, func(a, b wabaMonth) int {
		return cmp.Or(cmp.Compare(a.waba, b.waba), cmp.Compare(a.month, b.month))
	})
	dst = binary.AppendUvarint(dst, uint64(len(free)))
	for _, k := range free {
		dst = binary.AppendUvarint(dst, k.waba)
		dst = binary.AppendVarint(dst, int64(k.month))
		dst = binary.AppendUvarint(dst, uint64(l.free[k]))
	}
	vol := make([]volumeKey, 0, len(l.volume))
	for k := range l.volume {
		vol = append(vol, k)
	}
	slices.SortFunc(vol, func(a, b volumeKey) int {
		return cmp.Or(cmp.Compare(a.portfolio, b.portfolio), cmp.Compare(a.month, b.month),
			cmp.Compare(a.category, b.category), cmp.Compare(a.market, b.market))
	})
	dst = binary.AppendUvarint(dst, uint64(len(vol)))
	for _, k := range vol {
		dst = binary.AppendUvarint(dst, k.portfolio)
		dst = binary.AppendVarint(dst, int64(k.month))
		dst = append(dst, byte(k.category))
		dst = binary.AppendUvarint(dst, uint64(len(k.market)))
		dst = append(dst, k.market...)
		dst = binary.AppendUvarint(dst, l.volume[k])
	}
	return dst, nil
}

// UnmarshalBinary replaces the ledger's counters with a checkpoint's.
func (l *Ledger) UnmarshalBinary(b []byte) error {
	if len(b) == 0 || b[0] != ledgerVersion {
		return errors.New("ledger checkpoint: bad version")
	}
	r := reader{b: b[1:]}
	free := make(map[wabaMonth]uint32)
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		k := wabaMonth{waba: r.uvarint(), month: int32(r.varint())}
		free[k] = uint32(r.uvarint())
	}
	volume := make(map[volumeKey]uint64)
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		k := volumeKey{portfolio: r.uvarint(), month: int32(r.varint()), category: Category(r.byte())}
		m := r.uvarint()
		if r.err == nil && m > uint64(len(r.b)) {
			return errStateTruncated
		}
		if r.err == nil {
			k.market = string(r.b[:m])
			r.b = r.b[m:]
		}
		volume[k] = r.uvarint()
	}
	if r.err != nil {
		return fmt.Errorf("ledger checkpoint: %w", r.err)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("ledger checkpoint: %d trailing bytes", len(r.b))
	}
	l.free, l.volume = free, volume
	return nil
}
