package vrrp

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/testutil"
)

// A held backup accepts a lower-priority master as preempt_delay would make it;
// once released it discards the next lower advert and preempts when the down
// timer of the last accepted one runs out.
func TestPreemptHoldThenRelease(t *testing.T) {
	s := newSim(t, func(c *Config) { c.Priority = 150 })
	s.in.SetPreemptHold(true)
	s.do(start, "INIT->BACKUP")
	if s.in.HoldingPreempt() {
		t.Error("holding before any master was heard")
	}
	for i := 1; i <= 10; i++ {
		s.advance(time.Duration(i)*time.Second, "")
		s.do(adv(ka1, 100), "")
		if !s.in.HoldingPreempt() {
			t.Fatalf("advert %d: a lower master accepted, but HoldingPreempt is false", i)
		}
	}
	s.expect(StateBackup, 10*time.Second+down150)
	s.in.SetPreemptHold(false)
	if s.in.HoldingPreempt() {
		t.Error("HoldingPreempt after the release")
	}
	s.advance(11*time.Second, "")
	s.do(adv(ka1, 100), "") // discarded: the down timer of the advert at 10 s runs on
	s.expect(StateBackup, 10*time.Second+down150)
	s.advance(14*time.Second, "13.4140625s: send-advert 150, become-master, BACKUP->MASTER")

	// A higher-priority master is not what the hold is about.
	s = newSim(t, func(c *Config) { c.Priority = 150 })
	s.in.SetPreemptHold(true)
	s.do(start, "INIT->BACKUP")
	s.at(time.Second).do(adv(ka1, 200), "")
	if s.in.HoldingPreempt() {
		t.Error("holding for a higher-priority master")
	}
}

// Availability first: a held backup that hears no master becomes master on its
// down timer, and a held one whose master goes silent takes over too.
func TestPreemptHoldNoMaster(t *testing.T) {
	s := newSim(t, func(c *Config) { c.Priority = 150 })
	s.in.SetPreemptHold(true)
	s.do(start, "INIT->BACKUP")
	s.advance(4*time.Second, "3.4140625s: send-advert 150, become-master, BACKUP->MASTER")

	s = newSim(t, func(c *Config) { c.Priority = 150 })
	s.in.SetPreemptHold(true)
	s.do(start, "INIT->BACKUP")
	s.at(time.Second).do(adv(ka1, 100), "")
	s.advance(5*time.Second, "4.4140625s: send-advert 150, become-master, BACKUP->MASTER")
	if s.in.HoldingPreempt() {
		t.Error("still holding as master")
	}
}

// An address owner held starts as a backup instead of taking over at once; it
// becomes master on its down timer when no one else is, or once released.
func TestPreemptHoldOwner(t *testing.T) {
	s := newSim(t, func(c *Config) { c.Priority = PriorityOwner })
	s.in.SetPreemptHold(true)
	s.do(start, "INIT->BACKUP")
	if !s.in.HoldingPreempt() {
		t.Error("a held owner in BACKUP does not report the hold")
	}
	s.advance(4*time.Second, "3.00390625s: send-advert 255, become-master, BACKUP->MASTER")

	s = newSim(t, func(c *Config) { c.Priority = PriorityOwner })
	s.in.SetPreemptHold(true)
	s.do(start, "INIT->BACKUP")
	for i := 1; i <= 5; i++ {
		s.advance(time.Duration(i)*time.Second, "")
		s.do(adv(ka1, 100), "")
	}
	s.in.SetPreemptHold(false)
	s.advance(6*time.Second, "")
	s.do(adv(ka1, 100), "")
	s.advance(9*time.Second, "8.00390625s: send-advert 255, become-master, BACKUP->MASTER")

	// Not held: the owner takes over at once, as RFC 5798 says.
	s = newSim(t, func(c *Config) { c.Priority = PriorityOwner })
	s.in.SetPreemptHold(false)
	s.do(start, "send-advert 255, become-master, INIT->MASTER")
}

// The Runner asks PreemptHold before a backup acts on an advert, shows the reason
// in Status while the hold keeps it backup, logs the hold once and its release
// once, and the instance preempts after the release.
func TestRunnerPreemptHold(t *testing.T) {
	c := testutil.NewClock(t)
	rec := newRecorder()
	in, err := NewInstance(runnerConfig(150))
	if err != nil {
		t.Fatal(err)
	}
	tr := newFakeTransport()
	var why atomic.Pointer[string]
	set := func(s string) { why.Store(&s) }
	set("bulk sync in progress (0 of 1)")
	logs := &syncBuffer{}
	opts := rec.opts(c)
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	opts.PreemptHold = func() string { return *why.Load() }
	r, err := NewRunner([]Member{{Name: "VI_1", Instance: in, Transport: tr}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	waitState(t, rec, StateBackup)
	for i := range 6 {
		if i == 3 {
			set("bulk sync in progress (1 of 2)")
		}
		deliver(c, tr, advertFrom(runnerPeer, 100))
		c.Advance(time.Second)
	}
	st := r.Status()[0]
	if st.State != StateBackup || st.PreemptHeld != "bulk sync in progress (1 of 2)" {
		t.Fatalf("held: status %+v", st)
	}
	set("")
	deliver(c, tr, advertFrom(runnerPeer, 100)) // discarded now
	if st := r.Status()[0]; st.PreemptHeld != "" {
		t.Fatalf("released: status still says %q", st.PreemptHeld)
	}
	c.Advance(time.Second)
	deliver(c, tr, advertFrom(runnerPeer, 100))
	c.Advance(3 * time.Second)
	if x := waitState(t, rec, StateMaster); x.From != StateBackup {
		t.Fatalf("transition %+v", x)
	}
	out := logs.String()
	if n := strings.Count(out, "VRRP preempt held: bulk sync in progress"); n != 1 {
		t.Errorf("%d hold lines, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "VRRP preempt hold released"); n != 1 {
		t.Errorf("%d release lines, want 1:\n%s", n, out)
	}
	if h, rel, m := strings.Index(out, "preempt held"), strings.Index(out, "hold released"), strings.Index(out, "Entering MASTER"); !(h < rel && rel < m) {
		t.Errorf("log order: held at %d, released at %d, master at %d:\n%s", h, rel, m, out)
	}
}
