package daemon

import (
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/gvs-lb/gvs/internal/ipvsadm"
	"github.com/gvs-lb/gvs/ipvs"
)

// deltaState is what commitDelta keeps between commits so that a gvs adm command
// costs what it changes: the addresses each effective service puts in the links'
// filter, and how many services put each one there. commit (the whole table)
// leaves only its effective services in eff; the first delta after it counts them.
type deltaState struct {
	eff     []ipvs.Service // the effective services of the last whole commit; nil once counted
	counted bool
	// more holds the filter addresses of the effective services that hold
	// more than their own address (match addresses, NAT real servers). Every
	// other effective service holds its own address alone and is there while
	// its configured service is (held): a service's effective form has a match
	// address or a NAT real server only if its configured one has (health
	// drops or reweighs real servers, a sorry server takes the first real
	// server's method), so a gvs adm command finds what the common service
	// (one VIP, no NAT real server) holds in its configured service, which it
	// looks up anyway, not in a map of every service (a cold probe at 10,000
	// services, docs/design.md).
	more map[skey]filterAddrs
	// refs counts the effective services that hold each address as a VIP and
	// as a NAT real server, and the configured services (not their effective
	// form) that hold it (Unmap'd): one map, so that a command probes an address
	// once (a cold cache line at 10,000 services) for all three; its keys and
	// values hold no pointer, so the collector does not scan it. n4 and n6 are the
	// configured addresses of each family: what capacity.check counts of a whole
	// table (countAddrs).
	refs   map[paddr]addrRefs
	n4, n6 int
	// users are the services of each real server's address (commitStale); made
	// at the first MAC resolved after a whole commit (usersMade). Their keys
	// are packed (skey): the lists, one key per service, hold no pointer for
	// the collector to scan.
	users     map[paddr][]skey
	usersMade bool
	scanned   bool         // markMissing scanned the table since the last whole commit
	scan      []netip.Addr // real servers without a pinned MAC that deltas committed since
	cand      []candAddr   // filterAddrsDelta's scratch, empty between calls
}

// deltaScratch is the controller's memory for one delta's lists — a command's
// keys with their siblings, its services before and after, the filter addresses
// they held and hold — emptied, not freed, between deltas, so that a gvs adm
// command allocates none of them (fewer bytes a command: the collector's cycles,
// which cost more at 10,000 services, come less often). Only the controller
// goroutine uses it, within one command; nothing published holds any of it:
// what a delta keeps (the counts, deltaState.more, the Director's services) is
// copied from it by value or made anew (TestAdmScratchNotPublished).
type deltaScratch struct {
	keys, sib  []ipvs.Key // admCommitEdits' keys; withSiblings' result
	olds, news []*ipvs.Service
	subset     []ipvs.Service    // the services given to the Director
	shaped     []ipvs.Service    // their effective form (healthLayer.effectiveIn)
	rss        []ipvs.RealServer // their real servers, one after another
	remove     []ipvs.Key        // the keys it removes
	// editorFor's: the keys an event names (tableEditor.part, for the event),
	// deletes, and their places in the configured table.
	named, deleted keySet
	at             []int
	old            []heldAddrs   // filterAddrsDelta: what the services held
	fnew           []filterAddrs // filterAddrsDelta: what their new forms hold

	// editorFor's editor of part of the table (ed, whose Editor is editor)
	// and the services it starts from (some, emptied): the event's, which
	// keeps nothing of them once done (the configured table takes the edited
	// services by value).
	ed     tableEditor
	editor ipvsadm.Editor
	some   []ipvs.Service
}

// heldAddrs are the filter addresses the effective service of k held.
type heldAddrs struct {
	k ipvs.Key
	f filterAddrs
}

// ptrs returns a list of n nil pointers in buf's array.
func ptrs(buf *[]*ipvs.Service, n int) []*ipvs.Service {
	s := slices.Grow((*buf)[:0], n)[:n]
	clear(s)
	*buf = s
	return s
}

// filterAddrs are the addresses one effective service puts in the links' filter
// (filterFor): its VIPs (its address, vip, and match addresses, more) and its NAT
// real servers. deltaState.more keeps those of the services with more than
// their own address; the common service (one VIP, no NAT real server) makes no
// entry nor object of its own for the collector to mark.
type filterAddrs struct {
	vip       paddr // kind 0: none (an fwmark service)
	more, nat []paddr
}

// each calls f for each address, vip true for a VIP.
func (fa *filterAddrs) each(f func(a paddr, vip bool)) {
	if fa.vip.kind != 0 {
		f(fa.vip, true)
	}
	for _, a := range fa.more {
		f(a, true)
	}
	for _, a := range fa.nat {
		f(a, false)
	}
}

func addrsOf(s *ipvs.Service) filterAddrs {
	var f filterAddrs
	if s.Addr.Addr().IsValid() {
		f.vip = packAddr(s.Addr.Addr())
	}
	for _, m := range s.Match {
		if m.Addr.IsValid() {
			f.more = append(f.more, packAddr(m.Addr))
		}
	}
	for _, rs := range s.RealServers {
		if rs.Method == ipvs.NAT && rs.Addr.Addr().IsValid() {
			f.nat = append(f.nat, packAddr(rs.Addr.Addr()))
		}
	}
	return f
}

// count makes the counts from the last whole commit's effective services and
// configured table.
func (s *deltaState) count(conf *pseq[ipvs.Service]) {
	if s.counted {
		return
	}
	s.refs, s.n4, s.n6 = map[paddr]addrRefs{}, 0, 0
	for svc := range conf.all() {
		s.capacityHold(svc, 1)
	}
	s.more = map[skey]filterAddrs{}
	for i := range s.eff {
		s.hold(s.eff[i].Key, addrsOf(&s.eff[i]))
	}
	s.eff, s.counted = nil, true
}

// capacityHold counts the addresses of the configured service svc in (n 1) or
// out (n -1).
func (s *deltaState) capacityHold(svc *ipvs.Service, n int) {
	f := addrsOf(svc)
	f.each(func(a paddr, _ bool) {
		a = a.unmap()
		r := s.refs[a]
		was := r.conf
		r.conf = max(r.conf+int32(n), 0)
		s.set(a, r)
		if d := int(min(r.conf, 1) - min(was, 1)); d != 0 {
			if a.kind == 4 {
				s.n4 += d
			} else {
				s.n6 += d
			}
		}
	})
}

// addrRefs are the holders of an address: effective services whose VIP it is,
// and whose NAT real server; configured services that hold it (conf).
type addrRefs struct{ vip, nat, conf int32 }

// presence is whether an address is held as a VIP and as a NAT real server.
type presence struct{ vip, nat bool }

func (r addrRefs) presence() presence { return presence{r.vip > 0, r.nat > 0} }

// add counts n holders in (n 1) or out (n -1) of a, as a VIP or a NAT real server.
func (s *deltaState) add(a paddr, vip bool, n int32) {
	r := s.refs[a]
	if vip {
		r.vip += n
	} else {
		r.nat += n
	}
	s.set(a, r)
}

// set stores a's counts, or forgets a once nothing holds it.
func (s *deltaState) set(a paddr, r addrRefs) {
	if r.vip <= 0 && r.nat <= 0 && r.conf <= 0 {
		delete(s.refs, a)
	} else {
		s.refs[a] = r
	}
}

// skey is a service key as deltaState keeps it: without a pointer (paddr).
type skey struct {
	a     paddr
	port  uint16
	proto ipvs.Protocol
	v6    bool
	mark  uint32
}

func packKey(k ipvs.Key) skey {
	return skey{a: packAddr(k.Addr.Addr()), port: k.Addr.Port(), proto: k.Protocol, v6: k.IPv6, mark: k.FWMark}
}

// key returns the ipvs.Key k packs (packKey keeps all of it: a service's
// address has no zone).
func (k skey) key() ipvs.Key {
	var ap netip.AddrPort
	if a := k.a.addr(); a.IsValid() {
		ap = netip.AddrPortFrom(a, k.port)
	}
	return ipvs.Key{Protocol: k.proto, Addr: ap, FWMark: k.mark, IPv6: k.v6}
}

// held returns the addresses the effective service of key k holds; conf is k's
// configured service (nil: none, and no effective service either).
func (s *deltaState) held(k ipvs.Key, conf *ipvs.Service) (filterAddrs, bool) {
	if conf == nil {
		return filterAddrs{}, false
	}
	if mayHoldMore(conf) {
		if f, ok := s.more[packKey(k)]; ok {
			return f, true
		}
	}
	var f filterAddrs
	if a := conf.Addr.Addr(); a.IsValid() {
		f.vip = packAddr(a)
	}
	return f, true
}

// mayHoldMore reports whether the effective form of the configured service svc
// may hold more than its own address: only if svc has a match address or a NAT
// real server.
func mayHoldMore(svc *ipvs.Service) bool {
	if len(svc.Match) > 0 {
		return true
	}
	for i := range svc.RealServers {
		if svc.RealServers[i].Method == ipvs.NAT {
			return true
		}
	}
	return false
}

// hold counts the addresses f of the effective service of key k in.
func (s *deltaState) hold(k ipvs.Key, f filterAddrs) {
	if len(f.more)+len(f.nat) > 0 {
		s.more[packKey(k)] = f
	}
	f.each(func(a paddr, vip bool) { s.add(a, vip, 1) })
}

// drop counts the addresses f that hold gave the service of key k out.
func (s *deltaState) drop(k ipvs.Key, f filterAddrs) {
	if len(f.more)+len(f.nat) > 0 {
		delete(s.more, packKey(k))
	}
	f.each(func(a paddr, vip bool) { s.add(a, vip, -1) })
}

// holdsOf returns how many times the configured services olds (nil: none) hold
// the address a (unmapped), as deltaState.capacityHold counts them.
func holdsOf(olds []*ipvs.Service, a paddr) int32 {
	var n int32
	for _, o := range olds {
		if o == nil {
			continue
		}
		f := addrsOf(o)
		f.each(func(b paddr, _ bool) {
			if b.unmap() == a {
				n++
			}
		})
	}
	return n
}

// holdsAll returns, for each address (unmapped), holdsOf(olds, it).
func holdsAll(olds []*ipvs.Service) map[paddr]int32 {
	m := make(map[paddr]int32, len(olds))
	for _, o := range olds {
		if o == nil {
			continue
		}
		f := addrsOf(o)
		f.each(func(b paddr, _ bool) { m[b.unmap()]++ })
	}
	return m
}

// hadServers reports whether one of the configured services olds (nil: none) of
// keys at ap had a real server: a service without one is not live
// (healthLayer.effective), so ap was not live unless one did.
func hadServers(keys []ipvs.Key, olds []*ipvs.Service, ap netip.AddrPort) bool {
	for i, k := range keys {
		if o := olds[i]; o != nil && !k.IsMark() && k.Addr == ap && len(o.RealServers) > 0 {
			return true
		}
	}
	return false
}

// maxDeltaShare bounds the share of the table a delta may touch: above it a whole
// commit costs no more.
const maxDeltaShare = 4

// commitDelta is commit for a change that touched only the services of keys (a gvs
// adm command): ed holds the whole new table. Only
// those services (and, for track_service's liveness, the other protocol's service
// on the same address and port) are shaped and given to the Director
// (ApplyDelta); the links' filter, the announcements and the MAC resolutions
// follow the addresses they add or remove, and the backend's address limit is
// checked on counts of the configured addresses. It falls back to commit when
// health transitions or MACs are pending (stale), or the change is a large part
// of the table. On error nothing changes.
func (d *Daemon) commitDelta(ed *tableEditor, keys []ipvs.Key) error {
	sc := &d.st.scratch
	defer sc.trim()
	if d.st.stale || d.st.filter == nil || len(keys) > ed.size()/maxDeltaShare+16 {
		return d.commit(ed.Services())
	}
	keys, named := withSiblings(sc.sib[:0], keys)
	sc.sib = keys
	// Each key's configured service (olds) and edited one (news), looked up once:
	// the configured table is a map of the whole table, and a probe of it costs a
	// cache miss at 10,000 services. A sibling that is neither configured nor
	// edited changes nothing and is not looked up again in each table; one at an
	// address no configured service holds but the named ones (the counts of
	// the addresses) is not looked up at all (a sibling is not edited: its key
	// is not named).
	d.st.delta.count(&d.st.conf.seq)
	olds, news := ptrs(&sc.olds, len(keys)), ptrs(&sc.news, len(keys))
	// The named services' holds of each address, for a delta of many (a MAC
	// resolved for a real server of thousands of services): made once, not
	// counted again for each sibling (named × siblings).
	var holds map[paddr]int32
	n := 0
	for i, k := range keys {
		if i >= named {
			a := packAddr(k.Addr.Addr()).unmap()
			var h int32
			if named <= maxCandScan {
				h = holdsOf(olds[:named], a)
			} else {
				if holds == nil {
					holds = holdsAll(olds[:named])
				}
				h = holds[a]
			}
			if d.st.delta.refs[a].conf <= h {
				continue
			}
		}
		o := d.confService(k)
		s := ed.lookupAs(k, o)
		if i >= named && o == nil && s == nil {
			continue
		}
		keys[n], olds[n], news[n] = k, o, s
		n++
	}
	keys, olds, news = keys[:n], olds[:n], news[:n]
	// The services as the Director takes them, in the scratch lists: it copies
	// what it keeps (ApplyDelta), and the health layer's effective form of a
	// delta is not kept either. A service's match rules are the configured
	// ones, never written; its real servers are copied to be given their MACs.
	subset, remove, rss := sc.subset[:0], sc.remove[:0], sc.rss[:0]
	for i, k := range keys {
		s := news[i]
		if s == nil {
			if olds[i] != nil { // the Director runs it
				remove = append(remove, k)
			}
			continue
		}
		c := *s
		at := len(rss)
		rss = append(rss, s.RealServers...)
		c.RealServers = rss[at:len(rss):len(rss)]
		if len(c.RealServers) == 0 {
			c.RealServers = nil // as the configured service's, which has none
		}
		for j := range c.RealServers {
			if rs := &c.RealServers[j]; rs.MAC.IsZero() {
				rs.MAC = d.st.macs[rs.Addr.Addr()]
			}
		}
		subset = append(subset, c)
	}
	sc.subset, sc.remove, sc.rss = subset, remove, rss
	sh := d.st.hl.effectiveIn(sc.shaped, subset, func(a netip.Addr) ipvs.MAC { return d.st.macs[a] })
	sc.shaped = sh.services[:0]
	changed, addedVIPs := d.filterAddrsDelta(keys, olds, sh.services)
	// The backend's address limit, counted on the configured services as a whole
	// commit counts them.
	ds := &d.st.delta
	n4, n6 := ds.n4, ds.n6
	move := func(from, to []*ipvs.Service) {
		for i := range keys {
			if from[i] != nil {
				ds.capacityHold(from[i], -1)
			}
			if to[i] != nil {
				ds.capacityHold(to[i], 1)
			}
		}
	}
	move(olds, news)
	undoAll := func() {
		move(news, olds)
		ds.n4, ds.n6 = n4, n6
		d.filterAddrsUndo(sh.services)
	}
	if err := d.capacity.checkCounts(ds.n4, ds.n6); err != nil {
		undoAll()
		return err
	}
	if err := d.d.ApplyDelta(sh.services, remove); err != nil {
		undoAll()
		return err
	}
	if ds.usersMade {
		for i := range keys {
			if olds[i] != nil {
				ds.use(olds[i], -1)
			}
			if news[i] != nil {
				ds.use(news[i], 1)
			}
		}
	}
	ed.install(d)

	// What the health layer and track_service keep, for the touched services.
	hl := d.st.hl
	if hl.quorum == nil {
		hl.quorum = map[ipvs.Key]bool{}
	}
	for _, k := range keys {
		delete(hl.quorum, k)
		if !k.IsMark() && k.Addr.IsValid() {
			live := sh.alive[k.Addr]
			if !live && vipAdded(changed, k.Addr.Addr()) {
				continue // no service had its address: it was not live either
			}
			if !live && !hadServers(keys, olds, k.Addr) {
				continue // no service at its address and port had a real server: not live either
			}
			d.st.alive = d.st.alive.with(k.Addr, live) // published: copied
		}
	}
	maps.Copy(hl.quorum, sh.quorum)

	if d.resolver != nil {
		for i := range subset {
			for _, rs := range subset[i].RealServers {
				if rs.MAC.IsZero() {
					ds.scan = append(ds.scan, rs.Addr.Addr())
				}
			}
		}
	}

	var fx effect
	if len(changed) > 0 {
		fx.filter = d.filterDelta(changed)
		d.st.filter = fx.filter
	}
	d.guardEffect(&fx, d.st.cfg.Director.IngressDrop)
	fx.scripts = sh.cmds
	d.fx.queue(fx)
	// announceNew for the VIPs the change added: the filter had none of them,
	// so none was announced (controller.go, state.filter).
	var ann []netip.Addr
	for _, v := range addedVIPs {
		if d.st.owned == nil || d.ownedVIP(v) {
			ann = append(ann, v)
		}
	}
	d.announce(ann)
	d.publish()
	d.commits.Add(1) // last: a test that sees it finds the effects queued and the state published
	sc.done()
	return nil
}

// done empties the scratch lists for the next delta, dropping what they point
// to (configured services since replaced, filter address lists).
func (sc *deltaScratch) done() {
	clear(sc.olds)
	clear(sc.news)
	clear(sc.old)
	clear(sc.fnew)
	clear(sc.subset)
	sc.olds, sc.news, sc.old, sc.fnew = sc.olds[:0], sc.news[:0], sc.old[:0], sc.fnew[:0]
	sc.subset, sc.remove, sc.rss = sc.subset[:0], sc.remove[:0], sc.rss[:0]
}

// maxKeptScratch is the most entries a scratch list keeps between deltas. A
// command's lists hold a few; a restore's, or a MAC resolved for a real server
// of thousands of services, as many as the table (10,000 keys, 560 KB of
// ipvs.Key), which, kept, the collector would scan on each of its cycles
// (ipvs values hold pointers) for the next command's few entries.
const maxKeptScratch = 256

// trim drops the scratch lists grown past maxKeptScratch (the next delta that
// needs as many makes them again, at a cost of its size anyway).
func (sc *deltaScratch) trim() {
	trimScratch(&sc.keys)
	trimScratch(&sc.sib)
	trimScratch(&sc.olds)
	trimScratch(&sc.news)
	trimScratch(&sc.subset)
	trimScratch(&sc.shaped)
	trimScratch(&sc.rss)
	trimScratch(&sc.remove)
	trimScratch(&sc.old)
	trimScratch(&sc.fnew)
}

func trimScratch[T any](s *[]T) {
	if cap(*s) > maxKeptScratch {
		*s = nil
	}
}

// use records (n 1) or forgets (n -1) the configured service svc as a user of
// its real servers' addresses.
func (s *deltaState) use(svc *ipvs.Service, n int) {
	k := packKey(svc.Key)
	for _, rs := range svc.RealServers {
		a := packAddr(rs.Addr.Addr())
		keys := s.users[a]
		if n > 0 {
			if !slices.Contains(keys, k) {
				s.users[a] = append(keys, k)
			}
			continue
		}
		if i := slices.Index(keys, k); i >= 0 {
			keys[i] = keys[len(keys)-1]
			if keys = keys[:len(keys)-1]; len(keys) == 0 {
				delete(s.users, a)
			} else {
				s.users[a] = keys
			}
		}
	}
}

// commitStale gives the Director the services whose real servers' MACs were
// resolved or changed (staleMACs) or whose checks changed state (staleKeys)
// since it took them, as a delta of those services: a new real server's MAC or
// a server going down costs its services, not the table.
func (d *Daemon) commitStale() error {
	ds := &d.st.delta
	if !ds.usersMade {
		ds.users = map[paddr][]skey{}
		for s := range d.st.conf.seq.all() {
			ds.use(s, 1)
		}
		ds.usersMade = true
	}
	set := d.st.staleKeys
	if set == nil {
		set = map[ipvs.Key]bool{}
	}
	for a := range d.st.staleMACs {
		for _, k := range ds.users[packAddr(a)] {
			set[k.key()] = true
		}
	}
	d.st.staleMACs, d.st.staleKeys = nil, nil
	var keys keySet
	for k := range set {
		if d.confService(k) != nil {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.SortFunc(keys, func(a, b ipvs.Key) int { return strings.Compare(a.String(), b.String()) })
	var some []ipvs.Service
	for _, k := range keys {
		some = append(some, *d.confService(k))
	}
	ed := &tableEditor{Editor: ipvsadm.NewEditor(some), conf: &d.st.conf, part: keys, partial: true, unedited: true}
	return d.commitDelta(ed, keys)
}

// filterAddrsDelta moves the filter's address counts from what the services of
// keys (configured as olds) held to what services (their new effective form)
// hold, and returns the addresses whose place in the filter changed and the VIPs
// among them that are new; filterAddrsUndo moves the counts back (the change is
// refused).
func (d *Daemon) filterAddrsDelta(keys []ipvs.Key, olds []*ipvs.Service, services []ipvs.Service) (changed []addrChange, addedVIPs []netip.Addr) {
	ds := &d.st.delta
	// The candidates, once each, with their presence before the change: a
	// command's few addresses are compared one by one in a list the controller
	// reuses (no map to make and probe per command); a large delta
	// (commitStale's) finds them in a map.
	cand := ds.cand[:0]
	var seen map[paddr]bool
	note := func(a paddr, _ bool) {
		if seen != nil {
			if seen[a] {
				return
			}
			seen[a] = true
		} else {
			for i := range cand {
				if cand[i].a == a {
					return
				}
			}
			if len(cand) == maxCandScan {
				seen = make(map[paddr]bool, 2*len(cand))
				for _, c := range cand {
					seen[c.a] = true
				}
				seen[a] = true
			}
		}
		cand = append(cand, candAddr{a: a, before: ds.refs[a].presence()})
	}
	sc := &d.st.scratch
	old := sc.old[:0] // keys are distinct
	for i, k := range keys {
		if f, ok := ds.held(k, olds[i]); ok {
			old = append(old, heldAddrs{k, f})
			f.each(note)
		}
	}
	news := sc.fnew[:0]
	for i := range services {
		news = append(news, addrsOf(&services[i]))
		news[i].each(note)
	}
	sc.old, sc.fnew = old, news
	ds.cand = cand[:0]
	for _, h := range old {
		ds.drop(h.k, h.f)
	}
	for i := range services {
		ds.hold(services[i].Key, news[i])
	}
	for _, c := range cand {
		p, b := ds.refs[c.a].presence(), c.before
		if p == b {
			continue
		}
		if p.vip && !b.vip {
			addedVIPs = append(addedVIPs, c.a.addr())
		}
		changed = append(changed, addrChange{c.a.addr(), b.vip, b.nat, p.vip, p.nat})
	}
	return changed, addedVIPs
}

// filterAddrsUndo moves the counts filterAddrsDelta moved for services back.
func (d *Daemon) filterAddrsUndo(services []ipvs.Service) {
	ds, sc := &d.st.delta, &d.st.scratch
	for i := range services {
		ds.drop(services[i].Key, sc.fnew[i])
	}
	for _, h := range sc.old {
		ds.hold(h.k, h.f)
	}
	sc.done()
}

// maxCandScan is the number of candidates filterAddrsDelta compares one by one.
const maxCandScan = 32

// candAddr is an address a delta may move in or out of the links' filter, and
// its presence before the delta.
type candAddr struct {
	a      paddr
	before presence
}

// withSiblings returns keys, once each, then the services of the other protocol
// at the same address and port of each (they share track_service's liveness)
// that keys does not name, once each, appended to out (empty; not keys's
// array); named is the number of the first.
func withSiblings(out, keys []ipvs.Key) (_ []ipvs.Key, named int) {
	out = slices.Grow(out, 2*len(keys)+1)
	var seen map[ipvs.Key]bool // a command's few keys are compared one by one
	if 3*len(keys) > maxCandScan {
		seen = make(map[ipvs.Key]bool, 2*len(keys))
	}
	add := func(k ipvs.Key) {
		if seen != nil {
			if seen[k] {
				return
			}
			seen[k] = true
		} else if slices.Contains(out, k) {
			return
		}
		out = append(out, k)
	}
	for _, k := range keys {
		add(k)
	}
	named = len(out)
	for _, k := range keys {
		if k.IsMark() || !k.Addr.IsValid() {
			continue
		}
		for _, p := range []ipvs.Protocol{ipvs.TCP, ipvs.UDP} {
			add(ipvs.AddrKey(p, k.Addr))
		}
	}
	return out, named
}

// vipAdded reports whether changed (of a command: a few addresses) makes a a VIP
// that was not one; false for a longer list, which it does not search.
func vipAdded(changed []addrChange, a netip.Addr) bool {
	if len(changed) > maxCandScan {
		return false
	}
	for _, c := range changed {
		if c.a == a {
			return c.vip && !c.wasVIP
		}
	}
	return false
}

// addrChange is an address whose place in the links' filter a delta changed:
// whether services held it as a VIP or a NAT real server before and after.
type addrChange struct {
	a              netip.Addr
	wasVIP, wasNAT bool
	vip, nat       bool
}

// filterDelta returns the links' filter with changed applied, as filterFor would
// list the addresses: a VIP gone leaves the VIP list, a new one goes to its end; a
// NAT real server is listed while it is not a VIP (filterFor lists an address
// once); the interface's own addresses are listed as local while they are not
// VIPs. It costs the change: the lists are pseqs, the current filter shares their
// unchanged pages and is not changed (the effects goroutine may hold it).
func (d *Daemon) filterDelta(changed []addrChange) *filterView {
	l := &d.st.flists
	ve, ne := l.vips.edit(), l.nat.edit()
	var ch filterChange
	for _, c := range changed {
		inNAT, wasInNAT := c.nat && !c.vip, c.wasNAT && !c.wasVIP
		switch {
		case c.vip && !c.wasVIP:
			ve.put(packAddr(c.a))
			ch.addVIPs = append(ch.addVIPs, c.a)
		case !c.vip && c.wasVIP:
			ve.del(packAddr(c.a))
			ch.rmVIPs = append(ch.rmVIPs, c.a)
		}
		switch {
		case inNAT && !wasInNAT:
			ne.put(packAddr(c.a))
			ch.addNAT = append(ch.addNAT, c.a)
		case !inNAT && wasInNAT:
			ne.del(packAddr(c.a))
			ch.rmNAT = append(ch.rmNAT, c.a)
		}
	}
	l.vips.apply(ve)
	l.nat.apply(ne)
	rest := d.st.filter.rest
	ds := &d.st.delta
	rest.Local = nil
	for _, a := range d.ifi.Addrs {
		if a = a.Unmap(); a.IsValid() && ds.refs[packAddr(a)].vip == 0 && !slices.Contains(rest.Local, a) {
			rest.Local = append(rest.Local, a)
		}
	}
	v := l.view(rest, len(ch.addVIPs)+len(ch.rmVIPs) > 0, nil)
	v.delta, v.change = true, ch
	return v
}
