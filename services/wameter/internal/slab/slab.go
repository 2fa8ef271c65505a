// Package slab hands out the bytes of record keys and values from large
// chunks, so that a batch of records costs a few allocations instead of two
// per record.
package slab

import "unsafe"

// chunkSize is the size of a fresh chunk: a few hundred records' keys and
// values.
const chunkSize = 64 << 10

// Slab appends bytes into shared chunks. Bytes it has handed out are never
// written again and never reused: a chunk stays alive as long as any slice
// of it does, so a returned slice may be kept or handed to a producer
// without caring when that one is done with it. The zero value is ready to
// use. Not safe for concurrent use.
//
// Use it as s.End(appendSomething(s.Begin(n), ...)).
type Slab struct {
	buf []byte // the current chunk; buf[len(buf):] is free
}

// Begin returns an empty slice with room for at least n bytes in the
// current chunk (a new chunk when it has less room left). Append to it, then
// pass the result to End before the next Begin.
func (s *Slab) Begin(n int) []byte {
	if cap(s.buf)-len(s.buf) < n {
		s.buf = make([]byte, 0, max(chunkSize, n))
	}
	return s.buf[len(s.buf):len(s.buf)]
}

// End takes b, the slice from the last Begin with bytes appended, out of
// the chunk and returns it with its capacity cut to its length, so that
// appending to it never writes into the chunk. If the appends outgrew the
// room Begin gave (append then copied them elsewhere) b is returned as is.
func (s *Slab) End(b []byte) []byte {
	free := s.buf[len(s.buf):cap(s.buf)]
	if len(b) == 0 {
		return b[:0:0]
	}
	if len(b) <= len(free) && unsafe.SliceData(b) == unsafe.SliceData(free) {
		s.buf = s.buf[:len(s.buf)+len(b)]
	}
	return b[:len(b):len(b)]
}
