package daemon

import (
	"encoding/binary"
	"maps"
	"net/netip"
)

// aliveSet is track_service's liveness: the addresses (and ports) of the services
// with a live real server. The controller publishes it for VRRP's and cluster
// mode's goroutines, so it is immutable once made; it is kept in shards so that a
// gvs adm command that changes one service's liveness copies one shard (and the
// shard list), not every live service. The zero value is the empty set.
type aliveSet struct {
	shards *[aliveShards]map[netip.AddrPort]struct{}
}

const aliveShards = 64

func aliveShard(ap netip.AddrPort) int {
	a := ap.Addr().As16()
	h := binary.LittleEndian.Uint64(a[:8]) ^ binary.LittleEndian.Uint64(a[8:])*0x9e3779b97f4a7c15 ^ uint64(ap.Port())
	return int((h * 0xc2b2ae3d27d4eb4f) >> 58) // the top 6 bits: aliveShards
}

func newAliveSet(m map[netip.AddrPort]bool) aliveSet {
	var s aliveSet
	for ap, live := range m {
		if live {
			if s.shards == nil {
				s.shards = new([aliveShards]map[netip.AddrPort]struct{})
			}
			sh := &s.shards[aliveShard(ap)]
			if *sh == nil {
				*sh = map[netip.AddrPort]struct{}{}
			}
			(*sh)[ap] = struct{}{}
		}
	}
	return s
}

// has reports whether the service at ap has a live real server.
func (s aliveSet) has(ap netip.AddrPort) bool {
	if s.shards == nil {
		return false
	}
	_, ok := s.shards[aliveShard(ap)][ap]
	return ok
}

// with returns s with ap's liveness set to live, s unchanged.
func (s aliveSet) with(ap netip.AddrPort, live bool) aliveSet {
	if s.has(ap) == live {
		return s
	}
	out := aliveSet{shards: new([aliveShards]map[netip.AddrPort]struct{})}
	if s.shards != nil {
		*out.shards = *s.shards
	}
	i := aliveShard(ap)
	sh := maps.Clone(out.shards[i])
	if sh == nil {
		sh = map[netip.AddrPort]struct{}{}
	}
	if live {
		sh[ap] = struct{}{}
	} else {
		delete(sh, ap)
	}
	out.shards[i] = sh
	return out
}

// set returns the live services as a map (listings, tests).
func (s aliveSet) set() map[netip.AddrPort]bool {
	m := map[netip.AddrPort]bool{}
	if s.shards != nil {
		for _, sh := range s.shards {
			for ap := range sh {
				m[ap] = true
			}
		}
	}
	return m
}
