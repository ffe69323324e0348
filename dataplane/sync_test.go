package dataplane

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/ipvssync"
)

func syncOptions() Options {
	o := testOptions()
	r := ipvssync.DefaultRules()
	o.Sync = &r
	return o
}

// drainAll returns every pending event, copied.
func drainAll(d *Director) []conntrack.Conn {
	var got []conntrack.Conn
	d.DrainSync(1<<20, func(c *conntrack.Conn) { got = append(got, *c) })
	return got
}

// TestSyncEventsFollowTheRules: a DR flow is sent at its third packet, every 50th
// after, and when it leaves ESTABLISHED, whether the flow cache or the table served
// the packet; the counts the cache kept reach the table when the flow goes back to it.
func TestSyncEventsFollowTheRules(t *testing.T) {
	h := newHarness(t, syncOptions(), rrService(ipvs.DR, 80))
	ms := int64(time.Millisecond)
	syn := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, syn: true}.frame(t)
	ack := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, ack: true}.frame(t)
	fin := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, fin: true, ack: true}.frame(t)
	h.run(syn, ms)
	var sentAt []uint32
	var lastSend int64
	cached := 0
	now := 2 * ms
	for p := uint32(2); p <= 160; p++ {
		// 1 ms apart: the flow goes back to the table every refreshEvery (100 ms).
		now += ms
		if out := h.run(ack, now); len(out) != 1 {
			t.Fatalf("packet %d not forwarded", p)
		}
		if h.w.tableRefs == 0 {
			cached++
		}
		for _, c := range drainAll(h.d) {
			if c.Key.CPort != 40000 || c.State != conntrack.StateEstablished || !c.HasDest || c.DAddr == ([16]byte{}) {
				t.Fatalf("event %+v", c)
			}
			sentAt = append(sentAt, p)
			lastSend = now
		}
	}
	if fmt.Sprint(sentAt) != "[3 53 103 153]" {
		t.Fatalf("sent at packets %v, want [3 53 103 153]", sentAt)
	}
	if cached < 100 {
		t.Fatalf("only %d of 159 packets served from the flow cache", cached)
	}
	// The send at packet 153 was decided by the cache; the table learns of it with the
	// flow's next table packet (a refresh), to its tick.
	now += 2 * refreshEvery
	if h.run(ack, now); h.w.tableRefs == 0 {
		t.Fatal("the refresh did not reach the table")
	}
	var meta conntrack.SyncMeta
	h.d.Table().Walk(0, 10, now, func(c *conntrack.Conn, m *conntrack.SyncMeta) bool { meta = *m; return false })
	if tick := int64(100 * time.Millisecond); meta.LastSync > lastSend || meta.LastSync <= lastSend-tick || meta.Pkts != 161 {
		t.Fatalf("the table's sync state %+v, want the send at %d (to its %d ns tick) and 161 packets", meta, lastSend, tick)
	}
	if ev := drainAll(h.d); len(ev) != 0 {
		t.Fatalf("the refresh sent %+v", ev)
	}
	now += ms
	h.run(fin, now)
	ev := drainAll(h.d)
	if len(ev) != 1 || ev[0].State != conntrack.StateFinWait || ev[0].Timeout != 120*time.Second ||
		ev[0].Method != ipvs.DR || ev[0].Flags != conntrack.FlagNoOutput|conntrack.FlagInactive {
		t.Fatalf("FIN: events %+v", ev)
	}
	// The table counted every packet, the 150 the cache served included.
	var pkts uint32
	h.d.Table().Walk(0, 10, now, func(c *conntrack.Conn, m *conntrack.SyncMeta) bool { pkts = m.Pkts; return false })
	if pkts != 162 {
		t.Fatalf("the table counted %d packets, want 162", pkts)
	}
	if st := h.d.SyncStats(); st.Pushed != 5 || st.Dropped != 0 || st.Pending != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestSyncTurnedOnForARunningWorker: a worker that processed packets with sync off
// has its ring once SetOptions turns sync on (the per-packet path does not test for
// one: syncRingsLocked), and pushes a short flow's sends — the cache's at its third
// packet, the table's at its FIN — as a worker made with sync on does.
func TestSyncTurnedOnForARunningWorker(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	ms := int64(time.Millisecond)
	flow := func(sport uint16, now int64) []conntrack.Conn {
		var ev []conntrack.Conn
		for i, p := range []dtPkt{{syn: true}, {ack: true}, {ack: true}, {ack: true}, {fin: true, ack: true}} {
			p.src, p.dst, p.sport, p.dport = dtClient, dtVIP, sport, 80
			if out := h.run(p.frame(t), now+int64(i)*ms); len(out) != 1 {
				t.Fatalf("port %d: packet %d not forwarded", sport, i+1)
			}
			ev = append(ev, drainAll(h.d)...)
		}
		return ev
	}
	if ev := flow(40000, ms); len(ev) != 0 {
		t.Fatalf("sync off: events %+v", ev)
	}
	if err := h.d.SetOptions(syncOptions()); err != nil {
		t.Fatal(err)
	}
	ev := flow(40001, 10*ms)
	if len(ev) != 2 || ev[0].State != conntrack.StateEstablished || ev[1].State != conntrack.StateFinWait ||
		ev[0].Key.CPort != 40001 || ev[1].Key.CPort != 40001 {
		t.Fatalf("sync on: events %+v, want the flow's at its third packet and at its FIN", ev)
	}
}

// TestSyncAdoption: the first local packet of a connection another director sent
// adopts it and pushes it at once; sync off pushes nothing.
func TestSyncAdoption(t *testing.T) {
	for _, on := range []bool{true, false} {
		o := testOptions()
		if on {
			o = syncOptions()
		}
		h := newHarness(t, o, rrService(ipvs.DR, 80))
		k := conntrack.Key{Proto: 6, CAddr: [16]byte{198, 19, 0, 7}, CPort: 40001, VAddr: [16]byte{198, 18, 0, 100}, VPort: 80}
		dst, _ := h.d.SyncDest(&k, rawAddr(dtRS1), 80)
		if dst == nil {
			t.Fatal("SyncDest found no real server")
		}
		r := &conntrack.Remote{Key: k, DAddr: rawAddr(dtRS1), DPort: 80, Method: ipvs.DR, Flags: conntrack.FlagNoOutput, State: conntrack.StateEstablished}
		if !h.d.Table().Upsert(r, dst, 1, 0) {
			t.Fatal("Upsert refused")
		}
		if out := h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 40001, dport: 80, ack: true}.frame(t), sec); len(out) != 1 {
			t.Fatalf("sync %v: the synced connection's packet was not forwarded (%v)", on, h.w.C.Reasons)
		}
		ev := drainAll(h.d)
		if !on {
			if len(ev) != 0 || h.d.SyncStats() != (SyncStats{}) {
				t.Fatalf("sync off: events %+v", ev)
			}
			continue
		}
		if len(ev) != 1 || !ev[0].Sync.Adopted || ev[0].Sync.Origin != 0 || ev[0].Key != k {
			t.Fatalf("events %+v", ev)
		}
		if st := h.d.SyncStats(); st.Adopted != 1 || st.Pushed != 1 {
			t.Fatalf("stats %+v", st)
		}
	}
}

// TestSyncRingOverflow: a full ring drops (and counts) events, hands them out in
// order once published, and takes events again after a drain; an event whose
// connection is gone by the drain is skipped and counted stale.
func TestSyncRingOverflow(t *testing.T) {
	if n := unsafe.Sizeof(newSyncRing().buf[0]); n != 8 {
		t.Fatalf("a sync event is %d bytes, want an eighth of a cache line", n)
	}
	h := newHarness(t, syncOptions(), rrService(ipvs.DR, 80))
	tbl := h.d.Table()
	r := newSyncRing()
	conns := make([]conntrack.Conn, 64)
	for i := range conns {
		syn := dtPkt{src: dtClient, dst: dtVIP, sport: uint16(1000 + i), dport: 80, syn: true}.frame(t)
		if out := h.run(syn, sec); len(out) != 1 {
			t.Fatalf("SYN %d not forwarded", i)
		}
		conns[i] = h.w.conn
	}
	for i := range SyncRingSize + 5 {
		r.push(&conns[i%len(conns)])
	}
	if r.drain(tbl, 1, func(*conntrack.Conn) {}) != 0 {
		t.Fatal("an event was drained before the worker published it")
	}
	r.publish()
	if r.dropped.Load() != 5 {
		t.Fatalf("dropped %d, want 5", r.dropped.Load())
	}
	n := 0
	got := r.drain(tbl, SyncRingSize+100, func(c *conntrack.Conn) {
		if c.Key.CPort != uint16(1000+n%len(conns)) || c.Ref != 0 || !c.HasDest || c.DAddr != rawAddr(dtRS1) && c.DAddr != rawAddr(dtRS2) {
			t.Fatalf("event %d: %+v", n, c)
		}
		n++
	})
	if got != SyncRingSize || n != SyncRingSize || r.stale.Load() != 0 {
		t.Fatalf("drained %d (%d), stale %d", got, n, r.stale.Load())
	}
	r.push(&conns[0])
	r.publish()
	if r.drain(tbl, 10, func(*conntrack.Conn) {}) != 1 {
		t.Fatal("the ring does not take events after a drain")
	}
	// A connection gone (expired, its slot maybe reused) by the time of the drain.
	r.push(&conns[1])
	r.publish()
	tbl.Expire(sec+int64(time.Hour), 1<<20)
	if r.drain(tbl, 10, func(c *conntrack.Conn) { t.Fatalf("stale event handed out: %+v", c) }) != 1 || r.stale.Load() != 1 {
		t.Fatalf("stale %d, want 1", r.stale.Load())
	}
}

// TestSyncEventNamesItsConnection: an event is a reference and a check word, and the
// drainer hands out only the connection the event was pushed for. An entry whose
// slot another connection took since (the first was expired and its slot reused,
// or an event made for a key differing in either address, a port or the protocol)
// is skipped and counted stale; the check word keeps the adoption bit apart.
func TestSyncEventNamesItsConnection(t *testing.T) {
	h := newHarness(t, syncOptions(), rrService(ipvs.DR, 80))
	tbl := h.d.Table()
	r := newSyncRing()
	syn := func(sport uint16, now int64) conntrack.Conn {
		t.Helper()
		if out := h.run(dtPkt{src: dtClient, dst: dtVIP, sport: sport, dport: 80, syn: true}.frame(t), now); len(out) != 1 {
			t.Fatalf("SYN from port %d not forwarded", sport)
		}
		return h.w.conn
	}
	a := syn(1000, sec)
	drained := func() (got []conntrack.Conn) {
		r.publish()
		r.drain(tbl, 100, func(c *conntrack.Conn) { got = append(got, *c) })
		return got
	}
	// Keys that differ from a's in one field the check covers.
	variants := map[string]func(k *conntrack.Key){
		"client address, first byte":  func(k *conntrack.Key) { k.CAddr[0]++ },
		"client address, fourth byte": func(k *conntrack.Key) { k.CAddr[3]++ },
		"client address, last byte":   func(k *conntrack.Key) { k.CAddr[15]++ },
		"virtual address, first byte": func(k *conntrack.Key) { k.VAddr[0]++ },
		"virtual address, last byte":  func(k *conntrack.Key) { k.VAddr[15]++ },
		"client port":                 func(k *conntrack.Key) { k.CPort++ },
		"virtual port":                func(k *conntrack.Key) { k.VPort++ },
		"protocol":                    func(k *conntrack.Key) { k.Proto = header.IPProtoUDP },
		"ports swapped":               func(k *conntrack.Key) { k.CPort, k.VPort = k.VPort, k.CPort },
	}
	for name, change := range variants {
		k := a.Key
		change(&k)
		stale := r.stale.Load()
		r.put(keyCheck(&k) | uint64(a.Ref))
		if got := drained(); len(got) != 0 || r.stale.Load() != stale+1 {
			t.Fatalf("%s: an event for another key handed out %+v (stale %d)", name, got, r.stale.Load()-stale)
		}
	}
	r.put(keyCheck(&a.Key) | evAdopted<<32 | uint64(a.Ref))
	r.push(&a)
	if got := drained(); len(got) != 2 || got[0].Key != a.Key || !got[0].Sync.Adopted || got[1].Key != a.Key || got[1].Sync.Adopted {
		t.Fatalf("events for the connection: %+v", got)
	}
	// The entry expires and its slot is reused (the shard's free list is last in,
	// first out) by a connection whose SYN comes after the event was pushed.
	r.push(&a)
	now := sec + int64(time.Hour)
	tbl.Expire(now, 1<<20)
	var b conntrack.Conn
	for sport := uint16(2000); b.Ref != a.Ref; sport++ {
		if sport == 3000 {
			t.Fatal("no new connection took the expired entry's slot")
		}
		b = syn(sport, now)
	}
	stale := r.stale.Load()
	if got := drained(); len(got) != 0 || r.stale.Load() != stale+1 {
		t.Fatalf("the event for %v was handed out as %+v (stale %d)", a.Key, got, r.stale.Load()-stale)
	}
}

// TestSyncPathAllocatesNothing: with sync on, the established path (cache and
// table) and the pushes allocate nothing.
func TestSyncPathAllocatesNothing(t *testing.T) {
	h := newHarness(t, syncOptions(), rrService(ipvs.DR, 80))
	h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, syn: true}.frame(t), 0)
	ack := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, ack: true}.frame(t)
	in := []Frame{inFrame(ack)}
	out := make([]Frame, 0, 4)
	now := sec
	allocs := testing.AllocsPerRun(1000, func() {
		now += int64(time.Millisecond) // through the cache, and to the table every 100 ms
		copy(in[0].Buf[Headroom:], ack)
		out = h.w.Process(in, now, out[:0])
		h.d.DrainSync(10, func(*conntrack.Conn) {})
	})
	if allocs != 0 {
		t.Fatalf("established DR path with sync: %v allocs per packet", allocs)
	}
	if h.d.SyncStats().Pushed < 10 {
		t.Fatalf("stats %+v: the loop sent too little to test the pushes", h.d.SyncStats())
	}
}

// TestSyncShortFlowsAllocateNothing: with sync on, whole short flows — the SYN that
// makes the connection, its ACK, data served by the flow cache, the FIN and the last
// ACK, each flow sent twice (its third packet, its FIN), the FIN's event left out as
// the third packet's is still unclaimed (one record, read after the FIN) — allocate
// nothing either.
func TestSyncShortFlowsAllocateNothing(t *testing.T) {
	h := newHarness(t, syncOptions(), rrService(ipvs.DR, 80))
	const flows = 301 // AllocsPerRun's warm-up run and 300 counted ones, each a fresh port
	var frames [][][]byte
	for i := range flows {
		p := dtPkt{src: dtClient, dst: dtVIP, sport: uint16(41000 + i), dport: 80}
		syn, ack, fin := p, p, p
		syn.syn, ack.ack, fin.fin, fin.ack = true, true, true, true
		f := [][]byte{syn.frame(t)}
		for range 7 {
			f = append(f, ack.frame(t))
		}
		frames = append(frames, append(f, fin.frame(t), ack.frame(t)))
	}
	in := make([]Frame, 10)
	for j := range in {
		in[j] = inFrame(frames[0][j])
	}
	out := make([]Frame, 0, 16)
	now, next := sec, 0
	finWait := 0
	count := func(c *conntrack.Conn) {
		if c.State == conntrack.StateFinWait {
			finWait++
		}
	}
	allocs := testing.AllocsPerRun(flows-1, func() {
		for j, b := range frames[next] {
			copy(in[j].Buf[Headroom:], b)
			now += int64(time.Microsecond)
			out = h.w.Process(in[j:j+1], now, out[:0])
		}
		next++
		h.d.DrainSync(10, count)
	})
	if allocs != 0 {
		t.Fatalf("short DR flows with sync: %v allocs per flow", allocs)
	}
	if st := h.d.SyncStats(); st.Pushed != flows || st.Dropped != 0 || finWait != flows {
		t.Fatalf("stats %+v, %d records in FIN_WAIT: want one event, in FIN_WAIT, for each of %d flows", st, finWait, flows)
	}
}

// TestSyncQueuedEvent: a push of a connection whose last event is still in the ring,
// unclaimed, is left out — the drainer reads the connection when it claims that
// event, so the one record carries the newer state — and made when the event was
// claimed, even when the drainer claimed it but had not handed it out yet (drain
// claims before it reads). Fails with the FIN always pushed (two records where one
// is due), never pushed after the cache's send (the FIN's state lost once the drain
// claimed the send), or with head moved after the entries are read.
func TestSyncQueuedEvent(t *testing.T) {
	flow := func(t *testing.T, sport uint16, betweenFin func(h *harness) []conntrack.Conn) (before, after []conntrack.Conn) {
		h := newHarness(t, syncOptions(), rrService(ipvs.DR, 80))
		p := dtPkt{src: dtClient, dst: dtVIP, sport: sport, dport: 80}
		syn, ack, fin := p, p, p
		syn.syn, ack.ack, fin.fin, fin.ack = true, true, true, true
		now := sec
		h.run(syn.frame(t), now)
		for range 4 { // the ACK, then data: the cache sends the third packet
			now += int64(time.Millisecond)
			h.run(ack.frame(t), now)
		}
		if h.d.SyncStats().Pushed != 1 {
			t.Fatalf("stats %+v: the third packet pushed no event", h.d.SyncStats())
		}
		before = betweenFin(h)
		now += int64(time.Millisecond)
		h.run(fin.frame(t), now)
		return before, drainAll(h.d)
	}
	states := func(cs []conntrack.Conn) (s []conntrack.State) {
		for _, c := range cs {
			s = append(s, c.State)
		}
		return s
	}
	est, fw := conntrack.StateEstablished, conntrack.StateFinWait
	// Not drained before the FIN: one record, the FIN's state.
	before, after := flow(t, 42000, func(*harness) []conntrack.Conn { return nil })
	if fmt.Sprint(states(before), states(after)) != fmt.Sprint([]conntrack.State(nil), []conntrack.State{fw}) {
		t.Fatalf("undrained: records %v then %v, want none then one in FIN_WAIT", states(before), states(after))
	}
	// Drained before the FIN: both.
	before, after = flow(t, 42001, func(h *harness) []conntrack.Conn { return drainAll(h.d) })
	if fmt.Sprint(states(before), states(after)) != fmt.Sprint([]conntrack.State{est}, []conntrack.State{fw}) {
		t.Fatalf("drained: records %v then %v, want ESTABLISHED then FIN_WAIT", states(before), states(after))
	}
	// The FIN arrives while the drainer holds the claimed event (in its fn).
	before, after = flow(t, 42002, func(h *harness) []conntrack.Conn {
		var got []conntrack.Conn
		h.d.DrainSync(10, func(c *conntrack.Conn) {
			got = append(got, *c)
			fin := dtPkt{src: dtClient, dst: dtVIP, sport: 42002, dport: 80, fin: true, ack: true}
			h.run(fin.frame(t), sec+int64(5*time.Millisecond))
		})
		return got
	})
	if fmt.Sprint(states(before), states(after)) != fmt.Sprint([]conntrack.State{est}, []conntrack.State{fw}) {
		t.Fatalf("claimed: records %v then %v, want ESTABLISHED then FIN_WAIT", states(before), states(after))
	}
	// unclaimed: an event put and not yet claimed; none for position 0.
	r := newSyncRing()
	at := r.put(7)
	if !r.unclaimed(at) || r.unclaimed(0) {
		t.Fatal("unclaimed: wrong answer for an unclaimed event")
	}
	r.head.Store(at)
	if r.unclaimed(at) {
		t.Fatal("unclaimed: a claimed event")
	}
}

// TestSyncQueuedEventOfALongFlow: the FIN of a flow past 64 packets (its slot started
// by syncAfterTable's general path, not startShort) leaves its push out too while the
// cache's send at packet 53 is unclaimed, and pushes it once the send was claimed.
// Fails with syncAfterTable not asking queued.
func TestSyncQueuedEventOfALongFlow(t *testing.T) {
	for _, drained := range []bool{false, true} {
		h := newHarness(t, syncOptions(), rrService(ipvs.DR, 80))
		p := dtPkt{src: dtClient, dst: dtVIP, sport: 42100, dport: 80}
		syn, ack, fin := p, p, p
		syn.syn, ack.ack, fin.fin, fin.ack = true, true, true, true
		now := sec
		h.run(syn.frame(t), now)
		for i := 2; i <= 70; i++ { // 1 ms apart: served from the cache after the ACK
			now += int64(time.Millisecond)
			h.run(ack.frame(t), now)
			if i == 10 {
				drainAll(h.d) // the third packet's send
			}
		}
		if st := h.d.SyncStats(); st.Pushed != 2 || st.Pending != 1 {
			t.Fatalf("stats %+v: want the sends at packets 3 and 53, the second pending", st)
		}
		var before []conntrack.Conn
		if drained {
			before = drainAll(h.d)
		}
		now += int64(time.Millisecond)
		h.run(fin.frame(t), now)
		after := drainAll(h.d)
		want := 1 // undrained: the send at 53 and the FIN make one record
		if drained {
			want = 2
		}
		if len(before)+len(after) != want || len(after) != 1 || after[0].State != conntrack.StateFinWait {
			t.Fatalf("drained %v: records %+v then %+v, want the FIN's state once after", drained, before, after)
		}
	}
}

// TestSyncSlotEvent: a table packet's push is left out only for the slot's own event,
// still unclaimed — not for an event of another flow that held the slot with the same
// entry reference (flowCache.store clears the slot's event when it takes another flow),
// of an earlier connection of the same key (another reference), or of an adoption —
// and a push after a claim reuses the slot's event, which is the flow's. Fails with
// store leaving the slot's event, or with the reference or the adoption not compared
// (queued).
func TestSyncSlotEvent(t *testing.T) {
	fc := new(flowCache)
	w := &Worker{}
	r := newSyncRing()
	w.ring.Store(r)
	key := func(port uint16) conntrack.Key {
		k := conntrack.Key{Proto: header.IPProtoTCP, CPort: port, VPort: 80}
		copy(k.CAddr[:], []byte{198, 18, 0, 1})
		copy(k.VAddr[:], []byte{198, 18, 1, 1})
		return k
	}
	conn := func(k conntrack.Key, ref conntrack.Ref) *conntrack.Conn {
		c := &conntrack.Conn{Key: k, Ref: ref, Dest: 1, HasDest: true, DPort: 80, Method: ipvs.DR,
			Flags: conntrack.FlagNoOutput, State: conntrack.StateEstablished, Expires: 1000 * sec}
		return c
	}
	k1, k2 := key(40000), key(40001)
	fh := flowHash(&k1) // both flows in one slot, as two keys of the same index would be
	pushes := func(c *conntrack.Conn, now int64) (pushed bool, ev uint64) {
		e := fc.store(fh, &c.Key, c, now)
		if e == nil {
			t.Fatalf("store refused %v at %d", c.Key, now)
		}
		before := r.ptail
		if !w.queued(c, e) { // as inbound and syncAfterTable ask
			w.pushAfterTable(c, e)
		}
		if r.ptail == before {
			return false, 0
		}
		return true, r.buf[before%SyncRingSize]
	}
	want := func(c *conntrack.Conn, bits uint64) uint64 { return keyCheck(&c.Key) | bits<<32 | uint64(c.Ref) }
	c1 := conn(k1, 5)
	if p, ev := pushes(c1, sec); !p || ev != want(c1, 0) {
		t.Fatalf("first push: pushed %v, event %#x, want %#x", p, ev, want(c1, 0))
	}
	if p, _ := pushes(c1, sec+1); p {
		t.Fatal("the flow's own event, unclaimed: pushed again")
	}
	r.head.Store(r.ptail) // claimed
	if p, ev := pushes(c1, sec+2); !p || ev != want(c1, 0) {
		t.Fatalf("after the claim: pushed %v, event %#x, want %#x", p, ev, want(c1, 0))
	}
	// Another flow takes the slot (the first is no longer fresh) with the same entry
	// reference while the first flow's event is unclaimed.
	later := sec + 2 + refreshEvery
	c2 := conn(k2, 5)
	if p, ev := pushes(c2, later); !p || ev != want(c2, 0) {
		t.Fatalf("another flow, same reference: pushed %v, event %#x, want %#x", p, ev, want(c2, 0))
	}
	// A new connection of the same key (another reference).
	c3 := conn(k2, 6)
	if p, ev := pushes(c3, later+1); !p || ev != want(c3, 0) {
		t.Fatalf("a new connection of the key: pushed %v, event %#x, want %#x", p, ev, want(c3, 0))
	}
	// An adoption is pushed whatever the ring holds, and counted.
	c3.Sync.Adopted = true
	if p, ev := pushes(c3, later+2); !p || ev != want(c3, evAdopted) || r.adopted.Load() != 1 {
		t.Fatalf("an adoption: pushed %v, event %#x, want %#x, adopted %d", p, ev, want(c3, evAdopted), r.adopted.Load())
	}
}

// TestSyncStress runs workers pushing events (and leaving out pushes the ring holds),
// the drainer draining, and Upsert, Walk and BindUnbound with fresh addresses at once
// (for -race).
func TestSyncStress(t *testing.T) {
	h := newHarness(t, syncOptions(), rrService(ipvs.DR, 80))
	const flows, upserts = 300, 2000
	ws := []*Worker{h.w, h.d.NewWorker(64)}
	tbl := h.d.Table()
	var producers sync.WaitGroup
	for wi, w := range ws {
		producers.Add(1)
		go func() {
			defer producers.Done()
			now := sec
			for f := range flows {
				src := netip.AddrFrom4([4]byte{198, 19, byte(wi + 1), byte(f)})
				sport := uint16(1000 + f)
				w.Process([]Frame{inFrame(dtPkt{src: src, dst: dtVIP, sport: sport, dport: 80, syn: true}.frame(t))}, now, nil)
				ack := dtPkt{src: src, dst: dtVIP, sport: sport, dport: 80, ack: true}.frame(t)
				for range 8 {
					now += int64(time.Millisecond)
					w.Process([]Frame{inFrame(ack)}, now, nil)
				}
				// The FIN's push tests the ring's event for the third packet's
				// send (queued) while the drainer claims and reads.
				now += int64(time.Millisecond)
				w.Process([]Frame{inFrame(dtPkt{src: src, dst: dtVIP, sport: sport, dport: 80, ack: true, fin: true}.frame(t))}, now, nil)
			}
		}()
	}
	rs1 := rawAddr(dtRS1)
	producers.Add(1)
	go func() {
		defer producers.Done()
		cur := uint64(0)
		for i := range upserts {
			k := conntrack.Key{Proto: 6, CAddr: [16]byte{198, 19, 100 + byte(i>>8), byte(i)}, CPort: uint16(i), VAddr: rawAddr(dtVIP), VPort: 80}
			// Half name a real server that exists, half one that does not (yet).
			daddr := rs1
			if i%2 == 1 {
				daddr = [16]byte{198, 18, 9, 9}
			}
			dst, m := h.d.SyncDest(&k, daddr, 80)
			if (dst != nil) != (i%2 == 0) || (dst != nil && m != ipvs.DR) {
				t.Errorf("SyncDest for %v: %v %v", daddr, dst, m)
				return
			}
			r := &conntrack.Remote{Key: k, DAddr: daddr, DPort: 80, Method: ipvs.DR, State: conntrack.StateEstablished}
			tbl.Upsert(r, dst, 2, sec)
			next, end := tbl.Walk(cur, 16, sec, func(c *conntrack.Conn, m *conntrack.SyncMeta) bool { return m.Origin == 0 })
			cur = next
			if end {
				cur = 0
			}
		}
	}()
	var drained int
	stop := make(chan struct{})
	drainer := make(chan struct{})
	go func() {
		defer close(drainer)
		for {
			select {
			case <-stop:
				drained += h.d.DrainSync(1<<20, func(*conntrack.Conn) {})
				return
			default:
				drained += h.d.DrainSync(64, func(*conntrack.Conn) {})
			}
		}
	}()
	producers.Wait()
	close(stop)
	<-drainer
	st := h.d.SyncStats()
	if st.Pending != 0 || uint64(drained) != st.Pushed || st.Pushed == 0 {
		t.Fatalf("stats %+v, drained %d", st, drained)
	}
	if ts := tbl.SyncStats(); ts.Created != upserts || ts.Unbound != upserts/2 {
		t.Fatalf("table sync stats %+v", ts)
	}
}

// TestSyncRefreshPeriodAsksTheTable: with sync_refresh_period the rules need the
// connection's last send, which only the table has, so the cache asks the table at
// each candidate (SyncCached): a flow sent at its 3rd packet is not sent again at the
// 53rd, 103rd … within the refresh interval (min(period, timeout/2) = 450 s here),
// whereas the cache deciding by count alone would send it every 50 packets.
func TestSyncRefreshPeriodAsksTheTable(t *testing.T) {
	o := testOptions()
	o.Sync = &ipvssync.Rules{Threshold: 3, Period: 50, RefreshPeriod: time.Hour}
	h := newHarness(t, o, rrService(ipvs.DR, 80))
	ms := int64(time.Millisecond)
	h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, syn: true}.frame(t), ms)
	ack := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, ack: true}.frame(t)
	var sentAt []uint32
	cached := 0
	now := 2 * ms
	for p := uint32(2); p <= 160; p++ {
		now += ms
		h.run(ack, now)
		if h.w.tableRefs == 0 {
			cached++
		}
		for range drainAll(h.d) {
			sentAt = append(sentAt, p)
		}
	}
	if fmt.Sprint(sentAt) != "[3]" || cached < 100 {
		t.Fatalf("sent at packets %v (%d served from the cache), want [3]", sentAt, cached)
	}
}

// TestNextCandidate: the countdown's next send point is the first count after pkts
// at which the threshold rule lets a connection go, the same with the shortcuts for
// short flows as by counting up one packet at a time.
func TestNextCandidate(t *testing.T) {
	for _, r := range []ipvssync.Rules{
		ipvssync.DefaultRules(), {Threshold: 0, Period: 1}, {Threshold: 0, Period: 7}, {Threshold: 6, Period: 7},
		{Threshold: 3}, {Threshold: 3, RefreshPeriod: time.Second},
	} {
		for pkts := uint32(0); pkts < 300; pkts++ {
			want := uint32(0)
			switch {
			case r.Period > 0:
				for p := pkts + 1; ; p++ {
					if p%r.Period == r.Threshold {
						want = p
						break
					}
				}
			case r.RefreshPeriod > 0:
				want = pkts + 1
			case pkts < r.Threshold:
				want = r.Threshold
			}
			if got := nextCandidate(&r, pkts); got != want {
				t.Fatalf("rules %+v after %d packets: next candidate %d, want %d", r, pkts, got, want)
			}
		}
	}
}

// TestCachedSyncDecidesAsTheRules is a differential test of the flow cache's shortcut
// (syncPlan, slotMode) against the general path it replaces, Rules.Needed asked at
// every candidate count (nextCandidate) with the count the table would pass it: for
// random local rules (threshold and period, retries; no refresh period or persist
// mode), TCP and UDP flows in every state, any state last sent, and counts from
// anywhere in the table's 16-bit range (so across its wrap), the cache sends at
// exactly the packets the general path does.
func TestCachedSyncDecidesAsTheRules(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 12))
	w := &Worker{}
	w.ring.Store(newSyncRing())
	var e flowSlot
	total := 0
	for trial := range 20000 {
		rules := ipvssync.Rules{Retries: uint8(rng.IntN(4))}
		limit := uint32(400)
		switch rng.IntN(4) {
		case 0: // the threshold alone: one send
			rules.Threshold = uint32(rng.IntN(8))
		case 1:
			rules.Period = 1 + uint32(rng.IntN(3))
			rules.Threshold = uint32(rng.IntN(int(rules.Period)))
		default:
			rules.Period = 1 + uint32(rng.IntN(100))
			rules.Threshold = uint32(rng.IntN(int(rules.Period)))
			if trial%50 == 0 { // a period whose second candidate is past the count's wrap
				rules.Period = 0xffff - uint32(rng.IntN(100))
				rules.Threshold = uint32(rng.IntN(100))
				limit = 0x10000 + 200
			}
		}
		if err := rules.Validate(); err != nil {
			t.Fatal(err)
		}
		p := newSyncPlan(&rules)
		if !p.local {
			t.Fatalf("rules %+v: not local", rules)
		}
		var c conntrack.Conn
		c.Key.Proto, c.State = header.IPProtoTCP, conntrack.State(rng.IntN(conntrack.NumStates))
		if rng.IntN(4) == 0 {
			c.Key.Proto, c.State = header.IPProtoUDP, conntrack.StateUDP
		}
		base := uint32(rng.IntN(200))
		if rng.IntN(3) == 0 && limit == 400 {
			base = 0xffff - uint32(rng.IntN(300))
		}
		old := uint16(conntrack.State(rng.IntN(conntrack.NumStates)))
		if limit > 400 && rng.IntN(2) == 0 {
			old = uint16(c.State) // last sent in its state: no forced send hides the count's
		}
		c.Sync.Pkts, c.Sync.Old = base, conntrack.State(old)
		e = flowSlot{key: c.Key, state: c.State}
		w.syncAfterTable(p, &e, &c)

		nc := ipvssync.Conn{Protocol: c.Key.Proto, State: uint16(c.State)}
		cs := ipvssync.ConnState{OldState: old}
		now := int64(time.Second)
		next := nextCandidate(&rules, base)
		sends := 0
		for n := uint32(1); n <= limit; n++ {
			now += int64(time.Millisecond)
			pushed := w.ring.Load().ptail
			if e.countServed() { // as inbound counts a packet the cache serves
				w.cachedSync(p, &e, keyCheck(&e.key), now)
			}
			got := w.ring.Load().ptail != pushed
			want := false
			if pkts := base + n; next != 0 && pkts == next {
				want = rules.Needed(&nc, &cs, pkts&0xffff, now)
				next = nextCandidate(&rules, pkts)
			}
			if got {
				sends++
			}
			if got != want {
				t.Fatalf("trial %d: rules %+v, proto %d state %d last sent in %d, table count %d: packet %d sent %v by the cache, %v by the rules",
					trial, rules, c.Key.Proto, c.State, old, base, n, got, want)
			}
			// Claimed, as a drain between the sends claims the event: a send
			// while the last is unclaimed adds no event (TestSyncQueuedEvent).
			r := w.ring.Load()
			r.head.Store(r.ptail)
		}
		total += sends
	}
	if total < 20000 {
		t.Fatalf("%d sends in 20,000 trials: too few to compare", total)
	}
}

// TestSyncCacheCountsReachTheTable: what the flow cache counted and sent for a flow
// reaches the table with the flow's next table packet when that packet finds the
// flow in its slot (a FIN: inbound folds it without comparing the key again). Another
// flow's packet through the slot folds nothing while the flow in it is fresh (it
// keeps its slot: its count and send wait for its own next table packet), and folds
// the count and send at once when it is not (the packet's flow takes the slot over).
func TestSyncCacheCountsReachTheTable(t *testing.T) {
	h := newHarness(t, syncOptions(), rrService(ipvs.DR, 80))
	ms := int64(time.Millisecond)
	key := func(port uint16) conntrack.Key {
		k := conntrack.Key{Proto: header.IPProtoTCP, CPort: port, VPort: 80}
		copy(k.CAddr[:], dtClient.AsSlice())
		copy(k.VAddr[:], dtVIP.AsSlice())
		return k
	}
	// pair returns a port above a whose flow shares a's slot.
	pair := func(a uint16) uint16 {
		ka := key(a)
		b := a + 1
		for kb := key(b); flowIndex(&kb) != flowIndex(&ka); kb = key(b) {
			b++
		}
		return b
	}
	frames := func(port uint16) (syn, ack, fin []byte) {
		p := dtPkt{src: dtClient, dst: dtVIP, sport: port, dport: 80}
		s, a, f := p, p, p
		s.syn, a.ack, f.fin, f.ack = true, true, true, true
		return s.frame(t), a.frame(t), f.frame(t)
	}
	now := sec
	sent := map[uint16][]int{}
	n := map[uint16]int{}
	send := func(port uint16, b []byte) {
		t.Helper()
		now += ms
		n[port]++
		if out := h.run(b, now); len(out) != 1 {
			t.Fatalf("port %d packet %d not forwarded", port, n[port])
		}
		for _, c := range drainAll(h.d) {
			sent[c.Key.CPort] = append(sent[c.Key.CPort], n[c.Key.CPort])
		}
	}
	// tableOf returns the table's count of port's connection and its last send.
	tableOf := func(port uint16) (pkts uint32, last int64) {
		h.d.Table().Walk(0, 10, now, func(c *conntrack.Conn, m *conntrack.SyncMeta) bool {
			if c.Key.CPort == port {
				pkts, last = m.Pkts, m.LastSync
			}
			return false
		})
		return pkts, last
	}

	// A fresh flow keeps its slot.
	const pa = 42000
	pb := pair(pa)
	synA, ackA, finA := frames(pa)
	synB, _, _ := frames(pb)
	send(pa, synA)
	for range 10 { // A's 3rd packet is sent (by the cache); the cache serves 9 of these
		send(pa, ackA)
	}
	send(pb, synB) // through A's slot, A fresh: B is not cached, A's slot keeps its count
	if got, last := tableOf(pa); got != 2 || last != 0 {
		t.Fatalf("after B's packet through A's fresh slot the table counts %d packets of A, last sent at %d; want 2, never", got, last)
	}
	for n[pa] < 60 {
		send(pa, ackA)
	}
	send(pa, finA) // the FIN finds A in its slot: the cache's 58 packets and its sends
	if got, want := fmt.Sprint(sent[pa]), "[3 53 61]"; got != want {
		t.Fatalf("A sent at its packets %s, want %s", got, want)
	}
	if got, _ := tableOf(pa); got != 61 {
		t.Fatalf("after the FIN the table counts %d packets of A, want 61", got)
	}
	if len(sent[pb]) != 0 {
		t.Fatalf("B sent at %v", sent[pb])
	}

	// A flow idle for refreshEvery loses its slot to the next flow through it.
	const pc = 43000
	pd := pair(pc)
	synC, ackC, finC := frames(pc)
	synD, _, _ := frames(pd)
	send(pc, synC)
	for range 10 { // sent at its 3rd packet, by the cache
		send(pc, ackC)
	}
	c3 := now - 8*ms
	now += refreshEvery
	send(pd, synD) // through C's slot, C idle: C's count and send are folded, D takes the slot
	if got, last := tableOf(pc); got != 11 || last > c3 || last <= c3-refreshEvery {
		t.Fatalf("after the takeover fold the table counts %d packets of C, last sent at %d; want 11, at %d (its 3rd packet, to the table's 100 ms tick)", got, last, c3)
	}
	for n[pc] < 60 { // to the table: D holds the slot, fresh
		send(pc, ackC)
	}
	send(pc, finC)
	if got, want := fmt.Sprint(sent[pc]), "[3 53 61]"; got != want {
		t.Fatalf("C sent at its packets %s, want %s", got, want)
	}
	if got, _ := tableOf(pc); got != 61 {
		t.Fatalf("after the FIN the table counts %d packets of C, want 61", got)
	}
}

// TestSyncNewUDPFlowCountsFromItsFirstPacket: a UDP connection is sent from its
// third packet (the threshold rule), so the packet that creates it starts its slot's
// countdown (a new TCP connection, in SYN_RECV, starts none: created skips it).
func TestSyncNewUDPFlowCountsFromItsFirstPacket(t *testing.T) {
	svc := rrService(ipvs.DR, 53)
	svc.Key = ipvs.AddrKey(ipvs.UDP, netip.AddrPortFrom(dtVIP, 53))
	h := newHarness(t, syncOptions(), svc)
	// The table's first connection takes another path (schedule): this one is the
	// second.
	h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 39999, dport: 53, udp: true, plen: 9}.frame(t), sec)
	b := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 53, udp: true, plen: 9}.frame(t)
	var sent []int
	cached := 0
	for n := 1; n <= 60; n++ {
		h.w.tableRefs = 0
		if out := h.run(b, sec+int64(n)*int64(time.Millisecond)); len(out) != 1 {
			t.Fatalf("packet %d not forwarded", n)
		}
		if h.w.tableRefs == 0 {
			cached++
		}
		for range drainAll(h.d) {
			sent = append(sent, n)
		}
	}
	if cached < 50 {
		t.Fatalf("the cache served only %d of the 59 packets after the first", cached)
	}
	if got := fmt.Sprint(sent); got != "[3 53]" {
		t.Fatalf("sent at packets %s, want [3 53]", got)
	}
}

// TestSyncStartShortMatchesTheGeneralStart is a differential test of the plan's start
// table (startShort, inbound's slot start for a short flow's table packet) against
// the general start it replaces (startFrom with the flow's slot mode): for random
// rules, local or not (a refresh period, persist mode), every state, every count
// below the table's length, a template or not and a client port or not, the slot
// ends in the same mode with the same countdown, or startShort declines and changes
// nothing.
func TestSyncStartShortMatchesTheGeneralStart(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 16))
	short := 0
	for trial := range 2000 {
		rules := ipvssync.Rules{Retries: uint8(rng.IntN(4))}
		switch rng.IntN(5) {
		case 0:
			rules.Threshold = uint32(rng.IntN(70))
		case 1:
			rules.Period = 0xffff - uint32(rng.IntN(100)) // the second candidate past 16 bits
			rules.Threshold = uint32(rng.IntN(100))
		default:
			rules.Period = 1 + uint32(rng.IntN(100))
			rules.Threshold = uint32(rng.IntN(int(rules.Period)))
		}
		if rng.IntN(4) == 0 {
			rules.RefreshPeriod = time.Duration(1+rng.IntN(10)) * time.Second
		}
		rules.PersistMode = rng.IntN(8) == 0
		if err := rules.Validate(); err != nil {
			continue
		}
		p := newSyncPlan(&rules)
		for s := range conntrack.NumStates {
			for pkts := range uint32(len(p.start[0]) + 2) {
				var c conntrack.Conn
				c.Key.Proto, c.State = header.IPProtoTCP, conntrack.State(s)
				if conntrack.State(s) == conntrack.StateUDP {
					c.Key.Proto = header.IPProtoUDP
				}
				c.Sync.Pkts, c.Sync.Old = pkts, conntrack.State(rng.IntN(conntrack.NumStates))
				switch rng.IntN(8) {
				case 0:
					c.Control = 7
				case 1:
					c.Flags |= conntrack.FlagNoCPort
				}
				var got, want flowSlot
				want.x.base, want.x.old = pkts, c.Sync.Old
				p.startFrom(&want, p.slotMode(&c), pkts)
				if !p.startShort(&got, &c) {
					if got != (flowSlot{}) {
						t.Fatalf("trial %d: startShort declined (count %d, control %d, flags %#x) but changed the slot", trial, pkts, c.Control, c.Flags)
					}
					if pkts < uint32(len(p.start[0])) && c.Control == 0 && c.Flags&conntrack.FlagNoCPort == 0 {
						t.Fatalf("trial %d: startShort declined a short flow (count %d)", trial, pkts)
					}
					continue
				}
				short++
				if got.snext != want.snext || got.x != want.x || got.spend != 0 {
					t.Fatalf("trial %d: rules %+v, state %d, count %d: start table left countdown %d and %+v, the general start %d and %+v",
						trial, rules, s, pkts, got.snext, got.x, want.snext, want.x)
				}
			}
		}
	}
	if short < 100000 {
		t.Fatalf("%d short starts compared: too few", short)
	}
}
