package dataplane

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/ipvs"
)

// TestServiceMemoMatchesIndex holds the worker's service memo to the generation's
// own lookup (snapshot.service): random tables of services on a few shared VIPs
// (fwmark rules, port 0, port 21 among them: every step of §5.8's order), each
// applied as a new generation, and flows drawn from a small set of protocols,
// families, VIPs and ports, so that consecutive flows often differ in one field
// alone; after each change, flows asked of the generation before it too. Fails when
// the memo answers a flow that differs from the last in any field the lookup reads,
// or answers one generation with another's service.
func TestServiceMemoMatchesIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(32, 2))
	d := mustNew(t)
	w := d.NewWorker(8)
	var table []ipvs.Service
	var old *snapshot
	hits := 0
	for step := range 60 {
		for range 1 + rng.IntN(3) {
			s := genService(rng)
			if i := slices.IndexFunc(table, func(x ipvs.Service) bool { return x.Key == s.Key }); i >= 0 {
				table = slices.Delete(table, i, i+1)
			} else {
				table = append(table, s)
			}
		}
		if err := d.Apply(table); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		s := w.newest()
		if w.svcMemo != (svcMemo{}) {
			t.Fatalf("step %d: the memo kept the generation before", step)
		}
		for range 200 {
			gs := s
			if old != nil && rng.IntN(4) == 0 {
				gs = old
			}
			proto := []uint8{header.IPProtoTCP, header.IPProtoUDP}[rng.IntN(2)]
			vport := []uint16{0, 20, 21, 80, 81, 82, 443, 2000}[rng.IntN(8)]
			cport := uint16(1024 + rng.IntN(4))
			vaddr := [16]byte{198, 18, 1, byte(1 + rng.IntN(3))}
			w.setKey(proto, false, &[16]byte{198, 18, 0, 9}, cport, &vaddr, vport)
			switch rng.IntN(8) {
			case 0: // IPv6
				vaddr = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(1 + rng.IntN(2))}
				w.setKey(proto, true, &[16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 9}, cport, &vaddr, vport)
			case 1: // IPv6 with the bytes of an IPv4 flow's key: the family alone differs
				vaddr = w.key.VAddr
				w.setKey(proto, true, &[16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 9}, cport, &vaddr, vport)
			}
			k := w.key
			memo := w.svcMemo
			if got, want := w.service(gs, &k), gs.service(&k); got != want {
				t.Fatalf("step %d: flow %+v (memo %+v): the memo answered %p, the generation %p", step, k, memo, got, want)
			}
			if memo.s == gs && memo.vaddr == k.VAddr && memo.vport == k.VPort && memo.proto == k.Proto && memo.v6 == k.IPv6 {
				hits++
			}
		}
		old = s
	}
	if hits == 0 {
		t.Fatal("the memo never answered: the test tells nothing")
	}
}

// TestServiceMemoNewGeneration: a flow's service comes from the generation its
// packet runs on, not from a memo of the one before (a SYN to a port whose service
// was deleted, the VIP kept by another, is not scheduled; one re-added is).
func TestServiceMemoNewGeneration(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	syn := func(sport uint16) int {
		return len(h.run(dtPkt{src: dtClient, dst: dtVIP, sport: sport, dport: 80, syn: true}.frame(t), 0))
	}
	if syn(1) != 1 {
		t.Fatal("the first SYN was not sent")
	}
	other := rrService(ipvs.DR, 80)
	other.Key = ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(dtVIP, 443))
	if err := h.d.Apply([]ipvs.Service{other}); err != nil {
		t.Fatal(err)
	}
	if n := syn(2); n != 0 || h.w.C.Reasons[ReasonNoService] != 1 {
		t.Fatalf("a SYN after the service's deletion: %d frames sent, %d counted no service", n, h.w.C.Reasons[ReasonNoService])
	}
	if err := h.d.Apply([]ipvs.Service{other, rrService(ipvs.DR, 80)}); err != nil {
		t.Fatal(err)
	}
	if syn(3) != 1 {
		t.Fatal("a SYN after the service came back was not sent")
	}
}
