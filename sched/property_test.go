package sched

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestWRRShares: from init_service, wrr is periodic with period Σ weight/gcd and every
// window of one period holds each dest exactly weight/gcd times (§4.2 "Properties").
func TestWRRShares(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := 1 + rng.IntN(8)
		ws := make([]int32, n)
		for i := range ws {
			ws[i] = int32(rng.IntN(4)) * int32(1+rng.IntN(12)) // zeros and shared factors
		}
		g := int32(0)
		for _, w := range ws {
			if w > 0 {
				g = gcd(w, g)
			}
		}
		if g == 0 {
			continue
		}
		period := 0
		for _, w := range ws {
			period += int(w / g)
		}
		ds := mkDests(ws...)
		p := listPool(t, newSched(t, "wrr", Options{}), ds...)
		seq := make([]*Dest, 3*period)
		for i := range seq {
			seq[i] = p.Schedule(anyPkt)
		}
		for start := 0; start+period <= len(seq); start++ {
			count := map[*Dest]int{}
			for _, d := range seq[start : start+period] {
				count[d]++
			}
			for i, d := range ds {
				if count[d] != int(ws[i]/g) {
					t.Fatalf("weights %v: window at %d holds %s %d times, want %d", ws, start, name(d), count[d], ws[i]/g)
				}
			}
		}
	}
}

// TestHashStable: sh, dh and mh map a key to the same dest every time, whatever
// other keys were looked up in between, and an identical service built separately
// agrees.
func TestHashStable(t *testing.T) {
	for _, tc := range []struct {
		sched string
		opts  Options
	}{
		{"sh", Options{}}, {"sh", Options{Flags: FlagSched2}}, {"dh", Options{}},
		{"mh", Options{}}, {"mh", Options{Flags: FlagSched2}}, {"mh", Options{MHTableSize: 251}},
	} {
		t.Run(fmt.Sprintf("%s-%b-%d", tc.sched, tc.opts.Flags, tc.opts.MHTableSize), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			p1 := listPool(t, newSched(t, tc.sched, tc.opts), mkDests(1, 2, 3, 1, 5)...)
			twins := mkDests(1, 2, 3, 1, 5)
			slices.Reverse(twins)
			p2 := addPool(t, newSched(t, tc.sched, tc.opts), twins...)
			pkts := make([]*Packet, 500)
			first := make([]string, len(pkts))
			for i := range pkts {
				pkts[i] = randPacket(rng, 0, 256)
				first[i] = name(p1.Schedule(pkts[i]))
			}
			for range 3 {
				for _, i := range rng.Perm(len(pkts)) {
					if got := name(p1.Schedule(pkts[i])); got != first[i] {
						t.Fatalf("%s: %s, then %s", pktString(pkts[i]), first[i], got)
					}
					if got := name(p2.Schedule(pkts[i])); got != first[i] {
						t.Fatalf("%s: %s, the twin service %s", pktString(pkts[i]), first[i], got)
					}
				}
			}
		})
	}
}

// TestTableHistory: the sh, dh and mh tables depend only on the final list (and, for
// mh, the last non-zero weights), not on the adds, edits and deletes that led to it.
func TestTableHistory(t *testing.T) {
	table := func(s Scheduler) []uint32 {
		var ts []*Dest
		switch s := s.(type) {
		case *sh:
			ts = s.buckets[:]
		case *dh:
			ts = s.buckets[:]
		case *mh:
			ts = s.table
		}
		ids := make([]uint32, len(ts))
		for i, d := range ts {
			ids[i] = d.ID()
		}
		return ids
	}
	for _, n := range []string{"sh", "dh", "mh"} {
		t.Run(n, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 6))
			for range 20 {
				ws := []int32{int32(1 + rng.IntN(4)), int32(1 + rng.IntN(4)), int32(1 + rng.IntN(4)), int32(1 + rng.IntN(4))}
				direct := newSched(t, n, Options{})
				listPool(t, direct, mkDests(ws...)...)

				// The same list reached by a detour: extra dests come and go, weights
				// change and change back.
				s := newSched(t, n, Options{})
				ds := mkDests(ws...)
				extra := mkDests(1, 1, 1, 1, 1, 1)[4:]
				p := addPool(t, s, extra[0], ds[3], ds[2], extra[1], ds[1], ds[0])
				for _, i := range rng.Perm(4) {
					edit(t, p, ds[i], ws[i]+int32(1+rng.IntN(3)))
				}
				del(t, p, extra[1])
				for _, i := range rng.Perm(4) {
					edit(t, p, ds[i], ws[i])
				}
				del(t, p, extra[0])
				if got, want := table(s), table(direct); !slices.Equal(got, want) {
					t.Fatalf("weights %v: the table depends on the history", ws)
				}
			}
		})
	}
}

// TestMHDisruption: removing one of N dests from mh moves the removed dest's slots
// and only a few others (Maglev's minimal disruption); adding one takes about 1/(N+1)
// of the table. Measured here for M >= 200·N: at most 1.5·M/N slots change.
func TestMHDisruption(t *testing.T) {
	for _, m := range []int{4093, 65521} {
		for _, n := range []int{5, 10, 20} {
			for _, k := range []int{0, n / 2, n - 1} {
				ds := mkDests(slices.Repeat([]int32{1}, n)...)
				s := newSched(t, "mh", Options{MHTableSize: m})
				p := listPool(t, s, ds...)
				before := slices.Clone(s.(*mh).table)
				del(t, p, ds[k])
				changed, others := 0, 0
				for i, d := range s.(*mh).table {
					if d != before[i] {
						changed++
						if before[i] != ds[k] {
							others++
						}
					}
					if d == ds[k] {
						t.Fatalf("M=%d N=%d: the removed dest still owns slot %d", m, n, i)
					}
				}
				if bound := 3 * m / (2 * n); changed > bound {
					t.Errorf("M=%d N=%d remove #%d: %d slots changed (%d not the removed dest's), want <= %d", m, n, k, changed, others, bound)
				}
				mid := slices.Clone(s.(*mh).table)
				if err := p.Add(mkDest(n, 1)); err != nil {
					t.Fatal(err)
				}
				changed = 0
				for i, d := range s.(*mh).table {
					if d != mid[i] {
						changed++
					}
				}
				if bound := 3 * m / (2 * n); changed > bound {
					t.Errorf("M=%d N=%d add: %d slots changed, want <= %d", m, n, changed, bound)
				}
			}
		}
	}
}

// TestHashShares: sh gives each dest weight buckets per turn round the list; mh gives
// each dest a share of slots within one round's turns of its weight share.
func TestHashShares(t *testing.T) {
	ws := []int32{1, 2, 3, 2} // Σ 8 divides 256
	ds := mkDests(ws...)
	s := newSched(t, "sh", Options{})
	listPool(t, s, ds...)
	for i, d := range ds {
		n := 0
		for _, b := range s.(*sh).buckets {
			if b == d {
				n++
			}
		}
		if want := 256 * int(ws[i]) / 8; n != want {
			t.Errorf("sh: %s owns %d buckets, want %d", name(d), n, want)
		}
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for range 20 {
		ws := make([]int32, 2+rng.IntN(6))
		sum := 0
		for i := range ws {
			ws[i] = int32(1 + rng.IntN(8))
			sum += int(ws[i])
		}
		g := int32(0)
		for _, w := range ws {
			g = gcd(w, g)
		}
		ds := mkDests(ws...)
		s := newSched(t, "mh", Options{})
		listPool(t, s, ds...)
		counts, _ := mhCounts(s, ds)
		for i := range ds {
			exact := 4093 * float64(ws[i]) / float64(sum)
			if diff := float64(counts[i]) - exact; diff > float64(ws[i]/g)+1 || diff < -float64(ws[i]/g)-1 {
				t.Errorf("mh weights %v: %s owns %d slots, want %.1f ± %d", ws, name(ds[i]), counts[i], exact, ws[i]/g+1)
			}
		}
	}
}

// TestCacheOrder: the lblc cache and its collector do not depend on the order in
// which entries were made (chains are walked whole; the goal is checked per bucket).
func TestCacheOrder(t *testing.T) {
	const n = locMaxSize + 3000
	var dumps [2]string
	for run := range dumps {
		s := newSched(t, "lblc", Options{})
		p := listPool(t, s, mkDests(1, 1)...)
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		if run == 1 {
			rand.New(rand.NewPCG(9, 10)).Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		p.Schedule(pkt4("192.0.2.1", "198.19.0.0", 1, 0)) // starts the timer
		for _, i := range order {
			// Last use depends on the address only, and stays before the first tick.
			pk := pkt4("192.0.2.1", "198.18.0.0", 1, int64(i%60)*sec)
			pk.Dst[2], pk.Dst[3] = byte(i>>8), byte(i)
			p.Schedule(pk)
		}
		// Oversize collections at the ticks of minutes 11–20.
		p.Schedule(pkt4("192.0.2.1", "198.19.0.1", 1, 20*60*sec))
		if c := &s.(*lblc).c; c.live >= n {
			t.Fatalf("run %d: no oversize collection (%d entries)", run, c.live)
		}
		dumps[run] = dumpCache(s)
	}
	if dumps[0] != dumps[1] {
		t.Errorf("the cache after collection depends on the insertion order")
	}
}
