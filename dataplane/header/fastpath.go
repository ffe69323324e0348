package header

import "encoding/binary"

// DecodeFast decodes the frame nearly every packet is — untagged IPv4 with a 20-byte
// header, not a fragment, carrying TCP or UDP — in one straight pass that checks what
// the general path checks for it (IPv4 version and length, header checksum, total
// length; TCP data offset; UDP length) and fills p exactly as the general path would.
// It reports false for any other frame, and for one the general path would drop,
// leaving p for the general path to overwrite; FuzzDecodeFast holds the two paths
// equal. Decode tries it first; a caller may call it itself, and DecodeOther when it
// reports false.
func (p *Parsed) DecodeFast(frame []byte) bool {
	const (
		l3 = EthernetHeaderLen
		l4 = l3 + IPv4MinHeaderLen
	)
	if len(frame) < l4+UDPHeaderLen || binary.BigEndian.Uint16(frame[ethType:]) != EtherTypeIPv4 {
		return false
	}
	b := frame[l3:]
	// BCE: one check for the fixed IPv4 header and the first 8 L4 bytes.
	_ = b[IPv4MinHeaderLen+UDPHeaderLen-1]
	if b[ip4VerIHL] != 4<<4|IPv4MinHeaderLen/4 || !ipv4HeaderValid((*[IPv4MinHeaderLen]byte)(b)) {
		return false
	}
	tl := int(binary.BigEndian.Uint16(b[ip4TotalLen:]))
	ff := binary.BigEndian.Uint16(b[ip4FlagsOff:])
	if tl < IPv4MinHeaderLen+UDPHeaderLen || tl > len(b) || ff&(ip4FlagMF|ip4FragOffsetMask) != 0 {
		return false
	}
	seg := b[IPv4MinHeaderLen:tl]
	proto := b[ip4Proto]
	var flags uint8
	var hl int
	switch proto {
	case IPProtoTCP:
		if len(seg) < TCPMinHeaderLen {
			return false
		}
		hl = int(seg[tcpDataOff]>>4) * 4
		if hl < TCPMinHeaderLen || hl > len(seg) {
			return false
		}
		flags = seg[tcpFlags]
	case IPProtoUDP:
		if ul := int(binary.BigEndian.Uint16(seg[udpLength:])); ul < UDPHeaderLen || ul > len(seg) {
			return false
		}
		hl = UDPHeaderLen
	default:
		return false
	}
	*p = Parsed{}
	p.L3Off, p.L4Off, p.PayloadOff, p.End = l3, l4, l4+hl, l3+tl
	p.EtherType = EtherTypeIPv4
	p.SrcPort, p.DstPort = binary.BigEndian.Uint16(seg[0:]), binary.BigEndian.Uint16(seg[2:])
	p.IPVersion, p.TTL, p.TOS, p.DF = 4, b[ip4TTL], b[ip4TOS], ff&ip4FlagDF != 0
	p.Proto, p.HasPorts, p.TCPFlags = proto, true, flags
	*(*[4]byte)(p.Src[:]) = [4]byte(b[ip4Src:])
	*(*[4]byte)(p.Dst[:]) = [4]byte(b[ip4Dst:])
	return true
}
