package sched

// ovf is overflow (docs/ipvs-semantics.md §4.8): the highest-weight dest that is not OVERLOADed
// and whose active connections do not exceed its weight (equality still qualifies);
// ties go to the earliest. It keeps no state.
type ovf struct{}

func (ovf) Name() string { return "ovf" }

func (ovf) Schedule(dests []*Dest, _ *Packet) *Dest {
	var h *Dest
	var hw int32
	for _, d := range dests {
		w := d.weight.Load()
		if d.flags.Load()&FlagOverload != 0 || d.ActiveConns() > w || w == 0 {
			continue
		}
		if h == nil || w > hw {
			h, hw = d, w
		}
	}
	return h
}
