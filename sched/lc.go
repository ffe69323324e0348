package sched

// lc is least connection (docs/ipvs-semantics.md §4.3): the dest with the smallest overhead
// (activeconns·256 + inactconns), weights ignored except that 0 excludes; ties go to
// the earliest in the list. It keeps no state.
type lc struct{}

func (lc) Name() string { return "lc" }

func (lc) Schedule(dests []*Dest, _ *Packet) *Dest {
	var least *Dest
	var loh int32
	for _, d := range dests {
		if d.flags.Load()&FlagOverload != 0 || d.weight.Load() == 0 {
			continue
		}
		if doh := d.Overhead(); least == nil || doh < loh {
			least, loh = d, doh
		}
	}
	return least
}
