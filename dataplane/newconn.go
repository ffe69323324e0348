package dataplane

import (
	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/sched"
)

// The new-connection path in one pass. inbound hands the connection table the flow
// with the worker as its conntrack.Picker (conntrack.Table.InOrInsert): the table
// looks the flow up and, finding no connection, asks Pick for the real server while
// it still holds the flow's shard lock, then inserts — one hash, one lock hold and one
// bucket walk for a SYN instead of a lookup and an insertion. Pick is schedule's
// non-persistent case (docs/ipvs-semantics.md §5.3–5.4); a persistent service, whose
// template lives in another shard, is left to schedule, which the table's answer then
// runs as before. Pick runs under a shard lock: it calls the scheduler (its own lock
// is never held while a shard lock is taken) and the source limit (atomics), never
// the table.

// newConn is one InOrInsert call's exchange with Pick.
type newConn struct {
	flags uint8 // the packet's TCP flags (0 for UDP)
	now   int64
	asked bool     // Pick ran
	svc   *service // the flow's service, once Pick found it
	// reason is why Pick made no connection (0: persistent service, for schedule).
	reason Reason
}

// svcMemo is a worker's last answer of snapshot.service: generation s's service for
// a flow to (proto, vaddr, vport) of family v6. The answer is a function of these and
// the generation alone (the fwmark rules, the index and its fallbacks read nothing
// else of the flow), and a generation is never changed once published, so while they
// match the memo is the answer: a new flow to the virtual service of the one before
// it compares four fields instead of building the index key, hashing it, probing and
// comparing the service's key. It holds only the worker's current generation (sync
// clears it), so it keeps no older one alive.
type svcMemo struct {
	s     *snapshot // nil: empty
	svc   *service  // the answer, nil included
	vaddr [16]byte
	vport uint16
	proto uint8
	v6    bool
}

// holds reports whether the memo is generation s's answer for k's service.
func (m *svcMemo) holds(s *snapshot, k *conntrack.Key) bool {
	return m.s == s && m.vaddr == k.VAddr && m.vport == k.VPort && m.proto == k.Proto && m.v6 == k.IPv6
}

// service is s.service(k) through the worker's memo.
func (w *Worker) service(s *snapshot, k *conntrack.Key) *service {
	if m := &w.svcMemo; m.holds(s, k) {
		return m.svc
	}
	return w.serviceMemo(s, k)
}

// serviceMemo looks the service up in s and remembers the answer when s is the
// worker's current generation.
func (w *Worker) serviceMemo(s *snapshot, k *conntrack.Key) *service {
	svc := s.service(k)
	if s == w.s {
		w.svcMemo = svcMemo{s: s, svc: svc, vaddr: k.VAddr, vport: k.VPort, proto: k.Proto, v6: k.IPv6}
	}
	return svc
}

// setSchedPacket fills w.pk, the scheduler's view of the flow in w.key; with icmp
// the flow an ICMP error quotes, whose header runs VIP → client (sh and mh hash its
// destination).
func (w *Worker) setSchedPacket(icmp bool, now int64) {
	k, pk := &w.key, &w.pk
	if icmp {
		pk.Src, pk.Dst, pk.SrcPort, pk.DstPort = k.VAddr, k.CAddr, k.VPort, k.CPort
	} else {
		pk.Src, pk.Dst, pk.SrcPort, pk.DstPort = k.CAddr, k.VAddr, k.CPort, k.VPort
	}
	pk.IPv6, pk.Protocol, pk.Inverse, pk.Now = k.IPv6, k.Proto, icmp, now
}

// pickPlain is ip_vs_schedule for a service without persistence, w.pk set: the real
// server and port, or nil and the reason for leave.
func (w *Worker) pickPlain(svc *service) (*sched.Dest, uint16, Reason) {
	k := &w.key
	if svc.spec.FWMark == 0 && svc.spec.Addr.Port() != k.VPort {
		// Port-0 (and FTP data fallback) services schedule only persistently.
		return nil, 0, ReasonPortZero
	}
	dest := svc.pool.Schedule(&w.pk)
	if dest == nil {
		return nil, 0, ReasonNoDest
	}
	dport := dest.Port()
	if dport == 0 {
		dport = k.VPort
	}
	return dest, dport, 0
}

// connFlags are the flags a new connection of svc for k gets: ONE_PACKET for UDP
// with one-packet scheduling (§5.9).
func connFlags(svc *service, k *conntrack.Key) conntrack.Flags {
	if svc.spec.OPS && k.Proto == header.IPProtoUDP {
		return conntrack.FlagOnePacket
	}
	return 0
}

// Pick implements conntrack.Picker for inbound's InOrInsert: schedule's checks and
// choice for w.key, which has no connection, in the same order.
func (w *Worker) Pick(k *conntrack.Key) (*sched.Dest, uint16, ipvs.Method, conntrack.Flags) {
	nc := &w.nc
	nc.asked = true
	s := w.s
	if k.Proto == header.IPProtoTCP && (nc.flags&header.TCPFlagRST != 0 || (nc.flags&header.TCPFlagSYN == 0 && !s.set.sloppyTCP)) {
		nc.reason = ReasonNotSYN
		return nil, 0, 0, 0
	}
	// service, its memo's test in line (the call costs more than the test).
	svc := w.svcMemo.svc
	if !w.svcMemo.holds(s, k) {
		svc = w.serviceMemo(s, k)
	}
	if nc.svc = svc; svc == nil {
		nc.reason = ReasonNoService
		return nil, 0, 0, 0
	}
	if svc.spec.Persistence > 0 {
		return nil, 0, 0, 0 // reason 0: schedule does it, source limit included
	}
	if b := s.set.def.source; b.interval != 0 && !w.sourceAllowed(b, nc.now) {
		nc.reason = ReasonSourceLimit
		return nil, 0, 0, 0
	}
	if svc.readsPacket { // else the scheduler ignores w.pk: not filled
		w.setSchedPacket(false, nc.now)
	}
	dest, dport, r := w.pickPlain(svc)
	if dest == nil {
		nc.reason = r
		return nil, 0, 0, 0
	}
	if int(dest.ID()) >= len(s.dests) { // a dest published after this batch began
		if s, _ = w.destInfo(dest.ID()); int(dest.ID()) >= len(s.dests) {
			nc.reason = ReasonDestDeleted
			return nil, 0, 0, 0
		}
	}
	return dest, dport, s.dests[dest.ID()].method, connFlags(svc, k)
}

// created sends the first packet of the connection InOrInsert just made (w.conn); b
// is f.Bytes().
func (w *Worker) created(f *Frame, b []byte, now int64) {
	s := w.s // Pick may have moved the worker to a newer generation
	w.churn++
	w.dstats[w.conn.Dest].Conns++
	w.sstats[w.nc.svc.id].Conns++
	if w.key.Proto == header.IPProtoTCP && w.nc.flags&header.TCPFlagSYN == 0 {
		w.C.SloppyCreated++
	}
	e := w.flows.store(w.fh, &w.key, &w.conn, now)
	if p := s.set.sync; p != nil {
		// A new TCP connection's state (SYN_RECV) is never sent at a count: its
		// slot, just filled, is already as syncAfterTable would leave it (no
		// countdown; the count and old state it would store are read only when a
		// countdown ends), so most new connections skip the call. A new
		// connection is neither sent nor adopted (conntrack.Created), so there is
		// no push to make without a slot.
		if c := &w.conn; e != nil && p.slotMode(c) != modeNeeded {
			w.syncAfterTable(p, e, c)
		}
	}
	w.xmit(s, f, b, &w.conn, false)
}

// notPicked handles a packet for which Pick made no connection, as schedule would.
func (w *Worker) notPicked(f *Frame) {
	switch r := w.nc.reason; r {
	case ReasonPortZero, ReasonNoDest:
		w.leave(w.s, w.nc.svc, f, r)
		return
	default:
		w.drop(r)
		return
	}
}
