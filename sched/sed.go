package sched

// sed is shortest expected delay (docs/ipvs-semantics.md §4.5): wlc with activeconns + 1 as the
// load, inactive connections ignored. It keeps no state.
type sed struct{}

func (sed) Name() string { return "sed" }

func (sed) Schedule(dests []*Dest, _ *Packet) *Dest { return leastWeighted(dests, true) }
