package header

import "encoding/binary"

// IPv6 fixed header (RFC 8200 §3):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                                                               +
//	|                                                               |
//	+                         Source Address                        +
//	|                                                               |
//	+                                                               +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                                                               +
//	|                                                               |
//	+                      Destination Address                      +
//	|                                                               |
//	+                                                               +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ip6VerTCFlow  = 0
	ip6PayloadLen = 4
	ip6NextHeader = 6
	ip6HopLimit   = 7
	ip6Src        = 8
	ip6Dst        = 24

	// IPv6HeaderLen is the length of the fixed IPv6 header.
	IPv6HeaderLen = 40
	// IPv6MinMTU is the smallest MTU every IPv6 link must carry (RFC 8200 §5).
	IPv6MinMTU = 1280
)

// IPv6 is a view of an IPv6 packet starting at its fixed header. Call Valid before any
// accessor; the accessors do not check lengths. Extension headers are walked by
// Parsed.Decode.
type IPv6 []byte

// Valid reports whether b holds the fixed header with version 6 and the payload
// length within b.
func (b IPv6) Valid() bool {
	return len(b) >= IPv6HeaderLen && b[ip6VerTCFlow]>>4 == 6 &&
		IPv6HeaderLen+int(b.PayloadLen()) <= len(b)
}

// Version returns the version field.
func (b IPv6) Version() uint8 { return b[ip6VerTCFlow] >> 4 }

// TrafficClass returns the traffic class (DS and ECN) byte.
func (b IPv6) TrafficClass() uint8 {
	return uint8(binary.BigEndian.Uint16(b[ip6VerTCFlow:]) >> 4)
}

// SetTrafficClass sets the traffic class byte.
func (b IPv6) SetTrafficClass(tc uint8) {
	w := binary.BigEndian.Uint16(b[ip6VerTCFlow:])
	binary.BigEndian.PutUint16(b[ip6VerTCFlow:], w&0xf00f|uint16(tc)<<4)
}

// FlowLabel returns the 20-bit flow label.
func (b IPv6) FlowLabel() uint32 { return binary.BigEndian.Uint32(b[ip6VerTCFlow:]) & 0xfffff }

// PayloadLen returns the payload length field (extension headers included).
func (b IPv6) PayloadLen() uint16 { return binary.BigEndian.Uint16(b[ip6PayloadLen:]) }

// SetPayloadLen sets the payload length field.
func (b IPv6) SetPayloadLen(v uint16) { binary.BigEndian.PutUint16(b[ip6PayloadLen:], v) }

// NextHeader returns the next header field of the fixed header.
func (b IPv6) NextHeader() uint8 { return b[ip6NextHeader] }

// SetNextHeader sets the next header field of the fixed header.
func (b IPv6) SetNextHeader(v uint8) { b[ip6NextHeader] = v }

// HopLimit returns the hop limit.
func (b IPv6) HopLimit() uint8 { return b[ip6HopLimit] }

// SetHopLimit sets the hop limit (IPv6 has no header checksum).
func (b IPv6) SetHopLimit(v uint8) { b[ip6HopLimit] = v }

// SourceAddress returns the source address.
func (b IPv6) SourceAddress() [16]byte { return [16]byte(b[ip6Src : ip6Src+16]) }

// DestinationAddress returns the destination address.
func (b IPv6) DestinationAddress() [16]byte { return [16]byte(b[ip6Dst : ip6Dst+16]) }

// SetSourceAddress sets the source address.
func (b IPv6) SetSourceAddress(a [16]byte) { copy(b[ip6Src:ip6Src+16], a[:]) }

// SetDestinationAddress sets the destination address.
func (b IPv6) SetDestinationAddress(a [16]byte) { copy(b[ip6Dst:ip6Dst+16], a[:]) }

// Payload returns the bytes after the fixed header up to the payload length.
func (b IPv6) Payload() []byte { return b[IPv6HeaderLen : IPv6HeaderLen+int(b.PayloadLen())] }

// putIPv6 writes a fixed IPv6 header (flow label 0) at the start of b.
// Precondition: len(b) >= IPv6HeaderLen.
func putIPv6(b []byte, tc uint8, payloadLen uint16, next, hopLimit uint8, src, dst [16]byte) {
	h := IPv6(b[:IPv6HeaderLen])
	binary.BigEndian.PutUint32(h[ip6VerTCFlow:], 6<<28|uint32(tc)<<20)
	h.SetPayloadLen(payloadLen)
	h.SetNextHeader(next)
	h.SetHopLimit(hopLimit)
	h.SetSourceAddress(src)
	h.SetDestinationAddress(dst)
}

// IPv6 extension headers (RFC 8200 §4). Hop-by-Hop Options, Routing and Destination
// Options share this prefix, with Hdr Ext Len in 8-octet units not counting the first
// 8 octets (§4.3, §4.4, §4.6):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |  Hdr Ext Len  |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	.                 type-specific data (6 + 8 × Hdr Ext Len)      .
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The Authentication Header (RFC 4302 §2.2) has the same prefix with Payload Len in
// 4-octet units minus 2. The Fragment header (RFC 8200 §4.5) is always 8 octets:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Identification                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ip6ExtNext    = 0
	ip6ExtLen     = 1
	ip6FragOffM   = 2
	ip6FragID     = 4
	ip6ExtMinLen  = 8
	ip6FragHdrLen = 8

	ip6FragOffsetMask = 0xfff8
	ip6FragM          = 0x0001

	// MaxIPv6ExtHeaders bounds the extension header walk: a chain longer than this is
	// dropped (Decode returns DropIPv6TooManyExt). RFC 8200 §4.1 recommends at most one
	// of each header type (Destination Options twice), i.e. six; 8 leaves slack.
	MaxIPv6ExtHeaders = 8
)

// ipv6Ext is the result of an extension header walk.
type ipv6Ext struct {
	proto      uint8 // upper-layer protocol, or the next header where the walk stopped
	off        int   // offset of the upper-layer header within the walked slice
	fragment   bool  // a Fragment header with M set or a non-zero offset
	nonFirst   bool  // a Fragment header with a non-zero offset: no upper-layer header
	fragHeader bool  // a Fragment header was seen (atomic fragments included)
}

// walkIPv6Ext follows the extension header chain of the IPv6 packet b (fixed header
// included, b cut at the end of the packet) from next header next. It stops at the
// first header that is not an extension header it knows (the upper layer, ESP, No
// Next Header), or after a Fragment header with a non-zero offset, whose payload is
// the middle of the original packet.
func walkIPv6Ext(b []byte, next uint8) (ipv6Ext, Drop) {
	off := IPv6HeaderLen
	var x ipv6Ext
	for n := 0; ; n++ {
		var hl int
		switch next {
		case IPProtoHopByHop, IPProtoRouting, IPProtoDstOpts, IPProtoAH:
			// Hop-by-Hop is only allowed right after the fixed header (RFC 8200
			// §4.1); Linux sends a parameter problem and drops elsewhere.
			if next == IPProtoHopByHop && off != IPv6HeaderLen {
				return x, DropIPv6BadExt
			}
			if len(b)-off < ip6ExtMinLen {
				return x, DropIPv6BadExt
			}
			if next == IPProtoAH {
				hl = (int(b[off+ip6ExtLen]) + 2) * 4
			} else {
				hl = (int(b[off+ip6ExtLen]) + 1) * 8
			}
		case IPProtoFragment:
			if len(b)-off < ip6FragHdrLen {
				return x, DropIPv6BadExt
			}
			hl = ip6FragHdrLen
			fo := binary.BigEndian.Uint16(b[off+ip6FragOffM:])
			x.fragHeader = true
			x.fragment = fo&(ip6FragOffsetMask|ip6FragM) != 0
			x.nonFirst = fo&ip6FragOffsetMask != 0
		default:
			x.proto, x.off = next, off
			return x, DropNone
		}
		if n >= MaxIPv6ExtHeaders {
			return x, DropIPv6TooManyExt
		}
		if hl > len(b)-off {
			return x, DropIPv6BadExt
		}
		next = b[off+ip6ExtNext]
		off += hl
		if x.nonFirst {
			x.proto, x.off = next, off
			return x, DropNone
		}
	}
}

// IsMulticast6 reports whether a is an IPv6 multicast address (RFC 4291 §2.7).
func IsMulticast6(a [16]byte) bool { return a[0] == 0xff }
