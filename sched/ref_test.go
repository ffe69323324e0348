package sched

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"strings"
)

// Slow, obviously-correct models of every scheduler, written from docs/ipvs-semantics.md §4
// without looking at the implementation's structure (and in another shape where the
// spec allows: rr rotates a list, wrr enumerates (pass, dest) slots, the least-load
// schedulers sort, sh expands the weights, mh walks explicit permutations with a
// textbook SipHash, lblc/lblcr keep maps). They see the dests only through exported
// methods. The differential test drives them next to the real ones.

// A refModel receives the hooks the kernel calls, with the list as it is after the
// change (old is the list before a delete).
type refModel interface {
	init(list []*Dest)
	add(list []*Dest, d *Dest)
	del(old, list []*Dest, d *Dest)
	upd(list []*Dest, d *Dest)
	pick(list []*Dest, p *Packet) *Dest
}

// noHooks is embedded by models without state derived from the list.
type noHooks struct{}

func (noHooks) init([]*Dest)                {}
func (noHooks) add([]*Dest, *Dest)          {}
func (noHooks) del([]*Dest, []*Dest, *Dest) {}
func (noHooks) upd([]*Dest, *Dest)          {}

func refUsable(d *Dest) bool { return !d.Overloaded() && d.Weight() > 0 }

func refOverhead(d *Dest) int64 { return int64(d.ActiveConns())*256 + int64(d.InactConns()) }

// ---- rr: the list rotated so that the dest after the last pick comes first.

type refRR struct {
	noHooks
	last *Dest // nil: the scan starts at the first dest
}

func (r *refRR) init([]*Dest) { r.last = nil }

func (r *refRR) del(old, _ []*Dest, d *Dest) {
	if r.last == d {
		k := slices.Index(old, d)
		r.last = nil
		if k > 0 {
			r.last = old[k-1]
		}
	}
}

func (r *refRR) pick(list []*Dest, _ *Packet) *Dest {
	order := list
	if k := slices.Index(list, r.last); k >= 0 {
		order = append(slices.Clone(list[k+1:]), list[:k+1]...)
	}
	for _, d := range order {
		if refUsable(d) {
			r.last = d
			return d
		}
	}
	return nil
}

// ---- wrr: the scan as an explicit list of (pass weight, dest) slots.

type refWRR struct {
	cl         *Dest // nil = list head
	cw, mw, di int
}

func refWeights(list []*Dest) (di, mw int) {
	top, low := 0, 0
	for _, d := range list {
		w := int(d.Weight())
		top = max(top, w)
		if w > 0 && (low == 0 || w < low) {
			low = w
		}
	}
	di = 1
	for k := low; k > 1; k-- { // the largest k dividing every positive weight
		all := true
		for _, d := range list {
			if w := int(d.Weight()); w > 0 && w%k != 0 {
				all = false
			}
		}
		if all {
			di = k
			break
		}
	}
	return di, top - (di - 1)
}

func (r *refWRR) init(list []*Dest) {
	r.di, r.mw = refWeights(list)
	r.cl, r.cw = nil, r.mw
}

func (r *refWRR) changed(list []*Dest) {
	r.di, r.mw = refWeights(list)
	r.cl = nil
	if r.cw > r.mw || r.cw == 0 {
		r.cw = r.mw
	} else if r.di > 1 {
		r.cw = (r.cw/r.di)*r.di + 1
	}
}

func (r *refWRR) add(list []*Dest, _ *Dest)    { r.changed(list) }
func (r *refWRR) del(_, list []*Dest, _ *Dest) { r.changed(list) }
func (r *refWRR) upd(list []*Dest, _ *Dest)    { r.changed(list) }

// pick: from the head, the passes cw, cw−di, … > 0 over the whole list, failing to
// (head, mw). From dest k: the rest of pass cw after k; then, if cw > di, the lower
// passes in full, failing to (head, mw); else a new cycle mw, mw−di, … whose last pass
// ends at k, failing there with that pass's weight.
func (r *refWRR) pick(list []*Dest, _ *Packet) *Dest {
	if r.mw == 0 {
		return nil
	}
	type slot struct{ c, i int }
	var slots []slot
	pass := func(c, from, to int) {
		for i := from; i < to; i++ {
			slots = append(slots, slot{c, i})
		}
	}
	passes := func(from int) []int {
		var ps []int
		for c := from; c > 0; c -= r.di {
			ps = append(ps, c)
		}
		return ps
	}
	n := len(list)
	failCl, failCw := (*Dest)(nil), r.mw
	k := slices.Index(list, r.cl)
	switch {
	case k < 0:
		for _, c := range passes(r.cw) {
			pass(c, 0, n)
		}
	case r.cw > r.di:
		pass(r.cw, k+1, n)
		for _, c := range passes(r.cw)[1:] {
			pass(c, 0, n)
		}
	default:
		pass(r.cw, k+1, n)
		ps := passes(r.mw)
		for j, c := range ps {
			if j == len(ps)-1 {
				pass(c, 0, k+1)
				failCl, failCw = list[k], c
			} else {
				pass(c, 0, n)
			}
		}
	}
	for _, s := range slots {
		if d := list[s.i]; !d.Overloaded() && int(d.Weight()) >= s.c {
			r.cl, r.cw = d, s.c
			return d
		}
	}
	r.cl, r.cw = failCl, failCw
	return nil
}

// ---- least-load schedulers: sort the candidates (stably, so ties keep list order).

// byRatio sorts ds stably by load/weight ascending, comparing exact cross products.
func byRatio(ds []*Dest, load func(*Dest) int64) []*Dest {
	ds = slices.Clone(ds)
	slices.SortStableFunc(ds, func(a, b *Dest) int {
		return cmp.Compare(load(a)*int64(b.Weight()), load(b)*int64(a.Weight()))
	})
	return ds
}

func first(ds []*Dest) *Dest {
	if len(ds) == 0 {
		return nil
	}
	return ds[0]
}

func filter(ds []*Dest, keep func(*Dest) bool) []*Dest {
	var out []*Dest
	for _, d := range ds {
		if keep(d) {
			out = append(out, d)
		}
	}
	return out
}

type refLC struct{ noHooks }

func (refLC) pick(list []*Dest, _ *Packet) *Dest {
	c := filter(list, func(d *Dest) bool { return !d.Overloaded() && d.Weight() != 0 })
	slices.SortStableFunc(c, func(a, b *Dest) int { return cmp.Compare(refOverhead(a), refOverhead(b)) })
	return first(c)
}

type refWLC struct{ noHooks }

func (refWLC) pick(list []*Dest, _ *Packet) *Dest { return refWLCPick(list) }

func refWLCPick(list []*Dest) *Dest {
	return first(byRatio(filter(list, refUsable), refOverhead))
}

func refDelay(d *Dest) int64 { return int64(d.ActiveConns()) + 1 }

type refSED struct{ noHooks }

func (refSED) pick(list []*Dest, _ *Packet) *Dest {
	return first(byRatio(filter(list, refUsable), refDelay))
}

type refNQ struct{ noHooks }

func (refNQ) pick(list []*Dest, _ *Packet) *Dest {
	c := filter(list, refUsable)
	if idle := filter(c, func(d *Dest) bool { return d.ActiveConns() == 0 }); len(idle) > 0 {
		return idle[0]
	}
	return first(byRatio(c, refDelay))
}

func byWeightDesc(ds []*Dest) *Dest {
	slices.SortStableFunc(ds, func(a, b *Dest) int { return cmp.Compare(b.Weight(), a.Weight()) })
	return first(ds)
}

type refFO struct{ noHooks }

func (refFO) pick(list []*Dest, _ *Packet) *Dest { return byWeightDesc(filter(list, refUsable)) }

type refOVF struct{ noHooks }

func (refOVF) pick(list []*Dest, _ *Packet) *Dest {
	return byWeightDesc(filter(list, func(d *Dest) bool { return refUsable(d) && d.ActiveConns() <= d.Weight() }))
}

// ---- twos: every outcome of a draw from [0, total] mapped to its dest.

type refTwoS struct {
	noHooks
	rand func(uint32) uint32
}

func (r *refTwoS) pick(list []*Dest, _ *Packet) *Dest {
	c := filter(list, refUsable)
	if len(c) == 0 {
		return nil
	}
	// owner[r] is the dest a draw r selects: r = 0 the first, then each dest the
	// next weight(d) values.
	owner := []*Dest{c[0]}
	for _, d := range c {
		for range d.Weight() {
			owner = append(owner, d)
		}
	}
	a := owner[r.rand(uint32(len(owner)))]
	b := owner[r.rand(uint32(len(owner)))]
	wa, wb := a.Weight(), b.Weight()
	oa, ob := int32(refOverhead(a)), int32(refOverhead(b))
	if wb*oa > wa*ob { // the kernel's 32-bit int products
		return b
	}
	return a
}

// ---- sh and dh: tables built by expanding the list.

func refFold(b []byte, v6 bool) uint32 {
	if !v6 {
		return binary.BigEndian.Uint32(b)
	}
	var f uint32
	for i := 0; i < 16; i += 4 {
		f ^= binary.BigEndian.Uint32(b[i:])
	}
	return f
}

func refDestFold(d *Dest) uint32 {
	if d.Addr().Is4() {
		a := d.Addr().As4()
		return refFold(a[:], false)
	}
	a := d.Addr().As16()
	return refFold(a[:], true)
}

// refClient returns the address and port sh and mh hash (the port only if withPort
// and the protocol has ports).
func refClient(p *Packet, withPort bool) uint32 {
	addr, port := p.Src, p.SrcPort
	if p.Inverse {
		addr, port = p.Dst, p.DstPort
	}
	v := refFold(addr[:], p.IPv6)
	if withPort && (p.Protocol == 6 || p.Protocol == 17 || p.Protocol == 132) {
		v += uint32(port)
	}
	return v
}

func refHash32(v uint32, b int) int { return int(uint32(uint64(v)*0x61C88647) >> (32 - b)) }

type refSH struct {
	fallback, port bool
	table          [256]*Dest
}

func (r *refSH) build(list []*Dest) {
	var seq []*Dest // each dest max(weight, 1) times, in list order
	for _, d := range list {
		for range max(d.Weight(), 1) {
			seq = append(seq, d)
		}
	}
	for i := range r.table {
		r.table[i] = nil
		if len(seq) > 0 {
			r.table[i] = seq[i%len(seq)]
		}
	}
}

func (r *refSH) init(list []*Dest)            { r.build(list) }
func (r *refSH) add(list []*Dest, _ *Dest)    { r.build(list) }
func (r *refSH) del(_, list []*Dest, _ *Dest) { r.build(list) }
func (r *refSH) upd(list []*Dest, _ *Dest)    { r.build(list) }

func (r *refSH) pick(_ []*Dest, p *Packet) *Dest {
	ih := refHash32(refClient(p, r.port), 8)
	d := r.table[ih]
	if d == nil || refUsable(d) {
		return d
	}
	if !r.fallback {
		return nil
	}
	for off := range 256 {
		d = r.table[(2*ih+off)%256]
		if d == nil {
			return nil
		}
		if refUsable(d) {
			return d
		}
	}
	return nil
}

type refDH struct{ table [256]*Dest }

func (r *refDH) build(list []*Dest) {
	for i := range r.table {
		r.table[i] = nil
		if len(list) > 0 {
			r.table[i] = list[i%len(list)]
		}
	}
}

func (r *refDH) init(list []*Dest)            { r.build(list) }
func (r *refDH) add(list []*Dest, _ *Dest)    { r.build(list) }
func (r *refDH) del(_, list []*Dest, _ *Dest) { r.build(list) }
func (r *refDH) upd([]*Dest, *Dest)           {} // dh has no upd_dest hook

func (r *refDH) pick(_ []*Dest, p *Packet) *Dest {
	d := r.table[refHash32(refFold(p.Dst[:], p.IPv6), 8)]
	if d == nil || !d.Available() || !refUsable(d) {
		return nil
	}
	return d
}

// ---- mh: textbook SipHash and explicit permutations.

// refSipHash is SipHash-c-d of msg under (k0, k1), as its paper defines it.
func refSipHash(c, d int, k0, k1 uint64, msg []byte) uint64 {
	v := [4]uint64{k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d, k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573}
	round := func() {
		v[0] += v[1]
		v[1] = bits.RotateLeft64(v[1], 13)
		v[1] ^= v[0]
		v[0] = bits.RotateLeft64(v[0], 32)
		v[2] += v[3]
		v[3] = bits.RotateLeft64(v[3], 16)
		v[3] ^= v[2]
		v[0] += v[3]
		v[3] = bits.RotateLeft64(v[3], 21)
		v[3] ^= v[0]
		v[2] += v[1]
		v[1] = bits.RotateLeft64(v[1], 17)
		v[1] ^= v[2]
		v[2] = bits.RotateLeft64(v[2], 32)
	}
	compress := func(m uint64) {
		v[3] ^= m
		for range c {
			round()
		}
		v[0] ^= m
	}
	n := len(msg)
	for len(msg) >= 8 {
		compress(binary.LittleEndian.Uint64(msg))
		msg = msg[8:]
	}
	var last [8]byte
	copy(last[:], msg)
	last[7] = byte(n)
	compress(binary.LittleEndian.Uint64(last[:]))
	v[2] ^= 0xff
	for range d {
		round()
	}
	return v[0] ^ v[1] ^ v[2] ^ v[3]
}

// refMHHash is hsiphash on a 64-bit host: SipHash-1-3 of the 4 little-endian bytes of
// v under the key {k, k}, low 32 bits.
func refMHHash(k uint64, v uint32) uint32 {
	return uint32(refSipHash(1, 3, k, k, binary.LittleEndian.AppendUint32(nil, v)))
}

type refMH struct {
	fallback, port bool
	m              int
	tabBits        int
	table          []*Dest
}

func newRefMH(f Flags, m int) *refMH {
	r := &refMH{fallback: f&FlagSched1 != 0, port: f&FlagSched2 != 0, m: m, table: make([]*Dest, m)}
	for i, p := range []int{251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071} {
		if p == m {
			r.tabBits = (i + 8) / 2
		}
	}
	return r
}

func (r *refMH) build(list []*Dest) {
	clear(r.table)
	low, top := 0, 0
	for _, d := range list {
		if lw := int(d.LastWeight()); lw > 0 {
			top = max(top, lw)
			if low == 0 || lw < low {
				low = lw
			}
		}
	}
	g := 0 // the largest k dividing every positive last weight
	for k := low; k >= 1 && g == 0; k-- {
		if !slices.ContainsFunc(list, func(d *Dest) bool { return d.LastWeight() > 0 && int(d.LastWeight())%k != 0 }) {
			g = k
		}
	}
	if g == 0 {
		return
	}
	shift := max(0, bits.Len(uint(top/g))-r.tabBits)
	type perm struct {
		offset, skip, j uint64
		turns           int
	}
	ps := make([]perm, len(list))
	for i, d := range list {
		v := refDestFold(d) + uint32(d.Port())
		lw := int(d.LastWeight())
		t := (lw / g) >> shift
		if t == 0 && lw != 0 {
			t = 1
		}
		ps[i] = perm{offset: uint64(refMHHash(mhKey1, v) % uint32(r.m)), skip: uint64(refMHHash(mhKey2, v)%uint32(r.m-1) + 1), turns: t}
	}
	filled := 0
	for filled < r.m {
		for i := range ps {
			for range ps[i].turns {
				if filled == r.m {
					return
				}
				// The dest's permutation is offset, offset+skip, … mod M: take
				// its next free slot.
				slot := (ps[i].offset + ps[i].j*ps[i].skip) % uint64(r.m)
				for r.table[slot] != nil {
					ps[i].j++
					slot = (ps[i].offset + ps[i].j*ps[i].skip) % uint64(r.m)
				}
				r.table[slot] = list[i]
				filled++
			}
		}
	}
}

func (r *refMH) init(list []*Dest)            { r.build(list) }
func (r *refMH) add(list []*Dest, _ *Dest)    { r.build(list) }
func (r *refMH) del(_, list []*Dest, _ *Dest) { r.build(list) }
func (r *refMH) upd(list []*Dest, _ *Dest)    { r.build(list) }

func (r *refMH) pick(_ []*Dest, p *Packet) *Dest {
	v := refClient(p, r.port)
	ih := int(refMHHash(mhKey1, v) % uint32(r.m))
	d := r.table[ih]
	if d == nil || refUsable(d) {
		return d
	}
	if !r.fallback {
		return nil
	}
	for off := range r.m {
		roff := (off + ih) % r.m
		d = r.table[refMHHash(mhKey1, v+uint32(roff))%uint32(r.m)]
		if d == nil {
			return nil
		}
		if refUsable(d) {
			return d
		}
	}
	return nil
}

// ---- lblc and lblcr: maps, and the collector run one tick at a time.

type refKey struct {
	addr [16]byte
	v6   bool
}

func refKeyOf(p *Packet) (refKey, int) {
	k := refKey{v6: p.IPv6}
	if p.IPv6 {
		k.addr = p.Dst
	} else {
		copy(k.addr[:4], p.Dst[:4])
	}
	return k, refHash32(refFold(p.Dst[:], p.IPv6), 10)
}

type refEntry struct {
	bucket  int
	lastuse int64
	dest    *Dest   // lblc
	set     []*Dest // lblcr, newest first
	lastmod int64
}

// refCache is the table and its 60-second collector (§4.13).
type refCache struct {
	expire            int64
	maxSize, capacity int
	elemCap, elems    int
	ents              map[refKey]*refEntry
	count             int // the kernel's entry counter
	rover, counter    int
	started           bool
	next              int64
}

func newRefCache(expire int64, maxSize, capacity, elemCap int) *refCache {
	return &refCache{expire: expire, maxSize: maxSize, capacity: capacity, elemCap: elemCap,
		ents: map[refKey]*refEntry{}, counter: 1}
}

func (c *refCache) init([]*Dest) {
	*c = *newRefCache(c.expire, c.maxSize, c.capacity, c.elemCap)
}
func (c *refCache) add([]*Dest, *Dest)          {}
func (c *refCache) del([]*Dest, []*Dest, *Dest) {}
func (c *refCache) upd([]*Dest, *Dest)          {}

func (c *refCache) advance(now int64) {
	if !c.started {
		c.started, c.next = true, now+60*sec
		return
	}
	for now >= c.next {
		c.tick(c.next)
		c.next += 60 * sec
	}
}

func (c *refCache) remove(k refKey) {
	c.elems -= len(c.ents[k].set)
	delete(c.ents, k)
	c.count--
}

func (c *refCache) tick(now int64) {
	if c.counter%30 == 0 {
		for k, e := range c.ents {
			if now >= e.lastuse+c.expire {
				c.remove(k)
			}
		}
		c.counter = 1
		return
	}
	if c.count <= c.maxSize {
		c.counter++
		return
	}
	goal := min((c.count-c.maxSize)*4/3, c.maxSize/2)
	byBucket := map[int][]refKey{}
	for k, e := range c.ents {
		byBucket[e.bucket] = append(byBucket[e.bucket], k)
	}
	j := c.rover
	for range 1024 {
		j = (j + 1) % 1024
		for _, k := range byBucket[j] {
			if now >= c.ents[k].lastuse+6*60*sec {
				c.remove(k)
				goal--
			}
		}
		if goal <= 0 {
			break
		}
	}
	c.rover = j
}

func refLocOverloaded(d *Dest, list []*Dest) bool {
	if d.ActiveConns() <= d.Weight() {
		return false
	}
	return slices.ContainsFunc(list, func(m *Dest) bool { return 2*m.ActiveConns() < m.Weight() })
}

type refLBLC struct{ *refCache }

func (r refLBLC) pick(list []*Dest, p *Packet) *Dest {
	r.advance(p.Now)
	k, b := refKeyOf(p)
	e := r.ents[k]
	if e != nil {
		e.lastuse = p.Now
		if d := e.dest; d.Available() && d.Weight() > 0 && !refLocOverloaded(d, list) {
			return d
		}
	}
	d := refWLCPick(list)
	if d == nil {
		return nil
	}
	if e != nil {
		if e.dest == d {
			return d
		}
		delete(r.ents, k) // the kernel's counter is not decremented here
	}
	if len(r.ents) < r.capacity {
		r.ents[k] = &refEntry{bucket: b, lastuse: p.Now, dest: d}
		r.count++
	}
	return d
}

type refLBLCR struct{ *refCache }

func (r refLBLCR) insert(e *refEntry, d *Dest, now int64) {
	if slices.Contains(e.set, d) || r.elems >= r.elemCap {
		return
	}
	e.set = append([]*Dest{d}, e.set...)
	e.lastmod = now
	r.elems++
}

func (r refLBLCR) pick(list []*Dest, p *Packet) *Dest {
	now := p.Now
	r.advance(now)
	k, b := refKeyOf(p)
	e := r.ents[k]
	if e == nil {
		d := refWLCPick(list)
		if d != nil && len(r.ents) < r.capacity {
			e = &refEntry{bucket: b, lastuse: now}
			r.ents[k] = e
			r.count++
			r.insert(e, d, now)
		}
		return d
	}
	e.lastuse = now
	// set_min: the least load per weight among usable, AVAILABLE members.
	d := first(byRatio(filter(e.set, func(d *Dest) bool { return refUsable(d) && d.Available() }), refOverhead))
	if len(e.set) > 1 && now > e.lastmod+r.expire {
		// set_max: the most load per weight among members with a weight.
		heavy := filter(e.set, func(d *Dest) bool { return d.Weight() > 0 })
		slices.SortStableFunc(heavy, func(a, b *Dest) int {
			return cmp.Compare(refOverhead(b)*int64(a.Weight()), refOverhead(a)*int64(b.Weight()))
		})
		if m := first(heavy); m != nil {
			e.set = slices.DeleteFunc(e.set, func(x *Dest) bool { return x == m })
			e.lastmod = now
			r.elems--
		}
	}
	if d != nil && !refLocOverloaded(d, list) {
		return d
	}
	if d = refWLCPick(list); d != nil {
		r.insert(e, d, now)
	}
	return d
}

func (c *refCache) dump() string {
	var ents []string
	for k, e := range c.ents {
		ds := e.set
		if e.dest != nil {
			ds = []*Dest{e.dest}
		}
		ents = append(ents, fmt.Sprintf("%x/%v@%d→[%s]@%d", k.addr, k.v6, e.lastuse, names(ds), e.lastmod))
	}
	slices.Sort(ents)
	return fmt.Sprintf("entries=%d counter=%d rover=%d next=%d %s", c.count, c.counter, c.rover, c.next, strings.Join(ents, " "))
}
