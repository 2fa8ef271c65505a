package sink

import (
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"

	"github.com/wameter/wameter/pkg/billing"
)

// rowMeta is what the Writer knows of a batched row besides its columns.
type rowMeta struct {
	id        billing.ID
	partition int32
	offset    int64
}

// tableBatch holds the rows of one table waiting for one INSERT, in Add
// order; meta[i] belongs to convs.at(i) or charges.at(i), whichever the
// table uses.
type tableBatch struct {
	table   Table
	meta    []rowMeta
	convs   rowList[ConversationRow]
	charges rowList[ChargeRow]
}

func (b *tableBatch) len() int { return len(b.meta) }

func (b *tableBatch) add(r *Row, m rowMeta) {
	b.meta = append(b.meta, m)
	if b.table == TableConversations {
		*b.convs.grow() = r.Conversation
	} else {
		*b.charges.grow() = r.Charge
	}
}

// takeFrom moves o's rows to the end of b, leaving o empty (and, when b
// was empty, with b's old capacity to reuse).
func (b *tableBatch) takeFrom(o *tableBatch) {
	if b.len() == 0 {
		b.meta, o.meta = o.meta, b.meta[:0]
		b.convs, o.convs = o.convs, b.convs
		b.charges, o.charges = o.charges, b.charges
		return
	}
	b.meta = append(b.meta, o.meta...)
	for i := range o.convs.len() {
		*b.convs.grow() = *o.convs.at(i)
	}
	for i := range o.charges.len() {
		*b.charges.grow() = *o.charges.at(i)
	}
	o.reset()
}

// rowList is a list of rows in chunks of rowChunk: a batch of a backlog
// grows to hundreds of thousands of rows of some 300 bytes, and a slice
// copied them (and their pointers, under the write barrier) at every
// doubling. Its chunks are kept for the next batch.
type rowList[T any] struct {
	chunks [][]T
	n      int
}

const rowChunk = 1024

func (l *rowList[T]) len() int { return l.n }

func (l *rowList[T]) at(i int) *T { return &l.chunks[i/rowChunk][i%rowChunk] }

// grow adds a zero row and returns it.
func (l *rowList[T]) grow() *T {
	if l.n/rowChunk == len(l.chunks) {
		l.chunks = append(l.chunks, make([]T, rowChunk))
	}
	l.n++
	return l.at(l.n - 1)
}

// truncate drops the rows from n on (their strings, for the collector).
func (l *rowList[T]) truncate(n int) {
	for i := n; i < l.n; {
		c := l.chunks[i/rowChunk][i%rowChunk:]
		c = c[:min(len(c), l.n-i)]
		clear(c)
		i += len(c)
	}
	l.n = n
}

// keep drops, in place, the rows for which keepRow is false, and returns
// the metadata of the dropped ones.
func (b *tableBatch) keep(keepRow func(m *rowMeta) bool) (dropped []rowMeta) {
	n := 0
	for i := range b.meta {
		if !keepRow(&b.meta[i]) {
			dropped = append(dropped, b.meta[i])
			continue
		}
		b.meta[n] = b.meta[i]
		if b.table == TableConversations {
			*b.convs.at(n) = *b.convs.at(i)
		} else {
			*b.charges.at(n) = *b.charges.at(i)
		}
		n++
	}
	b.meta = b.meta[:n]
	if b.table == TableConversations {
		b.convs.truncate(n)
	} else {
		b.charges.truncate(n)
	}
	return dropped
}

func (b *tableBatch) reset() {
	b.meta = b.meta[:0]
	b.convs.truncate(0)
	b.charges.truncate(0)
}

// Column lists of the INSERTs. Naming the columns is what lets clickhouse-go
// insert into 18.16, and leaves inserted_at to its DEFAULT.
const (
	insertConversations = "INSERT INTO conversations (conversation_id, waba_id, portfolio_id, " +
		"phone_number_id, customer_wa_id, market, category, pricing_model, rule_set, opened_at, " +
		"expires_at, opening_message_id, meta_conversation_id, sink_partition, sink_offset, insert_id)"
	insertCharges = "INSERT INTO charges (charge_id, waba_id, portfolio_id, phone_number_id, " +
		"customer_wa_id, market, category, pricing_model, pricing_type, billing_unit, " +
		"conversation_id, message_id, charged_at, currency, amount, rate_card, tier, rule_set, " +
		"meta_conversation_id, meta_category, meta_pricing_model, sink_partition, sink_offset, insert_id)"
)

func insertQuery(t Table) string {
	if t == TableConversations {
		return insertConversations
	}
	return insertCharges
}

func idColumn(t Table) string {
	if t == TableConversations {
		return "conversation_id"
	}
	return "charge_id"
}

// columns is scratch space for columnar appends: one slice per Go type,
// reused column after column, since a column's Append copies the values.
type columns struct {
	strs   []string
	times  []time.Time
	u16    []uint16
	u32    []uint32
	u64    []uint64
	amount []decimal.Decimal
}

// fill appends b's rows to batch column by column, in the order of the
// table's INSERT column list, with insertID in every row's insert_id.
func (c *columns) fill(batch driver.Batch, b *tableBatch, insertID uint64) error {
	n := b.len()
	col := 0
	var err error
	str := func(get func(i int) string) {
		if err != nil {
			return
		}
		c.strs = c.strs[:0]
		for i := range n {
			c.strs = append(c.strs, get(i))
		}
		err = batch.Column(col).Append(c.strs)
		col++
	}
	tm := func(get func(i int) time.Time) {
		if err != nil {
			return
		}
		c.times = c.times[:0]
		for i := range n {
			c.times = append(c.times, get(i))
		}
		err = batch.Column(col).Append(c.times)
		col++
	}
	sinkColumns := func() {
		if err != nil {
			return
		}
		c.u32, c.u64 = c.u32[:0], c.u64[:0]
		for i := range b.meta {
			c.u32 = append(c.u32, uint32(b.meta[i].partition))
			c.u64 = append(c.u64, uint64(b.meta[i].offset))
		}
		if err = batch.Column(col).Append(c.u32); err == nil {
			err = batch.Column(col + 1).Append(c.u64)
		}
		col += 2
		if err != nil {
			return
		}
		c.u64 = c.u64[:0]
		for range b.meta {
			c.u64 = append(c.u64, insertID)
		}
		err = batch.Column(col).Append(c.u64)
		col++
	}

	if b.table == TableConversations {
		r := &b.convs
		str(func(i int) string { return r.at(i).ConversationID })
		str(func(i int) string { return r.at(i).WABAID })
		str(func(i int) string { return r.at(i).PortfolioID })
		str(func(i int) string { return r.at(i).PhoneNumberID })
		str(func(i int) string { return r.at(i).CustomerWaID })
		str(func(i int) string { return r.at(i).Market })
		str(func(i int) string { return r.at(i).Category })
		str(func(i int) string { return r.at(i).PricingModel })
		str(func(i int) string { return r.at(i).RuleSet })
		tm(func(i int) time.Time { return r.at(i).OpenedAt })
		tm(func(i int) time.Time { return r.at(i).ExpiresAt })
		str(func(i int) string { return r.at(i).OpeningMessageID })
		str(func(i int) string { return r.at(i).MetaConversationID })
		sinkColumns()
		return err
	}

	r := &b.charges
	str(func(i int) string { return r.at(i).ChargeID })
	str(func(i int) string { return r.at(i).WABAID })
	str(func(i int) string { return r.at(i).PortfolioID })
	str(func(i int) string { return r.at(i).PhoneNumberID })
	str(func(i int) string { return r.at(i).CustomerWaID })
	str(func(i int) string { return r.at(i).Market })
	str(func(i int) string { return r.at(i).Category })
	str(func(i int) string { return r.at(i).PricingModel })
	str(func(i int) string { return r.at(i).PricingType })
	str(func(i int) string { return r.at(i).BillingUnit })
	str(func(i int) string { return r.at(i).ConversationID })
	str(func(i int) string { return r.at(i).MessageID })
	tm(func(i int) time.Time { return r.at(i).ChargedAt })
	str(func(i int) string { return r.at(i).Currency })
	if err == nil {
		c.amount = c.amount[:0]
		for i := range r.len() {
			// decimal.New(micros, -6) is exact: no float on the way.
			c.amount = append(c.amount, decimal.New(r.at(i).AmountMicro, -6))
		}
		err = batch.Column(col).Append(c.amount)
		col++
	}
	str(func(i int) string { return r.at(i).RateCard })
	if err == nil {
		c.u16 = c.u16[:0]
		for i := range r.len() {
			c.u16 = append(c.u16, r.at(i).Tier)
		}
		err = batch.Column(col).Append(c.u16)
		col++
	}
	str(func(i int) string { return r.at(i).RuleSet })
	str(func(i int) string { return r.at(i).MetaConversationID })
	str(func(i int) string { return r.at(i).MetaCategory })
	str(func(i int) string { return r.at(i).MetaPricingModel })
	sinkColumns()
	return err
}
