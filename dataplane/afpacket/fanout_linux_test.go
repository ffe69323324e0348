//go:build linux

package afpacket

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/header"
)

// TestRingSteering opens two rings in one fanout group and sends, for many flows, a
// request from the client to the VIP and the NAT reply from the real server to the
// client, interleaved: every frame of a flow, both directions, must arrive on one
// ring, and both rings must get flows. With the kernel's flow hash the reply of about
// half the flows would land on the other ring.
func TestRingSteering(t *testing.T) {
	l, gen, dir := rlPair(t)
	id := rlFanoutID()
	rings := []*Ring{
		l.openRing(dir, "eth0", Config{Packets: 4096, FanoutID: id, Filter: rlDirFilter()}),
		l.openRing(dir, "eth0", Config{Packets: 4096, FanoutID: id, Filter: rlDirFilter()}),
	}
	for _, r := range rings {
		rlWatchdog(t, r, 10*time.Second)
		if err := r.Steering(); err != nil {
			t.Fatalf("steering: %v", err)
		}
	}
	const flows, rounds = 64, 2
	var frames [][]byte
	flowOf := func(cport uint16) int { return int(cport) - 20000 }
	for i := range rounds {
		for f := range flows {
			client := netip.AddrFrom4([4]byte{198, 19, 1, byte(f)})
			cport := uint16(20000 + f)
			frames = append(frames,
				rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(client, rlVIP, 17, uint16(i), 0, rlUDP(cport, 80, []byte("request"))))),
				rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlRS, client, 17, uint16(i), 0, rlUDP(8080, cport, []byte("reply"))))))
		}
	}
	l.raw(gen, "eth0").send(frames...)

	want := int64(len(frames))
	var total atomic.Int64
	got := make([][][]byte, len(rings))
	errs := make([]error, len(rings))
	var wg sync.WaitGroup
	for i, r := range rings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]dataplane.Frame, r.BatchSize())
			for {
				n, err := r.ReadBatch(buf)
				if err != nil {
					errs[i] = err
					return
				}
				for _, f := range buf[:n] {
					got[i] = append(got[i], append([]byte(nil), f.Bytes()...))
				}
				if total.Add(int64(n)) >= want {
					for _, o := range rings {
						o.Close()
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := total.Load(); n != want {
		t.Fatalf("received %d frames, want %d (errors %v)", n, want, errs)
	}
	owner := map[int]int{}
	for i := range rings {
		requests, replies := 0, 0
		for _, b := range got[i] {
			var p header.Parsed
			if d := p.Decode(b); d != header.DropNone {
				t.Fatalf("ring %d: undecodable frame (%v): % x", i, d, b)
			}
			f := flowOf(p.SrcPort)
			if p.SrcPort == 8080 {
				f, replies = flowOf(p.DstPort), replies+1
			} else {
				requests++
			}
			if o, ok := owner[f]; ok && o != i {
				t.Errorf("flow %d on rings %d and %d (this frame from port %d)", f, o, i, p.SrcPort)
			}
			owner[f] = i
		}
		if requests == 0 {
			t.Errorf("ring %d got no flow: the group did not spread", i)
		}
		t.Logf("ring %d: %d requests, %d replies", i, requests, replies)
	}
	if len(owner) != flows {
		t.Errorf("%d flows seen, want %d", len(owner), flows)
	}
}

// TestRingSteeringFallback: with more NAT real servers than the steering program
// tests, the group still steers requests and says why replies are not steered; a
// filter with few again makes it steer them.
func TestRingSteeringFallback(t *testing.T) {
	l, _, dir := rlPair(t)
	r := l.openRing(dir, "eth0", Config{Packets: 256, FanoutID: rlFanoutID(), Filter: rlDirFilter()})
	many := rlDirFilter()
	for i := range 300 {
		many.NATRealServers = append(many.NATRealServers, netip.AddrFrom4([4]byte{198, 18, 3 + byte(i>>8), byte(i)}))
	}
	if err := r.SetFilter(many); err != nil {
		t.Fatal(err)
	}
	if err := r.Steering(); err == nil {
		t.Error("300 NAT real servers steered, want a reason why not")
	} else {
		t.Log(err)
	}
	if err := r.SetFilter(rlDirFilter()); err != nil {
		t.Fatal(err)
	}
	if err := r.Steering(); err != nil {
		t.Errorf("steering after the filter shrank: %v", err)
	}
}
