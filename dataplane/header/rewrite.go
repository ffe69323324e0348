package header

import "encoding/binary"

// In-place rewrites of a decoded frame, as IPVS's transmitters make them (docs/ipvs-semantics.md
// §9). Every function takes the frame and the Parsed that Decode filled for it, with
// DropNone, and possibly changed since only by these functions, which keep it in step
// with the frame. Checksums are updated incrementally (RFC 1624) wherever the original
// was valid, so a valid checksum stays valid and an invalid one stays invalid, as in
// the kernel; none of them allocates.

// DecTTL decrements the IPv4 TTL, updating the header checksum incrementally, or the
// IPv6 hop limit, as every non-local IPVS transmitter does (§9.1). If the packet is not
// IP or its TTL is 1 or 0 it changes nothing and returns false: the caller then sends
// ICMP Time Exceeded (BuildICMPError with ICMPTimeExceeded) and drops the packet.
func DecTTL(frame []byte, p *Parsed) bool {
	if p.TTL <= 1 {
		return false
	}
	switch p.IPVersion {
	case 4:
		DecTTL4(frame, p)
	case 6:
		IPv6(frame[p.L3Off:p.End]).SetHopLimit(p.TTL - 1)
		p.TTL--
	default:
		return false
	}
	return true
}

// DecTTL4 is DecTTL for an IPv4 packet whose TTL is above 1, small enough to inline
// into a transmitter that tests those two facts itself. Precondition: p.IPVersion
// == 4, p.TTL > 1.
func DecTTL4(frame []byte, p *Parsed) {
	h := frame[p.L3Off:]
	_ = h[ip4Checksum+1] // BCE: one check for the three bytes written
	h[ip4TTL] = p.TTL - 1
	binary.LittleEndian.PutUint16(h[ip4Checksum:], checksumDecTTL(binary.LittleEndian.Uint16(h[ip4Checksum:])))
	p.TTL--
}

// checksumDecTTL is ChecksumUpdate16(hc, m, m-0x0100) for the IPv4 header's (TTL,
// protocol) word m whose TTL is at least 1, on the checksum's two bytes read
// little-endian (r: hc byte-swapped). The word loses 0x0100 without a borrow, so its
// complement, and the checksum, gain 0x0100 in ones' complement; a ones' complement
// sum of byte-swapped words is the byte-swapped sum (RFC 1071 §2 (B)), so on r
// that is 1. The end-around carry: a sum past 0xffff gets one more; and as RFC 1624
// eqn. 3 never gives 0xffff (-0), a sum of exactly 0xffff also gets one more and
// wraps to 0. Both in one add: (s+1)>>16 is 1 exactly when s >= 0xffff (s is at
// most 0x10000). Neither the word nor the protocol needs reading, and no byte swap.
func checksumDecTTL(r uint16) uint16 {
	s := uint32(r) + 1
	return uint16(s + (s+1)>>16)
}

// SetMACs sets the destination and source MAC addresses: the whole of DR's rewrite
// besides the TTL (§9.2). Precondition: len(frame) >= EthernetHeaderLen.
func SetMACs(frame []byte, dst, src [6]byte) {
	// Array stores, not copy: one bounds check, and no test for a copy onto itself.
	m := (*[2 * 6]byte)(frame[ethDst:])
	*(*[6]byte)(m[0:6]) = dst
	*(*[6]byte)(m[6:12]) = src
}

// NATInbound rewrites a client's TCP or UDP packet to a NAT real server: destination
// address := daddr, destination port := dport (§9.3). It updates the IPv4 header
// checksum and the L4 checksum, pseudo-header included, and returns false, changing
// nothing, for other protocols. The TTL is left to DecTTL. See natRewrite for UDP
// without checksum and for fragments.
func NATInbound(frame []byte, p *Parsed, daddr [16]byte, dport uint16) bool {
	return natRewrite(frame, p, daddr, dport, true)
}

// NATOutbound rewrites a NAT real server's reply for the client: source address :=
// saddr (the VIP), source port := sport (the virtual port) (§5.10), with the same
// checksum handling as NATInbound. IPVS leaves the TTL of replies to normal forwarding.
func NATOutbound(frame []byte, p *Parsed, saddr [16]byte, sport uint16) bool {
	return natRewrite(frame, p, saddr, sport, false)
}

// natRewrite sets the destination (dst) or source address and port.
//
// UDP: a present checksum is updated incrementally and a result of zero is sent as
// 0xffff. An absent one (zero) is replaced by a full computation, as IPVS does
// (udp_dnat_handler/udp_snat_handler fall through to it when the field is zero,
// docs/ipvs-semantics.md §7.2), again with zero sent as 0xffff — except in a fragment, where the
// rest of the datagram is elsewhere and the field stays zero ("no checksum").
//
// Fragments (IPVS, after Linux's reassembly, never sees them; gvs does): a first
// fragment is rewritten like a whole packet — the L4 checksum covers the whole
// datagram, and an incremental update is exact without seeing the rest. A non-first
// fragment has no L4 header: only its address (and IPv4 header checksum) is rewritten.
// The pseudo-header part of the L4 checksum lives in the first fragment, whose update
// already accounts for the address change, so a reassembled datagram verifies as long
// as every fragment gets the same address.
func natRewrite(frame []byte, p *Parsed, addr [16]byte, port uint16, dst bool) bool {
	if p.Proto != IPProtoTCP && p.Proto != IPProtoUDP {
		return false
	}
	// The IPv4 header checksum is updated by the address setter; the L4 checksum
	// below, for the pseudo-header address and the port.
	var from [16]byte // the address replaced, in the first alen bytes
	alen := 4
	switch p.IPVersion {
	case 4:
		h := IPv4(frame[p.L3Off:p.End])
		a := [4]byte(addr[:4])
		var old [4]byte
		if dst {
			old = h.DestinationAddress()
			h.SetDestinationAddressWithChecksumUpdate(a)
		} else {
			old = h.SourceAddress()
			h.SetSourceAddressWithChecksumUpdate(a)
		}
		copy(from[:], old[:])
	case 6:
		h := IPv6(frame[p.L3Off:p.End])
		alen = 16
		if dst {
			from = h.DestinationAddress()
			h.SetDestinationAddress(addr)
		} else {
			from = h.SourceAddress()
			h.SetSourceAddress(addr)
		}
	default:
		return false
	}
	clear(addr[alen:]) // keep p.Src/p.Dst canonical: an IPv4 address's tail is zero
	fullUDP := false
	if !p.NonFirstFragment {
		// Decode checked that TCP and UDP headers are whole.
		l4 := frame[p.L4Off:p.End]
		switch p.Proto {
		case IPProtoTCP:
			t := TCP(l4)
			t.UpdateChecksumPseudoHeaderAddress(from[:alen], addr[:alen])
			if dst {
				t.SetDestinationPortWithChecksumUpdate(port)
			} else {
				t.SetSourcePortWithChecksumUpdate(port)
			}
		case IPProtoUDP:
			// The UDP setters leave an absent (zero) checksum alone.
			u := UDP(l4)
			fullUDP = u.Checksum() == 0 && !p.IsFragment
			u.UpdateChecksumPseudoHeaderAddress(from[:alen], addr[:alen])
			if dst {
				u.SetDestinationPortWithChecksumUpdate(port)
			} else {
				u.SetSourcePortWithChecksumUpdate(port)
			}
		}
	}
	if fullUDP {
		setUDPChecksum(frame, p)
	}
	if dst {
		p.Dst = addr
		if p.HasPorts {
			p.DstPort = port
		}
	} else {
		p.Src = addr
		if p.HasPorts {
			p.SrcPort = port
		}
	}
	return true
}

// setUDPChecksum computes and stores the full UDP checksum of an unfragmented datagram
// over its length field's bytes (Decode checked that they are within the packet).
func setUDPChecksum(frame []byte, p *Parsed) {
	u := UDP(frame[p.L4Off:p.End])
	ul := u.Length()
	alen := 4
	var src, dst []byte
	if p.IPv6 {
		alen = 16
		src = frame[p.L3Off+ip6Src : p.L3Off+ip6Src+alen]
		dst = frame[p.L3Off+ip6Dst : p.L3Off+ip6Dst+alen]
	} else {
		src = frame[p.L3Off+ip4Src : p.L3Off+ip4Src+alen]
		dst = frame[p.L3Off+ip4Dst : p.L3Off+ip4Dst+alen]
	}
	u.SetChecksum(0)
	s := PseudoHeaderSum(src, dst, IPProtoUDP, uint32(ul))
	u.SetChecksum(udpNonZero(^Checksum(u[:ul], s)))
}

// NATICMPInbound translates an ICMP error about a NAT connection on its way to the
// real server (ip_vs_icmp_xmit, §9.6): outer destination := daddr, quoted source :=
// daddr, quoted source port := dport (when the quote has ports). It recomputes the
// IPv4 header checksum, the quoted IPv4 header's checksum and the whole ICMP checksum
// (ICMPv6: with the pseudo-header). Like IPVS it leaves the quoted TCP/UDP checksum
// alone. It returns false, changing nothing, unless p.HasEmbedded. The TTL is left to
// DecTTL.
func NATICMPInbound(frame []byte, p *Parsed, daddr [16]byte, dport uint16) bool {
	return natICMP(frame, p, daddr, dport, true)
}

// NATICMPOutbound translates an ICMP error sent by a NAT real server about client
// traffic (ip_vs_out_icmp, §5.7): outer source := saddr (the VIP), quoted destination
// := saddr, quoted destination port := sport (the virtual port), with checksums as
// NATICMPInbound.
func NATICMPOutbound(frame []byte, p *Parsed, saddr [16]byte, sport uint16) bool {
	return natICMP(frame, p, saddr, sport, false)
}

// natICMP rewrites the outer destination and quoted source (in), or the outer source
// and quoted destination (out).
func natICMP(frame []byte, p *Parsed, addr [16]byte, port uint16, in bool) bool {
	if !p.HasEmbedded || p.IPVersion == 0 {
		return false
	}
	if !p.IPv6 {
		clear(addr[4:])
	}
	// Port first: the quoted L4 header follows the quoted IP header.
	if p.EmbHasPorts {
		poff := p.EmbL4Off + 2 // quoted destination port
		if in {
			poff = p.EmbL4Off // quoted source port
		}
		frame[poff], frame[poff+1] = byte(port>>8), byte(port)
	}
	if p.IPv6 {
		outer := IPv6(frame[p.L3Off:p.End])
		quoted := IPv6(frame[p.EmbL3Off:p.End])
		if in {
			outer.SetDestinationAddress(addr)
			quoted.SetSourceAddress(addr)
		} else {
			outer.SetSourceAddress(addr)
			quoted.SetDestinationAddress(addr)
		}
		m := ICMPv6(frame[p.L4Off:p.End])
		m.SetChecksum(m.ComputeChecksum(outer.SourceAddress(), outer.DestinationAddress()))
	} else {
		outer := IPv4(frame[p.L3Off:p.End])
		quoted := IPv4(frame[p.EmbL3Off:p.End])
		a := [4]byte(addr[:4])
		if in {
			outer.SetDestinationAddressWithChecksumUpdate(a)
			quoted.SetSourceAddress(a)
		} else {
			outer.SetSourceAddressWithChecksumUpdate(a)
			quoted.SetDestinationAddress(a)
		}
		// The quoted header is whole (Decode checked its IHL against the quote).
		quoted.SetChecksum(quoted.ComputeChecksum())
		m := ICMPv4(frame[p.L4Off:p.End])
		m.SetChecksum(m.ComputeChecksum())
	}
	if in {
		p.Dst, p.EmbSrc = addr, addr
		if p.EmbHasPorts {
			p.EmbSrcPort = port
		}
	} else {
		p.Src, p.EmbDst = addr, addr
		if p.EmbHasPorts {
			p.EmbDstPort = port
		}
	}
	return true
}
