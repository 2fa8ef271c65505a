package sink

import (
	"context"
	"testing"
)

const benchBatch = 10_000

func benchRows(b *testing.B) *tableBatch {
	batch := &tableBatch{table: TableCharges}
	for i := range benchBatch {
		r := chargeRecord(b, i)
		id, _ := parseID(r.ID())
		batch.add(&r, rowMeta{id: id, partition: 0, offset: int64(i)})
	}
	return batch
}

// BenchmarkBatchAppend measures the client side of one charges INSERT:
// filling clickhouse-go's columnar batch with 10k rows (the batch is
// prepared against the real server, then aborted unsent).
func BenchmarkBatchAppend(b *testing.B) {
	e := newEnv(b)
	rows := benchRows(b)
	var cols columns
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		batch, err := e.conn.PrepareBatch(ctx, insertQuery(TableCharges))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := cols.fill(batch, rows, 1); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = batch.Abort()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/row")
}

// BenchmarkFlushCharges measures Add and Flush of 10k charges into the real
// server: one INSERT, then one of its spend_hourly rows.
func BenchmarkFlushCharges(b *testing.B) {
	e := newEnv(b)
	w := newWriter(b, e.conn, Config{})
	resume(b, w, 0)
	src := make([]Row, benchBatch)
	for i := range src {
		src[i] = chargeRecord(b, i)
	}
	ctx := context.Background()
	offset := int64(0)
	b.ReportAllocs()
	b.ResetTimer()
	for n := range b.N {
		for i := range src {
			r := src[i]
			// A fresh id per round, so that nothing is skipped as a duplicate.
			r.Charge.ChargeID = r.Charge.ChargeID[:24] + hex8(n)
			if err := w.Add(&r, 0, offset); err != nil {
				b.Fatal(err)
			}
			offset++
		}
		if err := w.Flush(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "rows/s")
}

func hex8(n int) string {
	const digits = "0123456789abcdef"
	var buf [8]byte
	for i := range buf {
		buf[7-i] = digits[n>>(4*i)&0xf]
	}
	return string(buf[:])
}
