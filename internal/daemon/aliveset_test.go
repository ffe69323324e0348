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

// TestAliveSetWholeShared builds a set whole (its leaves in one array), then
// sets and clears a service's liveness in every leaf: the set built is never
// written (each leaf is capped at its end, so a change copies it instead of
// writing the next leaf's entries), and the build makes three objects
// whatever the set holds (the top list, the second-level lists, the leaves).
func TestAliveSetWholeShared(t *testing.T) {
	ref := map[netip.AddrPort]bool{}
	for i := range 20_000 {
		ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 80)
		if i%7 == 0 {
			ap = netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i)), 443)
		}
		ref[ap] = i%11 != 0 // some not live: not in the set
	}
	live := maps.Clone(ref)
	maps.DeleteFunc(live, func(_ netip.AddrPort, l bool) bool { return !l })
	s := newAliveSet(ref)
	if got := s.set(); !maps.Equal(got, live) {
		t.Fatalf("the set built holds %d services, want %d", len(got), len(live))
	}
	for ap, l := range ref {
		if s.has(ap) != l {
			t.Fatalf("has(%s) = %v, want %v", ap, !l, l)
		}
	}
	// A new service in every leaf, then each one removed again from the set
	// with it, and a live one removed from the set built.
	for i := range 60_000 {
		ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), uint16(8000+i%3))
		with := s.with(ap, true)
		if !with.has(ap) || s.has(ap) {
			t.Fatalf("%s: in the set with it %v, in the set built %v", ap, with.has(ap), s.has(ap))
		}
		if with.with(ap, false).has(ap) {
			t.Fatalf("%s: still in the set after it was cleared", ap)
		}
	}
	for ap, l := range ref {
		if l && s.with(ap, false).has(ap) {
			t.Fatalf("%s: still live after it was cleared", ap)
		}
	}
	if got := s.set(); !maps.Equal(got, live) {
		t.Fatalf("the set built changed: %d services, want %d", len(got), len(live))
	}
	if n := testing.AllocsPerRun(3, func() { newAliveSet(ref) }); n > 3 {
		t.Fatalf("building a set of %d services made %.0f objects, want 3", len(live), n)
	}
}
