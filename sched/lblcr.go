package sched

// lblcr is locality-based least connection with replication (docs/ipvs-semantics.md §4.14): the
// cache maps each destination address to a set of dests; the set's least loaded dest
// serves while it is not overloaded in lblc's sense, else wlc adds one more dest to
// the set, and a set unchanged for the expiration time sheds its most loaded dest.
//
// The zero value is not usable (use newLBLCR); it is used under its Pool's lock.
type lblcr struct {
	c locCache
}

func newLBLCR(o Options) (*lblcr, error) {
	s := &lblcr{}
	if err := s.c.configure(o.LBLCRExpiration, o.LBLCCapacity); err != nil {
		return nil, err
	}
	s.c.reset()
	return s, nil
}

func (*lblcr) Name() string { return "lblcr" }

// Init starts an empty cache. Sets keep deleted dests, which set_min skips as not
// AVAILABLE, as in the kernel; AddDest and DelDest keep that test per Pool (see
// locCache.gone).
func (s *lblcr) Init([]*Dest)                      { s.c.reset() }
func (s *lblcr) AddDest(_ []*Dest, d *Dest)        { s.c.setGone(d, false) }
func (s *lblcr) DelDest(_ []*Dest, d *Dest, _ int) { s.c.setGone(d, true) }
func (*lblcr) UpdDest([]*Dest, *Dest)              {}

func (s *lblcr) Schedule(dests []*Dest, p *Packet) *Dest {
	c := &s.c
	now := p.Now
	c.advance(now)
	k := locKeyOf(p)
	i, _ := c.lookup(&k)
	if i < 0 {
		d := leastWeighted(dests, false)
		if d == nil {
			return nil
		}
		if i = c.insert(&k, now); i >= 0 {
			c.setInsert(i, d, now)
		}
		return d
	}
	e := &c.ents[i]
	e.lastuse = now
	d := c.setMin(i)
	// A set left unchanged for the expiration time (strictly longer) sheds its most
	// loaded dest; d stands even if it was that one.
	if e.size > 1 && now > e.lastmod+c.expire {
		if m := c.setMax(i); m >= 0 {
			c.setErase(i, m)
			c.ents[i].lastmod = now
		}
	}
	if d != nil && !locOverloaded(d, dests) {
		return d
	}
	if d = leastWeighted(dests, false); d == nil {
		return nil
	}
	if !c.setHas(i, d) {
		c.setInsert(i, d, now)
	}
	return d
}

// setInsert puts d at the head of entry i's set and stamps lastmod, unless elements
// ran out (the kernel's failed allocation: the set stays as it is).
func (c *locCache) setInsert(i int32, d *Dest, now int64) {
	var j int32
	switch {
	case c.freeElem >= 0:
		j = c.freeElem
		c.freeElem = c.elems[j].next
	case c.liveElem < c.elemCap:
		j = int32(len(c.elems))
		c.elems = append(c.elems, locElem{}) // grows to the high-water mark only
	default:
		return
	}
	e := &c.ents[i]
	c.elems[j] = locElem{ref: c.hold(d), next: e.set}
	e.set = j
	e.size++
	e.lastmod = now
	c.liveElem++
}

func (c *locCache) setHas(i int32, d *Dest) bool {
	for j := c.ents[i].set; j >= 0; j = c.elems[j].next {
		if c.refs[c.elems[j].ref] == d {
			return true
		}
	}
	return false
}

// setErase removes element m from entry i's set.
func (c *locCache) setErase(i, m int32) {
	e := &c.ents[i]
	if e.set == m {
		e.set = c.elems[m].next
	} else {
		for j := e.set; j >= 0; j = c.elems[j].next {
			if c.elems[j].next == m {
				c.elems[j].next = c.elems[m].next
				break
			}
		}
	}
	e.size--
	c.freeElemAt(m)
}

// setMin is wlc within entry i's set, also requiring AVAILABLE: the first element
// that is not OVERLOADed, has a positive weight and is AVAILABLE, then any later one
// not OVERLOADed, AVAILABLE and strictly less loaded. nil if none qualifies.
func (c *locCache) setMin(i int32) *Dest {
	j := c.ents[i].set
	var least *Dest
	for ; j >= 0; j = c.elems[j].next {
		if d := c.refs[c.elems[j].ref]; eligible(d) && !c.gone[c.elems[j].ref] {
			least = d
			break
		}
	}
	if least == nil {
		return nil
	}
	loh, lw := int64(least.Overhead()), int64(least.weight.Load())
	for j = c.elems[j].next; j >= 0; j = c.elems[j].next {
		r := c.elems[j].ref
		d := c.refs[r]
		if d.flags.Load()&FlagOverload != 0 {
			continue
		}
		doh, dw := int64(d.Overhead()), int64(d.weight.Load())
		if loh*dw > doh*lw && !c.gone[r] {
			least, loh, lw = d, doh, dw
		}
	}
	return least
}

// setMax returns the element of entry i's set with the most load per weight (first
// with a positive weight, then any later one with a positive weight and strictly
// more), or -1; OVERLOAD and AVAILABLE do not matter here.
func (c *locCache) setMax(i int32) int32 {
	j := c.ents[i].set
	for ; j >= 0; j = c.elems[j].next {
		if c.refs[c.elems[j].ref].weight.Load() > 0 {
			break
		}
	}
	if j < 0 {
		return -1
	}
	most := j
	m := c.refs[c.elems[j].ref]
	moh, mw := int64(m.Overhead()), int64(m.weight.Load())
	for j = c.elems[j].next; j >= 0; j = c.elems[j].next {
		d := c.refs[c.elems[j].ref]
		doh, dw := int64(d.Overhead()), int64(d.weight.Load())
		if moh*dw < doh*mw && dw > 0 {
			most, moh, mw = j, doh, dw
		}
	}
	return most
}
