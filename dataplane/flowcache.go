package dataplane

import (
	"encoding/binary"
	"time"
	"unsafe"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/ipvs"
)

// A flowCache remembers, per worker, the established connections the worker forwards,
// so a packet of such a flow is sent without touching the shared connection table:
// no shard lock, no hash walk — the established path of a busy flow shares nothing
// with other workers (PACKET_FANOUT keeps a flow on one worker).
//
// Only packets that cannot change the connection's state are served from it: a TCP
// segment whose flag class is ACK (no SYN, FIN or RST) on a connection in ESTABLISHED
// — ESTABLISHED + ACK stays ESTABLISHED in every IPVS table (docs/ipvs-semantics.md §7.1) — and
// UDP, whose single state never changes. Everything else goes to the table, and so
// does a cached flow once refreshEvery has passed since the table last saw it, which
// re-arms the entry's timer: expiry then differs from the kernel's by less than that,
// the table's own timer tick. A deleted real server sends the flow back to the table
// at once (which drops or expires it as IPVS does), and so does anything the table
// does not answer with a hit.
//
// The zero value is not usable; the cache is a fixed array (no allocation per packet).
type flowCache struct {
	// used has a bit per slot holding a valid flow: 512 bytes that stay in L1, so a
	// miss or a forget of an empty slot never reads the slot itself (288 KiB).
	used  [flowCacheSize / 64]uint64
	slots [flowCacheSize]flowSlot
}

const (
	flowCacheBits = 12
	flowCacheSize = 1 << flowCacheBits
	// refreshEvery is how long a cached flow is served without the table: the
	// connection table's timer tick (conntrack's default Tick).
	refreshEvery = int64(100 * time.Millisecond)
)

type flowSlot struct {
	key       conntrack.Key
	daddr     [16]byte
	dport     uint16
	method    ipvs.Method
	dest      uint32
	refreshed int64
}

// prefault touches every page of the slots, so a new worker's first packets do not
// pay the kernel's page faults for them (a short replay lost ≈ 30 ns a packet to it).
func (fc *flowCache) prefault() {
	per := max(1, 4096/int(unsafe.Sizeof(flowSlot{})))
	for i := 0; i < len(fc.slots); i += per {
		fc.slots[i].refreshed = 0
	}
}

func (fc *flowCache) isUsed(i uint32) bool { return fc.used[i/64]&(1<<(i%64)) != 0 }
func (fc *flowCache) setUsed(i uint32)     { fc.used[i/64] |= 1 << (i % 64) }
func (fc *flowCache) clearUsed(i uint32)   { fc.used[i/64] &^= 1 << (i % 64) }

func flowIndex(k *conntrack.Key) uint32 {
	h := binary.LittleEndian.Uint64(k.CAddr[:8]) ^ binary.LittleEndian.Uint64(k.CAddr[8:])*0x9e3779b97f4a7c15
	h ^= (binary.LittleEndian.Uint64(k.VAddr[:8]) ^ binary.LittleEndian.Uint64(k.VAddr[8:])) * 0xc2b2ae3d27d4eb4f
	h ^= uint64(k.CPort)<<32 | uint64(k.VPort)<<16 | uint64(k.Proto)
	h *= 0x9e3779b97f4a7c15
	return uint32(h >> (64 - flowCacheBits))
}

// cacheable reports whether a packet with these TCP flags (0 for UDP) cannot change
// an ESTABLISHED (or UDP) connection's state.
func cacheable(proto, flags uint8) bool {
	if proto == header.IPProtoUDP {
		return true
	}
	return flags&(header.TCPFlagSYN|header.TCPFlagFIN|header.TCPFlagRST) == 0 && flags&header.TCPFlagACK != 0
}

// lookup returns the cached forwarding of k, fresh at now, or nil.
func (fc *flowCache) lookup(k *conntrack.Key, now int64) *flowSlot {
	i := flowIndex(k)
	if !fc.isUsed(i) {
		return nil
	}
	e := &fc.slots[i]
	if e.key != *k || now-e.refreshed >= refreshEvery || now < e.refreshed {
		return nil
	}
	return e
}

// store remembers c (the table's answer at now) when it is safe to serve k's next
// packets from the cache, and forgets k otherwise.
func (fc *flowCache) store(k *conntrack.Key, c *conntrack.Conn, now int64) {
	if (k.Proto == header.IPProtoTCP && c.State != conntrack.StateEstablished) || !c.HasDest || c.Flags&conntrack.FlagOnePacket != 0 {
		fc.forget(k)
		return
	}
	i := flowIndex(k)
	e := &fc.slots[i]
	if fc.isUsed(i) && e.key != *k && now-e.refreshed < refreshEvery && now >= e.refreshed {
		// A fresh flow holds the slot: keep it rather than thrash between two
		// flows (with many concurrent flows, the busy ones stay cached).
		return
	}
	*e = flowSlot{key: *k, daddr: c.DAddr, dport: c.DPort, method: c.Method, dest: c.Dest, refreshed: now}
	fc.setUsed(i)
}

// forget drops k from the cache.
func (fc *flowCache) forget(k *conntrack.Key) {
	if i := flowIndex(k); fc.isUsed(i) && fc.slots[i].key == *k {
		fc.clearUsed(i)
	}
}
