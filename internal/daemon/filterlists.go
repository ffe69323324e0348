package daemon

import (
	"net/netip"
	"slices"
	"sync"

	"github.com/gvs-lb/gvs/dataplane/afpacket"
)

// filterView is the links' filter as the controller hands it out: its address
// lists as pseqs, so that a gvs adm command that adds or removes a VIP makes the
// next filter at the cost of the change (filterDelta), not of copying every VIP.
// The links take a whole afpacket.Filter: flat makes one (once), and the effects
// goroutine keeps one up to date with each view's change (filterMirror). A
// filterView is immutable once made and safe for concurrent use.
type filterView struct {
	vips, nat pseq[paddr]     // pointer-free entries: not scanned by the collector
	rest      afpacket.Filter // ARP, NDP, VRRP, MACs and Local; VIPs and NATRealServers unset
	// vipsGen changes whenever the VIPs do (the ingress guard follows them).
	vipsGen uint64
	flat    func() *afpacket.Filter
	// seq numbers the views in the order they are made; a view filterDelta made
	// holds its change from the view before (seq-1), delta true.
	seq    uint64
	delta  bool
	change filterChange
}

// filterChange is what a view changed in the lists of the one before.
type filterChange struct{ addVIPs, rmVIPs, addNAT, rmNAT []netip.Addr }

// filterLists are the controller's builders of the filterViews' lists.
type filterLists struct {
	vips, nat addrIndex
	gen       uint64 // the last vipsGen given
	seq       uint64 // the last view's seq
}

type addrIndex = pindex[paddr, paddr]

func addrKey(a *paddr) paddr { return *a }

// view returns the filterView of the lists now, with rest's flags, MACs and local
// addresses; vipsChanged gives it a new vipsGen. flat, if not nil, is the
// filter the view stands for (a whole commit made it).
func (l *filterLists) view(rest afpacket.Filter, vipsChanged bool, flat *afpacket.Filter) *filterView {
	if vipsChanged {
		l.gen++
	}
	l.seq++
	rest.VIPs, rest.NATRealServers = nil, nil
	v := &filterView{vips: l.vips.seq, nat: l.nat.seq, rest: rest, vipsGen: l.gen, seq: l.seq}
	if flat != nil {
		v.flat = func() *afpacket.Filter { return flat }
	} else {
		v.flat = sync.OnceValue(func() *afpacket.Filter {
			f := v.rest
			f.VIPs, f.NATRealServers = unpackAddrs(v.vips.list()), unpackAddrs(v.nat.list())
			if len(f.VIPs) == 0 {
				f.VIPs = nil // as filterFor lists none
			}
			if len(f.NATRealServers) == 0 {
				f.NATRealServers = nil
			}
			return &f
		})
	}
	return v
}

// setWhole makes f the filter (a whole commit's): the lists are rebuilt from it,
// and the view returned stands for f itself.
func (l *filterLists) setWhole(f *afpacket.Filter, cur *filterView) *filterView {
	changed := cur == nil || !slices.Equal(cur.flat().VIPs, f.VIPs)
	l.vips = newAddrIndex(f.VIPs)
	l.nat = newAddrIndex(f.NATRealServers)
	return l.view(*f, changed, f)
}

// filterMirror is the effects goroutine's afpacket.Filter: the flat lists of the
// last view it was given, brought to the next view by that view's change when
// it follows (an address removed takes the last one's place: the order of the
// lists does not matter to the links), and made again from the view's lists
// otherwise (a whole commit). The links get its Filter during SetFilter only
// (FilterSetter).
type filterMirror struct {
	seq       uint64
	vips, nat flatSet
	f         afpacket.Filter
}

// follow brings m to v and returns its filter, valid until the next follow.
func (m *filterMirror) follow(v *filterView) *afpacket.Filter {
	if !v.delta || v.seq != m.seq+1 || m.seq == 0 {
		m.vips.reset(&v.vips)
		m.nat.reset(&v.nat)
	} else {
		m.vips.apply(v.change.addVIPs, v.change.rmVIPs)
		m.nat.apply(v.change.addNAT, v.change.rmNAT)
	}
	m.seq = v.seq
	m.f = v.rest
	m.f.VIPs, m.f.NATRealServers = m.vips.list, m.nat.list
	if len(m.f.VIPs) == 0 {
		m.f.VIPs = nil // as filterFor lists none
	}
	if len(m.f.NATRealServers) == 0 {
		m.f.NATRealServers = nil
	}
	return &m.f
}

func newAddrIndex(list []netip.Addr) addrIndex {
	ps := make([]paddr, len(list))
	for i, a := range list {
		ps[i] = packAddr(a)
	}
	return newPindex(ps, addrKey)
}

// flatSet is a list of distinct addresses with the index of each (by its
// pointer-free form: a map the collector does not scan).
type flatSet struct {
	list []netip.Addr
	at   map[paddr]int
}

func (s *flatSet) reset(from *pseq[paddr]) {
	s.list = unpackAddrs(from.list())
	s.at = make(map[paddr]int, len(s.list))
	for i, a := range s.list {
		s.at[packAddr(a)] = i
	}
}

func (s *flatSet) apply(add, rm []netip.Addr) {
	for _, a := range rm {
		p := packAddr(a)
		i, ok := s.at[p]
		if !ok {
			continue
		}
		last := len(s.list) - 1
		s.list[i] = s.list[last]
		s.at[packAddr(s.list[i])] = i
		s.list = s.list[:last]
		delete(s.at, p)
	}
	for _, a := range add {
		p := packAddr(a)
		if _, ok := s.at[p]; !ok {
			s.at[p] = len(s.list)
			s.list = append(s.list, a)
		}
	}
}
