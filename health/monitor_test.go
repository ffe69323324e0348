package health

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/testutil"
)

// recorder collects Transitions.
type recorder struct {
	mu sync.Mutex
	ts []Transition
	ch chan Transition
}

func newRecorder() *recorder { return &recorder{ch: make(chan Transition, 100)} }

func (r *recorder) notify(t Transition) {
	r.mu.Lock()
	r.ts = append(r.ts, t)
	r.mu.Unlock()
	r.ch <- t
}

func (r *recorder) all() []Transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Transition(nil), r.ts...)
}

// next waits for the next Transition.
func (r *recorder) next(t *testing.T) Transition {
	t.Helper()
	select {
	case tr := <-r.ch:
		return tr
	case <-time.After(10 * time.Second):
		t.Fatal("no transition within 10s")
		return Transition{}
	}
}

// runningMonitor is a Monitor whose Run goroutine the test owns.
type runningMonitor struct {
	*Monitor
	cancel context.CancelFunc
	done   chan error
}

func startMonitor(t *testing.T, o Options, specs []Spec) *runningMonitor {
	t.Helper()
	m := NewMonitor(o)
	if err := m.Update(specs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningMonitor{Monitor: m, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- m.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and waits for it; it may be called more than once.
func (r *runningMonitor) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of cancel")
	}
}

func (r *runningMonitor) status(t *testing.T, id string) Status {
	t.Helper()
	s, ok := r.Status(id)
	if !ok {
		t.Fatalf("no target %q", id)
	}
	return s
}

// fast is a spec with short real timings.
func fast(typ Type, target netip.AddrPort) Spec {
	return Spec{Type: typ, Target: target, Interval: 20 * time.Millisecond, Timeout: time.Second,
		RetryDelay: 5 * time.Millisecond}
}

// TestMonitorRetriesCountedExactly: a server failing three times then succeeding, with
// retry 2, goes DOWN on the third failure and UP on the first success; the counters and
// the server agree on every probe.
func TestMonitorRetriesCountedExactly(t *testing.T) {
	testutil.CheckLeaks(t)
	forEachFamily(t, func(t *testing.T, fam family) {
		var requests atomic.Int64
		var paused atomic.Bool
		parked := make(chan struct{}, 1)
		_, addr := httpServer(t, fam, false, func(w http.ResponseWriter, r *http.Request) {
			if paused.Load() {
				// Not counted, and never answered: the probe stays in flight
				// until Run stops, and is then discarded.
				select {
				case parked <- struct{}{}:
				default:
				}
				<-r.Context().Done()
				return
			}
			if requests.Add(1) <= 3 {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		})
		rec := newRecorder()
		var logs bytes.Buffer
		var logMu sync.Mutex
		logger := slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil))
		s := fast(HTTP, addr)
		s.Retries = 2
		m := startMonitor(t, Options{Notify: rec.notify, Logger: logger}, []Spec{s})
		id := addr.String()

		down := rec.next(t)
		if down.Up || down.Reason != "HTTP 503" || down.ID != id || down.Target != addr || down.Weight != WeightUnchanged {
			t.Errorf("first transition %+v, want DOWN with HTTP 503", down)
		}
		up := rec.next(t)
		if !up.Up || up.Reason != "HTTP 200" || up.At.Before(down.At) {
			t.Errorf("second transition %+v, want UP with HTTP 200", up)
		}
		testutil.Eventually(t, 5*time.Second, func() bool { return m.status(t, id).Checks >= 6 }, "more checks")
		// A target's probes run one after another: once one is parked in the
		// paused server, every counted request has been recorded, whatever the
		// interleaving.
		paused.Store(true)
		<-parked
		m.stop(t)

		st := m.status(t, id)
		if st.Failures != 3 || st.Transitions != 2 || !st.Up || st.LastReason != "HTTP 200" {
			t.Errorf("status %+v, want 3 failures, 2 transitions, up", st)
		}
		if st.Checks != uint64(requests.Load()) {
			t.Errorf("%d checks counted, server saw %d", st.Checks, requests.Load())
		}
		if n := len(rec.all()); n != 2 {
			t.Errorf("%d transitions notified, want 2", n)
		}
		logMu.Lock()
		out := logs.String()
		logMu.Unlock()
		if strings.Count(out, "real server down") != 1 || strings.Count(out, "real server up") != 1 ||
			!strings.Contains(out, `reason="HTTP 503"`) {
			t.Errorf("want each transition logged once with its reason, got:\n%s", out)
		}
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestMonitorRetriesAbsorbFailures: two failures with retry 2 never bring it down.
func TestMonitorRetriesAbsorbFailures(t *testing.T) {
	testutil.CheckLeaks(t)
	c := &scripted{results: []Result{fail, fail, ok}}
	rec := newRecorder()
	s := fast(TCP, docTarget)
	s.Retries = 2
	m := startMonitor(t, Options{Notify: rec.notify, NewChecker: c.factory}, []Spec{s})
	testutil.Eventually(t, 5*time.Second, func() bool { return m.status(t, s.Target.String()).Checks >= 6 }, "six checks")
	m.stop(t)
	st := m.status(t, s.Target.String())
	if st.Failures != 2 || st.Transitions != 0 || !st.Up {
		t.Errorf("status %+v, want 2 failures and no transition", st)
	}
	if ts := rec.all(); len(ts) != 0 {
		t.Errorf("transitions %+v, want none", ts)
	}
}

// scripted is a Checker returning results in order, then the last one forever.
type scripted struct {
	mu      sync.Mutex
	results []Result
	n       int
	// holds[i], if set, is waited for (or the end of the probe's context) before
	// call i returns: the probes before it are recorded and the next one is not, so
	// the test reads the counters at a fixed point whatever the scheduling.
	holds map[int]chan struct{}
}

func (c *scripted) Check(ctx context.Context) Result {
	c.mu.Lock()
	i := c.n
	c.n++
	r, hold := c.results[min(i, len(c.results)-1)], c.holds[i]
	c.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
		}
	}
	return r
}

func (c *scripted) factory(Spec) (Checker, error) { return c, nil }

func TestMonitorRiseFall(t *testing.T) {
	testutil.CheckLeaks(t)
	// retry 1, fall 2: DOWN after 4 consecutive failed probes; rise 3: UP after 3
	// consecutive successes.
	script := []Result{
		fail, fail, fail, ok, // 3 failures, success resets
		fail, fail, fail, fail, // DOWN at probe 8
		ok, ok, fail, // rise interrupted
		ok, ok, okWeight(9), // UP at probe 14, with the dynamic weight
	}
	// The probe after each transition waits, so that the counters read at the
	// transition are exactly those of the probes up to it.
	afterDown, afterUp := make(chan struct{}), make(chan struct{})
	c := &scripted{results: script, holds: map[int]chan struct{}{8: afterDown, 14: afterUp}}
	rec := newRecorder()
	s := fast(TCP, docTarget)
	s.Timeout = time.Hour // the held probes must not time out
	s.Retries, s.Fall, s.Rise = 1, 2, 3
	m := startMonitor(t, Options{Notify: rec.notify, NewChecker: c.factory}, []Spec{s})
	id := s.Target.String()
	if down := rec.next(t); down.Up {
		t.Fatalf("got %+v, want DOWN", down)
	}
	if st := m.status(t, id); st.Checks != 8 || st.Failures != 7 {
		t.Errorf("at DOWN: %d checks %d failures, want 8 and 7", st.Checks, st.Failures)
	}
	close(afterDown)
	up := rec.next(t)
	if !up.Up || up.Weight != 9 {
		t.Fatalf("got %+v, want UP with weight 9", up)
	}
	if st := m.status(t, id); st.Checks != 14 || st.Failures != 8 || st.Transitions != 2 {
		t.Errorf("at UP: %+v, want 14 checks, 8 failures, 2 transitions", st)
	}
	m.stop(t)
	if n := len(rec.all()); n != 2 {
		t.Errorf("%d transitions, want 2", n)
	}
}

func TestMonitorAlpha(t *testing.T) {
	testutil.CheckLeaks(t)
	fam := families[0]
	open, closed := tcpServer(t, fam, nil), closedPort(t, fam)
	a, b := fast(TCP, open), fast(TCP, closed)
	a.Alpha = true // starts DOWN, comes UP
	// b without alpha starts UP, goes DOWN (retry 0)
	rec := newRecorder()
	m := NewMonitor(Options{Notify: rec.notify})
	if err := m.Update([]Spec{a, b}); err != nil {
		t.Fatal(err)
	}
	snap := m.Snapshot()
	if len(snap) != 2 || snap[0].ID != open.String() && snap[1].ID != open.String() {
		t.Fatalf("snapshot %+v", snap)
	}
	if st, _ := m.Status(open.String()); st.Up {
		t.Error("alpha target starts UP")
	}
	if st, _ := m.Status(closed.String()); !st.Up {
		t.Error("target without alpha starts DOWN")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	got := map[string]bool{}
	for range 2 {
		tr := rec.next(t)
		got[tr.ID] = tr.Up
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if up, ok := got[open.String()]; !ok || !up {
		t.Errorf("alpha target transitions %v, want UP", got)
	}
	if up, ok := got[closed.String()]; !ok || up {
		t.Errorf("failing target transitions %v, want DOWN", got)
	}
}

func TestMonitorOmega(t *testing.T) {
	testutil.CheckLeaks(t)
	fam := families[0]
	open := tcpServer(t, fam, nil)
	mk := func(port uint16, omega bool) Spec {
		s := fast(TCP, open)
		s.ID = "rs" + string(rune('a'+port))
		s.Omega = omega
		return s
	}
	withOmega, without, removed := mk(0, true), mk(1, false), mk(2, true)
	rec := newRecorder()
	m := startMonitor(t, Options{Notify: rec.notify}, []Spec{withOmega, without, removed})
	testutil.Eventually(t, 5*time.Second, func() bool {
		for _, s := range m.Snapshot() {
			if s.Checks < 2 {
				return false
			}
		}
		return true
	}, "checks")
	if err := m.Update([]Spec{withOmega, without}); err != nil {
		t.Fatal(err)
	}
	tr := rec.next(t)
	if tr.ID != removed.ID || tr.Up || tr.Reason != "removed (omega)" {
		t.Errorf("on removal got %+v, want DOWN removed (omega)", tr)
	}
	m.stop(t)
	ts := rec.all()
	if len(ts) != 2 || ts[1].ID != withOmega.ID || ts[1].Up || ts[1].Reason != "stopped (omega)" {
		t.Errorf("transitions %+v, want one omega DOWN on stop for %s only", ts, withOmega.ID)
	}
	if st := m.status(t, withOmega.ID); st.Up || st.Transitions != 1 {
		t.Errorf("omega target after stop %+v, want DOWN with 1 transition", st)
	}
	if st := m.status(t, without.ID); !st.Up {
		t.Errorf("target without omega after stop %+v, want still UP", st)
	}
}

// TestMonitorReloadKeepsState: unchanged targets keep state and counters; a changed
// target restarts with fresh counters but keeps its state; new ones start; removed
// ones stop; nothing is notified.
func TestMonitorReloadKeepsState(t *testing.T) {
	testutil.CheckLeaks(t)
	fam := families[0]
	closed := closedPort(t, fam)
	open := tcpServer(t, fam, nil)
	mk := func(id string, target netip.AddrPort) Spec {
		s := fast(TCP, target)
		s.ID = id
		return s
	}
	same, changed, gone := mk("same", closed), mk("changed", closed), mk("gone", open)
	// The targets the reload starts probe only once the test lets them, so that their
	// counters are read before their first probe whatever the scheduling.
	releaseAdded := make(chan struct{})
	newChecker := func(s Spec) (Checker, error) {
		c, err := New(s)
		switch {
		case err != nil:
			return nil, err
		case s.ID == "added":
			return gated{c, releaseAdded}, nil
		case s.ID == "changed" && s.Interval == time.Hour:
			return gated{c, nil}, nil // until Run stops
		}
		return c, nil
	}
	rec := newRecorder()
	m := startMonitor(t, Options{Notify: rec.notify, NewChecker: newChecker}, []Spec{same, changed, gone})
	for range 2 {
		if tr := rec.next(t); tr.Up {
			t.Fatalf("got %+v, want DOWN", tr)
		}
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		return m.status(t, "same").Checks >= 3 && m.status(t, "changed").Checks >= 3
	}, "checks")
	before := m.status(t, "same")

	changed.Interval, changed.Timeout = time.Hour, time.Hour
	added := mk("added", open)
	added.Alpha = true
	added.Timeout = time.Hour
	if err := m.Update([]Spec{same, changed, added}); err != nil {
		t.Fatal(err)
	}

	after := m.status(t, "same")
	if after.Up || after.Transitions != 1 || after.Checks < before.Checks || after.Failures < before.Failures {
		t.Errorf("unchanged target lost its state: before %+v after %+v", before, after)
	}
	if st := m.status(t, "changed"); st.Up || st.Checks != 0 || st.Failures != 0 || st.Transitions != 0 {
		t.Errorf("changed target %+v, want DOWN kept, counters reset", st)
	}
	if _, ok := m.Status("gone"); ok {
		t.Error("removed target still reported")
	}
	if st := m.status(t, "added"); st.Up || st.Checks != 0 {
		t.Errorf("added alpha target %+v, want DOWN and unchecked", st)
	}
	close(releaseAdded)
	if tr := rec.next(t); tr.ID != "added" || !tr.Up {
		t.Errorf("got %+v, want the added target UP", tr)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		return m.status(t, "same").Checks > after.Checks
	}, "the unchanged target to keep counting")
	m.stop(t)
	if n := len(rec.all()); n != 3 {
		t.Errorf("%d transitions, want 3 (two DOWN before the reload, one UP after)", n)
	}
}

// TestMonitorHangingCheckDoesNotBlockOthers: a check that does not finish does not
// delay another target, and a check that never finishes is bounded by its timeout.
func TestMonitorHangingCheckDoesNotBlockOthers(t *testing.T) {
	testutil.CheckLeaks(t)
	fam := families[0]
	release := make(chan struct{})
	_, held := httpServer(t, fam, false, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	silent := tcpServer(t, fam, blockUntilClosed)
	open := tcpServer(t, fam, nil)
	hang := fast(HTTP, held) // answers once the test releases it
	hang.Timeout = time.Hour
	hang.Interval = time.Millisecond
	bounded := fast(HTTP, silent) // never answers
	bounded.Timeout = 50 * time.Millisecond
	quick := fast(TCP, open)
	quick.Interval = 5 * time.Millisecond
	m := startMonitor(t, Options{}, []Spec{hang, bounded, quick})
	testutil.Eventually(t, 10*time.Second, func() bool {
		return m.status(t, open.String()).Checks >= 10
	}, "ten quick checks")
	if st := m.status(t, held.String()); st.Checks != 0 {
		t.Fatalf("held check finished before its server answered: %+v", st)
	}
	close(release)
	testutil.Eventually(t, 10*time.Second, func() bool {
		return m.status(t, held.String()).Checks >= 1
	}, "the held check to finish once released")
	if st := m.status(t, held.String()); st.LastReason != "HTTP 200" {
		t.Errorf("released check %+v, want HTTP 200", st)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		return m.status(t, silent.String()).Checks >= 1
	}, "the hanging check to time out")
	if st := m.status(t, silent.String()); st.LastReason != "timeout after 50ms" {
		t.Errorf("hanging check %+v", st)
	}
}

// gated is a Checker whose probes wait for release (or the end of the probe's
// context) before they start.
type gated struct {
	Checker
	release <-chan struct{}
}

func (g gated) Check(ctx context.Context) Result {
	select {
	case <-g.release:
		return g.Checker.Check(ctx)
	case <-ctx.Done():
		return Result{Reason: "stopped before release", Weight: WeightUnchanged}
	}
}

type panicker struct{}

func (panicker) Check(context.Context) Result { panic("boom") }

func TestMonitorPanickingChecker(t *testing.T) {
	testutil.CheckLeaks(t)
	rec := newRecorder()
	s := fast(TCP, docTarget)
	m := startMonitor(t, Options{Notify: rec.notify,
		NewChecker: func(Spec) (Checker, error) { return panicker{}, nil }}, []Spec{s})
	tr := rec.next(t)
	if tr.Up || tr.Reason != "checker panicked: boom" {
		t.Errorf("got %+v", tr)
	}
	m.stop(t)
}

func TestMonitorDynamicWeight(t *testing.T) {
	testutil.CheckLeaks(t)
	rec := newRecorder()
	s := Spec{Type: Exec, ID: "dyn", Command: sh("exit 12"), Dynamic: true,
		Interval: 20 * time.Millisecond, Timeout: 5 * time.Second}
	m := startMonitor(t, Options{Notify: rec.notify}, []Spec{s})
	tr := rec.next(t)
	if !tr.Up || tr.Weight != 10 || tr.Reason != "exit 12" {
		t.Errorf("got %+v, want weight 10 while UP", tr)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return m.status(t, "dyn").Checks >= 3 }, "more checks")
	m.stop(t)
	if st := m.status(t, "dyn"); st.Weight != 10 || st.Transitions != 0 || len(rec.all()) != 1 {
		t.Errorf("status %+v, transitions %+v: want weight 10, one weight change only", st, rec.all())
	}
}

func TestMonitorNotifyMayReadStatus(t *testing.T) {
	testutil.CheckLeaks(t)
	fam := families[0]
	s := fast(TCP, closedPort(t, fam))
	var m *Monitor
	got := make(chan Status, 10)
	m = NewMonitor(Options{Notify: func(tr Transition) {
		st, _ := m.Status(tr.ID)
		got <- st
	}})
	if err := m.Update([]Spec{s}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	select {
	case st := <-got:
		if st.Up || st.Transitions != 1 {
			t.Errorf("status seen from Notify %+v", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no transition")
	}
	cancel()
	<-done
}

func TestMonitorUpdateErrors(t *testing.T) {
	testutil.CheckLeaks(t)
	good := fast(TCP, docTarget)
	m := NewMonitor(Options{})
	if err := m.Update([]Spec{good}); err != nil {
		t.Fatal(err)
	}
	bad := good
	bad.ID, bad.Interval = "bad", 0
	if err := m.Update([]Spec{good, bad}); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("zero interval: %v", err)
	}
	bad.Interval = -time.Second
	if err := m.Update([]Spec{bad}); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("negative interval: %v", err)
	}
	if err := m.Update([]Spec{good, good}); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("duplicate ID: %v", err)
	}
	failing := NewMonitor(Options{NewChecker: func(Spec) (Checker, error) { return nil, ErrInvalidSpec }})
	if err := failing.Update([]Spec{good}); !errors.Is(err, ErrInvalidSpec) || len(failing.Snapshot()) != 0 {
		t.Errorf("checker construction failure: %v, %d targets", err, len(failing.Snapshot()))
	}
	if snap := m.Snapshot(); len(snap) != 1 || snap[0].ID != good.Target.String() {
		t.Errorf("a failed Update changed the targets: %+v", snap)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	testutil.Eventually(t, 5*time.Second, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.phase == running
	}, "Run to start")
	if err := m.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if err := m.Run(context.Background()); !errors.Is(err, ErrStopped) {
		t.Errorf("Run after stop: %v", err)
	}
	if err := m.Update([]Spec{good}); !errors.Is(err, ErrStopped) {
		t.Errorf("Update after stop: %v", err)
	}
}

func TestStagger(t *testing.T) {
	const interval = 10 * time.Second
	seen := map[time.Duration]bool{}
	for i := range 100 {
		id := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}), 80).String()
		d := stagger(id, interval)
		if d < 0 || d >= interval {
			t.Fatalf("stagger(%s) = %v, outside [0, %v)", id, d, interval)
		}
		if d != stagger(id, interval) {
			t.Fatal("stagger is not deterministic")
		}
		seen[d/time.Second] = true
	}
	if len(seen) < 8 {
		t.Errorf("100 targets fall into %d of 10 one-second slots, want them spread", len(seen))
	}
}
