package sink

import (
	"testing"
	"time"
)

// TestWriterDue: a burst is due at BatchMinRows rows; fewer rows wait for
// FlushInterval since the last Flush.
func TestWriterDue(t *testing.T) {
	f := func(name string, rows int, sinceFlush time.Duration, want bool) {
		t.Helper()
		w := &Writer{cfg: Config{BatchMinRows: 3, FlushInterval: time.Second}.WithDefaults()}
		for _, tb := range tables {
			w.buf[tb].table = tb
		}
		for i := range rows {
			r := chargeRecord(t, i)
			w.buf[TableCharges].add(&r, rowMeta{offset: int64(i)})
		}
		w.flushed.Store(time.Now().Add(-sinceFlush).UnixNano())
		if got := w.Due(); got != want {
			t.Errorf("%s: Due() = %v, want %v", name, got, want)
		}
	}
	f("nothing pending", 0, time.Hour, false)
	f("a trickle, flushed just now", 2, 0, false)
	f("a trickle, flushed an interval ago", 2, 2*time.Second, true)
	f("a burst, flushed just now", 3, 0, true)
}
