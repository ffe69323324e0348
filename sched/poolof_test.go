package sched

import (
	"net/netip"
	"testing"
)

// TestNewPoolOfRRPicksAsNewPool: a pool whose rr scheduler was made with it
// (NewPoolOf) picks as a pool given New's rr, through adds, deletes and edits,
// and so does its clone.
func TestNewPoolOfRRPicksAsNewPool(t *testing.T) {
	a, err := NewPoolOf("rr", Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := New("rr", Options{})
	b := NewPool(s)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}) }
	var id uint32
	add := func(i int) {
		for _, p := range []*Pool{a, b} {
			id++
			if err := p.Add(NewDest(id, addr(i), 80, 1, 0, 0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	same := func(step string, a, b *Pool) {
		t.Helper()
		for range 7 {
			da, db := a.Schedule(&Packet{}), b.Schedule(&Packet{})
			if (da == nil) != (db == nil) || da != nil && da.Addr() != db.Addr() {
				t.Fatalf("%s: NewPoolOf's rr picks %v, NewPool's %v", step, da, db)
			}
		}
	}
	same("empty", a, b)
	for i := 1; i <= 4; i++ {
		add(i)
		same("added", a, b)
	}
	for _, p := range []*Pool{a, b} {
		if _, err := p.Delete(addr(2), 80); err != nil {
			t.Fatal(err)
		}
		if err := p.Edit(addr(3), 80, 3, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	same("deleted and edited", a, b)
	same("clones", a.Clone(), b.Clone())
	if _, err := NewPoolOf("rr", Options{Flags: 1 << 7}); err == nil {
		t.Error("NewPoolOf takes rr with an unknown flag bit")
	}
	if p, err := NewPoolOf("wlc", Options{}); err != nil || p.Scheduler().Name() != "wlc" {
		t.Errorf("NewPoolOf(wlc): %v, %v", p, err)
	}
}

// TestPoolFirstListNeverRewritten: the list of a pool's first dest is kept in the
// pool, and a list once handed out (a generation's) is never written again, through
// a delete and later adds, in the pool and its clone.
func TestPoolFirstListNeverRewritten(t *testing.T) {
	p, _ := NewPoolOf("rr", Options{})
	d1 := NewDest(1, netip.MustParseAddr("198.18.0.1"), 80, 1, 0, 0)
	if n := testing.AllocsPerRun(1, func() {
		q, _ := NewPoolOf("rr", Options{})
		_ = q.Add(q.NewDest(1, d1.Addr(), 80, 1, 0, 0))
	}); n != 1 {
		t.Errorf("a pool of rr with its first dest and list make %v objects, want 1", n)
	}
	for _, name := range []string{"rr", "wlc", "mh"} {
		q, _ := NewPoolOf(name, Options{})
		a, b := q.NewDest(1, d1.Addr(), 80, 1, 0, 0), q.NewDest(2, d1.Addr(), 81, 2, 0, 0)
		if a == b || a.ID() != 1 || a.Port() != 80 || a.Weight() != 1 || b.ID() != 2 || b.Port() != 81 || b.Weight() != 2 {
			t.Errorf("%s: a pool's two new dests are %p %+v and %p %+v", name, a, a, b, b)
		}
		if err := q.Add(a); err != nil || q.Scheduler().Name() != name {
			t.Errorf("%s: %v, scheduler %s", name, err, q.Scheduler().Name())
		}
	}
	if err := p.Add(d1); err != nil {
		t.Fatal(err)
	}
	held := p.Dests()
	c := p.Clone()
	if _, err := p.Delete(d1.Addr(), 80); err != nil {
		t.Fatal(err)
	}
	for i, pool := range []*Pool{p, c, p} {
		if err := pool.Add(NewDest(uint32(2+i), netip.AddrFrom4([4]byte{198, 18, 0, byte(2 + i)}), 80, 1, 0, 0)); err != nil {
			t.Fatal(err)
		}
	}
	if len(held) != 1 || held[0] != d1 {
		t.Fatalf("the first list handed out became %v", held)
	}
	if got := c.Dests(); len(got) != 2 || got[1] != d1 {
		t.Fatalf("the clone's list is %v, want a new dest then the first", got)
	}
}
