package simulate

import (
	"context"
	"io"
	"testing"

	"github.com/wameter/wameter/pkg/traffic"
)

// BenchmarkWrite is `wameter simulate` less the disk: generation and the
// JSON-lines encoding.
func BenchmarkWrite(b *testing.B) {
	cfg := traffic.DefaultConfig()
	cfg.Accounts = traffic.DefaultAccounts(5, 20000)
	var st stats
	b.ReportAllocs()
	for b.Loop() {
		st = stats{}
		if err := write(context.Background(), cfg, io.Discard, &st); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(st.records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
