package header

import "encoding/binary"

// TCP header (RFC 9293 §3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Sequence Number                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Acknowledgment Number                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Data |       |C|E|U|A|P|R|S|F|                               |
//	| Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//	|       |       |R|E|G|K|H|T|N|N|                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Checksum            |         Urgent Pointer        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                           [Options]                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	tcpSrcPort  = 0
	tcpDstPort  = 2
	tcpSeq      = 4
	tcpAck      = 8
	tcpDataOff  = 12
	tcpFlags    = 13
	tcpWindow   = 14
	tcpChecksum = 16
	tcpUrgent   = 18

	// TCPMinHeaderLen is the length of a TCP header without options.
	TCPMinHeaderLen = 20
)

// TCP flags (RFC 9293 §3.1, RFC 3168 §6.1).
const (
	TCPFlagFIN = 0x01
	TCPFlagSYN = 0x02
	TCPFlagRST = 0x04
	TCPFlagPSH = 0x08
	TCPFlagACK = 0x10
	TCPFlagURG = 0x20
	TCPFlagECE = 0x40
	TCPFlagCWR = 0x80
)

// TCP is a view of a TCP segment. Call Valid before any accessor.
type TCP []byte

// Valid reports whether b holds a whole TCP header: at least 20 bytes and a data
// offset of at least 5 words that fits in b.
func (b TCP) Valid() bool {
	if len(b) < TCPMinHeaderLen {
		return false
	}
	hl := b.HeaderLen()
	return hl >= TCPMinHeaderLen && hl <= len(b)
}

// SourcePort returns the source port.
func (b TCP) SourcePort() uint16 { return binary.BigEndian.Uint16(b[tcpSrcPort:]) }

// DestinationPort returns the destination port.
func (b TCP) DestinationPort() uint16 { return binary.BigEndian.Uint16(b[tcpDstPort:]) }

// SetSourcePort sets the source port without updating the checksum.
func (b TCP) SetSourcePort(p uint16) { binary.BigEndian.PutUint16(b[tcpSrcPort:], p) }

// SetDestinationPort sets the destination port without updating the checksum.
func (b TCP) SetDestinationPort(p uint16) { binary.BigEndian.PutUint16(b[tcpDstPort:], p) }

// Seq returns the sequence number.
func (b TCP) Seq() uint32 { return binary.BigEndian.Uint32(b[tcpSeq:]) }

// Ack returns the acknowledgment number.
func (b TCP) Ack() uint32 { return binary.BigEndian.Uint32(b[tcpAck:]) }

// HeaderLen returns the data offset in bytes.
func (b TCP) HeaderLen() int { return int(b[tcpDataOff]>>4) * 4 }

// Flags returns the eight flag bits (TCPFlagFIN …).
func (b TCP) Flags() uint8 { return b[tcpFlags] }

// Window returns the window field.
func (b TCP) Window() uint16 { return binary.BigEndian.Uint16(b[tcpWindow:]) }

// Checksum returns the checksum field.
func (b TCP) Checksum() uint16 { return binary.BigEndian.Uint16(b[tcpChecksum:]) }

// SetChecksum sets the checksum field.
func (b TCP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[tcpChecksum:], v) }

// UrgentPointer returns the urgent pointer.
func (b TCP) UrgentPointer() uint16 { return binary.BigEndian.Uint16(b[tcpUrgent:]) }

// Options returns the option bytes.
func (b TCP) Options() []byte { return b[TCPMinHeaderLen:b.HeaderLen()] }

// SetSourcePortWithChecksumUpdate sets the source port and updates the checksum
// incrementally (RFC 1624).
func (b TCP) SetSourcePortWithChecksumUpdate(p uint16) {
	b.SetChecksum(ChecksumUpdate16(b.Checksum(), b.SourcePort(), p))
	b.SetSourcePort(p)
}

// SetDestinationPortWithChecksumUpdate sets the destination port and updates the
// checksum incrementally (RFC 1624).
func (b TCP) SetDestinationPortWithChecksumUpdate(p uint16) {
	b.SetChecksum(ChecksumUpdate16(b.Checksum(), b.DestinationPort(), p))
	b.SetDestinationPort(p)
}

// UpdateChecksumPseudoHeaderAddress updates the checksum for a pseudo-header address
// that changed from from to to (4 or 16 bytes each).
func (b TCP) UpdateChecksumPseudoHeaderAddress(from, to []byte) {
	b.SetChecksum(ChecksumUpdateBytes(b.Checksum(), from, to))
}
