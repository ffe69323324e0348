package daemon

import (
	"encoding/binary"
	"net/netip"
	"slices"
)

// aliveSet is track_service's liveness: the addresses (and ports) of the services
// with a live real server. The controller publishes it for VRRP's and cluster
// mode's goroutines, so it is immutable once made. It is a two-level radix of 64
// by 64 leaves, each a short list: a gvs adm command that changes one service's
// liveness copies two lists of 64 pointers and one leaf of a few entries (about
// 2 at 10,000 live services), not a share of every live service. The zero value
// is the empty set.
type aliveSet struct {
	top *[aliveFan]*[aliveFan][]netip.AddrPort
}

const (
	aliveBits = 6
	aliveFan  = 1 << aliveBits
)

// aliveSlot returns the top and second-level index of ap's leaf.
func aliveSlot(ap netip.AddrPort) (int, int) {
	a := ap.Addr().As16()
	h := binary.LittleEndian.Uint64(a[:8]) ^ binary.LittleEndian.Uint64(a[8:])*0x9e3779b97f4a7c15 ^ uint64(ap.Port())
	h *= 0xc2b2ae3d27d4eb4f
	return int(h >> (64 - aliveBits)), int(h>>(64-2*aliveBits)) & (aliveFan - 1)
}

func newAliveSet(m map[netip.AddrPort]bool) aliveSet {
	var s aliveSet
	for ap, live := range m {
		if !live {
			continue
		}
		if s.top == nil {
			s.top = new([aliveFan]*[aliveFan][]netip.AddrPort)
		}
		i, j := aliveSlot(ap)
		if s.top[i] == nil {
			s.top[i] = new([aliveFan][]netip.AddrPort)
		}
		s.top[i][j] = append(s.top[i][j], ap)
	}
	return s
}

// leaf returns the list ap would be in (nil if there is none).
func (s aliveSet) leaf(ap netip.AddrPort) []netip.AddrPort {
	if s.top == nil {
		return nil
	}
	i, j := aliveSlot(ap)
	if s.top[i] == nil {
		return nil
	}
	return s.top[i][j]
}

// has reports whether the service at ap has a live real server.
func (s aliveSet) has(ap netip.AddrPort) bool { return slices.Contains(s.leaf(ap), ap) }

// with returns s with ap's liveness set to live, s unchanged.
func (s aliveSet) with(ap netip.AddrPort, live bool) aliveSet {
	old := s.leaf(ap)
	at := slices.Index(old, ap)
	if (at >= 0) == live {
		return s
	}
	var leaf []netip.AddrPort
	if live {
		leaf = append(slices.Clip(old), ap) // copies: old is full to its capacity
	} else if len(old) > 1 {
		leaf = slices.Delete(slices.Clone(old), at, at+1)
	}
	out := aliveSet{top: new([aliveFan]*[aliveFan][]netip.AddrPort)}
	if s.top != nil {
		*out.top = *s.top
	}
	i, j := aliveSlot(ap)
	mid := new([aliveFan][]netip.AddrPort)
	if out.top[i] != nil {
		*mid = *out.top[i]
	}
	mid[j] = leaf
	out.top[i] = mid
	return out
}

// set returns the live services as a map (listings, tests).
func (s aliveSet) set() map[netip.AddrPort]bool {
	m := map[netip.AddrPort]bool{}
	if s.top != nil {
		for _, mid := range s.top {
			if mid == nil {
				continue
			}
			for _, leaf := range mid {
				for _, ap := range leaf {
					m[ap] = true
				}
			}
		}
	}
	return m
}
