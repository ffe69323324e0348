package dataplane

import (
	"net/netip"
	"testing"

	"github.com/gvs-lb/gvs/ipvs"
)

// TestTrashOfDeletedServicesIsDropped adds services of fresh addresses with two
// real servers, deletes one real server (it goes to the trash: a re-add of it
// revives its counters) and then the service, many times: the trash holds only
// the dests of running services, so a churn of services does not grow it. A real
// server deleted and added back to a running service still revives its dest.
func TestTrashOfDeletedServicesIsDropped(t *testing.T) {
	d := mustNew(t)
	rs := func(b byte) ipvs.RealServer {
		return ipvs.RealServer{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, 0, b}), 80), Weight: 1, Method: ipvs.DR}
	}
	trashed := func() (n int) {
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, t := range d.trash {
			n += len(t)
		}
		return n
	}
	for i := range 2000 {
		vip := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(64 + i/250), byte(1 + i%250)}), 80)
		svc := ipvs.Service{Key: ipvs.AddrKey(ipvs.TCP, vip), Scheduler: "rr", RealServers: []ipvs.RealServer{rs(1), rs(2)}}
		if err := d.ApplyDelta([]ipvs.Service{svc}, nil); err != nil {
			t.Fatalf("service %d: %v", i, err)
		}
		idOf := func(addr netip.AddrPort) uint32 {
			for _, v := range d.Services() {
				for _, dv := range v.Dests {
					if v.Spec.Key == svc.Key && netip.AddrPortFrom(dv.Addr, dv.Port) == addr {
						return dv.ID
					}
				}
			}
			t.Fatalf("service %d: no dest %s", i, addr)
			return 0
		}
		id2 := idOf(rs(2).Addr)
		svc.RealServers = svc.RealServers[:1]
		if err := d.ApplyDelta([]ipvs.Service{svc}, nil); err != nil {
			t.Fatalf("service %d: %v", i, err)
		}
		if n := trashed(); n != 1 {
			t.Fatalf("service %d: %d dests in the trash, want the one deleted", i, n)
		}
		if i%100 == 0 { // added back: the same dest
			svc.RealServers = append(svc.RealServers, rs(2))
			if err := d.ApplyDelta([]ipvs.Service{svc}, nil); err != nil {
				t.Fatalf("service %d: %v", i, err)
			}
			if got := idOf(rs(2).Addr); got != id2 {
				t.Fatalf("service %d: real server added back has dest %d, want %d (revived)", i, got, id2)
			}
			if n := trashed(); n != 0 {
				t.Fatalf("service %d: %d dests in the trash after the revival", i, n)
			}
		}
		if err := d.ApplyDelta(nil, []ipvs.Key{svc.Key}); err != nil {
			t.Fatalf("service %d: %v", i, err)
		}
		if n := trashed(); n != 0 {
			t.Fatalf("service %d: %d dests in the trash of deleted services", i, n)
		}
	}
	d.mu.Lock()
	n := len(d.trash)
	d.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d services' trash kept after they were deleted", n)
	}
}
