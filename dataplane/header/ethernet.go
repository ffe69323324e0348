package header

import "encoding/binary"

// Ethernet II frame header (IEEE 802.3 clause 3.1.1), optionally followed by one
// IEEE 802.1Q tag:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination MAC address                    |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                      Source MAC address                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     EtherType (or TPID 0x8100)|  PCP|D|     VLAN ID (if TPID) |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|    EtherType (if tagged)      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ethDst     = 0
	ethSrc     = 6
	ethType    = 12
	ethVLANTCI = 14 // tagged frames only
	ethVLANTyp = 16 // tagged frames only

	// EthernetHeaderLen is the length of an untagged Ethernet II header.
	EthernetHeaderLen = 14
	// VLANTagLen is the length of one 802.1Q tag (TPID + TCI).
	VLANTagLen = 4
	// EthernetMinFrame is the minimum frame length without FCS; shorter frames are
	// padded by the sender, and Decode excludes that padding from the IP packet.
	EthernetMinFrame = 60

	vlanIDMask = 0x0fff
)

// EtherType values (IEEE registry).
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeVLAN = 0x8100 // IEEE 802.1Q customer tag
	EtherTypeQinQ = 0x88a8 // IEEE 802.1ad service tag (the outer tag of stacked VLANs)
	EtherTypeIPv6 = 0x86dd
)

// Ethernet is a view of an Ethernet II header: a slice of the frame, so setters write
// the frame. Call Valid before any accessor (they do not check lengths and would panic
// on a short slice); the tag accessors additionally need Tagged and ValidTagged. A nil
// view is not valid. Views share the frame's (lack of) concurrency safety.
type Ethernet []byte

// Valid reports whether e holds an untagged header.
func (e Ethernet) Valid() bool { return len(e) >= EthernetHeaderLen }

// ValidTagged reports whether e holds a header with one 802.1Q tag.
func (e Ethernet) ValidTagged() bool { return len(e) >= EthernetHeaderLen+VLANTagLen }

// DestinationAddress returns the destination MAC address.
func (e Ethernet) DestinationAddress() [6]byte { return [6]byte(e[ethDst : ethDst+6]) }

// SourceAddress returns the source MAC address.
func (e Ethernet) SourceAddress() [6]byte { return [6]byte(e[ethSrc : ethSrc+6]) }

// SetDestinationAddress sets the destination MAC address.
func (e Ethernet) SetDestinationAddress(a [6]byte) { copy(e[ethDst:ethDst+6], a[:]) }

// SetSourceAddress sets the source MAC address.
func (e Ethernet) SetSourceAddress(a [6]byte) { copy(e[ethSrc:ethSrc+6], a[:]) }

// Type returns the first EtherType field: the TPID if the frame is tagged.
func (e Ethernet) Type() uint16 { return binary.BigEndian.Uint16(e[ethType:]) }

// SetType sets the first EtherType field.
func (e Ethernet) SetType(t uint16) { binary.BigEndian.PutUint16(e[ethType:], t) }

// Tagged reports whether the frame carries an 802.1Q tag.
func (e Ethernet) Tagged() bool { return e.Type() == EtherTypeVLAN }

// TCI returns the 802.1Q tag control information (PCP, DEI, VLAN ID).
func (e Ethernet) TCI() uint16 { return binary.BigEndian.Uint16(e[ethVLANTCI:]) }

// SetTCI sets the 802.1Q tag control information.
func (e Ethernet) SetTCI(tci uint16) { binary.BigEndian.PutUint16(e[ethVLANTCI:], tci) }

// VLAN returns the 12-bit VLAN ID of a tagged frame.
func (e Ethernet) VLAN() uint16 { return e.TCI() & vlanIDMask }

// InnerType returns the EtherType that follows the 802.1Q tag.
func (e Ethernet) InnerType() uint16 { return binary.BigEndian.Uint16(e[ethVLANTyp:]) }

// SetInnerType sets the EtherType that follows the 802.1Q tag.
func (e Ethernet) SetInnerType(t uint16) { binary.BigEndian.PutUint16(e[ethVLANTyp:], t) }

// IsGroupMAC reports whether a is a multicast or broadcast MAC address (the I/G bit,
// IEEE 802-2014 §8.2.2).
func IsGroupMAC(a [6]byte) bool { return a[0]&1 != 0 }

// putEthernet writes an Ethernet header with an optional 802.1Q tag at the start of b
// and returns its length. Precondition: len(b) >= 18 if tagged, >= 14 otherwise.
func putEthernet(b []byte, dst, src [6]byte, tagged bool, tci uint16, typ uint16) int {
	e := Ethernet(b)
	e.SetDestinationAddress(dst)
	e.SetSourceAddress(src)
	if !tagged {
		e.SetType(typ)
		return EthernetHeaderLen
	}
	e.SetType(EtherTypeVLAN)
	e.SetTCI(tci)
	e.SetInnerType(typ)
	return EthernetHeaderLen + VLANTagLen
}

// ARP packet for Ethernet and IPv4 (RFC 826):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Hardware type (1)         |     Protocol type (0x0800)    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| HW len (6)    | Proto len (4) |          Operation            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|              Sender hardware address (6 bytes)                |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |  Sender protocol address ...  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  ... (4 bytes)                |  Target hardware address ...  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                       ... (6 bytes)                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|              Target protocol address (4 bytes)                |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	arpHType = 0
	arpPType = 2
	arpHLen  = 4
	arpPLen  = 5
	arpOp    = 6
	arpSHA   = 8
	arpSPA   = 14
	arpTHA   = 18
	arpTPA   = 24

	// ARPLen is the length of an Ethernet/IPv4 ARP packet.
	ARPLen = 28

	arpHTypeEthernet = 1
)

// ARP operations (RFC 826).
const (
	ARPRequest = 1
	ARPReply   = 2
)

// ARP is a view of an Ethernet/IPv4 ARP packet (ARPLen bytes). Call Valid before any
// accessor.
type ARP []byte

// Valid reports whether a holds a whole ARP packet for Ethernet and IPv4; Linux
// (arp_rcv) drops any other hardware or protocol address length.
func (a ARP) Valid() bool {
	return len(a) >= ARPLen &&
		binary.BigEndian.Uint16(a[arpHType:]) == arpHTypeEthernet &&
		binary.BigEndian.Uint16(a[arpPType:]) == EtherTypeIPv4 &&
		a[arpHLen] == 6 && a[arpPLen] == 4
}

// Op returns the operation (ARPRequest, ARPReply).
func (a ARP) Op() uint16 { return binary.BigEndian.Uint16(a[arpOp:]) }

// SetOp sets the operation.
func (a ARP) SetOp(op uint16) { binary.BigEndian.PutUint16(a[arpOp:], op) }

// SenderHardwareAddress returns the sender's MAC address.
func (a ARP) SenderHardwareAddress() [6]byte { return [6]byte(a[arpSHA : arpSHA+6]) }

// SenderProtocolAddress returns the sender's IPv4 address.
func (a ARP) SenderProtocolAddress() [4]byte { return [4]byte(a[arpSPA : arpSPA+4]) }

// TargetHardwareAddress returns the target's MAC address.
func (a ARP) TargetHardwareAddress() [6]byte { return [6]byte(a[arpTHA : arpTHA+6]) }

// TargetProtocolAddress returns the target's IPv4 address.
func (a ARP) TargetProtocolAddress() [4]byte { return [4]byte(a[arpTPA : arpTPA+4]) }

// SetSenderHardwareAddress sets the sender's MAC address.
func (a ARP) SetSenderHardwareAddress(m [6]byte) { copy(a[arpSHA:arpSHA+6], m[:]) }

// SetSenderProtocolAddress sets the sender's IPv4 address.
func (a ARP) SetSenderProtocolAddress(ip [4]byte) { copy(a[arpSPA:arpSPA+4], ip[:]) }

// SetTargetHardwareAddress sets the target's MAC address.
func (a ARP) SetTargetHardwareAddress(m [6]byte) { copy(a[arpTHA:arpTHA+6], m[:]) }

// SetTargetProtocolAddress sets the target's IPv4 address.
func (a ARP) SetTargetProtocolAddress(ip [4]byte) { copy(a[arpTPA:arpTPA+4], ip[:]) }

// SetEthernetIPv4 writes the fixed hardware/protocol type and length fields of an
// Ethernet/IPv4 ARP packet. Precondition: len(a) >= ARPLen.
func (a ARP) SetEthernetIPv4() {
	binary.BigEndian.PutUint16(a[arpHType:], arpHTypeEthernet)
	binary.BigEndian.PutUint16(a[arpPType:], EtherTypeIPv4)
	a[arpHLen] = 6
	a[arpPLen] = 4
}
