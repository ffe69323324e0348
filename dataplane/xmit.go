package dataplane

import (
	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/ipvs"
)

// srcMAC is the director's MAC: configured, or else the destination the frame was
// sent to (which is the director's own on the link it arrived by).
func (w *Worker) srcMAC(b []byte) [6]byte {
	if st := &w.s.set; st.hasMAC {
		return st.mac
	}
	return header.Ethernet(b).DestinationAddress()
}

// setMACs is DR's rewrite besides the TTL (docs/ipvs-semantics.md §9.2) and the
// Ethernet step of the other methods: the destination MAC := *dst, the source :=
// srcMAC's, stored from where it is (the source before the destination, which it
// may be) rather than passed through the stack. Precondition: len(b) >= 12 (a
// decoded frame).
func (w *Worker) setMACs(b []byte, dst *[6]byte) {
	m := (*[12]byte)(b)
	if st := &w.s.set; st.hasMAC {
		*(*[6]byte)(m[6:]) = st.mac
	} else {
		*(*[6]byte)(m[6:]) = *(*[6]byte)(m[:6])
	}
	*(*[6]byte)(m[:6]) = *dst
}

// ownAddr is the source of ICMP errors the director originates as a router (time
// exceeded, fragmentation needed): its own address of the packet's family, or the
// packet's destination when none is configured.
func (w *Worker) ownAddr() *[16]byte {
	p := &w.p
	st := &w.s.set
	if p.IPv6 {
		if st.hasAddr6 {
			return &st.addr6
		}
	} else if st.hasAddr4 {
		return &st.addr4
	}
	return &p.Dst
}

func (w *Worker) nextID() uint16 {
	w.ipid++
	return w.ipid
}

// sendICMP builds the ICMP error kind about the current frame into a worker buffer and
// queues it; the frame itself has already been counted.
func (w *Worker) sendICMP(f *Frame, kind header.ICMPErrorKind, mtu int, src *[16]byte) {
	if w.nicmp >= len(w.icmp) {
		w.C.ICMPSuppressed++
		return
	}
	if !w.icmpAllowed(kind) {
		w.C.ICMPRateLimited++
		return
	}
	b := f.Bytes()
	buf := w.icmp[w.nicmp]
	r := header.ICMPReply{Kind: kind, MTU: uint32(mtu), EthSrc: w.srcMAC(b), EthDst: header.Ethernet(b).SourceAddress(), ID: w.nextID()}
	setAddr(&r.Src, src, w.p.IPv6)
	n, ok := header.BuildICMPError(buf, b, &w.p, &r)
	if !ok {
		w.C.ICMPSuppressed++
		return
	}
	w.nicmp++
	w.C.Generated++
	w.out = append(w.out, Frame{Buf: buf, Len: n})
}

// xmit sends the current frame to its connection's real server with the connection's
// forwarding method (docs/ipvs-semantics.md §9): the common TTL and MTU step, then the method's
// rewrite. related is set for ICMP errors forwarded for a connection (§9.6): they are
// exempt from the MTU check and, for NAT, translated rather than rewritten. b is
// f.Bytes(), which the caller has at hand.
//
// A DR packet of IPv4 with TTL to spare, within the MTU, with its checksum complete
// and its real server's MAC known, is tested for all of that first and sent in one
// block with no call (xmitSteps's spills of its arguments are paid only by the other
// packets). The tests have no side effects, so a packet that fails one takes
// xmitSteps's path from its start, in its order.
func (w *Worker) xmit(s *snapshot, f *Frame, b []byte, c *conntrack.Conn, related bool) {
	if info := w.plainDR(s, f, c.Dest, c.Method); info != nil {
		p := &w.p
		header.DecTTL4(b, p)
		w.setMACs(b, &info.mac)
		w.countIn(c.Dest, info.svc, uint64(p.End-p.L3Off))
		w.queue(f)
		return
	}
	w.xmitSteps(s, f, b, c, related)
}

// plainDR returns dest's settings when the current frame, sent to dest by method m,
// is xmit's one-block case (plainDRTo), else nil.
func (w *Worker) plainDR(s *snapshot, f *Frame, dest uint32, m ipvs.Method) *destInfo {
	if d := int(dest); d < len(s.dests) {
		if info := &s.dests[d]; w.plainDRTo(s, f, info, m) {
			return info
		}
	}
	return nil
}

// plainDRTo reports whether the current frame, sent by method m to the dest whose
// settings are info, is xmit's one-block case: DR, IPv4, TTL to spare, within the
// MTU, checksum complete, the real server's MAC known. It has no side effects and is
// inlined, so the flow cache's path (inbound), which has info, sends such a frame
// as xmit does without calling it.
func (w *Worker) plainDRTo(s *snapshot, f *Frame, info *destInfo, m ipvs.Method) bool {
	p := &w.p
	return m == ipvs.DR && p.IPVersion == 4 && p.TTL > 1 && !f.CsumPartial && info.hasMAC && p.End-p.L3Off <= s.set.mtu
}

// xmitSteps is xmit's every case, step by step in docs/ipvs-semantics.md §9's order.
func (w *Worker) xmitSteps(s *snapshot, f *Frame, b []byte, c *conntrack.Conn, related bool) {
	p := &w.p
	if int(c.Dest) >= len(s.dests) { // a connection made on a newer generation
		if s, _ = w.destInfo(c.Dest); int(c.Dest) >= len(s.dests) {
			w.drop(ReasonDestDeleted)
			return
		}
	}
	info := &s.dests[c.Dest]
	if !info.hasMAC {
		w.drop(ReasonNoMAC)
		return
	}
	n := p.End - p.L3Off
	// §9.1: the TTL is decremented before the MTU check, so an ICMP error quotes the
	// decremented header, as the kernel's does. IPv4 in line: a call here costs
	// xmit the spill of everything it holds.
	if p.IPVersion == 4 && p.TTL > 1 {
		header.DecTTL4(b, p)
	} else if !header.DecTTL(b, p) {
		w.C.Reasons[ReasonTTLExceeded]++
		w.sendICMP(f, header.ICMPTimeExceeded, 0, w.ownAddr())
		return
	}
	if c.Method == ipvs.TUN {
		w.xmitTunnel(s, f, c, info, related)
		return
	}
	if n > s.set.mtu {
		w.tooBig(f, s.set.mtu, true, related)
		return
	}
	if f.CsumPartial && !related {
		// Complete before the rewrites: they update checksums incrementally.
		header.CompleteChecksum(b, p)
		f.CsumPartial = false
	}
	if c.Method == ipvs.NAT {
		if related {
			header.NATICMPInbound(b, p, c.DAddr, c.DPort)
		} else {
			header.NATInbound(b, p, c.DAddr, c.DPort)
		}
	}
	w.setMACs(b, &info.mac)
	w.countIn(c.Dest, info.svc, uint64(n))
	w.queue(f)
}

// queue appends the frame to the batch's output (w.out): in place when it has room
// (Process's callers pass room for a batch), which spares append's copy of the frame
// through the stack.
func (w *Worker) queue(f *Frame) {
	if n := len(w.out); n < cap(w.out) {
		w.out = w.out[:n+1]
		w.out[n] = *f
		return
	}
	w.out = append(w.out, *f)
}

// tooBig handles a packet longer than the route's mtu (§9.1): ICMP fragmentation
// needed or packet too big when the packet may not be fragmented (header.ExceedsMTU;
// never for an ICMP error carried for a connection), else a drop where Linux would
// fragment.
func (w *Worker) tooBig(f *Frame, mtu int, pmtu, related bool) {
	if !related && header.ExceedsMTU(&w.p, mtu, pmtu) {
		w.C.Reasons[ReasonTooBig]++
		w.sendICMP(f, header.ICMPFragNeeded, mtu, w.ownAddr())
		return
	}
	// Linux would fragment (ignore_df); gvs does not.
	w.drop(ReasonTooBigNoDF)
}

// countIn counts a packet of n bytes forwarded to real server dest of service svc.
func (w *Worker) countIn(dest, svc uint32, n uint64) {
	st := &w.dstats[dest]
	st.InPkts++
	st.InBytes += n
	sv := &w.sstats[svc]
	sv.InPkts++
	sv.InBytes += n
	w.C.Forwarded++
}

// xmitTunnel is xmit's TUN method, after the TTL: the tunnel's MTU, and the frame
// encapsulated in an outer IP header (§9.4).
func (w *Worker) xmitTunnel(s *snapshot, f *Frame, c *conntrack.Conn, info *destInfo, related bool) {
	p := &w.p
	mtu, ok := header.TunnelMTU(s.set.mtu, info.ipv6)
	if !ok {
		w.drop(ReasonTooBig)
		return
	}
	n := p.End - p.L3Off
	if n > mtu {
		w.tooBig(f, mtu, s.set.pmtuDisc, related)
		return
	}
	b := f.Bytes()
	if f.CsumPartial && !related {
		header.CompleteChecksum(b, p)
		f.CsumPartial = false
	}
	src := &s.set.addr4
	if info.ipv6 {
		src = &s.set.addr6
	}
	t := header.Tunnel{Src: *src, Dst: info.addr, IPv6: info.ipv6, EthSrc: w.srcMAC(b), EthDst: info.mac, ID: w.nextID(), PMTUDisc: s.set.pmtuDisc}
	frame, ok := header.Encapsulate(f.Buf, f.Off, p, &t)
	if !ok {
		w.drop(ReasonTooBig)
		return
	}
	end := f.Off + p.End
	f.Off, f.Len = end-len(frame), len(frame)
	w.countIn(c.Dest, info.svc, uint64(n))
	w.out = append(w.out, *f)
}

// outbound is ip_vs_out_hook for a frame from a NAT real server (docs/ipvs-semantics.md
// §5.10): the reply of a tracked connection leaves as VIP:vport. gvs routes it itself,
// so it also does what forwarding would: decrement the TTL.
func (w *Worker) outbound(s *snapshot, f *Frame, now int64) {
	p := &w.p
	switch p.Proto {
	case header.IPProtoTCP, header.IPProtoUDP:
	case header.IPProtoICMP, header.IPProtoICMPv6:
		if p.HasEmbedded {
			w.outboundICMP(s, f, now)
			return
		}
		w.drop(ReasonNotOurs)
		return
	default:
		w.drop(ReasonNotOurs)
		return
	}
	if p.IsFragment {
		w.drop(ReasonFragment)
		return
	}
	var src, dst [16]byte
	setAddr(&src, &p.Src, p.IPv6)
	setAddr(&dst, &p.Dst, p.IPv6)
	var flags uint8
	if p.Proto == header.IPProtoTCP {
		flags = p.TCPFlags
	}
	if w.d.table.Out(p.Proto, p.IPv6, src, p.SrcPort, dst, p.DstPort, flags, now, &w.conn) != conntrack.Hit {
		w.drop(ReasonReplyNoConn)
		return
	}
	if w.conn.Method != ipvs.NAT {
		// Out applied the OUTPUT transition and cleared NOOUTPUT: a state this
		// worker's flow cache may hold for the connection is stale now.
		w.flows.forget(&w.conn.Key)
		w.drop(ReasonNotOurs)
		return
	}
	if o := w.d.owned.Load(); o != nil && !o.contains(&w.conn.Key.VAddr, w.conn.Key.IPv6) {
		w.drop(ReasonNotOwned)
		return
	}
	w.reply(s, f, &w.conn, false)
}

// reply sends a NAT real server's packet (or ICMP error) on to the client.
func (w *Worker) reply(s *snapshot, f *Frame, c *conntrack.Conn, related bool) {
	p := &w.p
	if !s.set.hasGateway {
		w.drop(ReasonNoGateway)
		return
	}
	b := f.Bytes()
	length := uint64(p.End - p.L3Off)
	if !header.DecTTL(b, p) {
		w.C.Reasons[ReasonTTLExceeded]++
		w.sendICMP(f, header.ICMPTimeExceeded, 0, w.ownAddr())
		return
	}
	if f.CsumPartial && !related {
		header.CompleteChecksum(b, p)
		f.CsumPartial = false
	}
	if related {
		header.NATICMPOutbound(b, p, c.Key.VAddr, c.Key.VPort)
	} else {
		header.NATOutbound(b, p, c.Key.VAddr, c.Key.VPort)
	}
	w.setMACs(b, &s.set.gateway)
	if int(c.Dest) >= len(s.dests) {
		s, _ = w.destInfo(c.Dest)
	}
	if int(c.Dest) < len(s.dests) {
		in := &s.dests[c.Dest]
		st := &w.dstats[c.Dest]
		st.OutPkts++
		st.OutBytes += length
		sv := &w.sstats[in.svc]
		sv.OutPkts++
		sv.OutBytes += length
	}
	w.C.Forwarded++
	w.out = append(w.out, *f)
}

// relatedICMP reports whether an ICMP type is one IPVS treats as related to a
// connection (§5.7): destination unreachable, source quench, time exceeded; for
// ICMPv6 destination unreachable, packet too big, time exceeded.
func relatedICMP(p *header.Parsed) bool {
	if p.IPv6 {
		switch p.ICMPType {
		case header.ICMPv6DestUnreachable, header.ICMPv6PacketTooBig, header.ICMPv6TimeExceeded:
			return true
		}
		return false
	}
	switch p.ICMPType {
	case header.ICMPv4DestUnreachable, header.ICMPv4SourceQuench, header.ICMPv4TimeExceeded:
		return true
	}
	return false
}

// inboundICMP is ip_vs_in_icmp: an ICMP error sent to a VIP that quotes a packet of a
// tracked connection (the quote is our traffic's reverse direction, VIP → client)
// goes to that connection's real server: forwarded as it is for DR/TUN, translated
// for NAT (§5.7, §9.6). Without a connection it is scheduled as a new one when
// schedule_icmp is set, and is otherwise not related.
func (w *Worker) inboundICMP(s *snapshot, f *Frame, now int64) {
	p := &w.p
	if !relatedICMP(p) || !p.EmbHasPorts || (p.EmbProto != header.IPProtoTCP && p.EmbProto != header.IPProtoUDP) {
		w.drop(ReasonICMPUnrelated)
		return
	}
	w.setKey(p.EmbProto, p.IPv6, &p.EmbDst, p.EmbDstPort, &p.EmbSrc, p.EmbSrcPort)
	if w.d.table.Lookup(&w.key, now, &w.conn) {
		w.xmit(s, f, f.Bytes(), &w.conn, true)
		return
	}
	if s.set.scheduleICMP {
		// schedule_icmp: a connection is scheduled from the quoted header, so the
		// error reaches the real server that would serve the flow (after a failover
		// the new director has no connection for it yet).
		w.schedule(s, f, 0, true, now)
		return
	}
	w.drop(ReasonICMPUnrelated)
}

// outboundICMP is ip_vs_out_icmp: an ICMP error from a NAT real server quoting a
// client's packet as the server received it (client → RS) is translated so the client
// sees it come from the VIP (§5.7).
func (w *Worker) outboundICMP(s *snapshot, f *Frame, now int64) {
	p := &w.p
	if !relatedICMP(p) || !p.EmbHasPorts || (p.EmbProto != header.IPProtoTCP && p.EmbProto != header.IPProtoUDP) {
		w.drop(ReasonNotOurs)
		return
	}
	var rs, client [16]byte
	setAddr(&rs, &p.EmbDst, p.IPv6)
	setAddr(&client, &p.EmbSrc, p.IPv6)
	if !w.d.table.LookupOut(p.EmbProto, p.IPv6, rs, p.EmbDstPort, client, p.EmbSrcPort, now, &w.conn) || w.conn.Method != ipvs.NAT {
		w.drop(ReasonReplyNoConn)
		return
	}
	w.reply(s, f, &w.conn, true)
}
