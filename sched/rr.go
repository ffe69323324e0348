package sched

// rr is round robin (docs/ipvs-semantics.md §4.1): a pointer into the list, advanced to each
// pick; the scan resumes after it and wraps round to try it last.
//
// The zero value is not usable (use newRR); it is used under its Pool's lock.
type rr struct {
	// pos is the index of the last pick in the list, -1 for the list head ("before
	// the first element"). cur is that dest, to check pos still names it.
	pos int
	cur *Dest
}

func newRR() *rr { return &rr{pos: -1} }

func (*rr) Name() string { return "rr" }

// Init puts the pointer on the list head, as init_service does.
func (s *rr) Init([]*Dest) { s.pos, s.cur = -1, nil }

// AddDest keeps the pointer on the same dest. The kernel has no add hook: the pointer
// is a list node, so a dest inserted at the head only shifts our index.
func (s *rr) AddDest(_ []*Dest, _ *Dest) {
	if s.pos >= 0 {
		s.pos++
	}
}

// DelDest moves the pointer to the predecessor of a deleted pointed-to dest (the head
// if it was first), so the scan resumes with what followed it (§4.1).
func (s *rr) DelDest(dests []*Dest, _ *Dest, at int) {
	switch {
	case s.pos == at:
		s.pos--
		s.cur = nil
		if s.pos >= 0 {
			s.cur = dests[s.pos]
		}
	case s.pos > at:
		s.pos--
	}
}

func (*rr) UpdDest([]*Dest, *Dest) {}

func (s *rr) Schedule(dests []*Dest, _ *Packet) *Dest {
	start := s.resync(dests)
	n := len(dests)
	// From the head: one pass over the list. From dest X: the dests after X, then
	// from the first up to and including X.
	for i := start + 1; i < n; i++ {
		if d := dests[i]; eligible(d) {
			s.pos, s.cur = i, d
			return d
		}
	}
	for i := 0; i <= start; i++ {
		if d := dests[i]; eligible(d) {
			s.pos, s.cur = i, d
			return d
		}
	}
	return nil
}

// resync returns the pointer's index, searching for the dest should the list have
// changed without the hooks being called (a Scheduler used outside a Pool).
func (s *rr) resync(dests []*Dest) int {
	if s.pos < 0 || (s.pos < len(dests) && dests[s.pos] == s.cur) {
		return s.pos
	}
	s.pos = -1
	for i, d := range dests {
		if d == s.cur {
			s.pos = i
		}
	}
	if s.pos < 0 {
		s.cur = nil
	}
	return s.pos
}

// eligible is the basic test of rr, lc-style schedulers: not OVERLOADed and a
// positive weight (§4, "eligible_basic").
func eligible(d *Dest) bool { return eligibleWeight(d) > 0 }

// eligibleWeight is d's weight when d is not OVERLOADed, else 0: eligible, for a
// caller that goes on to use the weight it read.
func eligibleWeight(d *Dest) int32 {
	if d.flags.Load()&FlagOverload != 0 {
		return 0
	}
	return d.weight.Load()
}
