package sched

// wlc is weighted least connection (docs/ipvs-semantics.md §4.4): the dest with the smallest
// overhead/weight, compared as 64-bit cross products; ties go to the earliest.
// It keeps no state.
type wlc struct{}

func (wlc) Name() string { return "wlc" }

func (wlc) Schedule(dests []*Dest, _ *Packet) *Dest { return leastWeighted(dests, false) }

// leastWeighted is the scan wlc, sed and the fallback of lblc/lblcr share: the first
// dest that is not OVERLOADed and has a positive weight, then every later dest that is
// not OVERLOADed and whose load·weight cross product is strictly smaller. Later dests'
// weights are not tested: a weight of 0 zeroes the left side, so it cannot win.
// The load is the overhead (§1.4), or with expectedDelay sed's activeconns + 1.
func leastWeighted(dests []*Dest, expectedDelay bool) *Dest {
	i := 0
	var least *Dest
	var lw int64
	for ; i < len(dests); i++ {
		// eligible, keeping the weight it read for the comparisons below.
		if w := eligibleWeight(dests[i]); w > 0 {
			least, lw = dests[i], int64(w)
			break
		}
	}
	if least == nil {
		return nil
	}
	loh := int64(load(least, expectedDelay))
	for _, d := range dests[i+1:] {
		if d.flags.Load()&FlagOverload != 0 {
			continue
		}
		doh, dw := int64(load(d, expectedDelay)), int64(d.weight.Load())
		if loh*dw > doh*lw {
			least, loh, lw = d, doh, dw
		}
	}
	return least
}

// load is the 32-bit int figure the kernel compares: the overhead, or sed's delay.
func load(d *Dest, expectedDelay bool) int32 {
	if expectedDelay {
		return d.ActiveConns() + 1
	}
	return d.Overhead()
}
