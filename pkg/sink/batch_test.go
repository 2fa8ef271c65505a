package sink

import (
	"fmt"
	"testing"
)

// A batch of a few chunks of rows: taken over whole and appended to,
// filtered in place (a failed insert's stored rows dropped) and reset, it
// holds the rows it was given, in Add order, with their metadata.
func TestTableBatchAcrossChunks(t *testing.T) {
	row := func(i int) *Row {
		return &Row{Table: TableCharges, Charge: ChargeRow{ChargeID: fmt.Sprintf("%032x", i), MessageID: fmt.Sprint("wamid.", i)}}
	}
	check := func(b *tableBatch, want []int) {
		t.Helper()
		if b.len() != len(want) || b.charges.len() != len(want) {
			t.Fatalf("batch holds %d rows (%d charges), want %d", b.len(), b.charges.len(), len(want))
		}
		for i, w := range want {
			if got := b.charges.at(i).MessageID; got != fmt.Sprint("wamid.", w) || b.meta[i].offset != int64(w) {
				t.Fatalf("row %d: message %s offset %d, want row %d", i, got, b.meta[i].offset, w)
			}
		}
	}
	var in, out tableBatch
	in.table, out.table = TableCharges, TableCharges
	var want []int
	add := func(from, to int) {
		for i := from; i < to; i++ {
			in.add(row(i), rowMeta{offset: int64(i)})
			want = append(want, i)
		}
	}
	add(0, 2500)
	out.takeFrom(&in) // out empty: takes in's rows whole
	check(&out, want)
	check(&in, nil)
	add(2500, 3100)
	out.takeFrom(&in) // appended behind
	check(&out, want)

	// Drop every third row, as dropStored drops the rows found stored.
	dropped := out.keep(func(m *rowMeta) bool { return m.offset%3 != 0 })
	var kept []int
	for _, w := range want {
		if w%3 != 0 {
			kept = append(kept, w)
		}
	}
	if len(dropped) != len(want)-len(kept) {
		t.Fatalf("%d rows dropped, want %d", len(dropped), len(want)-len(kept))
	}
	check(&out, kept)
	// The rows past the end are cleared (their strings released).
	for i := len(kept); i < len(want); i++ {
		if c := out.charges.chunks[i/rowChunk][i%rowChunk]; c.MessageID != "" {
			t.Fatalf("row %d past the end still holds %q", i, c.MessageID)
		}
	}
	out.reset()
	check(&out, nil)
	if c := out.charges.chunks[0][0]; c.MessageID != "" {
		t.Fatalf("a reset batch still holds %q", c.MessageID)
	}
}
