package header

// ICMPErrorKind selects the ICMP error BuildICMPError writes; each kind maps to an
// ICMPv4 and an ICMPv6 type/code, chosen by the offending packet's IP version. Its
// zero value is invalid.
type ICMPErrorKind uint8

// ICMP error kinds IPVS sends.
const (
	_ ICMPErrorKind = iota
	// ICMPPortUnreachable: no real server available (ip_vs_leave, §5.6): ICMPv4
	// destination unreachable / port unreachable (3/3), ICMPv6 destination
	// unreachable / port unreachable (1/4).
	ICMPPortUnreachable
	// ICMPFragNeeded: the packet exceeds the MTU and may not be fragmented (§9.1):
	// ICMPv4 fragmentation needed (3/4) with the next-hop MTU (RFC 1191 §4), ICMPv6
	// packet too big (2/0) with the MTU (RFC 4443 §3.2).
	ICMPFragNeeded
	// ICMPTimeExceeded: TTL or hop limit exhausted (§9.1): ICMPv4 11/0, ICMPv6 3/0.
	ICMPTimeExceeded
)

// ICMPReply says which ICMP error to build and who sends it. The zero value is invalid
// (no Kind). BuildICMPError only reads it.
type ICMPReply struct {
	Kind ICMPErrorKind
	// MTU is the MTU to report for ICMPFragNeeded (IPv4 carries its low 16 bits).
	MTU uint32
	// Src is the error's IP source address, IPv4 in the first four bytes. Linux
	// (icmp_send, icmp6_send) uses the offending packet's destination when it is a
	// local address — for IPVS traffic the VIP, so pass Parsed.Dst — and otherwise the
	// address of the outgoing interface.
	Src [16]byte
	// EthSrc and EthDst are the reply frame's MAC addresses: normally the director's
	// own and the offending frame's source (the hop that delivered it).
	EthSrc, EthDst [6]byte
	// ID is the IPv4 identification (unused for IPv6). The error is sent without DF,
	// as Linux's ICMP socket uses IP_PMTUDISC_DONT, so the ID should vary.
	ID uint16
}

const (
	// icmpv4ErrorMaxLen bounds the IP length of an ICMPv4 error: "as much of the
	// original datagram as possible without the length of the ICMP datagram exceeding
	// 576 bytes" (RFC 1812 §4.3.2.3).
	icmpv4ErrorMaxLen = 576
	// icmpv6ErrorMaxLen bounds the IPv6 packet of an ICMPv6 error: the minimum MTU
	// (RFC 4443 §2.4(c)).
	icmpv6ErrorMaxLen = IPv6MinMTU

	// ICMPErrorMaxFrame is the longest frame BuildICMPError writes: an out buffer of
	// this length always holds the whole error.
	ICMPErrorMaxFrame = EthernetHeaderLen + VLANTagLen + icmpv6ErrorMaxLen

	icmpErrorTTL = 64 // Linux's default ip_default_ttl / hop_limit

	// Linux sends ICMPv4 errors with precedence "internetwork control" and the
	// offending packet's TOS bits (__icmp_send: IPTOS_PREC_INTERNETCONTROL |
	// (tos & IPTOS_TOS_MASK)); ICMPv6 errors go out with traffic class 0.
	iptosPrecInternetControl = 0xc0
	iptosTOSMask             = 0x1e
)

// BuildICMPError writes into out the Ethernet frame of the ICMP error r.Kind about the
// decoded frame (frame, p) and returns its length. The frame keeps the offending
// frame's 802.1Q tag, if any; the IP header has TTL / hop limit 64, no DF, and is
// addressed from r.Src to the offending packet's source; the ICMP body quotes the
// offending IP packet (from its IP header up to p.End, so without Ethernet padding) as
// far as an IPv4 length of 576 (RFC 1812 §4.3.2.3) or an IPv6 length of 1280 (RFC
// 4443 §2.4(c)) — and len(out) — allow. out must not overlap frame; a buffer of
// ICMPErrorMaxFrame bytes always suffices.
//
// It returns ok false and writes nothing when no error may be sent (RFC 1122 §3.2.2,
// RFC 1812 §4.3.2.7, RFC 4443 §2.4(e)): p is not IP; it is an ICMP error itself (or an
// ICMPv4 type Linux does not know, or an ICMPv6 redirect); it is a non-first
// fragment; it was sent to a link-layer group address, to an IP multicast address or
// to 255.255.255.255; or its source does not name a single host (IPv4 0/8, 127/8,
// 224/4, 240/4; IPv6 ::, ::1, ff00::/8). It also returns false for an invalid Kind or
// an out too short for the headers.
func BuildICMPError(out, frame []byte, p *Parsed, r *ICMPReply) (n int, ok bool) {
	if r.Kind == 0 || r.Kind > ICMPTimeExceeded || p.NonFirstFragment || len(frame) < p.End {
		return 0, false
	}
	if len(frame) >= EthernetHeaderLen && IsGroupMAC(Ethernet(frame).DestinationAddress()) {
		return 0, false
	}
	var tci uint16
	if p.HasVLAN {
		tci = Ethernet(frame).TCI()
	}
	quote := frame[p.L3Off:p.End]
	switch p.IPVersion {
	case 4:
		if p.Proto == IPProtoICMP && icmpv4NoErrorReply(p.ICMPType) || !unicast4(p.Src, p.Dst) {
			return 0, false
		}
		l2 := EthernetHeaderLen
		if p.HasVLAN {
			l2 += VLANTagLen
		}
		hdr := l2 + IPv4MinHeaderLen + ICMPHeaderLen
		if len(out) < hdr {
			return 0, false
		}
		q := min(len(quote), icmpv4ErrorMaxLen-IPv4MinHeaderLen-ICMPHeaderLen, len(out)-hdr)
		putEthernet(out, r.EthDst, r.EthSrc, p.HasVLAN, tci, EtherTypeIPv4)
		tos := iptosPrecInternetControl | p.TOS&iptosTOSMask
		putIPv4(out[l2:], tos, uint16(IPv4MinHeaderLen+ICMPHeaderLen+q), r.ID, false, icmpErrorTTL, IPProtoICMP, [4]byte(r.Src[:4]), [4]byte(p.Src[:4]))
		m := ICMPv4(out[l2+IPv4MinHeaderLen : hdr+q])
		var rest uint32
		switch r.Kind {
		case ICMPPortUnreachable:
			m.SetTypeCode(ICMPv4DestUnreachable, ICMPv4CodePortUnreachable)
		case ICMPFragNeeded:
			m.SetTypeCode(ICMPv4DestUnreachable, ICMPv4CodeFragNeeded)
			rest = r.MTU & 0xffff
		case ICMPTimeExceeded:
			m.SetTypeCode(ICMPv4TimeExceeded, ICMPv4CodeTTLExceeded)
		}
		m.SetRest(rest)
		copy(m[ICMPHeaderLen:], quote[:q])
		m.SetChecksum(0)
		m.SetChecksum(m.ComputeChecksum())
		return hdr + q, true
	case 6:
		if p.Proto == IPProtoICMPv6 && icmpv6NoErrorReply(p.ICMPType) || !unicast6(p.Src, p.Dst) {
			return 0, false
		}
		l2 := EthernetHeaderLen
		if p.HasVLAN {
			l2 += VLANTagLen
		}
		hdr := l2 + IPv6HeaderLen + ICMPHeaderLen
		if len(out) < hdr {
			return 0, false
		}
		q := min(len(quote), icmpv6ErrorMaxLen-IPv6HeaderLen-ICMPHeaderLen, len(out)-hdr)
		putEthernet(out, r.EthDst, r.EthSrc, p.HasVLAN, tci, EtherTypeIPv6)
		putIPv6(out[l2:], 0, uint16(ICMPHeaderLen+q), IPProtoICMPv6, icmpErrorTTL, r.Src, p.Src)
		m := ICMPv6(out[l2+IPv6HeaderLen : hdr+q])
		var rest uint32
		switch r.Kind {
		case ICMPPortUnreachable:
			m.SetTypeCode(ICMPv6DestUnreachable, ICMPv6CodePortUnreachable)
		case ICMPFragNeeded:
			m.SetTypeCode(ICMPv6PacketTooBig, 0)
			rest = r.MTU
		case ICMPTimeExceeded:
			m.SetTypeCode(ICMPv6TimeExceeded, ICMPv6CodeHopLimit)
		}
		m.SetRest(rest)
		copy(m[ICMPHeaderLen:], quote[:q])
		m.SetChecksum(0)
		m.SetChecksum(m.ComputeChecksum(r.Src, p.Src))
		return hdr + q, true
	}
	return 0, false
}

// unicast4 reports whether an ICMPv4 error may be sent about a packet from src to dst:
// src names a single host and dst is not multicast or broadcast (RFC 1122 §3.2.2).
func unicast4(src, dst [16]byte) bool {
	switch {
	case src[0] == 0, src[0] == 127, src[0] >= 224: // this network, loopback, multicast, class E
		return false
	case dst[0] >= 224: // multicast, class E, limited broadcast
		return false
	}
	return true
}

// unicast6 reports whether an ICMPv6 error may be sent about a packet from src to dst
// (RFC 4443 §2.4(e)). The exceptions for Packet Too Big to a multicast destination do
// not arise: gvs only sends errors about traffic to its unicast VIPs.
func unicast6(src, dst [16]byte) bool {
	if IsMulticast6(src) || IsMulticast6(dst) {
		return false
	}
	var loopback [16]byte
	loopback[15] = 1
	return src != [16]byte{} && src != loopback
}
