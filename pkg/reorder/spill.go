package reorder

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/wameter/wameter/pkg/webhook"
)

// Options bounds the memory of a Buffer's events by writing them to disk.
type Options struct {
	// SpillDir holds the buffer's run files; give each buffer its own (one
	// per partition). NewWithOptions creates it and removes the run files
	// a previous buffer left there: they are only a cache, garbage after a
	// crash. It leaves other files alone. (Should two live buffers share
	// it, the first still reads the files the second removed, on Unix.)
	SpillDir string
	// MaxBytes bounds the estimated size of the events held in memory:
	// past it they are sorted into a run file. 0 means no bound; nothing is
	// written and SpillDir is not used.
	MaxBytes int64
	// MaxRuns bounds the run files open at once; past it the smaller runs
	// are merged into one. 0 means DefaultMaxRuns.
	MaxRuns int
	// ReadBuffer is the size of each run's read buffer; 0 means 16 KiB.
	ReadBuffer int
}

// DefaultMaxRuns is Options.MaxRuns when unset: with 16 KiB read buffers
// the runs take 256 KiB of memory besides MaxBytes.
const DefaultMaxRuns = 16

const (
	defaultReadBuffer = 16 << 10
	writeBuffer       = 256 << 10
	// blockLen is how many events of a run share one recorded minimum
	// offset: MinOffset stays within a block of the truth for 8 bytes per
	// 1024 spilled events.
	blockLen             = 1024
	runPrefix, runSuffix = "run-", ".reorder"
	// maxRecord bounds a record's length when reading, against corruption:
	// an event's strings come from one webhook payload.
	maxRecord = 1 << 24
)

// Validate reports every problem with o.
func (o Options) Validate() error {
	var errs []error
	if o.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("max bytes %d is negative", o.MaxBytes))
	}
	if o.MaxBytes > 0 && o.SpillDir == "" {
		errs = append(errs, errors.New("a memory bound needs a spill directory"))
	}
	if o.MaxRuns != 0 && o.MaxRuns < 2 {
		errs = append(errs, fmt.Errorf("max runs %d: need at least 2 to merge", o.MaxRuns))
	}
	if o.ReadBuffer < 0 {
		errs = append(errs, fmt.Errorf("read buffer %d is negative", o.ReadBuffer))
	}
	return errors.Join(errs...)
}

// NewWithOptions returns an empty buffer allowing lateness seconds of
// disorder whose events in memory stay under o.MaxBytes. It prepares
// o.SpillDir (creates it, removes stale run files, checks it can write
// there) and reports what went wrong. Close the buffer to remove its files.
func NewWithOptions(lateness int64, o Options) (*Buffer, error) {
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("reorder options: %w", err)
	}
	b := New(lateness)
	if o.MaxBytes == 0 {
		return b, nil
	}
	if err := os.MkdirAll(o.SpillDir, 0o700); err != nil {
		return nil, fmt.Errorf("spill directory: %w", err)
	}
	if err := removeRuns(o.SpillDir); err != nil {
		return nil, fmt.Errorf("remove stale run files: %w", err)
	}
	probe, err := os.CreateTemp(o.SpillDir, runPrefix+"probe-*"+runSuffix)
	if err != nil {
		return nil, fmt.Errorf("spill directory: %w", err)
	}
	if err := errors.Join(probe.Close(), os.Remove(probe.Name())); err != nil {
		return nil, fmt.Errorf("spill directory: %w", err)
	}
	b.maxBytes = o.MaxBytes
	b.sp = &spiller{dir: o.SpillDir, maxRuns: o.MaxRuns, readBuffer: o.ReadBuffer, failedMin: -1,
		token: rand.Uint32()}
	if b.sp.maxRuns == 0 {
		b.sp.maxRuns = DefaultMaxRuns
	}
	if b.sp.readBuffer == 0 {
		b.sp.readBuffer = defaultReadBuffer
	}
	return b, nil
}

// removeRuns removes the run files in dir.
func removeRuns(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if name := e.Name(); e.Type().IsRegular() && strings.HasPrefix(name, runPrefix) && strings.HasSuffix(name, runSuffix) {
			errs = append(errs, remove(filepath.Join(dir, name)))
		}
	}
	return errors.Join(errs...)
}

// Stats are a buffer's figures, for metrics.
type Stats struct {
	MemoryEvents  int   // events held in memory
	MemoryBytes   int64 // their estimated size
	SpilledEvents int64 // events in run files, not yet released
	SpilledBytes  int64 // size of the run files on disk
	Runs          int   // run files
	Spills        int64 // runs written from memory, ever
	Merges        int64 // merges of runs, ever
	WrittenBytes  int64 // bytes written to run files, ever
}

// Stats returns the buffer's figures.
func (b *Buffer) Stats() Stats {
	st := Stats{MemoryEvents: b.n, MemoryBytes: b.mem}
	if s := b.sp; s != nil {
		st.SpilledEvents, st.Runs = s.events, len(s.runs)
		st.Spills, st.Merges, st.WrittenBytes = s.spills, s.merges, s.written
		for _, r := range s.runs {
			st.SpilledBytes += r.size
		}
	}
	return st
}

// Err returns the disk error that failed the buffer, or nil. Check it
// after each batch of Add and after Release.
//
// A failed buffer holds no events and releases nothing: Released stays
// where it was and MinOffset at or below the offset of every event it held
// or was given since, so nothing it dropped is skipped by a replay from
// MinOffset. The caller must stop using it, not checkpoint what Release
// passed to fn since its last checkpoint, and replay its input from that
// checkpoint into a new buffer.
func (b *Buffer) Err() error {
	if b.sp == nil {
		return nil
	}
	return b.sp.err
}

// errClosed fails a closed buffer.
var errClosed = errors.New("reorder buffer closed")

// Close removes the buffer's run files and drops its events. The buffer
// must not be used after.
func (b *Buffer) Close() error {
	if b.sp == nil || b.failed {
		return nil
	}
	minOffset, n := b.MinOffset(), b.Len()
	var errs []error
	for _, r := range b.sp.runs {
		errs = append(errs, b.sp.drop(r))
	}
	b.sp.runs = b.sp.runs[:0]
	b.fail(errClosed, minOffset, n)
	return errors.Join(errs...)
}

// spiller is a bounded buffer's disk side.
type spiller struct {
	dir        string
	maxRuns    int
	readBuffer int
	runs       []*run // a min-heap by head in release order
	events     int64  // events in runs, heads included
	seq        int    // number of the last run file
	token      uint32 // in the file names: two buffers in one directory never share a file

	w       *bufio.Writer
	enc     []byte          // one encoded event
	scratch []byte          // a record longer than a read buffer
	readers []*bufio.Reader // of drained runs, for reuse

	err       error
	failedMin int64 // MinOffset once failed
	failedLen int   // Len once failed

	spills, merges, written int64
}

// run is one sorted run file being read back.
type run struct {
	f    *os.File
	r    *bufio.Reader
	head Item  // the next event to release
	n    int64 // events written
	read int64 // events read, head included
	size int64 // file size
	// blockMin[i] is the lowest offset in blocks i and after of blockLen
	// events each.
	blockMin []int64
}

// left is how many of the run's events are not released, head included.
func (r *run) left() int64 { return r.n - r.read + 1 }

// minOffset is at or below the lowest offset of the events left.
func (r *run) minOffset() int64 { return r.blockMin[(r.read-1)/blockLen] }

func runBefore(x, y *run) bool {
	return before(&x.head.Event, x.head.Offset, &y.head.Event, y.head.Offset)
}

func runUp(h []*run, j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !runBefore(h[j], h[i]) {
			break
		}
		h[i], h[j] = h[j], h[i]
		j = i
	}
}

func runDown(h []*run, i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		j := l
		if r := l + 1; r < len(h) && runBefore(h[r], h[l]) {
			j = r
		}
		if !runBefore(h[j], h[i]) {
			break
		}
		h[i], h[j] = h[j], h[i]
		i = j
	}
}

// step moves the first run of heap h to its next event, and takes it out
// of h if it has none left, returning it as drained.
func (s *spiller) step(h []*run) (_ []*run, drained *run, err error) {
	r := h[0]
	more, err := s.advance(r)
	if err != nil {
		return h, nil, err
	}
	if more {
		runDown(h, 0)
		return h, nil, nil
	}
	last := len(h) - 1
	h[0], h[last] = h[last], nil
	h = h[:last]
	if last > 0 {
		runDown(h, 0)
	}
	return h, r, nil
}

// spillMemory writes the events in memory to a new run in release order,
// and merges runs if there are too many.
func (b *Buffer) spillMemory() {
	s := b.sp
	minOffset, n := b.MinOffset(), b.Len()
	// The buckets in key order, each sorted: the memory is cleared after.
	r, err := s.writeRun(func(put func(enc []byte, offset int64)) error {
		b.eachInOrder(put)
		return nil
	})
	if err != nil {
		b.fail(fmt.Errorf("spill %d events: %w", n-int(s.events), err), minOffset, n)
		return
	}
	s.spills++
	b.clearMemory()
	s.runs = append(s.runs, r)
	runUp(s.runs, len(s.runs)-1)
	if len(s.runs) > s.maxRuns {
		if err := s.compact(); err != nil {
			b.fail(err, minOffset, n)
		}
	}
}

// compact merges the smaller runs into one, leaving half of MaxRuns: each
// merge multiplies the smallest run size by about MaxRuns/2, so an event
// is rewritten a logarithmic number of times.
func (s *spiller) compact() error {
	bySize := append([]*run(nil), s.runs...)
	// Insertion sort by events left: MaxRuns is small.
	for i := 1; i < len(bySize); i++ {
		for j := i; j > 0 && bySize[j].left() < bySize[j-1].left(); j-- {
			bySize[j], bySize[j-1] = bySize[j-1], bySize[j]
		}
	}
	k := len(s.runs) - s.maxRuns/2
	merging := bySize[:k:k]
	var moved int64
	for _, r := range merging {
		moved += r.left()
	}
	h := append([]*run(nil), merging...)
	for i := len(h)/2 - 1; i >= 0; i-- {
		runDown(h, i)
	}
	out, err := s.writeRun(func(put func(enc []byte, offset int64)) error {
		for len(h) > 0 {
			s.enc = webhook.AppendEvent(s.enc[:0], &h[0].head.Event)
			put(s.enc, h[0].head.Offset)
			var err error
			if h, _, err = s.step(h); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if out != nil {
			s.events -= out.left()
			err = errors.Join(err, s.drop(out))
		}
		return fmt.Errorf("merge %d runs: %w", k, err)
	}
	s.merges++
	s.events -= moved
	s.runs = append(s.runs[:0], bySize[k:]...)
	s.runs = append(s.runs, out)
	for i := len(s.runs)/2 - 1; i >= 0; i-- {
		runDown(s.runs, i)
	}
	var errs []error
	for _, r := range merging {
		errs = append(errs, s.drop(r))
	}
	return errors.Join(errs...)
}

// writeRun writes the events each puts (encoded by webhook.AppendEvent,
// with their offsets), in the order it puts them, to a new run file, and
// reads the first back as its head. The run file is removed on error (each's
// too).
//
// A record is the event's encoding length (uvarint), its offset (varint)
// and webhook.AppendEvent's encoding.
func (s *spiller) writeRun(each func(put func(enc []byte, offset int64)) error) (_ *run, err error) {
	s.seq++
	f, err := os.OpenFile(filepath.Join(s.dir, fmt.Sprintf("%s%08x-%06d%s", runPrefix, s.token, s.seq, runSuffix)),
		os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, f.Close(), remove(f.Name()))
		}
	}()
	if s.w == nil {
		s.w = bufio.NewWriterSize(f, writeBuffer)
	} else {
		s.w.Reset(f)
	}
	r := &run{f: f}
	var hdr [2 * binary.MaxVarintLen64]byte
	blockMin := int64(math.MaxInt64)
	if err := each(func(enc []byte, offset int64) {
		h := binary.AppendUvarint(hdr[:0], uint64(len(enc)))
		h = binary.AppendVarint(h, offset)
		s.w.Write(h) // errors stick to the writer: Flush reports them
		s.w.Write(enc)
		r.size += int64(len(h) + len(enc))
		blockMin = min(blockMin, offset)
		if r.n++; r.n%blockLen == 0 {
			r.blockMin = append(r.blockMin, blockMin)
			blockMin = math.MaxInt64
		}
	}); err != nil {
		s.w.Reset(nil)
		return nil, err
	}
	if r.n%blockLen != 0 {
		r.blockMin = append(r.blockMin, blockMin)
	}
	err = s.w.Flush()
	s.w.Reset(nil)
	if err != nil {
		return nil, err
	}
	if r.n == 0 {
		return nil, errors.New("empty run")
	}
	for i := len(r.blockMin) - 2; i >= 0; i-- {
		r.blockMin[i] = min(r.blockMin[i], r.blockMin[i+1])
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if n := len(s.readers); n > 0 {
		r.r = s.readers[n-1]
		s.readers = s.readers[:n-1]
		r.r.Reset(f)
	} else {
		r.r = bufio.NewReaderSize(f, s.readBuffer)
	}
	if _, err := s.advance(r); err != nil {
		return nil, err
	}
	s.events += r.n
	s.written += r.size
	return r, nil
}

// advance reads the run's next event into its head; false at the end.
func (s *spiller) advance(r *run) (bool, error) {
	if r.read == r.n {
		return false, nil
	}
	size, err := binary.ReadUvarint(r.r)
	if err != nil {
		return false, readError(r, err)
	}
	offset, err := binary.ReadVarint(r.r)
	if err != nil {
		return false, readError(r, err)
	}
	if size > maxRecord {
		return false, fmt.Errorf("read %s: record of %d bytes", r.f.Name(), size)
	}
	peeked := int(size) <= r.r.Size()
	var rec []byte
	if peeked {
		rec, err = r.r.Peek(int(size))
	} else {
		if cap(s.scratch) < int(size) {
			s.scratch = make([]byte, size)
		}
		rec = s.scratch[:size]
		_, err = io.ReadFull(r.r, rec)
	}
	if err != nil {
		return false, readError(r, err)
	}
	if err := webhook.ReadEvent(rec, &r.head.Event); err != nil {
		return false, fmt.Errorf("read %s: %w", r.f.Name(), err)
	}
	if peeked {
		r.r.Discard(len(rec))
	}
	r.head.Offset = offset
	r.read++
	return true, nil
}

func readError(r *run, err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // the run holds r.n events
	}
	return fmt.Errorf("read %s: %w", r.f.Name(), err)
}

// drop closes and removes a run's file and keeps its read buffer.
func (s *spiller) drop(r *run) error {
	r.r.Reset(nil)
	s.readers = append(s.readers, r.r)
	r.head = Item{}
	return errors.Join(r.f.Close(), remove(r.f.Name()))
}

// remove removes a run file unless it is gone already: another buffer
// given the same directory removes it as stale, while this one can still
// read it (an open file outlives its name).
func remove(name string) error {
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// releaseMerged is Release with runs: it merges the heap with the runs'
// heads. It returns false if reading a run failed the buffer.
func (b *Buffer) releaseMerged(upTo int64, fn func(it *Item)) bool {
	s := b.sp
	for {
		var r *run
		if len(s.runs) > 0 && s.runs[0].head.Event.Time <= upTo {
			r = s.runs[0]
		}
		if e := b.peek(); e != nil && e.time <= upTo &&
			(r == nil || !before(&r.head.Event, r.head.Offset, b.frontView(e), e.offset)) {
			fn(b.decode(e))
			b.take()
			continue
		}
		if r == nil {
			return true
		}
		fn(&r.head)
		s.events--
		var drained *run
		var err error
		if s.runs, drained, err = s.step(s.runs); err == nil && drained != nil {
			err = s.drop(drained)
		}
		if err != nil {
			b.fail(err, b.MinOffset(), b.Len())
			return false
		}
	}
}

// clearMemory drops the events in memory, keeping the chunks for reuse.
func (b *Buffer) clearMemory() {
	b.dropEntries()
	b.resetOffsets()
	b.mem = 0
}

// fail records err, and the MinOffset and Len the buffer had, and drops
// every event: see Err.
func (b *Buffer) fail(err error, minOffset int64, n int) {
	s := b.sp
	for _, r := range s.runs {
		err = errors.Join(err, s.drop(r))
	}
	s.runs, s.events = s.runs[:0], 0
	s.err, s.failedMin, s.failedLen = err, minOffset, n
	b.failed = true
	b.clearMemory()
}

// lose counts an event a failed buffer was given.
func (s *spiller) lose(offset int64) {
	s.failedLen++
	if s.failedMin < 0 || offset < s.failedMin {
		s.failedMin = offset
	}
}
