package sched

// wrr is weighted round robin (docs/ipvs-semantics.md §4.2): passes over the list with a
// current weight cw falling from mw by di (the gcd of the weights) down to 1; a pass
// picks, in list order, every dest whose weight reaches cw.
//
// The zero value is not usable (use newWRR); it is used under its Pool's lock.
type wrr struct {
	cl int   // index of the last pick, -1 for the list head
	cw int32 // current weight
	mw int32 // max weight − (di − 1): the last pass then has cw = 1
	di int32 // gcd of the positive weights, 1 if there are none
}

func newWRR() *wrr { return &wrr{cl: -1, di: 1} }

func (*wrr) Name() string { return "wrr" }

// Init computes the mark afresh and starts with a full-weight pass.
func (s *wrr) Init(dests []*Dest) {
	s.cl = -1
	s.di, s.mw = wrrWeights(dests)
	s.cw = s.mw
}

func (s *wrr) AddDest(dests []*Dest, _ *Dest)        { s.changed(dests) }
func (s *wrr) DelDest(dests []*Dest, _ *Dest, _ int) { s.changed(dests) }
func (s *wrr) UpdDest(dests []*Dest, _ *Dest)        { s.changed(dests) }

// changed is the kernel's dest_changed: restart from the head, recompute di and mw,
// and keep cw where possible — so a service filled one add at a time starts with a
// low cw (§4.2 note, TV-WRR-2/3/5): when cw is past mw or 0 it becomes mw; otherwise,
// with di > 1, it is rounded down to a multiple of di plus one, a pass value of the
// new cycle.
func (s *wrr) changed(dests []*Dest) {
	s.cl = -1
	s.di, s.mw = wrrWeights(dests)
	switch {
	case s.cw > s.mw || s.cw == 0:
		s.cw = s.mw
	case s.di > 1:
		s.cw = (s.cw/s.di)*s.di + 1
	}
}

// wrrWeights returns di, the gcd of the positive weights (1 if none), and mw, the
// largest weight (at least 0) reduced by di − 1.
func wrrWeights(dests []*Dest) (di, mw int32) {
	var g, top int32
	for _, d := range dests {
		w := d.weight.Load()
		if w > 0 {
			g = gcd(w, g)
		}
		if w > top {
			top = w
		}
	}
	if g == 0 {
		g = 1
	}
	return g, top - (g - 1)
}

// gcd returns the greatest common divisor of a > 0 and b >= 0 (a when b is 0).
func gcd(a, b int32) int32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func (s *wrr) Schedule(dests []*Dest, _ *Packet) *Dest {
	if s.mw == 0 {
		return nil // no positive weight
	}
	if s.cl >= len(dests) {
		s.cl = -1 // the list shrank without the hooks (a Scheduler used outside a Pool)
	}
	last := s.cl
	stop := -2 // none
	lastPass, restarted := false, false
	i := s.cl + 1
	for {
		for ; i < len(dests); i++ {
			d := dests[i]
			if d.flags.Load()&FlagOverload == 0 && d.weight.Load() >= s.cw {
				s.cl = i
				return d
			}
			if i == stop {
				s.cl = i // every dest was checked in the last pass
				return nil
			}
		}
		// End of a pass: lower cw. Wrapping below 1 starts a new cycle at mw; a
		// second wrap, or a wrap after a scan that began at the head, means the
		// last pass (cw <= di) saw every dest.
		s.cw -= s.di
		if s.cw <= 0 {
			s.cw = s.mw
			if lastPass || last < 0 {
				s.cl = -1
				return nil
			}
			restarted = true
		}
		lastPass = s.cw <= s.di
		if lastPass && restarted && last >= 0 {
			// The first last pass covered only the dests after last; this one
			// covers the rest, up to and including last.
			stop = last
		}
		i = 0
	}
}
