package daemon

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestAliveSetMatchesMap sets and clears random services' liveness in an
// aliveSet and a map (the reference): after each change they hold the same
// services, and every set made earlier still holds what it held.
func TestAliveSetMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ref := map[netip.AddrPort]bool{netip.MustParseAddrPort("198.18.0.1:80"): true}
	s := newAliveSet(ref)
	type kept struct {
		s   aliveSet
		ref map[netip.AddrPort]bool
	}
	var old []kept
	for step := range 3000 {
		ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(rng.IntN(4)), byte(rng.IntN(200))}), uint16(80+rng.IntN(2)))
		if rng.IntN(9) == 0 {
			ap = netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", rng.IntN(300))), 443)
		}
		live := rng.IntN(2) == 0
		s = s.with(ap, live)
		if live {
			ref[ap] = true
		} else {
			delete(ref, ap)
		}
		if s.has(ap) != live {
			t.Fatalf("step %d: has(%s) = %v, want %v", step, ap, !live, live)
		}
		if got := s.set(); !maps.Equal(got, ref) {
			t.Fatalf("step %d: the set holds %d services, the map %d", step, len(got), len(ref))
		}
		if step%100 == 0 {
			old = append(old, kept{s, maps.Clone(ref)})
		}
	}
	for i, o := range old {
		if !maps.Equal(o.s.set(), o.ref) {
			t.Fatalf("set %d changed after it was made", i)
		}
	}
	if (aliveSet{}).has(netip.MustParseAddrPort("198.18.0.1:80")) || len((aliveSet{}).set()) != 0 {
		t.Fatal("the zero set is not empty")
	}
}
