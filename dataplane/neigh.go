package dataplane

// The director owns its VIPs from userspace: it answers ARP requests and IPv6
// neighbour solicitations for them itself, and announces them with gratuitous ARP /
// unsolicited neighbour advertisements, so the VIP never has to be added to a kernel
// interface (which would make the kernel answer and forward VIP traffic too).

// answerARP turns an ARP request for a VIP into the reply, in place (RFC 826: swap
// sender and target, fill in our MAC, op = reply), and queues it.
func (w *Worker) answerARP(f *Frame, out []Frame) []Frame {
	p := &w.p
	b := f.Bytes()
	a := ARP(b[p.L3Off : p.L3Off+ARPLen])
	mac := w.srcMAC(b)
	if !w.s.set.hasMAC {
		// A broadcast request names no director MAC; without one configured there is
		// nothing to answer with.
		return w.drop(ReasonNotIP, out)
	}
	sha, spa, tpa := a.SenderHardwareAddress(), a.SenderProtocolAddress(), a.TargetProtocolAddress()
	a.SetOp(ARPReply)
	a.SetTargetHardwareAddress(sha)
	a.SetTargetProtocolAddress(spa)
	a.SetSenderHardwareAddress(mac)
	a.SetSenderProtocolAddress(tpa)
	SetMACs(b, sha, mac)
	w.C.Reasons[ReasonNeighbor]++
	w.C.Generated++
	return append(out, *f)
}

// ndpNS reports whether the decoded frame is an ICMPv6 neighbour solicitation and
// returns its target address (RFC 4861 §4.3).
func (w *Worker) ndpNS(b []byte) (target [16]byte, ok bool) {
	p := &w.p
	if !p.IPv6 || p.Proto != IPProtoICMPv6 || p.ICMPType != ICMPv6NeighborSolicit || p.ICMPCode != 0 || p.TTL != 255 {
		return target, false
	}
	// The target follows the 4 reserved bytes after the ICMPv6 header.
	if p.L4Off+ICMPHeaderLen+16 > p.End {
		return target, false
	}
	copy(target[:], b[p.L4Off+ICMPHeaderLen:])
	return target, true
}

// ndpLen is the length of the neighbour advertisement we send: ICMPv6 header, target,
// and the target link-layer address option (RFC 4861 §4.4, §4.6.1).
const ndpLen = ICMPHeaderLen + 16 + 8

// answerNS answers a neighbour solicitation for a VIP with a solicited neighbour
// advertisement (Solicited and Override set) from the VIP, built in a worker buffer.
func (w *Worker) answerNS(f *Frame, target [16]byte, out []Frame) []Frame {
	p := &w.p
	if !w.s.set.hasMAC || w.nicmp >= len(w.icmp) {
		w.C.ICMPSuppressed++
		return w.drop(ReasonNeighbor, out)
	}
	b := f.Bytes()
	dst, flags := p.Src, byte(0x60) // S|O
	if dst == ([16]byte{}) {
		// DAD probe from ::: answer to all-nodes, unsolicited (RFC 4861 §7.2.4).
		dst, flags = [16]byte{0: 0xff, 1: 0x02, 15: 1}, 0x20
	}
	buf := w.icmp[w.nicmp]
	n := putNA(buf, Ethernet(b).SourceAddress(), w.s.set.mac, p.HasVLAN, Ethernet(b).TCI(), target, dst, flags)
	w.nicmp++
	w.C.Reasons[ReasonNeighbor]++
	w.C.Generated++
	return append(out, Frame{Buf: buf, Len: n})
}

// putNA writes an Ethernet frame with a neighbour advertisement for target from
// ethSrc/target to ethDst/dst and returns its length.
func putNA(buf []byte, ethDst, ethSrc [6]byte, tagged bool, tci uint16, target, dst [16]byte, flags byte) int {
	l2 := putEthernet(buf, ethDst, ethSrc, tagged, tci, EtherTypeIPv6)
	putIPv6(buf[l2:], 0, ndpLen, IPProtoICMPv6, 255, target, dst)
	m := buf[l2+IPv6HeaderLen : l2+IPv6HeaderLen+ndpLen]
	clear(m)
	m[0] = ICMPv6NeighborAdvert
	m[4] = flags
	copy(m[8:24], target[:])
	m[24], m[25] = 2, 1 // target link-layer address option, 1 × 8 bytes
	copy(m[26:32], ethSrc[:])
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
	return putNA(buf, [6]byte{0x33, 0x33, 0, 0, 0, 1}, mac, false, 0, vip, [16]byte{0: 0xff, 1: 0x02, 15: 1}, 0x20)
}
