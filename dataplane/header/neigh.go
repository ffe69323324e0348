package header

// Frames of the director's neighbour resolution for its VIPs: the ARP reply and the
// solicited neighbour advertisement it answers with, and the gratuitous ARP /
// unsolicited neighbour advertisement it announces a VIP with (the Worker decides
// when; these functions only read and write the bytes).

// ndpLen is the length of the neighbour advertisement we send: ICMPv6 header, target,
// and the target link-layer address option (RFC 4861 §4.4, §4.6.1).
const ndpLen = ICMPHeaderLen + 16 + 8

// Neighbour advertisement layout after the ICMPv6 type, code and checksum (RFC 4861
// §4.4): a flags byte, 3 reserved bytes, the target address, then options; the target
// link-layer address option is type 2, length 1 (× 8 bytes), then the MAC (§4.6.1).
const (
	ndpNAFlags        = icmpRest
	ndpTarget         = ICMPHeaderLen
	ndpOption         = ndpTarget + 16
	ndpOptTargetLLA   = 2
	ndpOptLenTargetLL = 1
)

// Neighbour advertisement flags (RFC 4861 §4.4).
const (
	NAFlagSolicited = 0x40
	NAFlagOverride  = 0x20
)

// ReplyToARPRequest turns the decoded ARP request frame into its reply, in place (RFC
// 826: swap sender and target, fill in mac as the sender's hardware address, op =
// reply), and addresses the Ethernet header from mac to the requester.
// Precondition: p is frame's decode, with EtherType EtherTypeARP and DropNone.
func ReplyToARPRequest(frame []byte, p *Parsed, mac [6]byte) {
	a := ARP(frame[p.L3Off : p.L3Off+ARPLen])
	sha, spa, tpa := a.SenderHardwareAddress(), a.SenderProtocolAddress(), a.TargetProtocolAddress()
	a.SetOp(ARPReply)
	a.SetTargetHardwareAddress(sha)
	a.SetTargetProtocolAddress(spa)
	a.SetSenderHardwareAddress(mac)
	a.SetSenderProtocolAddress(tpa)
	SetMACs(frame, sha, mac)
}

// NeighborSolicitTarget reports whether the decoded frame is an ICMPv6 neighbour
// solicitation (code 0, hop limit 255) and returns its target address (RFC 4861
// §4.3, §7.1.1).
func NeighborSolicitTarget(frame []byte, p *Parsed) (target [16]byte, ok bool) {
	if !p.IPv6 || p.Proto != IPProtoICMPv6 || p.ICMPType != ICMPv6NeighborSolicit || p.ICMPCode != 0 || p.TTL != 255 {
		return target, false
	}
	// The target follows the 4 reserved bytes after the ICMPv6 header.
	if p.L4Off+ndpTarget+16 > p.End {
		return target, false
	}
	copy(target[:], frame[p.L4Off+ndpTarget:])
	return target, true
}

// NeighborAdvertFor writes into buf (at least 90 bytes) the solicited neighbour
// advertisement (Solicited and Override set) from target and mac that answers the
// decoded neighbour solicitation frame, keeping its 802.1Q tag, and returns its
// length. A solicitation from the unspecified address (a DAD probe) is
// answered to all-nodes, unsolicited (RFC 4861 §7.2.4).
func NeighborAdvertFor(buf, frame []byte, p *Parsed, mac [6]byte, target [16]byte) int {
	dst, flags := p.Src, byte(NAFlagSolicited|NAFlagOverride)
	if dst == ([16]byte{}) {
		dst, flags = [16]byte{0: 0xff, 1: 0x02, 15: 1}, NAFlagOverride // ff02::1
	}
	e := Ethernet(frame)
	return putNA(buf, e.SourceAddress(), mac, p.HasVLAN, e.TCI(), target, dst, flags)
}

// putNA writes an Ethernet frame with a neighbour advertisement for target from
// ethSrc/target to ethDst/dst and returns its length.
func putNA(buf []byte, ethDst, ethSrc [6]byte, tagged bool, tci uint16, target, dst [16]byte, flags byte) int {
	l2 := putEthernet(buf, ethDst, ethSrc, tagged, tci, EtherTypeIPv6)
	putIPv6(buf[l2:], 0, ndpLen, IPProtoICMPv6, 255, target, dst)
	m := buf[l2+IPv6HeaderLen : l2+IPv6HeaderLen+ndpLen]
	clear(m)
	m[icmpType] = ICMPv6NeighborAdvert
	m[ndpNAFlags] = flags
	copy(m[ndpTarget:ndpTarget+16], target[:])
	m[ndpOption], m[ndpOption+1] = ndpOptTargetLLA, ndpOptLenTargetLL
	copy(m[ndpOption+2:ndpOption+8], ethSrc[:])
	ICMPv6(m).SetChecksum(^Checksum(m, PseudoHeaderSum(target[:], dst[:], IPProtoICMPv6, ndpLen)))
	return l2 + IPv6HeaderLen + ndpLen
}

// GratuitousARP writes into buf (at least 42 bytes) the broadcast ARP request a
// director sends when it starts serving vip (RFC 5227 §3 "ARP Announcement":
// sender and target protocol address both the VIP), and returns its length.
func GratuitousARP(buf []byte, mac [6]byte, vip [4]byte) int {
	n := putEthernet(buf, [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, mac, false, 0, EtherTypeARP)
	a := ARP(buf[n : n+ARPLen])
	a.SetEthernetIPv4()
	a.SetOp(ARPRequest)
	a.SetSenderHardwareAddress(mac)
	a.SetSenderProtocolAddress(vip)
	a.SetTargetHardwareAddress([6]byte{})
	a.SetTargetProtocolAddress(vip)
	return n + ARPLen
}

// UnsolicitedNA writes into buf (at least 86 bytes) the unsolicited neighbour
// advertisement for vip to all-nodes (RFC 4861 §7.2.6, Override set), and returns its
// length.
func UnsolicitedNA(buf []byte, mac [6]byte, vip [16]byte) int {
	return putNA(buf, [6]byte{0x33, 0x33, 0, 0, 0, 1}, mac, false, 0, vip, [16]byte{0: 0xff, 1: 0x02, 15: 1}, NAFlagOverride)
}
