package cluster

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/testutil"

	"github.com/gvs-lb/gvs/ipvssync"
)

func TestFirstDirectorReadyAfterPeerTimeout(t *testing.T) {
	w := newFakeNet(t)
	a := w.add("d1", nil)
	w.start("d1")
	if s := a.n.State(); s != StateSyncing {
		t.Fatalf("after Start: %v, want SYNCING", s)
	}
	took, ok := w.runUntil(5*time.Second, a.n.Warm)
	if !ok || took < time.Second || took > 1100*time.Millisecond {
		t.Fatalf("alone: ready after %v (ok %v), want just after the 1s peer timeout", took, ok)
	}
}

func TestIncrementalSync(t *testing.T) {
	w := newFakeNet(t)
	a, b := w.add("d1", nil), w.add("d2", nil)
	w.start("d1", "d2")
	if _, ok := w.runUntil(3*time.Second, func() bool { return a.n.Warm() && b.n.Warm() }); !ok {
		t.Fatal("two directors starting together never became ready")
	}
	// Ten connections: a partly filled message waits for sync_flush.
	for i := range 10 {
		e := conn(i, 5)
		a.n.Enqueue(&e, w.now)
	}
	w.deliver()
	if n := b.table.len(); n != 0 {
		t.Fatalf("%d entries arrived before sync_flush", n)
	}
	took, ok := w.runUntil(time.Second, func() bool { return b.table.len() == 10 })
	if !ok || took > 110*time.Millisecond {
		t.Fatalf("10 entries arrived after %v (ok %v), want within sync_flush (100ms) + one tick", took, ok)
	}
	fe, _ := b.table.get(keyOf(conn(3, 5)))
	if fe.m.Origin == 0 || fe.e != conn(3, 5) {
		t.Fatalf("entry on d2: origin %d %+v, want d1's origin and %+v", fe.m.Origin, fe.e, conn(3, 5))
	}
	// A full message (40 IPv4 records in 1472 bytes) leaves at once.
	w.syncMsgs = 0
	for i := 100; i < 140; i++ {
		e := conn(i, 6)
		a.n.Enqueue(&e, w.now)
	}
	w.deliver()
	if b.table.len() != 50 || w.syncMsgs != 1 {
		t.Fatalf("after 40 more: d2 has %d entries from %d messages, want 50 from 1", b.table.len(), w.syncMsgs)
	}
	st := a.n.Stats()
	if st.SentRecords != 50 || st.SentMessages != 2 || st.Flushes != 1 {
		t.Fatalf("d1 stats %+v", st)
	}
	if st := b.n.Stats(); st.RecvRecords != 50 || len(st.Drops) != 0 {
		t.Fatalf("d2 stats %+v", st)
	}
	peers := b.n.Peers(w.now)
	if len(peers) != 1 || peers[0].NodeID != "d1" || !peers[0].Live || peers[0].RecvRecords != 50 || peers[0].Lost != 0 {
		t.Fatalf("d2's peers %+v", peers)
	}
}

func TestReceiveDrops(t *testing.T) {
	w := newFakeNet(t)
	a := w.add("d1", func(c *Config) { c.SyncID = 7 })
	w.start("d1")
	from := netip.MustParseAddrPort("198.18.0.99:40000")
	rec := func(mod func(*ipvssync.Record)) []byte {
		r := ipvssync.Record{Protocol: 6, Flags: ipvssync.FwdRoute, State: 1, CPort: 1, VPort: 80, DPort: 80,
			Timeout: 900, CAddr: netip.MustParseAddr("198.19.0.2"), VAddr: netip.MustParseAddr("198.18.100.1"),
			DAddr: netip.MustParseAddr("198.18.0.5")}
		if mod != nil {
			mod(&r)
		}
		b, err := ipvssync.Encode(&ipvssync.Message{Version: ipvssync.V1, SyncID: 7, Records: []ipvssync.Record{r}}, 1472)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := rec(nil)
	tests := []struct {
		name string
		from netip.AddrPort
		b    []byte
		drop string
	}{
		{"own address", netip.AddrPortFrom(a.addr, 1), good, "self"},
		{"outside sync_sources", netip.MustParseAddrPort("203.0.113.1:1"), good, "source"},
		{"foreign syncid", from, func() []byte { b := rec(nil); b[1] = 8; return b }(), "syncid"},
		{"size lies", from, func() []byte { b := rec(nil); b[3]--; return b }(), "malformed"},
		{"SCTP has no gvs service", from, rec(func(r *ipvssync.Record) { r.Protocol = ipvssync.ProtoSCTP; r.State = 7 }), "protocol"},
		{"method bits 5", from, rec(func(r *ipvssync.Record) { r.Flags = 5 }), "method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := a.n.Stats().Drops[tt.drop]
			a.n.HandleSync(tt.from, tt.b, w.now)
			if got := a.n.Stats().Drops[tt.drop]; got != before+1 {
				t.Fatalf("drops[%s] = %d, want %d (all: %v)", tt.drop, got, before+1, a.n.Stats().Drops)
			}
			if a.table.len() != 0 {
				t.Fatal("a dropped record reached the table")
			}
		})
	}
	a.n.HandleSync(from, good, w.now)
	if a.table.len() != 1 {
		t.Fatal("the good record did not reach the table")
	}
	// conn_max: the table refuses, the drop is counted.
	a.table.max = 1
	a.n.HandleSync(from, rec(func(r *ipvssync.Record) { r.CPort = 2 }), w.now)
	if got := a.n.Stats().Drops["table"]; got != 1 {
		t.Fatalf("drops[table] = %d", got)
	}
	// A datagram cut short by a bad record type keeps what came before and counts
	// the rest.
	b := rec(nil)
	two := append(append([]byte{}, b...), b[8:]...)
	two[4], two[3] = 2, byte(len(two))
	two[8+36] = 2 // type 2
	a.n.HandleSync(from, two, w.now)
	if st := a.n.Stats(); st.DecodeDrops["record_type"] != 1 || st.DecodeLost != 1 {
		t.Fatalf("decode drops %v lost %d", st.DecodeDrops, st.DecodeLost)
	}
}

func TestBulkSyncOnJoin(t *testing.T) {
	w := newFakeNet(t)
	a, b := w.add("d1", func(c *Config) { c.BulkRate = 20000 }), w.add("d2", func(c *Config) { c.BulkRate = 20000 })
	w.start("d1", "d2")
	w.runUntil(3*time.Second, func() bool { return a.n.Warm() && b.n.Warm() })
	// d1 and d2 each own 3000 connections; d1 also holds 500 that d9, long gone, sent.
	for i := range 3000 {
		a.table.own(conn(i, 5), w.now, w.now)
		b.table.own(conn(10000+i, 6), w.now, w.now)
	}
	dead := netip.MustParseAddrPort("198.18.0.99:40000")
	var bld ipvssync.Builder
	for i := 0; i < 500; i += 40 {
		bld.Reset(ipvssync.V1, 0, 1472)
		for j := i; j < min(i+40, 500); j++ {
			var r ipvssync.Record
			e := conn(20000+j, 7)
			toRecord(&e, &r)
			if err := bld.Add(&r); err != nil {
				t.Fatal(err)
			}
		}
		a.n.HandleSync(dead, bld.Bytes(), w.now)
		b.n.HandleSync(dead, bld.Bytes(), w.now)
	}
	if a.table.len() != 3500 || b.table.len() != 3500 {
		t.Fatalf("tables %d %d, want 3500 each", a.table.len(), b.table.len())
	}
	// 198.18.0.99 sends sync but no heartbeats, like a kernel IPVS master: after the
	// peer timeout each director pushes it what it would push a joiner.
	w.run(1500 * time.Millisecond)
	baseA, baseB := a.n.Stats().BulkSent, b.n.Stats().BulkSent
	if baseA != 3500 || baseB != 3000 {
		t.Fatalf("pushes to the heartbeat-less source: d1 %d, d2 %d records; want 3500 (owned + orphans) and 3000", baseA, baseB)
	}
	c := w.add("d3", nil)
	w.start("d3")
	w.run(100 * time.Millisecond)
	if js := c.n.Join(w.now); js == nil || len(js.Peers) != 2 || js.Peers[0].NodeID != "d1" || js.Peers[0].Received == 0 {
		t.Fatalf("join progress after 100 ms: %+v", js)
	}
	want := 6500
	// At 20,000 records/s each, d1 pushes 3500 and d2 3000: about 0.2 s; not before.
	var readyAt, fullAt time.Duration
	took, ok := w.runUntil(10*time.Second, func() bool {
		if c.table.len() == want && fullAt == 0 {
			fullAt = 1
		}
		if c.n.Warm() && readyAt == 0 {
			readyAt = 1
			if c.table.len() != want {
				t.Fatalf("d3 ready with %d of %d entries", c.table.len(), want)
			}
		}
		return c.n.Warm()
	})
	if !ok {
		t.Fatalf("d3 never ready; has %d of %d entries, state %v", c.table.len(), want, c.n.State())
	}
	if took += 100 * time.Millisecond; took < time.Second || took > 1500*time.Millisecond {
		t.Fatalf("d3 ready %v after its start, want after the 1s discovery window and within 1.5s", took)
	}
	// Orphans came from one director only (d1, the lowest id): d1 pushed 3500, d2 3000.
	if sa, sb := a.n.Stats().BulkSent-baseA, b.n.Stats().BulkSent-baseB; sa != 3500 || sb != 3000 {
		t.Fatalf("bulk sent by d1 %d, d2 %d; want 3500 and 3000", sa, sb)
	}
	if c.n.Stats().JoinIncomplete != 0 || c.n.Join(w.now) != nil {
		t.Fatal("join counted incomplete, or still in progress")
	}
}

func TestJoinWaitExpires(t *testing.T) {
	w := newFakeNet(t)
	a := w.add("d1", nil)
	w.start("d1")
	w.runUntil(2*time.Second, a.n.Warm)
	a.table.own(conn(1, 5), w.now, w.now)
	c := w.add("d3", func(c *Config) { c.JoinWait = 3 * time.Second })
	// d1 never receives a bulk request: it keeps sending heartbeats but never pushes.
	w.filter = func(d *datagram, to string) bool {
		return !(d.control && to == "d1" && d.from.Addr() == c.addr && isBulkReq(d.b))
	}
	w.start("d3")
	took, ok := w.runUntil(10*time.Second, c.n.Warm)
	if !ok || took < 3*time.Second || took > 3100*time.Millisecond {
		t.Fatalf("ready after %v (ok %v), want at join_wait (3s)", took, ok)
	}
	if c.n.Stats().JoinIncomplete != 1 || c.table.len() != 0 {
		t.Fatalf("join_incomplete %d, entries %d", c.n.Stats().JoinIncomplete, c.table.len())
	}
}

func isBulkReq(b []byte) bool { return len(b) > 5 && ctlType(b[5]) == ctlBulkReq }

func TestLostBulkRequestIsRepeated(t *testing.T) {
	w := newFakeNet(t)
	a := w.add("d1", nil)
	w.start("d1")
	w.runUntil(2*time.Second, a.n.Warm)
	for i := range 100 {
		a.table.own(conn(i, 5), w.now, w.now)
	}
	c := w.add("d3", nil)
	dropped := 0
	w.filter = func(d *datagram, to string) bool {
		if d.control && to == "d1" && isBulkReq(d.b) && dropped == 0 {
			dropped++
			return false
		}
		return true
	}
	w.start("d3")
	if _, ok := w.runUntil(5*time.Second, c.n.Warm); !ok || c.table.len() != 100 || dropped != 1 {
		t.Fatalf("ready %v with %d entries (dropped %d requests)", c.n.Warm(), c.table.len(), dropped)
	}
}

func TestLossTriggersTargetedBulk(t *testing.T) {
	w := newFakeNet(t)
	a, b := w.add("d1", nil), w.add("d2", nil)
	w.start("d1", "d2")
	w.runUntil(3*time.Second, func() bool { return a.n.Warm() && b.n.Warm() })
	// Five full messages from d1 to d2 are lost: 200 records, above resync_threshold.
	lose := 5
	w.filter = func(d *datagram, to string) bool {
		if !d.control && to == "d2" && lose > 0 {
			lose--
			return false
		}
		return true
	}
	for i := range 200 {
		e := conn(i, 5)
		a.table.own(e, w.now, w.now)
		a.n.Enqueue(&e, w.now)
	}
	w.deliver()
	if b.table.len() != 0 {
		t.Fatalf("d2 has %d entries though all messages were lost", b.table.len())
	}
	if _, ok := w.runUntil(2*time.Second, func() bool { return b.table.len() == 200 }); !ok {
		t.Fatalf("d2 has %d of 200 entries after the loss was seen; peers %+v", b.table.len(), b.n.Peers(w.now))
	}
	if p := b.n.Peers(w.now)[0]; p.Resyncs != 1 {
		t.Fatalf("resyncs %d, want 1", p.Resyncs)
	}
}

// TestLossWaitsForThePushAskedFor: a receiver that keeps losing records while the
// bulk push it asked for runs does not ask again before that push's bulk-done. A new
// request restarts the push from the start: asked at every heartbeat (its records
// lost or late on a busy host), the push never ended and the receiver never caught
// up (the lab's TestClusterBulk at load 15-20). Once the push is done, what it lost
// counts, and further pushes complete the copy.
func TestLossWaitsForThePushAskedFor(t *testing.T) {
	w := newFakeNet(t)
	a, b := w.add("d1", func(c *Config) { c.BulkRate = 2000 }), w.add("d2", nil)
	w.start("d1", "d2")
	w.runUntil(3*time.Second, func() bool { return a.n.Warm() && b.n.Warm() })
	const n = 4000 // a push of 2 s at 2,000 records a second: ten heartbeats
	for i := range n {
		e := conn(i, 5)
		a.table.own(e, w.now, w.now)
		a.n.Enqueue(&e, w.now)
	}
	// For 3 s d2 loses every other sync message from d1: the incremental sync, the
	// first push and the start of the second lose about half their records.
	lossy := w.now.Add(3 * time.Second)
	lost, asked, restarts := 0, 0, 0
	w.filter = func(d *datagram, to string) bool {
		if d.control && to == "d1" && isBulkReq(d.b) {
			var m ctlMsg
			if err := decodeControl(&m, d.b, nil); err != nil {
				t.Fatal(err)
			}
			if p := a.n.pushes["d2"]; p == nil || p.reqID != m.ReqID {
				asked++ // a new request (the same one again restarts nothing)
				if p != nil && !p.done {
					restarts++
				}
			}
		}
		if !d.control && to == "d2" && w.now.Before(lossy) {
			lost++
			return lost%2 == 0
		}
		return true
	}
	took, ok := w.runUntil(20*time.Second, func() bool { return b.table.len() == n })
	if !ok || restarts != 0 {
		t.Fatalf("d2 holds %d of %d entries after %v; %d bulk requests, %d of them while d1 still pushed to d2 (want none)",
			b.table.len(), n, took, asked, restarts)
	}
	if asked < 2 {
		t.Fatalf("%d bulk requests: the loss during the first push was not acted on", asked)
	}
	t.Logf("d2 caught up after %v with %d bulk requests", took, asked)
}

// TestLostBulkDoneDoesNotStopPulls: with join_wait 0 (no bound on a bulk), a
// receiver whose requested push's bulk-done was lost repeats the same request
// while it still counts records lost; the peer, done with that push, answers with
// its bulk-done again (it does not push again), and the receiver can ask for the
// push that brings the rest.
func TestLostBulkDoneDoesNotStopPulls(t *testing.T) {
	w := newFakeNet(t)
	a := w.add("d1", func(c *Config) { c.BulkRate = 2000 })
	b := w.add("d2", func(c *Config) { c.JoinWait = 0 })
	w.start("d1", "d2")
	w.runUntil(3*time.Second, func() bool { return a.n.Warm() && b.n.Warm() })
	const n = 1000
	for i := range n {
		e := conn(i, 5)
		a.table.own(e, w.now, w.now)
		a.n.Enqueue(&e, w.now)
	}
	// For 2 s d2 loses every sync message from d1 (the incremental sync and the
	// push its loss asks for, a push of 0.5 s), and the first bulk-done from d1 to
	// d2 is lost.
	lossy := w.now.Add(2 * time.Second)
	dones := 0
	w.filter = func(d *datagram, to string) bool {
		if d.control && to == "d2" && len(d.b) > 5 && ctlType(d.b[5]) == ctlBulkDone {
			dones++
			return dones > 1
		}
		return d.control || to != "d2" || !w.now.Before(lossy)
	}
	if took, ok := w.runUntil(20*time.Second, func() bool { return b.table.len() == n }); !ok {
		t.Fatalf("d2 holds %d of %d entries after %v (%d bulk-dones sent to it, the first lost)", b.table.len(), n, took, dones)
	}
	if dones < 2 {
		t.Fatalf("%d bulk-dones: the lost one was not answered again", dones)
	}
}

func TestRefreshSweeper(t *testing.T) {
	w := newFakeNet(t)
	a, b := w.add("d1", nil), w.add("d2", nil)
	w.start("d1", "d2")
	w.runUntil(3*time.Second, func() bool { return a.n.Warm() && b.n.Warm() })
	t0 := w.now
	quiet := conn(1, 5)
	quiet.Timeout = 30 * time.Second
	idle := conn(2, 5)
	idle.Timeout = 30 * time.Second
	a.table.own(quiet, t0.Add(time.Second), t0) // active after its last sync
	a.table.own(idle, t0, t0)                   // no traffic since: let it expire
	w.run(10 * time.Second)
	if b.table.len() != 0 {
		t.Fatal("the sweeper re-sent an entry whose receivers' copy has more than half its timeout left")
	}
	if _, ok := w.runUntil(6*time.Second, func() bool { return b.table.len() == 1 }); !ok {
		t.Fatal("the quiet entry was not refreshed before half its timeout was left")
	}
	if _, ok := b.table.get(keyOf(quiet)); !ok || a.n.Stats().Swept != 1 {
		t.Fatalf("refreshed the wrong entry; swept %d", a.n.Stats().Swept)
	}
	w.run(20 * time.Second)
	if a.n.Stats().Swept != 1 {
		t.Fatal("an entry without new traffic was refreshed again")
	}
}

func TestConfigDigestAndAuth(t *testing.T) {
	w := newFakeNet(t)
	key := []byte("0123456789abcdef0123456789abcdef")
	a := w.add("d1", func(c *Config) { c.AuthKey = key })
	b := w.add("d2", func(c *Config) { c.AuthKey = key; c.ConfigDigest[0] = 1 })
	c := w.add("d3", func(c *Config) { c.AuthKey = []byte("another key, another cluster....") })
	w.start("d1", "d2", "d3")
	w.run(time.Second)
	if a.n.ConfigMatch(w.now) || b.n.ConfigMatch(w.now) {
		t.Fatal("digest mismatch not seen")
	}
	if a.n.Stats().ConfigMismatch == 0 {
		t.Fatal("mismatch not counted")
	}
	if p := a.n.Peers(w.now); len(p) != 1 || p[0].NodeID != "d2" || p[0].DigestMatch {
		t.Fatalf("d1's peers %+v: want d2 only (d3 signs with another key), mismatched", p)
	}
	if a.n.Stats().Drops["control_auth"] == 0 || c.n.Stats().Drops["control_auth"] == 0 {
		t.Fatal("wrong-key datagrams not counted")
	}
	if len(c.n.Peers(w.now)) != 0 {
		t.Fatal("d3 accepted peers signing with another key")
	}
}

func TestNodeIDCollision(t *testing.T) {
	w := newFakeNet(t)
	a, b := w.add("same", nil), w.add("same2", nil)
	_ = b
	w.start("same", "same2")
	w.run(500 * time.Millisecond)
	x := w.add("impostor", func(c *Config) { c.NodeID = "same" })
	x.n.Start(w.now)
	w.deliver()
	w.run(300 * time.Millisecond)
	if a.n.Stats().Drops["control_foreign"] == 0 {
		t.Fatal("a second director with our node_id was not noticed")
	}
}

func TestEnqueueAllocs(t *testing.T) {
	w := newFakeNet(t)
	a := w.add("d1", nil)
	w.start("d1")
	e := conn(1, 5)
	// Warm the buffers: one full message out.
	for range 80 {
		a.n.Enqueue(&e, w.now)
	}
	w.inFlight = nil
	if n := testing.AllocsPerRun(200, func() { a.n.Enqueue(&e, w.now) }); n > 0.1 {
		t.Fatalf("Enqueue: %v allocs per entry (the fake transport's copy included)", n)
	}
}

// partitioned returns two ready directors that could not hear each other for the
// last 3 s, during which d1 made 50 connections (fewer than resync_threshold: loss
// detection alone would not repair them); every datagram is still dropped.
func partitioned(t *testing.T) (w *fakeNet, a, b *testNode) {
	w = newFakeNet(t)
	a, b = w.add("d1", nil), w.add("d2", nil)
	w.start("d1", "d2")
	w.runUntil(3*time.Second, func() bool { return a.n.Warm() && b.n.Warm() })
	w.filter = func(*datagram, string) bool { return false }
	for i := range 50 {
		e := conn(i, 5)
		a.table.own(e, w.now, w.now)
		a.n.Enqueue(&e, w.now)
	}
	w.run(3 * time.Second)
	return w, a, b
}

func TestPartitionHealPulls(t *testing.T) {
	w, _, b := partitioned(t)
	if p := b.n.Peers(w.now); p[0].Live {
		t.Fatal("d1 still live for d2 during the partition")
	}
	w.filter = nil
	if _, ok := w.runUntil(2*time.Second, func() bool { return b.table.len() == 50 }); !ok {
		t.Fatalf("after the heal d2 has %d of d1's 50 connections", b.table.len())
	}
	if p := b.n.Peers(w.now); !p[0].Live || p[0].Resyncs != 1 {
		t.Fatalf("d2's view of d1 after the heal: %+v", p[0])
	}
}

func TestHandleSyncAllocs(t *testing.T) {
	n, err := NewNode(DefaultConfig("d1"), Deps{Sink: nopSink{}, Table: nopTable{}, Transport: nopTransport{}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	msg := fullMessage(t)
	from := netipAddrPort("198.18.0.22:40000")
	n.HandleSync(from, msg, now) // the source's first message numbers it
	if a := testing.AllocsPerRun(100, func() { n.HandleSync(from, msg, now) }); a != 0 {
		t.Fatalf("HandleSync: %v allocs per message", a)
	}
}

// TestConcurrentUse drives one Node from several goroutines at once, as the daemon
// does (the event drain, the socket loop, metrics and gvs adm); run with -race.
func TestConcurrentUse(t *testing.T) {
	w := newFakeNet(t)
	a := w.add("d1", nil)
	a.n.Start(w.now)
	msg := fullMessage(t)
	peer := w.add("d2", nil)
	peer.n.Start(w.now)
	var hb []byte
	for _, d := range w.inFlight {
		if d.control && d.from.Addr() == peer.addr {
			hb = d.b
		}
	}
	w.inFlight = nil
	w.concurrent = true // another goroutine may hold the node's lock when a push opens or closes
	now := w.now
	done := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				switch g {
				case 0:
					e := conn(i, 5)
					a.n.Enqueue(&e, now)
				case 1:
					a.n.HandleSync(netipAddrPort("198.18.0.30:1"), msg, now)
					a.n.HandleControl(netip.AddrPortFrom(peer.addr, 8849), hb, now)
				case 2:
					a.n.Tick(now.Add(time.Duration(i) * time.Millisecond))
				case 3:
					_ = a.n.Stats()
					_ = a.n.Peers(now)
					_ = a.n.ConfigMatch(now)
					_ = a.n.Warm()
				}
			}
		})
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return a.n.Stats().RecvRecords > 4000 }, "no progress")
	close(done)
	wg.Wait()
}

// TestKernelMasterMessage feeds what a kernel master may send — v0, and v1 with a
// sequence option and an unknown optional option, padded — and finds the entries.
func TestKernelMasterMessage(t *testing.T) {
	w := newFakeNet(t)
	a := w.add("d1", nil)
	a.n.Start(w.now)
	from := netipAddrPort("198.18.0.40:40000")
	rec := []byte{0, 6, 0, 36 + 26 + 4, 0, 0, 0x06, 0x83, 0, 1, 0xa1, 0x70, 0, 80, 0, 80, 0, 0, 0, 0, 0, 0, 3, 0x84,
		198, 19, 0, 2, 198, 18, 100, 1, 198, 18, 0, 5}
	rec = append(rec, ipvssync.OptSeqData, 24)
	rec = append(rec, make([]byte, 24)...)
	rec = append(rec, 0x40|7, 2, 1, 2, 0, 0) // an unknown optional option, then 2 bytes of padding
	second := slices.Clone(rec[:36])
	second[3], second[11] = 36, 0x71 // plain, client port 41329
	v1 := append([]byte{0, 0, 0, byte(8 + len(rec) + 36), 2, 1, 0, 0}, append(rec, second...)...)
	a.n.HandleSync(from, v1, w.now)
	v0 := []byte{1, 0, 0, 28, 0, 17, 0x14, 0xe9, 0, 53, 0, 53, 198, 19, 0, 3, 198, 18, 100, 1, 198, 18, 0, 6, 0x01, 0, 0, 0}
	a.n.HandleSync(from, v0, w.now)
	if a.table.len() != 3 || len(a.n.Stats().Drops) != 0 {
		t.Fatalf("table %d entries, drops %v", a.table.len(), a.n.Stats().Drops)
	}
	tcp, _ := a.table.get(Key{Proto: 6, CAddr: netip.MustParseAddr("198.19.0.2"), CPort: 41328, VAddr: netip.MustParseAddr("198.18.100.1"), VPort: 80})
	udp, _ := a.table.get(Key{Proto: 17, CAddr: netip.MustParseAddr("198.19.0.3"), CPort: 5353, VAddr: netip.MustParseAddr("198.18.100.1"), VPort: 53})
	if tcp.e.Timeout != 900*time.Second || tcp.e.State != StateEstablished || tcp.e.Method != 4 /* DR */ ||
		udp.e.Timeout != 0 || udp.e.State != StateUDP || udp.e.Flags&FlagInactive == 0 {
		t.Fatalf("tcp %+v\nudp %+v", tcp.e, udp.e)
	}
}

// TestSendV0 sends with sync_version = 0: IPv4 entries arrive (without timeout, so
// the receiver's state timeout applies); an IPv6 entry cannot and is counted.
func TestSendV0(t *testing.T) {
	w := newFakeNet(t)
	a, b := w.add("d1", func(c *Config) { c.SyncVersion = ipvssync.V0 }), w.add("d2", nil)
	w.start("d1", "d2")
	w.runUntil(3*time.Second, func() bool { return a.n.Warm() && b.n.Warm() })
	e := conn(1, 5)
	a.n.Enqueue(&e, w.now)
	e6 := e
	e6.CAddr, e6.VAddr, e6.DAddr = netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("2001:db8::100"), netip.MustParseAddr("2001:db8::5")
	a.n.Enqueue(&e6, w.now)
	w.run(200 * time.Millisecond)
	got, ok := b.table.get(keyOf(e))
	if !ok || got.e.Timeout != 0 || got.e.DAddr != e.DAddr {
		t.Fatalf("v0 entry on d2: %v %+v", ok, got.e)
	}
	if b.table.len() != 1 || a.n.Stats().Drops["bad_entry"] != 1 {
		t.Fatalf("d2 has %d entries; d1 drops %v", b.table.len(), a.n.Stats().Drops)
	}
}

func TestBoundedStrangers(t *testing.T) {
	w := newFakeNet(t)
	a := w.add("d1", func(c *Config) { c.Sources = nil })
	a.n.Start(w.now)
	msg := fullMessage(t)
	for i := range maxSources + 10 {
		from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 1)
		a.n.HandleSync(from, msg, w.now)
	}
	if n := len(a.n.sources); n != maxSources {
		t.Fatalf("%d sources remembered, want %d", n, maxSources)
	}
	for i := range maxPeers + 10 {
		hb := encodeControl(nil, &ctlMsg{Type: ctlHeartbeat, NodeID: fmt.Sprintf("x%d", i), Incarnation: 1}, nil)
		a.n.HandleControl(netipAddrPort("198.18.0.50:1"), hb, w.now)
	}
	if n := len(a.n.Peers(w.now)); n != maxPeers {
		t.Fatalf("%d peers remembered, want %d", n, maxPeers)
	}
	if a.n.Stats().Drops["control_foreign"] != 10 {
		t.Fatalf("drops %v", a.n.Stats().Drops)
	}
}

func TestRestartedPeerIsNotPulled(t *testing.T) {
	w := newFakeNet(t)
	a, b := w.add("d1", nil), w.add("d2", nil)
	w.start("d1", "d2")
	w.runUntil(3*time.Second, func() bool { return a.n.Warm() && b.n.Warm() })
	b.down = true
	w.run(2 * time.Second) // d2 silent: not live for d1
	b.down = false
	b.n.Start(w.now) // a restart: a new incarnation, its own bulk request
	w.deliver()
	w.run(2 * time.Second)
	if p := a.n.Peers(w.now); len(p) != 1 || !p[0].Live || p[0].Resyncs != 0 {
		t.Fatalf("d1's view of the restarted d2: %+v (a restart is a join, not a silence to repair)", p)
	}
	if !b.n.Warm() {
		t.Fatal("the restarted d2 never became ready")
	}
}

// TestRestartOrphansOldEntries: what a director sent before it restarted is nobody's
// afterwards, even though the new incarnation has the same address; the lowest-id
// director pushes those entries back to it as orphans.
func TestRestartOrphansOldEntries(t *testing.T) {
	w := newFakeNet(t)
	a, b, c := w.add("d1", nil), w.add("d2", nil), w.add("d3", nil)
	w.start("d1", "d2", "d3")
	w.runUntil(3*time.Second, func() bool { return a.n.Warm() && b.n.Warm() && c.n.Warm() })
	for i := range 30 {
		e := conn(i, 5)
		c.table.own(e, w.now, w.now)
		c.n.Enqueue(&e, w.now)
	}
	w.run(200 * time.Millisecond)
	if a.table.len() != 30 || b.table.len() != 30 {
		t.Fatalf("d1 %d, d2 %d of d3's 30", a.table.len(), b.table.len())
	}
	// d3 restarts at once (no silence long enough to be noticed) with an empty table.
	fresh := w.add("d3-new", func(cfg *Config) { cfg.NodeID = "d3" })
	delete(w.nodes, "d3-new")
	w.order = w.order[:len(w.order)-1]
	fresh.addr, fresh.n.cfg.Self = c.addr, c.n.cfg.Self
	w.nodes["d3"] = fresh
	fresh.n.Start(w.now)
	w.deliver()
	if _, ok := w.runUntil(3*time.Second, fresh.n.Warm); !ok || fresh.table.len() != 30 {
		t.Fatalf("restarted d3: ready %v with %d of its former 30 entries; d1 %+v peers %+v", fresh.n.Warm(), fresh.table.len(), a.n.Stats(), a.n.Peers(w.now))
	}
	if sa, sb := a.n.Stats().BulkSent, b.n.Stats().BulkSent; sa != 30 || sb != 0 {
		t.Fatalf("bulk sent d1 %d, d2 %d: want the orphans from d1 (lowest id) only", sa, sb)
	}
}

// TestQueueFull: at most sync_qlen_max completed messages wait for the socket; one
// more is dropped and counted (here two ports flush in the same tick with room for one).
func TestQueueFull(t *testing.T) {
	w := newFakeNet(t)
	a := w.add("d1", func(c *Config) { c.SyncPorts, c.SyncQLenMax = 2, 1 })
	a.n.Start(w.now)
	w.inFlight = nil
	ports := map[int]bool{}
	for i := 0; len(ports) < 2; i++ {
		e := conn(i, 5)
		ports[a.n.snd.portFor(&e)] = true
		a.n.Enqueue(&e, w.now)
	}
	a.n.Tick(w.now.Add(200 * time.Millisecond))
	if st := a.n.Stats(); st.Drops["queue_full"] != 1 || st.SentMessages != 1 {
		t.Fatalf("stats %+v: want one message sent, one dropped as queue_full", st)
	}
}

// TestControlReplay: a control datagram seen again in the sender's incarnation (a
// replay of a signed one, or a reordering) is dropped and counted.
func TestControlReplay(t *testing.T) {
	key := []byte("k")
	w := newFakeNet(t)
	a, b := w.add("d1", func(c *Config) { c.AuthKey = key }), w.add("d2", func(c *Config) { c.AuthKey = key })
	w.start("d1", "d2")
	w.run(500 * time.Millisecond)
	var hb []byte
	b.n.Tick(w.now.Add(time.Second)) // a heartbeat from d2, captured before delivery
	for _, d := range w.inFlight {
		if d.control && d.from.Addr() == b.addr {
			hb = d.b
		}
	}
	if hb == nil {
		t.Fatal("no heartbeat from d2")
	}
	from := netip.AddrPortFrom(b.addr, 8849)
	a.n.HandleControl(from, hb, w.now)
	a.n.HandleControl(from, hb, w.now)
	if got := a.n.Stats().Drops["control_replay"]; got != 1 {
		t.Fatalf("drops %v: want the second copy dropped as control_replay", a.n.Stats().Drops)
	}
}

// TestSetConfigDigest: a reload that makes our digest equal to a peer's clears the
// mismatch at once, on our side without waiting for its next heartbeat, and the
// peer sees the match from our next heartbeat.
func TestSetConfigDigest(t *testing.T) {
	w := newFakeNet(t)
	a := w.add("d1", nil)
	b := w.add("d2", func(c *Config) { c.ConfigDigest[0] = 1 })
	w.start("d1", "d2")
	w.run(time.Second)
	if a.n.ConfigMatch(w.now) || b.n.ConfigMatch(w.now) {
		t.Fatal("digest mismatch not seen")
	}
	var d [16]byte
	d[0] = 1
	a.n.SetConfigDigest(d)
	if !a.n.ConfigMatch(w.now) {
		t.Fatal("d1 still sees a mismatch after taking d2's digest")
	}
	w.run(300 * time.Millisecond) // a heartbeat
	if !b.n.ConfigMatch(w.now) {
		t.Fatal("d2 still sees a mismatch after d1's next heartbeat")
	}
	a.n.SetConfigDigest([16]byte{})
	if a.n.ConfigMatch(w.now) {
		t.Fatal("d1 sees no mismatch after moving away from d2's digest")
	}
}
