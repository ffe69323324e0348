package dataplane

import (
	"encoding/binary"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/sched"
)

func (w *Worker) drop(r Reason) {
	w.C.Reasons[r]++
}

// frameKnown is what Process learnt of a frame before it calls processFrame.
type frameKnown uint8

const (
	frameRaw     frameKnown = iota // DecodeFast did not take it: not decoded
	frameDecoded                   // DecodeFast decoded it
	frameNotVIP                    // DecodeFast decoded it, it is sent to the director's own MAC, and its destination is no VIP
)

// processFrame handles a frame of a Process batch that is not the common one Process
// sends to inbound itself, at the batch's time w.now; b is f.Bytes(), and known what
// Process learnt of it. Classification follows the kernel's hooks: traffic to a VIP
// takes the input path (ip_vs_in_hook), traffic from a NAT real server the output
// path (ip_vs_out_hook); everything else is not ours.
func (w *Worker) processFrame(s *snapshot, f *Frame, b []byte, known frameKnown) {
	p := &w.p
	if known == frameRaw {
		if dr := p.DecodeOther(b); dr != header.DropNone {
			w.C.Malformed[dr]++
			w.drop(ReasonMalformed)
			return
		}
	}
	if r := w.admit(&s.set, b); r != 0 {
		w.drop(r)
		return
	}
	owned := w.d.owned.Load()
	if p.IPVersion == 0 {
		if p.EtherType == header.EtherTypeARP && p.ARPOp == header.ARPRequest && s.vips.contains(&p.Dst, false) {
			if owned != nil && !owned.contains(&p.Dst, false) {
				w.drop(ReasonNotOwned)
				return
			}
			w.answerARP(f)
			return
		}
		w.drop(ReasonNotIP)
		return
	}
	if p.Proto == header.IPProtoICMPv6 { // tested first: IPv4 is spared the target's copy
		if target, ok := header.NeighborSolicitTarget(b, p); ok && s.vips.contains(&target, true) {
			if owned != nil && !owned.contains(&target, true) {
				w.drop(ReasonNotOwned)
				return
			}
			w.answerNS(f, target)
			return
		}
	}
	switch {
	case known != frameNotVIP && s.vips.contains(&p.Dst, p.IPv6):
		if owned != nil && !owned.contains(&p.Dst, p.IPv6) {
			w.drop(ReasonNotOwned)
			return
		}
		// ip_vs_in_hook (docs/ipvs-semantics.md §5.2): ICMP, then inbound for TCP
		// and UDP that is not a fragment.
		switch p.Proto {
		case header.IPProtoTCP, header.IPProtoUDP:
		case header.IPProtoICMP, header.IPProtoICMPv6:
			if p.HasEmbedded {
				w.inboundICMP(s, f, w.now)
				return
			}
			w.drop(ReasonICMPUnrelated)
			return
		default:
			w.drop(ReasonProtocol)
			return
		}
		if p.IsFragment {
			// The kernel reassembles before IPVS sees a packet; gvs does not, and a
			// non-first fragment has no ports to find its connection by.
			w.drop(ReasonFragment)
			return
		}
		w.inbound(s, f, b)
		return
	case s.natRS.contains(&p.Src, p.IPv6):
		w.outbound(s, f, w.now)
		return
	}
	w.drop(ReasonNotOurs)
}

// setKey fills w.key from raw addresses, zeroing the unused bytes of IPv4 addresses so
// keys compare and hash alike whatever the parser left there.
func setAddr(dst, src *[16]byte, v6 bool) {
	if v6 {
		*dst = *src
		return
	}
	// Two 8-byte stores, not a byte at a time: the flow cache and the table read the
	// key back in 8-byte words at once, and a load spanning several narrower stores
	// cannot be forwarded from the store buffer (it waits for them to commit). For
	// the same reason the address is loaded in 4 bytes, not 8: the parser stored
	// it so (header.Parsed: 4 bytes over the zeroed struct), and an 8-byte load
	// waited for both stores to commit, which a cold frame's misses delay. The
	// upper half is a variable: with it known to be zero (a widened uint32 alone,
	// or masked by a constant) the compiler splits the word's store into a 4-byte
	// store and four 1-byte stores of zero, and every packet's flowIndex stalled
	// on them.
	binary.LittleEndian.PutUint64(dst[0:8], uint64(binary.LittleEndian.Uint32(src[0:4]))|ipv4High)
	binary.LittleEndian.PutUint64(dst[8:16], 0)
}

// ipv4High is the upper half of an IPv4 address's first key word: zero, in a
// variable (see setAddr).
var ipv4High uint64

// setKey fills w.key as setAddr fills an address, with one test of the family for
// both addresses: small enough to be inlined in inbound.
func (w *Worker) setKey(proto uint8, v6 bool, caddr *[16]byte, cport uint16, vaddr *[16]byte, vport uint16) {
	k := &w.key
	k.Proto, k.IPv6, k.CPort, k.VPort = proto, v6, cport, vport
	if v6 {
		k.CAddr, k.VAddr = *caddr, *vaddr
		return
	}
	z := ipv4High
	binary.LittleEndian.PutUint64(k.CAddr[:], uint64(binary.LittleEndian.Uint32(caddr[:]))|z)
	binary.LittleEndian.PutUint64(k.CAddr[8:], 0)
	binary.LittleEndian.PutUint64(k.VAddr[:], uint64(binary.LittleEndian.Uint32(vaddr[:]))|z)
	binary.LittleEndian.PutUint64(k.VAddr[8:], 0)
}

// inbound is ip_vs_in_hook (docs/ipvs-semantics.md §5.2) for a TCP or UDP packet
// that is not a fragment (processFrame tests it, or DecodeFast's kind is), at the
// batch's time w.now; b is f.Bytes().
func (w *Worker) inbound(s *snapshot, f *Frame, b []byte) {
	p, now := &w.p, w.now
	var flags uint8
	if p.Proto == header.IPProtoTCP {
		flags = p.TCPFlags
	}
	w.fh = 0
	// The key: an IPv6 flow's now, for the cache and the table; an IPv4 flow's only
	// for the table (below): the cache's hash and comparison read the packet's
	// fields, so a packet the cache serves does not store the key.
	if p.IPv6 {
		w.setKey(p.Proto, true, &p.Src, p.SrcPort, &p.Dst, p.DstPort)
	}
	// e: the flow's slot, fresh, when the cache holds it.
	var e *flowSlot
	if flags&(header.TCPFlagSYN|header.TCPFlagRST) == 0 { // never served from the cache
		// The slot holding the packet's key, fresh at now.
		var fh uint64
		if p.IPv6 {
			fh = flowHash(&w.key)
			e = w.flows.holding(uint32(fh>>(64-flowCacheBits)), &w.key)
		} else {
			c, v := binary.LittleEndian.Uint32(p.Src[:4]), binary.LittleEndian.Uint32(p.Dst[:4])
			fh = flowHash4(p.Proto, c, p.SrcPort, v, p.DstPort)
			if fc, i := w.flows, uint32(fh>>(64-flowCacheBits)); fc.isUsed(i) && keyIs4(&fc.slots[i].key, p.Proto, c, p.SrcPort, v, p.DstPort) {
				e = &fc.slots[i]
			}
		}
		w.fh = fh
		if e != nil && !e.fresh(now) {
			e = nil
		}
		if e != nil && e.serves(p.Proto, flags) && int(e.dest) < len(s.dests) {
			if info := &s.dests[e.dest]; info.d.Available() {
				if s.set.sync != nil {
					if e.countServed() {
						w.cachedSync(s.set.sync, e, w.fh&evCheckMask, now)
					}
				}
				// xmit's one-block case in line, the common one: no call, and
				// the dest's settings found once.
				if w.plainDRTo(s, f, info, e.method) {
					header.DecTTL4(b, p)
					w.setMACs(b, &info.mac)
					w.countIn(e.dest, info.svc, uint64(p.End-p.L3Off))
					w.queue(f)
					return
				}
				c := &w.conn
				c.Dest, c.Method, c.DAddr, c.DPort = e.dest, e.method, e.daddr, e.dport
				w.xmit(s, f, b, c, false)
				return
			}
		}
	}
	if e != nil && s.set.sync == nil && !w.inRefAll {
		// The flow's slot names its connection and holds its forwarding (the
		// first ACK and the FIN of a flow the cache holds): the table steps the
		// connection there and answers what the step changed, which the slot
		// takes (stepped). Miss: the table did not step it (its entry is gone,
		// is bound elsewhere, or the table syncs); InRef and the lookup below
		// decide.
		st, r := w.d.table.StepRef(e.ref, &e.key, e.dest, flags, now)
		if r != conntrack.Miss {
			w.tableRefs++
			w.refSteps++
			if r == conntrack.Hit {
				w.stepped(s, f, b, e, &st, now)
				return
			}
			w.flows.clearUsed(uint32(w.fh >> (64 - flowCacheBits))) // DropNoDest: as forget below
			w.drop(ReasonDestDeleted)
			return
		}
	}
	if !p.IPv6 {
		w.setKey(p.Proto, false, &p.Src, p.SrcPort, &p.Dst, p.DstPort)
	}
	if s.set.sync != nil {
		// What the cache did for the flow since the table last answered
		// (foldSlot), in line: most table packets have nothing to fold.
		if e != nil {
			// The lookup above found the flow in its slot, which cannot serve
			// this packet (it changes the flow's state: a FIN): no key to
			// compare again, and no test either — the slot's count and send
			// are the fold, zero when it has none.
			w.foldOwn(e)
		} else {
			w.conn.Sync.Fold = conntrack.Fold{}
			if w.fh == 0 {
				w.fh = flowHash(&w.key)
			}
			if fc, i := w.flows, uint32(w.fh>>(64-flowCacheBits)); fc.isUsed(i) {
				if e := &fc.slots[i]; e.spend != 0 || e.x.sentAt != 0 {
					w.foldSlot(e, &w.key)
				}
			}
		}
	}
	w.tableRefs++
	var r conntrack.Result
	if e != nil {
		// The flow's slot names its connection (the first ACK and the FIN of a
		// flow the cache holds): the table steps it there, without hashing the
		// key or walking its bucket. Miss: the slot's connection is gone; the
		// lookup below decides.
		r = w.d.table.InRef(e.ref, &w.key, flags, now, &w.conn)
		w.refSteps++
	}
	if e == nil || r == conntrack.Miss {
		// What the batch prefetch serves: a frame whose bucket is read (a step
		// at a Ref reads none).
		w.lookups++
		if p.Proto == header.IPProtoTCP && flags&opensOrCloses == 0 {
			w.ackRefs++
		}
		// The lookup and, for a new flow, the scheduling and insertion in one
		// hold of the flow's shard lock: the table asks w.Pick (newconn.go) when
		// it finds nothing.
		w.nc = newConn{flags: flags, now: now}
		if w.twoPass { // tests: the lookup alone, then schedule
			r = w.d.table.In(&w.key, flags, now, &w.conn)
		} else {
			t, k := w.d.table, &w.key
			h := w.hash // the prefetch's hash of this frame's tuple, which is k's
			if h == 0 {
				h = t.Hash(k.Proto, k.IPv6, &k.CAddr, k.CPort)
			}
			r = t.InOrInsertAt(h, k, flags, now, w, &w.conn)
		}
	}
	switch r {
	case conntrack.Hit:
		if e != nil {
			// The slot found holding the flow above: the answer is written there.
			e = w.flows.restore(uint32(w.fh>>(64-flowCacheBits)), e, &w.conn, now)
		} else {
			e = w.flows.store(w.fh, &w.key, &w.conn, now)
		}
		if p := s.set.sync; p != nil {
			// syncAfterTable, in line for a short flow: no call but the push.
			if c := &w.conn; e != nil && p.startShort(e, c) {
				if (c.Sync.Send || c.Sync.Adopted) && !w.queued(c, e) {
					w.pushAfterTable(c, e)
				}
			} else {
				w.syncAfterTable(p, e, c)
			}
		}
		w.xmit(s, f, b, &w.conn, false)
		return
	case conntrack.Created:
		w.created(f, b, now)
		return
	case conntrack.DropNoDest:
		w.flows.forget(&w.key)
		w.drop(ReasonDestDeleted)
		return
	case conntrack.Full:
		w.flows.forget(&w.key)
		w.drop(ReasonTableFull)
		return
	}
	w.flows.forget(&w.key)
	if w.nc.asked && w.nc.reason != 0 {
		w.notPicked(f)
		return
	}
	// Not asked (NO_CPORT entries, the table's first connection) or a persistent
	// service: the classic path.
	w.schedule(s, f, flags, false, now)
}

// stepped finishes a table step of the flow in slot e, StepRef's Hit st at now:
// the slot takes what the step changed, as restore writes a table's answer (or is
// cleared when the flow may no longer be served from it), and the packet is sent as
// the slot forwards it. The rest of what restore writes is the connection's and
// does not change; the sync state is zeroed as restore zeroes it.
func (w *Worker) stepped(s *snapshot, f *Frame, b []byte, e *flowSlot, st *conntrack.Step, now int64) {
	if cacheableAs(e.key.Proto, st.State, st.Flags) {
		e.state = st.State
		e.keeps = conntrack.InputKeepsSet(st.State, st.Flags&conntrack.FlagNoOutput != 0)
		e.until = min(now+refreshEvery, st.Expires)
		e.spend, e.snext, e.x = 0, 0, slotExt{}
	} else {
		w.flows.clearUsed(uint32(w.fh >> (64 - flowCacheBits)))
	}
	// xmit's one-block case in line, as for a packet the cache serves.
	if info := w.plainDR(s, f, e.dest, e.method); info != nil {
		header.DecTTL4(b, &w.p)
		w.setMACs(b, &info.mac)
		w.countIn(e.dest, info.svc, uint64(w.p.End-w.p.L3Off))
		w.queue(f)
		return
	}
	c := &w.conn
	c.Dest, c.Method, c.DAddr, c.DPort = e.dest, e.method, e.daddr, e.dport
	w.xmitSteps(s, f, b, c, false)
}

// schedule is the protocol conn_schedule plus ip_vs_schedule / ip_vs_sched_persist
// (docs/ipvs-semantics.md §5.3–5.5) for the flow in w.key, which has no connection:
// the packet's own, or with icmp the flow an ICMP error quotes (schedule_icmp, §5.7),
// which the kernel schedules from the quoted header, inverted, without the SYN test.
func (w *Worker) schedule(s *snapshot, f *Frame, flags uint8, icmp bool, now int64) {
	k := &w.key
	if !icmp && k.Proto == header.IPProtoTCP && (flags&header.TCPFlagRST != 0 || (flags&header.TCPFlagSYN == 0 && !s.set.sloppyTCP)) {
		w.drop(ReasonNotSYN)
		return
	}
	svc := w.service(s, k)
	if svc == nil {
		w.drop(ReasonNoService)
		return
	}
	if b := s.set.def.source; b.interval != 0 && !icmp && !w.sourceAllowed(b, now) {
		w.drop(ReasonSourceLimit)
		return
	}
	w.setSchedPacket(icmp, now)

	var (
		dest    *sched.Dest
		control conntrack.Ref
		dport   uint16
		r       Reason
	)
	if svc.spec.Persistence > 0 {
		dest, control, r = w.persist(s, svc, now)
		if dest == nil {
			w.leave(s, svc, f, r)
			return
		}
		dport = k.VPort
		if k.VPort == svc.spec.Addr.Port() && dest.Port() != 0 {
			dport = dest.Port()
		}
	} else if dest, dport, r = w.pickPlain(svc); dest == nil {
		w.leave(s, svc, f, r)
		return
	}
	cf := connFlags(svc, k)
	if int(dest.ID()) >= len(s.dests) { // a template's dest from a newer generation
		if s, _ = w.destInfo(dest.ID()); int(dest.ID()) >= len(s.dests) {
			w.drop(ReasonDestDeleted)
			return
		}
	}
	info := &s.dests[dest.ID()]
	if w.d.table.Insert(&w.key, dest, dport, info.method, cf, control, flags, now, &w.conn) == conntrack.Full {
		w.drop(ReasonTableFull)
		return
	}
	w.churn++
	if s.set.sync != nil {
		e := w.flows.holding(flowIndex(&w.key), &w.key)
		if e != nil {
			e.clearSync() // a slot store did not just fill: syncAfterTable starts from zero
		}
		w.syncAfterTable(s.set.sync, e, &w.conn)
	}
	w.dstats[dest.ID()].Conns++
	w.sstats[svc.id].Conns++
	if !icmp && k.Proto == header.IPProtoTCP && flags&header.TCPFlagSYN == 0 {
		w.C.SloppyCreated++
	}
	w.xmit(s, f, f.Bytes(), &w.conn, icmp)
}

// persist finds or creates the persistence template of the packet's client
// (docs/ipvs-semantics.md §5.5) and returns the dest it names.
func (w *Worker) persist(s *snapshot, svc *service, now int64) (*sched.Dest, conntrack.Ref, Reason) {
	k := &w.key
	var tk conntrack.Key
	tk.IPv6 = k.IPv6
	setAddr(&tk.CAddr, &k.CAddr, k.IPv6)
	maskAddr(&tk.CAddr, svc.maskBits(), k.IPv6)
	switch {
	case svc.spec.FWMark != 0:
		// IPPROTO_IP template keyed by the mark in the first address word.
		m := svc.spec.FWMark
		tk.Proto = 0
		tk.VAddr = [16]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}
	case k.VPort == svc.spec.Addr.Port():
		tk.Proto, tk.VAddr, tk.VPort = k.Proto, k.VAddr, k.VPort
		if svc.spec.Addr.Port() == 21 {
			tk.VPort = 0
		}
	default: // port-0 service, or FTP data through the port-21 service
		tk.Proto, tk.VAddr = k.Proto, k.VAddr
	}
	var tc conntrack.Conn
	if w.d.table.Template(&tk, now, &tc) {
		if int(tc.Dest) < len(s.dests) {
			return s.dests[tc.Dest].d, tc.Ref, 0
		}
		if _, in := w.destInfo(tc.Dest); in != nil {
			return in.d, tc.Ref, 0
		}
		return nil, 0, ReasonNoDest
	}
	dest := svc.pool.Schedule(&w.pk)
	if dest == nil {
		return nil, 0, ReasonNoDest
	}
	var tdport uint16
	if k.VPort == svc.spec.Addr.Port() && svc.spec.Addr.Port() != 21 {
		tdport = dest.Port()
	}
	if w.d.table.InsertTemplate(&tk, dest, tdport, svc.spec.Persistence, now, &tc) == conntrack.Full {
		return nil, 0, ReasonTableFull
	}
	return dest, tc.Ref, 0
}

// leave is ip_vs_leave (docs/ipvs-semantics.md §5.6): no destination, so the client gets ICMP
// port unreachable and the packet is dropped.
func (w *Worker) leave(s *snapshot, svc *service, f *Frame, r Reason) {
	p := &w.p
	if r == ReasonTableFull {
		w.drop(r)
		return
	}
	if svc.spec.Addr.Port() == 21 && w.key.VPort != 21 {
		w.drop(ReasonFTPData)
		return
	}
	w.C.Reasons[r]++
	w.sendICMP(f, header.ICMPPortUnreachable, 0, &p.Dst)
}

// service is ip_vs_service_find (docs/ipvs-semantics.md §5.8) for a flow's virtual
// side: fwmark, exact, FTP data-port fallback, then port 0.
func (s *snapshot) service(f *conntrack.Key) *service {
	var k svcKey
	if len(s.marks) > 0 {
		if m := s.mark(f); m != 0 {
			if svc := s.bySvc.get(&svcKey{mark: m, v6: f.IPv6}); svc != nil {
				return svc
			}
		}
	}
	k.proto, k.v6, k.port = f.Proto, f.IPv6, f.VPort
	if f.IPv6 {
		k.addr = f.VAddr
	} else {
		// svcKey holds netip.Addr.As16 form for IPv4 (::ffff:a.b.c.d), stored as
		// two words.
		binary.LittleEndian.PutUint64(k.addr[:8], 0)
		binary.LittleEndian.PutUint64(k.addr[8:], 0xffff<<16|uint64(binary.LittleEndian.Uint32(f.VAddr[:4]))<<32)
	}
	if svc := s.bySvc.get(&k); svc != nil {
		return svc
	}
	if s.hasFTP && f.Proto == header.IPProtoTCP && (f.VPort == 20 || f.VPort >= 1024) {
		k.port = 21
		if svc := s.bySvc.get(&k); svc != nil {
			return svc
		}
	}
	if s.hasPort0 {
		k.port = 0
		return s.bySvc.get(&k)
	}
	return nil
}

// mark plays the part of the netfilter rule that sets a fwmark: the first matching
// rule's mark, or 0.
func (s *snapshot) mark(f *conntrack.Key) uint32 {
	for i := range s.marks {
		m := &s.marks[i]
		if m.Protocol != 0 && uint8(m.Protocol) != f.Proto {
			continue
		}
		a := m.Addr.Unmap()
		if a.Is6() != f.IPv6 {
			continue
		}
		if a.Is4() {
			b := a.As4()
			if b[0] != f.VAddr[0] || b[1] != f.VAddr[1] || b[2] != f.VAddr[2] || b[3] != f.VAddr[3] {
				continue
			}
		} else if a.As16() != f.VAddr {
			continue
		}
		if m.PortHi != 0 && (f.VPort < m.PortLo || f.VPort > m.PortHi) {
			continue
		}
		return m.mark
	}
	return 0
}

func (svc *service) maskBits() int {
	if svc.spec.Netmask.IsValid() {
		return svc.spec.Netmask.Bits()
	}
	if svc.ipv6 {
		return 128
	}
	return 32
}

func maskAddr(a *[16]byte, bits int, v6 bool) {
	n := 4
	if v6 {
		n = 16
	}
	for i := 0; i < n; i++ {
		switch {
		case bits >= 8:
			bits -= 8
		case bits <= 0:
			a[i] = 0
		default:
			a[i] &= byte(0xff << (8 - bits))
			bits = 0
		}
	}
}
