package vrrp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/testutil"
)

// TestRunnerUpdate: while Run runs, a reload changes one master's priority (its next
// advert carries it, no transition), removes another master (it advertises priority
// 0 and leaves MASTER) and adds a third instance (it starts); the unchanged
// instance sees no transition at all.
func TestRunnerUpdate(t *testing.T) {
	testutil.CheckLeaks(t)
	c := testutil.NewClock(t)
	rec := newRecorder()
	cfgA, cfgB, cfgC := runnerConfig(150), runnerConfig(150), runnerConfig(100)
	cfgB.VRID, cfgC.VRID = 52, 53
	a, _ := NewInstance(cfgA)
	b, _ := NewInstance(cfgB)
	trA, trB, trC := newFakeTransport(), newFakeTransport(), newFakeTransport()
	r, err := NewRunner([]Member{{Name: "A", Instance: a, Transport: trA}, {Name: "B", Instance: b, Transport: trB}}, rec.opts(c))
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, r)
	waitState(t, rec, StateBackup)
	waitState(t, rec, StateBackup)
	c.BlockUntil(1)
	c.Advance(4 * time.Second)
	waitState(t, rec, StateMaster)
	waitState(t, rec, StateMaster)
	drain := func(tr *fakeTransport) {
		for len(tr.sent) > 0 {
			<-tr.sent
		}
	}
	drain(trA)
	drain(trB)

	cfgA.Priority = 200
	cc, _ := NewInstance(cfgC)
	err = r.Update(context.Background(), Update{
		Reconfigure: []Reconfig{{Instance: a, Config: cfgA}},
		Remove:      []*Instance{b},
		Add:         []Member{{Name: "C", Instance: cc, Transport: trC}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if x := waitState(t, rec, StateInitialize); x.Name != "B" || x.From != StateMaster {
		t.Fatalf("%+v", x)
	}
	if p := waitSent(t, trB); p.Advert.Priority != PriorityStop {
		t.Fatalf("the removed master sent priority %d, want 0", p.Advert.Priority)
	}
	if x := waitState(t, rec, StateBackup); x.Name != "C" {
		t.Fatalf("%+v", x)
	}
	c.BlockUntil(1)
	c.Advance(time.Second)
	if p := waitSent(t, trA); p.Advert.Priority != 200 {
		t.Fatalf("A's next advert has priority %d, want 200", p.Advert.Priority)
	}
	st := r.Status()
	if len(st) != 2 || st[0].Name != "A" || st[0].State != StateMaster || st[0].Configured != 200 || st[1].Name != "C" {
		t.Fatalf("status %+v", st)
	}
	select {
	case x := <-rec.changed:
		t.Fatalf("unexpected transition %+v", x)
	default:
	}
	// A change of VRID cannot be made in place.
	cfgA.VRID = 60
	if err := r.Update(context.Background(), Update{Reconfigure: []Reconfig{{Instance: a, Config: cfgA}}}); err == nil {
		t.Fatal("a VRID change was made in place")
	}
}

// TestRunnerUpdateAddrs: a reload that changes a master's virtual addresses
// keeps it MASTER (no transition, no priority 0); Applied runs once, on the
// Runner's goroutine while the instance is MASTER with the new addresses; the
// advert before the reload carries the old list, the next one the new list; the
// caller's slice is not shared with the instance.
func TestRunnerUpdateAddrs(t *testing.T) {
	testutil.CheckLeaks(t)
	c := testutil.NewClock(t)
	rec := newRecorder()
	cfg := runnerConfig(150)
	a, _ := NewInstance(cfg)
	tr := newFakeTransport()
	r, err := NewRunner([]Member{{Name: "A", Instance: a, Transport: tr}}, rec.opts(c))
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, r)
	waitState(t, rec, StateBackup)
	c.BlockUntil(1)
	c.Advance(4 * time.Second)
	waitState(t, rec, StateMaster)
	for len(tr.sent) > 1 {
		<-tr.sent
	}
	if p := waitSent(t, tr); !slices.Equal(p.Advert.Addrs, []netip.Addr{runnerVIP}) {
		t.Fatalf("advert before the reload carries %v", p.Advert.Addrs)
	}

	added := netip.MustParseAddr("198.18.0.77")
	next := cfg
	next.Addrs = []netip.Addr{added, runnerVIP}
	var applied []string
	err = r.Update(context.Background(), Update{Reconfigure: []Reconfig{{Instance: a, Config: next,
		Applied: func() { applied = append(applied, a.State().String()+" "+fmt.Sprint(a.Config().Addrs)) }}}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"MASTER [198.18.0.77 " + runnerVIP.String() + "]"}; !slices.Equal(applied, want) {
		t.Fatalf("Applied saw %q, want %q", applied, want)
	}
	next.Addrs[0] = netip.MustParseAddr("198.18.0.99") // the caller's slice, reused
	c.BlockUntil(1)
	c.Advance(time.Second)
	p := waitSent(t, tr)
	if want := []netip.Addr{added, runnerVIP}; !slices.Equal(p.Advert.Addrs, want) || p.Advert.Priority != 150 {
		t.Fatalf("the next advert carries %v at priority %d, want %v at 150", p.Advert.Addrs, p.Advert.Priority, want)
	}
	select {
	case x := <-rec.changed:
		t.Fatalf("a change of addresses made a transition %+v", x)
	default:
	}
	if st := r.Status(); len(st) != 1 || st[0].State != StateMaster {
		t.Fatalf("status %+v", st)
	}
}

// TestRunnerUpdateStress: reloads (priority changes, an instance removed and added
// again, addresses changed in place) while adverts arrive and other goroutines read
// Status and ask Reassess; run with -race. Bounded: 50 rounds.
func TestRunnerUpdateStress(t *testing.T) {
	testutil.CheckLeaks(t)
	rec := newRecorder()
	go func() {
		for range rec.changed {
		}
	}()
	t.Cleanup(func() { close(rec.changed) }) // after the Runner stopped (cleanups run last first)
	cfgA, cfgB := runnerConfig(150), runnerConfig(100)
	cfgB.VRID = 52
	a, _ := NewInstance(cfgA)
	trA, trB := newFakeTransport(), newFakeTransport()
	r, err := NewRunner([]Member{{Name: "A", Instance: a, Transport: trA}}, rec.opts(nil))
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, r)
	stop := make(chan struct{})
	done := make(chan struct{}, 3)
	for range 2 {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = r.Status()
				r.Reassess()
			}
		}()
	}
	go func() {
		defer func() { done <- struct{}{} }()
		for {
			select {
			case <-stop:
				return
			case trA.in <- advertFrom(runnerPeer, 120):
			}
		}
	}()
	var b *Instance
	applied := 0
	for i := range 50 {
		cfgA.Priority = uint8(140 + i%20)
		// Every other round the addresses change too (in place, Applied runs).
		cfgA.Addrs = []netip.Addr{runnerVIP}
		if i%2 == 1 {
			cfgA.Addrs = append(cfgA.Addrs, netip.AddrFrom4([4]byte{198, 18, 0, byte(100 + i)}))
		}
		u := Update{Reconfigure: []Reconfig{{Instance: a, Config: cfgA, Applied: func() { applied++ }}}}
		if b == nil {
			b, _ = NewInstance(cfgB)
			u.Add = []Member{{Name: "B", Instance: b, Transport: trB}}
		} else {
			u.Remove = []*Instance{b}
			b = nil
			trB = newFakeTransport() // the Runner closed the old one with its last member
		}
		if err := r.Update(context.Background(), u); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	for range 3 {
		<-done
	}
	if st := r.Status(); st[0].Name != "A" || st[0].Configured != uint8(140+49%20) {
		t.Fatalf("status %+v", st)
	}
	if applied != 50 || len(a.Config().Addrs) != 2 {
		t.Fatalf("Applied ran %d times (want 50), addresses now %v", applied, a.Config().Addrs)
	}
}
