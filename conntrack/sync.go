package conntrack

import (
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/ipvssync"
	"github.com/gvs-lb/gvs/sched"
)

// Cluster sync (docs/cluster.md §4): entries received from other directors (Upsert,
// BindUnbound), the origin of every entry and its adoption by a local packet, the
// per-entry sync state the sender's rules keep (ipvssync.Rules), and the walk the
// refresh sweeper and bulk pushes make (walk.go).
//
// An entry's sync state (packet count, origin, the rules' old state and retries, last
// send) lives in the entry's unconfirmed-list link words (uprev, unext), which an
// entry uses only while it is on that list (unconfirmed.go): a local connection until
// its client is proven, the only time it has nothing to sync (a TCP connection is
// sent from ESTABLISHED on, a UDP one from its third packet). So entries stay 88 bytes
// and a table lookup reads no second cache line for sync. While an entry is on the
// list, it counts no packets: its count starts at 2 with the packet that confirms it
// (the first was not counted; SYN retransmissions are missed). The count is 16 bits
// wide and wraps (the threshold rule's period then restarts once every 65,536
// packets); the last send is kept in table ticks (Config.Tick) from the first send.

// Remote is an entry received from another director, in conntrack's own numbering.
type Remote struct {
	Key    Key         // as Key documents (templates: masked client, CPort 0, fwmark in VAddr)
	DAddr  [16]byte    // real server (IPv4 in the first 4 bytes)
	DPort  uint16      //
	Method ipvs.Method // 0 for a template whose method is unknown
	// Flags: public flags only (FlagTemplate, FlagNoOutput, FlagInactive, FlagNoCPort,
	// FlagAssured); others are ignored.
	Flags   Flags
	State   State         // StateUDP for non-TCP; ignored for templates
	Timeout time.Duration // 0: the state's own timeout (a v0 record)
}

// SyncMeta is what the sweeper and bulk pushes read besides the entry.
type SyncMeta struct {
	Origin     uint8  // 0: owned here (created here or adopted by a local packet)
	LastActive int64  // ns, last local packet (0: none)
	LastSync   int64  // ns, when this director last sent it (0: never)
	Pkts       uint32 // inbound packets counted for the sync rules
}

// SyncInfo is the sync side of a lookup's answer (Conn.Sync). It is filled by In,
// InOrInsert and Insert once the table does sync (SetSyncRules, Upsert or Walk was
// called); otherwise it is zero.
type SyncInfo struct {
	// Origin is the entry's origin after the lookup (0 once a local packet adopted it).
	Origin uint8
	// Adopted: this packet adopted an entry another director had sent (its origin was
	// not 0); the caller sends it at once (docs/cluster.md §6).
	Adopted bool
	// Send: the sync rules (SetSyncRules) say this packet's connection is to be sent;
	// the table recorded the send in the entry's State.
	Send bool
	// Pkts is the entry's inbound packet count after this packet, and Old the state
	// it was last sent in (the sync rules' old state, ipvssync.ConnState.OldState;
	// 0 before any send). The rest of the rules' state (the retries, the last send's
	// end) is the table's: no reader of a lookup's answer needs it, and filling it
	// cost every table packet three stores and a multiplication.
	Pkts uint32
	Old  State
	// Fold is an input of In and InOrInsert (the only one): what a flow cache did for
	// this connection since the table last answered for it. The table resets it when
	// it fills the Conn.
	Fold Fold
}

// Fold is what a flow cache did for a connection without the table: Pkts packets
// served, and, when Sent is not 0, a send it decided at Sent with the connection in
// State.
type Fold struct {
	Pkts  uint32
	Sent  int64
	State State
}

// apply adds f to r.
func (f *Fold) apply(r *syncRec) {
	r.pkts = (r.pkts + f.Pkts) & 0xffff
	if f.Sent != 0 && f.Sent >= r.lastSync {
		r.lastSync, r.oldState, r.retries = f.Sent, uint8(f.State), 0
	}
}

// SyncStats are the counters of the table's sync side.
type SyncStats struct {
	Created         uint64 // Upsert made a new entry
	Updated         uint64 // Upsert refreshed an entry (flags, state, timer)
	Replaced        uint64 // an active record for another real server replaced an entry
	IgnoredInactive uint64 // an inactive record for another real server was ignored
	Refused         uint64 // Upsert refused: the table at conn_max or its shard's slab full, or origin 0
	Unbound         int64  // live entries received without their real server (not bound yet)
	Bound           uint64 // unbound entries bound later (BindUnbound, or a record naming the dest)
	Adopted         uint64 // received entries adopted by a local packet
	Rescheduled     uint64 // unbound entries a local packet replaced (it cannot be forwarded to an unknown dest)
	Remote          int64  // entries in the table another director sent that no local packet adopted yet
}

// syncCounters are SyncStats' atomics.
type syncCounters struct {
	created, updated, replaced, ignored, refused, bound, adopted, resched atomic.Uint64
	unbound, remote                                                       atomic.Int64
}

// syncRec is an entry's sync state, unpacked.
type syncRec struct {
	lastSync int64  // ns, last send by this director (0: never), to the table's tick
	pkts     uint32 // inbound packets (the kernel's in_pkts), 16 bits
	origin   uint8  // 0 local, else the source that sent it
	oldState uint8  // ipvssync.ConnState.OldState
	retries  uint8  // ipvssync.ConnState.Retries
}

// shardSync is a shard's sync side, guarded by the shard's mutex.
type shardSync struct {
	unbound map[uint32][16]byte // slab index -> real server address of an unbound entry
}

// fUnbound marks an entry received without its dest: its real server address is in
// shardSync.unbound, its port and method in the entry.
const fUnbound Flags = 1 << 6

// loadSync unpacks e's sync state into r (the zero state while e is on the
// unconfirmed list). It writes r field by field: a syncRec built whole and copied
// out is read back in 16-byte words over its 8-byte stores, a failed store-to-load
// forward on every table packet with sync on.
//
// Precondition: e's shard lock is held.
func (t *Table) loadSync(e *entry, r *syncRec) {
	r.lastSync = 0
	if e.flags&fUnconf != 0 {
		r.pkts, r.origin, r.oldState, r.retries = 0, 0, 0, 0
		return
	}
	u := e.uprev
	r.pkts, r.origin, r.oldState, r.retries = u&0xffff, uint8(u>>16), uint8(u>>24)&15, uint8(u>>28)&3
	r.lastSync = t.lastSyncOf(e.unext)
}

// storeSync packs r into e; it stores nothing while e is on the unconfirmed list.
//
// Precondition: e's shard lock is held.
func (t *Table) storeSync(e *entry, r *syncRec) {
	if e.flags&fUnconf != 0 {
		return
	}
	e.uprev = r.pkts&0xffff | uint32(r.origin)<<16 | uint32(r.oldState&15)<<24 | uint32(r.retries&3)<<28
	e.unext = 0
	if r.lastSync != 0 {
		e.unext = t.syncTick(r.lastSync)
	}
}

// syncTick returns the packed form of a last send at ns (not 0): its table tick
// counted from the epoch, 1 for the epoch's own.
func (t *Table) syncTick(ns int64) uint32 {
	ep := t.syncEpoch.Load()
	if ep == 0 {
		// The first send fixes the epoch a tick before it (0 means unset).
		ep = ns - t.tick
		if ep == 0 {
			ep = -1
		}
		t.syncEpoch.CompareAndSwap(0, ep)
		ep = t.syncEpoch.Load()
	}
	hi, _ := bits.Mul64(uint64(max(ns-ep, 0))<<1, t.tickDiv.m) // tickDiv.div, in line
	return uint32(min(hi>>t.tickDiv.shift+1, 1<<32-1))
}

// tableIDs numbers tables (Table.id) for tickMemo.
var tableIDs atomic.Uint64

// A tickMemo is the last send's tick a table worked out through a Conn (memoTick):
// the tick w of table number id, whose span starts at lo ns. A worker passes the
// table one Conn for all its packets, and a tick (100 ms by default) spans many of
// its batches, so a send the plan path decides (a short flow's FIN) mostly falls in
// the tick of the worker's send before it: the path then reads the tick here instead
// of working it out again (the epoch's load and test, the multiplication, the
// clamps).
type tickMemo struct {
	id uint64 // the table's id; 0: none
	lo int64  // the tick's first ns: the epoch plus (w-1) ticks
	w  uint32
}

// holds reports whether m holds t's tick of now.
func (m *tickMemo) holds(t *Table, now int64) bool {
	return m.id == t.id && uint64(now-m.lo) < uint64(t.tick)
}

// memoTick is syncTick(now) for a send decided with c, kept in c's memo: the plan
// path reads the memo in its place while it holds now's tick for t. The epoch is
// fixed at the first send and the tick at New, so a tick's span never changes once
// worked out. TestTickMemoIsSyncTick holds the two to syncTick.
func (t *Table) memoTick(now int64, c *Conn) uint32 {
	w := t.syncTick(now)
	c.tick = tickMemo{id: t.id, lo: t.lastSyncOf(w), w: w}
	return w
}

// A divider divides by a constant n (newDivider) with a multiplication and a shift
// instead of a division: a 64-bit division is a few dozen cycles of latency, and Go
// adds its tests for a zero and a -1 divisor; syncTick divides by the table's tick at
// every send the table decides. With 2^s < n <= 2^(s+1) and m = ceil(2^(64+s) / n),
// d·m / 2^(64+s) rounded down is d / n for every d < 2^63: it exceeds d / n by less
// than d / 2^(64+s) < 2^-(s+1) <= 1/n, too little to reach the next integer (d / n is
// at most 1 - 1/n below it). div computes it as the high word of 2d·m shifted right
// by s+1, so that n = 1 (m = 2^63, a shift of 0) needs no case of its own.
// TestDividerDivides holds it to the division.
type divider struct {
	m     uint64
	shift uint8 // s+1
}

// newDivider returns the divider by n (n >= 1).
func newDivider(n uint64) divider {
	if n == 1 {
		return divider{m: 1 << 63}
	}
	s := uint8(bits.Len64(n-1) - 1)
	m, r := bits.Div64(1<<s, 0, n)
	if r != 0 {
		m++
	}
	return divider{m: m, shift: s + 1}
}

// div returns d / n for d < 2^63.
func (v divider) div(d uint64) uint64 {
	hi, _ := bits.Mul64(d<<1, v.m)
	return hi >> v.shift
}

// lastSyncOf returns the last send the packed word w (an entry's unext) holds, 0 for
// none.
func (t *Table) lastSyncOf(w uint32) int64 {
	if w == 0 {
		return 0
	}
	return t.syncEpoch.Load() + int64(w-1)*t.tick
}

// originOf returns e's origin.
func originOf(e *entry) uint8 {
	if e.flags&fUnconf != 0 {
		return 0
	}
	return uint8(e.uprev >> 16)
}

// releaseSyncLocked forgets an unbound entry's real server as e is freed (the rest
// of its sync state goes with the entry).
//
// Precondition: the shard's mutex is held.
func (t *Table) releaseSyncLocked(s *shard, i uint32, e *entry) {
	if originOf(e) != 0 {
		t.sc.remote.Add(-1)
	}
	if e.flags&fUnbound != 0 {
		delete(s.sx.unbound, i)
		t.sc.unbound.Add(-1)
	}
}

// enableSync gives every shard its sync side (once).
func (t *Table) enableSync() {
	if t.syncOn.Load() {
		return
	}
	t.syncMu.Lock()
	defer t.syncMu.Unlock()
	if t.syncOn.Load() {
		return
	}
	for i := range t.shards {
		s := &t.shards[i]
		x := &shardSync{unbound: map[uint32][16]byte{}}
		s.mu.Lock()
		s.sx = x
		s.mu.Unlock()
	}
	t.syncOn.Store(true)
}

// SetSyncRules sets the sender's rules In, InOrInsert and Insert apply to every
// inbound packet (nil: none; SyncInfo.Send stays false). Setting rules turns the
// table's sync side on for good.
func (t *Table) SetSyncRules(r *ipvssync.Rules) {
	var p *syncPlan
	if r != nil {
		t.enableSync()
		p = newSyncPlan(r)
	}
	t.syncRules.Store(p)
}

// syncPlan is the sender's rules with what the table derives from them once, when
// they are set (SetSyncRules), so that most table packets are decided by a few bit
// tests (syncStepLocked's plan path) instead of Rules.Needed.
type syncPlan struct {
	ipvssync.Rules
	// local: the rules need nothing but a connection's count, its state and the
	// state it was last sent in (no refresh period, no persist mode: the kernel's
	// defaults). For an uncontrolled or controlled TCP or UDP connection that is no
	// template and no one-packet connection (syncStepLocked's plan path), Needed
	// then sends exactly when the state was entered since the last send and such a
	// change is forced (forcedTCP), or the threshold rule lets the count through
	// (candidate) and the state is one that is sent (sendsTCP; a UDP connection
	// always is: sendsUDP).
	local bool
	// Bit s of sendsTCP: a TCP connection in state s, last sent in s, is sent at a
	// count the threshold rule lets through; of forcedTCP: one that entered s since
	// its last send is sent at any count. Derived by asking Needed, not restated
	// (TestLocalStepMatchesTheGeneralStep compares the sends with Needed's).
	sendsTCP, forcedTCP uint32
	sendsUDP            bool
	// planned[proto]: local rules and proto TCP or UDP (syncStepLocked's plan path
	// for a connection of proto that is no template and not one-packet), one load
	// for the three tests.
	planned [256]bool
	// Bit s of quiet[proto]: the plan path only counts (to 2), and does not send, a
	// connection of proto in state s whose packed sync word is 0 (just confirmed:
	// count, origin, old state and retries 0; or a count wrapped to 0, which the path
	// takes alike) with nothing folded; 0 for a protocol the plan does not decide.
	// Most connections' confirming packet (a TCP handshake's last ACK, a UDP flow's
	// second packet) is decided by this one bit, in line (syncStepLocked).
	quiet [256]uint32
}

// newSyncPlan returns r's plan.
func newSyncPlan(r *ipvssync.Rules) *syncPlan {
	p := &syncPlan{Rules: *r, local: r.RefreshPeriod == 0 && !r.PersistMode}
	if !p.local {
		return p
	}
	p.sendsTCP, p.sendsUDP = SyncSends(r, r.Threshold)
	// A count the threshold rule refuses (with Period 1, every count passes:
	// forcedTCP then also holds sendsTCP, which decides alike).
	refuse := r.Threshold + 1
	for s := range NumStates {
		nc := ipvssync.Conn{Protocol: ipvssync.ProtoTCP, State: uint16(s)}
		if p.Needed(&nc, &ipvssync.ConnState{OldState: uint16((s + 1) % NumStates)}, refuse, 1) {
			p.forcedTCP |= 1 << s
		}
	}
	p.planned[protoTCP], p.planned[protoUDP] = true, true
	// The plan path's decision at count 2 from old state 0 (below).
	for s := range uint32(NumStates) {
		if !(p.forcedTCP>>s&1 != 0 && s != 0 || p.sendsTCP>>s&1 != 0 && p.candidate(2)) {
			p.quiet[protoTCP] |= 1 << s
		}
	}
	if !(p.sendsUDP && p.candidate(2)) {
		p.quiet[protoUDP] = 1 << StateUDP
	}
	return p
}

// SyncSends asks r.Needed, at count pass (one the threshold rule lets through),
// which connections are sent there that were last sent in their present state:
// bit s of tcp for a TCP connection in state s, udp for a UDP one. With rules that
// need nothing but a connection's count and state (no refresh period, no persist
// mode), that decides every such count; the table's plan and the flow cache's
// (package dataplane) are both made from it.
func SyncSends(r *ipvssync.Rules, pass uint32) (tcp uint32, udp bool) {
	for s := range NumStates {
		nc := ipvssync.Conn{Protocol: ipvssync.ProtoTCP, State: uint16(s)}
		if r.Needed(&nc, &ipvssync.ConnState{OldState: uint16(s)}, pass, 1) {
			tcp |= 1 << s
		}
	}
	nc := ipvssync.Conn{Protocol: protoUDP, State: uint16(StateUDP)}
	return tcp, r.Needed(&nc, &ipvssync.ConnState{}, pass, 1)
}

// candidate reports whether the threshold rule lets count pkts through (local rules:
// no refresh period).
func (p *syncPlan) candidate(pkts uint32) bool {
	if pkts < p.Period { // a short flow's count: no division
		return pkts == p.Threshold
	}
	if p.Period > 0 {
		return pkts%p.Period == p.Threshold
	}
	return pkts == p.Threshold
}

// SyncStats returns the counters of the table's sync side.
func (t *Table) SyncStats() SyncStats {
	c := &t.sc
	return SyncStats{
		Created: c.created.Load(), Updated: c.updated.Load(), Replaced: c.replaced.Load(),
		IgnoredInactive: c.ignored.Load(), Refused: c.refused.Load(), Unbound: c.unbound.Load(),
		Bound: c.bound.Load(), Adopted: c.adopted.Load(), Rescheduled: c.resched.Load(),
		Remote: c.remote.Load(),
	}
}

// connState fills cs with r's sender state for e (End is the last send plus e's
// timeout), field by field as neededConn does.
func (r *syncRec) connState(e *entry, cs *ipvssync.ConnState) {
	cs.OldState, cs.Retries, cs.End = uint16(r.oldState), r.retries, 0
	if r.lastSync != 0 {
		cs.End = r.lastSync + int64(e.timeout)*msNs
	}
}

// neededConn fills c with what the sync rules read of e, field by field (a Conn
// built whole and copied is read back in 16-byte words over narrower stores, a failed
// store-to-load forward on every table packet with sync on).
func neededConn(e *entry, c *ipvssync.Conn) {
	c.Protocol, c.State, c.Timeout, c.Controlled = e.proto, uint16(e.state), time.Duration(e.timeout)*time.Millisecond, e.control != 0
	c.Flags = 0
	if e.flags&FlagTemplate != 0 {
		c.Flags |= ipvssync.FlagTemplate
	}
	if e.flags&FlagOnePacket != 0 {
		c.Flags |= ipvssync.FlagOnePkt
	}
}

// syncStepLocked is the sync side of an inbound packet that hit or created entry e
// (after its transition and c's fill): it adopts a received entry, counts the packet
// (and fold packets a flow cache served before it) and asks the sync rules whether to
// send. An entry still on the unconfirmed list is neither counted nor sent. A local
// TCP or UDP connection of local rules is decided by the plan (syncQuietLocked and
// syncPlanLocked, most table packets), one whose count other rules refuse is only
// counted (countOnlyLocked); the rest — an adoption, a template, other rules'
// candidates — takes the general path (syncCountLocked). inLocked makes the same
// calls, the quiet step in line.
//
// Precondition: e's shard lock is held and the table syncs.
func (t *Table) syncStepLocked(e *entry, fold *Fold, now int64, c *Conn) {
	if t.syncQuietLocked(e, fold) {
		countQuiet(e, c)
		return
	}
	if r := t.syncPlanLocked(e, fold, now, c); r != planDone {
		t.syncRestLocked(e, fold, r, now, c)
	}
}

// syncQuietLocked reports whether e's packet is the one that confirms a local
// connection of the plan, with nothing folded (a TCP handshake's last ACK, a UDP
// flow's second packet), which the plan path decides by one bit (syncPlan.quiet):
// countQuiet then counts it (to 2, not sent). It is one expression, in line at
// inLocked: a function in line that changes things and returns from two places
// leaves a bool set and tested again at its caller.
//
// Precondition: as syncStepLocked's.
func (t *Table) syncQuietLocked(e *entry, fold *Fold) bool {
	p := t.syncRules.Load()
	return e.uprev|fold.Pkts == 0 && fold.Sent == 0 && e.flags&(fUnconf|FlagTemplate|FlagOnePacket) == 0 &&
		p != nil && p.quiet[e.proto]>>(e.state&15)&1 != 0
}

// countQuiet is syncStepLocked for a packet syncQuietLocked reports: it counts the
// packet, to 2, and sends nothing (c.Sync is as fillLocked left it: Old 0).
func countQuiet(e *entry, c *Conn) {
	e.uprev = 2
	c.Sync.Pkts = 2
}

// syncPlanLocked is syncStepLocked's plan path, for a local TCP or UDP connection
// (no template, not one-packet, not received, off the unconfirmed list) of local
// rules: the fold, the count and the decision on the packed words, leaving e and c
// as the general path (syncCountLocked) does, but for the last send's tick when it
// changed and c's memo (tickMemo) does not hold it, which it leaves to
// syncRestLocked (planPackNow, planPackFold). For any other connection it changes
// nothing and reports planOut (syncStepOut decides). It calls nothing, so it has no
// frame and spills nothing: the work a call needs is syncRestLocked's, on a send the
// memo misses (one in a tick's sends) or a fold that moves the last send.
//
// Precondition: as syncStepLocked's, and syncQuietLocked reported false.
func (t *Table) syncPlanLocked(e *entry, fold *Fold, now int64, c *Conn) planStep {
	u := e.uprev
	p := t.syncRules.Load()
	if e.flags&(fUnconf|FlagTemplate|FlagOnePacket) != 0 || p == nil || u&0xff0000 != 0 || !p.planned[e.proto] {
		return planOut
	}
	st := uint32(e.state) & 15
	pkts := u & 0xffff
	if pkts == 0 {
		pkts = 1 // just confirmed: its first packet, on the list, was not counted
	}
	pkts = (pkts + fold.Pkts + 1) & 0xffff
	w := u & 0x3f000000 // the old state and the retries, in place
	// A send decided here makes the fold's send, if any, an earlier one: a TCP
	// connection whose state is forced and differs from both the table's last sent
	// state and the folded send's is sent whichever of the two sends was the later
	// one, without comparing their times (a short flow's FIN after the cache's send).
	if e.proto == protoTCP && (p.forcedTCP>>st&1 != 0 && st<<24 != w&0x0f000000 && (fold.Sent == 0 || st != uint32(fold.State&15)) ||
		p.sendsTCP>>st&1 != 0 && p.candidate(pkts)) ||
		e.proto == protoUDP && p.sendsUDP && p.candidate(pkts) {
		e.uprev = pkts | st<<24
		r := planDone
		if m := &c.tick; m.holds(t, now) {
			e.unext = m.w
		} else {
			r = planPackNow
		}
		c.Sync.Send = true
		c.Sync.Pkts, c.Sync.Old = pkts, State(st)
		return r
	}
	r := planDone
	if fold.Sent != 0 && (e.unext == 0 || fold.Sent >= t.lastSyncOf(e.unext)) {
		w, r = uint32(fold.State&15)<<24, planPackFold
	}
	if e.proto == protoTCP && p.forcedTCP>>st&1 != 0 && st<<24 != w&0x0f000000 {
		// Forced by the state the fold's later send left (the test above could
		// not tell which send was the later).
		w, r = st<<24, planPackNow
		c.Sync.Send = true
	}
	e.uprev = pkts | w
	c.Sync.Pkts, c.Sync.Old = pkts, State(w>>24&15)
	return r
}

// planStep is what syncPlanLocked leaves to do.
type planStep uint8

const (
	planDone     planStep = iota // nothing: the step is done
	planOut                      // the step, not the plan's: syncStepOut
	planPackNow                  // a send now, whose tick c's memo did not hold: pack it
	planPackFold                 // the folded send is the last one: pack its tick
)

// syncRestLocked does what syncPlanLocked left (r, not planDone): the step of a
// connection that is not the plan's, or the last send's tick packed into e — a send
// now through c's memo (memoTick), a folded one by syncTick.
//
// Precondition: e's shard lock is held.
func (t *Table) syncRestLocked(e *entry, fold *Fold, r planStep, now int64, c *Conn) {
	switch r {
	case planOut:
		t.syncStepOut(e, fold, now, c)
	case planPackNow:
		e.unext = t.memoTick(now, c)
	case planPackFold:
		e.unext = t.syncTick(fold.Sent)
	}
}

// syncStepOut is syncStepLocked for a packet neither syncQuietLocked nor
// syncPlanLocked decides (planOut).
//
// Precondition: as syncStepLocked's.
func (t *Table) syncStepOut(e *entry, fold *Fold, now int64, c *Conn) {
	if e.flags&fUnconf != 0 {
		c.Sync.Pkts = 1
		return
	}
	u := e.uprev
	p := t.syncRules.Load()
	if p == nil || u&0xff0000 != 0 {
		t.syncCountLocked(e, fold, now, c)
		return
	}
	if fold.Pkts != 0 || fold.Sent != 0 || !t.countOnlyLocked(&p.Rules, e, u, c) {
		t.syncCountLocked(e, fold, now, c)
	}
}

// syncCountLocked is syncStepLocked's general path for an entry off the unconfirmed
// list: adoption, the fold, the count, the rules.
//
// Precondition: e's shard lock is held, e is not on the unconfirmed list.
func (t *Table) syncCountLocked(e *entry, fold *Fold, now int64, c *Conn) {
	if originOf(e) != 0 {
		t.adoptLocked(e, c)
	}
	var r syncRec
	t.loadSync(e, &r)
	if r.pkts == 0 {
		r.pkts = 1 // just confirmed: its first packet, on the list, was not counted
	}
	fold.apply(&r)
	r.pkts = (r.pkts + 1) & 0xffff
	t.syncRulesLocked(&r, e, now, c)
	t.storeSync(e, &r)
}

// countOnlyLocked is syncStepLocked for the packet of a local entry (sync word u, no
// fold) whose count the rules refuse (countRefuses): it counts the packet in e's sync
// word and fills c.Sync as the general path does, reading and writing only the packed
// word, and reports true; otherwise it changes nothing and reports false.
//
// Precondition: e's shard lock is held, e is not on the unconfirmed list.
func (t *Table) countOnlyLocked(rules *ipvssync.Rules, e *entry, u uint32, c *Conn) bool {
	pkts := u & 0xffff
	if pkts == 0 {
		pkts = 1 // just confirmed: its first packet, on the list, was not counted
	}
	r := syncRec{pkts: (pkts + 1) & 0xffff, oldState: uint8(u>>24) & 15}
	if !countRefuses(rules, e, &r) {
		return false
	}
	e.uprev = u&^0xffff | r.pkts
	c.Sync.Pkts, c.Sync.Old = r.pkts, State(r.oldState)
	return true
}

// SyncFold applies what a flow cache did for connection k without the table (when it
// gives k's slot to another flow with a send not yet recorded). It does nothing when k
// has no live connection.
func (t *Table) SyncFold(k *Key, f *Fold, now int64) {
	if !t.syncOn.Load() {
		return
	}
	h := t.hash(k.Proto, k.IPv6, &k.CAddr, k.CPort)
	s := &t.shards[t.shardOf(h)]
	s.mu.Lock()
	if i := t.findInLocked(s, k, k.CPort, h, now); i != 0 {
		e := s.at(i)
		var r syncRec
		t.loadSync(e, &r)
		f.apply(&r)
		t.storeSync(e, &r)
	}
	s.mu.Unlock()
}

// adoptLocked makes the received entry e this director's (origin 0), as a local
// packet's use of it does, and reports it in c.Sync.
//
// Precondition: e's shard lock is held and e is not on the unconfirmed list.
func (t *Table) adoptLocked(e *entry, c *Conn) {
	var r syncRec
	t.loadSync(e, &r)
	r.origin = 0
	t.sc.remote.Add(-1)
	t.storeSync(e, &r)
	c.Sync.Origin, c.Sync.Adopted = 0, true
	t.sc.adopted.Add(1)
}

// syncRulesLocked asks the sync rules whether entry e, with sync state r, is to be
// sent now, records a send in r, and reports it in c.Sync.
//
// Precondition: e's shard lock is held.
func (t *Table) syncRulesLocked(r *syncRec, e *entry, now int64, c *Conn) {
	if p := t.syncRules.Load(); p != nil && !countRefuses(&p.Rules, e, r) {
		var (
			nc ipvssync.Conn
			cs ipvssync.ConnState
		)
		neededConn(e, &nc)
		r.connState(e, &cs)
		if p.Needed(&nc, &cs, r.pkts, now) {
			c.Sync.Send = true
			r.lastSync, r.oldState, r.retries = now, uint8(cs.OldState), cs.Retries
		}
	}
	c.Sync.Pkts, c.Sync.Old = r.pkts, State(r.oldState)
}

// countRefuses reports that rules cannot send e at count r.pkts, which decides most
// table packets' sync step without building Needed's arguments or calling it: the
// threshold rule refuses the count, and nothing that would override it applies — e is
// no template (sent at any count) and no TCP or SCTP connection whose state differs
// from the one last sent (a forced send; TCP's change to ESTABLISHED is not forced,
// but it is left to Needed too unless the state is ESTABLISHED). The refresh rule
// can only refuse more. TestCountRefusesOnlyWhatNeededRefuses checks it against
// Needed.
func countRefuses(rules *ipvssync.Rules, e *entry, r *syncRec) bool {
	if rules.Period > 0 {
		if r.pkts%rules.Period == rules.Threshold {
			return false
		}
	} else if rules.RefreshPeriod > 0 || r.pkts == rules.Threshold {
		return false
	}
	switch {
	case e.flags&FlagTemplate != 0:
		return false
	case e.proto == ipvssync.ProtoTCP:
		return uint16(e.state) == uint16(r.oldState) || uint16(e.state) == ipvssync.TCPEstablished
	}
	return e.proto != ipvssync.ProtoSCTP
}

// SyncCached is the sync step of a packet a flow cache served without the table, when
// its count reached a point where the rules may send (pkts packets of connection k
// since the table last counted them, this one included): it counts them, asks the
// rules and fills c (c.Sync.Send: push it). It reports false, changing nothing, when k
// has no live connection. Sync must be on (SetSyncRules).
func (t *Table) SyncCached(k *Key, pkts uint32, now int64, c *Conn) bool {
	if !t.syncOn.Load() {
		return false
	}
	h := t.hash(k.Proto, k.IPv6, &k.CAddr, k.CPort)
	si := t.shardOf(h)
	s := &t.shards[si]
	s.mu.Lock()
	i := t.findInLocked(s, k, k.CPort, h, now)
	if i == 0 || s.at(i).flags&fUnconf != 0 {
		s.mu.Unlock()
		return false
	}
	e := s.at(i)
	d := t.destOf(e)
	t.fillLocked(si, i, e, c)
	var r syncRec
	t.loadSync(e, &r)
	if r.pkts == 0 {
		r.pkts = 1
	}
	r.pkts = (r.pkts + pkts) & 0xffff
	t.syncRulesLocked(&r, e, now, c)
	t.storeSync(e, &r)
	s.mu.Unlock()
	fillDAddr(c, d)
	return true
}

// Upsert applies r, received from another director (origin 1..255), with the kernel
// receiver's semantics (docs/cluster.md §4.4):
//
//   - a connection found under r's key but bound to another real server is replaced
//     by an active record and kept (the record ignored, counted) for an inactive one;
//   - an existing entry takes r's INACTIVE bit (moving its dest's counters), its state
//     (ASSURED for a template) and timeout, and its timer restarts; an unbound one is
//     bound to dest when dest is its real server;
//   - a new entry is bound to dest (counted in its active, inactive or persistent
//     connections; the kernel gives a bound connection its dest's forwarding method,
//     so with dest the caller passes the dest's method in r.Method, as
//     dataplane.Director.SyncDest returns it) or, with dest nil, kept unbound,
//     remembering r's DAddr, DPort and Method until BindUnbound binds it; a local
//     packet for an unbound connection replaces it (it is rescheduled: the director
//     cannot forward to a real server it does not know).
//
// An entry's origin becomes the sender's: the last director to send a connection owns
// it, until a local packet adopts it (origin 0, SyncInfo.Adopted). New entries respect
// conn_max and the shard's slab bound; nothing is evicted for them. Upsert reports
// false, counted, when it refused r (full, or origin 0). now is on the data path's
// clock — the time the workers pass to the table — as for every Table call.
func (t *Table) Upsert(r *Remote, dest *sched.Dest, origin uint8, now int64) bool {
	if origin == 0 {
		t.sc.refused.Add(1)
		return false
	}
	t.enableSync()
	t.initClock(now)
	if dest != nil {
		t.remember(dest)
	}
	k := &r.Key
	tpl := r.Flags&FlagTemplate != 0
	h := t.hash(k.Proto, k.IPv6, &k.CAddr, k.CPort)
	si := t.shardOf(h)
	s := &t.shards[si]
	s.mu.Lock()
	defer s.mu.Unlock()
	var i uint32
	if tpl {
		i = t.findTplLocked(s, k, h, now)
	} else {
		i = t.findInLocked(s, k, k.CPort, h, now)
	}
	if i != 0 {
		e := s.at(i)
		if tpl || t.sameServerLocked(s, i, e, r) {
			t.updateLocked(s, i, e, r, dest, origin, now)
			t.sc.updated.Add(1)
			return true
		}
		if r.Flags&FlagInactive != 0 {
			t.sc.ignored.Add(1)
			return true
		}
		if e.nctl == 0 {
			t.expireNowLocked(s, i, e, now)
		}
		t.sc.replaced.Add(1)
	}
	if !t.slabRoomLocked(s) {
		t.slabRefused.Add(1)
		t.sc.refused.Add(1)
		return false
	}
	if !t.reserve(false) {
		t.sc.refused.Add(1)
		return false
	}
	i = s.allocLocked()
	e := s.at(i)
	flags := r.Flags & (FlagNoOutput | FlagInactive | FlagNoCPort)
	if tpl {
		flags = FlagTemplate | r.Flags&FlagAssured
	} else if dest != nil {
		// A bound connection forwards as its dest does (ip_vs_bind_dest of a synced
		// connection keeps only the record's INACTIVE bit).
		flags &^= FlagNoOutput
		if r.Method != ipvs.NAT {
			flags |= FlagNoOutput
		}
	}
	t.initEntry(e, k, dest, r.DPort, r.Method, flags, 0)
	switch {
	case tpl:
		e.state = StateNone
	case k.Proto == protoTCP && int(r.State) < NumStates:
		e.state = r.State
	}
	t.setRemoteTimeout(e, r)
	e.expires = now + int64(e.timeout)*msNs
	switch {
	case dest == nil:
		e.flags |= fUnbound
		s.sx.unbound[i] = r.DAddr
		t.sc.unbound.Add(1)
	case tpl:
		dest.Bind(true)
	default:
		dest.BindConn(e.flags&FlagInactive == 0)
	}
	t.linkLocked(s, h, i, e)
	t.fileLocked(s, i, e)
	if e.flags&FlagNoCPort != 0 {
		t.noCPort.Add(1)
	}
	rec := syncRec{origin: origin, oldState: uint8(e.state)}
	if rules := t.syncRules.Load(); rules != nil {
		rec.pkts = rules.Threshold // ip_vs_proc_conn: in_pkts = sync_threshold
	}
	t.storeSync(e, &rec)
	t.sc.created.Add(1)
	t.sc.remote.Add(1)
	return true
}

// setRemoteTimeout sets e's timeout from r: the record's, or (a v0 record) the
// state's, a template's 3 minutes.
func (t *Table) setRemoteTimeout(e *entry, r *Remote) {
	switch {
	case r.Timeout > 0:
		e.timeout = durMs(r.Timeout)
	case e.flags&FlagTemplate != 0:
		e.timeout = durMs(3 * time.Minute)
	case e.proto == protoTCP:
		e.timeout = t.timeouts.Load().tcp[e.state]
	default:
		e.timeout = t.timeouts.Load().udp
	}
}

// sameServerLocked reports whether connection i is bound (or, unbound, meant) to r's
// real server and port.
//
// Precondition: s.mu is held.
func (t *Table) sameServerLocked(s *shard, i uint32, e *entry, r *Remote) bool {
	if e.dport != r.DPort {
		return false
	}
	if e.flags&fUnbound != 0 {
		return s.sx.unbound[i] == r.DAddr
	}
	if d := t.destOf(e); d != nil {
		return d.RawAddr() == r.DAddr
	}
	return false // a local bypass connection: no real server to compare
}

// updateLocked applies a record to the existing entry i (Upsert).
//
// Precondition: s.mu is held.
func (t *Table) updateLocked(s *shard, i uint32, e *entry, r *Remote, dest *sched.Dest, origin uint8, now int64) {
	// Another director's record proves the client of a connection still unconfirmed
	// here; off the list, the entry has room for its sync state.
	t.unlinkUnconfLocked(s, e)
	if e.flags&FlagTemplate != 0 {
		e.flags = e.flags&^FlagAssured | r.Flags&FlagAssured
	} else {
		inactive := r.Flags&FlagInactive != 0
		if was := e.flags&FlagInactive != 0; was != inactive {
			if d := t.destOf(e); d != nil {
				if inactive {
					d.Deactivate()
				} else {
					d.Activate()
				}
			}
			e.flags ^= FlagInactive
		}
		if e.proto == protoTCP && int(r.State) < NumStates {
			e.state = r.State
		}
	}
	if e.flags&fUnbound != 0 && dest != nil && dest.RawAddr() == s.sx.unbound[i] && dest.Port() == e.dport {
		t.bindLocked(s, i, e, dest)
	}
	t.setRemoteTimeout(e, r)
	t.rearmLocked(s, i, e, now+int64(e.timeout)*msNs)
	var rec syncRec
	t.loadSync(e, &rec)
	if rec.origin == 0 {
		t.sc.remote.Add(1) // a local entry another director now sends
	}
	rec.origin = origin
	rec.oldState = uint8(e.state)
	if rules := t.syncRules.Load(); rules != nil {
		rec.pkts = rules.Threshold
	}
	t.storeSync(e, &rec)
}

// bindLocked binds the unbound entry i to d.
//
// Precondition: s.mu is held; d was remembered.
func (t *Table) bindLocked(s *shard, i uint32, e *entry, d *sched.Dest) {
	delete(s.sx.unbound, i)
	t.sc.unbound.Add(-1)
	t.sc.bound.Add(1)
	e.flags = e.flags&^fUnbound | fHasDest
	e.dest = d.ID()
	if e.flags&FlagTemplate != 0 {
		d.Bind(true)
	} else {
		d.BindConn(e.flags&FlagInactive == 0)
	}
}

// findTplLocked returns the live template for k in h's bucket (Template's match,
// without its validity check), or 0.
//
// Precondition: s.mu is held.
func (t *Table) findTplLocked(s *shard, k *Key, h uint64, now int64) uint32 {
	for i := *t.head(h); i != 0; {
		e := s.at(i)
		if e.cport == k.CPort && e.vport == k.VPort && e.caddr == k.CAddr &&
			e.proto == k.Proto && e.flags&FlagTemplate != 0 &&
			(e.flags&fIPv6 != 0) == k.IPv6 && vaddrMatch(k, &e.vaddr) &&
			aliveLocked(e, now) {
			return i
		}
		i = e.next
	}
	return 0
}

// BindUnbound binds the unbound received entries whose real server is d and whose
// virtual service is (vaddr, vport, proto) — for a fwmark template vaddr holds the mark
// and proto is 0 — and returns how many it bound. The data path's owner calls it when
// a real server is added.
func (t *Table) BindUnbound(vaddr [16]byte, vport uint16, proto uint8, d *sched.Dest) int {
	if d == nil || t.sc.unbound.Load() == 0 {
		return 0
	}
	t.remember(d)
	daddr, dport := d.RawAddr(), d.Port()
	n := 0
	for si := range t.shards {
		s := &t.shards[si]
		s.mu.Lock()
		if s.sx != nil {
			for i, a := range s.sx.unbound {
				e := s.at(i)
				if a == daddr && e.dport == dport && e.vport == vport && e.proto == proto && e.vaddr == vaddr {
					t.bindLocked(s, i, e, d)
					n++
				}
			}
		}
		s.mu.Unlock()
	}
	return n
}

// Rebind binds every unbound received entry whose real server resolve now finds —
// resolve gets the entry's key (a fwmark template's holds the mark, protocol 0) and
// the real server the record named — and returns how many it bound. Unlike
// BindUnbound it needs no service address, so it also binds the entries of port-0
// and fwmark services, whose keys carry the packet's port and VIP. It costs
// O(unbound entries); resolve runs with no table lock held.
func (t *Table) Rebind(resolve func(k *Key, daddr [16]byte, dport uint16) *sched.Dest) int {
	if t.sc.unbound.Load() == 0 {
		return 0
	}
	type cand struct {
		i     uint32
		k     Key
		daddr [16]byte
		dport uint16
		d     *sched.Dest
	}
	var cs []cand
	n := 0
	for si := range t.shards {
		s := &t.shards[si]
		cs = cs[:0]
		s.mu.Lock()
		if s.sx != nil {
			for i, a := range s.sx.unbound {
				e := s.at(i)
				cs = append(cs, cand{i: i, daddr: a, dport: e.dport, k: Key{Proto: e.proto, IPv6: e.flags&fIPv6 != 0,
					CAddr: e.caddr, CPort: e.cport, VAddr: e.vaddr, VPort: e.vport}})
			}
		}
		s.mu.Unlock()
		found := false
		for j := range cs {
			if cs[j].d = resolve(&cs[j].k, cs[j].daddr, cs[j].dport); cs[j].d != nil {
				t.remember(cs[j].d)
				found = true
			}
		}
		if !found {
			continue
		}
		s.mu.Lock()
		for j := range cs {
			c := &cs[j]
			if c.d == nil {
				continue
			}
			// The entry may have been bound, replaced or freed meanwhile: bind it only
			// if slot i still holds the same unbound connection.
			e := s.at(c.i)
			if a, ok := s.sx.unbound[c.i]; ok && a == c.daddr && e.dport == c.dport && e.proto == c.k.Proto &&
				e.caddr == c.k.CAddr && e.cport == c.k.CPort && e.vaddr == c.k.VAddr && e.vport == c.k.VPort {
				t.bindLocked(s, c.i, e, c.d)
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}
