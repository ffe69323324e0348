package dataplane

import "net/netip"

// addrSet is a small set of IP addresses tuned for the per-packet "is this a VIP?"
// test: a handful of addresses are scanned linearly (a few ns, no hashing); larger
// sets fall back to a map. The zero value is an empty set; it is immutable once
// published in a snapshot.
type addrSet struct {
	small []addrEntry
	big   map[addrEntry]struct{}
}

type addrEntry struct {
	a  [16]byte
	v6 bool
}

const addrSetLinear = 16

func (s *addrSet) add(a netip.Addr) {
	if !a.IsValid() {
		return
	}
	a = a.Unmap()
	e := addrEntry{v6: a.Is6()}
	if e.v6 {
		e.a = a.As16()
	} else {
		b := a.As4()
		copy(e.a[:4], b[:])
	}
	if s.contains(&e.a, e.v6) {
		return
	}
	if s.big != nil {
		s.big[e] = struct{}{}
		return
	}
	s.small = append(s.small, e)
	if len(s.small) > addrSetLinear {
		s.big = make(map[addrEntry]struct{}, len(s.small))
		for _, x := range s.small {
			s.big[x] = struct{}{}
		}
		s.small = nil
	}
}

// contains reports whether the raw address (IPv4 in the first 4 bytes, the rest zero)
// is in the set.
func (s *addrSet) contains(a *[16]byte, v6 bool) bool {
	if s.big != nil {
		_, ok := s.big[addrEntry{*a, v6}]
		return ok
	}
	for i := range s.small {
		e := &s.small[i]
		if e.v6 != v6 {
			continue
		}
		if !v6 {
			if e.a[0] == a[0] && e.a[1] == a[1] && e.a[2] == a[2] && e.a[3] == a[3] {
				return true
			}
			continue
		}
		if e.a == *a {
			return true
		}
	}
	return false
}
