// Package wire is the format of the internal units topic between the window
// and the account stages: billing units, each stamped with the window
// partition that emitted it and its sequence number there, and watermark
// control records.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/segmentio/kafka-go"

	"github.com/wameter/wameter/pkg/billing"
	"github.com/wameter/wameter/pkg/stream"
)

const version = 1

const (
	kindUnit      = 'U'
	kindWatermark = 'W'
)

// Idle is the watermark of a window partition that has nothing buffered and
// has been quiet for the idle flush interval: the account stage does not
// wait for it.
const Idle = math.MaxInt64

// Record is one decoded record of the units topic.
type Record struct {
	// Source is the window partition that wrote it.
	Source int32
	// IsWatermark: the record is a control record; Watermark is set.
	IsWatermark bool
	Watermark   int64
	// Seq numbers the units of one source, strictly increasing and the
	// same when a source replays after a restart.
	Seq  uint64
	Unit billing.Unit
}

// AppendUnit appends a unit record.
func AppendUnit(dst []byte, src int32, seq uint64, u *billing.Unit) []byte {
	dst = append(dst, version, kindUnit)
	dst = binary.AppendUvarint(dst, uint64(src))
	dst = binary.AppendUvarint(dst, seq)
	dst = binary.AppendUvarint(dst, u.WABA)
	dst = binary.AppendUvarint(dst, u.PhoneNumberID)
	dst = binary.AppendUvarint(dst, u.Customer)
	dst = appendString(dst, u.Market)
	dst = append(dst, byte(u.Category), byte(u.Model), byte(u.RuleSet), byte(u.PricingType), byte(u.BillingUnit), byte(u.ConversationCategory))
	dst = binary.AppendVarint(dst, u.ChargedAt)
	dst = binary.AppendVarint(dst, u.ConversationOpenedAt)
	dst = appendString(dst, u.MessageID)
	dst = appendString(dst, u.MetaConversationID)
	dst = appendString(dst, u.MetaCategory)
	dst = appendString(dst, u.MetaPricingModel)
	return dst
}

// AppendWatermark appends a control record: source has released every
// event up to and including watermark (or is Idle).
func AppendWatermark(dst []byte, src int32, watermark int64) []byte {
	dst = append(dst, version, kindWatermark)
	dst = binary.AppendUvarint(dst, uint64(src))
	return binary.AppendVarint(dst, watermark)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

var errTruncated = errors.New("units record truncated")

// Read decodes one record into r. It never panics on garbage.
func Read(b []byte, r *Record) error {
	if len(b) < 2 {
		return errTruncated
	}
	if b[0] != version {
		return fmt.Errorf("units record version %d: unsupported", b[0])
	}
	kind := b[1]
	d := decoder{b: b[2:]}
	*r = Record{}
	src := d.uvarint()
	if src > math.MaxInt32 {
		return fmt.Errorf("units record source %d out of range", src)
	}
	r.Source = int32(src)
	switch kind {
	case kindWatermark:
		r.IsWatermark = true
		r.Watermark = d.varint()
	case kindUnit:
		r.Seq = d.uvarint()
		u := &r.Unit
		u.WABA = d.uvarint()
		u.PhoneNumberID = d.uvarint()
		u.Customer = d.uvarint()
		u.Market = d.str()
		u.Category = billing.Category(d.byte())
		u.Model = billing.Model(d.byte())
		u.RuleSet = billing.RuleSet(d.byte())
		u.PricingType = billing.PricingType(d.byte())
		u.BillingUnit = billing.BillingUnit(d.byte())
		u.ConversationCategory = billing.Category(d.byte())
		u.ChargedAt = d.varint()
		u.ConversationOpenedAt = d.varint()
		u.MessageID = d.str()
		u.MetaConversationID = d.str()
		u.MetaCategory = d.str()
		u.MetaPricingModel = d.str()
	default:
		return fmt.Errorf("units record kind %q: unknown", kind)
	}
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("units record has %d trailing bytes", len(d.b))
	}
	return nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errTruncated
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) == 0 {
		d.err = errTruncated
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errTruncated
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// Source marks are the control records normalize writes to every partition
// of the events topic: "I have read partition Partition of Topic up to
// records of event time Mark, and wrote their events before this record"
// (or Idle: the source partition has been quiet at its end). The window's
// watermark follows the slowest source, so a replay that reads some input
// partitions faster than others makes nothing late.
//
// Their first byte is sourceMarkFormat, which no event encoding
// (webhook.AppendEvent) starts with.
const sourceMarkFormat = 0xF5

// SourceMark is a decoded source mark.
type SourceMark struct {
	Topic     string
	Partition int32
	// Mark is the highest event time read from the source so far.
	Mark int64
	// Idle: the source had nothing more to read for the idle flush
	// interval; it does not hold the watermark until it has records again.
	Idle bool
}

// IsSourceMark reports whether an events topic value is a source mark.
func IsSourceMark(b []byte) bool { return len(b) > 0 && b[0] == sourceMarkFormat }

// AppendSourceMark appends a source mark.
func AppendSourceMark(dst []byte, m *SourceMark) []byte {
	var flags byte
	if m.Idle {
		flags |= 1
	}
	dst = append(dst, sourceMarkFormat, version, flags)
	dst = binary.AppendUvarint(dst, uint64(m.Partition))
	dst = binary.AppendVarint(dst, m.Mark)
	return appendString(dst, m.Topic)
}

// ReadSourceMark decodes a source mark. It never panics on garbage.
func ReadSourceMark(b []byte, m *SourceMark) error {
	if len(b) < 3 || b[0] != sourceMarkFormat {
		return errors.New("not a source mark")
	}
	if b[1] != version {
		return fmt.Errorf("source mark version %d: unsupported", b[1])
	}
	if b[2] > 1 {
		return fmt.Errorf("source mark flags %#x: unknown", b[2])
	}
	d := decoder{b: b[3:]}
	*m = SourceMark{Idle: b[2]&1 != 0}
	p := d.uvarint()
	if p > math.MaxInt32 {
		return fmt.Errorf("source mark partition %d out of range", p)
	}
	m.Partition = int32(p)
	m.Mark = d.varint()
	m.Topic = d.str()
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("source mark has %d trailing bytes", len(d.b))
	}
	return nil
}

// Packed records: normalize writes the events of one batch bound for one
// events partition, the window the units of one flush bound for one units
// partition, and the window and account stages the rows of one flush bound
// for one rows partition, in records of up to a few KiB each, not one
// record per event, unit or row. A record costs the producer, the broker and the consumer
// about as much as its bytes (varints, headers, a message per record, a
// channel send in the consumer): for events of ~60 bytes, per-record costs
// were most of the events topic's share of the pipeline's CPU.
//
// A packed record is packedFormat, then for each packed record its length
// (uvarint) and its encoding (webhook.AppendEvent, AppendUnit,
// sink.AppendChargeRow...). No event, units-topic or rows-topic encoding
// starts with packedFormat, so the consumers read packed records and single
// records (an older writer) alike.
const packedFormat = 0xF6

// PackTarget is the size a packed record is closed at: large enough that
// per-record costs are small against its contents, small enough that a
// consumer's queue of records stays small.
const PackTarget = 4 << 10

// IsPacked reports whether a topic value is a packed record.
func IsPacked(b []byte) bool { return len(b) > 0 && b[0] == packedFormat }

// BeginPacked starts a packed record in dst.
func BeginPacked(dst []byte) []byte { return append(dst, packedFormat) }

// AppendPacked appends one encoded record to a packed record started with
// BeginPacked.
func AppendPacked(dst, event []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(event)))
	return append(dst, event...)
}

// SplitPacked appends the encoded records of a packed record to dst (slices
// of b). A malformed record (truncated, an empty part, not packed) is an
// error and appends nothing: it is refused whole. The parts themselves are
// not decoded.
func SplitPacked(b []byte, dst [][]byte) ([][]byte, error) {
	n := len(dst)
	dst, err := splitPacked(b, dst)
	for i := n; i < len(dst); i++ {
		dst[i] = dst[i][:len(dst[i]):len(dst[i])] // an append to a part must not overwrite the next
	}
	return dst, err
}

// SplitPackedString is SplitPacked of a string: the parts are substrings of
// s (a consumer that decodes strings from them copies the record once).
func SplitPackedString(s string, dst []string) ([]string, error) {
	return splitPacked(s, dst)
}

func splitPacked[T ~string | ~[]byte](b T, dst []T) ([]T, error) {
	if len(b) == 0 || b[0] != packedFormat {
		return dst, errors.New("not a packed record")
	}
	n := len(dst)
	for rest := b[1:]; len(rest) > 0; {
		l, w := uvarint(rest)
		if w <= 0 || l == 0 || l > uint64(len(rest)-w) {
			return dst[:n], fmt.Errorf("packed record: bad length at byte %d of %d", len(b)-len(rest), len(b))
		}
		dst = append(dst, rest[w:w+int(l)])
		rest = rest[w+int(l):]
	}
	if len(dst) == n {
		return dst, errors.New("packed record: no parts")
	}
	return dst, nil
}

// uvarint is binary.Uvarint of a string or byte slice.
func uvarint[T ~string | ~[]byte](b T) (uint64, int) {
	var x uint64
	var s uint
	for i := 0; i < len(b) && i < binary.MaxVarintLen64; i++ {
		c := b[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				return 0, -(i + 1) // overflow
			}
			return x | uint64(c)<<s, i + 1
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	return 0, 0
}

// Packer packs encoded records for the partitions of one topic, each into
// the partition a record with its key would get (stream.Balancer: the
// hash of the key), in order, in packed records closed at PackTarget.
type Packer struct {
	topic      string
	balancer   stream.Balancer
	partitions []int
	open       [][]byte
	out        []kafka.Message
}

// NewPacker returns a Packer for a topic of the given partition count.
func NewPacker(topic string, partitions int) *Packer {
	ps := make([]int, partitions)
	for i := range ps {
		ps[i] = i
	}
	return &Packer{topic: topic, partitions: ps, open: make([][]byte, partitions)}
}

// Add packs encoded (copied) for the partition of key.
func (p *Packer) Add(key, encoded []byte) {
	q := p.balancer.Balance(kafka.Message{Key: key}, p.partitions...)
	if p.open[q] == nil {
		p.open[q] = BeginPacked(make([]byte, 0, PackTarget+len(encoded)+binary.MaxVarintLen64))
	}
	p.open[q] = AppendPacked(p.open[q], encoded)
	if len(p.open[q]) >= PackTarget {
		p.out = append(p.out, stream.WithPartition(kafka.Message{Topic: p.topic, Value: p.open[q]}, q))
		p.open[q] = nil
	}
}

// Take closes the open packed records and returns every packed record
// since the last Take (each partition's in order); the Packer starts
// afresh.
func (p *Packer) Take() []kafka.Message {
	for q, open := range p.open {
		if open != nil {
			p.out = append(p.out, stream.WithPartition(kafka.Message{Topic: p.topic, Value: open}, q))
			p.open[q] = nil
		}
	}
	out := p.out
	p.out = nil
	return out
}
