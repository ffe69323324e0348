package header

import "encoding/binary"

// PeekSourceTuple reads the source address and port of an untagged or 802.1Q-tagged
// IPv4 or IPv6 TCP/UDP frame into addr (IPv4 in the first four bytes, zeros after)
// without validating more than it needs to stay in bounds: a few loads at fixed
// offsets, for a prefetch hint that Decode confirms or refutes later. Non-first IPv4
// fragments, IPv6 extension headers and everything else report ok=false. flags are a
// TCP segment's flags when the frame reaches them (0 otherwise, and for UDP).
func PeekSourceTuple(b []byte, addr *[16]byte) (proto uint8, v6 bool, port uint16, flags uint8, ok bool) {
	// The common frame first, in one pass: untagged IPv4 without options. What it
	// reports is what peekSourceTuple reports for the frame (FuzzDecode holds them
	// equal).
	const l3 = EthernetHeaderLen
	if len(b) >= l3+IPv4MinHeaderLen+2 && binary.BigEndian.Uint16(b[ethType:]) == EtherTypeIPv4 && b[l3+ip4VerIHL]&0xf == IPv4MinHeaderLen/4 {
		ip := b[l3 : l3+IPv4MinHeaderLen+2]
		if binary.BigEndian.Uint16(ip[ip4FlagsOff:])&ip4FragOffsetMask != 0 {
			return 0, false, 0, 0, false
		}
		proto = ip[ip4Proto]
		// Two word stores, as the table's hash reads the address back.
		binary.LittleEndian.PutUint64(addr[0:8], uint64(binary.LittleEndian.Uint32(ip[ip4Src:])))
		binary.LittleEndian.PutUint64(addr[8:16], 0)
		if at := l3 + IPv4MinHeaderLen + tcpFlags; proto == IPProtoTCP && len(b) > at {
			flags = b[at]
		}
		return proto, false, binary.BigEndian.Uint16(ip[IPv4MinHeaderLen:]), flags, proto == IPProtoTCP || proto == IPProtoUDP
	}
	return peekSourceTuple(b, addr)
}

// peekSourceTuple is PeekSourceTuple without its fast path.
func peekSourceTuple(b []byte, addr *[16]byte) (proto uint8, v6 bool, port uint16, flags uint8, ok bool) {
	if len(b) < EthernetHeaderLen {
		return 0, false, 0, 0, false
	}
	off := EthernetHeaderLen
	et := binary.BigEndian.Uint16(b[ethType:])
	if et == EtherTypeVLAN {
		if len(b) < off+VLANTagLen {
			return 0, false, 0, 0, false
		}
		et = binary.BigEndian.Uint16(b[ethVLANTyp:])
		off += VLANTagLen
	}
	ip := b[off:]
	switch et {
	case EtherTypeIPv4:
		if len(ip) < IPv4MinHeaderLen {
			return 0, false, 0, 0, false
		}
		ihl := int(ip[ip4VerIHL]&0xf) * 4
		if ihl < IPv4MinHeaderLen || len(ip) < ihl+2 || binary.BigEndian.Uint16(ip[ip4FlagsOff:])&ip4FragOffsetMask != 0 {
			return 0, false, 0, 0, false
		}
		proto = ip[ip4Proto]
		*addr = [16]byte{ip[ip4Src], ip[ip4Src+1], ip[ip4Src+2], ip[ip4Src+3]}
		port = binary.BigEndian.Uint16(ip[ihl:])
		ip = ip[ihl:]
	case EtherTypeIPv6:
		if len(ip) < IPv6HeaderLen+2 {
			return 0, false, 0, 0, false
		}
		proto, v6 = ip[ip6NextHeader], true
		copy(addr[:], ip[ip6Src:ip6Src+16])
		port = binary.BigEndian.Uint16(ip[IPv6HeaderLen:])
		ip = ip[IPv6HeaderLen:]
	default:
		return 0, false, 0, 0, false
	}
	if proto == IPProtoTCP && len(ip) > tcpFlags { // ip: the layer-4 header now
		flags = ip[tcpFlags]
	}
	return proto, v6, port, flags, proto == IPProtoTCP || proto == IPProtoUDP
}

// PeekFlow4 reads the 5-tuple and TCP flags of a frame of DecodeFast's kind —
// untagged IPv4 with a 20-byte header, TCP or UDP, not a fragment — at fixed offsets,
// checking only the kind: a prefetch hint that DecodeFast confirms or refutes later.
// The addresses are the frame's four bytes read little-endian, as the flow cache's
// hash takes them; flags are a TCP segment's (0 for UDP). It reads frames of at
// least PeekFlow4Len bytes (a UDP datagram with 6 bytes of data, or more), and is
// small enough to be inlined in a loop over a batch. Whenever DecodeFast takes a
// frame that long, PeekFlow4 reads the same fields from it (FuzzDecodeFast holds
// them equal); any other frame may or may not report ok.
func PeekFlow4(b []byte) (proto uint8, src, dst uint32, sport, dport uint16, flags uint8, ok bool) {
	if len(b) < PeekFlow4Len {
		return
	}
	b = b[:PeekFlow4Len]
	const l3, l4 = EthernetHeaderLen, EthernetHeaderLen + IPv4MinHeaderLen
	proto, flags = b[l3+ip4Proto], b[l4+tcpFlags]
	ok = binary.BigEndian.Uint32(b[ethType:])>>8 == EtherTypeIPv4<<8|4<<4|IPv4MinHeaderLen/4 &&
		binary.BigEndian.Uint16(b[l3+ip4FlagsOff:])&(ip4FlagMF|ip4FragOffsetMask) == 0 &&
		(proto == IPProtoTCP || proto == IPProtoUDP)
	if proto != IPProtoTCP {
		flags = 0
	}
	return proto, binary.LittleEndian.Uint32(b[l3+ip4Src:]), binary.LittleEndian.Uint32(b[l3+ip4Dst:]),
		binary.BigEndian.Uint16(b[l4:]), binary.BigEndian.Uint16(b[l4+2:]), flags, ok
}

// PeekFlow4Len is the shortest frame PeekFlow4 reads: through a TCP header's flags.
const PeekFlow4Len = EthernetHeaderLen + IPv4MinHeaderLen + tcpFlags + 1
