package sched

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestConnsWord drives a Dest's packed activeconns/inactconns word with random
// Bind, BindConn, Activate, Deactivate and Unbind calls — counts going negative
// included — and checks it against two plain counters. (The word is exact while each
// count fits an int32, which the table's Max keeps them well within.)
func TestConnsWord(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		d := NewDest(1, netip.MustParseAddr("198.18.0.5"), 80, 1, uint32(rng.IntN(8)), uint32(rng.IntN(4)))
		var act, inact int32
		if round%2 == 0 { // start from large counts
			base := int32(rng.IntN(1 << 30))
			d.conns.Add(int64(base)<<32 + int64(base))
			act, inact = base, base
		}
		for range 500 {
			switch rng.IntN(6) {
			case 0:
				d.Bind(false)
				inact++
			case 1:
				d.BindConn(true)
				act++
			case 2:
				d.BindConn(false)
				inact++
			case 3:
				d.Activate()
				act, inact = act+1, inact-1
			case 4:
				d.Deactivate()
				act, inact = act-1, inact+1
			case 5:
				a := rng.IntN(2) == 0
				d.Unbind(false, a)
				if a {
					act--
				} else {
					inact--
				}
			}
			if d.ActiveConns() != act || d.InactConns() != inact || d.Overhead() != act<<8+inact {
				t.Fatalf("round %d: active %d inactive %d overhead %d, want %d %d %d", round,
					d.ActiveConns(), d.InactConns(), d.Overhead(), act, inact, act<<8+inact)
			}
		}
	}
	// BindConn(true) leaves what Bind(false) then Activate leave, the flag included.
	a := NewDest(1, netip.MustParseAddr("198.18.0.5"), 80, 1, 1, 0)
	b := NewDest(2, netip.MustParseAddr("198.18.0.6"), 80, 1, 1, 0)
	a.Bind(false)
	a.Activate()
	b.BindConn(true)
	if a.ActiveConns() != b.ActiveConns() || a.InactConns() != b.InactConns() || a.Overloaded() != b.Overloaded() || !b.Overloaded() {
		t.Fatalf("Bind+Activate: %d/%d overloaded %v; BindConn: %d/%d overloaded %v",
			a.ActiveConns(), a.InactConns(), a.Overloaded(), b.ActiveConns(), b.InactConns(), b.Overloaded())
	}
}
