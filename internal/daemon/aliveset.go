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
// 2 at 10,000 live services), not a share of every live service. The entries
// hold no pointer (aliveKey), and a set built whole keeps its leaves in one
// array, each capped at its end, so that the collector marks one object for
// them, which it does not scan, instead of one per leaf (4,085 of 4,149 objects
// at 10,000 live services), on each of its cycles. The zero value is the empty
// set.
type aliveSet struct {
	top *[aliveFan]*[aliveFan][]aliveKey
}

// aliveKey is a service's address and port as an aliveSet keeps it: without a
// pointer (paddr).
type aliveKey struct {
	a    paddr
	port uint16
}

func packAddrPort(ap netip.AddrPort) aliveKey {
	return aliveKey{packAddr(ap.Addr()), ap.Port()}
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

// newAliveSet returns the set of m's live services, its leaves in one array
// (the second-level lists in one more).
func newAliveSet(m map[netip.AddrPort]bool) aliveSet {
	var counts [aliveFan][aliveFan]int32
	var rows [aliveFan]int32
	n, mids := 0, 0
	for ap, live := range m {
		if live {
			i, j := aliveSlot(ap)
			if rows[i] == 0 {
				mids++
			}
			counts[i][j]++
			rows[i]++
			n++
		}
	}
	if n == 0 {
		return aliveSet{}
	}
	s := aliveSet{top: new([aliveFan]*[aliveFan][]aliveKey)}
	midArr := make([][aliveFan][]aliveKey, mids)
	all := make([]aliveKey, n)
	for i := range counts {
		for j, c := range counts[i] {
			if c == 0 {
				continue
			}
			if s.top[i] == nil {
				s.top[i], midArr = &midArr[0], midArr[1:]
			}
			s.top[i][j], all = all[:0:c], all[c:]
		}
	}
	for ap, live := range m {
		if live {
			i, j := aliveSlot(ap)
			s.top[i][j] = append(s.top[i][j], packAddrPort(ap)) // within its capacity
		}
	}
	return s
}

// leaf returns the list ap would be in (nil if there is none).
func (s aliveSet) leaf(ap netip.AddrPort) []aliveKey {
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
func (s aliveSet) has(ap netip.AddrPort) bool {
	return slices.Contains(s.leaf(ap), packAddrPort(ap))
}

// with returns s with ap's liveness set to live, s unchanged.
func (s aliveSet) with(ap netip.AddrPort, live bool) aliveSet {
	old := s.leaf(ap)
	k := packAddrPort(ap)
	at := slices.Index(old, k)
	if (at >= 0) == live {
		return s
	}
	var leaf []aliveKey
	if live {
		leaf = append(slices.Clip(old), k) // copies: old is full to its capacity
	} else if len(old) > 1 {
		leaf = slices.Delete(slices.Clone(old), at, at+1)
	}
	out := aliveSet{top: new([aliveFan]*[aliveFan][]aliveKey)}
	if s.top != nil {
		*out.top = *s.top
	}
	i, j := aliveSlot(ap)
	mid := new([aliveFan][]aliveKey)
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
				for _, k := range leaf {
					m[netip.AddrPortFrom(k.a.addr(), k.port)] = true
				}
			}
		}
	}
	return m
}
