package billing

import (
	"cmp"
	"slices"
)

// Key identifies a per-key state: business number and customer (spec 2).
type Key struct {
	PhoneNumberID uint64
	Customer      uint64
}

// KeyOf returns the key of an event.
func KeyOf(ev *Event) Key { return Key{ev.PhoneNumberID, ev.Customer} }

// Result is what Derive returns.
type Result struct {
	Conversations []Conversation
	Charges       []Unit // priced units, in UnitLess order
}

// Derive runs a finite set of events through the engine and the ledger in
// memory, in the order the spec prescribes whatever their order in events
// (which it sorts in place). It is the reference the streaming pipeline must
// agree with, and what the CLI uses.
func Derive(events []Event, eng *Engine, led *Ledger) Result {
	slices.SortStableFunc(events, func(a, b Event) int {
		if c := cmp.Compare(a.PhoneNumberID, b.PhoneNumberID); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Customer, b.Customer); c != 0 {
			return c
		}
		switch {
		case Less(&a, &b):
			return -1
		case Less(&b, &a):
			return 1
		}
		return 0
	})
	var out Output
	var st *State
	var key Key
	for i := range events {
		ev := &events[i]
		if k := KeyOf(ev); st == nil || k != key {
			st, key = &State{}, k
		}
		eng.Apply(st, ev, &out)
	}
	slices.SortStableFunc(out.Units, func(a, b Unit) int {
		switch {
		case UnitLess(&a, &b):
			return -1
		case UnitLess(&b, &a):
			return 1
		}
		return 0
	})
	for i := range out.Units {
		led.Price(&out.Units[i])
	}
	slices.SortStableFunc(out.Conversations, func(a, b Conversation) int {
		if c := cmp.Compare(a.OpenedAt, b.OpenedAt); c != 0 {
			return c
		}
		if c := cmp.Compare(a.PhoneNumberID, b.PhoneNumberID); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Customer, b.Customer); c != 0 {
			return c
		}
		return cmp.Compare(a.Category, b.Category)
	})
	return Result{Conversations: out.Conversations, Charges: out.Units}
}
