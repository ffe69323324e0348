package daemon

import "net/netip"

// paddr is an address as the controller's tables of every service keep it (the
// filter's address counts and lists): without a pointer. A netip.Addr holds
// one, so a map or list of 10,000 of them is memory the garbage
// collector scans on each of its cycles, and each gvs adm command paid for it at
// 10,000 services (docs/design.md); a map whose keys and values hold no pointer
// is never scanned. The addresses of services and real servers have no zone (the
// config and gvs adm refuse one), so none is kept.
type paddr struct {
	b    [16]byte
	kind uint8 // 0: the zero Addr, 4: IPv4 (b holds it IPv4-mapped), 6: IPv6
}

func packAddr(a netip.Addr) paddr {
	switch {
	case a.Is4():
		return paddr{a.As16(), 4}
	case a.Is6():
		return paddr{a.As16(), 6}
	}
	return paddr{}
}

// addr returns the netip.Addr p packs.
func (p paddr) addr() netip.Addr {
	switch p.kind {
	case 4:
		return netip.AddrFrom16(p.b).Unmap()
	case 6:
		return netip.AddrFrom16(p.b)
	}
	return netip.Addr{}
}

// unmap returns p with an IPv4-mapped IPv6 address as IPv4 (netip.Addr.Unmap).
func (p paddr) unmap() paddr {
	if p.kind == 6 && netip.AddrFrom16(p.b).Is4In6() {
		p.kind = 4
	}
	return p
}

// unpackAddrs returns the netip.Addrs of ps, in a slice of their own.
func unpackAddrs(ps []paddr) []netip.Addr {
	out := make([]netip.Addr, len(ps))
	for i, p := range ps {
		out[i] = p.addr()
	}
	return out
}
