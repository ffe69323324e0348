package header

// Outer header overheads (§9.1: MTU −= 20 for an IPv4 outer header, 40 for IPv6).
const (
	ipipOverhead4 = IPv4MinHeaderLen
	ipipOverhead6 = IPv6HeaderLen
)

// Tunnel describes the outer headers Encapsulate writes for IPVS's tunnel method
// (ip_vs_tunnel_xmit, §9.4). Encapsulate only reads it; the zero value would send
// from and to 0.0.0.0.
type Tunnel struct {
	// Src is the outer source address (the director's address on the route to the
	// real server), Dst the real server's; IPv4 in the first four bytes.
	Src, Dst [16]byte
	// IPv6 selects an IPv6 outer header (ip_vs_tunnel_xmit_v6); otherwise IPv4.
	IPv6 bool
	// EthSrc and EthDst are the new frame's MAC addresses (the director's and the
	// next hop's toward Dst).
	EthSrc, EthDst [6]byte
	// ID is the outer IPv4 identification (ip_select_ident in the kernel).
	ID uint16
	// PMTUDisc mirrors the pmtu_disc sysctl: when set, the outer IPv4 header copies DF
	// from an inner IPv4 packet; when clear, DF is never set. An inner IPv6 packet
	// gives DF 0 in either case (ip_vs_prepare_tunneled_skb).
	PMTUDisc bool
}

// Encapsulate wraps the IP packet of the decoded frame buf[off:] (p from Decode,
// TTL already decremented by DecTTL) in an outer IP header, as IPVS's IPIP tunnel
// does (§9.4), and puts a new Ethernet header in front of it, in place: the outer
// headers are written into the bytes before the inner IP header, i.e. over the old
// Ethernet header and into the headroom buf[:off]. It returns the new frame, a
// subslice of buf ending at the inner packet's end (Ethernet padding dropped).
//
// Outer IPv4 (t.IPv6 false): version 4, IHL 5, TOS = the inner DS field with the
// ECN rule of ECNEncapsulate, DF as Tunnel.PMTUDisc says, offset 0, TTL = the inner TTL
// or hop limit, protocol 4 for inner IPv4 and 41 for inner IPv6 (RFC 4213 §3.5), ID
// t.ID, and the header checksum. Outer IPv6: traffic class as above, flow label 0, hop
// limit = the inner TTL / hop limit, next header 41 (RFC 2473) or 4. The Ethernet header
// keeps the original frame's 802.1Q tag, if any: the frame leaves by the interface it
// arrived on.
//
// It returns ok false, changing nothing, if p is not IP, the headroom is too small
// (off + p.L3Off < outer header + Ethernet header; with the links' headroom,
// dataplane.Headroom, it never is) or the result would exceed the outer length field.
// Check ExceedsMTU against TunnelMTU first.
func Encapsulate(buf []byte, off int, p *Parsed, t *Tunnel) (frame []byte, ok bool) {
	if p.IPVersion == 0 || off < 0 || off+p.End > len(buf) {
		return nil, false
	}
	in := off + p.L3Off
	innerLen := p.End - p.L3Off
	outerLen := ipipOverhead4
	if t.IPv6 {
		outerLen = ipipOverhead6
	}
	l2 := EthernetHeaderLen
	if p.HasVLAN {
		l2 += VLANTagLen
	}
	start := in - outerLen - l2
	maxInner := 0xffff // IPv6 payload length
	if !t.IPv6 {
		maxInner -= ipipOverhead4 // IPv4 total length
	}
	if start < 0 || innerLen > maxInner {
		return nil, false
	}
	// Read everything needed from the old headers before overwriting them.
	var tci uint16
	if p.HasVLAN {
		tci = Ethernet(buf[off:]).TCI()
	}
	var ds, ttl, proto uint8
	df := false
	if p.IPv6 {
		h := IPv6(buf[in:])
		ds, ttl, proto = h.TrafficClass(), h.HopLimit(), IPProtoIPv6
	} else {
		h := IPv4(buf[in:])
		ds, ttl, proto = h.TOS(), h.TTL(), IPProtoIPIP
		df = t.PMTUDisc && h.DF()
	}
	ds = ECNEncapsulate(ds)
	etype := uint16(EtherTypeIPv4)
	if t.IPv6 {
		etype = EtherTypeIPv6
		putIPv6(buf[in-outerLen:], ds, uint16(innerLen), proto, ttl, t.Src, t.Dst)
	} else {
		putIPv4(buf[in-outerLen:], ds, uint16(outerLen+innerLen), t.ID, df, ttl, proto, [4]byte(t.Src[:4]), [4]byte(t.Dst[:4]))
	}
	putEthernet(buf[start:], t.EthDst, t.EthSrc, p.HasVLAN, tci, etype)
	return buf[start : off+p.End], true
}

// ECNEncapsulate returns the outer DS byte for an inner DS byte ds: the DSCP and ECN
// are copied, except that CE becomes ECT(0) (Linux INET_ECN_encapsulate, the RFC 6040
// compatibility choice IPVS makes, §9.4).
func ECNEncapsulate(ds uint8) uint8 {
	if ds&ECNMask == ECNCE {
		return ds&^ECNMask | ECNECT0
	}
	return ds
}

// TunnelMTU returns the largest inner IP packet an IPIP tunnel carries over a route of
// MTU linkMTU: linkMTU − 20 for an IPv4 outer header, − 40 for IPv6 (§9.1). ok is
// false when that is below the outer family's minimum MTU (68, RFC 791; 1280, RFC
// 8200): IPVS then drops the packet without an ICMP error.
func TunnelMTU(linkMTU int, outer6 bool) (mtu int, ok bool) {
	if outer6 {
		mtu = linkMTU - ipipOverhead6
		return mtu, mtu >= IPv6MinMTU
	}
	mtu = linkMTU - ipipOverhead4
	return mtu, mtu >= IPv4MinMTU
}

// ExceedsMTU reports whether the IP packet p describes must be dropped for being
// longer than mtu (§9.1, ensure_mtu_is_adequate): an IPv4 packet with DF set (never
// when pmtuDisc is false — the kernel skips the check for tunnels when pmtu_disc is 0;
// DR and NAT pass true), or any IPv6 packet (nothing on the path fragments IPv6).
// The caller then sends ICMPFragNeeded with mtu — for a tunnel, TunnelMTU's result:
// a 1490-byte DF packet over a 1500-byte route gets "fragmentation needed, MTU 1480"
// (§12.16) — unless the packet is itself an ICMP error carried for a connection, and
// drops the packet. An IPv4 packet without DF that exceeds mtu is not reported: Linux
// fragments it (ignore_df), which is left to the caller.
func ExceedsMTU(p *Parsed, mtu int, pmtuDisc bool) bool {
	if p.End-p.L3Off <= mtu {
		return false
	}
	switch p.IPVersion {
	case 4:
		return pmtuDisc && p.DF
	case 6:
		return true
	}
	return false
}
