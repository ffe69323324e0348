package dataplane

import (
	"hash/maphash"
	"sync/atomic"
)

// A rateTable holds token buckets for keys that are too many to track one by one
// (client prefixes, destinations of ICMP errors) in a fixed array of slots, chosen by a
// keyed hash of the key. It never allocates after newRateTable and is safe for
// concurrent use by every worker: a slot is one atomic word, updated by
// compare-and-swap.
//
// Each slot is a bucket in the form of the generic cell rate algorithm (GCRA, ITU-T
// I.371): it holds the theoretical arrival time (TAT), the time at which the bucket
// is full again. A slot never used holds 0, a bucket full since forever. An event at
// now is allowed when TAT − now ≤ tolerance, and then moves TAT to
// max(TAT, now) + interval. With tolerance = (burst−1)·interval that is a token
// bucket of burst tokens refilled by one per interval, which starts full: burst
// events at once, then one per interval (docs/defense.md §2.1).
//
// Collisions: two keys that hash to the same slot share one bucket. They then get
// together what one key would get, so a key is never allowed more than its limit; a
// key may be allowed less, when another key's traffic in its slot exceeds what the
// bucket refills — with 2^bits slots that takes more than 2^bits times the limit in
// total. The hash is keyed with a random seed made by newRateTable, so a sender
// cannot pick keys that share a victim's slot.
type rateTable struct {
	seed  maphash.Seed
	mask  uint64
	slots []atomic.Int64
}

func newRateTable(bits int) *rateTable {
	return &rateTable{seed: maphash.MakeSeed(), mask: 1<<bits - 1, slots: make([]atomic.Int64, 1<<bits)}
}

// slot returns the bucket of key.
func (t *rateTable) slot(key []byte) *atomic.Int64 {
	return &t.slots[maphash.Bytes(t.seed, key)&t.mask]
}

// gcraAllow takes one event at now out of the bucket in slot, refilled by one event
// per interval, holding burst = tolerance/interval + 1 events; it reports whether the
// event is within the limit. now is the caller's clock (nanoseconds). Workers' clocks
// differ by up to a batch: one that reads an older now than the last event's sees a
// fuller bucket's debt and is allowed less, never more.
func gcraAllow(slot *atomic.Int64, now, interval, tolerance int64) bool {
	for {
		old := slot.Load()
		tat := max(old, now)
		if tat-now > tolerance {
			return false
		}
		if slot.CompareAndSwap(old, tat+interval) {
			return true
		}
	}
}

// gcraReady reports whether the bucket in slot would allow an event at now, without
// taking it.
func gcraReady(slot *atomic.Int64, now, interval, tolerance int64) bool {
	return slot.Load()-now <= tolerance
}

// reset makes every bucket full, for new limits: a bucket's state is only
// meaningful for the interval it was filled with.
func (t *rateTable) reset() {
	for i := range t.slots {
		t.slots[i].Store(0)
	}
}
