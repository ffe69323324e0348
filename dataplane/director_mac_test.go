package dataplane

import (
	"net/netip"
	"slices"
	"testing"
	"unsafe"

	"github.com/gvs-lb/gvs/ipvs"
)

// TestMACKeepsService re-applies services whose real servers' MACs come in
// (as the daemon does when it resolves them), by Apply and by ApplyDelta: each
// service stays the same object, so the index's pages are not copied (at
// 10,000 services a restore's resolutions copied every page, one by one, and
// left them as objects of their own for the collector); its dests take the
// MAC, the generation before keeps the dest as it was, and the Director
// gives the services back as applied, MACs included. A change of anything
// else still makes a new service. A new service is made with its pool, in one
// object (serviceRoom), which the MACs keep.
func TestMACKeepsService(t *testing.T) {
	d, err := New(testOptions())
	if err != nil {
		t.Fatal(err)
	}
	svc := func(i int, mac bool, weight int32) ipvs.Service {
		rs := []ipvs.RealServer{genRS(2*i, 80, weight), genRS(2*i+1, 80, 1)}
		if !mac {
			for j := range rs {
				rs[j].MAC = ipvs.MAC{}
			}
		}
		if i%2 == 0 {
			rs = rs[:1] // a lone real server (rs1)
		}
		return ipvs.Service{Key: ipvs.Key{Protocol: ipvs.TCP, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, 0, byte(1 + i)}), 80)}, Scheduler: "rr", RealServers: rs}
	}
	var bare, resolved []ipvs.Service
	for i := range 6 {
		bare, resolved = append(bare, svc(i, false, 1)), append(resolved, svc(i, true, 1))
	}
	for _, viaDelta := range []bool{false, true} {
		if err := d.Apply(bare); err != nil {
			t.Fatal(err)
		}
		before := d.snap.Load()
		was := map[ipvs.Key]*service{}
		for _, s := range before.serviceList() {
			was[s.spec.Key] = s
		}
		if viaDelta {
			err = d.ApplyDelta(resolved, nil)
		} else {
			err = d.Apply(resolved)
		}
		if err != nil {
			t.Fatal(err)
		}
		after := d.snap.Load()
		for _, s := range after.serviceList() {
			if was[s.spec.Key] != s {
				t.Fatalf("delta %v: %s is a new service after its MACs came in", viaDelta, s.spec.Key)
			}
			if room := (*serviceRoom)(unsafe.Pointer(s)); unsafe.Pointer(&room.pool) != unsafe.Pointer(s.pool) {
				t.Fatalf("delta %v: %s's pool is not made with it", viaDelta, s.spec.Key)
			}
			// A lone real server is kept in the service without a list
			// pointing into it (rs nil): no pointer for the collector.
			lone, want := s.spec.Addr.Addr().As4()[3]%2 == 1, 2 // svc(i): i even, address 1+i
			if lone {
				want = 1
			}
			if s.one != lone || (s.rs == nil) != lone || len(s.servers()) != want {
				t.Fatalf("delta %v: %s: one %v, rs %d, %d servers", viaDelta, s.spec.Key, s.one, len(s.rs), len(s.servers()))
			}
			for _, dst := range s.pool.Dests() {
				if in, old := after.dests[dst.ID()], before.dests[dst.ID()]; !in.hasMAC || old.hasMAC {
					t.Fatalf("delta %v: %s's dest %s: MAC %v after, %v before", viaDelta, s.spec.Key, dst.Addr(), in.hasMAC, old.hasMAC)
				}
			}
		}
		d.mu.Lock()
		got := d.specList()
		d.mu.Unlock()
		slices.SortFunc(got, func(a, b ipvs.Service) int { return a.Addr.Compare(b.Addr) })
		for i := range got {
			if !sameSpec(&got[i], &resolved[i]) {
				t.Fatalf("delta %v: applied %+v, want %+v", viaDelta, got[i], resolved[i])
			}
		}
		// A weight is a change of the service.
		if err := d.ApplyDelta([]ipvs.Service{svc(0, true, 5)}, nil); err != nil {
			t.Fatal(err)
		}
		for _, s := range d.snap.Load().serviceList() {
			if changed := s.spec.Key == resolved[0].Key; changed == (was[s.spec.Key] == s) {
				t.Fatalf("delta %v: %s: same service %v after a weight change of %s", viaDelta, s.spec.Key, was[s.spec.Key] == s, resolved[0].Key)
			}
		}
		if err := d.Apply(nil); err != nil {
			t.Fatal(err)
		}
	}
}
