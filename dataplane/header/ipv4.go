package header

import "encoding/binary"

// IPv4 header (RFC 791 §3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options                    |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The Type of Service byte is the DS field (RFC 2474) and the ECN field (RFC 3168).
const (
	ip4VerIHL   = 0
	ip4TOS      = 1
	ip4TotalLen = 2
	ip4ID       = 4
	ip4FlagsOff = 6
	ip4TTL      = 8
	ip4Proto    = 9
	ip4Checksum = 10
	ip4Src      = 12
	ip4Dst      = 16

	// IPv4MinHeaderLen is the length of an IPv4 header without options.
	IPv4MinHeaderLen = 20
	// IPv4MaxHeaderLen is the length of an IPv4 header with 40 bytes of options.
	IPv4MaxHeaderLen = 60
	// IPv4MinMTU is the smallest MTU every IPv4 link must carry (RFC 791 §3.2).
	IPv4MinMTU = 68

	ip4FlagDF         = 0x4000
	ip4FlagMF         = 0x2000
	ip4FragOffsetMask = 0x1fff
)

// IP protocol numbers (IANA) that the package parses or writes.
const (
	IPProtoHopByHop = 0
	IPProtoICMP     = 1
	IPProtoIPIP     = 4 // IPv4 encapsulation (RFC 2003)
	IPProtoTCP      = 6
	IPProtoUDP      = 17
	IPProtoIPv6     = 41 // IPv6 encapsulation (RFC 2473, RFC 4213)
	IPProtoRouting  = 43
	IPProtoFragment = 44
	IPProtoESP      = 50
	IPProtoAH       = 51
	IPProtoICMPv6   = 58
	IPProtoNoNext   = 59
	IPProtoDstOpts  = 60
	IPProtoSCTP     = 132
)

// ECN codepoints in the low two bits of the DS/traffic class byte (RFC 3168 §5).
const (
	ECNMask   = 0x03
	ECNNotECT = 0x00
	ECNECT1   = 0x01
	ECNECT0   = 0x02
	ECNCE     = 0x03
)

// IPv4 is a view of an IPv4 header and the rest of its packet, cut at the end of the
// packet (Parsed.End) so Payload excludes Ethernet padding. Call Valid before any
// accessor; the accessors do not check lengths.
type IPv4 []byte

// Valid reports whether b holds a whole IPv4 header: version 4, an IHL of at least 5
// words, and the header and total length within b. The header checksum is not checked
// (see ChecksumValid).
func (b IPv4) Valid() bool {
	if len(b) < IPv4MinHeaderLen || b[ip4VerIHL]>>4 != 4 {
		return false
	}
	hl := b.HeaderLen()
	tl := int(b.TotalLen())
	return hl >= IPv4MinHeaderLen && hl <= len(b) && tl >= hl && tl <= len(b)
}

// Version returns the version field.
func (b IPv4) Version() uint8 { return b[ip4VerIHL] >> 4 }

// HeaderLen returns the header length in bytes (IHL × 4).
func (b IPv4) HeaderLen() int { return int(b[ip4VerIHL]&0x0f) * 4 }

// TOS returns the Type of Service (DS and ECN) byte.
func (b IPv4) TOS() uint8 { return b[ip4TOS] }

// SetTOS sets the Type of Service byte without updating the checksum.
func (b IPv4) SetTOS(v uint8) { b[ip4TOS] = v }

// TotalLen returns the total length field.
func (b IPv4) TotalLen() uint16 { return binary.BigEndian.Uint16(b[ip4TotalLen:]) }

// SetTotalLen sets the total length field without updating the checksum.
func (b IPv4) SetTotalLen(v uint16) { binary.BigEndian.PutUint16(b[ip4TotalLen:], v) }

// ID returns the identification field.
func (b IPv4) ID() uint16 { return binary.BigEndian.Uint16(b[ip4ID:]) }

// SetID sets the identification field without updating the checksum.
func (b IPv4) SetID(v uint16) { binary.BigEndian.PutUint16(b[ip4ID:], v) }

// FlagsFragmentOffset returns the flags and fragment offset word.
func (b IPv4) FlagsFragmentOffset() uint16 { return binary.BigEndian.Uint16(b[ip4FlagsOff:]) }

// SetFlagsFragmentOffset sets the flags and fragment offset word without updating the
// checksum.
func (b IPv4) SetFlagsFragmentOffset(v uint16) { binary.BigEndian.PutUint16(b[ip4FlagsOff:], v) }

// DF reports whether the Don't Fragment flag is set.
func (b IPv4) DF() bool { return b.FlagsFragmentOffset()&ip4FlagDF != 0 }

// MF reports whether the More Fragments flag is set.
func (b IPv4) MF() bool { return b.FlagsFragmentOffset()&ip4FlagMF != 0 }

// FragmentOffset returns the fragment offset in bytes.
func (b IPv4) FragmentOffset() int { return int(b.FlagsFragmentOffset()&ip4FragOffsetMask) * 8 }

// TTL returns the time to live.
func (b IPv4) TTL() uint8 { return b[ip4TTL] }

// SetTTL sets the time to live without updating the checksum.
func (b IPv4) SetTTL(v uint8) { b[ip4TTL] = v }

// Protocol returns the protocol field.
func (b IPv4) Protocol() uint8 { return b[ip4Proto] }

// SetProtocol sets the protocol field without updating the checksum.
func (b IPv4) SetProtocol(v uint8) { b[ip4Proto] = v }

// Checksum returns the header checksum field.
func (b IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[ip4Checksum:]) }

// SetChecksum sets the header checksum field.
func (b IPv4) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[ip4Checksum:], v) }

// SourceAddress returns the source address.
func (b IPv4) SourceAddress() [4]byte { return [4]byte(b[ip4Src : ip4Src+4]) }

// DestinationAddress returns the destination address.
func (b IPv4) DestinationAddress() [4]byte { return [4]byte(b[ip4Dst : ip4Dst+4]) }

// SetSourceAddress sets the source address without updating the checksum.
func (b IPv4) SetSourceAddress(a [4]byte) { copy(b[ip4Src:ip4Src+4], a[:]) }

// SetDestinationAddress sets the destination address without updating the checksum.
func (b IPv4) SetDestinationAddress(a [4]byte) { copy(b[ip4Dst:ip4Dst+4], a[:]) }

// Options returns the options bytes (empty for IHL 5).
func (b IPv4) Options() []byte { return b[IPv4MinHeaderLen:b.HeaderLen()] }

// Payload returns the bytes after the header up to the total length.
func (b IPv4) Payload() []byte { return b[b.HeaderLen():b.TotalLen()] }

// ComputeChecksum returns the header checksum computed over the header as it is now,
// with the checksum field taken as zero.
func (b IPv4) ComputeChecksum() uint16 {
	hl := b.HeaderLen()
	s := Checksum(b[:ip4Checksum], 0)
	return ^Checksum(b[ip4Checksum+2:hl], s)
}

// ChecksumValid reports whether the header checksum verifies (RFC 1071 §1).
func (b IPv4) ChecksumValid() bool { return Checksum(b[:b.HeaderLen()], 0) == 0xffff }

// SetTTLWithChecksumUpdate sets the time to live and updates the header checksum
// incrementally: TTL is the high byte of the (TTL, protocol) word (RFC 1624 §3).
func (b IPv4) SetTTLWithChecksumUpdate(ttl uint8) {
	from := binary.BigEndian.Uint16(b[ip4TTL:])
	to := uint16(ttl)<<8 | uint16(b[ip4Proto])
	b.SetChecksum(ChecksumUpdate16(b.Checksum(), from, to))
	b[ip4TTL] = ttl
}

// SetSourceAddressWithChecksumUpdate sets the source address and updates the header
// checksum incrementally (RFC 1624). It does not touch any L4 checksum.
func (b IPv4) SetSourceAddressWithChecksumUpdate(a [4]byte) {
	b.SetChecksum(ChecksumUpdate32(b.Checksum(), binary.BigEndian.Uint32(b[ip4Src:]), binary.BigEndian.Uint32(a[:])))
	b.SetSourceAddress(a)
}

// SetDestinationAddressWithChecksumUpdate sets the destination address and updates
// the header checksum incrementally (RFC 1624). It does not touch any L4 checksum.
func (b IPv4) SetDestinationAddressWithChecksumUpdate(a [4]byte) {
	b.SetChecksum(ChecksumUpdate32(b.Checksum(), binary.BigEndian.Uint32(b[ip4Dst:]), binary.BigEndian.Uint32(a[:])))
	b.SetDestinationAddress(a)
}

// ipv4HeaderSum is Checksum(b, 0) with a fast path for the common 20-byte header:
// five 32-bit words cannot overflow a 64-bit accumulator, so no carries are tracked.
func ipv4HeaderSum(b []byte) uint16 {
	if len(b) != IPv4MinHeaderLen {
		return Checksum(b, 0)
	}
	// BCE: one check for the five loads below.
	_ = b[IPv4MinHeaderLen-1]
	s := uint64(binary.BigEndian.Uint32(b[0:])) + uint64(binary.BigEndian.Uint32(b[4:])) +
		uint64(binary.BigEndian.Uint32(b[8:])) + uint64(binary.BigEndian.Uint32(b[12:])) +
		uint64(binary.BigEndian.Uint32(b[16:]))
	// s < 5·2^32: three folds bring it below 2^16.
	s = s>>16 + s&0xffff
	s = s>>16 + s&0xffff
	s = s>>16 + s&0xffff
	return uint16(s)
}

// ipv4HeaderValid reports whether a 20-byte IPv4 header's checksum verifies:
// ipv4HeaderSum(b[:]) == 0xffff, in fewer instructions for Decode's fast path. It
// adds the header as little-endian words: the ones' complement sum of byte-swapped
// 16-bit words is the byte-swapped sum (RFC 1071 §2 (B)), a 32-bit word is two 16-bit
// ones modulo 0xffff, and 0xffff is its own swap, so the test needs no byte swaps.
// The folds keep the sum's class modulo 0xffff and keep it nonzero unless every word
// is zero, so the folded sum is 0xffff exactly when the big-endian one is.
func ipv4HeaderValid(b *[IPv4MinHeaderLen]byte) bool {
	s := uint64(binary.LittleEndian.Uint32(b[0:])) + uint64(binary.LittleEndian.Uint32(b[4:])) +
		uint64(binary.LittleEndian.Uint32(b[8:])) + uint64(binary.LittleEndian.Uint32(b[12:])) +
		uint64(binary.LittleEndian.Uint32(b[16:]))
	// s < 5·2^32: two folds bring it to at most 0xffff + 5, whose third fold (1 to 5)
	// could not be 0xffff: the third is not needed for the test.
	s = s>>16 + s&0xffff
	s = s>>16 + s&0xffff
	return s == 0xffff
}

// putIPv4 writes a 20-byte IPv4 header (no options) with its checksum at the start of
// b. Precondition: len(b) >= IPv4MinHeaderLen.
func putIPv4(b []byte, tos uint8, totalLen, id uint16, df bool, ttl, proto uint8, src, dst [4]byte) {
	h := IPv4(b[:IPv4MinHeaderLen])
	h[ip4VerIHL] = 4<<4 | IPv4MinHeaderLen/4
	h.SetTOS(tos)
	h.SetTotalLen(totalLen)
	h.SetID(id)
	var ff uint16
	if df {
		ff = ip4FlagDF
	}
	h.SetFlagsFragmentOffset(ff)
	h.SetTTL(ttl)
	h.SetProtocol(proto)
	h.SetChecksum(0)
	h.SetSourceAddress(src)
	h.SetDestinationAddress(dst)
	h.SetChecksum(^ipv4HeaderSum(h))
}
