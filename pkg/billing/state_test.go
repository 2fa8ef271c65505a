package billing

import (
	"encoding/binary"
	"math"
	"reflect"
	"testing"
)

// v1State is a state as version 1 wrote it (changelogs before version 2):
// a service window, one open conversation, three remembered messages.
func v1State() []byte {
	b := []byte{1}
	b = binary.AppendUvarint(b, 102938475610)
	for _, v := range []int64{1754352000, 0, 0, 1754350000, 0, 0, 0, 0} {
		b = binary.AppendVarint(b, v)
	}
	b = binary.AppendUvarint(b, 3)
	for i := 0; i < 3; i++ {
		b = binary.LittleEndian.AppendUint64(b, uint64(0x9e3779b97f4a7c15)*uint64(i+1))
		b = binary.AppendVarint(b, 1754300000+int64(i)*600)
		b = binary.AppendVarint(b, 1754300002+int64(i)*600)
		b = append(b, 2, 2)
	}
	return b
}

func TestStateReadsVersion1(t *testing.T) {
	var st State
	if err := st.UnmarshalBinary(v1State()); err != nil {
		t.Fatal(err)
	}
	want := State{WABA: 102938475610, csWindowEnd: 1754352000, open: [5]int64{1754350000}}
	for i := 0; i < 3; i++ {
		want.msgs = append(want.msgs, msgRec{hash: uint64(0x9e3779b97f4a7c15) * uint64(i+1),
			seenAt: 1754300000 + int64(i)*600, deliveredAt: 1754300002 + int64(i)*600, sendKind: 2, pricingKind: 2})
	}
	if !reflect.DeepEqual(st, want) {
		t.Fatalf("decoded %+v, want %+v", st, want)
	}
	// Re-encoded, it is version 2 and much smaller, and means the same.
	b, _ := st.MarshalBinary()
	if b[0] != 2 || len(b) > 60 {
		t.Errorf("version 2 form: version %d, %d bytes (version 1: %d)", b[0], len(b), len(v1State()))
	}
	var again State
	if err := again.UnmarshalBinary(b); err != nil || !reflect.DeepEqual(again, want) {
		t.Errorf("version 2 round trip: %+v, %v", again, err)
	}
}

func TestStateRoundTripEdges(t *testing.T) {
	f := func(st State) {
		t.Helper()
		b, _ := st.MarshalBinary()
		var got State
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("%+v: %v", st, err)
		}
		if len(st.msgs) == 0 {
			st.msgs = nil
		}
		if len(got.msgs) == 0 {
			got.msgs = nil
		}
		if !reflect.DeepEqual(got, st) {
			t.Fatalf("round trip of %+v: %+v", st, got)
		}
	}
	f(State{})
	f(State{WABA: math.MaxUint64})
	f(State{fepUntil: math.MinInt64, open: [5]int64{0, math.MaxInt64, 0, -1, 1}})
	f(State{msgs: []msgRec{{hash: 1, seenAt: math.MaxInt64, deliveredAt: math.MinInt64},
		{hash: math.MaxUint64, seenAt: math.MinInt64, sendKind: 255, pricingKind: 7},
		{seenAt: 5, sendKind: 3, pricingKind: 200}}})
	f(State{csWindowEnd: 1754352000, msgs: []msgRec{{hash: 9, seenAt: 1754300000, deliveredAt: 1754299000, sendKind: KindLegacy, pricingKind: KindAuthenticationIntl}}})
}

// Decoding into a State reuses its message memory: the store decodes cold
// states into recycled States without allocating.
func TestStateUnmarshalReusesMemory(t *testing.T) {
	var st State
	b := v1State()
	st.UnmarshalBinary(b)
	if n := testing.AllocsPerRun(100, func() { st.UnmarshalBinary(b) }); n != 0 {
		t.Errorf("%v allocations per decode into a used State", n)
	}
}

func FuzzStateUnmarshal(f *testing.F) {
	f.Add(v1State())
	var st State
	st.UnmarshalBinary(v1State())
	b, _ := st.MarshalBinary()
	f.Add(b)
	f.Add([]byte{2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var st State
		if st.UnmarshalBinary(b) != nil {
			return
		}
		enc, _ := st.MarshalBinary()
		var again State
		if err := again.UnmarshalBinary(enc); err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		enc2, _ := again.MarshalBinary()
		if string(enc) != string(enc2) {
			t.Fatalf("encoding is not stable: %x then %x", enc, enc2)
		}
	})
}

// BenchmarkStateBinary measures a typical state's round trip through its
// binary form, which the window's state store pays when a cold key
// returns (decode) and at a checkpoint (encode).
func BenchmarkStateBinary(b *testing.B) {
	var st State
	if err := st.UnmarshalBinary(v1State()); err != nil {
		b.Fatal(err)
	}
	enc, _ := st.MarshalBinary()
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := st.UnmarshalBinary(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 128)
		for b.Loop() {
			buf, _ = st.AppendBinary(buf[:0])
		}
	})
}
