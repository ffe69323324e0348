package dataplane

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/ipvssync"
	"github.com/gvs-lb/gvs/sched"
)

// Cluster sync's data-path side (docs/cluster.md §4.3): with Options.Sync set, a
// worker asks the sync rules, for every inbound packet that hits or creates a
// connection, whether to send it, and pushes a snapshot of the connection into its own
// ring; one goroutine (the daemon's) drains every worker's ring with DrainSync. A
// connection another director sent is adopted by its first packet here and pushed at
// once. Nothing is allocated and no lock is taken per packet; a full ring drops the
// event and counts it (the refresh sweeper repairs it).
//
// The rules' per-connection state — the packet count and ipvssync.ConnState — is the
// table's (conntrack.SyncInfo), counted under the shard lock the packet takes anyway.
// Packets the flow cache serves without the table are counted in the cache slot, from
// the table's count, and folded back into the table (conntrack.Table.SyncFold) before
// the flow next goes to the table or its slot is taken by another flow.

// SyncRingSize is the number of events a worker's ring holds.
const SyncRingSize = 4096

// SyncStats are the sync-event rings' counters, summed over the workers.
type SyncStats struct {
	Pushed  uint64 // events pushed into the rings
	Dropped uint64 // events dropped: the worker's ring was full
	Adopted uint64 // connections another director sent, adopted by a local packet
	Pending uint64 // events in the rings, not drained yet
}

// syncRing is a worker's single-producer, single-consumer ring of connection
// snapshots: the worker pushes, DrainSync's goroutine pops. head and tail are on
// their own cache lines.
type syncRing struct {
	buf     [SyncRingSize]conntrack.Conn
	_       [64]byte
	tail    atomic.Uint64 // next slot the worker writes
	_       [56]byte
	head    atomic.Uint64 // next slot the drainer reads
	_       [56]byte
	dropped atomic.Uint64
	adopted atomic.Uint64
}

// push copies c into the ring, or counts it dropped when the ring is full.
func (r *syncRing) push(c *conntrack.Conn) {
	t := r.tail.Load()
	if t-r.head.Load() >= SyncRingSize {
		r.dropped.Add(1)
		return
	}
	r.buf[t%SyncRingSize] = *c
	r.tail.Store(t + 1)
}

// drain hands up to max events to fn and returns how many.
func (r *syncRing) drain(max int, fn func(c *conntrack.Conn)) int {
	h, t := r.head.Load(), r.tail.Load()
	n := 0
	for ; h < t && n < max; h, n = h+1, n+1 {
		fn(&r.buf[h%SyncRingSize])
	}
	r.head.Store(h)
	return n
}

// slotSync is the sync state of a flow-cache slot (flowCache.sync, parallel to the
// slots so that a cache without sync never touches it): the table's answer when the
// slot was stored, and the packets served since.
type slotSync struct {
	ref     conntrack.Ref
	control conntrack.Ref
	flags   conntrack.Flags
	pkts    uint32 // the connection's inbound packets, the cached ones included
	base    uint32 // pkts when the table last counted them
	timeout time.Duration
	cs      ipvssync.ConnState
	sentAt  int64 // last send decided from the cache (0: none since the table's answer)
}

// syncBeforeTable folds the cached packets and send of the flow in k's cache slot
// (whichever flow holds it) into the table, before the table sees k's packet or the
// slot is taken over. It takes a shard lock only when the slot served packets since
// the table last counted them.
func (w *Worker) syncBeforeTable(k *conntrack.Key) {
	fc := w.flows
	i := flowIndex(k)
	if !fc.isUsed(i) {
		return
	}
	x := &fc.sync[i]
	if x.pkts == x.base && x.sentAt == 0 {
		return
	}
	w.d.table.SyncFold(&fc.slots[i].key, x.ref, x.pkts-x.base, &x.cs, x.sentAt)
	x.base, x.sentAt = x.pkts, 0
}

// syncAfterTable is the sync step of an inbound packet the table answered with c (a
// hit or a new connection): note the table's sync state in the flow's cache slot and
// push c when the table's rules chose to send it or the packet adopted it.
func (w *Worker) syncAfterTable(c *conntrack.Conn) {
	fc := w.flows
	if i := flowIndex(&c.Key); fc.isUsed(i) && keyEqual(&fc.slots[i].key, &c.Key) {
		fc.sync[i] = slotSync{ref: c.Ref, control: c.Control, flags: c.Flags, pkts: c.Sync.Pkts, base: c.Sync.Pkts,
			timeout: c.Timeout, cs: c.Sync.State}
	}
	if !c.Sync.Send && !c.Sync.Adopted {
		return
	}
	r := w.ring.Load()
	if r == nil {
		return
	}
	if c.Sync.Adopted {
		r.adopted.Add(1)
	}
	w.pushSync(r, c)
}

// pushSync pushes c, and its template when it has one (the kernel sends a
// connection's template after it).
func (w *Worker) pushSync(r *syncRing, c *conntrack.Conn) {
	r.push(c)
	if c.Control != 0 && w.d.table.Get(c.Control, &w.tpl) {
		r.push(&w.tpl)
	}
}

// cachedSync is the sync step of a packet the flow cache served from slot e: count it
// and ask the rules, from the state the table gave the slot.
func (w *Worker) cachedSync(rules *ipvssync.Rules, e *flowSlot, now int64) {
	fc := w.flows
	x := &fc.sync[flowIndex(&e.key)]
	x.pkts++
	nc := ipvssync.Conn{Protocol: e.key.Proto, State: uint16(e.state), Timeout: x.timeout, Controlled: x.control != 0}
	if !rules.Needed(&nc, &x.cs, x.pkts, now) {
		return
	}
	x.sentAt = now
	r := w.ring.Load()
	if r == nil {
		return
	}
	c := &w.syncConn
	*c = conntrack.Conn{Ref: x.ref, Key: e.key, DAddr: e.daddr, DPort: e.dport, Dest: e.dest, HasDest: true,
		Method: e.method, Flags: x.flags, State: e.state, Timeout: x.timeout, Expires: now + int64(x.timeout),
		Control: x.control}
	c.Sync.Pkts, c.Sync.State, c.Sync.Send = x.pkts, x.cs, true
	w.pushSync(r, c)
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
	if dst == nil || int(dst.ID()) >= len(s.dests) {
		return nil, 0
	}
	return dst, s.dests[dst.ID()].method
}

// DrainSync hands up to max pending sync events, worker by worker, to fn and returns
// how many. fn gets a pointer into a ring, valid only during the call: copy what it
// keeps. Only one goroutine may call DrainSync.
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
			n += r.drain(max-n, fn)
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
		}
	}
	return s
}

// syncRingsLocked gives every worker its ring when sync is on (rings are kept once
// made: a worker may be pushing into one).
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
			w.ring.Store(new(syncRing))
		}
	}
}
