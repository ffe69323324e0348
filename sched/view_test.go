package sched

import (
	"testing"
	"time"
)

// TestStatelessScheduleTakesNoLock: a pool of a scheduler that keeps no state, with
// real servers, schedules while its lock is held elsewhere (from the view of its
// last change), and its picks follow the list through adds, deletes, a change of
// scheduler and a clone: each pick is the one the scheduler makes from the pool's
// list under the lock. On the code before the views Schedule waited for the lock and the test
// failed at its deadline.
func TestStatelessScheduleTakesNoLock(t *testing.T) {
	for _, name := range []string{"lc", "wlc", "sed", "nq", "fo", "ovf", NoScheduler} {
		p, err := NewPoolOf(name, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ds := mkDests(1, 3, 2)
		ds[1].BindConn(true) // an active connection: the picks differ by scheduler
		got := make(chan *Dest)
		check := func(step string, q *Pool) {
			t.Helper()
			q.mu.Lock()
			want := q.s.Schedule(q.dests, &Packet{})
			go func() { got <- q.Schedule(&Packet{}) }()
			select {
			case d := <-got:
				if d != want {
					t.Errorf("%s after %s: picked %v, the list %s gives %v", name, step, d, names(q.dests), want)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s after %s: Schedule waited 10 s for the pool's lock", name, step)
			}
			q.mu.Unlock()
		}
		for i, d := range ds {
			if err := p.Add(d); err != nil {
				t.Fatal(err)
			}
			check("add "+string(rune('A'+i)), p)
		}
		c := p.Clone()
		if _, err := c.Delete(ds[2].Addr(), 80); err != nil {
			t.Fatal(err)
		}
		check("a clone's delete (the original)", p)
		check("delete C (the clone)", c)
		if err := c.SetScheduler(wlc{}); err != nil {
			t.Fatal(err)
		}
		check("set wlc", c)
	}
}

// TestStatefulScheduleLocks: rr keeps a position, so its pool schedules under the
// lock, and a list change leaves no view behind for a later stateless scheduler's.
func TestStatefulScheduleLocks(t *testing.T) {
	p, _ := NewPoolOf("wlc", Options{})
	ds := mkDests(1, 1)
	for _, d := range ds {
		if err := p.Add(d); err != nil {
			t.Fatal(err)
		}
	}
	if p.view.Load() == nil {
		t.Fatal("wlc's pool published no view")
	}
	if err := p.SetScheduler(newRR()); err != nil {
		t.Fatal(err)
	}
	if p.view.Load() != nil {
		t.Fatal("rr's pool kept wlc's view")
	}
	if a, b := p.Schedule(&Packet{}), p.Schedule(&Packet{}); a == b {
		t.Fatalf("rr picked %s twice", name(a))
	}
	if _, err := p.Delete(ds[0].Addr(), 80); err != nil {
		t.Fatal(err)
	}
	if err := p.SetScheduler(wlc{}); err != nil {
		t.Fatal(err)
	}
	if v := p.view.Load(); v == nil || len(v.dests) != 1 || v.dests[0] != ds[1] {
		t.Fatalf("wlc's view after rr and a delete: %+v", v)
	}
}

// TestStatelessIndex: each stateless scheduler's index names it in statelessOf,
// and New's schedulers that keep state have none.
func TestStatelessIndex(t *testing.T) {
	for i, s := range statelessOf {
		if got := s.(stateless).statelessIndex(); int(got) != i {
			t.Errorf("%s: index %d, at %d in statelessOf", s.Name(), got, i)
		}
	}
	for _, n := range Names() {
		s, err := New(n, Options{})
		if err != nil {
			t.Fatal(err)
		}
		_, sl := s.(stateless)
		_, c := s.(Cloner)
		_, h := s.(Hooks)
		if sl == (c || h) {
			t.Errorf("%s: stateless %v, Cloner %v, Hooks %v", n, sl, c, h)
		}
	}
}

// TestStatelessScheduleConcurrent: picks without the lock while the list changes
// (adds, deletes, scheduler changes) are of dests the pool held (go test -race
// checks the view's publication).
func TestStatelessScheduleConcurrent(t *testing.T) {
	p, _ := NewPoolOf("wlc", Options{})
	ds := mkDests(1, 2, 3, 4)
	done := make(chan struct{})
	bad := make(chan *Dest, 1)
	go func() {
		defer close(done)
		for range 20000 {
			if d := p.Schedule(&Packet{}); d != nil && d != ds[0] && d != ds[1] && d != ds[2] && d != ds[3] {
				bad <- d
				return
			}
		}
	}()
	for i := range 2000 {
		d := ds[i%len(ds)]
		if err := p.Add(d); err != nil {
			if _, err := p.Delete(d.Addr(), 80); err != nil {
				t.Fatal(err)
			}
		}
		if i%100 == 0 {
			if err := p.SetScheduler([]Scheduler{lc{}, wlc{}, newRR()}[i/100%3]); err != nil {
				t.Fatal(err)
			}
		}
	}
	<-done
	select {
	case d := <-bad:
		t.Fatalf("picked %v, never in the pool", d)
	default:
	}
}
