package vrrp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Version is the VRRP protocol version carried in the high nibble of the first byte.
type Version uint8

const (
	// Version2 is RFC 3768: IPv4 only, interval in seconds, an 8-byte auth field.
	Version2 Version = 2
	// Version3 is RFC 5798 (RFC 9568): IPv4 and IPv6, interval in centiseconds, no auth.
	Version3 Version = 3
)

// AuthType is the VRRPv2 Auth Type field (RFC 2338 §5.3.6; "reserved" in RFC 3768).
// Its values are the wire values, so the zero value is AuthNone.
type AuthType uint8

const (
	AuthNone     AuthType = 0 // no authentication
	AuthPassword AuthType = 1 // simple text password, keepalived's "auth_type PASS"
	AuthIPAH     AuthType = 2 // IPsec AH; gvs does not speak it
)

// Protocol numbers, addresses and limits fixed by the RFCs.
const (
	// ProtocolNumber is the IPv4 protocol and IPv6 next header of VRRP.
	ProtocolNumber = 112
	// HopLimit is the TTL or hop limit every advert is sent with and, for multicast,
	// must arrive with (RFC 5798 §5.1.1.3, §7.1).
	HopLimit = 255
	// TOSNetworkControl is the IPv4 TOS / IPv6 traffic class keepalived sends (CS6).
	TOSNetworkControl = 0xc0
	// PriorityOwner is the priority of the router that owns the VIPs as real addresses.
	PriorityOwner = 255
	// PriorityStop is the priority a master advertises when it gives up (shutdown).
	PriorityStop = 0
	// MaxAddrs is the most addresses one advert can carry (the count is one byte).
	MaxAddrs = 255
)

// MulticastGroup returns the VRRP multicast group: 224.0.0.18, or ff02::12 for IPv6.
func MulticastGroup(ipv6 bool) netip.Addr {
	if ipv6 {
		return netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x12})
	}
	return netip.AddrFrom4([4]byte{224, 0, 0, 18})
}

// VirtualMAC returns the RFC 5798 §7.3 virtual router MAC address:
// 00:00:5e:00:01:{VRID} for IPv4, 00:00:5e:00:02:{VRID} for IPv6.
func VirtualMAC(vrid uint8, ipv6 bool) [6]byte {
	if ipv6 {
		return [6]byte{0x00, 0x00, 0x5e, 0x00, 0x02, vrid}
	}
	return [6]byte{0x00, 0x00, 0x5e, 0x00, 0x01, vrid}
}

// ErrInvalidAdvert is wrapped by the errors Advert.Append and Packet.AppendBinary
// return for an Advert that cannot be put on the wire.
var ErrInvalidAdvert = errors.New("invalid advert")

// The VRRP message (RFC 3768 §5.1, RFC 5798 §5.1). Version 2, IPv4 only:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Auth Type   |   Adver Int   |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         IP Address (1)                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                              ...                              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Authentication Data (1)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Authentication Data (2)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Version 3, IPv4 (4-byte addresses) or IPv6 (16-byte addresses):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|(rsvd) |     Max Adver Int     |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IPvX Address(es)                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	offVersionType = 0
	offVRID        = 1
	offPriority    = 2
	offCount       = 3
	offAuthType    = 4 // v2
	offAdverInt    = 5 // v2: 8 bits, seconds
	offMaxAdverInt = 4 // v3: low 12 bits of 16, centiseconds
	offChecksum    = 6
	offAddrs       = 8

	headerLen      = 8
	authLen        = 8
	typeAdvert     = 1
	maxAdverIntCs  = 0x0fff
	centisecond    = 10 * time.Millisecond
	maxIntervalV2  = 255 * time.Second
	maxIntervalV3  = maxAdverIntCs * centisecond
	addrLen4       = 4
	addrLen6       = 16
	typeNibbleMask = 0x0f
)

// Advert is one VRRP advertisement: the VRRP message without its IP header. The zero
// value is not a valid advert (Version must be set). Decode reuses the Addrs slice, so
// an Advert decoded into again and again allocates only while Addrs grows.
type Advert struct {
	Version  Version
	VRID     uint8
	Priority uint8
	// Interval is Adver Int: whole seconds, 0–255 s, in v2; centiseconds, 0–40.95 s,
	// in v3 (Max Adver Int). The v3 reserved bits are written as 0 and ignored on
	// receive.
	Interval time.Duration
	// AuthType and AuthData are the v2 authentication fields. A v2 advert always
	// carries the 8 auth bytes (zeros without auth), since keepalived rejects a v2
	// packet of any other length (docs/vrrp.md §1.3). Both must be zero in v3.
	AuthType AuthType
	AuthData [authLen]byte
	// Addrs are the VIPs in packet order, all IPv4 or all IPv6 like the IP header.
	Addrs []netip.Addr
}

// Len returns the length of a's VRRP message on the wire.
func (a *Advert) Len() int {
	n := len(a.Addrs)
	switch {
	case a.Version == Version2:
		return headerLen + addrLen4*n + authLen
	case n > 0 && !a.Addrs[0].Is4():
		return headerLen + addrLen6*n
	}
	return headerLen + addrLen4*n
}

// Append appends a's VRRP message, checksum included, to b and returns the extended
// slice. src and dst are the IP source and the real IP destination (the multicast group
// or a unicast peer); they select the address family and, in v3, make up the
// pseudo-header. On error b is returned unchanged.
func (a *Advert) Append(b []byte, src, dst netip.Addr) ([]byte, error) {
	if err := a.validate(src, dst); err != nil {
		return b, fmt.Errorf("vrrp: marshal advert: %w", err)
	}
	start := len(b)
	b = append(b, byte(a.Version)<<4|typeAdvert, a.VRID, a.Priority, byte(len(a.Addrs)))
	if a.Version == Version2 {
		b = append(b, byte(a.AuthType), byte(a.Interval/time.Second))
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(a.Interval/centisecond))
	}
	b = append(b, 0, 0) // checksum, filled in below
	for _, ip := range a.Addrs {
		b = appendAddr(b, ip)
	}
	if a.Version == Version2 {
		b = append(b, a.AuthData[:]...)
	}
	msg := b[start:]
	binary.BigEndian.PutUint16(msg[offChecksum:], Checksum(msg, src, dst))
	return b, nil
}

func (a *Advert) validate(src, dst netip.Addr) error {
	is6, ok := family(src, dst)
	if !ok {
		return fmt.Errorf("%w: source %v and destination %v are not both IPv4 or both IPv6", ErrInvalidAdvert, src, dst)
	}
	switch a.Version {
	case Version2:
		if is6 {
			return fmt.Errorf("%w: VRRPv2 is IPv4 only", ErrInvalidAdvert)
		}
		if a.Interval < 0 || a.Interval > maxIntervalV2 || a.Interval%time.Second != 0 {
			return fmt.Errorf("%w: v2 interval %v is not 0–255 whole seconds", ErrInvalidAdvert, a.Interval)
		}
	case Version3:
		if a.Interval < 0 || a.Interval > maxIntervalV3 || a.Interval%centisecond != 0 {
			return fmt.Errorf("%w: v3 interval %v is not 0–4095 centiseconds", ErrInvalidAdvert, a.Interval)
		}
		if a.AuthType != AuthNone || a.AuthData != [authLen]byte{} {
			return fmt.Errorf("%w: VRRPv3 has no authentication", ErrInvalidAdvert)
		}
	default:
		return fmt.Errorf("%w: version %d", ErrInvalidAdvert, a.Version)
	}
	if len(a.Addrs) > MaxAddrs {
		return fmt.Errorf("%w: %d addresses, at most %d fit", ErrInvalidAdvert, len(a.Addrs), MaxAddrs)
	}
	for _, ip := range a.Addrs {
		if !ip.IsValid() || ip.Is4() == is6 {
			return fmt.Errorf("%w: address %v is not of the packet's family", ErrInvalidAdvert, ip)
		}
	}
	return nil
}

// family reports whether src and dst are both IPv6 (is6) or both IPv4, and ok=false
// when they are neither. An IPv4-mapped IPv6 address counts as IPv6.
func family(src, dst netip.Addr) (is6, ok bool) {
	switch {
	case src.Is4() && dst.Is4():
		return false, true
	case src.Is6() && dst.Is6():
		return true, true
	}
	return false, false
}

// Decode parses the VRRP message b, received from src to dst, into a. It checks the
// version (2 over IPv4, or 3), the type, that the length is exactly what the address
// count implies, and the checksum (v3 with the pseudo-header of src and dst). It
// returns one of ErrTruncated, ErrFamily, ErrVersion, ErrType, ErrLength and
// ErrChecksum, unwrapped; on error a is left partly written. a.Addrs is reused.
func (a *Advert) Decode(b []byte, src, dst netip.Addr) error {
	is6, ok := family(src, dst)
	if !ok {
		return ErrFamily
	}
	if len(b) < headerLen {
		return ErrTruncated
	}
	v := Version(b[offVersionType] >> 4)
	if v != Version3 && (v != Version2 || is6) {
		return ErrVersion
	}
	if b[offVersionType]&typeNibbleMask != typeAdvert {
		return ErrType
	}
	n := int(b[offCount])
	alen := addrLen4
	if is6 {
		alen = addrLen6
	}
	want := headerLen + alen*n
	if v == Version2 {
		want += authLen
	}
	if len(b) != want {
		return ErrLength
	}
	// A message is intact when the one's-complement sum over it (and the
	// pseudo-header), checksum field included, is all ones; this accepts both
	// representations of zero, as keepalived's in_csum check does.
	if fold(sum(b, pseudoSum(v, src, dst, len(b)))) != 0xffff {
		return ErrChecksum
	}

	a.Version = v
	a.VRID = b[offVRID]
	a.Priority = b[offPriority]
	a.AuthData = [authLen]byte{}
	if v == Version2 {
		a.AuthType = AuthType(b[offAuthType])
		a.Interval = time.Duration(b[offAdverInt]) * time.Second
		copy(a.AuthData[:], b[want-authLen:])
	} else {
		a.AuthType = AuthNone
		a.Interval = time.Duration(binary.BigEndian.Uint16(b[offMaxAdverInt:])&maxAdverIntCs) * centisecond
	}
	a.Addrs = a.Addrs[:0]
	addrs := b[offAddrs : offAddrs+alen*n]
	for i := 0; i < n; i++ {
		if is6 {
			a.Addrs = append(a.Addrs, netip.AddrFrom16([16]byte(addrs[i*addrLen6:])))
		} else {
			a.Addrs = append(a.Addrs, netip.AddrFrom4([4]byte(addrs[i*addrLen4:])))
		}
	}
	return nil
}

// Checksum returns the checksum a VRRP message must carry in bytes 6–7 when sent
// from src to dst, computing as if those bytes were zero. The version comes from msg:
// v2 sums the message alone (RFC 3768 §5.3.8); v3 prepends the pseudo-header (RFC 5798
// §5.2.8): for IPv4 the RFC 768 style src, dst, zero, 112, length; for IPv6 the RFC 8200
// §8.1 one. dst must be the real destination, also for unicast (docs/vrrp.md §2.6). For
// v3, src and dst must both be IPv4 or both IPv6 (As4/As16 panic otherwise).
func Checksum(msg []byte, src, dst netip.Addr) uint16 {
	var v Version
	if len(msg) > offVersionType {
		v = Version(msg[offVersionType] >> 4)
	}
	acc := pseudoSum(v, src, dst, len(msg))
	if len(msg) >= headerLen {
		acc = sum(msg[:offChecksum], acc)
		acc = sum(msg[offChecksum+2:], acc)
	} else {
		acc = sum(msg, acc)
	}
	return ^fold(acc)
}

// pseudoSum returns the unfolded sum of the v3 pseudo-header, or 0 for v2.
func pseudoSum(v Version, src, dst netip.Addr, length int) uint32 {
	if v == Version2 {
		return 0
	}
	var acc uint32
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		acc = sum(s[:], acc)
		acc = sum(d[:], acc)
	} else {
		s, d := src.As16(), dst.As16()
		acc = sum(s[:], acc)
		acc = sum(d[:], acc)
		// The IPv6 pseudo-header's length is 32 bits; its high half is zero for any
		// VRRP message, so both layouts add the same 16-bit words.
	}
	return acc + ProtocolNumber + uint32(length)
}

// sum adds b to acc as big-endian 16-bit words (RFC 1071), padding an odd byte with 0.
// acc must stay below 2^31: callers pass at most a few kilobytes.
func sum(b []byte, acc uint32) uint32 {
	for len(b) >= 2 {
		acc += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

// fold folds a 32-bit one's-complement sum to 16 bits.
func fold(acc uint32) uint16 {
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}

// appendAddr appends ip's 4 (IPv4) or 16 (IPv6) bytes.
func appendAddr(b []byte, ip netip.Addr) []byte {
	if ip.Is4() {
		a := ip.As4()
		return append(b, a[:]...)
	}
	a := ip.As16()
	return append(b, a[:]...)
}
