package sched

import (
	"net/netip"
	"sync/atomic"
)

// Dest flags, as IPVS's IP_VS_DEST_F_* (docs/ipvs-semantics.md §1.2).
const (
	FlagAvailable uint32 = 1 << iota // the dest is in its service's list
	FlagOverload                     // upper threshold reached (§2.6)
)

// A Dest is a real server of one service. Its address, port and ID never change; its
// weight, thresholds and flags change through the Pool that owns it, and its connection
// counters through Bind/Unbind/Activate/Deactivate, called by the connection table.
//
// The zero value is not usable: build one with NewDest. A Dest is safe for concurrent
// use: readers outside the Pool's lock see atomically updated fields.
//
// The address is kept as raw bytes and a family, not as a netip.Addr: an Addr holds a
// pointer (its family and zone), which the collector would follow in every dest at
// every cycle (one pointer per service of the Director, which makes each dest with its
// pool, sched.PoolRoom). Addr builds the netip.Addr; a zone is not kept (the
// configuration refuses zoned addresses).
type Dest struct {
	port uint16
	v6   bool     // raw is an IPv6 address
	fold uint32   // host-order address, IPv6 folded by XOR of its four words
	raw  [16]byte // the address as the data path holds it: IPv4 in the first 4 bytes
	id   uint32

	lastWeight atomic.Int32 // latest non-zero weight (set on add even if zero)

	weight     atomic.Int32
	uThreshold atomic.Uint32
	lThreshold atomic.Uint32
	flags      atomic.Uint32
	// conns is activeconns·2³² + inactconns, one word so that a connection changing
	// state (Activate, Deactivate) or bound in its first state (BindConn) costs one
	// atomic operation, and readers see the two counters of one instant. The sum is
	// linear, so adding −1 to a zero count is the same as on two counters (see
	// splitConns); it is exact while each count fits an int32.
	conns   atomic.Int64
	persist atomic.Int32
}

// Deltas of conns.
const (
	oneInactive = int64(1)
	oneActive   = int64(1) << 32
)

// splitConns returns activeconns and inactconns from a conns word: the low 32 bits
// are inactconns as a signed number, the rest activeconns.
func splitConns(v int64) (active, inactive int32) {
	inactive = int32(v)
	return int32((v - int64(inactive)) >> 32), inactive
}

// NewDest returns a real server at addr:port with the given weight and thresholds; id
// is an opaque handle for the owner (the connection table refers to dests by id).
// It is not yet in a Pool: Pool.Add validates the values and makes it available.
func NewDest(id uint32, addr netip.Addr, port uint16, weight int32, upper, lower uint32) *Dest {
	d := new(Dest)
	d.init(id, addr, port, weight, upper, lower)
	return d
}

// init makes the zero Dest d what NewDest returns.
func (d *Dest) init(id uint32, addr netip.Addr, port uint16, weight int32, upper, lower uint32) {
	d.port, d.id = port, id
	d.fold = FoldAddr(addr)
	d.raw, d.v6 = rawAddr(addr)
	d.lastWeight.Store(weight)
	d.weight.Store(weight)
	d.uThreshold.Store(upper)
	d.lThreshold.Store(lower)
}

// FoldAddr returns addr as the kernel hashes it: an IPv4 address in host byte order, an
// IPv6 address as the XOR of its four 32-bit words (each in host order).
func FoldAddr(addr netip.Addr) uint32 {
	if addr.Is4() || addr.Is4In6() {
		b := addr.As4()
		return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	}
	return FoldAddr16(addr.As16())
}

// FoldAddr16 folds a 16-byte IPv6 address like FoldAddr.
func FoldAddr16(b [16]byte) uint32 {
	var f uint32
	for i := 0; i < 16; i += 4 {
		f ^= uint32(b[i])<<24 | uint32(b[i+1])<<16 | uint32(b[i+2])<<8 | uint32(b[i+3])
	}
	return f
}

// ID returns the owner's handle given to NewDest.
func (d *Dest) ID() uint32 { return d.id }

// Addr returns the real server's address (IPv4-mapped IPv6 given to NewDest: the
// IPv4 address).
func (d *Dest) Addr() netip.Addr {
	if d.v6 {
		return netip.AddrFrom16(d.raw)
	}
	return netip.AddrFrom4([4]byte(d.raw[:4]))
}

// HasRawAddr reports whether the real server's address is a, as the data path holds
// addresses (RawAddr; ipv6 false: the first 4 bytes of a, the rest not read).
func (d *Dest) HasRawAddr(a *[16]byte, ipv6 bool) bool {
	if !d.v6 {
		return !ipv6 && [4]byte(a[:4]) == [4]byte(d.raw[:4])
	}
	return ipv6 && *a == d.raw
}

// rawAddr returns addr (unmapped) as a Dest holds it: 16 bytes, an IPv4 address in
// the first 4, and whether it is IPv6.
func rawAddr(addr netip.Addr) (raw [16]byte, v6 bool) {
	addr = addr.Unmap()
	if addr.Is4() {
		b := addr.As4()
		copy(raw[:4], b[:])
		return raw, false
	}
	return addr.As16(), true
}

// Port returns the real server's port (0: the packet's virtual port is kept).
func (d *Dest) Port() uint16 { return d.port }

// RawAddr returns the address as the data path holds addresses: 16 bytes, an IPv4
// address in the first 4 and the rest zero.
func (d *Dest) RawAddr() [16]byte { return d.raw }

// AddrFold returns the address folded as the kernel's hash functions take it.
func (d *Dest) AddrFold() uint32 { return d.fold }

// Weight returns the current weight (0 = quiescent).
func (d *Dest) Weight() int32 { return d.weight.Load() }

// LastWeight returns the latest non-zero weight (mh builds its table from it).
func (d *Dest) LastWeight() int32 { return d.lastWeight.Load() }

// UpperThreshold returns the connection count at which the dest becomes OVERLOADed (0 = none).
func (d *Dest) UpperThreshold() uint32 { return d.uThreshold.Load() }

// LowerThreshold returns the connection count below which OVERLOAD clears (0 = 75% of upper).
func (d *Dest) LowerThreshold() uint32 { return d.lThreshold.Load() }

// Available reports whether the dest is in its service's list (not deleted).
func (d *Dest) Available() bool { return d.flags.Load()&FlagAvailable != 0 }

// Overloaded reports the OVERLOAD flag.
func (d *Dest) Overloaded() bool { return d.flags.Load()&FlagOverload != 0 }

// ActiveConns, InactConns and PersistConns return the connection counters.
func (d *Dest) ActiveConns() int32  { a, _ := splitConns(d.conns.Load()); return a }
func (d *Dest) InactConns() int32   { _, i := splitConns(d.conns.Load()); return i }
func (d *Dest) PersistConns() int32 { return d.persist.Load() }

// Overhead is (activeconns << 8) + inactconns, the load figure of lc, wlc, lblc, lblcr
// and twos (docs/ipvs-semantics.md §1.4).
func (d *Dest) Overhead() int32 { a, i := splitConns(d.conns.Load()); return a<<8 + i }

// Bind counts a new connection on the dest: a template in persistconns, any other
// connection in inactconns (IPVS creates every connection INACTIVE). It then applies
// the OVERLOAD set rule of docs/ipvs-semantics.md §2.6 — after a template too, as the kernel's
// ip_vs_bind_dest does, so a template can set the flag when an edit lowered the
// threshold below the current count.
func (d *Dest) Bind(template bool) {
	if template {
		d.persist.Add(1)
	} else {
		d.conns.Add(oneInactive)
	}
	d.checkUpper()
}

// BindConn counts a new connection on the dest directly in the counter of the state
// its first packet put it in: Bind(false) followed, when active, by Activate, in one
// atomic operation. The counters and the OVERLOAD flag end as after the two calls
// (the rule looks at the total, which both leave the same).
func (d *Dest) BindConn(active bool) {
	delta := oneInactive // one atomic add of either delta: no branch around it
	if active {
		delta = oneActive
	}
	d.conns.Add(delta)
	d.checkUpper()
}

// checkUpper is the OVERLOAD set rule of a bind.
func (d *Dest) checkUpper() {
	// The kernel compares its int total with the u32 threshold, i.e. as unsigned.
	if u := d.uThreshold.Load(); u != 0 && uint32(d.total()) >= u {
		d.setFlag(FlagOverload)
	}
}

// Unbind removes a connection counted as Bind and then active or inactive, and applies
// the OVERLOAD clear rule of docs/ipvs-semantics.md §2.6 (after a template too, as the kernel).
func (d *Dest) Unbind(template, active bool) {
	switch {
	case template:
		d.persist.Add(-1)
	case active:
		d.conns.Add(-oneActive)
	default:
		d.conns.Add(-oneInactive)
	}
	// 32-bit unsigned arithmetic as in the kernel: total*4 and u*3 wrap mod 2^32.
	total := uint32(d.total())
	u, l := d.uThreshold.Load(), d.lThreshold.Load()
	switch {
	case l != 0:
		if total < l {
			d.clearFlag(FlagOverload)
		}
	case u != 0:
		if total*4 < u*3 {
			d.clearFlag(FlagOverload)
		}
	default:
		d.clearFlag(FlagOverload)
	}
}

// Activate moves one connection from inactconns to activeconns (a TCP connection
// entering an active state); Deactivate does the reverse.
func (d *Dest) Activate() { d.conns.Add(oneActive - oneInactive) }

// Deactivate moves one connection from activeconns to inactconns.
func (d *Dest) Deactivate() { d.conns.Add(oneInactive - oneActive) }

// total is the kernel's ip_vs_dest_totalconns: a 32-bit int sum (templates excluded).
func (d *Dest) total() int32 { a, i := splitConns(d.conns.Load()); return a + i }

func (d *Dest) setFlag(f uint32) {
	for {
		old := d.flags.Load()
		if old&f == f || d.flags.CompareAndSwap(old, old|f) {
			return
		}
	}
}

func (d *Dest) clearFlag(f uint32) {
	for {
		old := d.flags.Load()
		if old&f == 0 || d.flags.CompareAndSwap(old, old&^f) {
			return
		}
	}
}
