package testutil

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTB records failures instead of failing the real test. Fatalf ends the calling
// goroutine, as testing.T's does, so code that may call it runs under run.
type fakeTB struct {
	testing.TB // nil: only the methods below may be called

	mu       sync.Mutex
	errs     []string
	fatal    bool
	cleanups []func()
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
	f.fatal = true
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

// run calls fn on a new goroutine and reports whether it returned (rather than
// ending in Fatalf).
func (f *fakeTB) run(fn func()) (returned bool) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
		returned = true
	}()
	<-done
	return returned
}

// finish runs the registered cleanups, last first, as testing does.
func (f *fakeTB) finish() {
	f.mu.Lock()
	cs := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}

func (f *fakeTB) failures() (errs []string, fatal bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.errs...), f.fatal
}

func TestEventuallyReturnsOnceTrue(t *testing.T) {
	ft := &fakeTB{}
	calls := 0
	returned := ft.run(func() {
		Eventually(ft, time.Minute, func() bool { calls++; return calls == 3 }, "third call")
	})
	if errs, _ := ft.failures(); !returned || len(errs) != 0 {
		t.Fatalf("Eventually returned %v with failures %q, want a return without failure", returned, errs)
	}
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3 (it must stop once true)", calls)
	}
}

func TestEventuallyFailsOnTimeout(t *testing.T) {
	for _, tt := range []struct {
		name string
		msg  []any
		want string
	}{
		{name: "format", msg: []any{"backend %s up", "198.18.0.1"}, want: "backend 198.18.0.1 up"},
		{name: "no message", want: "(no description)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ft := &fakeTB{}
			calls := 0
			returned := ft.run(func() {
				Eventually(ft, time.Millisecond, func() bool { calls++; return false }, tt.msg...)
			})
			errs, fatal := ft.failures()
			if returned || !fatal || len(errs) != 1 {
				t.Fatalf("returned %v, fatal %v, failures %q; want one Fatalf", returned, fatal, errs)
			}
			if !strings.Contains(errs[0], tt.want) {
				t.Errorf("failure %q does not contain %q", errs[0], tt.want)
			}
			if calls < 2 {
				t.Errorf("cond called %d times; want a last call after the deadline", calls)
			}
		})
	}
}

func TestAdvanceWaitsForTheReceiver(t *testing.T) {
	CheckLeaks(t)
	c := NewClock(t)
	start := c.Now()
	ch, stop := c.NewTimer(time.Second)
	defer stop()
	c.Advance(999 * time.Millisecond) // not due: returns at once
	advanced := make(chan struct{})
	go func() {
		defer close(advanced)
		c.Advance(time.Millisecond)
	}()
	// Advance is either blocked offering the value or (wrongly) done.
	Eventually(t, 5*time.Second, func() bool {
		select {
		case <-advanced:
			return true
		default:
			return Parked("testutil.(*Clock).fire")
		}
	}, "Advance blocked in fire or returned")
	select {
	case <-advanced:
		t.Fatal("Advance returned before the timer was received")
	default:
	}
	if got, want := <-ch, start.Add(time.Second); !got.Equal(want) {
		t.Errorf("timer sent %v, want %v", got, want)
	}
	<-advanced
	if stop() {
		t.Error("stop reported stopping a timer that had fired")
	}
}

func TestAdvanceReleasedByStop(t *testing.T) {
	CheckLeaks(t)
	c := NewClock(t)
	ch, stop := c.NewTimer(time.Second)
	advanced := make(chan struct{})
	go func() {
		defer close(advanced)
		c.Advance(time.Second)
	}()
	Eventually(t, 5*time.Second, func() bool { return Parked("testutil.(*Clock).fire") }, "Advance offering the timer")
	stop() // the consumer gave up on the timer: Advance must not wait for it
	<-advanced
	select {
	case v := <-ch:
		t.Fatalf("received %v after stop", v)
	default:
	}
}

func TestAdvanceStuckTimer(t *testing.T) {
	ft := &fakeTB{}
	c := NewClock(ft)
	c.stuck = time.Millisecond
	_, stop := c.NewTimer(time.Second)
	defer stop()
	returned := ft.run(func() { c.Advance(time.Second) })
	errs, fatal := ft.failures()
	if returned || !fatal || len(errs) != 1 || !strings.Contains(errs[0], "neither received nor stopped") {
		t.Fatalf("returned %v, fatal %v, failures %q; want one Fatalf about the unreceived timer", returned, fatal, errs)
	}
}

func TestAdvanceOrderAndTime(t *testing.T) {
	c := NewClock(t)
	start := c.Now()
	var got []string
	note := func(s string) func() { return func() { got = append(got, fmt.Sprintf("%s@%v", s, c.Since(start))) } }
	c.AfterFunc(3*time.Second, note("c"))
	c.AfterFunc(time.Second, note("a"))
	stopB := c.AfterFunc(2*time.Second, note("b"))
	c.AfterFunc(time.Second, note("a2")) // same deadline: creation order
	c.AfterFunc(5*time.Second, note("late"))
	if !stopB() {
		t.Fatal("stop of a pending AfterFunc reported false")
	}
	c.Advance(4 * time.Second)
	// Every function sees the new time, whatever its deadline.
	want := []string{"a@4s", "a2@4s", "c@4s"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	if n := c.Waiters(); n != 1 {
		t.Fatalf("%d waiters, want 1 (late)", n)
	}
}

func TestAfterDoesNotWait(t *testing.T) {
	c := NewClock(t)
	ch := c.After(time.Second)
	c.Advance(time.Second) // nobody receives yet: must not block
	if got, want := <-ch, c.Now(); !got.Equal(want) {
		t.Fatalf("After sent %v, want %v", got, want)
	}
	if got, want := <-c.After(0), c.Now(); !got.Equal(want) {
		t.Fatalf("After(0) sent %v, want %v", got, want)
	}
}

func TestNewTimerNonPositiveHasFired(t *testing.T) {
	c := NewClock(t)
	ch, stop := c.NewTimer(0)
	if got := <-ch; !got.Equal(c.Now()) {
		t.Fatalf("NewTimer(0) sent %v", got)
	}
	if stop() {
		t.Error("stop of a fired timer reported true")
	}
	if c.Waiters() != 0 || c.Created() != 1 {
		t.Errorf("waiters %d, created %d; want 0 and 1", c.Waiters(), c.Created())
	}
}

// TestBlockUntilWaitsForRearm: a consumer that re-arms its timer after each event
// has handled exactly as many events as Advance fired once BlockUntil(1) returns.
func TestBlockUntilWaitsForRearm(t *testing.T) {
	CheckLeaks(t)
	c := NewClock(t)
	var handled atomic.Int64
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			ch, stop := c.NewTimer(time.Second)
			select {
			case <-ch:
				handled.Add(1)
			case <-quit:
				stop()
				return
			}
		}
	}()
	t.Cleanup(func() { close(quit); <-done })
	for i := range int64(5) {
		c.BlockUntil(1)
		if got := handled.Load(); got != i {
			t.Fatalf("after %d advances the consumer handled %d events", i, got)
		}
		c.Advance(time.Second)
	}
	c.BlockUntil(1)
	if got := handled.Load(); got != 5 {
		t.Fatalf("handled %d events, want 5", got)
	}
	if got := c.Created(); got != 6 {
		t.Fatalf("created %d timers, want 6", got)
	}
}

// TestBlockUntilCreated: a consumer that replaces its timer on every event keeps one
// waiter; Created tells the test it has handled the event.
func TestBlockUntilCreated(t *testing.T) {
	CheckLeaks(t)
	c := NewClock(t)
	events := make(chan int)
	var last atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			ch, stop := c.NewTimer(time.Hour)
			select {
			case v, ok := <-events:
				stop()
				if !ok {
					return
				}
				last.Store(int64(v))
			case <-ch:
			}
		}
	}()
	for v := range 3 {
		c.BlockUntil(1)
		n := c.Created()
		events <- v
		c.BlockUntilCreated(n + 1)
		if got := last.Load(); got != int64(v) {
			t.Fatalf("consumer handled %d, want %d", got, v)
		}
	}
	close(events)
	<-done
	c.BlockUntil(0)
}

func TestBlockUntilFails(t *testing.T) {
	ft := &fakeTB{}
	c := NewClock(ft)
	c.stuck = time.Millisecond
	returned := ft.run(func() { c.BlockUntil(1) })
	errs, fatal := ft.failures()
	if returned || !fatal || len(errs) != 1 || !strings.Contains(errs[0], "1 pending timers") {
		t.Fatalf("returned %v, fatal %v, failures %q; want one Fatalf", returned, fatal, errs)
	}
}

func TestTickerDropsMissedTicks(t *testing.T) {
	CheckLeaks(t)
	c := NewClock(t)
	start := c.Now()
	ch, stop := c.NewTicker(time.Second)
	// advance runs Advance beside the test goroutine, which receives the ticks.
	advance := func(d time.Duration) <-chan struct{} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.Advance(d)
		}()
		return done
	}
	for _, tt := range []struct {
		advance time.Duration
		want    time.Duration // the tick's time since start
	}{
		{time.Second, time.Second},
		{3500 * time.Millisecond, 4500 * time.Millisecond}, // one tick for 3.5 periods
		{500 * time.Millisecond, 5 * time.Second},          // the next one at 5 s
	} {
		done := advance(tt.advance)
		if got := <-ch; !got.Equal(start.Add(tt.want)) {
			t.Fatalf("tick at %v, want %v", got.Sub(start), tt.want)
		}
		<-done
	}
	c.Advance(999 * time.Millisecond) // nothing due: returns without a receiver
	if c.Waiters() != 1 {
		t.Fatalf("%d waiters, want the ticker", c.Waiters())
	}
	stop()
	c.Advance(time.Hour) // stopped: returns without a receiver
	if c.Waiters() != 0 {
		t.Fatalf("%d waiters after stop", c.Waiters())
	}
}

func TestCheckLeaksReportsALeftGoroutine(t *testing.T) {
	ft := &fakeTB{}
	release := make(chan struct{})
	defer close(release)
	checkLeaks(ft, 10*time.Millisecond)
	go leakUntil(release)
	ft.finish()
	errs, _ := ft.failures()
	if len(errs) != 1 || !strings.Contains(errs[0], "testutil.leakUntil") {
		t.Fatalf("failures %q; want one naming leakUntil", errs)
	}
}

func leakUntil(release chan struct{}) { <-release }

func TestCheckLeaksWaitsForExitingGoroutines(t *testing.T) {
	ft := &fakeTB{}
	release := make(chan struct{})
	checkLeaks(ft, time.Minute)
	for range 3 {
		go leakUntil(release)
	}
	ft.Cleanup(func() { close(release) }) // runs before the check: it was registered later
	ft.finish()
	if errs, _ := ft.failures(); len(errs) != 0 {
		t.Fatalf("failures %q for goroutines that ended in a cleanup", errs)
	}
}

func TestCheckLeaksIgnoresEarlierGoroutines(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	go leakUntil(release) // started before the check
	ft := &fakeTB{}
	checkLeaks(ft, 10*time.Millisecond)
	ft.finish()
	if errs, _ := ft.failures(); len(errs) != 0 {
		t.Fatalf("failures %q for a goroutine older than the check", errs)
	}
}

func TestParked(t *testing.T) {
	release := make(chan struct{})
	if Parked("testutil.leakUntil") {
		t.Fatal("Parked before the goroutine started")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		leakUntil(release)
	}()
	Eventually(t, 5*time.Second, func() bool { return Parked("testutil.leakUntil") }, "leakUntil parked")
	close(release)
	<-done
	if Parked("testutil.leakUntil") {
		t.Fatal("Parked after the goroutine ended")
	}
	if Parked("testutil.TestParked") {
		t.Fatal("Parked counts the caller")
	}
}
