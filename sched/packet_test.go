package sched

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestReadsPacket: a scheduler ReadsPacket calls blind picks the same dests for
// any packets — two of them, made alike on the same list, given different random
// packets, the connections they pick bound to both — while each one it calls a
// reader picks differently for some packets (so the packets differ enough to tell).
func TestReadsPacket(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	packet := func() *Packet {
		p := &Packet{SrcPort: uint16(rnd.Uint32()), DstPort: uint16(rnd.Uint32()), Protocol: 6, Now: rnd.Int64N(1 << 50)}
		binary.LittleEndian.PutUint32(p.Src[:], rnd.Uint32())
		binary.LittleEndian.PutUint32(p.Dst[:], 0xc6120000+rnd.Uint32N(8)) // a few: lblc's cache finds some again
		return p
	}
	ds := mkDests(1, 2, 3, 1, 2)
	for _, n := range Names() {
		var pools [2]*Pool
		for j := range pools {
			s, err := New(n, Options{})
			if err != nil {
				t.Fatal(err)
			}
			pools[j] = NewPool(s)
			for _, d := range ds {
				d.clearFlag(FlagAvailable) // in the other pool's list too: Add refuses an available dest
				if err := pools[j].Add(d); err != nil {
					t.Fatal(err)
				}
			}
		}
		differ := false
		for range 1000 {
			a, b := pools[0].Schedule(packet()), pools[1].Schedule(packet())
			differ = differ || a != b
			for _, d := range []*Dest{a, b} { // the loads change, alike for both pools
				if d != nil {
					d.BindConn(true)
				}
			}
		}
		if differ != ReadsPacket(pools[0].Scheduler()) {
			t.Errorf("%s: ReadsPacket %v, picks for different packets differ %v", n, ReadsPacket(pools[0].Scheduler()), differ)
		}
	}
}
