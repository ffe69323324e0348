package dataplane

import (
	"net/netip"
	"slices"

	"github.com/gvs-lb/gvs/ipvs"
)

// nextGen holds the Director's next generation between publications, kept across
// generations so that a change updates only what it touches: the service index and
// the address sets are paged tables that share unwritten pages with the published
// generations, the dests slice is shared with them up to the length published (a
// published slice is capped there, so appending never writes what a generation can
// see, and a write below it copies first), and the flags and mark rules are kept
// from counts. The services are found through the index (snapshot.serviceList), not
// a slice by id that a deletion would copy. freeze makes the snapshot. Every method
// runs under the Director's mu.
type nextGen struct {
	idx        svcIndexBuilder
	vips       addrSetBuilder // service addresses and fwmark match addresses, counted per service
	nat        addrSetBuilder // addresses of available NAT dests, counted per dest
	natIn      []bool         // by dest id: counted in nat
	touched    []uint32       // dests whose info or availability changed since syncNAT
	port0, ftp int            // services listening on every port, FTP control services
	markSvcs   map[svcKey]*service
	marks      []markRule // immutable once published: rebuilt when an fwmark service changes
	marksStale bool
	nsvc       uint32 // ids below it were handed out
	destsPub   int    // the Director's dests[:destsPub] is shared with published generations
}

func (g *nextGen) init() { g.markSvcs = map[svcKey]*service{} }

// put adds svc, stored under its key, to the next generation.
func (g *nextGen) put(svc *service) {
	g.idx.put(svc)
	g.holders(svc, g.vips.add, 1)
	g.nsvc = max(g.nsvc, svc.id+1)
}

// drop removes svc, stored under k, from the next generation (put may store its
// successor under k next).
func (g *nextGen) drop(k svcKey, svc *service) {
	g.idx.del(k)
	g.holders(svc, g.vips.remove, -1)
	if svc.spec.FWMark != 0 {
		delete(g.markSvcs, k)
	}
}

// holders counts svc's addresses and flags in (add) or out (remove) of the next
// generation.
func (g *nextGen) holders(svc *service, f func(a netip.Addr), n int) {
	if svc.spec.FWMark != 0 {
		for _, m := range svc.spec.Match {
			f(m.Addr)
		}
		if n > 0 {
			g.markSvcs[svc.key] = svc
		}
		g.marksStale = true
		return
	}
	f(svc.spec.Addr.Addr())
	if svc.spec.Addr.Port() == 0 {
		g.port0 += n
	}
	if svc.spec.Addr.Port() == 21 && svc.spec.Protocol == ipvs.TCP {
		g.ftp += n
	}
}

// touchDest notes that dest id's info or availability changed.
func (g *nextGen) touchDest(id uint32) { g.touched = append(g.touched, id) }

// syncNAT brings the NAT real servers' address set up to the touched dests.
func (g *nextGen) syncNAT(dests []destInfo) {
	for _, id := range g.touched {
		for int(id) >= len(g.natIn) {
			g.natIn = append(g.natIn, false)
		}
		in := &dests[id]
		want := in.method == ipvs.NAT && in.d.Available()
		if want == g.natIn[id] {
			continue
		}
		g.natIn[id] = want
		if want {
			g.nat.add(in.d.Addr())
		} else {
			g.nat.remove(in.d.Addr())
		}
	}
	g.touched = g.touched[:0]
}

// freeze returns the next generation's snapshot (without its settings and
// number), sharing everything with the builder, which copies before writing.
func (g *nextGen) freeze(dests []destInfo) *snapshot {
	if g.marksStale {
		var marks []markRule
		for _, svc := range g.markSvcs {
			for _, m := range svc.spec.Match {
				marks = append(marks, markRule{Match: m, mark: svc.spec.FWMark})
			}
		}
		slices.SortStableFunc(marks, func(a, b markRule) int { return int(a.mark) - int(b.mark) })
		g.marks, g.marksStale = marks, false
	}
	g.destsPub = len(dests)
	return &snapshot{
		nsvc:     g.nsvc,
		bySvc:    g.idx.freeze(),
		vips:     g.vips.freeze(),
		natRS:    g.nat.freeze(),
		hasPort0: g.port0 > 0,
		hasFTP:   g.ftp > 0,
		marks:    g.marks,
		dests:    dests[:len(dests):len(dests)],
	}
}
