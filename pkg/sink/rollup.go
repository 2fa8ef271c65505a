package sink

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"go.uber.org/zap"
)

// The rollups spend_hourly and conversations_hourly are written by the
// Writer, not by materialized views: on 18.16 an INSERT writes the table's
// part and then each view's, with nothing atomic between them, and a server
// killed in between leaves the rollup short for good.
//
// Every table INSERT of a Writer carries a random non-zero insert_id in all
// its rows (kept across the retries of that insert). Once the insert is
// stored, the Writer inserts its rollup rows, computed in Go from the same
// rows and grouped as the dropped views did, under the same insert_id, in
// one block. The rollups have insert_id last in their sorting key, so merges
// never sum rows of two inserts and "the rollup of insert X is stored" stays
// a query on insert_id. A block is stored as one part per month of its
// rows, each part atomically, so presence is checked per (insert_id, month).
//
// The Writer holds the rollup of insert X before its next insert into the
// same table, and keeps the partitions of X (Release refuses them) until
// it is stored. A process killed in between leaves X's table rows without
// rollup rows; X then holds its partitions' highest offsets in that table,
// and Resume finds it there and inserts the missing months from the table.
// X's partitions move to their new owners together, and each is resumed:
// the owner of X's lowest partition repairs it, the others leave it.

// rollupTable returns the rollup fed by table t.
func rollupTable(t Table) string {
	if t == TableConversations {
		return "conversations_hourly"
	}
	return "spend_hourly"
}

// timeColumn returns the column of t the rollup's hour derives from.
func timeColumn(t Table) string {
	if t == TableConversations {
		return "opened_at"
	}
	return "charged_at"
}

// rollupSelect returns the SELECT computing, from t, the rollup rows of
// insert id and month (YYYYMM) in the column order of rollupInsert(t):
// the expressions of 0005_spend_hourly_mv.sql and
// 0007_conversations_hourly_mv.sql.
func rollupSelect(t Table, id uint64, month uint32) string {
	if t == TableConversations {
		return fmt.Sprintf(`SELECT waba_id, category, market, pricing_model,
    toStartOfHour(opened_at) AS hour, count() AS conversations, insert_id
FROM conversations
WHERE insert_id = %d AND toYYYYMM(opened_at) = %d
GROUP BY waba_id, category, market, pricing_model, hour, insert_id`, id, month)
	}
	return fmt.Sprintf(`SELECT waba_id, portfolio_id, category, market, pricing_model, pricing_type, currency,
    toStartOfHour(charged_at) AS hour, count() AS units, CAST(sum(amount) AS Decimal(18, 6)) AS amount, insert_id
FROM charges
WHERE insert_id = %d AND toYYYYMM(charged_at) = %d
GROUP BY waba_id, portfolio_id, category, market, pricing_model, pricing_type, currency, hour, insert_id`, id, month)
}

// rollupInsert returns the INSERT of rollup rows for table t.
func rollupInsert(t Table) string {
	if t == TableConversations {
		return "INSERT INTO conversations_hourly (waba_id, category, market, pricing_model, hour, conversations, insert_id)"
	}
	return "INSERT INTO spend_hourly (waba_id, portfolio_id, category, market, pricing_model, pricing_type, " +
		"currency, hour, units, amount, insert_id)"
}

// spendKey is the sorting key of spend_hourly less insert_id.
type spendKey struct {
	waba, portfolio, category, market, pricingModel, pricingType, currency string
	hour                                                                   int64 // Unix seconds
}

type spendSum struct {
	units       uint64
	amountMicro int64
}

// conversationKey is the sorting key of conversations_hourly less
// insert_id.
type conversationKey struct {
	waba, category, market, pricingModel string
	hour                                 int64 // Unix seconds
}

// pendingInsert is the rollup of the current insert into one table: the
// rows of inflight given its id so far, summed as the rollup sums them.
type pendingInsert struct {
	id uint64 // 0: no insert under way
	// rolled is how many rows of inflight (from the front) are summed in.
	rolled int
	// due is true once the table rows are stored: the rollup rows are next.
	due bool
	// attempted is true after a failed rollup insert: some months of it
	// may be stored, so the next attempt reads back first.
	attempted     bool
	spend         map[spendKey]spendSum
	conversations map[conversationKey]uint64
	partitions    map[int32]struct{}
}

func (p *pendingInsert) reset() {
	p.id, p.rolled, p.due, p.attempted = 0, 0, false, false
	clear(p.spend)
	clear(p.conversations)
	clear(p.partitions)
}

// newInsertID returns a random non-zero insert id (0 marks rows stored
// before insert ids, whose rollups the views wrote).
func newInsertID() uint64 {
	for {
		if id := rand.Uint64(); id != 0 {
			return id
		}
	}
}

func hourOf(t time.Time) int64 {
	s := t.Unix()
	return s - s%3600 // rows are after 1970: no negative seconds
}

// sumNew adds the rows of b not yet summed to p.
func (p *pendingInsert) sumNew(b *tableBatch) {
	if p.spend == nil {
		p.spend = make(map[spendKey]spendSum)
		p.conversations = make(map[conversationKey]uint64)
		p.partitions = make(map[int32]struct{})
	}
	for i := p.rolled; i < b.len(); i++ {
		p.partitions[b.meta[i].partition] = struct{}{}
		if b.table == TableConversations {
			r := b.convs.at(i)
			p.conversations[conversationKey{r.WABAID, r.Category, r.Market, r.PricingModel, hourOf(r.OpenedAt)}]++
			continue
		}
		r := b.charges.at(i)
		k := spendKey{r.WABAID, r.PortfolioID, r.Category, r.Market, r.PricingModel, r.PricingType, r.Currency, hourOf(r.ChargedAt)}
		s := p.spend[k]
		s.units++
		s.amountMicro += r.AmountMicro
		p.spend[k] = s
	}
	p.rolled = b.len()
}

func monthOf(unix int64) uint32 {
	t := time.Unix(unix, 0).UTC()
	return uint32(t.Year()*100 + int(t.Month()))
}

// rollupHolds reports whether an insert whose rollup is not stored yet has rows
// of partition.
func (w *Writer) rollupHolds(partition int32) bool {
	for _, t := range tables {
		if p := &w.pending[t]; p.id != 0 {
			if _, ok := p.partitions[partition]; ok {
				return true
			}
		}
	}
	return false
}

// landRollup stores the rollup rows of pending[t], retrying as land does.
func (w *Writer) landRollup(ctx context.Context, t Table) error {
	return w.retry(ctx, rollupTable(t), nil, func(ctx context.Context) error {
		if err := w.attemptRollup(ctx, t); err != nil {
			w.pending[t].attempted = true
			return err
		}
		w.pending[t].reset()
		return nil
	})
}

// attemptRollup makes one try at storing the rollup of pending[t]: after a
// failed try, only the months it did not store.
func (w *Writer) attemptRollup(ctx context.Context, t Table) error {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.InsertTimeout)
	defer cancel()
	p := &w.pending[t]
	var stored map[uint32]bool
	if p.attempted {
		var err error
		if stored, err = w.rollupMonths(ctx, t, p.id); err != nil {
			return fmt.Errorf("read back failed rollup insert: %w", err)
		}
	}
	if w.hookBeforeRollup != nil {
		if err := w.hookBeforeRollup(t); err != nil {
			return err
		}
	}
	batch, err := w.conn.PrepareBatch(ctx, rollupInsert(t))
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	n := 0
	if t == TableConversations {
		for k, c := range p.conversations {
			if stored[monthOf(k.hour)] {
				continue
			}
			err = batch.Append(k.waba, k.category, k.market, k.pricingModel, time.Unix(k.hour, 0).UTC(), c, p.id)
			if err != nil {
				break
			}
			n++
		}
	} else {
		for k, s := range p.spend {
			if stored[monthOf(k.hour)] {
				continue
			}
			err = batch.Append(k.waba, k.portfolio, k.category, k.market, k.pricingModel, k.pricingType, k.currency,
				time.Unix(k.hour, 0).UTC(), s.units, decimal.New(s.amountMicro, -6), p.id)
			if err != nil {
				break
			}
			n++
		}
	}
	if err != nil {
		_ = batch.Abort()
		return permanentError{fmt.Errorf("append: %w", err)}
	}
	if n == 0 {
		_ = batch.Abort()
		return nil
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("send %d rows: %w", n, err)
	}
	return nil
}

// rollupMonths returns the months (YYYYMM) of the rollup of table t that
// hold rows of insert id.
func (w *Writer) rollupMonths(ctx context.Context, t Table, id uint64) (map[uint32]bool, error) {
	q := fmt.Sprintf("SELECT DISTINCT toYYYYMM(hour) FROM %s WHERE insert_id = %d", rollupTable(t), id)
	return w.months(ctx, q)
}

func (w *Writer) months(ctx context.Context, q string) (map[uint32]bool, error) {
	rows, err := w.conn.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	months := make(map[uint32]bool)
	for rows.Next() {
		var m uint32
		if err := rows.Scan(&m); err != nil {
			return nil, err
		}
		months[m] = true
	}
	return months, rows.Err()
}

// resumeInserts is how many of a partition's latest inserts per table
// Resume checks for a missing rollup. Only the latest can miss it (a
// Writer stores an insert's rollup before its next insert into the table);
// the others are a margin.
const resumeInserts = 16

// repairRollups finds the latest inserts into table t holding rows of
// partition at offsets from "from" on, and stores the rollup rows of the
// months any of them lacks, computed from the table, for the inserts whose
// lowest partition is this one. It returns how many (insert, month) pairs
// it stored. The caller holds flushMu, and no other Writer may write
// partition: the check and the insert are not atomic.
func (w *Writer) repairRollups(ctx context.Context, t Table, partition int32, from int64) (int, error) {
	q := fmt.Sprintf(`SELECT insert_id FROM %s
WHERE sink_partition = ? AND sink_offset >= ? AND insert_id != 0
GROUP BY insert_id ORDER BY max(sink_offset) DESC LIMIT %d`, t, resumeInserts)
	rows, err := w.conn.Query(ctx, q, uint32(partition), uint64(from))
	if err != nil {
		return 0, fmt.Errorf("read %s insert ids: %w", t, err)
	}
	var ids []uint64
	for rows.Next() {
		var id uint64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("read %s insert ids: %w", t, err)
		}
		ids = append(ids, id)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return 0, fmt.Errorf("read %s insert ids: %w", t, err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	list := make([]string, len(ids))
	for i, id := range ids {
		list[i] = strconv.FormatUint(id, 10)
	}
	in := strings.Join(list, ",")
	type insertMonth struct {
		id    uint64
		month uint32
	}
	// read returns the (insert, month) pairs q selects, with the lowest
	// partition of each insert among its rows (the third column).
	read := func(q string) (map[insertMonth]bool, map[uint64]uint32, error) {
		rows, err := w.conn.Query(ctx, q)
		if err != nil {
			return nil, nil, err
		}
		defer rows.Close()
		got := make(map[insertMonth]bool)
		lowest := make(map[uint64]uint32)
		for rows.Next() {
			var m insertMonth
			var partition uint32
			if err := rows.Scan(&m.id, &m.month, &partition); err != nil {
				return nil, nil, err
			}
			got[m] = true
			if low, ok := lowest[m.id]; !ok || partition < low {
				lowest[m.id] = partition
			}
		}
		return got, lowest, rows.Err()
	}
	inTable, lowest, err := read(fmt.Sprintf("SELECT insert_id, toYYYYMM(%s) AS month, min(sink_partition) FROM %s "+
		"WHERE insert_id IN (%s) GROUP BY insert_id, month", timeColumn(t), t, in))
	if err != nil {
		return 0, fmt.Errorf("read %s months of inserts: %w", t, err)
	}
	inRollup, _, err := read(fmt.Sprintf("SELECT DISTINCT insert_id, toYYYYMM(hour), toUInt32(0) FROM %s WHERE insert_id IN (%s)", rollupTable(t), in))
	if err != nil {
		return 0, fmt.Errorf("read %s months of inserts: %w", rollupTable(t), err)
	}
	var missing []insertMonth
	for m := range inTable {
		// An insert holds rows of several partitions, whose new owners
		// resume them concurrently: only the owner of its lowest
		// partition repairs it, so that no two Writers do.
		if !inRollup[m] && lowest[m.id] == uint32(partition) {
			missing = append(missing, m)
		}
	}
	slices.SortFunc(missing, func(a, b insertMonth) int {
		return cmp.Or(cmp.Compare(a.id, b.id), cmp.Compare(a.month, b.month))
	})
	for i, m := range missing {
		if err := w.conn.Exec(ctx, rollupInsert(t)+"\n"+rollupSelect(t, m.id, m.month)); err != nil {
			return i, fmt.Errorf("insert %s of insert %d month %d: %w", rollupTable(t), m.id, m.month, err)
		}
		w.log.Warn("rollup of a stored insert was missing; inserted it from the table",
			zap.Int32("partition", partition), zap.String("table", rollupTable(t)),
			zap.Uint64("insert_id", m.id), zap.Uint32("month", m.month))
	}
	return len(missing), nil
}
