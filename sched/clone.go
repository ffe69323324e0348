package sched

import "slices"

// A Cloner is a Scheduler with state of its own (a position, a cycle, a lookup table, a
// cache). Clone returns an independent copy that continues exactly where the original
// is: the same picks for the same packets, and hooks applied to the copy leave the
// original untouched. Schedulers without state (lc, wlc, sed, nq, fo, ovf) are shared
// between pools as they are.
type Cloner interface {
	Clone() Scheduler
}

// Clone returns a pool with the same list and a copy of the scheduler's state, for
// the Director's next configuration generation: edits go to the copy, while workers
// still on the previous generation keep scheduling from the original, whose list
// names only the dests that generation knows.
func (p *Pool) Clone() *Pool {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.s
	if c, ok := s.(Cloner); ok {
		s = c.Clone()
	}
	c := &Pool{dests: p.dests, s: s}
	if v := p.view.Load(); v != nil {
		c.view.Store(v) // the same scheduler (stateless: shared, not copied) and list
	}
	return c
}

func (s *rr) Clone() Scheduler  { c := *s; return &c }
func (s *wrr) Clone() Scheduler { c := *s; return &c }
func (s *sh) Clone() Scheduler  { c := *s; return &c } // the bucket array is copied with it
func (s *dh) Clone() Scheduler  { c := *s; return &c }

func (s *mh) Clone() Scheduler {
	c := *s
	c.table = slices.Clone(s.table)
	c.taken = make([]uint64, len(s.taken))
	c.setup = nil // rebuild scratch: reallocated on the copy's first rebuild
	return &c
}

func (s *lblc) Clone() Scheduler  { return &lblc{c: s.c.clone()} }
func (s *lblcr) Clone() Scheduler { return &lblcr{c: s.c.clone()} }

// clone copies the cache: chains, entries, sets and the collector's state.
func (c *locCache) clone() locCache {
	n := *c
	n.ents = slices.Clone(c.ents)
	n.elems = slices.Clone(c.elems)
	n.refs = slices.Clone(c.refs)
	n.refCnt = slices.Clone(c.refCnt)
	n.gone = slices.Clone(c.gone)
	return n
}

// Clone copies the default generator's state, so the copy draws the same sequence; a
// generator given in Options.Rand is shared and must be safe for concurrent use.
func (s *twos) Clone() Scheduler {
	c := &twos{rand: s.rand}
	if s.pcg != nil {
		p := *s.pcg
		c.pcg = &p
		c.rand = pcgDraw(c.pcg)
	}
	return c
}
