package vrrp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// IPv4 header (RFC 791) fields the codec reads or writes:
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
const (
	ip4VersionIHL = 0
	ip4TOS        = 1
	ip4TotalLen   = 2
	ip4ID         = 4
	ip4FlagsFrag  = 6
	ip4TTL        = 8
	ip4Protocol   = 9
	ip4Checksum   = 10
	ip4Src        = 12
	ip4Dst        = 16
	ip4MinLen     = 20

	ip4MoreFragments = 0x2000
	ip4FragOffset    = 0x1fff
)

// IPv6 header (RFC 8200 §3):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                  Source Address (16 bytes)                    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               Destination Address (16 bytes)                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ip6VersionClassFlow = 0
	ip6PayloadLen       = 4
	ip6NextHeader       = 6
	ip6HopLimit         = 7
	ip6Src              = 8
	ip6Dst              = 24
	ip6HeaderLen        = 40

	ip6FlowLabelMask = 0x000fffff
	ip6ClassShift    = 20
)

// Packet is a VRRP advert with the IP header fields that validation and encoding use.
// The zero value is an empty packet; decoding into a reused Packet allocates nothing
// once Advert.Addrs has grown to the advert size.
//
// With an AF_PACKET or IPv4 raw socket the runner hands the whole IP packet to
// UnmarshalBinary. An IPv6 raw socket strips the header: fill Src, Dst (IPV6_PKTINFO)
// and HopLimit (IPV6_HOPLIMIT) by hand and call Advert.Decode on the payload.
type Packet struct {
	Src, Dst netip.Addr
	// HopLimit is the IPv4 TTL or IPv6 hop limit. It is written as is: VRRP sends
	// HopLimit (255) in every mode.
	HopLimit uint8
	// TOS is the IPv4 type of service or IPv6 traffic class; keepalived sends
	// TOSNetworkControl.
	TOS uint8
	// ID is the IPv4 identification (keepalived increments it per advert). IPv4 only.
	ID uint16
	// FlowLabel is the IPv6 flow label, 20 bits. IPv6 only.
	FlowLabel uint32
	Advert    Advert
}

// AppendBinary appends the IP packet (IPv4 header without options, DF clear, or IPv6
// header without extension headers) followed by the advert to b. It implements
// encoding.BinaryAppender. On error b is returned unchanged.
func (p *Packet) AppendBinary(b []byte) ([]byte, error) {
	is6, ok := family(p.Src, p.Dst)
	if !ok {
		return b, fmt.Errorf("vrrp: marshal packet: %w: source %v and destination %v are not both IPv4 or both IPv6", ErrInvalidAdvert, p.Src, p.Dst)
	}
	if err := p.Advert.validate(p.Src, p.Dst); err != nil {
		return b, fmt.Errorf("vrrp: marshal packet: %w", err)
	}
	start := len(b)
	n := p.Advert.Len()
	if is6 {
		if p.FlowLabel > ip6FlowLabelMask {
			return b, fmt.Errorf("vrrp: marshal packet: %w: flow label %#x exceeds 20 bits", ErrInvalidAdvert, p.FlowLabel)
		}
		b = binary.BigEndian.AppendUint32(b, 6<<28|uint32(p.TOS)<<ip6ClassShift|p.FlowLabel)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
		b = append(b, ProtocolNumber, p.HopLimit)
		b = appendAddr(b, p.Src)
		b = appendAddr(b, p.Dst)
	} else {
		b = append(b, 4<<4|ip4MinLen/4, p.TOS)
		b = binary.BigEndian.AppendUint16(b, uint16(ip4MinLen+n))
		b = binary.BigEndian.AppendUint16(b, p.ID)
		b = append(b, 0, 0, p.HopLimit, ProtocolNumber, 0, 0)
		b = appendAddr(b, p.Src)
		b = appendAddr(b, p.Dst)
		hdr := b[start:]
		binary.BigEndian.PutUint16(hdr[ip4Checksum:], ^fold(sum(hdr, 0)))
	}
	// validate has run, so Append cannot fail.
	b, _ = p.Advert.Append(b, p.Src, p.Dst)
	return b, nil
}

// MarshalBinary returns the IP packet AppendBinary would append. It implements
// encoding.BinaryMarshaler.
func (p *Packet) MarshalBinary() ([]byte, error) {
	return p.AppendBinary(make([]byte, 0, ip6HeaderLen+p.Advert.Len()))
}

// UnmarshalBinary parses an IPv4 or IPv6 packet carrying a VRRP advert into p. It
// implements encoding.BinaryUnmarshaler and copies what it keeps.
//
// Bytes beyond the IP total (or payload) length are ignored, so Ethernet padding may
// stay; IPv4 options are skipped. A fragment, a bad IPv4 header checksum, or any next
// header but 112 is rejected. The error is one of the decoding Reasons, unwrapped (see
// Reason); on error p is left partly written.
func (p *Packet) UnmarshalBinary(b []byte) error {
	if len(b) == 0 {
		return ErrTruncated
	}
	var payload []byte
	switch b[0] >> 4 {
	case 4:
		if len(b) < ip4MinLen {
			return ErrTruncated
		}
		ihl := int(b[ip4VersionIHL]&0x0f) * 4
		if ihl < ip4MinLen {
			return ErrIPHeader
		}
		total := int(binary.BigEndian.Uint16(b[ip4TotalLen:]))
		if total < ihl {
			return ErrIPHeader
		}
		if len(b) < total {
			return ErrTruncated
		}
		if fold(sum(b[:ihl], 0)) != 0xffff {
			return ErrIPHeader
		}
		// DF may be set (a kernel-built header sets it); MF or an offset means a
		// fragment, which a VRRP advert never is.
		if binary.BigEndian.Uint16(b[ip4FlagsFrag:])&(ip4MoreFragments|ip4FragOffset) != 0 {
			return ErrIPHeader
		}
		if b[ip4Protocol] != ProtocolNumber {
			return ErrProtocol
		}
		p.Src = netip.AddrFrom4([4]byte(b[ip4Src:]))
		p.Dst = netip.AddrFrom4([4]byte(b[ip4Dst:]))
		p.HopLimit = b[ip4TTL]
		p.TOS = b[ip4TOS]
		p.ID = binary.BigEndian.Uint16(b[ip4ID:])
		p.FlowLabel = 0
		payload = b[ihl:total]
	case 6:
		if len(b) < ip6HeaderLen {
			return ErrTruncated
		}
		end := ip6HeaderLen + int(binary.BigEndian.Uint16(b[ip6PayloadLen:]))
		if len(b) < end {
			return ErrTruncated
		}
		if b[ip6NextHeader] != ProtocolNumber {
			return ErrProtocol
		}
		vcf := binary.BigEndian.Uint32(b[ip6VersionClassFlow:])
		p.Src = netip.AddrFrom16([16]byte(b[ip6Src:]))
		p.Dst = netip.AddrFrom16([16]byte(b[ip6Dst:]))
		p.HopLimit = b[ip6HopLimit]
		p.TOS = uint8(vcf >> ip6ClassShift)
		p.ID = 0
		p.FlowLabel = vcf & ip6FlowLabelMask
		payload = b[ip6HeaderLen:end]
	default:
		return ErrIPHeader
	}
	return p.Advert.Decode(payload, p.Src, p.Dst)
}
