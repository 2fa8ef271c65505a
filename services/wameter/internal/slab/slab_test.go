package slab

import (
	"bytes"
	"strconv"
	"testing"
)

func TestSlabSlicesStayIntact(t *testing.T) {
	var s Slab
	var got [][]byte
	var want []string
	for i := range 5000 {
		v := strconv.AppendInt(s.Begin(8), int64(i), 10)
		if i%97 == 0 {
			// Outgrows the room Begin gave: append copies it elsewhere.
			v = append(v, bytes.Repeat([]byte{'x'}, 300)...)
		}
		v = s.End(v)
		got = append(got, v)
		want = append(want, string(v))
	}
	// Appending to a returned slice must not write into the chunk.
	for i := range got {
		_ = append(got[i], "overwrite"...)
	}
	for i := range got {
		if string(got[i]) != want[i] {
			t.Fatalf("slice %d: %q, want %q", i, got[i], want[i])
		}
	}
}

func TestSlabLargeValue(t *testing.T) {
	var s Slab
	big := bytes.Repeat([]byte{'y'}, 3*chunkSize)
	v := s.End(append(s.Begin(len(big)), big...))
	w := s.End(append(s.Begin(1), 'z'))
	if !bytes.Equal(v, big) || string(w) != "z" {
		t.Fatalf("got %d bytes and %q", len(v), w)
	}
}

func TestSlabEmpty(t *testing.T) {
	var s Slab
	if v := s.End(s.Begin(0)); len(v) != 0 || cap(v) != 0 {
		t.Fatalf("empty: len %d cap %d", len(v), cap(v))
	}
}

func BenchmarkSlab(b *testing.B) {
	var s Slab
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.End(strconv.AppendInt(s.Begin(20), int64(i), 10))
	}
}
