package conntrack

import (
	"cmp"
	"slices"
	"sync"
)

// Timers (docs/ipvs-semantics.md §6.4) are per-shard timer wheels of wheelSlots slots of one
// Tick each, driven by Expire. Every entry sits on exactly one timer list of its shard
// (an intrusive doubly linked list through wprev/wnext; wslot names the list):
//
//   - wheel slot T mod wheelSlots: the entry was filed for tick T, with
//     s.cur <= T < s.cur+wheelSlots. Filing is lazy: a packet only moves expires
//     later, and the entry is re-filed when its slot fires and finds it still alive.
//     An entry is filed at the tick ceil(expires/Tick), clamped to the wheel's
//     horizon, so its slot never fires after it is due; when a packet moves expires
//     earlier than the filed tick (a shorter state timeout) the entry moves at once.
//   - listNow: expire_now was called (reuse, nodest); the next Expire processes it.
//   - listHold: due, but controlling others when its slot fired; decided after every
//     other entry due at the same tick (controlled connections first, so a template
//     whose last connection expires at the same tick goes at that tick too).
//   - listPending: filed while a catch-up pass (a jump of the clock by more than the
//     wheel's horizon) was running; filed into the wheel when the pass ends.
//
// Lookups never depend on the wheel: an entry is dead to them as soon as now >=
// expires. The wheel decides when a dead entry is unbound from its dest: at the
// first tick boundary at or after its expiry time, i.e. at most one Tick late.
// Lookups skip dead entries but do not unlink them: removal unbinds the dest and may
// have to update a controlling template in another shard, which a lookup holding one
// shard lock cannot do, and it would make counters depend on which flows see packets.
const (
	wheelSlots  = 1024
	wheelMask   = wheelSlots - 1
	listNow     = wheelSlots
	listHold    = wheelSlots + 1
	listPending = wheelSlots + 2
	numLists    = wheelSlots + 3
	listNone    = 0xffff // on no list (being moved, or free)
)

// sweepChunk bounds the entries handled under one shard lock hold, so Expire never
// holds a shard for long.
const sweepChunk = 64

// expiry is the state of the expiry sweep, guarded by mu. All shards advance through
// the same ticks in order: a tick is done for every shard before the next begins.
type expiry struct {
	mu      sync.Mutex
	cur     int64 // tick being processed; earlier ticks are done
	phase   uint8 // phaseSlot, then phaseHold if an entry was held
	shard   int   // next shard in the current phase
	held    bool  // an entry went to listHold during this tick
	jumping bool  // catch-up pass over every slot (see startJump)
	flush   bool  // catch-up pass done, filing listHold/listPending
	jumpEnd int64 // catch-up: the pass covers ticks up to jumpEnd-1
	jumpTo  int64 // catch-up: the tick the wheel resumes after
	ops     []ctlOp
	// deferred are the controller updates of the entries a wheel slot released,
	// with each entry's expiry time: a slot's list is not in time order, nor are
	// its shards, and a catch-up pass visits slots out of time order, so they are
	// applied once the tick (or the whole pass) is done, in the order the entries
	// expired.
	deferred []deferredOp
}

// deferredOp is a ctlOp held back until its tick or catch-up pass is done.
type deferredOp struct {
	op  ctlOp
	exp int64
}

const (
	phaseSlot = iota
	phaseHold
)

// sweep is one Expire call's budget and tally.
type sweep struct {
	left    int // entries it may still handle; -1 = unlimited
	expired int
}

// floorDiv and ceilDiv divide rounding toward -inf and +inf (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }

// initClock anchors the wheels at the caller's clock on first use: ticks up to
// floor(now/Tick) count as done.
func (t *Table) initClock(now int64) {
	if t.clockSet.Load() {
		return
	}
	x := &t.exp
	x.mu.Lock()
	if !t.clockSet.Load() {
		tk := floorDiv(now, t.tick) + 1
		x.cur = tk
		for i := range t.shards {
			s := &t.shards[i]
			s.mu.Lock()
			s.cur = tk
			s.mu.Unlock()
		}
		t.clockSet.Store(true)
	}
	x.mu.Unlock()
}

// pushLocked puts entry i at the head of list l.
//
// Precondition: s.mu is held and i is on no list.
func (t *Table) pushLocked(s *shard, i uint32, e *entry, l uint16) {
	if l == listNow {
		t.nowQueued.Add(1)
	}
	s.pushList(s.list(l), i, e, l)
}

// pushList puts entry i at the head of list l, whose head is p (s.list(l), found
// once for the read and the write of it), not counting listNow's entries
// (pushLocked does).
//
// Precondition: s.mu is held and i is on no list.
func (s *shard) pushList(p *uint32, i uint32, e *entry, l uint16) {
	h := *p
	e.wslot, e.wprev, e.wnext = l, 0, h
	if h != 0 {
		s.at(h).wprev = i
	}
	*p = i
}

// unfileLocked removes entry i from its timer list.
//
// Precondition: s.mu is held.
func (t *Table) unfileLocked(s *shard, i uint32, e *entry) {
	if e.wslot == listNone {
		return
	}
	if e.wprev != 0 {
		s.at(e.wprev).wnext = e.wnext
	} else {
		*s.list(e.wslot) = e.wnext
	}
	if e.wnext != 0 {
		s.at(e.wnext).wprev = e.wprev
	}
	if e.wslot == listNow {
		t.nowQueued.Add(-1)
	}
	e.wprev, e.wnext, e.wslot = 0, 0, listNone
}

// targetTick is the tick an entry expiring at exp is filed for.
//
// Precondition: s.mu is held.
func (t *Table) targetTick(s *shard, exp int64) int64 {
	// ceil(exp/tick). For exp > 0 it is (exp-1)/tick + 1, by tickDiv's
	// multiplication instead of a division (a few dozen cycles): exp-1 is below
	// 2^63, as div needs. For exp <= 0, Go's division, which truncates toward
	// zero, rounds up.
	var tk int64
	if exp > 0 {
		tk = int64(t.tickDiv.div(uint64(exp-1))) + 1
	} else {
		tk = exp / t.tick
	}
	return min(max(tk, s.cur), s.cur+wheelSlots-1)
}

// fileLocked puts entry i, on no list, on the timer list its expiry calls for.
//
// Precondition: s.mu is held.
func (t *Table) fileLocked(s *shard, i uint32, e *entry) {
	l := uint16(listPending)
	if !s.jumping {
		l = uint16(t.targetTick(s, e.expires) & wheelMask)
	}
	s.pushList(s.list(l), i, e, l) // never listNow: nothing to count
}

// refileEarlierLocked moves entry i to an earlier slot if its expiry moved before the
// tick it is filed for.
//
// Precondition: s.mu is held.
func (t *Table) refileEarlierLocked(s *shard, i uint32, e *entry) {
	if e.wslot >= wheelSlots || s.jumping {
		return // settled by Expire, whatever its time
	}
	filed := s.cur + int64((uint32(e.wslot)-uint32(s.cur))&wheelMask)
	if tk := t.targetTick(s, e.expires); tk < filed {
		t.unfileLocked(s, i, e)
		t.pushLocked(s, i, e, uint16(tk&wheelMask))
	}
}

// Expire advances the expiry clock to now and removes the entries that are due, at
// most budget of them per call (0 = no limit); the rest is resumed by the next call.
// It returns how many entries it removed.
//
// An entry is removed (unlinked, its dest unbound, §6.4) by the first Expire whose now
// reaches the first multiple of Tick at or after its expiry time; entries on the
// expire-now list (connections replaced by rescheduling, or expired for a deleted
// dest) go at the next call whatever its time. A due entry that still controls others
// is re-armed for 60 s instead (and keeps a 60 s timeout, as in the kernel); when a
// controlled entry deleted with timeout 0 leaves its controller controlling nobody, a
// controller that is not an ASSURED template goes too.
//
// Expire handles the entries of one tick in all shards before the next tick, and
// applies the tick's controller updates in the order the entries expired, so it
// follows the kernel's timer order. If the clock jumped beyond the
// wheel's horizon (wheelSlots ticks, e.g. a gap in a replayed capture) it makes one
// pass over every slot instead of stepping through each missed tick, judging every
// entry at now. The one approximation: a template whose last controlled connection
// expired during the gap goes at the end of the gap, where the kernel would keep it
// until the next 60 s re-arm after that connection's expiry (if that is still ahead).
// The budget counts every entry Expire handles (removed or re-filed), bounding the
// work of a call. Time is only what callers pass in: Expire never reads a clock.
//
// Every worker may call Expire (say once per batch): a call made while another
// goroutine is expiring returns 0 at once instead of queueing behind it.
func (t *Table) Expire(now int64, budget int) int {
	t.initClock(now)
	x := &t.exp
	if !x.mu.TryLock() {
		return 0 // another goroutine is expiring; it or a later call does the work
	}
	defer x.mu.Unlock()
	w := sweep{left: -1}
	if budget > 0 {
		w.left = budget
	}
	if t.nowQueued.Load() > 0 {
		for si := range t.shards {
			if !t.runList(&w, si, listNow, now, false, 0) {
				return w.expired
			}
		}
	}
	nowTick := floorDiv(now, t.tick)
	for {
		if x.jumping {
			if !t.jumpStep(&w, now) {
				return w.expired
			}
			continue
		}
		if x.cur > nowTick {
			return w.expired
		}
		if x.phase == phaseSlot && x.shard == 0 && nowTick-x.cur >= wheelSlots {
			t.startJump(nowTick)
			continue
		}
		ref := x.cur * t.tick
		if x.phase == phaseSlot {
			for ; x.shard < len(t.shards); x.shard++ {
				if !t.runList(&w, x.shard, uint16(x.cur&wheelMask), ref, true, x.cur) {
					return w.expired
				}
			}
			x.shard = 0
			// The tick's controller updates, in expiry order across its shards.
			w.expired += t.applyDeferred()
			if x.held {
				x.phase = phaseHold
				continue
			}
			x.cur++
			continue
		}
		for ; x.shard < len(t.shards); x.shard++ {
			if !t.runList(&w, x.shard, listHold, ref, false, 0) {
				return w.expired
			}
		}
		x.shard, x.held, x.phase = 0, false, phaseSlot
		x.cur++
	}
}

// startJump begins a catch-up pass: every shard files new timers on listPending
// while each wheel slot is visited once with the current time.
//
// Precondition: t.exp.mu is held.
func (t *Table) startJump(nowTick int64) {
	x := &t.exp
	x.jumping, x.flush = true, false
	x.jumpEnd = x.cur + wheelSlots
	x.jumpTo = nowTick
	x.shard = 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		s.jumping = true
		s.mu.Unlock()
	}
}

// jumpStep continues a catch-up pass; it reports false when the budget ran out.
//
// Precondition: t.exp.mu is held.
func (t *Table) jumpStep(w *sweep, now int64) bool {
	x := &t.exp
	for !x.flush && x.cur < x.jumpEnd {
		for ; x.shard < len(t.shards); x.shard++ {
			if !t.runList(w, x.shard, uint16(x.cur&wheelMask), now, true, x.cur) {
				return false
			}
		}
		x.shard = 0
		x.cur++
	}
	if !x.flush {
		x.flush, x.shard = true, 0
		w.expired += t.applyDeferred()
	}
	for ; x.shard < len(t.shards); x.shard++ {
		s := &t.shards[x.shard]
		s.mu.Lock()
		if s.jumping {
			s.jumping = false
			s.cur = x.jumpTo + 1
		}
		s.mu.Unlock()
		if !t.runList(w, x.shard, listHold, now, false, 0) ||
			!t.runList(w, x.shard, listPending, now, false, 0) {
			return false
		}
	}
	x.jumping, x.flush, x.held = false, false, false
	x.shard, x.phase = 0, phaseSlot
	x.cur = x.jumpTo + 1
	return true
}

// runList handles the entries of list l of shard si as due at time ref, until the
// list is empty (true) or the budget is spent (false). Each entry leaves the list:
// alive ones are filed again; dead ones that control nobody are removed; dead ones
// that control others go to listHold when slot (a wheel slot firing, for tick) is
// set, else are re-armed for 60 s. A removed entry's controller update waits in
// t.exp.deferred when slot is set (Expire applies it with the tick's), else is
// applied once the shard lock is released.
//
// Precondition: t.exp.mu is held (runList uses t.exp.ops, t.exp.held and
// t.exp.deferred).
func (t *Table) runList(w *sweep, si int, l uint16, ref int64, slot bool, tick int64) bool {
	s := &t.shards[si]
	x := &t.exp
	for {
		ops := x.ops[:0]
		s.mu.Lock()
		empty, spent := false, false
		for n := 0; n < sweepChunk; n++ {
			i := *s.list(l)
			if i == 0 {
				empty = true
				break
			}
			if w.left == 0 {
				spent = true
				break
			}
			if w.left > 0 {
				w.left--
			}
			e := s.at(i)
			t.unfileLocked(s, i, e)
			switch {
			case e.expires > ref:
				t.fileLocked(s, i, e)
			case e.nctl == 0:
				exp := e.expires
				ctl, forced := t.releaseLocked(s, i, e)
				w.expired++
				switch {
				case ctl == 0:
				case slot:
					x.deferred = append(x.deferred, deferredOp{ctlOp{ref: ctl, forced: forced}, exp})
				default:
					ops = append(ops, ctlOp{ref: ctl, forced: forced})
				}
			case slot:
				t.pushLocked(s, i, e, listHold)
				x.held = true
			default:
				postpone(e, ref)
				t.fileLocked(s, i, e)
			}
		}
		if !empty && !spent && *s.list(l) == 0 {
			empty = true
		}
		if empty && slot && s.cur <= tick {
			s.cur = tick + 1
		}
		s.mu.Unlock()
		var dropped int
		x.ops, dropped = t.applyOps(ops)
		w.expired += dropped
		if empty {
			return true
		}
		if spent {
			return false
		}
	}
}

// applyDeferred applies a tick's or a catch-up pass's controller updates in the
// order their entries expired — the order the kernel's timers released them, which
// decides whether a forced delete leaves its template controlling nobody (§6.4) —
// and returns the number of controllers dropped.
//
// Precondition: t.exp.mu is held.
func (t *Table) applyDeferred() int {
	x := &t.exp
	if len(x.deferred) == 0 {
		return 0
	}
	slices.SortStableFunc(x.deferred, func(a, b deferredOp) int { return cmp.Compare(a.exp, b.exp) })
	ops := x.ops[:0]
	for _, d := range x.deferred {
		ops = append(ops, d.op)
	}
	x.deferred = x.deferred[:0]
	var dropped int
	x.ops, dropped = t.applyOps(ops)
	return dropped
}
