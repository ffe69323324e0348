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
// The links take a whole afpacket.Filter; flat makes it once, on the goroutine
// that needs it (the effects', which sets it on the links). A filterView is
// immutable once made and safe for concurrent use.
type filterView struct {
	vips, nat pseq[netip.Addr]
	rest      afpacket.Filter // ARP, NDP, VRRP, MACs and Local; VIPs and NATRealServers unset
	// vipsGen changes whenever the VIPs do (the ingress guard follows them).
	vipsGen uint64
	flat    func() *afpacket.Filter
}

// filterLists are the controller's builders of the filterViews' lists.
type filterLists struct {
	vips, nat addrIndex
	gen       uint64 // the last vipsGen given
}

type addrIndex = pindex[netip.Addr, netip.Addr]

func addrKey(a *netip.Addr) netip.Addr { return *a }

// view returns the filterView of the lists now, with rest's flags, MACs and local
// addresses; vipsChanged gives it a new vipsGen. flat, if not nil, is the
// filter the view stands for (a whole commit made it).
func (l *filterLists) view(rest afpacket.Filter, vipsChanged bool, flat *afpacket.Filter) *filterView {
	if vipsChanged {
		l.gen++
	}
	rest.VIPs, rest.NATRealServers = nil, nil
	v := &filterView{vips: l.vips.seq, nat: l.nat.seq, rest: rest, vipsGen: l.gen}
	if flat != nil {
		v.flat = func() *afpacket.Filter { return flat }
	} else {
		v.flat = sync.OnceValue(func() *afpacket.Filter {
			f := v.rest
			f.VIPs, f.NATRealServers = v.vips.list(), v.nat.list()
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
	l.vips = newPindex(f.VIPs, addrKey)
	l.nat = newPindex(f.NATRealServers, addrKey)
	return l.view(*f, changed, f)
}
