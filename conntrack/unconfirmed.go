package conntrack

import (
	"encoding/binary"
	"fmt"
)

// Unconfirmed entries (docs/defense.md §7). A connection that has not proven a client
// — TCP before the client's ACK completing the handshake moves it to ESTABLISHED, a
// UDP flow before the client's second datagram — is on its shard's unconfirmed list: an intrusive FIFO
// through entry.uprev/unext, oldest at uhead. These entries live in their own budget:
// UnconfirmedMax in total and UnconfirmedPerService per virtual address, port and
// protocol. A new connection that finds the budget (or the table) full evicts the
// oldest unconfirmed entry of its own shard, in O(1) under the lock it already holds;
// confirmed entries are never evicted. With nothing to evict it is refused (Full,
// counted). Templates are not on the lists: a template whose connection is evicted
// goes with it unless it was ASSURED (the forced-delete rule of §6.4).
//
// The shards fill evenly under a flood (the flow hash is keyed), so "oldest of the
// shard" is within a shard's share of the oldest overall. The budget counters are
// checked before the entry is made, so concurrent inserters may exceed a cap by at
// most one entry each.

// svcSlots is the number of per-service unconfirmed counters. A service is its
// (protocol, virtual address, port) hashed to a slot; two services sharing a slot
// share their cap, which makes the cap stricter, never looser.
const svcSlots = 1024

// svcSlot returns the per-service counter of (proto, vaddr, vport).
func svcSlot(proto uint8, vaddr *[16]byte, vport uint16) uint32 {
	h := xxLane(uint64(proto)<<16|uint64(vport), binary.LittleEndian.Uint64(vaddr[0:8]))
	h = xxLane(h, binary.LittleEndian.Uint64(vaddr[8:16]))
	return uint32(h >> (64 - 10))
}

// DefaultUnconfirmed returns the default unconfirmed budget for a table of max
// entries: half of it in total, a quarter per service (at least 1 each).
func DefaultUnconfirmed(n int) (total, perService int) {
	return max(1, n/2), max(1, n/4)
}

// UnconfirmedOff as Settings.UnconfirmedMax turns the budget off: a new connection
// at Max is refused, as IPVS refuses it, and nothing is evicted.
const UnconfirmedOff = -1

// unconfLimits resolves Settings' unconfirmed caps (0 = default) and checks them;
// total is 0 when the budget is off.
func unconfLimits(s *Settings) (total, perService int64, err error) {
	dt, dp := DefaultUnconfirmed(s.Max)
	t, p := s.UnconfirmedMax, s.UnconfirmedPerService
	if t == UnconfirmedOff && p == 0 {
		return 0, 0, nil
	}
	if t < 0 || p < 0 {
		return 0, 0, fmt.Errorf("%w: negative unconfirmed cap (%d, %d)", ErrConfig, t, p)
	}
	if t == 0 {
		t = dt
	}
	if p == 0 {
		p = min(dp, t)
	}
	if t > s.Max {
		return 0, 0, fmt.Errorf("%w: UnconfirmedMax %d exceeds Max %d", ErrConfig, t, s.Max)
	}
	if p > t {
		return 0, 0, fmt.Errorf("%w: UnconfirmedPerService %d exceeds UnconfirmedMax %d", ErrConfig, p, t)
	}
	return int64(t), int64(p), nil
}

// UnconfStats are the unconfirmed budget's counters.
type UnconfStats struct {
	Unconfirmed int    // live unconfirmed connections
	Max         int    // total cap in force, 0 = the budget is off
	PerService  int    // per-service cap in force
	Evicted     uint64 // unconfirmed connections evicted to make room
	EvictedTpl  uint64 // templates dropped with the connection evicted
	Refused     uint64 // new connections refused: budget full, nothing to evict
	SlabRefused uint64 // new entries refused: their shard's slab at its bound (§9)

	Modes                   // defense modes in force (defense.go)
	AMemThresh       int    // free entries below which automatic modes engage
	DropEntryDropped uint64 // unconfirmed entries drop_entry removed
	DropEntryChanges uint64 // changes of the drop_entry mode (1 <-> 2)
	SecureTCPChanges uint64 // changes of the secure_tcp mode (1 <-> 2)
}

// Unconfirmed returns the unconfirmed budget's counters.
func (t *Table) Unconfirmed() UnconfStats {
	return UnconfStats{
		Unconfirmed: int(t.liveUnconf()),
		Max:         int(t.unconfMax.Load()),
		PerService:  int(t.unconfSvcMax.Load()),
		Evicted:     t.evicted.Load(),
		EvictedTpl:  t.evictedTpl.Load(),
		Refused:     t.unconfRefused.Load(),
		SlabRefused: t.slabRefused.Load(),

		Modes:            t.Modes(),
		AMemThresh:       int(t.amemthresh.Load()),
		DropEntryDropped: t.dropEntryDrops.Load(),
		DropEntryChanges: t.dropEntryChanges.Load(),
		SecureTCPChanges: t.secureTCPChanges.Load(),
	}
}

// pushUnconfLocked puts the new entry i at the tail of s's unconfirmed list and
// counts it in its service's slot, svcSlot of e (which the inserter has computed for
// admitLocked already); the reserve that made room for it counted it in the total
// (Table.live).
//
// Precondition: s.mu is held and e is not on the list.
func (t *Table) pushUnconfLocked(s *shard, i uint32, e *entry, slot uint32) {
	e.flags |= fUnconf
	e.uprev, e.unext = s.utail, 0
	if s.utail != 0 {
		s.at(s.utail).unext = i
	} else {
		s.uhead = i
	}
	s.utail = i
	t.svcUnconf[slot].Add(1)
}

// unlinkUnconfLocked takes e off s's unconfirmed list, if it is on it.
//
// Precondition: s.mu is held.
func (t *Table) unlinkUnconfLocked(s *shard, e *entry) {
	if e.flags&fUnconf == 0 {
		return
	}
	if e.uprev != 0 {
		s.at(e.uprev).unext = e.unext
	} else {
		s.uhead = e.unext
	}
	if e.unext != 0 {
		s.at(e.unext).uprev = e.uprev
	} else {
		s.utail = e.uprev
	}
	e.flags &^= fUnconf
	e.uprev, e.unext = 0, 0
	t.live.Add(minusUnconf)
	t.svcUnconf[svcSlot(e.proto, &e.vaddr, e.vport)].Add(-1)
}

// confirmLocked takes e off the unconfirmed list once a packet in direction dir,
// its transition applied, proves the client: TCP reached ESTABLISHED; UDP got a
// second datagram from the client. A reply does not confirm UDP: a real server
// answers a spoofed source as readily as a real one.
//
// Precondition: s.mu is held; e is not a new entry (its first packet never confirms).
func (t *Table) confirmLocked(s *shard, e *entry, dir Dir) {
	if e.flags&fUnconf == 0 {
		return
	}
	if e.proto == protoTCP {
		if e.state != StateEstablished {
			return
		}
	} else if dir != DirIn {
		return
	}
	t.unlinkUnconfLocked(s, e)
}

// svcProbe bounds how far down its shard's list a new connection whose service is at
// its cap looks for that service's oldest entry.
const svcProbe = 16

// admitLocked makes room for a new unconfirmed connection in shard s, of the service
// whose svcSlot is slot: when the
// total budget, k's service budget or the table itself is full, it evicts the oldest
// unconfirmed entry of s (for a full service budget the oldest of that service among
// the svcProbe oldest of s). It
// reports whether the connection may be made, the evicted entry's controller (for
// finishEvict once the lock is released), and remote: room is needed, s has no
// entry to give and other shards hold unconfirmed entries (see evictRemote).
//
// Precondition: s.mu is held.
func (t *Table) admitLocked(s *shard, slot uint32) (ok bool, ctl Ref, remote bool) {
	slabFull := !t.slabRoomLocked(s)
	um := t.unconfMax.Load()
	if um == 0 {
		if slabFull {
			t.slabRefused.Add(1)
		}
		return !slabFull, 0, false // the budget is off
	}
	// The two live counts from one load of their word: the same instant, which two
	// loads only approach under concurrent inserts.
	live := t.live.Load()
	svcFull := int64(t.svcUnconf[slot].Load()) >= t.unconfSvcMax.Load()
	budgetFull := int64(live>>32) >= um
	if !svcFull && !budgetFull && !slabFull && int64(uint32(live)) < t.max.Load() {
		return true, 0, false
	}
	// The oldest of s; for a full service budget the oldest of that service among
	// the svcProbe oldest of s (services' entries interleave on one list).
	for i, n := s.uhead, 0; i != 0 && n < svcProbe; i, n = s.at(i).unext, n+1 {
		if e := s.at(i); !svcFull || svcSlot(e.proto, &e.vaddr, e.vport) == slot {
			t.evicted.Add(1)
			return true, t.evictLocked(s, i, e), false
		}
	}
	if slabFull {
		// Only an entry of s frees a slot of s.
		t.slabRefused.Add(1)
		return false, 0, false
	}
	if t.liveUnconf() > 0 {
		return false, 0, true
	}
	// Nothing unconfirmed anywhere: the table is full of confirmed entries
	// (reserve refuses, counted as the table's cap).
	return true, 0, false
}

// slabRoomLocked reports whether s may take one more entry: a free slot, or a slab
// below the shard's bound (docs/defense.md §9). The bound is twice the shard's fair
// share of Max (at least four chunks): the keyed flow hash keeps every shard far
// below it, and a flood aimed at one shard cannot make that shard's slab — kept and
// reused after the flood drains, never returned — much larger than its share. So
// the slabs never exceed about twice Max's entries, however floods come and go.
//
// Precondition: s.mu is held.
func (t *Table) slabRoomLocked(s *shard) bool {
	chunk := int64(s.chunkMask + 1)
	if s.free != 0 || int64(s.nalloc) < 4*chunk {
		return true // below the bound whatever Max is: no division
	}
	n := int64(len(t.shards))
	limit := max(2*((t.max.Load()+n-1)/n), 4*chunk)
	return int64(s.nalloc) < limit
}

// evictLocked evicts the unconfirmed entry i and returns its controller.
//
// Precondition: s.mu is held.
func (t *Table) evictLocked(s *shard, i uint32, e *entry) Ref {
	e.timeout = 0 // a forced delete: an unassured template goes with it (§6.4)
	ctl, _ := t.releaseLocked(s, i, e)
	return ctl
}

// evictRemote makes room for a new connection k, of the service whose svcSlot is
// slot, when its own shard si had no unconfirmed entry to give: it takes the other
// shards' locks one at a time, from a rotating start, and evicts the first
// oldest-of-its-shard entry it finds (of k's service when that service is at its
// cap). Each shard costs O(1); it runs only while the budget or the table is full and
// k's shard holds no unconfirmed entry. It reports whether
// it made room (else the refusal is counted).
//
// Precondition: no shard lock is held.
func (t *Table) evictRemote(si int, slot uint32) bool {
	svcFull := int64(t.svcUnconf[slot].Load()) >= t.unconfSvcMax.Load()
	n := len(t.shards)
	start := int(t.evictCursor.Add(1))
	for j := range n {
		sj := (start + j) & (n - 1)
		if sj == si {
			continue
		}
		s := &t.shards[sj]
		s.mu.Lock()
		if i := s.uhead; i != 0 {
			if e := s.at(i); !svcFull || svcSlot(e.proto, &e.vaddr, e.vport) == slot {
				ctl := t.evictLocked(s, i, e)
				s.mu.Unlock()
				t.evicted.Add(1)
				t.finishEvict(ctl)
				return true
			}
		}
		s.mu.Unlock()
	}
	t.unconfRefused.Add(1)
	return false
}

// finishEvict applies an eviction's controller update (n_control--, and the drop of
// an unassured template left controlling nothing) once the shard lock is released.
func (t *Table) finishEvict(ctl Ref) {
	if ctl == 0 {
		return
	}
	ops := [1]ctlOp{{ref: ctl, forced: true}}
	if _, n := t.applyOps(ops[:]); n > 0 {
		t.evictedTpl.Add(uint64(n))
	}
}
