package cluster

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/ipvssync"
)

// carries reports whether the sync datagram b holds a record of one of keys.
func carries(t *testing.T, b []byte, keys map[Key]bool) bool {
	t.Helper()
	var m ipvssync.Message
	m.Records = make([]ipvssync.Record, 0, ipvssync.MaxRecords)
	if res := ipvssync.Decode(&m, b); res.Drop != ipvssync.ReasonNone {
		t.Fatalf("a sync datagram the test cannot decode: %v", res.Drop)
	}
	var e Entry
	for i := range m.Records {
		if fromRecord(&m.Records[i], &e) == dropNone && keys[e.Key()] {
			return true
		}
	}
	return false
}

// loadedPeer returns a fake LAN with one ready director, d1, pushing at 20,000
// records a second and owning connections 0 to n-1.
func loadedPeer(t *testing.T, n int) (*fakeNet, *testNode) {
	w := newFakeNet(t)
	a := w.add("d1", func(c *Config) { c.BulkRate = 20000 })
	w.start("d1")
	if _, ok := w.runUntil(2*time.Second, a.n.Warm); !ok {
		t.Fatal("d1 alone never became ready")
	}
	for i := range n {
		a.table.own(conn(i, 5), w.now, w.now)
	}
	return w, a
}

// TestShortPushIsNotHiddenByOtherRecords (docs/cluster.md §6): a joiner counts the
// records of the push made for it, not every record from the peer's address. d1
// pushes to two joiners at once while its live sync goes on; every message carrying
// one of 30 of its connections is lost on the way to d2 until d2 asks again. The
// records of d1's push to d3 and its live sync, which d2 receives too, outnumber
// those lost: counted by address, d2's push looked complete and d2 went ready
// without the 30 connections.
func TestShortPushIsNotHiddenByOtherRecords(t *testing.T) {
	const n = 2000
	w, a := loadedPeer(t, n)
	b, c := w.add("d2", nil), w.add("d3", nil)
	hidden := map[Key]bool{}
	for i := range 30 {
		hidden[keyOf(conn(i, 5))] = true
	}
	asked, dropped := 0, 0
	w.filter = func(d *datagram, to string) bool {
		if d.control && to == "d1" && d.from.Addr() == b.addr && isBulkReq(d.b) {
			asked++
		}
		if d.control || to != "d2" || asked > 1 || !carries(t, d.b, hidden) {
			return true
		}
		dropped++
		return false
	}
	w.start("d2", "d3")
	live := 0
	took, ok := w.runUntil(5*time.Second, func() bool {
		// d1's live sync: ten new connections every 10 ms.
		for range 10 {
			e := conn(10000+live, 5)
			a.table.own(e, w.now, w.now)
			a.n.Enqueue(&e, w.now)
			live++
		}
		return b.n.Warm() && c.n.Warm()
	})
	if !ok {
		t.Fatalf("d2 ready %v, d3 ready %v after %v", b.n.Warm(), c.n.Warm(), took)
	}
	missing := 0
	for i := range n {
		if _, ok := b.table.get(keyOf(conn(i, 5))); !ok {
			missing++
		}
	}
	if missing != 0 || dropped == 0 {
		t.Fatalf("d2 went ready after %v missing %d of d1's %d connections (%d messages lost on the way, %d live records sent meanwhile, %d bulk requests to d1)",
			took, missing, n, dropped, live, asked)
	}
	if c.table.len() < n {
		t.Fatalf("d3 holds %d of d1's %d connections", c.table.len(), n)
	}
	if b.n.Stats().JoinIncomplete != 0 || asked != 2 {
		t.Fatalf("join_incomplete %d, %d bulk requests from d2 to d1 (want the first and one more for the short push)",
			b.n.Stats().JoinIncomplete, asked)
	}
	t.Logf("d2 ready after %v, %d messages lost, %d live records meanwhile", took, dropped, live)
}

// TestLossPushesBackOff (docs/cluster.md §5): a push asked for because of loss that
// overflows the receiver (here: d2 takes at most 20 sync messages from d1 every
// 10 ms, d1 pushes 50) loses records itself; that loss does not ask for the next push
// at once, but after a back-off that doubles. Before, d2 asked again after every
// push's bulk-done, some 60 pushes of 20,000 records in 20 s. Once the overflow
// stops, the next push completes d2's copy.
func TestLossPushesBackOff(t *testing.T) {
	w := newFakeNet(t)
	a, b := w.add("d1", nil), w.add("d2", nil)
	w.start("d1", "d2")
	w.runUntil(3*time.Second, func() bool { return a.n.Warm() && b.n.Warm() })
	const n = 20000
	for i := range n {
		a.table.own(conn(i, 5), w.now, w.now)
	}
	asks := &newAsks{w: w, seen: map[uint32]bool{}}
	lose := 5 // the five messages of the live sync below: 200 records lost, above resync_threshold
	var step time.Time
	taken := 0
	overflow := w.now.Add(20 * time.Second)
	w.filter = func(d *datagram, to string) bool {
		asks.saw(d, to)
		if d.control || to != "d2" {
			return true
		}
		if lose > 0 {
			lose--
			return false
		}
		if !w.now.Before(overflow) {
			return true
		}
		if !w.now.Equal(step) {
			step, taken = w.now, 0
		}
		taken++
		return taken <= 20
	}
	for i := range 200 {
		e := conn(n+i, 5)
		a.table.own(e, w.now, w.now)
		a.n.Enqueue(&e, w.now)
	}
	w.run(20 * time.Second)
	if len(asks.at) == 0 {
		t.Fatal("the loss of 200 records asked for no push")
	}
	if len(asks.at) > 5 {
		t.Fatalf("%d pushes asked for in the 20 s the receiver overflowed, at %v; want a back-off between them", len(asks.at), sinceFirst(asks.at))
	}
	for i := 2; i < len(asks.at); i++ {
		if asks.at[i].Sub(asks.at[i-1]) < asks.at[i-1].Sub(asks.at[i-2]) || asks.at[i].Sub(asks.at[i-1]) < 2*time.Second {
			t.Fatalf("pushes asked for at %v: the gaps do not grow", sinceFirst(asks.at))
		}
	}
	if b.n.Stats().ResyncDeferred == 0 {
		t.Fatal("no push held back by the back-off was counted")
	}
	if _, ok := w.runUntil(60*time.Second, func() bool { return b.table.len() == n+200 }); !ok {
		t.Fatalf("d2 holds %d of %d entries 60 s after the overflow stopped; pushes asked for at %v", b.table.len(), n+200, sinceFirst(asks.at))
	}
	t.Logf("pushes asked for at %v", sinceFirst(asks.at))
}

// newAsks records when each new bulk request (one with a request id not seen before)
// reached d1.
type newAsks struct {
	w    *fakeNet
	seen map[uint32]bool
	at   []time.Time
}

func (a *newAsks) saw(d *datagram, to string) {
	if !d.control || to != "d1" || !isBulkReq(d.b) {
		return
	}
	var m ctlMsg
	if err := decodeControl(&m, d.b, nil); err != nil {
		a.w.t.Fatal(err)
	}
	if !a.seen[m.ReqID] {
		a.seen[m.ReqID] = true
		a.at = append(a.at, a.w.now)
	}
}

func sinceFirst(ts []time.Time) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i := range ts {
		out[i] = ts[i].Sub(ts[0])
	}
	return out
}

// TestPushHasItsOwnSocket: a push's messages leave from a socket of its own, hold
// none of the live sync's records, and its bulk-done names the socket's port; the
// socket is closed once the push is done, and a repeated request for the finished
// push is answered with the same bulk-done.
func TestPushHasItsOwnSocket(t *testing.T) {
	const n = 1000
	w, a := loadedPeer(t, n)
	a.n.cfg.BulkRate = 2000 // a push of 0.5 s: heartbeats show it under way
	pushed := map[Key]bool{}
	for i := range n {
		pushed[keyOf(conn(i, 5))] = true
	}
	b := w.add("d2", nil)
	var dones []ctlMsg
	var req []byte
	ports := map[uint16]int{}
	w.filter = func(d *datagram, to string) bool {
		if d.control && isBulkReq(d.b) && d.from.Addr() == b.addr {
			req = d.b
		}
		if d.control && len(d.b) > 5 && ctlType(d.b[5]) == ctlBulkDone {
			var m ctlMsg
			if err := decodeControl(&m, d.b, nil); err != nil {
				t.Fatal(err)
			}
			dones = append(dones, m)
		}
		if !d.control && d.from.Addr() == a.addr {
			ports[d.from.Port()]++
			if d.from.Port() == 40000 && carries(t, d.b, pushed) {
				t.Errorf("a live sync message carries pushed records")
			}
		}
		return true
	}
	w.start("d2")
	live, shown := 0, 0
	if _, ok := w.runUntil(3*time.Second, func() bool {
		e := conn(5000+live, 5) // live sync meanwhile, of entries not in d1's table: no walk meets them
		live++
		a.n.Enqueue(&e, w.now)
		// The progress gvs adm --cluster shows counts the push's records only, by
		// the port d1's heartbeats name while it pushes.
		if js := b.n.Join(w.now); js != nil && len(js.Peers) == 1 {
			if p := js.Peers[0]; p.Received > a.n.Stats().BulkSent {
				t.Fatalf("join progress %+v: more received than d1 pushed (%d)", p, a.n.Stats().BulkSent)
			} else if p.Received > 0 && !p.Done {
				shown++
			}
		}
		return b.n.Warm()
	}); !ok || b.table.len() < n {
		t.Fatalf("d2 ready %v with %d entries", b.n.Warm(), b.table.len())
	}
	if shown == 0 {
		t.Fatal("no progress shown while the push ran")
	}
	if len(dones) != 1 || dones[0].PushPort == 0 || dones[0].PushPort == 40000 || dones[0].Count != n {
		t.Fatalf("bulk-dones %+v, want one naming the push's own port with %d records", dones, n)
	}
	if ports[dones[0].PushPort] == 0 || ports[40000] == 0 || len(ports) != 2 {
		t.Fatalf("sync messages from d1 by source port %v, want the live sync's 40000 and the push's %d", ports, dones[0].PushPort)
	}
	if a.openPushes() != 0 || len(a.pushes) != 1 {
		t.Fatalf("d1 has %d push sockets open of %d opened after the push", a.openPushes(), len(a.pushes))
	}
	// The last request again, in a datagram numbered after it (a copy would be dropped
	// as a replay), as the joiner repeats a request whose bulk-done it missed.
	var m ctlMsg
	if err := decodeControl(&m, req, nil); err != nil {
		t.Fatal(err)
	}
	m.Seq += 1000
	a.n.HandleControl(netip.AddrPortFrom(b.addr, 8849), encodeControl(nil, &m, nil), w.now)
	w.deliver()
	if len(dones) != 2 || dones[1] != (ctlMsg{Type: ctlBulkDone, NodeID: "d1", Incarnation: dones[1].Incarnation, Seq: dones[1].Seq,
		ReqID: dones[0].ReqID, Target: "d2", Count: n, PushPort: dones[0].PushPort}) || len(a.pushes) != 1 {
		t.Fatalf("bulk-dones %+v after the request was repeated, want the first again; %d sockets opened", dones, len(a.pushes))
	}
}

// TestBulkDoneWithoutPort (docs/cluster.md §6): a peer whose bulk-done names no push
// port — an older gvs, or one that could not open a push socket and pushed from its
// sync socket — still completes a join: the joiner counts every record from its
// address, as before push ports, and says so once.
func TestBulkDoneWithoutPort(t *testing.T) {
	const n = 1000
	w, a := loadedPeer(t, n)
	a.noPushes = true
	var logA, logB strings.Builder
	a.n.log = slog.New(slog.NewTextHandler(&logA, nil))
	b := w.add("d2", nil)
	b.n.log = slog.New(slog.NewTextHandler(&logB, nil))
	var dones []ctlMsg
	ports := map[uint16]bool{}
	w.filter = func(d *datagram, to string) bool {
		if d.control && len(d.b) > 5 && ctlType(d.b[5]) == ctlBulkDone {
			var m ctlMsg
			if err := decodeControl(&m, d.b, nil); err != nil {
				t.Fatal(err)
			}
			dones = append(dones, m)
		}
		if !d.control {
			ports[d.from.Port()] = true
		}
		return true
	}
	w.start("d2")
	if _, ok := w.runUntil(3*time.Second, b.n.Warm); !ok || b.table.len() != n {
		t.Fatalf("d2 ready %v with %d of %d entries", b.n.Warm(), b.table.len(), n)
	}
	if len(dones) != 1 || dones[0].PushPort != 0 || len(ports) != 1 || !ports[40000] {
		t.Fatalf("bulk-dones %+v, sync source ports %v: want one bulk-done without a port, every message from the sync socket", dones, ports)
	}
	if b.n.Stats().JoinIncomplete != 0 || b.n.Stats().BulkShort != 0 {
		t.Fatalf("stats %+v", b.n.Stats())
	}
	if k := strings.Count(logB.String(), "names no push port"); k != 1 {
		t.Fatalf("the joiner said %d times that it counts by address, want once:\n%s", k, logB.String())
	}
	if k := strings.Count(logA.String(), "no socket of its own"); k != 1 {
		t.Fatalf("the pusher said %d times that it has no push socket, want once:\n%s", k, logA.String())
	}
}

// TestLossBackOffResets: a second loss soon after a push asked for because of loss
// waits the back-off; after a quiet period the next loss asks at once again, and the
// back-off starts again from its least.
func TestLossBackOffResets(t *testing.T) {
	w := newFakeNet(t)
	a, b := w.add("d1", nil), w.add("d2", nil)
	w.start("d1", "d2")
	w.runUntil(3*time.Second, func() bool { return a.n.Warm() && b.n.Warm() })
	asks := &newAsks{w: w, seen: map[uint32]bool{}}
	lose := 0
	w.filter = func(d *datagram, to string) bool {
		asks.saw(d, to)
		if !d.control && to == "d2" && lose > 0 {
			lose--
			return false
		}
		return true
	}
	next := 0
	loss := func() time.Time { // five messages of 40 records lost: above resync_threshold
		lose = 5
		for range 200 {
			e := conn(next, 5)
			next++
			a.table.own(e, w.now, w.now)
			a.n.Enqueue(&e, w.now)
		}
		w.deliver()
		return w.now
	}
	caughtUp := func() bool { return b.table.len() == next }
	first := loss()
	if _, ok := w.runUntil(2*time.Second, caughtUp); !ok || len(asks.at) != 1 || asks.at[0].Sub(first) > 300*time.Millisecond {
		t.Fatalf("first loss: asked at %v after it, d2 holds %d of %d", sinceFirst(append([]time.Time{first}, asks.at...)), b.table.len(), next)
	}
	second := loss()
	if _, ok := w.runUntil(5*time.Second, caughtUp); !ok || len(asks.at) != 2 || asks.at[1].Sub(asks.at[0]) < 2*time.Second {
		t.Fatalf("second loss soon after: asks at %v, d2 holds %d of %d; want the second 2 s after the first push at the earliest",
			sinceFirst(asks.at), b.table.len(), next)
	}
	if b.n.Stats().ResyncDeferred == 0 {
		t.Fatal("the held-back push was not counted")
	}
	w.run(70 * time.Second)
	third := loss()
	if _, ok := w.runUntil(2*time.Second, caughtUp); !ok || len(asks.at) != 3 || asks.at[2].Sub(third) > 300*time.Millisecond {
		t.Fatalf("loss after a quiet minute: asks %v (second loss at %v, third at %v), want the third at once",
			sinceFirst(asks.at), second.Sub(asks.at[0]), third.Sub(asks.at[0]))
	}
	// The wait starts again from 2 s (not the 8 s that would follow the second's 4 s).
	loss()
	if _, ok := w.runUntil(10*time.Second, caughtUp); !ok || len(asks.at) != 4 ||
		asks.at[3].Sub(asks.at[2]) < 2*time.Second || asks.at[3].Sub(asks.at[2]) > 3*time.Second {
		t.Fatalf("a loss soon after the third push: asks at %v, want the fourth 2 s after the third push", sinceFirst(asks.at))
	}
}

// TestHealSeenOnOneSideFirst (C9 at the protocol level): a partition heals one way
// first, so the pull d2 sends when it hears d1 again is lost. d2 repeats it after a
// peer timeout in which d1 showed no push for it; before, only loss above
// resync_threshold repeated a request, and d2 never got the 50 connections d1 made
// during the partition (the lab's TestClusterPartition: "dir2 done pushing its
// entries to dir1 after the heal: not within 30s").
func TestHealSeenOnOneSideFirst(t *testing.T) {
	w, _, b := partitioned(t)
	// d2 hears d1 again; d1 hears nothing from d2 for another 500 ms.
	w.filter = func(_ *datagram, to string) bool { return to != "d1" }
	w.run(500 * time.Millisecond)
	w.filter = nil
	if _, ok := w.runUntil(3*time.Second, func() bool { return b.table.len() == 50 }); !ok {
		t.Fatalf("after the heal d2 has %d of d1's 50 connections", b.table.len())
	}
}

// TestSourcePortsBounded: a source's records are counted by source port in at most
// maxSourcePorts places; a new port takes the place of the one heard least recently,
// counted, and the live sync's port, heard all the time, keeps its count.
func TestSourcePortsBounded(t *testing.T) {
	w := newFakeNet(t)
	a := w.add("d1", nil)
	msg := fullMessage(t)
	peer := netip.MustParseAddr("198.18.0.99")
	for i := range 10 {
		a.n.HandleSync(netip.AddrPortFrom(peer, 40000), msg, w.now)
		a.n.HandleSync(netip.AddrPortFrom(peer, uint16(50001+i)), msg, w.now)
	}
	a.n.mu.Lock()
	s := a.n.sources[peer]
	live, newest, oldest := s.portCount(40000).records, s.portCount(50010).records, s.portCount(50001).records
	a.n.mu.Unlock()
	if ev := a.n.Stats().PortsEvicted; ev != 10-(maxSourcePorts-1) || live != 400 || newest != 40 || oldest != 0 {
		t.Fatalf("evicted %d, live port %d records, newest push port %d, oldest %d; want %d, 400, 40, 0",
			ev, live, newest, oldest, 10-(maxSourcePorts-1))
	}
}
