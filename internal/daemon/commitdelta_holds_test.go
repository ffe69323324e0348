package daemon

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/gvs-lb/gvs/ipvs"
)

// TestHoldsAllMatchesHoldsOf: the counts a large delta makes once (holdsAll) are
// the ones holdsOf counts for each address: services with VIPs (IPv4, IPv6 and
// IPv4-mapped forms of one address), match addresses, NAT real servers (also at
// another service's VIP) and direct-routing ones (not held), and nil entries.
func TestHoldsAllMatchesHoldsOf(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 21))
	addr := func() netip.Addr {
		a := netip.AddrFrom4([4]byte{198, 18, 0, byte(1 + r.IntN(12))})
		switch r.IntN(4) {
		case 0:
			return netip.AddrFrom16(a.As16()) // its IPv4-mapped form
		case 1:
			return netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", 1+r.IntN(4)))
		}
		return a
	}
	for round := range 50 {
		olds := make([]*ipvs.Service, 40+r.IntN(40))
		for i := range olds {
			if r.IntN(8) == 0 {
				continue // nil: no configured service
			}
			s := &ipvs.Service{Key: ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(addr(), 80))}
			if r.IntN(5) == 0 {
				s.Key = ipvs.MarkKey(uint32(1+i), false)
				s.Match = []ipvs.Match{{Addr: addr()}, {Addr: addr()}}
			}
			for range r.IntN(3) {
				m := ipvs.NAT
				if r.IntN(2) == 0 {
					m = ipvs.DR
				}
				s.RealServers = append(s.RealServers, ipvs.RealServer{Addr: netip.AddrPortFrom(addr(), 8080), Method: m})
			}
			olds[i] = s
		}
		all := holdsAll(olds)
		seen := 0
		for a, n := range all {
			if n != holdsOf(olds, a) {
				t.Fatalf("round %d: %v: holdsAll %d, holdsOf %d", round, a.addr(), n, holdsOf(olds, a))
			}
		}
		for range 64 {
			a := packAddr(addr()).unmap()
			if got, want := all[a], holdsOf(olds, a); got != want {
				t.Fatalf("round %d: %v: holdsAll %d, holdsOf %d", round, a.addr(), got, want)
			}
			if all[a] > 0 {
				seen++
			}
		}
		if seen == 0 {
			t.Fatalf("round %d: no address held (the test compares zeros)", round)
		}
	}
}
