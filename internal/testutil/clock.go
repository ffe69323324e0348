package testutil

import (
	"cmp"
	"slices"
	"sync"
	"testing"
	"time"
)

// StuckTimeout is how long Clock.Advance waits for a consumer to receive a fired
// timer, and BlockUntil and BlockUntilCreated wait for their condition, before they
// fail the test. It turns a hang into a failure that names what was awaited; it is
// not a timing assertion.
const StuckTimeout = 10 * time.Second

// Clock is a fake clock that only moves when the test calls Advance. Its methods
// have the shapes of the clock interfaces production packages declare where they
// use them (vrrp.Clock: Now and NewTimer; health's Options.Now: the method value
// c.Now), so production code takes it without importing testutil.
//
// Advance jumps to the new time first, then fires the timers due, earliest first,
// and waits until the goroutine consuming each one has received it (or stopped the
// timer). A consumer that re-arms a timer in response therefore always sees the new
// time in Now, whatever the scheduling, and its new timer is never due in the same
// Advance. To wait until the consumer has finished reacting, wait for its re-armed
// timer with BlockUntil or BlockUntilCreated.
//
// The zero value is not usable; call NewClock. A Clock is safe for concurrent use.
// Advance, BlockUntil and BlockUntilCreated may fail the test, so call them from the
// test goroutine.
type Clock struct {
	t     testing.TB
	stuck time.Duration // StuckTimeout; shorter in testutil's own tests

	mu      sync.Mutex
	now     time.Time
	pending []*timer // not yet fired nor stopped, in creation order
	created int
	seq     uint64
	// changed is closed, and replaced, whenever pending or created changes.
	changed chan struct{}
}

// timer is one pending NewTimer, After, AfterFunc or NewTicker.
type timer struct {
	at     time.Time
	seq    uint64        // creation order: timers due at the same time fire in it
	period time.Duration // a ticker's; 0 for the others
	c      chan time.Time
	wait   bool   // Advance waits for the receive (c is unbuffered)
	fn     func() // AfterFunc's
	// stopped is closed by the stop function, so that Advance stops offering a value
	// nobody will receive.
	stopped chan struct{}
	once    sync.Once
}

// NewClock returns a Clock reading a fixed epoch (2023-11-14 22:13:20 UTC), which
// reports its failures (a fired timer nobody receives, a BlockUntil never satisfied)
// on t.
func NewClock(t testing.TB) *Clock {
	// A fixed start, so that runs are reproducible.
	return &Clock{t: t, stuck: StuckTimeout, now: time.Unix(1_700_000_000, 0).UTC(), changed: make(chan struct{})}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Since returns the time elapsed since t on the clock.
func (c *Clock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// NewTimer returns a channel that receives the clock's time once d has passed on it,
// and a function that stops the timer, reporting whether it stopped it before it
// fired. After stop returns, nothing is sent on the channel. A timer with d <= 0
// has fired already: its value waits in the channel's buffer. Otherwise the channel
// is unbuffered and Advance waits until the value is received.
//
// It has the shape of vrrp.Clock's NewTimer.
func (c *Clock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	if d <= 0 {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.createdLocked()
		ch := make(chan time.Time, 1)
		ch <- c.now
		return ch, func() bool { return false }
	}
	tm := c.add(d, 0, make(chan time.Time), true, nil)
	return tm.c, func() bool { return c.stop(tm) }
}

// After returns a channel that receives the clock's time once d has passed on it.
// An After timer cannot be stopped, and a consumer that selects on it may never
// receive from it, so its channel has a buffer of one and Advance does not wait for
// it: use NewTimer when the test relies on Advance waiting.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	if d <= 0 {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.createdLocked()
		ch <- c.now
		return ch
	}
	return c.add(d, 0, ch, false, nil).c
}

// AfterFunc arranges for f to be called once d has passed on the clock, and returns
// a function that cancels the call, reporting whether it did. Advance calls f on its
// own goroutine and returns only after f has returned, so f must not wait for the
// goroutine that calls Advance. With d <= 0, f is called by the next Advance.
func (c *Clock) AfterFunc(d time.Duration, f func()) (stop func() bool) {
	tm := c.add(max(d, 0), 0, nil, false, f)
	return func() bool { return c.stop(tm) }
}

// NewTicker returns a channel that receives the clock's time every d, and a function
// that stops the ticker. Like a time.Ticker with a slow receiver, it sends at most
// one tick per Advance, however many periods that Advance spans; advance one period
// at a time to see each tick. Advance waits until the tick is received. It panics
// if d <= 0, as time.NewTicker does.
func (c *Clock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	if d <= 0 {
		panic("testutil: Clock.NewTicker: non-positive interval")
	}
	tm := c.add(d, d, make(chan time.Time), true, nil)
	return tm.c, func() { c.stop(tm) }
}

// add registers a pending timer due d from now.
func (c *Clock) add(d, period time.Duration, ch chan time.Time, wait bool, fn func()) *timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	tm := &timer{at: c.now.Add(d), seq: c.seq, period: period, c: ch, wait: wait, fn: fn, stopped: make(chan struct{})}
	c.pending = append(c.pending, tm)
	c.createdLocked()
	return tm
}

// stop removes tm from the pending timers and tells a running Advance not to offer
// its value any more. It reports whether tm was still pending.
func (c *Clock) stop(tm *timer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	tm.once.Do(func() { close(tm.stopped) })
	return c.removeLocked(tm)
}

// removeLocked removes tm from c.pending and reports whether it was there.
//
// Precondition: c.mu is held.
func (c *Clock) removeLocked(tm *timer) bool {
	i := slices.Index(c.pending, tm)
	if i < 0 {
		return false
	}
	c.pending = slices.Delete(c.pending, i, i+1)
	c.signalLocked()
	return true
}

// createdLocked counts a new timer.
//
// Precondition: c.mu is held.
func (c *Clock) createdLocked() {
	c.created++
	c.signalLocked()
}

// signalLocked wakes the goroutines waiting in BlockUntil and BlockUntilCreated.
//
// Precondition: c.mu is held.
func (c *Clock) signalLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Advance moves the clock forward by d, then fires the timers due by the new time,
// earliest first (in creation order among equals): it sends on a NewTimer or
// NewTicker channel and waits until the value is received or the timer is stopped,
// sends on an After channel without waiting, and calls an AfterFunc function and
// waits for it to return. Timers created while Advance runs are relative to the new
// time and wait for the next Advance. If a fired timer is neither received nor
// stopped within StuckTimeout, Advance fails the test.
func (c *Clock) Advance(d time.Duration) {
	c.t.Helper()
	if d < 0 {
		panic("testutil: Clock.Advance: negative duration")
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	var due []*timer
	for _, tm := range c.pending {
		if !tm.at.After(now) {
			due = append(due, tm)
		}
	}
	slices.SortFunc(due, func(a, b *timer) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.seq, b.seq))
	})
	c.mu.Unlock()

	for _, tm := range due {
		c.mu.Lock()
		if !slices.Contains(c.pending, tm) {
			// Stopped by the consumer of an earlier timer.
			c.mu.Unlock()
			continue
		}
		if tm.period > 0 {
			// The next tick after now; the ones in between are dropped.
			tm.at = tm.at.Add(tm.period * (now.Sub(tm.at)/tm.period + 1))
			c.signalLocked()
		} else {
			c.removeLocked(tm)
		}
		c.mu.Unlock()
		c.fire(tm, now)
	}
}

// fire delivers one due timer.
func (c *Clock) fire(tm *timer, now time.Time) {
	c.t.Helper()
	switch {
	case tm.fn != nil:
		tm.fn()
	case !tm.wait:
		select {
		case tm.c <- now:
		default:
		}
	default:
		stuck := time.NewTimer(c.stuck)
		defer stuck.Stop()
		select {
		case tm.c <- now:
		case <-tm.stopped:
		case <-stuck.C:
			c.t.Fatalf("testutil: Clock.Advance: timer #%d, due at %v, was neither received nor stopped within %v",
				tm.seq, tm.at.Format(time.RFC3339Nano), c.stuck)
		}
	}
}

// Waiters returns the number of pending timers: created, not yet fired, not
// stopped. A ticker stays pending until it is stopped.
func (c *Clock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// BlockUntil waits until exactly n timers are pending (Waiters), which is how a test
// knows a consumer has re-armed, or stopped, its timers. It fails the test if that
// has not happened within StuckTimeout.
func (c *Clock) BlockUntil(n int) {
	c.t.Helper()
	c.waitFor(func() bool { return len(c.pending) == n }, "%d pending timers", n)
}

// Created returns the number of timers, tickers and AfterFuncs created on the clock
// since NewClock, including the ones already fired or stopped.
func (c *Clock) Created() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.created
}

// BlockUntilCreated waits until at least n timers have been created (Created). A
// consumer that stops its timer and creates a new one on each event keeps Waiters
// constant; waiting for Created() to pass its value before the event tells the test
// the consumer has handled it. It fails the test if that has not happened within
// StuckTimeout.
func (c *Clock) BlockUntilCreated(n int) {
	c.t.Helper()
	c.waitFor(func() bool { return c.created >= n }, "%d timers created", n)
}

// waitFor waits until cond, called with c.mu held, is true.
func (c *Clock) waitFor(cond func() bool, format string, args ...any) {
	c.t.Helper()
	stuck := time.NewTimer(c.stuck)
	defer stuck.Stop()
	for {
		c.mu.Lock()
		ok, changed, pending, created := cond(), c.changed, len(c.pending), c.created
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-stuck.C:
			c.t.Fatalf("testutil: Clock: waited %v for "+format+"; have %d pending, %d created",
				append(append([]any{c.stuck}, args...), pending, created)...)
			return
		}
	}
}
