package sched

// Revive prepares a dest taken back from the kernel's "trash" (a deleted dest that is
// added again to the same service, docs/ipvs-semantics.md §2.1 step 3) for Pool.Add: it keeps
// its connection counters and takes the new weight and thresholds, clearing OVERLOAD
// when the new upper threshold is 0 or higher than the old one, as the common update
// step does. The dest must not be in a Pool: Revive does nothing to a dest that is
// (AVAILABLE), since its settings change only through Pool.Edit and the hooks.
func (d *Dest) Revive(weight int32, upper, lower uint32) {
	if d.Available() {
		return
	}
	if old := d.uThreshold.Load(); upper == 0 || upper > old {
		d.clearFlag(FlagOverload)
	}
	d.weight.Store(weight)
	d.uThreshold.Store(upper)
	d.lThreshold.Store(lower)
}
