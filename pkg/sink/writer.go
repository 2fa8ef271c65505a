package sink

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/wameter/wameter/pkg/billing"
)

// ErrNotResumed is returned by Add for a partition that Resume has not
// loaded (or that Release dropped).
var ErrNotResumed = errors.New("partition not resumed")

// ErrPending is returned by Resume and Release for a partition that still
// has rows waiting for Flush.
var ErrPending = errors.New("partition has unflushed rows")

// Writer stores rows of the rows topic in ClickHouse, each row once however
// often it is delivered. One Writer serves all the partitions one consumer
// owns; each row carries its partition and offset into the sink_partition
// and sink_offset columns, and all bookkeeping is per (partition, table).
//
// Call order: Resume(p) when p is assigned, before its first Add; Add for
// each record in offset order; Flush when Due (BatchMinRows wait, or
// FlushInterval has passed since the last Flush); then commit offset
// Committable(p) for each partition. On revoke: stop fetching
// p, Flush, commit, Release(p).
//
// A row is skipped (counted as a duplicate) when
//   - its offset is at or below the highest sink_offset its table holds for
//     its partition (Resume reads it back, each successful insert raises it):
//     the record was stored before, by this Writer or by a previous process,
//     whatever offset Kafka had committed; or
//   - its id is stored or batched already: a row re-emitted upstream at a new
//     offset. The Writer remembers the ids of the last DedupHorizon rows per
//     partition (Resume loads those within DedupHorizon offsets of the
//     highest stored one), so an older re-emission is not recognised.
//
// Flush writes one INSERT per table holding every batched row (rows of a
// batch are never split into several inserts, so "offset ≤ stored maximum"
// stays a correct test), retries failing inserts with jittered exponential
// backoff until its ctx ends, and reports Healthy false meanwhile. Before a
// retry, it reads back which of the batch's rows the failed attempt stored
// after all (the connection can drop after the server committed, and a batch
// spanning months lands as one part per month) and resends only the rest.
// Once a table's insert is stored, Flush inserts its rows of the table's
// rollup (spend_hourly, conversations_hourly), and Resume completes a
// rollup insert a crash cut off (see rollup.go).
//
// Add, Flush, Resume, Release, Committable and Healthy are safe for
// concurrent use; Flushes run one at a time, and Add does not wait for them.
type Writer struct {
	conn clickhouse.Conn
	cfg  Config
	log  *zap.Logger
	m    *metrics

	healthy atomic.Bool

	// flushMu serialises Flush, Resume and Release, and guards the fields
	// below it.
	flushMu sync.Mutex
	// inflight holds rows a Flush took and has not stored yet; a failed
	// Flush leaves them for the next one, before any newer row.
	inflight [len(tables) + 1]tableBatch
	// attempted is true when an attempt on inflight failed: some of it may
	// be stored, so the next attempt reads back first.
	attempted [len(tables) + 1]bool
	// marks is, per partition, the highest offset added before the
	// Flush that took inflight: durable once inflight is stored.
	marks map[int32]int64
	cols  columns
	// pending is, per table, the insert under way and its rollup rows (see
	// rollup.go).
	pending [len(tables) + 1]pendingInsert
	// hookBeforeRollup, when set (tests), runs before each rollup insert
	// attempt; an error it returns fails the attempt.
	hookBeforeRollup func(Table) error
	// hookBeforeSend, when set (tests), runs before each table insert.
	hookBeforeSend func(Table) error

	mu    sync.Mutex // guards parts and buf
	parts map[int32]*partState
	buf   [len(tables) + 1]tableBatch

	// flushed is when the last Flush returned (Unix nanoseconds).
	flushed atomic.Int64
	// viewsChecked: the database has no rollup view (checked by the first
	// Resume, under flushMu).
	viewsChecked bool
}

// oldViews are the materialized views that filled the rollups before the
// sink wrote them (dropped by migrations 0013 and 0014).
var oldViews = []string{"spend_hourly_mv", "conversations_hourly_mv"}

// checkNoViews refuses to write while a view that also fills the rollups
// exists: every row would be counted twice in them.
func (w *Writer) checkNoViews(ctx context.Context) error {
	rows, err := w.conn.Query(ctx, "SELECT name FROM system.tables WHERE database = currentDatabase() AND name IN (?, ?)", oldViews[0], oldViews[1])
	if err != nil {
		return fmt.Errorf("look for rollup views: %w", err)
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return fmt.Errorf("look for rollup views: %w", err)
		}
		found = append(found, name)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("look for rollup views: %w", err)
	}
	if len(found) > 0 {
		return fmt.Errorf("the materialized views %s still fill the rollups this sink writes, which would count every row twice: "+
			"stop sinks of older versions, then apply the schemas (wameter migrate) before starting this one", strings.Join(found, ", "))
	}
	return nil
}

// partState is a Writer's bookkeeping for one rows-topic partition.
type partState struct {
	// maxOffset is, per table, the offset up to which every row is known
	// stored: after Resume, the highest offset of the partition's inserts
	// before its last, at most the start of the id horizon less one (see
	// Resume); then raised by this Writer's own inserts. -1: none.
	maxOffset [len(tables) + 1]int64
	ids       *idSet
	added     int64 // highest offset given to Add; -1: none
	durable   int64 // every offset up to it is stored or skipped; -1: none
	pending   int   // rows batched or in flight
}

// NewWriter returns a Writer inserting through conn, whose default database
// holds the tables. cfg supplies batching, horizon, retry and timeouts
// (defaults for zero fields); metrics go to reg, so one registry takes one
// Writer.
func NewWriter(conn clickhouse.Conn, cfg Config, logger *zap.Logger, reg prometheus.Registerer) (*Writer, error) {
	if conn == nil {
		return nil, errors.New("new sink writer: nil clickhouse connection")
	}
	if logger == nil {
		return nil, errors.New("new sink writer: nil logger")
	}
	if reg == nil {
		return nil, errors.New("new sink writer: nil metrics registerer")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new sink writer: %w", err)
	}
	w := &Writer{
		conn:  conn,
		cfg:   cfg.WithDefaults(),
		log:   logger.Named("sink"),
		m:     newMetrics(reg),
		marks: make(map[int32]int64),
		parts: make(map[int32]*partState),
	}
	for _, t := range tables {
		w.inflight[t].table = t
		w.buf[t].table = t
	}
	w.setHealthy(true)
	w.flushed.Store(time.Now().UnixNano())
	return w, nil
}

// Resumed is what Resume found in ClickHouse for one partition.
type Resumed struct {
	Partition int32
	// MaxOffset is the highest sink_offset stored per table, -1 when the
	// table holds no row of the partition.
	MaxOffset map[Table]int64
	// RecentIDs is how many ids of the horizon were loaded.
	RecentIDs int
	// RepairedRollups is how many (insert, month) rollups of stored rows
	// were missing (a crash between a table insert and its rollup insert)
	// and were inserted from the tables.
	RepairedRollups int
}

// Resume loads partition's state from ClickHouse: per table, the highest
// stored sink_offset, and the ids of rows within DedupHorizon offsets of the
// highest of them. First it stores the rollup rows missing for the
// partition's latest inserts (see rollup.go): no other Writer may write the
// partition meanwhile. Call it when the partition is assigned, before Add; a
// partition already resumed must be Released first. It does not retry: on
// error, the caller retries or gives the partition up.
func (w *Writer) Resume(ctx context.Context, partition int32) (Resumed, error) {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	w.mu.Lock()
	_, resumed := w.parts[partition]
	w.mu.Unlock()
	if resumed {
		return Resumed{}, fmt.Errorf("resume partition %d: already resumed", partition)
	}
	if partition < 0 {
		return Resumed{}, fmt.Errorf("resume partition %d: negative", partition)
	}

	if !w.viewsChecked {
		if err := w.checkNoViews(ctx); err != nil {
			return Resumed{}, fmt.Errorf("resume partition %d: %w", partition, err)
		}
		w.viewsChecked = true
	}
	st := &partState{added: -1, durable: -1}
	res := Resumed{Partition: partition, MaxOffset: make(map[Table]int64, len(tables))}
	high := int64(-1)
	for _, t := range tables {
		var maxOffset, count uint64
		q := fmt.Sprintf("SELECT max(sink_offset), count() FROM %s WHERE sink_partition = ?", t)
		if err := w.conn.QueryRow(ctx, q, uint32(partition)).Scan(&maxOffset, &count); err != nil {
			return Resumed{}, fmt.Errorf("resume partition %d: read %s offsets: %w", partition, t, err)
		}
		st.maxOffset[t] = -1
		if count > 0 {
			st.maxOffset[t] = int64(maxOffset)
		}
		res.MaxOffset[t] = st.maxOffset[t]
		high = max(high, st.maxOffset[t])
	}
	for _, t := range tables {
		if st.maxOffset[t] < 0 {
			continue
		}
		from := max(st.maxOffset[t]-int64(w.cfg.DedupHorizon)+1, 0)
		n, err := w.repairRollups(ctx, t, partition, from)
		if err != nil {
			return Resumed{}, fmt.Errorf("resume partition %d: %w", partition, err)
		}
		res.RepairedRollups += n
	}

	// Rows at or below the highest stored offset are not all stored: an
	// insert whose rows span two months is two parts, and a server killed
	// between them stored one. Only the partition's last insert per table
	// can be cut off (a Writer retries an insert until it is stored before
	// the next), so offsets are trusted only up to the highest offset of an
	// earlier insert; above it, a row is skipped only if its id is stored.
	from := max(high-int64(w.cfg.DedupHorizon)+1, 0)
	for _, t := range tables {
		if st.maxOffset[t] < 0 {
			continue
		}
		trusted, err := w.completeUpTo(ctx, t, partition, from-1)
		if err != nil {
			return Resumed{}, fmt.Errorf("resume partition %d: %w", partition, err)
		}
		st.maxOffset[t] = min(st.maxOffset[t], trusted)
		from = min(from, trusted+1)
	}

	type recent struct {
		offset int64
		id     billing.ID
	}
	var ids []recent
	if high >= 0 {
		for _, t := range tables {
			q := fmt.Sprintf("SELECT %s, sink_offset FROM %s WHERE sink_partition = ? AND sink_offset >= ?", idColumn(t), t)
			rows, err := w.conn.Query(ctx, q, uint32(partition), uint64(from))
			if err != nil {
				return Resumed{}, fmt.Errorf("resume partition %d: read %s ids: %w", partition, t, err)
			}
			for rows.Next() {
				var s string
				var offset uint64
				if err := rows.Scan(&s, &offset); err != nil {
					rows.Close()
					return Resumed{}, fmt.Errorf("resume partition %d: read %s ids: %w", partition, t, err)
				}
				if id, ok := parseID(s); ok {
					ids = append(ids, recent{int64(offset), id})
				}
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return Resumed{}, fmt.Errorf("resume partition %d: read %s ids: %w", partition, t, err)
			}
		}
	}
	// Oldest first, so that the set forgets the oldest when the horizon
	// holds more rows than it has room for.
	slices.SortFunc(ids, func(a, b recent) int { return cmp.Compare(a.offset, b.offset) })
	st.ids = newIDSet(max(w.cfg.DedupHorizon, len(ids)))
	for i := range ids {
		st.ids.add(ids[i].id)
	}
	res.RecentIDs = st.ids.len()

	w.mu.Lock()
	w.parts[partition] = st
	w.mu.Unlock()
	w.log.Info("partition resumed", zap.Int32("partition", partition),
		zap.Int64("conversations_max_offset", res.MaxOffset[TableConversations]),
		zap.Int64("charges_max_offset", res.MaxOffset[TableCharges]),
		zap.Int("recent_ids", res.RecentIDs), zap.Int("repaired_rollups", res.RepairedRollups))
	return res, nil
}

// completeUpTo returns the highest offset of partition's rows in t that no
// cut-off insert can have left incomplete: the rows of inserts before the
// last one (the one holding the highest offset), capped at limit. Rows
// written before insert ids existed (insert_id 0) count as complete.
func (w *Writer) completeUpTo(ctx context.Context, t Table, partition int32, limit int64) (int64, error) {
	var last uint64
	q := fmt.Sprintf("SELECT argMax(insert_id, sink_offset) FROM %s WHERE sink_partition = ?", t)
	if err := w.conn.QueryRow(ctx, q, uint32(partition)).Scan(&last); err != nil {
		return 0, fmt.Errorf("read %s last insert: %w", t, err)
	}
	if last == 0 {
		return limit, nil
	}
	var maxOffset, count uint64
	q = fmt.Sprintf("SELECT max(sink_offset), count() FROM %s WHERE sink_partition = ? AND insert_id != ?", t)
	if err := w.conn.QueryRow(ctx, q, uint32(partition), last).Scan(&maxOffset, &count); err != nil {
		return 0, fmt.Errorf("read %s complete inserts: %w", t, err)
	}
	if count == 0 {
		return -1, nil
	}
	return min(int64(maxOffset), limit), nil
}

// Release forgets partition after it was revoked. Flush first: a partition
// with rows not yet stored, or rows stored by an insert whose rollup rows
// are not, returns ErrPending and stays.
func (w *Writer) Release(partition int32) error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	st, ok := w.parts[partition]
	if !ok {
		return nil
	}
	if st.pending > 0 {
		return fmt.Errorf("release partition %d: %d rows: %w", partition, st.pending, ErrPending)
	}
	if w.rollupHolds(partition) {
		return fmt.Errorf("release partition %d: rollup not stored: %w", partition, ErrPending)
	}
	delete(w.parts, partition)
	delete(w.marks, partition)
	return nil
}

// Add batches r, read from partition at offset, unless ClickHouse holds it
// already (see Writer). It copies r (its strings are shared, not copied).
// It returns ErrNotResumed for a partition not resumed, and an error for a
// row that cannot be stored (bad id or table).
func (w *Writer) Add(r *Row, partition int32, offset int64) error {
	var err error
	rows := [1]Row{*r}
	w.AddRecord(rows[:], partition, offset, func(_ int, e error) { err = e })
	return err
}

// AddRecord is Add for all the rows of one rows-topic record (a packed
// record holds many): they are batched together, so that they land in the
// same insert of their table, which "offset at or below the highest stored
// one" relies on (a Flush between two of them would store the first, and
// the second would then be skipped as stored). reject is called, before
// AddRecord returns, with the index and error of each row Add would have
// refused; the others are batched.
func (w *Writer) AddRecord(rows []Row, partition int32, offset int64, reject func(i int, err error)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, resumed := w.parts[partition]
	for i := range rows {
		r := &rows[i]
		t := r.Table
		if t != TableConversations && t != TableCharges {
			reject(i, fmt.Errorf("add row at %d/%d: unknown table %d", partition, offset, t))
			continue
		}
		id, ok := parseID(r.ID())
		switch {
		case !ok:
			reject(i, fmt.Errorf("add %s row at %d/%d: id %q is not 32 hex digits", t, partition, offset, r.ID()))
			continue
		case offset < 0:
			reject(i, fmt.Errorf("add %s row at %d/%d: negative offset", t, partition, offset))
			continue
		case !resumed:
			reject(i, fmt.Errorf("add %s row at %d/%d: %w", t, partition, offset, ErrNotResumed))
			continue
		}
		st.added = max(st.added, offset)
		switch {
		case offset <= st.maxOffset[t]:
			w.m.skipped.WithLabelValues(t.String(), reasonOffset).Inc()
		case st.ids.has(id):
			w.m.skipped.WithLabelValues(t.String(), reasonID).Inc()
		default:
			st.ids.add(id)
			st.pending++
			w.buf[t].add(r, rowMeta{id: id, partition: partition, offset: offset})
		}
	}
}

// Pending returns how many rows wait for Flush.
func (w *Writer) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, t := range tables {
		n += w.buf[t].len()
	}
	return n
}

// Full reports whether BatchMaxRows rows wait for Flush.
func (w *Writer) Full() bool { return w.Pending() >= w.cfg.BatchMaxRows }

// Due reports whether the caller should Flush now: at least BatchMinRows
// rows wait, or some do and FlushInterval has passed since the last Flush.
// A trickle of rows is so stored about once per FlushInterval, and a burst
// as it comes.
func (w *Writer) Due() bool {
	n := w.Pending()
	return n >= w.cfg.BatchMinRows ||
		(n > 0 && time.Since(time.Unix(0, w.flushed.Load())) >= w.cfg.FlushInterval)
}

// Committable returns the offset to commit for partition: every record
// before it is stored in ClickHouse or skipped as stored. ok is false when
// nothing was made durable since Resume.
func (w *Writer) Committable(partition int32) (offset int64, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, found := w.parts[partition]
	if !found || st.durable < 0 {
		return 0, false
	}
	return st.durable + 1, true
}

// Healthy reports false while inserts fail (Flush is retrying, or returned
// an error): readiness should follow it.
func (w *Writer) Healthy() bool { return w.healthy.Load() }

func (w *Writer) setHealthy(ok bool) {
	w.healthy.Store(ok)
	if ok {
		w.m.healthy.Set(1)
	} else {
		w.m.healthy.Set(0)
	}
}

// Flush stores every row added so far: one INSERT per table, then one of
// its rollup rows into the table's rollup (see rollup.go). It retries
// transient failures until ctx ends, and returns an error then, or at once
// for an error that no retry can fix (such as a missing column); the rows
// stay batched for the next Flush either way. After it returns nil,
// Committable tells each partition's offset to commit.
func (w *Writer) Flush(ctx context.Context) error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()

	w.mu.Lock()
	for _, t := range tables {
		w.inflight[t].takeFrom(&w.buf[t])
	}
	for p, st := range w.parts {
		if st.added >= 0 {
			w.marks[p] = max(w.marks[p], st.added)
		}
	}
	w.mu.Unlock()

	for _, t := range tables {
		p := &w.pending[t]
		if p.due {
			// A previous Flush stored the rows and not their rollup.
			if err := w.landRollup(ctx, t); err != nil {
				return err
			}
		}
		if w.inflight[t].len() == 0 && !w.attempted[t] {
			continue
		}
		if p.id == 0 {
			p.id = newInsertID()
		}
		p.sumNew(&w.inflight[t])
		if err := w.land(ctx, t); err != nil {
			return err
		}
		p.due = true
		if err := w.landRollup(ctx, t); err != nil {
			return err
		}
	}

	w.mu.Lock()
	for p, offset := range w.marks {
		if st, ok := w.parts[p]; ok {
			st.durable = max(st.durable, offset)
		}
	}
	clear(w.marks)
	w.mu.Unlock()
	w.flushed.Store(time.Now().UnixNano())
	return nil
}

// land stores inflight[t], retrying until it succeeds, ctx ends or an
// error is permanent.
func (w *Writer) land(ctx context.Context, t Table) error {
	return w.retry(ctx, t.String(), func() int { return w.inflight[t].len() },
		func(ctx context.Context) error { return w.attempt(ctx, t) })
}

// retry runs try until it succeeds, fails for good (permanent) or ctx
// ends, with jittered exponential backoff between attempts; the Writer is
// unhealthy while it fails. table names what is inserted; rows, if not
// nil, how many rows (for the logs).
func (w *Writer) retry(ctx context.Context, table string, rows func() int, try func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		err := try(ctx)
		if err == nil {
			w.setHealthy(true)
			return nil
		}
		w.setHealthy(false)
		w.m.insertErrors.WithLabelValues(table).Inc()
		fields := []zap.Field{zap.String("table", table), zap.Error(err)}
		if rows != nil {
			fields = append(fields, zap.Int("rows", rows()))
		}
		if permanent(err) {
			w.log.Error("insert failed, not retrying", fields...)
			return fmt.Errorf("insert into %s: %w", table, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("insert into %s: %w (last error: %w)", table, ctx.Err(), err)
		}
		delay := w.backoff(attempt)
		w.log.Warn("insert failed, retrying", append(fields, zap.Int("attempt", attempt+1), zap.Duration("backoff", delay))...)
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("insert into %s: %w (last error: %w)", table, ctx.Err(), err)
		case <-timer.C:
		}
	}
}

// backoff returns the delay before retry attempt+1: RetryMin doubled per
// attempt up to RetryMax, then drawn uniformly from its upper half so that
// writers restarted together do not retry in step.
func (w *Writer) backoff(attempt int) time.Duration {
	d := w.cfg.RetryMax
	if attempt < 30 {
		d = min(w.cfg.RetryMin<<attempt, w.cfg.RetryMax)
	}
	return d/2 + rand.N(d/2+1)
}

// attempt makes one try at storing inflight[t]: after a failed try, first
// drop what that try stored after all, then insert the rest.
func (w *Writer) attempt(ctx context.Context, t Table) error {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.InsertTimeout)
	defer cancel()
	b := &w.inflight[t]
	if w.attempted[t] {
		stored, err := w.dropStored(ctx, b)
		if err != nil {
			return fmt.Errorf("read back failed insert: %w", err)
		}
		w.attempted[t] = false
		// Every row left was summed into the rollup before the attempt.
		w.pending[t].rolled = b.len()
		if len(stored) > 0 {
			w.log.Info("failed insert was stored in part", zap.Stringer("table", t), zap.Int("rows", len(stored)))
			w.m.inserted.WithLabelValues(t.String()).Add(float64(len(stored)))
			w.stored(t, stored)
		}
	}
	if b.len() == 0 {
		return nil
	}
	start := time.Now()
	err := w.send(ctx, b)
	w.m.insertSeconds.WithLabelValues(t.String()).Observe(time.Since(start).Seconds())
	if err != nil {
		w.attempted[t] = true
		return err
	}
	w.m.inserted.WithLabelValues(t.String()).Add(float64(b.len()))
	w.m.batchRows.WithLabelValues(t.String()).Observe(float64(b.len()))
	w.stored(t, b.meta)
	b.reset()
	w.pending[t].rolled = 0
	return nil
}

// stored records that the rows of table t described by meta are in
// ClickHouse.
func (w *Writer) stored(t Table, meta []rowMeta) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range meta {
		if st, ok := w.parts[meta[i].partition]; ok {
			st.maxOffset[t] = max(st.maxOffset[t], meta[i].offset)
			st.pending--
		}
	}
}

// send inserts all of b in one INSERT.
func (w *Writer) send(ctx context.Context, b *tableBatch) error {
	if w.hookBeforeSend != nil {
		if err := w.hookBeforeSend(b.table); err != nil {
			return err
		}
	}
	batch, err := w.conn.PrepareBatch(ctx, insertQuery(b.table))
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	if err := w.cols.fill(batch, b, w.pending[b.table].id); err != nil {
		_ = batch.Abort()
		return permanentError{fmt.Errorf("append: %w", err)}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("send %d rows: %w", b.len(), err)
	}
	return nil
}

// dropStored removes from b the rows ClickHouse holds already, and returns
// them. A stored row is recognised by its id among the rows of its
// partition within the offset range b spans there: only an attempt on b
// can have put it there, since any earlier writer's rows are at offsets b
// skipped.
func (w *Writer) dropStored(ctx context.Context, b *tableBatch) ([]rowMeta, error) {
	type span struct{ lo, hi int64 }
	spans := make(map[int32]span)
	for _, m := range b.meta {
		s, ok := spans[m.partition]
		if !ok {
			s = span{m.offset, m.offset}
		}
		spans[m.partition] = span{min(s.lo, m.offset), max(s.hi, m.offset)}
	}
	present := make(map[billing.ID]struct{})
	q := fmt.Sprintf("SELECT %s FROM %s WHERE sink_partition = ? AND sink_offset >= ? AND sink_offset <= ?",
		idColumn(b.table), b.table)
	for p, s := range spans {
		if err := func() error {
			rows, err := w.conn.Query(ctx, q, uint32(p), uint64(s.lo), uint64(s.hi))
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					return err
				}
				if parsed, ok := parseID(id); ok {
					present[parsed] = struct{}{}
				}
			}
			return rows.Err()
		}(); err != nil {
			return nil, fmt.Errorf("partition %d offsets %d..%d: %w", p, s.lo, s.hi, err)
		}
	}
	if len(present) == 0 {
		return nil, nil
	}
	return b.keep(func(m *rowMeta) bool {
		_, ok := present[m.id]
		return !ok
	}), nil
}

// permanentError marks an error that retrying the same batch cannot fix.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Server error codes that no retry fixes: the batch or the schema is wrong.
var permanentCodes = map[int32]bool{
	16: true, // NO_SUCH_COLUMN_IN_TABLE
	27: true, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
	47: true, // UNKNOWN_IDENTIFIER
	53: true, // TYPE_MISMATCH
	62: true, // SYNTAX_ERROR
	69: true, // ARGUMENT_OUT_OF_BOUND
	70: true, // CANNOT_CONVERT_TYPE
}

// permanent reports whether err cannot go away by retrying. Everything
// else (network, timeouts, a missing table while migrations run, too many
// parts, memory limits) is retried.
func permanent(err error) bool {
	var p permanentError
	if errors.As(err, &p) {
		return true
	}
	var ex *clickhouse.Exception
	return errors.As(err, &ex) && permanentCodes[ex.Code]
}
