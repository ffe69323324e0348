package dataplane

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/ipvs"
)

// TestOnePassMatchesTwoPass sends the same random packets — SYNs, ACKs, FINs, RSTs,
// SYN+RSTs and UDP datagrams from a few clients to a plain, a persistent, a one-packet
// UDP and a weight-0 service and to a port without one — through two Directors: one
// makes new connections in one pass (InOrInsert with the worker's Pick), the other
// looks up, then schedules and inserts. Every frame sent, every counter and the
// connection table must be the same.
func TestOnePassMatchesTwoPass(t *testing.T) {
	plain := rrService(ipvs.DR, 80)
	persist := rrService(ipvs.NAT, 8080)
	persist.Key = ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(dtVIP, 443))
	persist.Persistence = 30 * time.Second
	ops := rrService(ipvs.DR, 53)
	ops.Key = ipvs.AddrKey(ipvs.UDP, netip.AddrPortFrom(dtVIP, 53))
	ops.OPS = true
	udp := rrService(ipvs.DR, 54)
	udp.Key = ipvs.AddrKey(ipvs.UDP, netip.AddrPortFrom(dtVIP, 54))
	quiet := rrService(ipvs.DR, 90)
	quiet.Key = ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(dtVIP, 90))
	for i := range quiet.RealServers {
		quiet.RealServers[i].Weight = 0
	}
	svcs := []ipvs.Service{plain, persist, ops, udp, quiet}
	a := newHarness(t, testOptions(), svcs...)
	b := newHarness(t, testOptions(), svcs...)
	b.w.twoPass = true
	clients := []netip.Addr{dtClient, netip.MustParseAddr("198.19.0.8"), netip.MustParseAddr("198.19.1.9")}
	rng := rand.New(rand.NewPCG(5, 6))
	now := int64(0)
	for i := range 3000 {
		p := dtPkt{src: clients[rng.IntN(len(clients))], dst: dtVIP, sport: uint16(1000 + rng.IntN(4))}
		p.dport = []uint16{80, 80, 80, 443, 443, 53, 54, 90, 91}[rng.IntN(9)]
		if p.dport == 53 || p.dport == 54 {
			p.udp = true
		} else {
			switch rng.IntN(6) {
			case 0, 1:
				p.syn = true
			case 2:
				p.ack = true
			case 3:
				p.fin, p.ack = true, true
			case 4:
				p.rst = true
			case 5:
				p.syn, p.rst = true, true
			}
		}
		now += int64(rng.IntN(3000)) * int64(time.Millisecond)
		sameRun(t, a, b, i, p, p.frame(t), now)
	}
	sameEnd(t, a, b)
	// The run must have made connections both ways and dropped for every reason the
	// one-pass path decides itself.
	for _, r := range []Reason{ReasonNotSYN, ReasonNoService, ReasonNoDest} {
		if a.w.C.Reasons[r] == 0 {
			t.Errorf("no packet was dropped for %v", r)
		}
	}
	if a.w.sstats[0].Conns == 0 || a.w.sstats[1].Conns == 0 || a.w.sstats[2].Conns == 0 {
		t.Errorf("connections per service: %+v", a.w.sstats)
	}
}

// sameRun runs frame (packet i, p) through harnesses a and b at now, which must
// send the same frames and count the same.
func sameRun(t *testing.T, a, b *harness, i int, p dtPkt, frame []byte, now int64) {
	t.Helper()
	ga, gb := a.run(frame, now), b.run(frame, now)
	if len(ga) != len(gb) {
		t.Fatalf("packet %d (%+v): a sent %d frames, b %d (reasons %v / %v)", i, p, len(ga), len(gb), a.w.C.Reasons, b.w.C.Reasons)
	}
	for j := range ga {
		if !bytes.Equal(ga[j], gb[j]) {
			t.Fatalf("packet %d (%+v): frame %d differs:\n% x\n% x", i, p, j, ga[j], gb[j])
		}
	}
	if a.w.C != b.w.C {
		t.Fatalf("packet %d (%+v): counters differ:\n%+v\n%+v", i, p, a.w.C, b.w.C)
	}
}

// sameEnd compares what harnesses a and b hold after the same run: the per-dest and
// per-service counters and the connection table.
func sameEnd(t *testing.T, a, b *harness) {
	t.Helper()
	for id := range a.w.dstats {
		if a.w.dstats[id] != b.w.dstats[id] {
			t.Fatalf("dest %d stats: %+v vs %+v", id, a.w.dstats[id], b.w.dstats[id])
		}
	}
	for id := range a.w.sstats {
		if a.w.sstats[id] != b.w.sstats[id] {
			t.Fatalf("service %d stats: %+v vs %+v", id, a.w.sstats[id], b.w.sstats[id])
		}
	}
	conns := func(h *harness) []conntrack.Conn {
		var cs []conntrack.Conn
		h.d.Table().Each(func(c *conntrack.Conn) bool {
			c.Ref, c.Control = 0, min(c.Control, 1)
			cs = append(cs, *c)
			return true
		})
		return cs
	}
	ca, cb := conns(a), conns(b)
	if len(ca) != len(cb) {
		t.Fatalf("%d connections vs %d", len(ca), len(cb))
	}
	for i := range ca {
		if ca[i] != cb[i] {
			t.Fatalf("connection %d:\n%+v\n%+v", i, ca[i], cb[i])
		}
	}
}

// TestOnePassPacketOfScheduler: the one-pass path fills the scheduler's packet
// for the schedulers that read it (sh, mh, dh, lblc, lblcr: sched.ReadsPacket)
// and not for the others: SYNs from random clients go where the two-pass path,
// which always fills it, sends them, and those choosing by the client use both
// real servers. It fails when Pick fills the packet for no service.
func TestOnePassPacketOfScheduler(t *testing.T) {
	for _, name := range []string{"sh", "mh", "dh", "lblc", "lblcr", "wlc", "rr"} {
		svc := rrService(ipvs.DR, 80)
		svc.Scheduler = name
		a := newHarness(t, testOptions(), svc)
		b := newHarness(t, testOptions(), svc)
		b.w.twoPass = true
		rng := rand.New(rand.NewPCG(7, 8))
		seen := map[ipvs.MAC]bool{}
		for i := range 200 {
			p := dtPkt{src: netip.AddrFrom4([4]byte{198, 19, byte(rng.IntN(256)), byte(rng.IntN(256))}), dst: dtVIP, sport: uint16(1024 + rng.IntN(60000)), dport: 80, syn: true}
			frame := p.frame(t)
			ga, gb := a.run(frame, int64(i)*int64(time.Millisecond)), b.run(frame, int64(i)*int64(time.Millisecond))
			if len(ga) != 1 || len(gb) != 1 || !bytes.Equal(ga[0], gb[0]) {
				t.Fatalf("%s: SYN %d from %v: one pass sent %x, two passes %x", name, i, p.src, ga, gb)
			}
			seen[ipvs.MAC(ga[0][:6])] = true
		}
		// dh, lblc and lblcr choose by the destination, the one VIP here.
		if byClient := name != "dh" && name != "lblc" && name != "lblcr"; byClient && len(seen) != 2 {
			t.Errorf("%s: 200 clients' SYNs went to %d real servers", name, len(seen))
		}
	}
}
