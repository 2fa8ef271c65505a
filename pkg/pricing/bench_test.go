package pricing

import (
	"testing"
	"time"
)

// benchNumbers mix long and short prefixes, and a number with no prefix.
var benchNumbers = []uint64{14155550100, 18095551234, 5511987654321, 263771234567, 77011234567, 447911123456, 919876543210, 99912345}

func BenchmarkMarket(b *testing.B) {
	c := defaultCatalogT(b)
	day := mustDay(b, "2025-10-01")
	b.ReportAllocs()
	var sink string
	for i := 0; b.Loop(); i++ {
		sink = c.Market(benchNumbers[i%len(benchNumbers)], day)
	}
	_ = sink
}

func BenchmarkRate(b *testing.B) {
	c := defaultCatalogT(b)
	day := mustDay(b, "2025-10-01")
	markets := []string{"NORTH_AMERICA", "BR", "REST_OF_AFRICA", "IN", "OTHER"}
	b.ReportAllocs()
	var sink Rate
	for i := 0; b.Loop(); i++ {
		sink, _ = c.Rate(ModelPMP, day, markets[i%len(markets)], Utility, "USD")
	}
	_ = sink
}

func BenchmarkDayOf(b *testing.B) {
	loc := mustLocation(b, "America/Sao_Paulo")
	start := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC).Unix()
	b.ReportAllocs()
	var sink Day
	for i := int64(0); b.Loop(); i++ {
		sink = DayOf(start+i*37, loc)
	}
	_ = sink
}

func BenchmarkCountry(b *testing.B) {
	c := defaultCatalogT(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = c.Country(benchNumbers[i%len(benchNumbers)])
	}
}
