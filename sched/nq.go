package sched

// nq is never queue (docs/ipvs-semantics.md §4.6): the first idle dest (no active connection) in
// list order whatever its weight, else sed's choice. It keeps no state.
type nq struct{}

func (nq) Name() string { return "nq" }

func (nq) Schedule(dests []*Dest, _ *Packet) *Dest {
	var least *Dest
	var loh, lw int64
	for _, d := range dests {
		if !eligible(d) {
			continue
		}
		act := d.ActiveConns()
		if act == 0 {
			return d
		}
		doh, dw := int64(act+1), int64(d.weight.Load())
		if least == nil || loh*dw > doh*lw {
			least, loh, lw = d, doh, dw
		}
	}
	return least
}
