package sched

import (
	"fmt"
	"net/netip"
	"testing"
)

// benchPool is a service of n dests with mixed weights and connection counts, added
// one by one as a config load does, and 1024 packets from distinct clients to
// distinct destinations (so the hashing schedulers and caches see many keys).
func benchPool(tb testing.TB, sched string, n int) (*Pool, []Packet) {
	tb.Helper()
	s := newSched(tb, sched, Options{})
	p := NewPool(s)
	for i := range n {
		d := NewDest(uint32(i), netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 80, int32(1+i%5), 0, 0)
		if err := p.Add(d); err != nil {
			tb.Fatal(err)
		}
		conns(d, i%7, i%11)
	}
	pkts := make([]Packet, 1024)
	for i := range pkts {
		pk := &pkts[i]
		pk.Protocol, pk.SrcPort, pk.DstPort = protoTCP, uint16(1024+i), 80
		copy(pk.Src[:], []byte{198, 18, byte(i >> 8), byte(i)})
		copy(pk.Dst[:], []byte{198, 19, byte(i >> 8), byte(i * 7)})
	}
	return p, pkts
}

// scanners are the schedulers whose cost grows with the list (ns per server matters).
var scanners = map[string]bool{"lc": true, "wlc": true, "sed": true, "nq": true, "fo": true, "ovf": true, "twos": true}

func BenchmarkSchedule(b *testing.B) {
	for _, sched := range Names() {
		for _, n := range []int{10, 100} {
			b.Run(fmt.Sprintf("%s/%d", sched, n), func(b *testing.B) {
				p, pkts := benchPool(b, sched, n)
				for i := range pkts { // warm the caches of lblc/lblcr
					p.Schedule(&pkts[i])
				}
				b.ReportAllocs()
				b.ResetTimer()
				now := int64(0)
				for i := 0; b.Loop(); i++ {
					pk := &pkts[i&1023]
					now += 1e6 // 1 ms per connection: the lazy collector runs now and then
					pk.Now = now
					if p.Schedule(pk) == nil {
						b.Fatal("no dest")
					}
				}
				if scanners[sched] {
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/server")
				}
			})
		}
	}
}

// BenchmarkMHRebuild is one table population for 100 dests (every add, edit and delete).
func BenchmarkMHRebuild(b *testing.B) {
	for _, m := range []int{4093, 65521} {
		b.Run(fmt.Sprint(m), func(b *testing.B) {
			s := newSched(b, "mh", Options{MHTableSize: m}).(*mh)
			p, _ := benchPool(b, "rr", 100)
			dests := p.Dests()
			b.ReportAllocs()
			for b.Loop() {
				s.build(dests)
			}
		})
	}
}

// TestScheduleAllocs: a scheduling decision allocates nothing in steady state.
func TestScheduleAllocs(t *testing.T) {
	for _, sched := range Names() {
		p, pkts := benchPool(t, sched, 10)
		for i := range pkts {
			p.Schedule(&pkts[i])
		}
		i, now := 0, int64(0)
		if a := testing.AllocsPerRun(2000, func() {
			pk := &pkts[i&1023]
			now += 1e9 // a second per decision: the lazy collector ticks too
			pk.Now = now
			p.Schedule(pk)
			i++
		}); a != 0 {
			t.Errorf("%s: %v allocations per decision", sched, a)
		}
	}
}
