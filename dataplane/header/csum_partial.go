package header

// Checksum completion for frames whose L4 checksum was left to the NIC.
//
// A packet sent by a local stack over veth, virtio or any device with transmit
// checksum offload reaches AF_PACKET as CHECKSUM_PARTIAL: its TCP/UDP checksum field
// holds only the pseudo-header sum, and the ring marks the frame
// TP_STATUS_CSUMNOTREADY (packet(7)). The kernel would complete it on the way out of
// a real NIC, but a frame gvs sends back out through AF_PACKET carries no such
// request, so the real server would see a bad checksum and drop the packet. gvs
// completes the checksum in software for those frames (a real NIC's frames arrive
// with complete checksums and never pay for this).

// CompleteChecksum computes the full TCP or UDP checksum of the decoded frame in place
// (pseudo-header included), whatever the field held. It changes nothing and returns
// false for other protocols and for fragments (whose checksum covers bytes elsewhere).
func CompleteChecksum(frame []byte, p *Parsed) bool {
	if p.IsFragment || (p.Proto != IPProtoTCP && p.Proto != IPProtoUDP) || p.IPVersion == 0 {
		return false
	}
	l4 := frame[p.L4Off:p.End]
	var src, dst []byte
	if p.IPv6 {
		src = frame[p.L3Off+ip6Src : p.L3Off+ip6Src+16]
		dst = frame[p.L3Off+ip6Dst : p.L3Off+ip6Dst+16]
	} else {
		src = frame[p.L3Off+ip4Src : p.L3Off+ip4Src+4]
		dst = frame[p.L3Off+ip4Dst : p.L3Off+ip4Dst+4]
	}
	if p.Proto == IPProtoUDP {
		setUDPChecksum(frame, p)
		return true
	}
	t := TCP(l4)
	t.SetChecksum(0)
	t.SetChecksum(^Checksum(l4, PseudoHeaderSum(src, dst, IPProtoTCP, uint32(len(l4)))))
	return true
}
