package dataplane

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"unsafe"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/ipvssync"
	"github.com/gvs-lb/gvs/sched"
)

// Cluster sync's data-path side (docs/cluster.md §4.3): with Options.Sync set, a
// worker asks the sync rules, for every inbound packet that hits or creates a
// connection, whether to send it, and pushes a reference to the connection into its
// own ring; one goroutine (the daemon's) drains every worker's ring with DrainSync. A
// connection another director sent is adopted by its first packet here and pushed at
// once. Nothing is allocated and no lock is taken per packet; a full ring drops the
// event and counts it (the refresh sweeper repairs it). A table packet's push whose
// event the ring still holds unclaimed, pushed for the flow's slot, is left out: the
// drainer reads the connection after the packet's table step (syncRing.unclaimed),
// so a short flow's FIN and its third packet, drained together, make one record.
//
// The rules' per-connection state — the packet count and ipvssync.ConnState — is the
// table's (conntrack.SyncInfo), counted under the shard lock the packet takes anyway.
// A packet the flow cache serves is counted in its slot, with a countdown to the next
// count at which the threshold rule lets the rules send (every sync_threshold period:
// 50 packets by default). There, for rules that need only a connection's count and
// state (syncPlan.local: the kernel's defaults), the slot already knows the answer:
// whether the rules send a flow in its cached state at such a count was worked out
// from Rules.Needed once (syncPlan.sends), so the countdown's end is a send with no
// rules to ask. Otherwise the worker goes to the table (SyncCached), which counts the
// cached packets and decides with the connection's own state. The packets counted in
// a slot, and a send it decided, reach the table with the flow's next packet there
// (conntrack.SyncInfo.Fold).

// SyncRingSize is the number of events a worker's ring holds.
const SyncRingSize = 4096

// SyncStats are the sync-event rings' counters, summed over the workers.
type SyncStats struct {
	Pushed  uint64 // events pushed into the rings (not a push whose event the ring holds unclaimed)
	Dropped uint64 // events dropped: the worker's ring was full
	Adopted uint64 // connections another director sent, adopted by a local packet
	Pending uint64 // events in the rings, not drained yet
	Stale   uint64 // events drained after their connection was gone (skipped)
}

// A sync event is one ring slot: a reference to the connection to send and a check
// word, in 8 bytes (an eighth of a cache line). The drainer takes the connection's
// fields from the table under its shard lock (Table.Get) when it hands the event
// out, so the worker writes a reference, not a 64-byte snapshot: each event was a
// cold cache line the worker wrote and the drainer's core then read (≈ 3 ns a packet
// on the synthetic trace, its two events a flow). An entry's slot is reused once it
// expires, so the reference alone may name another connection by the drain: the
// check word (keyCheck: the high 31 bits of the flow cache's hash of the key) tells
// the drainer whether the entry still holds the connection the event was for; one it
// no longer holds is stale, counted and skipped. Bit 32 is evAdopted. The event was 16 bytes (the same fields stored one
// by one), twice the ring's lines and six stores an event.
//
// The reference is in the low 32 bits, evAdopted at bit 32, the check above it.

// evAdopted: the packet adopted a connection another director sent.
const evAdopted = 1

// evCheckMask is an event's check word.
const evCheckMask = ^uint64(1<<33 - 1)

// keyCheck returns the check word of an event for a connection of key k, in place
// (evCheckMask): the high 31 bits of the flow cache's hash of k (flowHash: both
// addresses, both ports, the protocol; an entry whose key differs in any of them
// holds another connection). The cache's send, the event most flows make, takes it
// from the hash the packet's cache lookup computed, at no cost of its own.
func keyCheck(k *conntrack.Key) uint64 { return flowHash(k) & evCheckMask }

// syncRing is a worker's single-producer, single-consumer ring of connection
// references: the worker pushes, DrainSync's goroutine pops. The worker writes events
// at its private ptail and publishes them with one atomic store of tail per batch
// (publish), not per event: an atomic store is a full barrier, which cost as much as
// the event itself. tail, ptail and head share a cache line: put reads head for
// every event with no line of its own to load (head on a line of its own measured
// ≈ 3 ns a packet slower on the synthetic trace, in 28 and 16 runs paired with the
// code before), and the drainer writes head once a drain (every 5 ms in the
// daemon), which costs the worker one miss a drain. The drainer's own fields are on
// other lines.
type syncRing struct {
	buf     [SyncRingSize]uint64 // events: see keyCheck
	_       [64]byte
	tail    atomic.Uint64 // events published to the drainer
	ptail   uint64        // the worker's: next slot it writes (ptail >= tail)
	head    atomic.Uint64 // next slot the drainer reads
	_       [40]byte
	out     conntrack.Conn
	tpl     conntrack.Conn
	claim   [64]uint64 // the drainer's: the events it claimed (drain)
	_       [64]byte
	dropped atomic.Uint64
	adopted atomic.Uint64
	stale   atomic.Uint64
}

// newSyncRing returns a ring whose pages are mapped (not faulted in under packets).
func newSyncRing() *syncRing {
	r := new(syncRing)
	per := max(1, 4096/int(unsafe.Sizeof(r.buf[0])))
	for i := 0; i < SyncRingSize; i += per {
		r.buf[i] = 0
	}
	return r
}

// push puts a reference to c into the ring, or counts it dropped when the ring is
// full.
func (r *syncRing) push(c *conntrack.Conn) { r.put(evOf(c)) }

// evOf is the event of a push of c.
func evOf(c *conntrack.Conn) uint64 { return keyCheck(&c.Key) | evBits(c) | uint64(c.Ref) }

// evBits is the event bits of a push of c, in place.
func evBits(c *conntrack.Conn) uint64 {
	if c.Sync.Adopted {
		return evAdopted << 32
	}
	return 0
}

// put writes event ev (a reference, its check word and bits: evOf) into the ring and
// returns its position plus one (a slot's ev), or counts it dropped when the ring is
// full and returns 0. It is small enough to be in line at its callers.
func (r *syncRing) put(ev uint64) uint64 {
	t := r.ptail
	if t-r.head.Load() >= SyncRingSize {
		r.dropped.Add(1)
		return 0
	}
	r.buf[t%SyncRingSize] = ev
	r.ptail = t + 1
	return t + 1
}

// unclaimed reports whether the ring's event at position at-1 (at: what put
// returned; 0 for none) is not yet claimed by the drainer: it still holds the event
// put wrote there (a slot is written again only after head passed it). A push of
// the same event then adds nothing: the drainer reads the connection from the table
// when it claims the event already there, and it claims events before it reads
// their entries (drain), so a worker that finds the event unclaimed after its table
// step knows that read is yet to come and will see what the step wrote — the one
// record carries what a second one would.
func (r *syncRing) unclaimed(at uint64) bool { return at > r.head.Load() }

// publish hands the events pushed since the last call to the drainer (the worker
// calls it once per batch).
func (r *syncRing) publish() {
	if r.ptail != r.tail.Load() {
		r.tail.Store(r.ptail)
	}
}

// drain takes up to max events, hands fn the connection of each that is still live in
// t (and its template after it, as the kernel sends a controlled connection's template
// with it), and returns how many it took. It claims events a batch at a time — copies
// them out and moves head past them — before it reads any of their entries: a worker
// that finds an event unclaimed after its own table step (unclaimed) may leave out a
// push of the same connection, since the drainer's read of the entry comes after.
func (r *syncRing) drain(t *conntrack.Table, max int, fn func(c *conntrack.Conn)) int {
	h, tl := r.head.Load(), r.tail.Load()
	n := 0
	c := &r.out
	for h < tl && n < max {
		k := min(tl-h, uint64(len(r.claim)), uint64(max-n))
		for i := range k {
			r.claim[i] = r.buf[(h+i)%SyncRingSize]
		}
		h += k
		r.head.Store(h)
		n += int(k)
		for _, ev := range r.claim[:k] {
			if !t.Get(conntrack.Ref(uint32(ev)), c) || keyCheck(&c.Key) != ev&evCheckMask {
				r.stale.Add(1)
				continue
			}
			ctl := c.Control
			event(c)
			c.Sync.Adopted = ev>>32&evAdopted != 0
			fn(c)
			if ctl != 0 && t.Get(ctl, &r.tpl) {
				event(&r.tpl)
				fn(&r.tpl)
			}
		}
	}
	return n
}

// event keeps of c what a sync event carries (DrainSync).
func event(c *conntrack.Conn) {
	c.Ref, c.Dest, c.Expires, c.Control, c.NControl = 0, 0, 0, 0, 0
	c.Sync = conntrack.SyncInfo{}
}

// nextCandidate returns the first packet count after pkts at which r's threshold rule
// lets a connection be sent (Rules.Needed decides then), or 0 for none.
func nextCandidate(r *ipvssync.Rules, pkts uint32) uint32 {
	switch {
	case r.Period > 0 && pkts < r.Threshold:
		return r.Threshold // a short flow's first packets: no division (≈ 25 cycles)
	case r.Period > 0 && pkts < r.Period:
		return r.Threshold + r.Period // Threshold < Period (Rules.Validate)
	case r.Period > 0:
		p := pkts - pkts%r.Period + r.Threshold
		if p <= pkts {
			p += r.Period
		}
		return p
	case r.RefreshPeriod > 0:
		return pkts + 1 // no threshold: the refresh rule alone decides, every packet
	case r.Threshold > pkts:
		return r.Threshold
	}
	return 0
}

// syncPlan is the sync rules (Options.Sync) with what the flow cache derives from them
// once, when the options are set.
type syncPlan struct {
	ipvssync.Rules
	// local: the rules need only a connection's count and state (no refresh period,
	// no persist mode), so the cache may decide an uncontrolled flow's sends itself.
	local bool
	// sendsTCP has bit s set when the rules send a TCP connection in state s at a
	// candidate count (nextCandidate), sendsOther the same for a UDP one (the cache
	// holds TCP and UDP flows only). With local rules that is all Needed decides
	// there: a forced send (a change to a state other than ESTABLISHED) is a send
	// too, and the state a connection was last sent in matters for nothing else.
	// Derived by asking Rules.Needed (conntrack.SyncSends, as the table's plan is),
	// not restated; TestCachedSyncDecidesAsTheRules compares the cache's sends with
	// Needed's.
	sendsTCP   uint32
	sendsOther bool
	// mode is the slot mode of an uncontrolled flow with a client port in state s
	// (the cache holds TCP flows in TCP states and UDP ones in StateUDP): modeTable
	// for rules that are not local, else modeSend where sends says so, modeNeeded
	// where not.
	mode [16]slotMode
	// start is a slot's sync start for an uncontrolled flow with a client port in
	// state s whose table count pkts is below 64 (a short flow's table packets): the
	// countdown to the next candidate (nextCandidate(pkts) - pkts) in the low 24 bits
	// and the slot mode above them, as the general start (startFrom) leaves them —
	// 0 for a state no count sends (modeNeeded, no countdown), modeNeeded with the
	// countdown for a sent state whose candidate is past 16 bits. One load decides
	// the start, in line (startShort).
	start [16][64]uint32
}

// startBits is the countdown's part of a syncPlan.start value; the mode is above it.
const startBits = 24

// newSyncPlan returns r's plan.
func newSyncPlan(r *ipvssync.Rules) *syncPlan {
	p := &syncPlan{Rules: *r, local: r.RefreshPeriod == 0 && !r.PersistMode}
	if at := nextCandidate(r, 0); p.local && at != 0 {
		p.sendsTCP, p.sendsOther = conntrack.SyncSends(r, at)
	}
	for s := range p.mode {
		st, proto := conntrack.State(s), uint8(header.IPProtoTCP)
		if st == conntrack.StateUDP {
			proto = header.IPProtoUDP
		}
		switch {
		case !p.local:
			p.mode[s] = modeTable
		case p.sends(proto, st):
			p.mode[s] = modeSend
		default:
			p.mode[s] = modeNeeded
		}
		for pkts := range uint32(len(p.start[s])) {
			var e flowSlot
			p.startFrom(&e, p.mode[s], pkts)
			p.start[s][pkts] = e.snext | uint32(e.x.mode)<<startBits
		}
	}
	return p
}

// sends reports whether the rules send a connection of proto in state st at a
// candidate count (plan p is local).
func (p *syncPlan) sends(proto uint8, st conntrack.State) bool {
	if proto == header.IPProtoTCP {
		return p.sendsTCP&(1<<(st&31)) != 0
	}
	return p.sendsOther
}

// slotExt is what the cache decides a send from, for a flow whose rules need only its
// count and state (local rules, no template, a client port): the table's answer
// when the flow was stored, and a send decided since. It is part of the flow's slot
// (flowSlot.x), in the cache line of the slot's times and counters, read at a
// candidate count and written with the table's answers.
type slotExt struct {
	sentAt int64           // a send decided here, not yet told to the table (0: none)
	base   uint32          // the table's count when it last answered (the slot's spend is on top)
	old    conntrack.State // the rules' old state: the state last sent
	// mode: how the countdown's end is decided (the cache holds the flow's state, which
	// does not change while it does).
	mode slotMode
}

// slotMode is how a flow cache slot decides at its next candidate count.
type slotMode uint8

const (
	// modeNeeded: local, but the candidate count is past 16 bits, or no count sends
	// the flow in its state: ask Rules.Needed. It is the zero value: a slot store
	// just filled is in it, with no countdown.
	modeNeeded slotMode = iota
	modeTable           // ask the table (SyncCached): the rules need more than count and state
	modeSend            // send: the rules send the flow's state at a candidate count
)

// clearSync zeroes slot e's sync state, as flowCache.store leaves it.
func (e *flowSlot) clearSync() { e.spend, e.snext, e.x = 0, 0, slotExt{} }

// countServed counts a packet the cache served from slot e and reports whether the
// countdown ran out: the count reached the rules' next candidate (cachedSync then
// decides). One compare of two fields in the slot's line, for most packets a branch
// not taken.
func (e *flowSlot) countServed() bool {
	e.spend++
	return e.spend == e.snext
}

// setCountdown sets slot e's countdown to the rules' next candidate after pkts (the
// flow's count, e.spend included) and returns that candidate (0: none).
func (e *flowSlot) setCountdown(r *ipvssync.Rules, pkts uint32) uint32 {
	n := nextCandidate(r, pkts)
	e.snext = e.spend + n - pkts
	if n == 0 {
		e.snext = e.spend // none: not before spend wraps (2^32 packets)
	}
	return n
}

// foldSlot hands the table, with the packet of k it is about to see, what the flow
// cache did for k in slot e since the table last answered (Conn.Sync.Fold): the
// packets it served and a send it decided. inbound calls it only when e counted
// packets or decided a send.
//
// What a slot holds for another flow is left alone, but for a send not yet told to
// the table when k's answer may take the slot over — the flow in it is no longer
// fresh (flowCache.store keeps a fresh flow) — which is folded in at once. A fresh
// flow keeps its slot, and its send reaches the table with its own next table
// packet, as a flow's does that shares its slot with none: folding it at once cost
// another flow's lookup, shard lock and cache misses for each new flow whose slot a
// busy flow holds. If k's answer takes the slot over, the flow's count is lost and
// the table's lags by it: that delays its next periodic send by fewer than one
// sync_threshold period of packets, and saves a lock and a cache miss on another
// flow's entry per takeover (measured as a third of a big table's lookup).
func (w *Worker) foldSlot(e *flowSlot, k *conntrack.Key) {
	if keyEqual(&e.key, k) {
		w.foldOwn(e)
		return
	}
	if x := &e.x; x.sentAt != 0 && !e.fresh(w.now) {
		w.d.table.SyncFold(&e.key, &conntrack.Fold{Pkts: e.spend, Sent: x.sentAt, State: x.old}, w.now)
		x.base += e.spend
		e.snext -= e.spend // the countdown goes on from the new base
		e.spend, x.sentAt = 0, 0
	}
}

// foldOwn is foldSlot for slot e holding the packet's own flow: the table's answer
// refills the slot or the cache forgets the flow (inbound), so nothing here is reset.
func (w *Worker) foldOwn(e *flowSlot) {
	f := &w.conn.Sync.Fold
	f.Pkts, f.Sent, f.State = e.spend, e.x.sentAt, e.x.old
}

// slotMode is the slot mode of c's flow: its state's (mode), or modeTable for a
// controlled flow or one without a client port.
func (p *syncPlan) slotMode(c *conntrack.Conn) slotMode {
	if c.Control != 0 || c.Flags&conntrack.FlagNoCPort != 0 {
		return modeTable
	}
	return p.mode[c.State&15]
}

// syncAfterTable is the sync step of an inbound packet the table answered with c (a
// hit or a new connection): start the flow's cache slot e counting towards the rules'
// next candidate, and push c when the table's rules chose to send it or the packet
// adopted it. e is the slot flowCache.store just filled, whose sync state is zero
// (modeNeeded, no countdown, nothing served or sent), or nil when the cache does not
// hold the flow. The caller passes the slot flowCache.store returned rather than
// having it looked up again: reading back the key store has just written stalls on
// the slot's cache line (a store-to-load forward of differently sized accesses
// fails), measured at 13 ns a packet on the synthetic trace. inbound's hit does the
// same in line for a short flow (startShort, then pushAfterTable).
func (w *Worker) syncAfterTable(p *syncPlan, e *flowSlot, c *conntrack.Conn) {
	if e != nil && !p.startShort(e, c) {
		// Field by field: a slotExt literal is built on the stack and copied in
		// 16-byte words over its narrower stores, a failed store-to-load forward.
		e.x.base, e.x.old = c.Sync.Pkts, c.Sync.Old
		p.startFrom(e, p.slotMode(c), c.Sync.Pkts)
	}
	if (c.Sync.Send || c.Sync.Adopted) && (e == nil || !w.queued(c, e)) {
		w.pushAfterTable(c, e)
	}
}

// startShort starts slot e's countdown from the table's answer c for a short flow's
// table packet (a count below 64, no template, a client port) with one load of the
// plan's start, and reports true; for any other flow it changes nothing and reports
// false (startFrom then decides). In line at its callers.
func (p *syncPlan) startShort(e *flowSlot, c *conntrack.Conn) bool {
	pkts := c.Sync.Pkts
	if pkts >= uint32(len(p.start[0])) || c.Control != 0 || c.Flags&conntrack.FlagNoCPort != 0 {
		return false
	}
	v := p.start[c.State&15][pkts]
	e.x.base, e.x.old, e.snext, e.x.mode = pkts, c.Sync.Old, v&(1<<startBits-1), slotMode(v>>startBits)
	return true
}

// startFrom sets slot e's mode and countdown for a flow of slot mode m whose table
// count is pkts (e.spend is 0). It is the definition syncPlan.start is made from.
func (p *syncPlan) startFrom(e *flowSlot, m slotMode, pkts uint32) {
	if m == modeNeeded {
		// No count sends the flow in its (cached) state: no countdown, as the slot
		// is (were it to run out after 2^32 packets, Needed decides and refuses).
		return
	}
	e.x.mode = m
	if e.setCountdown(&p.Rules, pkts) > 0xffff && m == modeSend {
		e.x.mode = modeNeeded
	}
}

// queued reports whether the ring holds slot e's event unclaimed and it is c's (a
// short flow's FIN after the cache's send at its third packet, both read by the same
// drain): a push of c, which the table's rules chose to send, then adds nothing. The
// slot's event is c's when its position is set (store clears it for another flow)
// and its low bits are c's reference with no bit set (a new connection of the same
// key has another reference; an adoption's event is pushed whatever the ring
// holds); a position of 0 (none) is never unclaimed. It is small enough to be in
// line at inbound, so the FIN calls nothing to leave its push out.
func (w *Worker) queued(c *conntrack.Conn, e *flowSlot) bool {
	return w.ring.Load().unclaimed(e.ev) && e.evv&^evCheckMask == uint64(c.Ref) && !c.Sync.Adopted
}

// pushAfterTable pushes c, which the table's rules chose to send or the packet
// adopted, when slot e (the flow's, which flowCache.store just filled; nil when the
// cache does not hold the flow) does not hold its event unclaimed (its callers ask
// queued first). It notes the event and its position in e. When the slot's event is
// c's (as queued tells), claimed, its check word is not computed again.
func (w *Worker) pushAfterTable(c *conntrack.Conn, e *flowSlot) {
	r := w.ring.Load()
	var ev uint64
	if e != nil && e.ev != 0 && e.evv&^evCheckMask == uint64(c.Ref) && !c.Sync.Adopted {
		ev = e.evv
	} else {
		ev = keyCheck(&c.Key) | uint64(c.Ref)
		if c.Sync.Adopted {
			r.adopted.Add(1)
			ev |= evAdopted << 32
		}
	}
	at := r.put(ev)
	if e != nil {
		e.ev, e.evv = at, ev
	}
}

// slotEvent returns the event of slot e's flow, whose check word (keyCheck of its
// key) is chk: the one it last pushed when that is the flow's (pushAfterTable), else
// one made from chk and its reference.
func (e *flowSlot) slotEvent(chk uint64) uint64 {
	if e.ev != 0 && e.evv&^evCheckMask == uint64(e.ref) {
		return e.evv
	}
	return chk | uint64(e.ref)
}

// cachedSync is the sync step of a packet the flow cache served from slot e when its
// count reached the rules' next candidate. Where the rules need only the
// count and the (unchanging) state, the cache decides and the table learns of it with
// the flow's next table packet; otherwise the table counts the cached packets and
// asks the rules with the connection's own state (SyncCached: a shard lock once per
// sync_threshold period of a busy flow, not per packet). A slot in modeSend (a short
// flow's first data packet, sent by the threshold rule) sends with no other test:
// the other modes are cachedAsk's, so this path spills nothing for their calls. chk
// is the check word of the slot's key (keyCheck), from the hash of the packet's cache
// lookup.
func (w *Worker) cachedSync(p *syncPlan, e *flowSlot, chk uint64, now int64) {
	x := &e.x
	if x.mode != modeSend && !w.cachedAsk(p, e, now) {
		return
	}
	// The count is a candidate (the countdown ran to one): with local rules the
	// next is a period on, or none without a period (nextCandidate).
	x.mode, e.snext = modeSend, e.spend+p.Period
	if x.base+e.spend+p.Period > 0xffff {
		x.mode = modeNeeded
	}
	x.sentAt, x.old = now, e.state
	ev := e.slotEvent(chk) // no template: local decisions are for uncontrolled flows
	e.ev, e.evv = w.ring.Load().put(ev), ev
}

// cachedAsk is cachedSync for slot e in modeNeeded or modeTable: it reports whether
// the cache sends the flow (modeNeeded: Rules.Needed says so), and otherwise does
// what the mode asks — a new countdown, or the table's step (SyncCached) and its
// push.
func (w *Worker) cachedAsk(p *syncPlan, e *flowSlot, now int64) bool {
	x := &e.x
	if x.mode == modeNeeded {
		// The table's count is 16 bits wide: past 65,535 the candidate is not
		// one for Needed, which decides on the wrapped count. Timeout and the
		// last send's end matter only with a refresh period (not local).
		pkts := x.base + e.spend
		nc := ipvssync.Conn{Protocol: e.key.Proto, State: uint16(e.state)}
		cs := ipvssync.ConnState{OldState: uint16(x.old)}
		if p.Needed(&nc, &cs, pkts&0xffff, now) {
			return true
		}
		if e.setCountdown(&p.Rules, pkts) <= 0xffff {
			x.mode = modeSend
		}
		return false
	}
	c := &w.syncConn
	if !w.d.table.SyncCached(&e.key, e.spend, now, c) {
		e.spend, e.snext = 0, 0
		return false
	}
	e.spend = 0
	x.base = c.Sync.Pkts
	e.setCountdown(&p.Rules, c.Sync.Pkts)
	if c.Sync.Send {
		ev := evOf(c)
		e.ev, e.evv = w.ring.Load().put(ev), ev
	}
	return false
}

// SyncDest finds the real server a received entry names, as the kernel receiver's
// ip_vs_find_dest does: the dest (daddr, dport) of the service k belongs to — for a
// fwmark template (Proto 0) the service of the mark in k.VAddr's first 4 bytes — in
// the current generation, with its forwarding method. It returns nil when there is
// none (Upsert then keeps the entry unbound).
func (d *Director) SyncDest(k *conntrack.Key, daddr [16]byte, dport uint16) (*sched.Dest, ipvs.Method) {
	s := d.snap.Load()
	var svc *service
	if k.Proto == 0 {
		svc = s.bySvc.get(&svcKey{mark: binary.BigEndian.Uint32(k.VAddr[:4]), v6: k.IPv6})
	} else {
		svc = s.service(k)
	}
	if svc == nil {
		return nil, 0
	}
	addr := netip.AddrFrom16(daddr)
	if !k.IPv6 {
		addr = netip.AddrFrom4([4]byte(daddr[:4]))
	}
	dst := svc.pool.Find(addr, dport)
	if dst == nil && dport != 0 {
		// A real server without a port (a port-0 or fwmark service's) serves every
		// port: the record names the packet's, as the kernel's ip_vs_find_dest
		// tries the record's port and then 0.
		dst = svc.pool.Find(addr, 0)
	}
	if dst == nil || int(dst.ID()) >= len(s.dests) {
		return nil, 0
	}
	return dst, s.dests[dst.ID()].method
}

// DrainSync takes up to max pending sync events, worker by worker, hands fn the
// connection of each (and, for a connection a persistence template controls, the
// template after it) and returns how many events it took. The connection is read from
// the table now, under its shard lock: fn gets its Key, DAddr, DPort, HasDest,
// Method, Flags, State, Timeout and Sync.Adopted (Ref, Dest, Expires and Control are
// zero); an event whose connection is gone is skipped (SyncStats.Stale). fn gets a
// pointer valid only during the call: copy what it keeps. Only one goroutine may call
// DrainSync.
func (d *Director) DrainSync(max int, fn func(c *conntrack.Conn)) int {
	d.wmu.Lock()
	ws := d.workers
	d.wmu.Unlock()
	n := 0
	for _, w := range ws {
		if n >= max {
			break
		}
		if r := w.ring.Load(); r != nil {
			n += r.drain(d.table, max-n, fn)
		}
	}
	return n
}

// SyncStats returns the sync-event rings' counters.
func (d *Director) SyncStats() SyncStats {
	d.wmu.Lock()
	ws := d.workers
	d.wmu.Unlock()
	var s SyncStats
	for _, w := range ws {
		if r := w.ring.Load(); r != nil {
			t, h := r.tail.Load(), r.head.Load()
			s.Pushed += t
			s.Pending += t - h
			s.Dropped += r.dropped.Load()
			s.Adopted += r.adopted.Load()
			s.Stale += r.stale.Load()
		}
	}
	return s
}

// syncRingsLocked gives every worker its ring when sync is on (rings are kept once
// made: a worker may be pushing into one). SetOptions calls it before it publishes
// the generation whose settings carry the rules, and NewWorker gives a new worker
// its ring under d.mu, so a worker that sees the rules (settings.sync) has its ring:
// the per-packet path does not test for one.
//
// Precondition: d.mu is held.
func (d *Director) syncRingsLocked() {
	if d.opts.Sync == nil {
		return
	}
	d.wmu.Lock()
	defer d.wmu.Unlock()
	for _, w := range d.workers {
		if w.ring.Load() == nil {
			w.ring.Store(newSyncRing())
		}
	}
}
