package keystate

// ref locates one encoded state in an arena, packed in a word so that the
// cold index holds no pointers (the garbage collector never scans it):
//
//	bit  63:    0 (the index marks a hot key with it, see Store)
//	bits 40-62: chunk index + 1 (0: no ref)
//	bits 20-39: offset in the chunk
//	bits  0-19: length; 0 means the whole chunk (a state too large to share one)
type ref uint64

const (
	chunkSize = 1 << 20
	// ownChunkOver: a state larger than this gets a chunk of its own, so a
	// flooded key (thousands of remembered messages) neither wastes the
	// tail of a shared chunk nor needs more than 20 bits of length.
	ownChunkOver = chunkSize / 8
	maxChunks    = 1<<23 - 1
)

func (r ref) chunk() int  { return int(r>>40) - 1 }
func (r ref) offset() int { return int(r >> 20 & (1<<20 - 1)) }
func (r ref) length() int { return int(r & (1<<20 - 1)) }

// arena appends encoded states into large chunks. Bytes it has handed out
// are never written again: compaction copies the live ones into a fresh
// arena and drops the old chunks, so a slice from bytes stays valid (and
// unchanged) for as long as anyone holds it.
type arena struct {
	chunks [][]byte
	cur    int   // index of the chunk appended to, -1 before the first
	used   int64 // bytes of every state appended (live or not)
	alloc  int64 // capacity of every chunk
}

func newArena() arena { return arena{cur: -1} }

// append copies b (not empty) into the arena and returns where it is.
func (a *arena) append(b []byte) ref {
	a.used += int64(len(b))
	if len(b) > ownChunkOver {
		c := make([]byte, len(b))
		copy(c, b)
		a.chunks = append(a.chunks, c)
		a.alloc += int64(len(c))
		return a.ref(len(a.chunks)-1, 0, 0)
	}
	if a.cur < 0 || cap(a.chunks[a.cur])-len(a.chunks[a.cur]) < len(b) {
		a.chunks = append(a.chunks, make([]byte, 0, chunkSize))
		a.alloc += chunkSize
		a.cur = len(a.chunks) - 1
	}
	c := a.chunks[a.cur]
	off := len(c)
	a.chunks[a.cur] = append(c, b...)
	return a.ref(a.cur, off, len(b))
}

func (a *arena) ref(chunk, off, n int) ref {
	if chunk >= maxChunks {
		// 8 Mi chunks of 1 MiB: 8 TiB of state in one partition.
		panic("keystate: arena full")
	}
	return ref(uint64(chunk+1)<<40 | uint64(off)<<20 | uint64(n))
}

// bytes returns the state r locates, with its capacity cut to its length.
func (a *arena) bytes(r ref) []byte {
	c := a.chunks[r.chunk()]
	if r.length() == 0 {
		return c[:len(c):len(c)]
	}
	off, n := r.offset(), r.length()
	return c[off : off+n : off+n]
}

// size returns the length of the state r locates.
func (a *arena) size(r ref) int {
	if r.length() == 0 {
		return len(a.chunks[r.chunk()])
	}
	return r.length()
}
