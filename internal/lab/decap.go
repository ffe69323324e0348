package lab

import "encoding/binary"

// IPv4 header (RFC 791 §3.1), the fields decapsulation reads:
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
//	|                    Destination Address                        |
const (
	ipv4VersionIHL   = 0
	ipv4TotalLength  = 2
	ipv4FlagsFrag    = 6
	ipv4Protocol     = 9
	ipv4MinHeaderLen = 20
	ipv4MoreFrags    = 0x2000
	ipv4FragOffMask  = 0x1fff
	protoIPIP        = 4 // IP-in-IP (RFC 2003)
)

// decapIPIP returns the inner IPv4 packet of an IP-in-IP packet (RFC 2003) as a
// raw socket hands it over (outer header included, reassembled), or false if pkt
// is not one: wrong version or protocol, a fragment, a length that does not add
// up, or an inner packet that is not IPv4. The result aliases pkt.
func decapIPIP(pkt []byte) ([]byte, bool) {
	outer, ok := ipv4Packet(pkt)
	if !ok || outer[ipv4Protocol] != protoIPIP {
		return nil, false
	}
	if binary.BigEndian.Uint16(outer[ipv4FlagsFrag:])&(ipv4MoreFrags|ipv4FragOffMask) != 0 {
		return nil, false
	}
	inner, ok := ipv4Packet(outer[int(outer[ipv4VersionIHL]&0x0f)*4:])
	if !ok {
		return nil, false
	}
	return inner, true
}

// ipv4Packet checks b's version, header length and total length, and returns b
// cut to the total length.
func ipv4Packet(b []byte) ([]byte, bool) {
	if len(b) < ipv4MinHeaderLen || b[ipv4VersionIHL]>>4 != 4 {
		return nil, false
	}
	ihl := int(b[ipv4VersionIHL]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[ipv4TotalLength:]))
	if ihl < ipv4MinHeaderLen || total < ihl || total > len(b) {
		return nil, false
	}
	return b[:total], true
}
