package health

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/gvs-lb/gvs/internal/script"
)

// Transition reports that a target went UP or DOWN, or that the weight of an UP target
// changed (a dynamic exec check; Up stays true).
type Transition struct {
	ID     string
	Target netip.AddrPort
	Up     bool
	// Weight is the dynamic weight to apply, or WeightUnchanged: keep the configured
	// (or last applied) weight.
	Weight int
	Reason string
	At     time.Time
}

// Status is a target's state and counters, as Snapshot reports them.
type Status struct {
	ID     string
	Target netip.AddrPort
	Type   Type
	Up     bool
	Weight int // dynamic weight, or WeightUnchanged

	Checks      uint64 // probes run, retries included
	Failures    uint64 // failed probes
	Transitions uint64 // UP/DOWN changes (not weight changes)

	LastReason   string
	LastDuration time.Duration
	LastCheck    time.Time // zero until the first probe
	LastChange   time.Time // zero until the first transition
}

// Options configures a Monitor. The zero value is usable.
type Options struct {
	// Logger receives one Info record per transition, Debug per failed probe, and
	// Error when a checker panics. Nil discards.
	Logger *slog.Logger
	// Notify, if set, receives every Transition. Calls are serialised across the whole
	// Monitor and come in the order transitions happen; a slow Notify delays the other
	// targets' transitions (not their probes), and Run waits for it when stopping, so
	// it must return promptly. Notify may call Snapshot and Status, not Update.
	Notify func(Transition)
	// Now stamps Transitions and Status times; nil means time.Now. Probe scheduling
	// uses the monotonic clock regardless.
	Now func() time.Time
	// NewChecker builds a target's Checker; nil means New with Scripts. A
	// replacement must return checkers that honour ctx.
	NewChecker func(Spec) (Checker, error)
	// Scripts runs exec checks (script user, enable_script_security); nil means
	// the zero script.Runner.
	Scripts *script.Runner
}

// Monitor runs the health checks of a set of targets; see the package doc for the
// semantics. Build it with NewMonitor (the zero value is not usable), give it targets
// with Update (before or while Run runs), and Run it once. Its methods are safe for
// concurrent use.
type Monitor struct {
	log        *slog.Logger
	notify     func(Transition)
	now        func() time.Time
	newChecker func(Spec) (Checker, error)

	// updateMu serialises Update and the start and end of Run; it is held while
	// joining probers, so Notify must not call Update.
	updateMu sync.Mutex

	mu      sync.Mutex // guards the fields below; never held while waiting
	probers map[string]*prober
	phase   phase
	ctx     context.Context // Run's context while running

	wg       sync.WaitGroup // every prober goroutine
	notifyMu sync.Mutex     // serialises Notify and transition logs
}

type phase uint8

const (
	idle phase = iota
	running
	stopped
)

// prober is one target: its spec, checker, state and counters.
type prober struct {
	spec    Spec // normalized, immutable
	checker Checker
	cancel  context.CancelFunc // nil until started
	done    chan struct{}

	mu     sync.Mutex // guards st and status
	st     state
	status Status
}

// NewMonitor returns an idle Monitor with no targets.
func NewMonitor(o Options) *Monitor {
	m := &Monitor{
		log:        o.Logger,
		notify:     o.Notify,
		now:        o.Now,
		newChecker: o.NewChecker,
		probers:    make(map[string]*prober),
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.newChecker == nil {
		scripts := o.Scripts
		m.newChecker = func(s Spec) (Checker, error) { return NewWithScripts(s, scripts) }
	}
	return m
}

// Update replaces the set of targets (a reload). Targets are matched by ID: unchanged
// specs keep their goroutine, state and counters; changed specs restart with fresh
// counters but keep their UP/DOWN state and weight; new ones start in their initial
// state; removed ones stop (and, with Omega, report DOWN if they were UP). Update
// returns once removed and changed targets have stopped.
//
// If any spec is invalid or a checker cannot be built, Update changes nothing and
// returns the error.
func (m *Monitor) Update(specs []Spec) error {
	norm := make([]Spec, len(specs))
	seen := make(map[string]bool, len(specs))
	for i := range specs {
		n, err := specs[i].normalize()
		if err != nil {
			return err
		}
		if seen[n.ID] {
			return fmt.Errorf("health: duplicate check ID %q: %w", n.ID, ErrInvalidSpec)
		}
		seen[n.ID] = true
		norm[i] = n
	}

	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	m.mu.Lock()
	ph, old := m.phase, m.probers
	m.mu.Unlock()
	if ph == stopped {
		return ErrStopped
	}

	// Build every new checker before touching anything, so a failure changes nothing.
	next := make(map[string]*prober, len(norm))
	var fresh, replaced []*prober
	for i := range norm {
		s := &norm[i]
		if p, ok := old[s.ID]; ok && specEqual(&p.spec, s) {
			next[s.ID] = p
			continue
		}
		c, err := m.newChecker(*s)
		if err != nil {
			return err
		}
		p := newProber(*s, c)
		if prev, ok := old[s.ID]; ok {
			replaced = append(replaced, prev)
		}
		next[s.ID] = p
		fresh = append(fresh, p)
	}
	var removed []*prober
	for id, p := range old {
		if _, ok := next[id]; !ok {
			removed = append(removed, p)
		}
	}

	for _, p := range replaced {
		p.stop()
	}
	for _, p := range removed {
		p.stop()
	}
	for _, p := range fresh {
		if prev, ok := old[p.spec.ID]; ok {
			prev.mu.Lock()
			p.st.up, p.st.weight = prev.st.up, prev.st.weight
			p.status.Up, p.status.Weight = prev.st.up, prev.st.weight
			prev.mu.Unlock()
		}
	}

	m.mu.Lock()
	m.probers = next
	if m.phase == running {
		for _, p := range fresh {
			m.start(p)
		}
	}
	m.mu.Unlock()

	slices.SortFunc(removed, byID)
	for _, p := range removed {
		m.omegaDown(p, "removed (omega)")
	}
	return nil
}

// Run probes every target until ctx is done, then stops and joins every goroutine,
// reports the Omega transitions, and returns nil. A Monitor runs once: Run returns
// ErrRunning while it runs and ErrStopped after.
func (m *Monitor) Run(ctx context.Context) error {
	m.updateMu.Lock()
	m.mu.Lock()
	switch m.phase {
	case running:
		m.mu.Unlock()
		m.updateMu.Unlock()
		return ErrRunning
	case stopped:
		m.mu.Unlock()
		m.updateMu.Unlock()
		return ErrStopped
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.phase, m.ctx = running, ctx
	for _, p := range m.probers {
		m.start(p)
	}
	m.mu.Unlock()
	m.updateMu.Unlock()

	<-ctx.Done()

	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	m.mu.Lock()
	m.phase, m.ctx = stopped, nil
	ps := slices.SortedFunc(maps.Values(m.probers), byID)
	m.mu.Unlock()
	m.wg.Wait()
	for _, p := range ps {
		m.omegaDown(p, "stopped (omega)")
	}
	return nil
}

// Snapshot returns the status of every target, sorted by ID.
func (m *Monitor) Snapshot() []Status {
	m.mu.Lock()
	ps := make([]*prober, 0, len(m.probers))
	for _, p := range m.probers {
		ps = append(ps, p)
	}
	m.mu.Unlock()
	out := make([]Status, len(ps))
	for i, p := range ps {
		p.mu.Lock()
		out[i] = p.status
		p.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b Status) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Status returns the status of the target id.
func (m *Monitor) Status(id string) (Status, bool) {
	m.mu.Lock()
	p, ok := m.probers[id]
	m.mu.Unlock()
	if !ok {
		return Status{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status, true
}

func newProber(s Spec, c Checker) *prober {
	p := &prober{spec: s, checker: c, st: initialState(&s)}
	p.status = Status{ID: s.ID, Target: s.Target, Type: s.Type, Up: p.st.up, Weight: p.st.weight}
	return p
}

func byID(a, b *prober) int { return cmp.Compare(a.spec.ID, b.spec.ID) }

// start launches p's goroutine.
// Precondition: m.mu is held and m.phase is running.
func (m *Monitor) start(p *prober) {
	ctx, cancel := context.WithCancel(m.ctx)
	p.cancel, p.done = cancel, make(chan struct{})
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(p.done)
		m.loop(ctx, p)
	}()
}

// stop cancels p's goroutine, if started, and waits for it.
func (p *prober) stop() {
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
}

// stagger is the delay before a target's first probe: a hash of its ID spread over
// [0, interval), deterministic so that restarts probe in the same order.
func stagger(id string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(id))
	return time.Duration(h.Sum64() % uint64(interval))
}

func (m *Monitor) loop(ctx context.Context, p *prober) {
	t := time.NewTimer(stagger(p.spec.ID, p.spec.Interval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		r := m.check(ctx, p)
		if ctx.Err() != nil {
			return // stopping: the result says nothing about the server
		}
		delay := m.record(p, r)
		t.Reset(max(0, delay-time.Since(start)))
	}
}

// checkGrace is how much longer than its Timeout the Monitor lets a checker run: the
// checker's own timeout comes first and names itself in the Reason.
const checkGrace = time.Second

// check runs one probe. A panicking checker is a failed probe, not a dead daemon.
func (m *Monitor) check(ctx context.Context, p *prober) (r Result) {
	defer func() {
		if v := recover(); v != nil {
			m.log.Error("health: checker panicked", "id", p.spec.ID, "panic", v)
			r = Result{Reason: fmt.Sprintf("checker panicked: %v", v), Weight: WeightUnchanged}
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, p.spec.Timeout+checkGrace)
	defer cancel()
	return p.checker.Check(ctx)
}

// record applies r to p, reports a transition if there is one, and returns the delay
// from this probe's start to the next.
func (m *Monitor) record(p *prober, r Result) time.Duration {
	now := m.now()
	p.mu.Lock()
	ch, delay := p.st.step(r, &p.spec)
	s := &p.status
	s.Checks++
	if !r.Up {
		s.Failures++
	}
	s.LastReason, s.LastDuration, s.LastCheck = r.Reason, r.Duration, now
	up, weight := p.st.up, p.st.weight
	s.Up, s.Weight = up, weight
	if ch == wentUp || ch == wentDown {
		s.Transitions++
		s.LastChange = now
	}
	p.mu.Unlock()

	if !r.Up {
		m.log.Debug("health: probe failed", "id", p.spec.ID, "reason", r.Reason, "up", up)
	}
	if ch != noChange {
		m.emit(ch, Transition{ID: p.spec.ID, Target: p.spec.Target, Up: up,
			Weight: weight, Reason: r.Reason, At: now})
	}
	return delay
}

// omegaDown reports a stopped target DOWN if it was UP and its spec has Omega.
// Precondition: p's goroutine has stopped.
func (m *Monitor) omegaDown(p *prober, reason string) {
	p.mu.Lock()
	if !p.spec.Omega || !p.st.up {
		p.mu.Unlock()
		return
	}
	now := m.now()
	weight := p.st.weight
	p.st.up = false
	p.status.Up = false
	p.status.Transitions++
	p.status.LastChange = now
	p.mu.Unlock()
	m.emit(wentDown, Transition{ID: p.spec.ID, Target: p.spec.Target, Weight: weight,
		Reason: reason, At: now})
}

func (m *Monitor) emit(ch change, t Transition) {
	m.notifyMu.Lock()
	defer m.notifyMu.Unlock()
	attrs := []any{"id", t.ID, "reason", t.Reason}
	if t.Target.IsValid() {
		attrs = append(attrs, "target", t.Target)
	}
	switch ch {
	case wentUp:
		if t.Weight != WeightUnchanged {
			attrs = append(attrs, "weight", t.Weight)
		}
		m.log.Info("health: real server up", attrs...)
	case wentDown:
		m.log.Info("health: real server down", attrs...)
	case weightChanged:
		m.log.Info("health: real server weight changed", append(attrs, "weight", t.Weight)...)
	}
	if m.notify != nil {
		m.notify(t)
	}
}

// specEqual reports whether two normalized specs describe the same check. (normalize
// makes empty slices nil, so DeepEqual compares contents.)
func specEqual(a, b *Spec) bool { return reflect.DeepEqual(a, b) }
