package daemon

import (
	"net/netip"
	"testing"
)

// TestPackAddr checks that a paddr gives back the address it packs, that two
// addresses pack alike only if they are equal (the maps keyed by paddr count
// each address apart), and that unmap is netip.Addr.Unmap's.
func TestPackAddr(t *testing.T) {
	list := []netip.Addr{
		{},
		netip.MustParseAddr("0.0.0.0"),
		netip.MustParseAddr("198.18.0.1"),
		netip.MustParseAddr("::"),
		netip.MustParseAddr("::ffff:198.18.0.1"),
		netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("::c612:1"), // 198.18.0.1's bytes at the end, not mapped
	}
	for i, a := range list {
		p := packAddr(a)
		if got := p.addr(); got != a {
			t.Errorf("packAddr(%v).addr() = %v", a, got)
		}
		if got, want := p.unmap().addr(), a.Unmap(); got != want {
			t.Errorf("packAddr(%v).unmap() = %v, want %v", a, got, want)
		}
		for j, b := range list {
			if (packAddr(b) == p) != (i == j) {
				t.Errorf("packAddr(%v) == packAddr(%v): %v", a, b, i != j)
			}
		}
	}
	if got := unpackAddrs([]paddr{packAddr(list[2]), packAddr(list[5])}); len(got) != 2 || got[0] != list[2] || got[1] != list[5] {
		t.Errorf("unpackAddrs = %v", got)
	}
}
