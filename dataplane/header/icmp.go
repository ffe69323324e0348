package header

import "encoding/binary"

// ICMPv4 (RFC 792) and ICMPv6 (RFC 4443 §2.1) share the first eight bytes: type,
// code, checksum, then four bytes whose meaning depends on the type:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      rest of header (unused, ID/sequence, pointer or MTU)     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  body: for errors, as much of the offending IP packet as fits |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// In ICMPv4 Destination Unreachable / Fragmentation Needed the low 16 bits of the rest
// of header carry the next-hop MTU (RFC 1191 §4); in ICMPv6 Packet Too Big all 32 bits
// carry the MTU (RFC 4443 §3.2). The ICMPv4 checksum covers the ICMP message; the
// ICMPv6 checksum also covers the IPv6 pseudo-header (RFC 4443 §2.3).
const (
	icmpType     = 0
	icmpCode     = 1
	icmpChecksum = 2
	icmpRest     = 4
	icmpMTU4     = 6

	// ICMPHeaderLen is the length of the ICMP header including the rest-of-header
	// word, for both ICMPv4 and ICMPv6.
	ICMPHeaderLen = 8
)

// ICMPv4 types and codes used by the package (RFC 792, RFC 1191, RFC 1812).
const (
	ICMPv4EchoReply       = 0
	ICMPv4DestUnreachable = 3
	ICMPv4SourceQuench    = 4
	ICMPv4Redirect        = 5
	ICMPv4EchoRequest     = 8
	ICMPv4TimeExceeded    = 11
	ICMPv4ParamProblem    = 12

	ICMPv4CodePortUnreachable = 3
	ICMPv4CodeFragNeeded      = 4
	ICMPv4CodeTTLExceeded     = 0

	// icmpv4MaxType is the highest type Linux knows (NR_ICMP_TYPES); it sends no
	// error about a message of an unknown type (icmp_send).
	icmpv4MaxType = 18
)

// ICMPv6 types and codes used by the package (RFC 4443, RFC 4861).
const (
	ICMPv6DestUnreachable = 1
	ICMPv6PacketTooBig    = 2
	ICMPv6TimeExceeded    = 3
	ICMPv6ParamProblem    = 4
	ICMPv6EchoRequest     = 128
	ICMPv6EchoReply       = 129
	ICMPv6NeighborSolicit = 135
	ICMPv6NeighborAdvert  = 136
	ICMPv6Redirect        = 137

	ICMPv6CodePortUnreachable = 4
	ICMPv6CodeHopLimit        = 0

	icmpv6InfoMask = 0x80 // types below 128 are errors (RFC 4443 §2.1)
)

// ICMPv4 is a view of an ICMPv4 message. Call Valid before any accessor.
type ICMPv4 []byte

// Valid reports whether b holds the eight-byte header.
func (b ICMPv4) Valid() bool { return len(b) >= ICMPHeaderLen }

// Type returns the type.
func (b ICMPv4) Type() uint8 { return b[icmpType] }

// Code returns the code.
func (b ICMPv4) Code() uint8 { return b[icmpCode] }

// SetTypeCode sets the type and code.
func (b ICMPv4) SetTypeCode(t, c uint8) { b[icmpType], b[icmpCode] = t, c }

// Checksum returns the checksum field.
func (b ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[icmpChecksum:]) }

// SetChecksum sets the checksum field.
func (b ICMPv4) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[icmpChecksum:], v) }

// Rest returns the rest-of-header word.
func (b ICMPv4) Rest() uint32 { return binary.BigEndian.Uint32(b[icmpRest:]) }

// SetRest sets the rest-of-header word.
func (b ICMPv4) SetRest(v uint32) { binary.BigEndian.PutUint32(b[icmpRest:], v) }

// MTU returns the next-hop MTU of a Fragmentation Needed message (RFC 1191 §4).
func (b ICMPv4) MTU() uint16 { return binary.BigEndian.Uint16(b[icmpMTU4:]) }

// Payload returns the message body after the eight-byte header.
func (b ICMPv4) Payload() []byte { return b[ICMPHeaderLen:] }

// ComputeChecksum returns the checksum of the whole message b with the checksum field
// taken as zero.
func (b ICMPv4) ComputeChecksum() uint16 {
	s := Checksum(b[:icmpChecksum], 0)
	return ^Checksum(b[icmpChecksum+2:], s)
}

// IsError reports whether the message is an ICMPv4 error, or of a type Linux does
// not know: neither may be answered with an ICMP error (RFC 1122 §3.2.2).
func (b ICMPv4) IsError() bool { return icmpv4NoErrorReply(b.Type()) }

func icmpv4NoErrorReply(t uint8) bool {
	switch t {
	case ICMPv4DestUnreachable, ICMPv4SourceQuench, ICMPv4Redirect, ICMPv4TimeExceeded, ICMPv4ParamProblem:
		return true
	}
	return t > icmpv4MaxType
}

// ICMPv6 is a view of an ICMPv6 message. Call Valid before any accessor.
type ICMPv6 []byte

// Valid reports whether b holds the eight-byte header.
func (b ICMPv6) Valid() bool { return len(b) >= ICMPHeaderLen }

// Type returns the type.
func (b ICMPv6) Type() uint8 { return b[icmpType] }

// Code returns the code.
func (b ICMPv6) Code() uint8 { return b[icmpCode] }

// SetTypeCode sets the type and code.
func (b ICMPv6) SetTypeCode(t, c uint8) { b[icmpType], b[icmpCode] = t, c }

// Checksum returns the checksum field.
func (b ICMPv6) Checksum() uint16 { return binary.BigEndian.Uint16(b[icmpChecksum:]) }

// SetChecksum sets the checksum field.
func (b ICMPv6) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[icmpChecksum:], v) }

// Rest returns the rest-of-header word (the MTU of a Packet Too Big message).
func (b ICMPv6) Rest() uint32 { return binary.BigEndian.Uint32(b[icmpRest:]) }

// SetRest sets the rest-of-header word.
func (b ICMPv6) SetRest(v uint32) { binary.BigEndian.PutUint32(b[icmpRest:], v) }

// MTU returns the MTU of a Packet Too Big message.
func (b ICMPv6) MTU() uint32 { return b.Rest() }

// Payload returns the message body after the eight-byte header.
func (b ICMPv6) Payload() []byte { return b[ICMPHeaderLen:] }

// ComputeChecksum returns the checksum of the whole message b with the checksum field
// taken as zero, including the pseudo-header of src and dst (RFC 4443 §2.3).
func (b ICMPv6) ComputeChecksum(src, dst [16]byte) uint16 {
	s := PseudoHeaderSum(src[:], dst[:], IPProtoICMPv6, uint32(len(b)))
	s = Checksum(b[:icmpChecksum], s)
	return ^Checksum(b[icmpChecksum+2:], s)
}

// IsError reports whether the message is an ICMPv6 error or a Redirect, which may
// not be answered with an ICMPv6 error (RFC 4443 §2.4(e)).
func (b ICMPv6) IsError() bool { return icmpv6NoErrorReply(b.Type()) }

func icmpv6NoErrorReply(t uint8) bool { return t&icmpv6InfoMask == 0 || t == ICMPv6Redirect }
