package sched

import "math/rand/v2"

// twos is weighted power of two choices (docs/ipvs-semantics.md §4.9): two dests drawn with
// probability by weight, the less loaded (overhead/weight) of the two wins.
//
// The zero value is not usable (use newTwoS); it is used under its Pool's lock.
type twos struct {
	rand func(n uint32) uint32
	pcg  *rand.PCG // the default generator's state (nil when Options.Rand was given)
}

func newTwoS(r func(uint32) uint32) *twos {
	if r != nil {
		return &twos{rand: r}
	}
	p := defaultPCG()
	return &twos{rand: pcgDraw(p), pcg: p}
}

func (*twos) Name() string { return "twos" }

// Schedule follows the kernel's int arithmetic: weights sum and products are 32-bit
// and wrap; the draws are from [0, total] inclusive.
func (s *twos) Schedule(dests []*Dest, _ *Packet) *Dest {
	var choice1, choice2 *Dest
	var total int32
	for _, d := range dests {
		if eligible(d) {
			total += d.weight.Load()
			choice1 = d // provisional: the last eligible dest
		}
	}
	if choice1 == nil {
		return nil
	}
	r1 := int32(s.rand(uint32(total + 1)))
	r2 := int32(s.rand(uint32(total + 1)))

	// A draw r lands on the dest whose running weight sum first reaches r, so r = 0
	// picks the first dest. OVERLOAD may change under us (the flags are not guarded
	// by the Pool lock); then a draw can miss, and the kernel's defaults apply:
	// choice1 stays provisional with weight -1 and overhead 0.
	w1, w2, o1, o2 := int32(-1), int32(-1), int32(0), int32(0)
	for _, d := range dests {
		if !eligible(d) {
			continue
		}
		w := d.weight.Load()
		r1 -= w
		r2 -= w
		if r1 <= 0 && w1 == -1 {
			choice1, w1, o1 = d, w, d.Overhead()
		}
		if r2 <= 0 && w2 == -1 {
			choice2, w2, o2 = d, w, d.Overhead()
		}
		if w1 != -1 && w2 != -1 {
			break
		}
	}
	if choice2 != nil && w2*o1 > w1*o2 {
		return choice2
	}
	return choice1
}
