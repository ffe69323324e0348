package dataplane

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/ipvs"
)

// tableState returns the state of the harness's only connection.
func (h *harness) tableState() (conntrack.State, bool) {
	var c conntrack.Conn
	found := false
	h.d.Table().Each(func(x *conntrack.Conn) bool { c, found = *x, true; return false })
	return c.State, found
}

// TestFlowCacheServesUnchangedStates follows one flow packet by packet and checks which
// packets the worker's flow cache serves (no table reference) and that the table's
// state is the kernel's after each: a packet that would change the state always goes
// to the table; DR's last ACK (FIN_WAIT + ACK in the INPUT-ONLY table) does not; for
// NAT, whose replies can move the state, only ESTABLISHED is served. A table packet
// of a flow the cache holds is stepped at the slot's Ref (conntrack.Table.StepRef).
func TestFlowCacheServesUnchangedStates(t *testing.T) {
	type step struct {
		p      dtPkt
		cached bool            // served without the table
		byRef  bool            // stepped at the slot's Ref
		state  conntrack.State // the table's state after the packet
	}
	syn := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, syn: true}
	ack := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, ack: true}
	fin := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, fin: true, ack: true}
	rst := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, rst: true}
	for _, tc := range []struct {
		m     ipvs.Method
		steps []step
	}{
		{ipvs.DR, []step{
			{syn, false, false, conntrack.StateSynRecv},
			{syn, false, false, conntrack.StateSynRecv}, // a SYN never comes from the cache
			{ack, false, true, conntrack.StateEstablished},
			{ack, true, false, conntrack.StateEstablished},
			{fin, false, true, conntrack.StateFinWait},
			{ack, true, false, conntrack.StateFinWait},
			{fin, true, false, conntrack.StateFinWait}, // FIN_WAIT + FIN stays FIN_WAIT (INPUT-ONLY)
			{rst, false, false, conntrack.StateClose},
			{ack, true, false, conntrack.StateClose},
		}},
		{ipvs.NAT, []step{
			{syn, false, false, conntrack.StateSynRecv}, // not cached: a reply could move it
			{ack, false, false, conntrack.StateEstablished},
			{ack, true, false, conntrack.StateEstablished},
			{fin, false, true, conntrack.StateCloseWait},
			{ack, false, false, conntrack.StateCloseWait}, // not cached: a reply could move it
			{ack, false, false, conntrack.StateCloseWait},
		}},
	} {
		h := newHarness(t, testOptions(), rrService(tc.m, 80))
		for i, s := range tc.steps {
			now := int64(i+1) * int64(time.Millisecond)
			refs := h.w.refSteps
			if out := h.run(s.p.frame(t), now); len(out) != 1 {
				t.Fatalf("%v step %d: not forwarded (%v)", tc.m, i, h.w.C.Reasons)
			}
			if cached := h.w.tableRefs == 0; cached != s.cached {
				t.Fatalf("%v step %d: served from the cache %v, want %v", tc.m, i, cached, s.cached)
			}
			if byRef := h.w.refSteps != refs; byRef != s.byRef {
				t.Fatalf("%v step %d: stepped at the slot's Ref %v, want %v", tc.m, i, byRef, s.byRef)
			}
			if st, ok := h.tableState(); !ok || st != s.state {
				t.Fatalf("%v step %d: table state %v, want %v", tc.m, i, st, s.state)
			}
		}
	}
}

// TestFlowCacheHonoursExpiry: a cached flow is not served past its connection's
// expiry time, even within refreshEvery: with a 10 ms FIN_WAIT timeout the last ACK
// 20 ms after the FIN finds no connection, as in the kernel, and is dropped.
func TestFlowCacheHonoursExpiry(t *testing.T) {
	o := testOptions()
	o.Timeouts.TCP[conntrack.StateFinWait] = 10 * time.Millisecond
	h := newHarness(t, o, rrService(ipvs.DR, 80))
	ms := int64(time.Millisecond)
	h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, syn: true}.frame(t), 0)
	h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, ack: true}.frame(t), ms)
	h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, fin: true, ack: true}.frame(t), 2*ms)
	ack := dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, ack: true}.frame(t)
	if out := h.run(ack, 3*ms); len(out) != 1 || h.w.tableRefs != 0 {
		t.Fatalf("ACK within the timeout: %d out, %d table references", len(out), h.w.tableRefs)
	}
	if out := h.run(ack, 22*ms); len(out) != 0 || h.w.C.Reasons[ReasonNotSYN] != 1 {
		t.Fatalf("ACK after the connection expired: %d out, not_syn %d", len(out), h.w.C.Reasons[ReasonNotSYN])
	}
}

// TestFlowSlotFreshWindow holds the window a stored flow is served in:
// until-refreshEvery <= now < until, until being the table's answer's time plus
// refreshEvery or the connection's expiry if sooner. With the expiry sooner the window
// reaches back before the answer's time (the slot keeps no other time: the one line
// a cached packet reads has no room for it); the window before it ended at that time
// and fails the 90*ms case.
func TestFlowSlotFreshWindow(t *testing.T) {
	ms := int64(time.Millisecond)
	fc := new(flowCache)
	k := conntrack.Key{Proto: header.IPProtoTCP, CPort: 40000, VPort: 80}
	c := conntrack.Conn{Key: k, Dest: 1, HasDest: true, Method: ipvs.DR, Flags: conntrack.FlagNoOutput,
		State: conntrack.StateEstablished}
	for _, tc := range []struct {
		expires int64
		now     int64
		fresh   bool
	}{
		{900 * sec, 100*ms - 1, false},
		{900 * sec, 100 * ms, true},
		{900 * sec, 100*ms + refreshEvery - 1, true},
		{900 * sec, 100*ms + refreshEvery, false},
		{150 * ms, 150*ms - refreshEvery - 1, false},
		{150 * ms, 90 * ms, true}, // before the answer, within refreshEvery of the expiry
		{150 * ms, 150*ms - 1, true},
		{150 * ms, 150 * ms, false},
	} {
		c.Expires = tc.expires
		e := fc.store(0, &k, &c, 100*ms)
		if e == nil {
			t.Fatalf("expiry %d: not stored", tc.expires)
		}
		if got := e.fresh(tc.now); got != tc.fresh {
			t.Errorf("answered at %d, expiry %d: fresh at %d = %v, want %v", 100*ms, tc.expires, tc.now, got, tc.fresh)
		}
		fc.forget(&k)
	}
}

// TestFlowSlotStaleRef: a flow slot whose connection is gone from the table (flushed
// under the cache) holds a Ref that names nothing: the ACK tried there goes on to
// the lookup, which finds no connection, and is dropped as the kernel drops it; the
// next SYN makes a connection whose ACK is stepped at the new slot's Ref.
func TestFlowSlotStaleRef(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	ms := int64(time.Millisecond)
	syn := dtPkt{src: dtClient, dst: dtVIP, sport: 7, dport: 80, syn: true}.frame(t)
	ack := dtPkt{src: dtClient, dst: dtVIP, sport: 7, dport: 80, ack: true}.frame(t)
	// The table's first connection is made by schedule, which does not cache it.
	h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 6, dport: 80, syn: true}.frame(t), 0)
	h.run(syn, ms)
	h.d.Table().Flush()
	refs := h.w.refSteps
	if out := h.run(ack, 2*ms); len(out) != 0 || h.w.C.Reasons[ReasonNotSYN] != 1 || h.w.refSteps != refs+1 {
		t.Fatalf("ACK of a flushed connection: %d out, not_syn %d, %d steps at a Ref", len(out), h.w.C.Reasons[ReasonNotSYN], h.w.refSteps-refs)
	}
	h.run(syn, 3*ms)
	if out := h.run(ack, 4*ms); len(out) != 1 || h.w.refSteps != refs+2 {
		t.Fatalf("ACK of the new connection: %d out, %d steps at a Ref", len(out), h.w.refSteps-refs)
	}
	var c conntrack.Conn
	if h.d.Table().Each(func(x *conntrack.Conn) bool { c = *x; return false }); c.Key.CPort != 7 || c.State != conntrack.StateEstablished {
		t.Fatalf("table holds %+v, want port 7 ESTABLISHED", c)
	}
}

// slotAnswer returns a TCP flow's key and a DR answer for it in state st, expiring
// at expires.
func slotAnswer(st conntrack.State, expires int64) (conntrack.Key, conntrack.Conn) {
	k := conntrack.Key{Proto: header.IPProtoTCP, CPort: 40000, VPort: 80}
	copy(k.CAddr[:], []byte{198, 18, 0, 1})
	copy(k.VAddr[:], []byte{198, 18, 1, 1})
	c := conntrack.Conn{Key: k, Ref: 77, Dest: 3, HasDest: true, DPort: 8080, Method: ipvs.DR,
		Flags: conntrack.FlagNoOutput, State: st, Expires: expires}
	copy(c.DAddr[:], []byte{198, 19, 0, 5})
	return k, c
}

// TestFlowSlotStoreSetsEveryField holds store, which writes a slot field by field, to
// the whole slot built from the table's answer: a slot holding another flow's bytes
// everywhere comes out equal to it, whatever field a change adds to the slot, but
// for the sync event (evv), which store leaves, and its position (ev), which it
// leaves in a slot not in use (where clearUsed left it 0) and clears in a slot
// another flow used (TestSyncSlotEvent holds what the sync side reads of them).
func TestFlowSlotStoreSetsEveryField(t *testing.T) {
	fc := new(flowCache)
	k, c := slotAnswer(conntrack.StateEstablished, 900*sec)
	for _, now := range []int64{sec, 900*sec - refreshEvery/2} { // until: the refresh, then the expiry
		i := flowIndex(&k)
		ev := uint64(0xa5a5a5a5a5a5a5a5) // left in a slot not in use (clearUsed left it 0)
		if fc.isUsed(i) {
			ev = 0 // cleared: the slot held another flow (the bytes below)
		}
		slot := unsafe.Slice((*byte)(unsafe.Pointer(&fc.slots[i])), unsafe.Sizeof(flowSlot{}))
		for j := range slot {
			slot[j] = 0xa5
		}
		want := flowSlot{key: k, daddr: c.DAddr, dport: c.DPort, method: c.Method, state: c.State,
			keeps: conntrack.InputKeepsSet(c.State, true), dest: c.Dest,
			until: min(now+refreshEvery, c.Expires), ref: c.Ref,
			ev: ev, evv: 0xa5a5a5a5a5a5a5a5} // evv left as it was
		if e := fc.store(flowHash(&k), &k, &c, now); e != &fc.slots[i] || *e != want {
			t.Fatalf("at %d: store left\n%+v, want\n%+v", now, fc.slots[i], want)
		}
	}
}

// TestCachedSendMatchesTable: a DR packet of an established flow sent from the flow
// cache (inbound's in-line send) leaves exactly as the same packet sent after the
// table's answer (xmit): the same bytes, the same counters, with and without a
// configured director MAC, for a packet xmit sends in one block and for one it does
// not (TTL 1: ICMP time exceeded). Fails when the cache's send differs in any
// rewrite or count.
func TestCachedSendMatchesTable(t *testing.T) {
	for _, ownMAC := range []bool{true, false} {
		for _, ttl := range []uint8{64, 2, 1} {
			o := testOptions()
			if !ownMAC {
				o.MAC = nil
			}
			cached, table := newHarness(t, o, rrService(ipvs.DR, 80)), newHarness(t, o, rrService(ipvs.DR, 80))
			ms := int64(time.Millisecond)
			for _, h := range []*harness{cached, table} {
				h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, syn: true}.frame(t), 0)
				h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, ack: true}.frame(t), ms)
			}
			data := dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, ack: true, ttl: ttl, plen: 100}.frame(t)
			got := cached.run(data, 2*ms)
			if cached.w.tableRefs != 0 {
				t.Fatalf("ownMAC=%v ttl %d: the packet went to the table, not the cache", ownMAC, ttl)
			}
			// Past refreshEvery the slot is stale: the packet goes to the table.
			want := table.run(data, 2*ms+2*refreshEvery)
			if table.w.tableRefs != 1 {
				t.Fatalf("ownMAC=%v ttl %d: the packet did not go to the table", ownMAC, ttl)
			}
			if len(got) != 1 || len(want) != 1 || !bytes.Equal(got[0], want[0]) {
				t.Fatalf("ownMAC=%v ttl %d: the cache sent %x, the table's path %x", ownMAC, ttl, got, want)
			}
			if cached.w.C != table.w.C || !slices.Equal(cached.w.dstats, table.w.dstats) || !slices.Equal(cached.w.sstats, table.w.sstats) {
				t.Fatalf("ownMAC=%v ttl %d: counters differ: cache %+v %+v %+v, table %+v %+v %+v", ownMAC, ttl,
					cached.w.C, cached.w.dstats, cached.w.sstats, table.w.C, table.w.dstats, table.w.sstats)
			}
		}
	}
}

// TestFlowSlotRestoreMatchesStore holds restore to store for a slot that holds the
// flow: from a slot left by an earlier answer (its sync fields dirtied as the cache's
// packets and the sync side leave them), each answer — cacheable or not: a NAT flow's
// SYN_RECV, a bypass, a one-packet flow, UDP — leaves the same slot, the same in-use
// bit and the same result either way. Fails when restore writes a field store does
// not, or keeps a slot store forgets.
func TestFlowSlotRestoreMatchesStore(t *testing.T) {
	k, first := slotAnswer(conntrack.StateSynRecv, 60*sec)
	est := first
	est.State, est.Expires = conntrack.StateEstablished, 900*sec
	fin := first
	fin.State, fin.Expires = conntrack.StateFinWait, 2*sec // until: the expiry
	other := est
	other.Ref, other.Dest, other.DPort, other.Method = 91, 4, 0, ipvs.TUN // the key's next connection
	nat := est
	nat.Method, nat.Flags, nat.State = ipvs.NAT, 0, conntrack.StateSynRecv
	bypass := est
	bypass.HasDest = false
	one := est
	one.Flags |= conntrack.FlagOnePacket
	for _, tc := range []struct {
		name  string
		proto uint8
		c     conntrack.Conn
	}{
		{"established", header.IPProtoTCP, est}, {"fin", header.IPProtoTCP, fin},
		{"another connection", header.IPProtoTCP, other}, {"NAT SYN_RECV", header.IPProtoTCP, nat},
		{"bypass", header.IPProtoTCP, bypass}, {"one-packet", header.IPProtoUDP, one},
		{"UDP", header.IPProtoUDP, est},
	} {
		kk, c := k, tc.c
		kk.Proto, c.Key.Proto = tc.proto, tc.proto
		now := sec
		var fcs [2]*flowCache
		var got [2]*flowSlot
		for n := range fcs {
			fc := new(flowCache)
			fcs[n] = fc
			i := flowIndex(&kk)
			e := fc.store(0, &kk, &first, 0)
			if e == nil {
				t.Fatalf("%s: the first answer was not stored", tc.name)
			}
			e.spend, e.snext, e.ev, e.evv = 5, 9, 3, 0x1234
			e.x = slotExt{sentAt: 7}
			if n == 0 {
				got[n] = fc.store(flowHash(&kk), &kk, &c, now)
			} else {
				got[n] = fc.restore(i, e, &c, now)
			}
			if got[n] != nil && got[n] != &fc.slots[i] {
				t.Fatalf("%s: %d returned another slot", tc.name, n)
			}
		}
		i := flowIndex(&kk)
		if (got[0] == nil) != (got[1] == nil) || fcs[0].slots[i] != fcs[1].slots[i] || fcs[0].isUsed(i) != fcs[1].isUsed(i) {
			t.Fatalf("%s: store left %+v (used %v, slot %v), restore %+v (used %v, slot %v)", tc.name,
				fcs[0].slots[i], fcs[0].isUsed(i), got[0] != nil, fcs[1].slots[i], fcs[1].isUsed(i), got[1] != nil)
		}
	}
}

// TestFlowHash4IsKeys holds inbound's IPv4 lookup, which reads the packet's fields, to
// the key setKey makes of them: flowHash4 is that key's flowHash, and keyIs4 is
// keyEqual with it, for keys that differ from it in any one field and for the IPv6
// key of the same bytes.
func TestFlowHash4IsKeys(t *testing.T) {
	var w Worker
	key := func(proto uint8, v6 bool, c uint32, cport uint16, v uint32, vport uint16) conntrack.Key {
		var ca, va [16]byte
		binary.LittleEndian.PutUint32(ca[:], c)
		binary.LittleEndian.PutUint32(va[:], v)
		w.setKey(proto, v6, &ca, cport, &va, vport)
		return w.key
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		proto := uint8(header.IPProtoTCP)
		if r.IntN(2) == 0 {
			proto = header.IPProtoUDP
		}
		c, v, cport, vport := r.Uint32(), r.Uint32(), uint16(r.Uint32()), uint16(r.Uint32())
		k := key(proto, false, c, cport, v, vport)
		if got, want := flowHash4(proto, c, cport, v, vport), flowHash(&k); got != want {
			t.Fatalf("%v: flowHash4 %#x, flowHash %#x", k, got, want)
		}
		for _, o := range []conntrack.Key{
			k,
			key(proto, true, c, cport, v, vport),
			key(proto^(header.IPProtoTCP^header.IPProtoUDP), false, c, cport, v, vport),
			key(proto, false, c^1<<r.IntN(32), cport, v, vport),
			key(proto, false, c, cport^1<<r.IntN(16), v, vport),
			key(proto, false, c, cport, v^1<<r.IntN(32), vport),
			key(proto, false, c, cport, v, vport^1<<r.IntN(16)),
		} {
			if got, want := keyIs4(&o, proto, c, cport, v, vport), keyEqual(&o, &k); got != want {
				t.Fatalf("slot key %v, packet key %v: keyIs4 %v, keyEqual %v", o, k, got, want)
			}
		}
	}
}

// TestStepRefMatchesInRef sends the same random packets — a few clients' flows whose
// packets mostly come within the cache's refresh (SYNs, ACKs, FINs, RSTs, and UDP) to
// DR, NAT and TUN services — through two Directors: one steps a flow its cache holds
// with conntrack.Table.StepRef (the slot takes what the step changed, stepped), the
// other with InRef (the slot takes the table's whole answer). Midway a real server of
// each service is deleted, and later restored, so steps meet a deleted dest; with
// and without expire_nodest_conn. Every frame sent, every counter and the table must
// be the same, and steps at a Ref and drops for a deleted dest must have happened.
func TestStepRefMatchesInRef(t *testing.T) {
	for _, expire := range []bool{false, true} {
		dr := rrService(ipvs.DR, 80)
		nat := rrService(ipvs.NAT, 8080)
		nat.Key = ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(dtVIP, 81))
		tun := rrService(ipvs.TUN, 82)
		tun.Key = ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(dtVIP, 82))
		udp := rrService(ipvs.DR, 53)
		udp.Key = ipvs.AddrKey(ipvs.UDP, netip.AddrPortFrom(dtVIP, 53))
		full := []ipvs.Service{dr, nat, tun, udp}
		less := slices.Clone(full)
		for i := range less {
			less[i].RealServers = less[i].RealServers[:1]
		}
		opts := testOptions()
		opts.ExpireNodestConn = expire
		a := newHarness(t, opts, full...)
		b := newHarness(t, opts, full...)
		b.w.inRefAll = true
		clients := []netip.Addr{dtClient, netip.MustParseAddr("198.19.0.8")}
		rng := rand.New(rand.NewPCG(9, uint64(len(t.Name()))))
		now := int64(0)
		for i := range 4000 {
			switch i {
			case 1500, 3000: // a real server of each service deleted, then restored
				svcs := less
				if i == 3000 {
					svcs = full
				}
				if err := a.d.Apply(svcs); err != nil {
					t.Fatal(err)
				}
				if err := b.d.Apply(svcs); err != nil {
					t.Fatal(err)
				}
			}
			p := dtPkt{src: clients[rng.IntN(len(clients))], dst: dtVIP, sport: uint16(1000 + rng.IntN(3))}
			p.dport = []uint16{80, 80, 81, 82, 53}[rng.IntN(5)]
			if p.dport == 53 {
				p.udp = true
			} else {
				switch rng.IntN(8) {
				case 0, 1:
					p.syn = true
				case 2, 3, 4:
					p.ack = true
				case 5:
					p.fin, p.ack = true, true
				case 6:
					p.rst = true
				case 7:
					p.fin = true
				}
			}
			// Mostly within the cache's refresh, sometimes past it.
			gap := rng.IntN(40)
			if rng.IntN(10) == 0 {
				gap = 100 + rng.IntN(3000)
			}
			now += int64(gap) * int64(time.Millisecond)
			sameRun(t, a, b, i, p, p.frame(t), now)
		}
		sameEnd(t, a, b)
		if a.w.refSteps == 0 || a.w.refSteps != b.w.refSteps {
			t.Errorf("expire_nodest_conn %v: %d steps at a Ref with StepRef, %d with InRef", expire, a.w.refSteps, b.w.refSteps)
		}
		if a.w.C.Reasons[ReasonDestDeleted] == 0 && !expire {
			t.Errorf("no packet was dropped for a deleted dest: %v", a.w.C.Reasons)
		}
	}
}
