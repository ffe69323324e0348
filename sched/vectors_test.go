package sched

import (
	"testing"
	"time"
)

// The golden vectors of docs/ipvs-semantics.md §12.1–12.11, each as the spec states it.

var anyPkt = pkt4("192.0.2.1", "198.51.100.1", 1000, 0)

func TestVectorsRR(t *testing.T) {
	t.Run("TV-RR-1", func(t *testing.T) {
		p := listPool(t, newSched(t, "rr", Options{}), mkDests(1, 1, 1)...)
		if got, want := picks(p, 7, anyPkt), "A B C A B C A"; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})
	t.Run("TV-RR-2", func(t *testing.T) {
		p := listPool(t, newSched(t, "rr", Options{}), mkDests(1, 0, 1)...)
		if got, want := picks(p, 5, anyPkt), "A C A C A"; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})
	t.Run("TV-RR-3", func(t *testing.T) {
		p := addPool(t, newSched(t, "rr", Options{}), mkDests(1, 1, 1)...)
		if got, want := picks(p, 6, anyPkt), "C B A C B A"; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})
	t.Run("TV-RR-4", func(t *testing.T) {
		ds := mkDests(1, 1, 1)
		p := listPool(t, newSched(t, "rr", Options{}), ds...)
		if got, want := picks(p, 2, anyPkt), "A B"; got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
		del(t, p, ds[1])
		if got, want := picks(p, 3, anyPkt), "C A C"; got != want {
			t.Errorf("after deleting B: got %s, want %s", got, want)
		}
	})
	t.Run("TV-RR-5", func(t *testing.T) {
		ds := mkDests(1, 1, 1)
		p := addPool(t, newSched(t, "rr", Options{}), ds[0], ds[1])
		if got, want := picks(p, 2, anyPkt), "B A"; got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
		if err := p.Add(ds[2]); err != nil {
			t.Fatal(err)
		}
		if got, want := picks(p, 4, anyPkt), "C B A C"; got != want {
			t.Errorf("after adding C: got %s, want %s", got, want)
		}
	})
	t.Run("TV-RR-6", func(t *testing.T) {
		ds := mkDests(1, 0, 1)
		p := listPool(t, newSched(t, "rr", Options{}), ds...)
		if got := name(p.Schedule(anyPkt)); got != "A" {
			t.Fatalf("got %s, want A", got)
		}
		ds[0].setFlag(FlagOverload)
		ds[2].setFlag(FlagOverload)
		if got := name(p.Schedule(anyPkt)); got != "-" {
			t.Fatalf("all OVL or w=0: got %s, want none", got)
		}
		ds[0].clearFlag(FlagOverload)
		ds[2].clearFlag(FlagOverload)
		// The pointer stayed on A, so C comes next.
		if got, want := picks(p, 3, anyPkt), "C A C"; got != want {
			t.Errorf("after the failure: got %s, want %s", got, want)
		}
	})
}

func wrrState(s Scheduler) [3]int32 {
	w := s.(*wrr)
	return [3]int32{w.di, w.mw, w.cw}
}

func TestVectorsWRR(t *testing.T) {
	t.Run("TV-WRR-1", func(t *testing.T) {
		p := listPool(t, newSched(t, "wrr", Options{}), mkDests(4, 3, 2)...)
		if got, want := picks(p, 18, anyPkt), "A A B A B C A B C A A B A B C A B C"; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})
	// Empty service, dests added one by one: states (di, mw, cw) after each add.
	oneByOne := []struct {
		name    string
		weights []int32 // of A, B, C
		order   []int   // add order
		states  [][3]int32
		want    string
	}{
		{"TV-WRR-2", []int32{4, 3, 2}, []int{0, 1, 2}, [][3]int32{{4, 1, 1}, {1, 4, 1}, {1, 4, 1}},
			"C B A A B A C B A C B A A B A C B A C B A"},
		{"TV-WRR-3", []int32{4, 3, 2}, []int{2, 1, 0}, [][3]int32{{2, 1, 1}, {1, 3, 1}, {1, 4, 1}},
			"A B C A A B A B C A B C A A B"},
		{"TV-WRR-5", []int32{4, 2}, []int{1, 0}, [][3]int32{{2, 1, 1}, {2, 3, 1}},
			"A B A A B A A B A"},
	}
	for _, tc := range oneByOne {
		t.Run(tc.name, func(t *testing.T) {
			ds := mkDests(tc.weights...)
			s := newSched(t, "wrr", Options{})
			p := NewPool(s)
			for i, j := range tc.order {
				if err := p.Add(ds[j]); err != nil {
					t.Fatal(err)
				}
				if got := wrrState(s); got != tc.states[i] {
					t.Errorf("after adding %s: (di,mw,cw) = %v, want %v", name(ds[j]), got, tc.states[i])
				}
			}
			n := len(tc.want+" ") / 2
			if got := picks(p, n, anyPkt); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	t.Run("TV-WRR-4", func(t *testing.T) {
		s := newSched(t, "wrr", Options{})
		p := listPool(t, s, mkDests(4, 2)...)
		if got, want := wrrState(s), [3]int32{2, 3, 3}; got != want {
			t.Errorf("(di,mw,cw) = %v, want %v", got, want)
		}
		if got, want := picks(p, 9, anyPkt), "A A B A A B A A B"; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})
	t.Run("TV-WRR-6", func(t *testing.T) {
		ds := mkDests(4, 3, 2)
		p := listPool(t, newSched(t, "wrr", Options{}), ds...)
		ds[1].setFlag(FlagOverload) // after Add, which clears it (u = 0)
		if got, want := picks(p, 12, anyPkt), "A A A C A C A A A C A C"; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})
	t.Run("TV-WRR-7", func(t *testing.T) {
		ds := mkDests(4, 3, 2)
		s := newSched(t, "wrr", Options{})
		p := listPool(t, s, ds...)
		for _, d := range ds {
			d.setFlag(FlagOverload)
		}
		if got := p.Schedule(anyPkt); got != nil {
			t.Fatalf("got %s, want none", name(got))
		}
		if w := s.(*wrr); w.cl != -1 || w.cw != 4 {
			t.Errorf("after the failure cl=%d cw=%d, want head (-1) and 4", w.cl, w.cw)
		}
	})
	t.Run("TV-WRR-8", func(t *testing.T) {
		ds := mkDests(4, 3, 2)
		s := newSched(t, "wrr", Options{})
		p := listPool(t, s, ds...)
		if got, want := picks(p, 5, anyPkt), "A A B A B"; got != want {
			t.Fatalf("got %s, want %s", got, want)
		}
		if w := s.(*wrr); w.cl != 1 || w.cw != 2 {
			t.Fatalf("cl=%d cw=%d, want B (1) and 2", w.cl, w.cw)
		}
		edit(t, p, ds[1], 6)
		if got, want := wrrState(s), [3]int32{2, 5, 3}; got != want {
			t.Errorf("after the edit (di,mw,cw) = %v, want %v", got, want)
		}
		if got, want := picks(p, 13, anyPkt), "A B A B C B A B A B C B A"; got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	})
	t.Run("TV-WRR-9", func(t *testing.T) {
		s := newSched(t, "wrr", Options{})
		p := listPool(t, s, mkDests(0, 0)...)
		if got, want := wrrState(s), [3]int32{1, 0, 0}; got != want {
			t.Errorf("(di,mw,cw) = %v, want %v", got, want)
		}
		if got := p.Schedule(anyPkt); got != nil {
			t.Errorf("got %s, want none", name(got))
		}
	})
}

// A destSpec is a dest of a §12.3 vector.
type destSpec struct {
	w          int32
	act, inact int
	ovl        bool
}

// specPool builds the pool of a §12.3 vector: list specs in order, bound to s.
func specPool(t *testing.T, s Scheduler, specs []destSpec) *Pool {
	t.Helper()
	ds := make([]*Dest, len(specs))
	for i, sp := range specs {
		ds[i] = mkDest(i, sp.w)
		conns(ds[i], sp.act, sp.inact)
	}
	p := listPool(t, s, ds...)
	for i, sp := range specs {
		if sp.ovl {
			ds[i].setFlag(FlagOverload) // after Add, which clears it (u = 0)
		}
	}
	return p
}

func TestVectorsLeastConn(t *testing.T) {
	tests := []struct {
		name  string
		sched string
		dests []destSpec
		want  string
	}{
		{"TV-LC-1", "lc", []destSpec{{w: 1, act: 2}, {w: 1, act: 1, inact: 300}, {w: 1, act: 1, inact: 256}}, "A"},
		{"TV-LC-2", "lc", []destSpec{{w: 0}, {w: 1, act: 3}, {w: 1, act: 3}}, "B"},
		{"TV-LC-3", "lc", []destSpec{{w: 1, ovl: true}, {w: 0}}, "-"},
		{"TV-WLC-1", "wlc", []destSpec{{w: 1, act: 1}, {w: 2, act: 2}, {w: 3, act: 2, inact: 100}}, "C"},
		{"TV-WLC-2", "wlc", []destSpec{{w: 2, act: 1}, {w: 4, act: 2}, {w: 1}}, "C"},
		{"TV-WLC-3", "wlc", []destSpec{{w: 0}, {w: 1, act: 5}, {w: 0}}, "B"},
		{"TV-SED-1", "sed", []destSpec{{w: 1}, {w: 3, act: 2}, {w: 2, act: 1}}, "A"},
		{"TV-SED-2", "sed", []destSpec{{w: 1, act: 1}, {w: 5, act: 3}, {w: 1}}, "B"},
		{"TV-NQ-1", "nq", []destSpec{{w: 1, act: 1}, {w: 5, act: 3}, {w: 1}}, "C"},
		{"TV-NQ-2", "nq", []destSpec{{w: 1, act: 1}, {w: 5, act: 3}, {w: 1, act: 1}}, "B"},
		{"TV-FO-1", "fo", []destSpec{{w: 5}, {w: 10, ovl: true}, {w: 10}, {w: 10}}, "C"},
		{"TV-OVF-1", "ovf", []destSpec{{w: 3, act: 3}, {w: 5, act: 6}, {w: 5, act: 5}, {w: 1}}, "C"},
		{"TV-OVF-2", "ovf", []destSpec{{w: 3, act: 4}, {w: 5, act: 6}}, "-"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := specPool(t, newSched(t, tc.sched, Options{}), tc.dests)
			if got := name(p.Schedule(anyPkt)); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestVectorsTwoS(t *testing.T) {
	tests := []struct {
		r1, r2 uint32
		want   string
	}{
		{0, 7, "C"}, {2, 3, "B"}, {3, 3, "B"}, {10, 0, "C"}, {6, 5, "B"},
	}
	for _, tc := range tests {
		draws := []uint32{tc.r1, tc.r2}
		rnd := func(n uint32) uint32 {
			if n != 11 {
				t.Errorf("draw from [0,%d), want [0,11)", n)
			}
			r := draws[0]
			draws = draws[1:]
			return r
		}
		p := specPool(t, newSched(t, "twos", Options{Rand: rnd}), []destSpec{{w: 2, act: 1}, {w: 3}, {w: 5, act: 1, inact: 10}})
		if got := name(p.Schedule(anyPkt)); got != tc.want {
			t.Errorf("r1=%d r2=%d: got %s, want %s", tc.r1, tc.r2, got, tc.want)
		}
	}
}

func TestVectorsHash32(t *testing.T) {
	tests := []struct{ v, h8, h10 uint32 }{
		{0, 0, 0}, {1, 97, 391}, {0x0a000001, 39, 159}, {0xffffffff, 158, 632}, {0xc0a80101, 136, 547},
	}
	for _, tc := range tests {
		if got := hash32(tc.v, 8); got != tc.h8 {
			t.Errorf("hash_32(%#x, 8) = %d, want %d", tc.v, got, tc.h8)
		}
		if got := hash32(tc.v, 10); got != tc.h10 {
			t.Errorf("hash_32(%#x, 10) = %d, want %d", tc.v, got, tc.h10)
		}
	}
	v := uint32(0xc0a80101)
	if got := v * 0x61C88647; got != 0x88e6cd47 {
		t.Errorf("product %#x, want 0x88e6cd47", got)
	}
}

func TestVectorsSH(t *testing.T) {
	ds := mkDests(1, 2, 1)
	s := newSched(t, "sh", Options{})
	p := listPool(t, s, ds...)
	pattern := []*Dest{ds[0], ds[1], ds[1], ds[2]}
	for i, d := range s.(*sh).buckets {
		if d != pattern[i%4] {
			t.Fatalf("bucket %d = %s, want %s", i, name(d), name(pattern[i%4]))
		}
	}
	lookups := []struct {
		client string
		want   string
	}{
		{"192.168.1.1", "A"}, {"192.168.1.2", "B"}, {"192.168.1.3", "A"}, {"10.1.1.1", "B"},
		{"172.16.0.1", "B"}, {"1.2.3.4", "A"}, {"203.0.113.7", "A"}, {"2001:db8::1", "C"},
	}
	for _, tc := range lookups {
		dst := "192.0.2.80"
		if tc.client == "2001:db8::1" {
			dst = "2001:db8::80"
		}
		if got := name(p.Schedule(pkt4(tc.client, dst, 40000, 0))); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.client, got, tc.want)
		}
	}

	t.Run("sh-port", func(t *testing.T) {
		p := listPool(t, newSched(t, "sh", Options{Flags: FlagSched2}), mkDests(1, 2, 1)...)
		tests := []struct {
			client string
			sport  uint16
			want   string
		}{
			{"192.168.1.1", 12345, "C"}, {"192.168.1.1", 12346, "B"}, {"1.2.3.4", 80, "B"},
		}
		for _, tc := range tests {
			if got := name(p.Schedule(pkt4(tc.client, "192.0.2.80", tc.sport, 0))); got != tc.want {
				t.Errorf("%s:%d: got %s, want %s", tc.client, tc.sport, got, tc.want)
			}
		}
		// Only TCP, UDP and SCTP have ports to hash.
		pk := pkt4("192.168.1.1", "192.0.2.80", 12345, 0)
		pk.Protocol = 1
		if got := name(p.Schedule(pk)); got != "A" {
			t.Errorf("ICMP from 192.168.1.1: got %s, want A (port ignored)", got)
		}
		// An ICMP error's inner header: the client is its destination.
		pk = pkt4("192.0.2.80", "192.168.1.1", 80, 0)
		pk.DstPort, pk.Inverse = 12345, true
		if got := name(p.Schedule(pk)); got != "C" {
			t.Errorf("inverse 192.168.1.1:12345: got %s, want C", got)
		}
	})

	t.Run("TV-SH-FB", func(t *testing.T) {
		tests := []struct {
			client        string
			plain, withFB string
		}{
			{"192.168.1.1", "-", "C"},
			{"192.168.1.2", "A", "A"},
			{"192.168.1.3", "-", "C"},
			{"10.1.1.1", "-", "C"},
			{"172.16.0.1", "C", "C"},
			{"1.2.3.4", "-", "C"},
		}
		for _, fb := range []bool{false, true} {
			var f Flags
			if fb {
				f = FlagSched1
			}
			ds := mkDests(1, 2, 1)
			s := newSched(t, "sh", Options{Flags: f})
			p := listPool(t, s, ds...)
			edit(t, p, ds[1], 0)
			for i, d := range s.(*sh).buckets {
				if d != ds[i%3] {
					t.Fatalf("after B:0, bucket %d = %s, want %s", i, name(d), name(ds[i%3]))
				}
			}
			for _, tc := range tests {
				want := tc.plain
				if fb {
					want = tc.withFB
				}
				if got := name(p.Schedule(pkt4(tc.client, "192.0.2.80", 1, 0))); got != want {
					t.Errorf("fallback=%v %s: got %s, want %s", fb, tc.client, got, want)
				}
			}
		}
	})
}

func TestVectorsDH(t *testing.T) {
	ds := mkDests(1, 1, 1)
	s := newSched(t, "dh", Options{})
	p := listPool(t, s, ds...)
	for i, d := range s.(*dh).buckets {
		if d != ds[i%3] {
			t.Fatalf("bucket %d = %s, want %s", i, name(d), name(ds[i%3]))
		}
	}
	tests := []struct{ dst, want string }{
		{"10.10.10.10", "A"}, {"10.10.10.11", "B"}, {"8.8.8.8", "C"}, {"93.184.216.34", "A"},
	}
	for _, tc := range tests {
		// The source must not matter.
		for _, src := range []string{"192.0.2.1", "198.51.100.9"} {
			if got := name(p.Schedule(pkt4(src, tc.dst, 1, 0))); got != tc.want {
				t.Errorf("%s from %s: got %s, want %s", tc.dst, src, got, tc.want)
			}
		}
	}
}

// mhCounts returns how many slots each dest of ds owns, and the owners.
func mhCounts(s Scheduler, ds []*Dest) ([]int, []*Dest) {
	m := s.(*mh)
	n := make([]int, len(ds))
	for _, d := range m.table {
		for i := range ds {
			if d == ds[i] {
				n[i]++
			}
		}
	}
	return n, append([]*Dest(nil), m.table...)
}

func TestVectorsMH(t *testing.T) {
	t.Run("siphash", func(t *testing.T) {
		tests := []struct {
			key     uint64
			v, want uint32
		}{
			{mhKey1, 0x0a000051, 0x439c0cbe}, {mhKey2, 0x0a000051, 0x97b3dc47}, {mhKey1, 0xc0a80101, 0xd3f1b4d3},
		}
		for _, tc := range tests {
			if got := mhHash(tc.key, tc.v); got != tc.want {
				t.Errorf("h(%d, %#x) = %#x, want %#x", tc.key, tc.v, got, tc.want)
			}
		}
		setup := []struct{ v, offset, skip uint32 }{
			{0x0a000051, 3167, 700}, {0x0a000052, 1231, 3544}, {0x0a000053, 1631, 3453},
		}
		for _, tc := range setup {
			if o, sk := mhHash(mhKey1, tc.v)%4093, mhHash(mhKey2, tc.v)%4092+1; o != tc.offset || sk != tc.skip {
				t.Errorf("v=%#x: offset %d skip %d, want %d %d", tc.v, o, sk, tc.offset, tc.skip)
			}
		}
	})

	type lookup struct {
		client string
		sport  uint16
		want   string
	}
	check := func(t *testing.T, p *Pool, flags Flags, tests []lookup) {
		t.Helper()
		for _, tc := range tests {
			dst := "192.0.2.80"
			if tc.client == "2001:db8::1" {
				dst = "2001:db8::80"
			}
			if got := name(p.Schedule(pkt4(tc.client, dst, tc.sport, 0))); got != tc.want {
				t.Errorf("flags %b %s:%d: got %s, want %s", flags, tc.client, tc.sport, got, tc.want)
			}
		}
	}

	// TV-MH-1 and its table, the reference of TV-MH-5 and -6.
	ds1 := mkDests(1, 1, 1)
	s1 := newSched(t, "mh", Options{})
	p1 := listPool(t, s1, ds1...)
	counts1, table1 := mhCounts(s1, ds1)
	t.Run("TV-MH-1", func(t *testing.T) {
		place := []struct {
			slot int
			d    string
		}{
			{3167, "A"}, {1231, "B"}, {1631, "C"}, {3867, "A"}, {682, "B"}, {991, "C"}, {474, "A"},
			{133, "B"}, {351, "C"}, {0, "A"}, {1, "B"}, {2, "B"}, {3, "C"}, {4, "C"}, {5, "A"}, {4092, "A"},
		}
		for _, pl := range place {
			if got := name(table1[pl.slot]); got != pl.d {
				t.Errorf("slot %d owned by %s, want %s", pl.slot, got, pl.d)
			}
		}
		if want := []int{1365, 1364, 1364}; !equalInts(counts1, want) {
			t.Errorf("counts %v, want %v", counts1, want)
		}
		check(t, p1, 0, []lookup{
			{"192.168.1.1", 1, "A"}, {"192.168.1.2", 1, "C"}, {"10.1.1.1", 1, "C"},
			{"1.2.3.4", 1, "B"}, {"203.0.113.7", 1, "C"}, {"2001:db8::1", 1, "B"},
		})
		pp := listPool(t, newSched(t, "mh", Options{Flags: FlagSched2}), mkDests(1, 1, 1)...)
		check(t, pp, FlagSched2, []lookup{{"192.168.1.1", 12345, "B"}, {"192.168.1.1", 12346, "A"}})
	})

	tv2 := []lookup{
		{"192.168.1.1", 1, "C"}, {"192.168.1.2", 1, "C"}, {"10.1.1.1", 1, "C"},
		{"1.2.3.4", 1, "B"}, {"203.0.113.7", 1, "C"}, {"2001:db8::1", 1, "B"},
	}
	t.Run("TV-MH-2", func(t *testing.T) {
		ds := mkDests(1, 2, 3)
		s := newSched(t, "mh", Options{})
		p := listPool(t, s, ds...)
		if got, _ := mhCounts(s, ds); !equalInts(got, []int{683, 1364, 2046}) {
			t.Errorf("counts %v, want [683 1364 2046]", got)
		}
		for i, want := range []int32{1, 2, 3} {
			if got := s.(*mh).setup[i].turns; got != want {
				t.Errorf("turns of %s = %d, want %d", name(ds[i]), got, want)
			}
		}
		check(t, p, 0, tv2)
	})
	t.Run("TV-MH-3", func(t *testing.T) {
		for _, f := range []Flags{0, FlagSched1} {
			ds := mkDests(1, 2, 3)
			s := newSched(t, "mh", Options{Flags: f})
			p := listPool(t, s, ds...)
			_, before := mhCounts(s, ds)
			edit(t, p, ds[1], 0)
			if ds[1].LastWeight() != 2 {
				t.Errorf("last_weight of B = %d, want 2", ds[1].LastWeight())
			}
			if _, after := mhCounts(s, ds); !equalDests(before, after) {
				t.Errorf("quiescing B changed the table")
			}
			want := "-"
			if f != 0 {
				want = "C"
			}
			tests := append([]lookup(nil), tv2...)
			tests[3].want, tests[5].want = want, want
			check(t, p, f, tests)
		}
	})
	t.Run("TV-MH-4", func(t *testing.T) {
		ds := mkDests(1, 2, 3)
		s := newSched(t, "mh", Options{})
		p := listPool(t, s, ds...)
		_, before := mhCounts(s, ds)
		del(t, p, ds[1])
		got, after := mhCounts(s, ds)
		if want := []int{1024, 0, 3069}; !equalInts(got, want) {
			t.Errorf("counts %v, want %v", got, want)
		}
		moved := 0
		for i := range before {
			if before[i] != ds[1] && before[i] != after[i] {
				moved++
			}
		}
		if moved != 3 {
			t.Errorf("%d slots not owned by B changed owner, want 3", moved)
		}
	})
	t.Run("TV-MH-5", func(t *testing.T) {
		ds := mkDests(1, 1, 1, 0) // D is added with weight 0
		s := newSched(t, "mh", Options{})
		listPool(t, s, ds[3], ds[0], ds[1], ds[2])
		if got, table := mhCounts(s, ds); got[3] != 0 || !equalDests(remap(table, ds, ds1), table1) {
			t.Errorf("D owns %d slots, want 0; table equal to TV-MH-1's: %v", got[3], equalDests(remap(table, ds, ds1), table1))
		}
	})
	t.Run("TV-MH-6", func(t *testing.T) {
		ds := mkDests(1, 1, 1)
		s := newSched(t, "mh", Options{})
		listPool(t, s, ds[2], ds[1], ds[0])
		got, table := mhCounts(s, ds)
		if want := []int{1364, 1364, 1365}; !equalInts(got, want) {
			t.Errorf("counts %v, want %v", got, want)
		}
		table = remap(table, ds, ds1)
		diff := 0
		for i := range table {
			if table[i] != table1[i] {
				diff++
			}
		}
		if diff != 5 {
			t.Errorf("%d slots differ from TV-MH-1, want 5", diff)
		}
	})
	t.Run("TV-MH-7", func(t *testing.T) {
		ds := mkDests(1000, 10, 100)
		s := newSched(t, "mh", Options{})
		listPool(t, s, ds...)
		m := s.(*mh)
		for i, want := range []int32{50, 1, 5} {
			if got := m.setup[i].turns; got != want {
				t.Errorf("turns of %s = %d, want %d", name(ds[i]), got, want)
			}
		}
		if got, _ := mhCounts(s, ds); !equalInts(got, []int{3655, 73, 365}) {
			t.Errorf("counts %v, want [3655 73 365]", got)
		}
	})
}

// remap replaces dests of from by the dest with the same ID in to.
func remap(table, from, to []*Dest) []*Dest {
	out := make([]*Dest, len(table))
	for i, d := range table {
		if d != nil {
			for _, t := range to {
				if t.ID() == d.ID() {
					out[i] = t
				}
			}
		}
	}
	return out
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func equalDests(a, b []*Dest) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

const sec = int64(time.Second)

func TestVectorsLBLC(t *testing.T) {
	ds := mkDests(2, 2)
	s := newSched(t, "lblc", Options{})
	p := listPool(t, s, ds...)
	x := func(now int64) *Packet { return pkt4("192.0.2.1", "203.0.113.10", 1, now) }
	entry := func() string {
		c := &s.(*lblc).c
		k := locKeyOf(x(0))
		if i, _ := c.lookup(&k); i >= 0 {
			return name(c.refs[c.ents[i].ref])
		}
		return "-"
	}
	// 1. No entry: wlc ties, the earliest.
	if got := name(p.Schedule(x(1 * sec))); got != "A" || entry() != "A" {
		t.Errorf("step 1: got %s, entry %s; want A, A", got, entry())
	}
	// 2. A act3 > w2, but no dest has 2·act < w: not overloaded.
	conns(ds[0], 3, 0)
	conns(ds[1], 1, 0)
	if got := name(p.Schedule(x(2 * sec))); got != "A" {
		t.Errorf("step 2: got %s, want A", got)
	}
	// 3. B idle: A is overloaded, wlc picks B and the entry is replaced.
	ds[1].Unbind(false, true)
	if got := name(p.Schedule(x(3 * sec))); got != "B" || entry() != "B" {
		t.Errorf("step 3: got %s, entry %s; want B, B", got, entry())
	}
	// 4. B OVERLOADed by its thresholds: the cached dest's flag is not tested.
	ds[1].setFlag(FlagOverload)
	if got := name(p.Schedule(x(4 * sec))); got != "B" {
		t.Errorf("step 4: got %s, want B", got)
	}
	if got := name(leastWeighted(p.Dests(), false)); got != "A" {
		t.Errorf("step 4: a fresh wlc picks %s, want A (B skipped)", got)
	}
	// 5. The entry, last used at 4 s, goes at the first full check (every 30
	// ticks of 60 s from the timer's start at 1 s) at or after 4 s + 24 h:
	// 1 s + 49·1800 s.
	y := func(now int64) *Packet { return pkt4("192.0.2.1", "203.0.113.99", 1, now) }
	fullCheck := 1*sec + 49*1800*sec
	p.Schedule(y(fullCheck - 1))
	if entry() != "B" {
		t.Errorf("step 5: entry gone before the full check")
	}
	p.Schedule(y(fullCheck))
	if entry() != "-" {
		t.Errorf("step 5: entry %s still there at the full check", entry())
	}
}

func TestVectorsLBLCR(t *testing.T) {
	const T = 86400 * sec
	ds := mkDests(1, 1, 1)
	s := newSched(t, "lblcr", Options{})
	p := listPool(t, s, ds...)
	x := func(now int64) *Packet { return pkt4("192.0.2.1", "203.0.113.10", 1, now) }
	set := func() (string, int64) {
		c := &s.(*lblcr).c
		k := locKeyOf(x(0))
		i, _ := c.lookup(&k)
		if i < 0 {
			return "none", 0
		}
		var out []*Dest
		for j := c.ents[i].set; j >= 0; j = c.elems[j].next {
			out = append(out, c.refs[c.elems[j].ref])
		}
		return names(out), c.ents[i].lastmod
	}
	steps := []struct {
		now     int64
		act     [3]int
		want    string
		set     string
		lastmod int64
	}{
		{0, [3]int{0, 0, 0}, "A", "A", 0},
		{10 * sec, [3]int{2, 0, 0}, "B", "B A", 10 * sec},
		{20 * sec, [3]int{2, 0, 0}, "B", "B A", 10 * sec},
		{10*sec + T, [3]int{2, 0, 0}, "B", "B A", 10 * sec},
		{10*sec + T + 1*sec, [3]int{2, 0, 0}, "B", "B", 10*sec + T + 1*sec},
	}
	for _, st := range steps {
		for i, d := range ds {
			for d.ActiveConns() < int32(st.act[i]) {
				conns(d, 1, 0)
			}
		}
		if got := name(p.Schedule(x(st.now))); got != st.want {
			t.Errorf("t=%ds: got %s, want %s", st.now/sec, got, st.want)
		}
		if got, lm := set(); got != st.set || lm != st.lastmod {
			t.Errorf("t=%ds: set [%s] lastmod %d, want [%s] %d", st.now/sec, got, lm, st.set, st.lastmod)
		}
	}
}

func TestVectorsThresholds(t *testing.T) {
	tests := []struct {
		name string
		u, l uint32
		seq  []bool // OVERLOAD after bind ×n then unbind …
		ops  string
	}{
		{"u3", 3, 0, []bool{false, false, true, false}, "bbbu"},
		{"u4", 4, 0, []bool{false, false, false, true, true, false}, "bbbbuu"},
		{"u4l2", 4, 2, []bool{false, false, false, true, true, true, false}, "bbbbuuu"},
		{"u0", 0, 0, []bool{false, false, false, false, false}, "bbbbu"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDest(0, mkDest(0, 1).Addr(), 80, 1, tc.u, tc.l)
			addPool(t, nil, d)
			for i, op := range tc.ops {
				if op == 'b' {
					d.Bind(false)
				} else {
					d.Unbind(false, false)
				}
				if got := d.Overloaded(); got != tc.seq[i] {
					t.Fatalf("step %d (%c, total %d): OVERLOAD %v, want %v", i, op, d.InactConns(), got, tc.seq[i])
				}
			}
		})
	}
	t.Run("edit", func(t *testing.T) {
		d := NewDest(0, mkDest(0, 1).Addr(), 80, 1, 3, 0)
		p := addPool(t, nil, d)
		conns(d, 0, 3)
		if !d.Overloaded() {
			t.Fatal("not OVERLOADed at u=3 total=3")
		}
		// Raising u clears at once.
		if err := p.Edit(d.Addr(), 80, 1, 5, 0); err != nil || d.Overloaded() {
			t.Fatalf("raise u to 5: err %v, OVERLOAD %v", err, d.Overloaded())
		}
		// Lowering u sets nothing until the next bind.
		if err := p.Edit(d.Addr(), 80, 1, 2, 0); err != nil || d.Overloaded() {
			t.Fatalf("lower u to 2: err %v, OVERLOAD %v", err, d.Overloaded())
		}
		// A template's bind applies the set rule too (ip_vs_bind_dest).
		d.Bind(true)
		if !d.Overloaded() || d.PersistConns() != 1 || d.InactConns() != 3 {
			t.Fatalf("template bind: OVERLOAD %v persist %d inact %d", d.Overloaded(), d.PersistConns(), d.InactConns())
		}
		// An edit to u=0 clears, and forces l to 0.
		if err := p.Edit(d.Addr(), 80, 1, 0, 0); err != nil || d.Overloaded() {
			t.Fatalf("u=0: err %v, OVERLOAD %v", err, d.Overloaded())
		}
		d.Bind(false)
		if d.Overloaded() {
			t.Fatal("u=0: bind set OVERLOAD")
		}
	})
	t.Run("template unbind", func(t *testing.T) {
		d := NewDest(0, mkDest(0, 1).Addr(), 80, 1, 4, 0)
		p := addPool(t, nil, d)
		d.Bind(true)
		conns(d, 0, 4)
		d.Unbind(false, false)
		d.Unbind(false, false) // total 2: 8 < 12 clears
		if d.Overloaded() {
			t.Fatal("still OVERLOADed at total 2")
		}
		conns(d, 0, 2)
		if !d.Overloaded() {
			t.Fatal("not OVERLOADed at total 4")
		}
		// Unbinding the template rechecks with the unchanged total.
		d.Unbind(true, false)
		if !d.Overloaded() || d.PersistConns() != 0 {
			t.Fatalf("template unbind at total 4: OVERLOAD %v persist %d", d.Overloaded(), d.PersistConns())
		}
		// With a lower threshold edited in (u unchanged, so the flag stays), the
		// next template unbind applies it.
		d.Unbind(false, false)
		if err := p.Edit(d.Addr(), 80, 1, 4, 4); err != nil || !d.Overloaded() {
			t.Fatalf("edit l=4: err %v, OVERLOAD %v", err, d.Overloaded())
		}
		d.Bind(true)
		if !d.Overloaded() {
			t.Fatal("template bind at total 3 < u cleared OVERLOAD")
		}
		d.Unbind(true, false)
		if d.Overloaded() {
			t.Fatal("template unbind at total 3 < l 4 left OVERLOAD set")
		}
	})
}
