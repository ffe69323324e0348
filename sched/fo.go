package sched

// fo is weighted fail-over (docs/ipvs-semantics.md §4.7): the non-OVERLOADed dest with the
// highest weight; ties go to the earliest, weight 0 never wins. It keeps no state.
type fo struct{}

func (fo) Name() string { return "fo" }

func (fo) Schedule(dests []*Dest, _ *Packet) *Dest {
	var hest *Dest
	var hw int32 // the running maximum starts at 0, which excludes weight 0
	for _, d := range dests {
		if w := d.weight.Load(); d.flags.Load()&FlagOverload == 0 && w > hw {
			hest, hw = d, w
		}
	}
	return hest
}
