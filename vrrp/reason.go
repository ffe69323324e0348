package vrrp

// Reason is why a received packet was dropped. Each Reason is also an error (with the
// "vrrp: " prefix) and is returned as is, never wrapped, by the decoders and
// Config.Check, so that dropping a packet allocates nothing and a runner can count
// drops in a [NumReasons]uint64 indexed by Reason:
//
//	var r vrrp.Reason
//	if errors.As(err, &r) {
//		drops[r]++
//	}
//
// The zero Reason is not a reason and is never returned.
type Reason uint8

// Reasons found by decoding alone (Packet.UnmarshalBinary, Advert.Decode).
const (
	_ Reason = iota

	// ErrTruncated: shorter than the fixed IP or VRRP header, or than the IP total
	// length says.
	ErrTruncated
	// ErrIPHeader: not IPv4 or IPv6, a bad IPv4 header length or header checksum, or a
	// fragment.
	ErrIPHeader
	// ErrProtocol: the IP protocol or IPv6 next header is not 112 (IPv6 extension
	// headers and IPsec AH are not supported).
	ErrProtocol
	// ErrVersion: the VRRP version is neither 2 nor 3, or version 2 arrived over IPv6.
	ErrVersion
	// ErrType: the VRRP type is not 1 (ADVERTISEMENT), keepalived's "Invalid packet type".
	ErrType
	// ErrLength: the message length is not exactly what the address count implies
	// (8+4n, 8+16n, plus 8 auth bytes in v2); keepalived's "packet too long|short".
	ErrLength
	// ErrChecksum: the VRRP checksum does not verify; keepalived's "Invalid VRRPv2/v3
	// checksum".
	ErrChecksum

	// Reasons found by Config.Check, in the order it checks them.

	// ErrFamily: an IPv4 packet for an IPv6 instance or the reverse.
	ErrFamily
	// ErrTTL: TTL or hop limit is not 255 (multicast only, as in keepalived);
	// keepalived's "invalid TTL/HL".
	ErrTTL
	// ErrVersionMismatch: the VRRP version differs from the configured one;
	// keepalived's "wrong version".
	ErrVersionMismatch
	// ErrVRID: the VRID is not the instance's. keepalived demultiplexes by VRID and
	// ignores unknown ones silently.
	ErrVRID
	// ErrAuthType: v2 auth type differs from the configured one; keepalived's
	// "received a N auth, expecting M!".
	ErrAuthType
	// ErrAuthData: v2 PASS auth with the wrong password; keepalived's "received an
	// invalid passwd!".
	ErrAuthData
	// ErrInterval: a v2 advert interval different from the local one (keepalived's
	// "advertisement interval mismatch"), or a v3 interval of 0, which gvs refuses to
	// adopt (keepalived cannot send one).
	ErrInterval
	// ErrAddrCount: the VIP count differs from the configured one; keepalived's
	// "received an unexpected ip number count".
	ErrAddrCount
	// ErrAddrMissing: a configured VIP is not in the advert; keepalived's "ip address
	// associated with VRID not present in MASTER advert".
	ErrAddrMissing
	// ErrDestination: a multicast packet for a unicast instance or the reverse;
	// keepalived's "Expected unicast packet but received multicast packet".
	ErrDestination
	// ErrUnicastSource: with CheckUnicastSrc, the source is not a configured peer;
	// keepalived's "unicast source address X not a unicast peer".
	ErrUnicastSource

	// NumReasons is one more than the largest Reason, for sizing counter arrays.
	NumReasons
)

// String returns a short lower-case description, suitable as a metrics label value.
func (r Reason) String() string {
	switch r {
	case ErrTruncated:
		return "truncated packet"
	case ErrIPHeader:
		return "malformed IP header"
	case ErrProtocol:
		return "not a VRRP packet"
	case ErrVersion:
		return "unsupported VRRP version"
	case ErrType:
		return "invalid VRRP packet type"
	case ErrLength:
		return "length does not match address count"
	case ErrChecksum:
		return "invalid VRRP checksum"
	case ErrFamily:
		return "address family mismatch"
	case ErrTTL:
		return "TTL/hop limit is not 255"
	case ErrVersionMismatch:
		return "VRRP version mismatch"
	case ErrVRID:
		return "VRID mismatch"
	case ErrAuthType:
		return "auth type mismatch"
	case ErrAuthData:
		return "invalid password"
	case ErrInterval:
		return "advertisement interval mismatch"
	case ErrAddrCount:
		return "VIP count mismatch"
	case ErrAddrMissing:
		return "configured VIP missing from advert"
	case ErrDestination:
		return "multicast/unicast mismatch"
	case ErrUnicastSource:
		return "source is not a unicast peer"
	}
	return "unknown reason"
}

// Error implements error.
func (r Reason) Error() string { return "vrrp: " + r.String() }
