package header

import "encoding/binary"

// UDP header (RFC 768):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            Length             |           Checksum            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// A checksum field of zero means "no checksum" over IPv4; a computed checksum of zero
// is transmitted as 0xffff (RFC 768).
const (
	udpSrcPort  = 0
	udpDstPort  = 2
	udpLength   = 4
	udpChecksum = 6

	// UDPHeaderLen is the length of the UDP header.
	UDPHeaderLen = 8
)

// UDP is a view of a UDP datagram. Call Valid before any accessor.
type UDP []byte

// Valid reports whether b holds the header and a length field between 8 and len(b).
func (b UDP) Valid() bool {
	return len(b) >= UDPHeaderLen && b.Length() >= UDPHeaderLen && int(b.Length()) <= len(b)
}

// SourcePort returns the source port.
func (b UDP) SourcePort() uint16 { return binary.BigEndian.Uint16(b[udpSrcPort:]) }

// DestinationPort returns the destination port.
func (b UDP) DestinationPort() uint16 { return binary.BigEndian.Uint16(b[udpDstPort:]) }

// SetSourcePort sets the source port without updating the checksum.
func (b UDP) SetSourcePort(p uint16) { binary.BigEndian.PutUint16(b[udpSrcPort:], p) }

// SetDestinationPort sets the destination port without updating the checksum.
func (b UDP) SetDestinationPort(p uint16) { binary.BigEndian.PutUint16(b[udpDstPort:], p) }

// Length returns the length field (header and data).
func (b UDP) Length() uint16 { return binary.BigEndian.Uint16(b[udpLength:]) }

// SetLength sets the length field.
func (b UDP) SetLength(v uint16) { binary.BigEndian.PutUint16(b[udpLength:], v) }

// Checksum returns the checksum field.
func (b UDP) Checksum() uint16 { return binary.BigEndian.Uint16(b[udpChecksum:]) }

// SetChecksum sets the checksum field.
func (b UDP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[udpChecksum:], v) }

// SetSourcePortWithChecksumUpdate sets the source port and, unless the checksum is
// absent (zero), updates it incrementally, sending a result of zero as 0xffff.
func (b UDP) SetSourcePortWithChecksumUpdate(p uint16) {
	if c := b.Checksum(); c != 0 {
		b.SetChecksum(udpNonZero(ChecksumUpdate16(c, b.SourcePort(), p)))
	}
	b.SetSourcePort(p)
}

// SetDestinationPortWithChecksumUpdate sets the destination port and, unless the
// checksum is absent (zero), updates it incrementally, sending zero as 0xffff.
func (b UDP) SetDestinationPortWithChecksumUpdate(p uint16) {
	if c := b.Checksum(); c != 0 {
		b.SetChecksum(udpNonZero(ChecksumUpdate16(c, b.DestinationPort(), p)))
	}
	b.SetDestinationPort(p)
}

// UpdateChecksumPseudoHeaderAddress updates a present (non-zero) checksum for a
// pseudo-header address that changed from from to to.
func (b UDP) UpdateChecksumPseudoHeaderAddress(from, to []byte) {
	if c := b.Checksum(); c != 0 {
		b.SetChecksum(udpNonZero(ChecksumUpdateBytes(c, from, to)))
	}
}

// udpNonZero maps a computed checksum of zero to 0xffff, its other one's complement
// representation, because zero on the wire means "no checksum" (RFC 768).
func udpNonZero(c uint16) uint16 {
	if c == 0 {
		return 0xffff
	}
	return c
}
