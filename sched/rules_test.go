package sched

import (
	"math/rand/v2"
	"testing"
	"time"
)

// Rules of docs/ipvs-semantics.md §4 that the §12 vectors do not pin down.

// A wrr scan that starts after dest X and fails stops at X and keeps the last pass's
// weight (§4.2 step 5), so after the overload clears the rotation resumes after X.
func TestWRRFailureAfterDest(t *testing.T) {
	ds := mkDests(1, 1, 1)
	s := newSched(t, "wrr", Options{})
	p := listPool(t, s, ds...)
	if got := name(p.Schedule(anyPkt)); got != "A" {
		t.Fatalf("got %s, want A", got)
	}
	for _, d := range ds {
		d.setFlag(FlagOverload)
	}
	if d := p.Schedule(anyPkt); d != nil {
		t.Fatalf("got %s, want none", name(d))
	}
	if w := s.(*wrr); w.cl != 0 || w.cw != 1 {
		t.Errorf("after failing: cl=%d cw=%d, want A (0) and 1", w.cl, w.cw)
	}
	for _, d := range ds {
		d.clearFlag(FlagOverload)
	}
	if got, want := picks(p, 3, anyPkt), "B C A"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// rr and wrr are untouched by a weight-0 edit elsewhere only in wrr's case of a
// recomputed mark: rr keeps its pointer across edits and adds.
func TestRRPointerSurvivesChanges(t *testing.T) {
	ds := mkDests(1, 1, 1, 1)
	p := listPool(t, newSched(t, "rr", Options{}), ds[:3]...)
	picks(p, 2, anyPkt) // pointer on B
	edit(t, p, ds[2], 0)
	if err := p.Add(ds[3]); err != nil { // list [D A B C]
		t.Fatal(err)
	}
	if got, want := picks(p, 4, anyPkt), "D A B D"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// set_max breaks ties in favour of the earliest member: set [B, A] with equal loads
// sheds B.
func TestLBLCRShrinkTie(t *testing.T) {
	ds := mkDests(1, 1, 1)
	s := newSched(t, "lblcr", Options{LBLCRExpiration: time.Hour})
	p := listPool(t, s, ds...)
	x := func(now int64) *Packet { return pkt4("192.0.2.1", "203.0.113.10", 1, now) }
	p.Schedule(x(0)) // [A]
	conns(ds[0], 2, 0)
	if got := name(p.Schedule(x(10 * sec))); got != "B" { // [B A]
		t.Fatalf("got %s, want B", got)
	}
	conns(ds[1], 2, 0)
	// B (set_min's tie winner) is overloaded; the set sheds B, wlc adds C.
	if got := name(p.Schedule(x(10*sec + int64(time.Hour) + 1))); got != "C" {
		t.Fatalf("got %s, want C", got)
	}
	c := &s.(*lblcr).c
	k := locKeyOf(x(0))
	i, _ := c.lookup(&k)
	var set []*Dest
	for j := c.ents[i].set; j >= 0; j = c.elems[j].next {
		set = append(set, c.refs[c.elems[j].ref])
	}
	if got := names(set); got != "C A" {
		t.Errorf("set [%s], want [C A]", got)
	}
}

// A full check removes an entry exactly when now >= lastuse + expiration.
func TestLBLCExpiryBoundary(t *testing.T) {
	for _, n := range []string{"lblc", "lblcr"} {
		s := newSched(t, n, Options{LBLCExpiration: 30 * time.Minute, LBLCRExpiration: 30 * time.Minute})
		p := listPool(t, s, mkDests(1)...)
		p.Schedule(pkt4("192.0.2.1", "203.0.113.10", 1, 0)) // timer and entry at 0
		live := func() int {
			if l, ok := s.(*lblc); ok {
				return l.c.live
			}
			return s.(*lblcr).c.live
		}
		// The 30th tick, at 1800 s, is the first full check.
		p.Schedule(pkt4("192.0.2.1", "203.0.113.11", 1, 1800*sec-1))
		if live() != 2 {
			t.Errorf("%s: %d entries before the full check, want 2", n, live())
		}
		p.Schedule(pkt4("192.0.2.1", "203.0.113.12", 1, 1800*sec))
		if live() != 2 { // the first went, the third came
			t.Errorf("%s: %d entries after the full check, want 2", n, live())
		}
	}
}

// Replacing an lblc entry leaves the kernel's entry counter one higher each time
// (ip_vs_lblc_new unhashes the old entry without counting it out).
func TestLBLCCounterDrift(t *testing.T) {
	ds := mkDests(1, 1)
	s := newSched(t, "lblc", Options{})
	p := listPool(t, s, ds...)
	x := pkt4("192.0.2.1", "203.0.113.10", 1, 0)
	p.Schedule(x) // X → A
	for i := range 4 {
		// Quiesce the cached dest so wlc moves the entry to the other one.
		cur, other := ds[i%2], ds[(i+1)%2]
		edit(t, p, cur, 0)
		edit(t, p, other, 1)
		if got := p.Schedule(x); got != other {
			t.Fatalf("replacement %d: got %s, want %s", i, name(got), name(other))
		}
	}
	if c := &s.(*lblc).c; c.live != 1 || c.entries != 5 {
		t.Errorf("live %d entries %d, want 1 and 5", c.live, c.entries)
	}
}

// At its capacity the cache stops caching new addresses (the kernel's failed
// allocation) but scheduling goes on.
func TestLBLCCapacity(t *testing.T) {
	for _, n := range []string{"lblc", "lblcr"} {
		s := newSched(t, n, Options{LBLCCapacity: locMaxSize})
		p := listPool(t, s, mkDests(1)...)
		for i := range locMaxSize + 10 {
			pk := pkt4("192.0.2.1", "198.18.0.0", 1, 0)
			pk.Dst[2], pk.Dst[3] = byte(i>>8), byte(i)
			if p.Schedule(pk) == nil {
				t.Fatalf("%s: no dest for address %d", n, i)
			}
		}
		var live int
		if l, ok := s.(*lblc); ok {
			live = l.c.live
		} else {
			live = s.(*lblcr).c.live
		}
		if live != locMaxSize {
			t.Errorf("%s: %d entries, want %d", n, live, locMaxSize)
		}
	}
}

// A quiet decade costs a few sweeps, not five million ticks, and ends in the state
// tick-by-tick simulation reaches: entries gone, counter where 30-tick cycles put it.
func TestLBLCLongIdle(t *testing.T) {
	s := newSched(t, "lblc", Options{})
	p := listPool(t, s, mkDests(1)...)
	p.Schedule(pkt4("192.0.2.1", "203.0.113.10", 1, 0))
	const decade = 10 * 365 * 86400 * sec
	start := time.Now()
	p.Schedule(pkt4("192.0.2.1", "203.0.113.11", 1, decade))
	if el := time.Since(start); el > time.Second {
		t.Errorf("catching up took %v", el)
	}
	c := &s.(*lblc).c
	ticks := decade / locTick // ticks at 60 s … decade
	if c.live != 1 || c.counter != int(1+ticks%30) || c.next != (ticks+1)*locTick {
		t.Errorf("live %d counter %d next %d; want 1, %d, %d", c.live, c.counter, c.next, 1+ticks%30, (ticks+1)*locTick)
	}
}

// The default twos generator is deterministic per scheduler and answers n = 0.
func TestTwoSDefaultRand(t *testing.T) {
	a, b := defaultRand(), defaultRand()
	for range 100 {
		if a(7) != b(7) {
			t.Fatal("two default generators differ")
		}
	}
	for range 1000 {
		if a(3) >= 3 {
			t.Fatal("draw out of range")
		}
	}
	_ = a(0) // the full range, like get_random_u32_below(0)
}

// dh needs AVAILABLE; sh and mh do not test it (their tables are rebuilt on delete).
func TestDHAvailable(t *testing.T) {
	ds := mkDests(1)
	s := newSched(t, "dh", Options{})
	listPool(t, s, ds...)
	pk := pkt4("192.0.2.1", "10.10.10.10", 1, 0)
	ds[0].clearFlag(FlagAvailable)
	if d := s.Schedule(nil, pk); d != nil {
		t.Errorf("dh picked a dest that is not AVAILABLE")
	}
}

// mh's division-free mod agrees with %, at the edges and at random.
func TestMHMod(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, m := range mhPrimes {
		s, err := newMH(0, int(m))
		if err != nil {
			t.Fatal(err)
		}
		vs := []uint32{0, 1, m - 1, m, m + 1, 2*m - 1, 1 << 31, 1<<32 - 1, 1<<32 - 2}
		for range 10000 {
			vs = append(vs, rng.Uint32())
		}
		for _, v := range vs {
			if got := s.mod(v); got != v%m {
				t.Fatalf("%d mod %d = %d, want %d", v, m, got, v%m)
			}
		}
	}
}

// mh with MHCanonical builds the same table whatever the list order (directors
// whose dests were added in different orders agree); in list order, as the kernel
// builds it, the orders give different tables.
func TestMHCanonical(t *testing.T) {
	table := func(canonical bool, order ...int) string {
		ds := mkDests(1, 2, 1, 3, 1)
		s := newSched(t, "mh", Options{MHTableSize: 251, MHCanonical: canonical})
		list := make([]*Dest, len(order))
		for i, j := range order {
			list[i] = ds[j]
		}
		listPool(t, s, list...)
		return names(s.(*mh).table)
	}
	if a, b := table(true, 0, 1, 2, 3, 4), table(true, 4, 2, 0, 3, 1); a != b {
		t.Errorf("canonical tables differ by list order:\n%s\n%s", a, b)
	}
	if a, b := table(false, 0, 1, 2, 3, 4), table(false, 4, 2, 0, 3, 1); a == b {
		t.Error("list-order tables agree for different orders: the test shows nothing")
	}
	if a, b := table(true, 0, 1, 2, 3, 4), table(false, 0, 1, 2, 3, 4); a != b {
		t.Errorf("for a sorted list the canonical table is not the kernel's:\n%s\n%s", a, b)
	}
	s := newSched(t, "mh", Options{MHTableSize: 251, MHCanonical: true})
	p := listPool(t, s, mkDests(1, 2, 1, 3, 1)...)
	if n := testing.AllocsPerRun(100, func() { s.(*mh).build(p.Dests()) }); n != 0 {
		t.Errorf("canonical rebuild allocates %v times", n)
	}
}
