package header

import (
	"encoding/binary"
	"strconv"
)

// Drop is the reason Decode rejected a frame. Unlike the package's other enums its
// zero value, DropNone, is meaningful: it means the frame decoded and is not dropped,
// so `if d := p.Decode(f); d != DropNone` reads naturally and a zeroed Drop is "OK".
// Values are dense below NumDrops so callers can count drops in a [NumDrops]uint64
// array indexed by reason. Names (String) are stable: metrics and logs use them.
type Drop uint8

// Drop reasons. Each names the layer and the check that failed; the comment says what
// Linux does with such a frame, which Decode mirrors.
const (
	DropNone            Drop = iota // decoded; not dropped
	DropShortEthernet               // frame shorter than an Ethernet header
	DropShortVLAN                   // 802.1Q TPID without the rest of the tag
	DropARPShort                    // ARP shorter than 28 bytes
	DropARPBadFormat                // ARP not Ethernet/IPv4 (arp_rcv drops it)
	DropIPv4Short                   // less than 20 bytes of IPv4 header
	DropIPv4BadVersion              // EtherType IPv4, version not 4
	DropIPv4BadIHL                  // IHL < 5, or header beyond the frame (ip_rcv_core)
	DropIPv4BadChecksum             // header checksum does not verify (ip_rcv_core)
	DropIPv4BadLength               // total length < header length or beyond the frame
	DropIPv6Short                   // less than 40 bytes of IPv6 header
	DropIPv6BadVersion              // EtherType IPv6, version not 6
	DropIPv6BadLength               // payload length beyond the frame
	DropIPv6BadExt                  // truncated extension header, or Hop-by-Hop not first
	DropIPv6TooManyExt              // more than MaxIPv6ExtHeaders extension headers
	DropTCPShort                    // less than 20 bytes of TCP header
	DropTCPBadOffset                // data offset < 5 or beyond the IP packet
	DropUDPShort                    // less than 8 bytes of UDP header
	DropUDPBadLength                // UDP length < 8, or beyond the IP packet (unfragmented)
	DropSCTPShort                   // less than 12 bytes of SCTP common header
	DropICMPShort                   // less than 8 bytes of ICMP header
	DropICMPBadChecksum             // ICMP checksum does not verify (icmp_rcv, ip_vs_in_icmp)
	DropICMPBadEmbedded             // ICMP error quoting no valid IP header (icmp_unreach)
	DropIPv4BadOptions              // an option's length below 2 or past the header (ip_options_compile)

	// NumDrops is the number of Drop values, DropNone included.
	NumDrops
)

var dropNames = [NumDrops]string{
	DropNone:            "none",
	DropShortEthernet:   "short_ethernet",
	DropShortVLAN:       "short_vlan",
	DropARPShort:        "arp_short",
	DropARPBadFormat:    "arp_bad_format",
	DropIPv4Short:       "ipv4_short",
	DropIPv4BadVersion:  "ipv4_bad_version",
	DropIPv4BadIHL:      "ipv4_bad_ihl",
	DropIPv4BadChecksum: "ipv4_bad_checksum",
	DropIPv4BadLength:   "ipv4_bad_length",
	DropIPv6Short:       "ipv6_short",
	DropIPv6BadVersion:  "ipv6_bad_version",
	DropIPv6BadLength:   "ipv6_bad_length",
	DropIPv6BadExt:      "ipv6_bad_ext",
	DropIPv6TooManyExt:  "ipv6_too_many_ext",
	DropTCPShort:        "tcp_short",
	DropTCPBadOffset:    "tcp_bad_offset",
	DropUDPShort:        "udp_short",
	DropUDPBadLength:    "udp_bad_length",
	DropSCTPShort:       "sctp_short",
	DropICMPShort:       "icmp_short",
	DropICMPBadChecksum: "icmp_bad_checksum",
	DropICMPBadEmbedded: "icmp_bad_embedded",
	DropIPv4BadOptions:  "ipv4_bad_options",
}

// String returns the reason's stable snake_case name, or "drop_<n>" for a value
// outside the enum.
func (d Drop) String() string {
	if d < NumDrops {
		return dropNames[d]
	}
	return "drop_" + strconv.Itoa(int(d))
}

const (
	sctpCommonHeaderLen = 12 // ports, verification tag, checksum (RFC 9260 §3.1)
	l4PortsLen          = 4  // source and destination port, the first 4 bytes of TCP/UDP/SCTP
	// embeddedPortsMin is how much of the quoted L4 header Decode wants before it
	// reports the quoted ports: the 8 bytes RFC 792 guarantees.
	embeddedPortsMin = 8
)

// Parsed is a decoded frame: offsets into it and the header fields the Director
// needs, so that it never touches the frame by hand. Decode fills it; the caller
// keeps one per worker and reuses it for every frame, which is why Decode takes a
// pointer and allocates nothing.
//
// Parsed holds no reference to the frame. Offsets satisfy
//
//	0 <= L3Off <= L4Off <= PayloadOff <= End <= len(frame)
//
// after every Decode, whatever it returned; after a drop the fields describe the
// layers decoded before the failing check and L4Off, PayloadOff and End equal L3Off.
// Addresses are 16-byte arrays holding an IPv4 address in the first four bytes (the
// rest zero), so flows of both families key maps without conversion. The zero value is
// an empty, non-IP decode. A Parsed is not safe for concurrent use.
type Parsed struct {
	L3Off      int // length of the L2 header, 802.1Q tag included
	L4Off      int // L4 header: after IPv4 options or IPv6 extension headers
	PayloadOff int // L4 payload: after TCP options / the UDP, SCTP or ICMP header
	End        int // end of the IP packet by its length field: Ethernet padding excluded

	Src, Dst [16]byte // IP source and destination; for ARP, sender and target address

	EtherType uint16 // after any 802.1Q tag
	VLAN      uint16 // 802.1Q VLAN ID, when HasVLAN
	SrcPort   uint16 // TCP/UDP/SCTP ports, when HasPorts
	DstPort   uint16
	ARPOp     uint16 // ARP operation, when EtherType is EtherTypeARP

	HasVLAN   bool
	IPVersion uint8 // 4 or 6; 0 for anything else
	IPv6      bool  // IPVersion == 6
	TTL       uint8 // IPv4 TTL or IPv6 hop limit
	TOS       uint8 // IPv4 TOS or IPv6 traffic class: DS field and ECN (RFC 2474, 3168)
	DF        bool  // IPv4 Don't Fragment (always false for IPv6)

	// SourceRoute is set for an IPv4 packet carrying a Loose or Strict Source and
	// Record Route option (scanIPv4Options), which Linux drops by default.
	SourceRoute bool

	// IsFragment is set for a fragment of a larger packet: IPv4 MF or a non-zero
	// offset; an IPv6 Fragment header with M or a non-zero offset (an atomic fragment,
	// RFC 6946, is not a fragment). NonFirstFragment is set when the offset is
	// non-zero: the L4 header is in another fragment, so Proto is known but there are
	// no ports and L4Off == PayloadOff marks the start of the fragment's data.
	IsFragment       bool
	NonFirstFragment bool

	Proto    uint8 // IPv4 protocol / IPv6 upper-layer next header (IPProtoNoNext, IPProtoESP … end the walk)
	HasPorts bool  // SrcPort and DstPort are valid (TCP, UDP, SCTP; not a non-first fragment)
	TCPFlags uint8 // TCPFlagFIN …, when Proto is TCP and HasPorts

	ICMPType uint8 // when Proto is ICMP (IPv4) or ICMPv6 (IPv6)
	ICMPCode uint8

	// The packet quoted by an ICMP error (ICMPv4 destination unreachable, source
	// quench, time exceeded, parameter problem; ICMPv6 destination unreachable, packet
	// too big, time exceeded, parameter problem), when HasEmbedded. It has the outer
	// packet's IP version. EmbL3Off is the quoted IP header, EmbL4Off its L4 header
	// (after IPv4 options or IPv6 extension headers), both within [PayloadOff, End].
	// The quoted ports are reported when at least 8 bytes of a TCP, UDP or SCTP header
	// were quoted (the minimum RFC 792 guarantees) and the quote is not of a
	// non-first fragment. Fragmented ICMP messages (which Linux reassembles first)
	// have their type and code decoded but neither their checksum verified nor their
	// quote decoded.
	HasEmbedded bool
	EmbProto    uint8
	EmbHasPorts bool
	EmbL3Off    int
	EmbL4Off    int
	EmbSrcPort  uint16
	EmbDstPort  uint16
	EmbSrc      [16]byte
	EmbDst      [16]byte
}

// Decode parses an Ethernet frame (no FCS) into p and returns DropNone, or the reason
// the frame must be dropped. It never panics and allocates nothing.
//
// Decode checks what Linux checks before IPVS sees a packet: Ethernet and 802.1Q
// lengths, the IPv4 header (version, IHL, header checksum, total length: ip_rcv_core;
// the type-length structure of its options: ip_options_compile), the IPv6 header and extension header chain, the L4 header lengths (tcp_v4_rcv,
// __udp4_lib_rcv), and the ICMP checksum and quoted header of ICMP errors. It does not
// verify TCP or UDP checksums: IPVS forwards those packets without looking. Frames of
// other EtherTypes and IP packets of other protocols decode with DropNone: the caller
// looks at EtherType and Proto. Bytes after End (Ethernet padding) are ignored.
func (p *Parsed) Decode(frame []byte) Drop {
	if p.DecodeFast(frame) {
		return DropNone
	}
	return p.DecodeOther(frame)
}

// DecodeOther is Decode without its fast path: what a caller that tried DecodeFast
// itself calls when that said no (the pipeline, which so makes one call a frame
// instead of two). It decodes any frame as Decode does.
func (p *Parsed) DecodeOther(frame []byte) Drop {
	d := p.decodeGeneral(frame)
	if d != DropNone {
		p.L4Off, p.PayloadOff, p.End = p.L3Off, p.L3Off, p.L3Off
	}
	return d
}

// decodeGeneral is decode without the fast path (fastpath.go).
func (p *Parsed) decodeGeneral(frame []byte) Drop {
	*p = Parsed{}
	if len(frame) < EthernetHeaderLen {
		return DropShortEthernet
	}
	et := binary.BigEndian.Uint16(frame[ethType:])
	l2 := EthernetHeaderLen
	if et == EtherTypeVLAN {
		if len(frame) < EthernetHeaderLen+VLANTagLen {
			return DropShortVLAN
		}
		p.HasVLAN = true
		p.VLAN = binary.BigEndian.Uint16(frame[ethVLANTCI:]) & vlanIDMask
		et = binary.BigEndian.Uint16(frame[ethVLANTyp:])
		l2 += VLANTagLen
	}
	p.EtherType = et
	p.L3Off = l2
	switch et {
	case EtherTypeIPv4:
		return p.decodeIPv4(frame)
	case EtherTypeIPv6:
		return p.decodeIPv6(frame)
	case EtherTypeARP:
		return p.decodeARP(frame)
	}
	p.L4Off, p.PayloadOff, p.End = len(frame), len(frame), len(frame)
	return DropNone
}

func (p *Parsed) decodeARP(frame []byte) Drop {
	a := ARP(frame[p.L3Off:])
	if len(a) < ARPLen {
		return DropARPShort
	}
	if !a.Valid() {
		return DropARPBadFormat
	}
	p.ARPOp = a.Op()
	copy(p.Src[:4], a[arpSPA:arpSPA+4])
	copy(p.Dst[:4], a[arpTPA:arpTPA+4])
	end := p.L3Off + ARPLen
	p.L4Off, p.PayloadOff, p.End = end, end, end
	return DropNone
}

func (p *Parsed) decodeIPv4(frame []byte) Drop {
	b := frame[p.L3Off:]
	if len(b) < IPv4MinHeaderLen {
		return DropIPv4Short
	}
	// BCE: one check covers every fixed-header field read below.
	_ = b[IPv4MinHeaderLen-1]
	if b[ip4VerIHL]>>4 != 4 {
		return DropIPv4BadVersion
	}
	hl := int(b[ip4VerIHL]&0x0f) * 4
	if hl < IPv4MinHeaderLen || hl > len(b) {
		return DropIPv4BadIHL
	}
	if ipv4HeaderSum(b[:hl]) != 0xffff {
		return DropIPv4BadChecksum
	}
	tl := int(binary.BigEndian.Uint16(b[ip4TotalLen:]))
	if tl < hl || tl > len(b) {
		return DropIPv4BadLength
	}
	if hl > IPv4MinHeaderLen {
		sr, ok := scanIPv4Options(b[IPv4MinHeaderLen:hl])
		if !ok {
			return DropIPv4BadOptions
		}
		p.SourceRoute = sr
	}
	p.IPVersion = 4
	p.TOS = b[ip4TOS]
	p.TTL = b[ip4TTL]
	p.Proto = b[ip4Proto]
	ff := binary.BigEndian.Uint16(b[ip4FlagsOff:])
	p.DF = ff&ip4FlagDF != 0
	p.IsFragment = ff&(ip4FlagMF|ip4FragOffsetMask) != 0
	p.NonFirstFragment = ff&ip4FragOffsetMask != 0
	copy(p.Src[:4], b[ip4Src:ip4Src+4])
	copy(p.Dst[:4], b[ip4Dst:ip4Dst+4])
	p.L4Off = p.L3Off + hl
	p.End = p.L3Off + tl
	if p.NonFirstFragment {
		p.PayloadOff = p.L4Off
		return DropNone
	}
	return p.decodeL4(frame)
}

func (p *Parsed) decodeIPv6(frame []byte) Drop {
	b := frame[p.L3Off:]
	if len(b) < IPv6HeaderLen {
		return DropIPv6Short
	}
	// BCE: one check covers every fixed-header field read below.
	_ = b[IPv6HeaderLen-1]
	if b[ip6VerTCFlow]>>4 != 6 {
		return DropIPv6BadVersion
	}
	n := IPv6HeaderLen + int(binary.BigEndian.Uint16(b[ip6PayloadLen:]))
	if n > len(b) {
		// A payload length of zero with a Jumbo Payload option (RFC 2675) cannot
		// occur on Ethernet; it decodes as an empty payload and fails below.
		return DropIPv6BadLength
	}
	b = b[:n]
	p.IPVersion = 6
	p.IPv6 = true
	p.TOS = uint8(binary.BigEndian.Uint16(b[ip6VerTCFlow:]) >> 4)
	p.TTL = b[ip6HopLimit]
	copy(p.Src[:], b[ip6Src:ip6Src+16])
	copy(p.Dst[:], b[ip6Dst:ip6Dst+16])
	x, d := walkIPv6Ext(b, b[ip6NextHeader])
	if d != DropNone {
		return d
	}
	p.Proto = x.proto
	p.IsFragment = x.fragment
	p.NonFirstFragment = x.nonFirst
	p.L4Off = p.L3Off + x.off
	p.End = p.L3Off + n
	if p.NonFirstFragment {
		p.PayloadOff = p.L4Off
		return DropNone
	}
	return p.decodeL4(frame)
}

// decodeL4 decodes the L4 header at p.L4Off of an IP packet ending at p.End.
func (p *Parsed) decodeL4(frame []byte) Drop {
	l4 := frame[p.L4Off:p.End]
	switch {
	case p.Proto == IPProtoTCP:
		if len(l4) < TCPMinHeaderLen {
			return DropTCPShort
		}
		// BCE: one check for the fixed TCP header.
		_ = l4[TCPMinHeaderLen-1]
		hl := int(l4[tcpDataOff]>>4) * 4
		if hl < TCPMinHeaderLen || hl > len(l4) {
			return DropTCPBadOffset
		}
		p.TCPFlags = l4[tcpFlags]
		p.setPorts(l4)
		p.PayloadOff = p.L4Off + hl
	case p.Proto == IPProtoUDP:
		if len(l4) < UDPHeaderLen {
			return DropUDPShort
		}
		// The length field covers the whole datagram, which a first fragment only
		// starts; a shorter length than the IP payload is trimmed by Linux
		// (__udp4_lib_rcv), not dropped.
		ul := int(binary.BigEndian.Uint16(l4[udpLength:]))
		if ul < UDPHeaderLen || (!p.IsFragment && ul > len(l4)) {
			return DropUDPBadLength
		}
		p.setPorts(l4)
		p.PayloadOff = p.L4Off + UDPHeaderLen
	case p.Proto == IPProtoSCTP:
		if len(l4) < sctpCommonHeaderLen {
			return DropSCTPShort
		}
		p.setPorts(l4)
		p.PayloadOff = p.L4Off + sctpCommonHeaderLen
	case p.Proto == IPProtoICMP && !p.IPv6, p.Proto == IPProtoICMPv6 && p.IPv6:
		if len(l4) < ICMPHeaderLen {
			return DropICMPShort
		}
		p.ICMPType = l4[icmpType]
		p.ICMPCode = l4[icmpCode]
		p.PayloadOff = p.L4Off + ICMPHeaderLen
		if p.IsFragment {
			return DropNone
		}
		var s uint16
		if p.IPv6 {
			// The pseudo-header uses the fixed header's destination: with a Routing
			// header not yet at its last segment RFC 8200 §8.1 wants the final one,
			// but such a packet is not addressed to the director as a final
			// destination either, and Linux would not verify it there.
			s = PseudoHeaderSum(p.Src[:], p.Dst[:], IPProtoICMPv6, uint32(len(l4)))
		}
		if Checksum(l4, s) != 0xffff {
			return DropICMPBadChecksum
		}
		if p.icmpQuotes() {
			return p.decodeEmbedded(frame)
		}
	default:
		p.PayloadOff = p.L4Off
	}
	return DropNone
}

func (p *Parsed) setPorts(l4 []byte) {
	// BCE: callers checked len(l4) >= l4PortsLen.
	_ = l4[l4PortsLen-1]
	p.SrcPort = binary.BigEndian.Uint16(l4[0:])
	p.DstPort = binary.BigEndian.Uint16(l4[2:])
	p.HasPorts = true
}

// icmpQuotes reports whether the ICMP message is an error whose quote IPVS looks at
// (ip_vs_in_icmp, ip_vs_in_icmp_v6).
func (p *Parsed) icmpQuotes() bool {
	if p.IPv6 {
		switch p.ICMPType {
		case ICMPv6DestUnreachable, ICMPv6PacketTooBig, ICMPv6TimeExceeded, ICMPv6ParamProblem:
			return true
		}
		return false
	}
	switch p.ICMPType {
	case ICMPv4DestUnreachable, ICMPv4SourceQuench, ICMPv4TimeExceeded, ICMPv4ParamProblem:
		return true
	}
	return false
}

// decodeEmbedded decodes the IP header quoted by an ICMP error, from p.PayloadOff to
// p.End. The quote is usually truncated, so its own length fields are not checked.
func (p *Parsed) decodeEmbedded(frame []byte) Drop {
	b := frame[p.PayloadOff:p.End]
	var l4off int
	nonFirst := false
	if p.IPv6 {
		if len(b) < IPv6HeaderLen || b[ip6VerTCFlow]>>4 != 6 {
			return DropICMPBadEmbedded
		}
		x, d := walkIPv6Ext(b, b[ip6NextHeader])
		if d != DropNone {
			return DropICMPBadEmbedded
		}
		copy(p.EmbSrc[:], b[ip6Src:ip6Src+16])
		copy(p.EmbDst[:], b[ip6Dst:ip6Dst+16])
		p.EmbProto = x.proto
		l4off, nonFirst = x.off, x.nonFirst
	} else {
		if len(b) < IPv4MinHeaderLen || b[ip4VerIHL]>>4 != 4 {
			return DropICMPBadEmbedded
		}
		// BCE: one check for the fixed header fields read below.
		_ = b[IPv4MinHeaderLen-1]
		hl := int(b[ip4VerIHL]&0x0f) * 4
		if hl < IPv4MinHeaderLen || hl > len(b) {
			return DropICMPBadEmbedded
		}
		copy(p.EmbSrc[:4], b[ip4Src:ip4Src+4])
		copy(p.EmbDst[:4], b[ip4Dst:ip4Dst+4])
		p.EmbProto = b[ip4Proto]
		l4off = hl
		nonFirst = binary.BigEndian.Uint16(b[ip4FlagsOff:])&ip4FragOffsetMask != 0
	}
	p.HasEmbedded = true
	p.EmbL3Off = p.PayloadOff
	p.EmbL4Off = p.PayloadOff + l4off
	switch p.EmbProto {
	case IPProtoTCP, IPProtoUDP, IPProtoSCTP:
		if l4 := b[l4off:]; !nonFirst && len(l4) >= embeddedPortsMin {
			p.EmbSrcPort = binary.BigEndian.Uint16(l4[0:])
			p.EmbDstPort = binary.BigEndian.Uint16(l4[2:])
			p.EmbHasPorts = true
		}
	}
	return DropNone
}
