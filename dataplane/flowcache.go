package dataplane

import (
	"encoding/binary"
	"time"
	"unsafe"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/ipvs"
)

// A flowCache remembers, per worker, the connections the worker forwards, so a packet
// of such a flow is sent without touching the shared connection table: no shard lock,
// no hash walk — the established path of a busy flow shares nothing with other
// workers (PACKET_FANOUT keeps a flow on one worker).
//
// A slot holds the connection's forwarding and its TCP state as the table last
// answered. Only packets that cannot change the connection are served from it: UDP,
// whose single state never changes, and a TCP segment without SYN or RST whose input
// transition leaves the cached state as it is (conntrack.InputKeeps: ESTABLISHED + ACK
// stays ESTABLISHED in every IPVS table, docs/ipvs-semantics.md §7.1; so does the
// last ACK of a closing DR flow, FIN_WAIT + ACK in the INPUT-ONLY table). A
// connection whose state replies can move (NAT without NOOUTPUT) is cached only in
// ESTABLISHED, where no reply's transition makes an ACK change anything; one with
// NOOUTPUT (DR, TUN) sees no replies, so its state moves only by the packets this
// worker sends to the table, and it is cached in any state.
//
// Everything else goes to the table, and so does a cached flow once refreshEvery has
// passed since the table last saw it (or the connection's expiry time then, if
// sooner), which re-arms the entry's timer: expiry then differs from the kernel's by
// less than that, the table's own timer tick. A deleted real server sends the flow
// back to the table at once (which drops or expires it as IPVS does), and so does
// anything the table does not answer with a hit.
//
// The zero value is not usable; the cache is a fixed array (no allocation per packet).
type flowCache struct {
	// used has a bit per slot holding a valid flow: 1 KiB that stays in L1, so a
	// miss or a forget of an empty slot never reads the slot itself (1 MiB).
	used  [flowCacheSize / 64]uint64
	slots [flowCacheSize]flowSlot
}

const (
	// flowCacheBits: 8,192 slots, 1 MiB a worker, of which a packet touches only its
	// flow's slot. A flow whose slot another fresh flow holds (flowCache.store keeps
	// that one) sends every packet to the table's lookup: with 4,096 slots, 243 of
	// the 10,000 packets of synth's default trace (1,024 flows open at once), with
	// 8,192 two; 16,384 gained nothing more (docs/benchmarks.md §1).
	flowCacheBits = 13
	flowCacheSize = 1 << flowCacheBits
	// refreshEvery is how long a cached flow is served without the table: the
	// connection table's timer tick (conntrack's default Tick).
	refreshEvery = int64(100 * time.Millisecond)
)

type flowSlot struct {
	// The first line: everything a cached packet reads (the key, the forwarding of
	// xmit's DR case, the TCP flags it serves, the time it is served until, and, with
	// cluster sync on, the countdown to the flow's next sync candidate).
	key    conntrack.Key
	method ipvs.Method
	state  conntrack.State
	keeps  uint16 // the TCP packets served: conntrack.InputKeepsSet(state, FlagNoOutput)
	dest   uint32
	// until: served while until-refreshEvery <= now < until (fresh), until being the
	// table's last answer for the flow plus refreshEvery, or the expiry if sooner.
	until int64
	// With cluster sync on (sync.go): packets served since the table last counted
	// the flow's, and the spend at which its count reaches the sync rules' next
	// candidate (countServed; snext = spend: none before spend wraps).
	spend, snext uint32

	// The second line: what xmit's other methods (NAT's destination, TUN's) and the
	// sync side read.
	daddr [16]byte
	dport uint16
	ref   conntrack.Ref // the connection's entry (sync events name it)
	x     slotExt       // the rest of the flow's sync state (sync.go)
	// ev is where the slot's last sync event is in the worker's ring (its position
	// plus one; 0: none), and evv that event (valid while ev is not 0): a push of the
	// same event while it is unclaimed is left out (queued), and a push of the
	// flow's event once it was claimed reuses evv rather than hashing the key again.
	// ev is 0 in a slot not in use (clearUsed) and store clears it when it takes a
	// slot in use by another flow, so evv is always an event for the slot's key; its
	// low bits name the connection (a new connection of the same key has another
	// reference).
	ev, evv uint64
	_       [8]byte // to the second line's end
}

// A slot is two whole cache lines (the cache is page-aligned, a large allocation),
// and a packet the cache serves reads only the first: the key, the forwarding, the
// flags served, the time and the sync countdown fill it, 64 bytes to the byte. On the
// synthetic trace the cache holds a thousand flows at random, more than L1 holds of
// them either way, and every cached packet read a second line for the time (the
// table's answer's time and the end were on it): 1.32 simulated L1 misses a packet in
// the flow cache, 0.68 with one line (callgrind's simulation, 110,000 packets of
// BenchmarkReplayFlowLength len=40). The second line holds what only NAT's and TUN's
// sends (daddr, dport) and the sync side read; the sync state once lived in an array
// beside the slots, one more cold line for every table packet of a flow.
var (
	_ [unsafe.Sizeof(flowSlot{}) - 128]byte
	_ [128 - unsafe.Sizeof(flowSlot{})]byte
	_ [unsafe.Offsetof(flowSlot{}.daddr) - 64]byte
	_ [64 - unsafe.Offsetof(flowSlot{}.daddr)]byte
)

// prefault touches every page of the slots, so a new worker's first packets do not
// pay the kernel's page faults for them (a short replay lost ≈ 30 ns a packet to it).
func (fc *flowCache) prefault() {
	per := max(1, 4096/int(unsafe.Sizeof(flowSlot{})))
	for i := 0; i < len(fc.slots); i += per {
		fc.slots[i].until = 0
	}
}

func (fc *flowCache) isUsed(i uint32) bool { return fc.used[i/64]&(1<<(i%64)) != 0 }
func (fc *flowCache) setUsed(i uint32)     { fc.used[i/64] |= 1 << (i % 64) }

// clearUsed marks slot i empty, with no sync event (flowSlot.ev: a slot not in use has
// none, so store clears it only when it takes a slot another flow uses).
func (fc *flowCache) clearUsed(i uint32) {
	fc.used[i/64] &^= 1 << (i % 64)
	fc.slots[i].ev = 0
}

func flowIndex(k *conntrack.Key) uint32 { return uint32(flowHash(k) >> (64 - flowCacheBits)) }

// flowHash is the flow cache's hash of k (its high bits are k's slot index): both
// addresses whole, both ports and the protocol. Its high 31 bits are also the check
// word of k's sync events (keyCheck), so the cache's send reuses the hash its lookup
// computed for the packet.
func flowHash(k *conntrack.Key) uint64 {
	h := binary.LittleEndian.Uint64(k.CAddr[:8]) ^ binary.LittleEndian.Uint64(k.CAddr[8:])*0x9e3779b97f4a7c15
	h ^= (binary.LittleEndian.Uint64(k.VAddr[:8]) ^ binary.LittleEndian.Uint64(k.VAddr[8:])) * 0xc2b2ae3d27d4eb4f
	h ^= uint64(k.CPort)<<32 | uint64(k.VPort)<<16 | uint64(k.Proto)
	return h * 0x9e3779b97f4a7c15
}

// flowHash4 is flowHash of the IPv4 key setKey makes of these fields (addresses as
// their 4 bytes read little-endian), from the fields: the key's upper address words
// are zero, so their products are.
func flowHash4(proto uint8, caddr uint32, cport uint16, vaddr uint32, vport uint16) uint64 {
	h := uint64(caddr) ^ uint64(vaddr)*0xc2b2ae3d27d4eb4f
	h ^= uint64(cport)<<32 | uint64(vport)<<16 | uint64(proto)
	return h * 0x9e3779b97f4a7c15
}

// keyIs4 reports whether k, a key setKey made, is the IPv4 key it makes of these
// fields (addresses as flowHash4 takes them): keyEqual without that key. An IPv4
// key's upper address words are zero (setKey), so the first words and the family
// decide.
func keyIs4(k *conntrack.Key, proto uint8, caddr uint32, cport uint16, vaddr uint32, vport uint16) bool {
	le := binary.LittleEndian
	return le.Uint64(k.CAddr[:8]) == uint64(caddr) && le.Uint64(k.VAddr[:8]) == uint64(vaddr) &&
		k.CPort == cport && k.VPort == vport && k.Proto == proto && !k.IPv6
}

// keyEqual is a == b in five word compares and no call (== on a Key calls the
// runtime's generic memequal).
func keyEqual(a, b *conntrack.Key) bool {
	return a.CAddr == b.CAddr && a.VAddr == b.VAddr && a.CPort == b.CPort && a.VPort == b.VPort &&
		a.Proto == b.Proto && a.IPv6 == b.IPv6
}

// serves reports whether a packet of the flow in e with these TCP flags (0 for UDP)
// may be sent from the cache: it cannot change the connection.
func (e *flowSlot) serves(proto, flags uint8) bool {
	return proto != header.IPProtoTCP || e.keeps&conntrack.InputKeepsBit(flags) != 0
}

// fresh reports whether the slot may serve at now: until-refreshEvery <= now < until,
// one unsigned compare. now is then at most refreshEvery before the end of the table's
// answer, and before the connection's expiry: when until is the table's answer's
// time plus refreshEvery, the window is exactly from that time on; when the expiry
// came sooner, it reaches back before it (a clock that went back a little: the
// connection was alive then too).
func (e *flowSlot) fresh(now int64) bool { return uint64(e.until-now-1) < uint64(refreshEvery) }

// store remembers c (the table's answer at now) when k's next packets may be served
// from the cache (see flowCache), and forgets k otherwise. fh is k's flowHash, or 0
// when the caller did not compute it (a hash that is 0 is computed again, to the same
// slot). It returns k's slot when it stored k there, else nil.
func (fc *flowCache) store(fh uint64, k *conntrack.Key, c *conntrack.Conn, now int64) *flowSlot {
	if fh == 0 {
		fh = flowHash(k)
	}
	i := uint32(fh >> (64 - flowCacheBits))
	if !cacheable(k.Proto, c) {
		if fc.isUsed(i) && keyEqual(&fc.slots[i].key, k) {
			fc.clearUsed(i)
		}
		return nil
	}
	e := &fc.slots[i]
	if fc.isUsed(i) && !keyEqual(&e.key, k) && e.keptFrom(now) {
		// A fresh flow holds the slot: keep it rather than thrash between two
		// flows (with many concurrent flows, the busy ones stay cached).
		return nil
	}
	e.key = *k
	e.fill(c, now)
	fc.setUsed(i)
	return e
}

// restore is store for a flow whose slot already holds it: e, slot i, found holding
// the flow's key before the table answered (inbound's lookup; nothing clears or
// takes a slot in between). The key, the test of whose flow the slot holds and the
// slot's in-use bit are as store would leave them, so only the answer is written:
// store's result, without hashing, comparing or copying the key.
func (fc *flowCache) restore(i uint32, e *flowSlot, c *conntrack.Conn, now int64) *flowSlot {
	if !cacheable(e.key.Proto, c) {
		fc.clearUsed(i)
		return nil
	}
	e.fill(c, now)
	return e
}

// cacheable reports whether a flow of protocol proto with the table's answer c may
// be served from the cache: it has a dest, is not one-packet, and for TCP is
// ESTABLISHED or INPUT-ONLY (FlagNoOutput: no reply seen, whose packets InputKeeps
// tells in any state).
func cacheable(proto uint8, c *conntrack.Conn) bool {
	return c.HasDest && cacheableAs(proto, c.State, c.Flags)
}

// cacheableAs is cacheable for a connection with a dest, in state st with flags.
func cacheableAs(proto uint8, st conntrack.State, flags conntrack.Flags) bool {
	return flags&conntrack.FlagOnePacket == 0 &&
		(proto != header.IPProtoTCP || st == conntrack.StateEstablished || flags&conntrack.FlagNoOutput != 0)
}

// fill writes the table's answer c at now into e, every field but the key and the
// sync event (ev, evv): field by field (TestFlowSlotStoreSetsEveryField), as a
// composite literal is built on the stack and then copied, 128 bytes more to move
// (c never points into the slots).
func (e *flowSlot) fill(c *conntrack.Conn, now int64) {
	e.daddr, e.dport, e.method, e.state = c.DAddr, c.DPort, c.Method, c.State
	e.keeps = conntrack.InputKeepsSet(c.State, c.Flags&conntrack.FlagNoOutput != 0)
	e.dest, e.until = c.Dest, min(now+refreshEvery, c.Expires)
	e.spend, e.snext, e.x, e.ref = 0, 0, slotExt{}, c.Ref
}

// keptFrom reports whether slot e, which holds another flow, is kept from one that
// would take it at now (its flow is fresh); if not, it clears the slot's sync event
// (flowSlot.ev), which was the other flow's.
func (e *flowSlot) keptFrom(now int64) bool {
	if e.fresh(now) {
		return true
	}
	e.ev = 0
	return false
}

// holding returns slot i when it holds k, else nil.
func (fc *flowCache) holding(i uint32, k *conntrack.Key) *flowSlot {
	if fc.isUsed(i) && keyEqual(&fc.slots[i].key, k) {
		return &fc.slots[i]
	}
	return nil
}

// forget drops k from the cache.
func (fc *flowCache) forget(k *conntrack.Key) {
	if i := flowIndex(k); fc.isUsed(i) && keyEqual(&fc.slots[i].key, k) {
		fc.clearUsed(i)
	}
}
