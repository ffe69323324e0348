package vrrp

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/testutil"
)

// The fake clock's Advance waits until the Runner has received each fired timer,
// and the Runner arms one timer per turn of its loop: after Advance, BlockUntil(1)
// waits until the Runner has handled what fired and armed its next timer.
var _ Clock = (*testutil.Clock)(nil)

// fakeTransport records what is sent and delivers what the test injects.
type fakeTransport struct {
	sent chan Packet
	in   chan Packet
	done chan struct{}
	once sync.Once
}

func newFakeTransport() *fakeTransport {
	return &fakeTransport{sent: make(chan Packet, 64), in: make(chan Packet, 16), done: make(chan struct{})}
}

func (t *fakeTransport) Send(p *Packet) error {
	q := *p
	q.Advert.Addrs = append([]netip.Addr(nil), p.Advert.Addrs...)
	select {
	case t.sent <- q:
	default:
	}
	return nil
}

func (t *fakeTransport) Receive(p *Packet) error {
	select {
	case q := <-t.in:
		*p = q
		return nil
	case <-t.done:
		return ErrClosed
	}
}

func (t *fakeTransport) Close() error {
	t.once.Do(func() { close(t.done) })
	return nil
}

// recorder counts the Runner's callbacks.
type recorder struct {
	mu          sync.Mutex
	become      int
	leave       int
	transitions []Transition
	changed     chan Transition
}

func newRecorder() *recorder { return &recorder{changed: make(chan Transition, 64)} }

func (r *recorder) opts(c Clock) RunnerOptions {
	return RunnerOptions{
		Clock: c,
		BecomeMaster: func(*Member) {
			r.mu.Lock()
			r.become++
			r.mu.Unlock()
		},
		LeaveMaster: func(*Member) {
			r.mu.Lock()
			r.leave++
			r.mu.Unlock()
		},
		StateChange: func(t Transition) {
			r.mu.Lock()
			r.transitions = append(r.transitions, t)
			r.mu.Unlock()
			r.changed <- t
		},
	}
}

func (r *recorder) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.become, r.leave
}

func waitState(t *testing.T, r *recorder, to State) Transition {
	t.Helper()
	select {
	case tr := <-r.changed:
		if tr.To != to {
			t.Fatalf("transition %v->%v (%s), want ->%v", tr.From, tr.To, tr.Reason, to)
		}
		return tr
	case <-time.After(5 * time.Second):
		t.Fatalf("no transition to %v", to)
	}
	return Transition{}
}

func waitSent(t *testing.T, tr *fakeTransport) Packet {
	t.Helper()
	select {
	case p := <-tr.sent:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("nothing sent")
	}
	return Packet{}
}

var (
	runnerSrc  = netip.MustParseAddr("198.18.0.3")
	runnerPeer = netip.MustParseAddr("198.18.0.4")
	runnerVIP  = netip.MustParseAddr("198.18.0.100")
)

func runnerConfig(prio uint8) Config {
	return Config{VRID: 51, Version: Version3, Priority: prio, Interval: time.Second, Src: runnerSrc, Addrs: []netip.Addr{runnerVIP}}
}

func startRunner(t *testing.T, cfg Config, c Clock, rec *recorder) (*fakeTransport, context.CancelFunc, chan error) {
	t.Helper()
	testutil.CheckLeaks(t)
	in, err := NewInstance(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr := newFakeTransport()
	r, err := NewRunner([]Member{{Name: "VI_1", Instance: in, Transport: tr}}, rec.opts(c))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return tr, cancel, done
}

// deliver hands p to the Runner and returns once the Runner has handled it: it
// waits until the Runner is parked with its timer armed, then for the timer the
// Runner arms on its next turn.
func deliver(c *testutil.Clock, tr *fakeTransport, p Packet) {
	c.BlockUntil(1)
	n := c.Created()
	tr.in <- p
	c.BlockUntilCreated(n + 1)
}

// advertFrom is a received multicast advert.
func advertFrom(src netip.Addr, prio uint8) Packet {
	return Packet{Src: src, Dst: MulticastGroup(false), HopLimit: HopLimit,
		Advert: Advert{Version: Version3, VRID: 51, Priority: prio, Interval: time.Second, Addrs: []netip.Addr{runnerVIP}}}
}

func TestRunnerBackupTakesOverAfterMasterDownInterval(t *testing.T) {
	c := testutil.NewClock(t)
	rec := newRecorder()
	tr, cancel, done := startRunner(t, runnerConfig(100), c, rec)
	if tr := waitState(t, rec, StateBackup); tr.Reason != "init" {
		t.Fatalf("reason %q", tr.Reason)
	}
	// A master at 150 keeps us backup; each advert restarts the down timer.
	for range 5 {
		deliver(c, tr, advertFrom(runnerPeer, 150))
		c.Advance(time.Second)
	}
	select {
	case x := <-rec.changed:
		t.Fatalf("unexpected transition %v->%v while the master advertises", x.From, x.To)
	default:
	}
	// Silence (the last advert was 1 s ago): Master_Down_Interval = 3 s + 156/256 s.
	c.Advance(2500 * time.Millisecond)
	c.BlockUntil(1)
	select {
	case x := <-rec.changed:
		t.Fatalf("took over before the skew time: %v", x)
	default:
	}
	c.Advance(time.Second)
	x := waitState(t, rec, StateMaster)
	if x.From != StateBackup || x.Reason == "" {
		t.Fatalf("transition %+v", x)
	}
	p := waitSent(t, tr)
	if p.Advert.Priority != 100 || p.Dst != MulticastGroup(false) || p.Src != runnerSrc || p.HopLimit != HopLimit {
		t.Fatalf("first advert %+v", p)
	}
	// Adverts every interval while master.
	c.Advance(time.Second)
	if p := waitSent(t, tr); p.Advert.Priority != 100 {
		t.Fatalf("periodic advert priority %d", p.Advert.Priority)
	}
	// Shutdown: priority 0, LeaveMaster once.
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil // for the cleanup
	var last Packet
	for len(tr.sent) > 0 {
		last = <-tr.sent
	}
	if last.Advert.Priority != PriorityStop {
		t.Fatalf("last advert on shutdown has priority %d, want 0", last.Advert.Priority)
	}
	if b, l := rec.counts(); b != 1 || l != 1 {
		t.Fatalf("BecomeMaster %d times, LeaveMaster %d times; want 1 and 1", b, l)
	}
}

func TestRunnerMasterYieldsToHigherPriority(t *testing.T) {
	c := testutil.NewClock(t)
	rec := newRecorder()
	tr, _, _ := startRunner(t, runnerConfig(150), c, rec)
	waitState(t, rec, StateBackup)
	c.Advance(4 * time.Second)
	waitState(t, rec, StateMaster)
	waitSent(t, tr)
	// A lower priority: keepalived re-advertises at once and stays master.
	tr.in <- advertFrom(runnerPeer, 100)
	if p := waitSent(t, tr); p.Advert.Priority != 150 {
		t.Fatalf("re-advert priority %d", p.Advert.Priority)
	}
	// A higher priority: back to backup at once, without a priority-0 advert.
	deliver(c, tr, advertFrom(runnerPeer, 200))
	x := waitState(t, rec, StateBackup)
	if x.Reason != "master received advert from 198.18.0.4 with higher priority 200, ours 150" {
		t.Fatalf("reason %q", x.Reason)
	}
	select {
	case p := <-tr.sent:
		t.Fatalf("sent %v when yielding", p.Advert.Priority)
	default:
	}
	if b, l := rec.counts(); b != 1 || l != 1 {
		t.Fatalf("BecomeMaster %d, LeaveMaster %d; want 1 and 1", b, l)
	}
}

func TestRunnerCountsDrops(t *testing.T) {
	testutil.CheckLeaks(t)
	c := testutil.NewClock(t)
	rec := newRecorder()
	in, _ := NewInstance(runnerConfig(100))
	tr := newFakeTransport()
	r, err := NewRunner([]Member{{Name: "VI_1", Instance: in, Transport: tr}}, rec.opts(c))
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, r)
	waitState(t, rec, StateBackup)
	bad := advertFrom(runnerPeer, 150)
	bad.HopLimit = 64
	tr.in <- bad
	other := advertFrom(runnerPeer, 150)
	other.Advert.VRID = 52
	tr.in <- other
	testutil.Eventually(t, 5*time.Second, func() bool {
		d := r.Drops()
		return d[ErrTTL] == 1 && d[ErrVRID] == 1
	}, "one TTL and one VRID drop counted")
}

func TestRunnerOwnerStartsMaster(t *testing.T) {
	c := testutil.NewClock(t)
	rec := newRecorder()
	tr, _, _ := startRunner(t, runnerConfig(PriorityOwner), c, rec)
	x := waitState(t, rec, StateMaster)
	if x.From != StateInitialize {
		t.Fatalf("%+v", x)
	}
	if p := waitSent(t, tr); p.Advert.Priority != PriorityOwner {
		t.Fatalf("priority %d", p.Advert.Priority)
	}
}

func TestNewRunnerRejectsGroupWithMissingMember(t *testing.T) {
	a, _ := NewInstance(runnerConfig(100))
	cb := runnerConfig(100)
	cb.VRID = 52
	b, _ := NewInstance(cb)
	if _, err := NewGroup(a, b); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRunner([]Member{{Name: "a", Instance: a, Transport: newFakeTransport()}}, RunnerOptions{}); err == nil {
		t.Fatal("a group member outside the runner was accepted")
	}
}

func TestRunnerTrackedFaultsAndRecovers(t *testing.T) {
	testutil.CheckLeaks(t)
	c := testutil.NewClock(t)
	rec := newRecorder()
	in, _ := NewInstance(runnerConfig(150))
	tr := newFakeTransport()
	var mu sync.Mutex
	alive := true
	tracked := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return alive
	}
	r, err := NewRunner([]Member{{Name: "VI_1", Instance: in, Transport: tr, Tracks: []Track{WeightedTrack("service 198.18.0.100:80", 0, false, tracked)}}}, rec.opts(c))
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, r)
	waitState(t, rec, StateBackup)
	c.Advance(4 * time.Second)
	waitState(t, rec, StateMaster)
	waitSent(t, tr)
	mu.Lock()
	alive = false
	mu.Unlock()
	// Polled every advert interval: the next poll faults it, with a priority-0 advert.
	for range 3 {
		c.Advance(time.Second)
		c.BlockUntil(1)
		if r.State(in) == StateFault {
			break
		}
	}
	x := waitState(t, rec, StateFault)
	if x.Reason != "service 198.18.0.100:80 down" {
		t.Fatalf("reason %q", x.Reason)
	}
	sawStop := false
	for len(tr.sent) > 0 {
		if p := <-tr.sent; p.Advert.Priority == PriorityStop {
			sawStop = true
		}
	}
	if !sawStop {
		t.Fatal("no priority-0 advert when faulting as master")
	}
	mu.Lock()
	alive = true
	mu.Unlock()
	c.Advance(time.Second)
	if x := waitState(t, rec, StateBackup); x.From != StateFault {
		t.Fatalf("%+v", x)
	}
}

// TestRunnerWeights: weighted tracking changes the advertised priority instead of
// faulting — a negative weight while its object is down, a positive one while it is
// up — and a master whose priority falls below a peer's yields to it.
func TestRunnerWeights(t *testing.T) {
	testutil.CheckLeaks(t)
	c := testutil.NewClock(t)
	rec := newRecorder()
	in, _ := NewInstance(runnerConfig(100))
	tr := newFakeTransport()
	var mu sync.Mutex
	linkUp, svcUp := true, true
	get := func(p *bool) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return *p }
	}
	set := func(p *bool, v bool) { mu.Lock(); *p = v; mu.Unlock() }
	r, err := NewRunner([]Member{{Name: "VI_1", Instance: in, Transport: tr, Tracks: []Track{
		WeightedTrack("interface eth1", -30, false, get(&linkUp)),
		WeightedTrack("service 198.18.0.100:80", 5, false, get(&svcUp)),
	}}}, rec.opts(c))
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, r)
	waitState(t, rec, StateBackup)
	c.Advance(4 * time.Second)
	waitState(t, rec, StateMaster)
	if p := waitSent(t, tr); p.Advert.Priority != 105 {
		t.Fatalf("first advert priority %d, want 100 + 5 (service up)", p.Advert.Priority)
	}
	set(&linkUp, false)
	set(&svcUp, false)
	// The next poll (every advert interval) lowers the priority: 100 - 30.
	var last uint8
	for range 5 {
		c.Advance(time.Second)
		p := waitSent(t, tr)
		if last = p.Advert.Priority; last == 70 {
			break
		}
	}
	if last != 70 {
		t.Fatalf("advert priority %d after the link went down, want 70", last)
	}
	if got := r.State(in); got != StateMaster {
		t.Fatalf("state %v: a weight must not fault the instance", got)
	}
	// A peer at 90 now beats us: the master yields.
	tr.in <- advertFrom(runnerPeer, 90)
	if x := waitState(t, rec, StateBackup); x.From != StateMaster {
		t.Fatalf("%+v", x)
	}
}
