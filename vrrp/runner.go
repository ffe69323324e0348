package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Member is one instance a Runner drives, with the transport its adverts go out on
// and come in from. Members may share a Transport (same interface, family and
// mode); the Runner then reads it once and hands each packet to the members with
// the packet's VRID.
type Member struct {
	// Name is keepalived's vrrp_instance name, for logs ("VI_1").
	Name      string
	Instance  *Instance
	Transport Transport
	// LinkUp, if set, is polled with the Tracks: false (the instance's own interface
	// is down) takes the instance to FAULT, true again back to BACKUP.
	LinkUp func() bool
	// Tracks are the instance's other tracked objects (track_interface,
	// track_service, track_script, track_file, track_process): see Track.
	Tracks []Track
}

// polled reports whether the Runner polls m's link or tracked objects.
func (m *Member) polled() bool { return m.LinkUp != nil || len(m.Tracks) > 0 }

// assess polls m's link and tracks once. It returns the effective priority they give
// (clamped to 1–254), the tracks whose delta applies ("script chk +10"), and whether
// the instance must be in FAULT, with why naming the first cause.
func (m *Member) assess() (prio uint8, applied []string, ok bool, why string) {
	ok = true
	if m.LinkUp != nil && !m.LinkUp() {
		ok, why = false, "interface down"
	}
	p := int(m.Instance.BasePriority())
	for _, t := range m.Tracks {
		st := t.State()
		if st.Fault && ok {
			ok, why = false, t.Name+" down"
		}
		if st.Delta != 0 {
			p += st.Delta
			applied = append(applied, fmt.Sprintf("%s %+d", t.Name, st.Delta))
		}
	}
	return uint8(min(max(p, 1), PriorityOwner-1)), applied, ok, why
}

// reassess polls m's tracked objects and applies what changed: the effective
// priority first, then FAULT or its end.
func (r *Runner) reassess(m *Member) {
	if !m.polled() {
		return
	}
	p, applied, up, why := m.assess()
	r.mu.Lock()
	if st := r.status[m.Instance]; st != nil {
		st.Tracks = applied
	}
	r.mu.Unlock()
	if m.Instance.BasePriority() != PriorityOwner {
		if old := m.Instance.Priority(); p != old {
			r.log.Info("VRRP changing effective priority", "instance", m.Name, "from", old, "to", p, "tracks", applied)
			r.step(m, Event{Kind: EventPriority, Priority: p}, "effective priority changed")
		}
	}
	if up == r.healthy[m] {
		return
	}
	r.healthy[m] = up
	if up {
		r.log.Info("VRRP tracked objects up", "instance", m.Name)
		r.step(m, Event{Kind: EventLinkUp}, "interface and tracked objects up")
	} else {
		r.log.Warn("VRRP "+why, "instance", m.Name)
		r.step(m, Event{Kind: EventLinkDown}, why)
	}
}

// Reassess asks the Runner to poll every member's tracked objects now rather than
// at the next advert interval (a tracked script's result changed). It never
// blocks; calls while one is pending are merged.
func (r *Runner) Reassess() {
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// Clock is the time source of a Runner: the real one (nil in RunnerOptions) or a
// fake in tests.
type Clock interface {
	Now() time.Time
	// NewTimer returns a channel that receives once d has passed, and a stop
	// function.
	NewTimer(d time.Duration) (<-chan time.Time, func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// Transition describes one state change of one instance, with the reason in
// keepalived's words.
type Transition struct {
	Name     string
	Instance *Instance
	From, To State
	Reason   string
}

// RunnerOptions are the Runner's callbacks and clock. Callbacks run on the Runner's
// goroutine, in the order the state machine returns the actions; they must not block
// for long (a slow callback delays adverts).
type RunnerOptions struct {
	Logger *slog.Logger // nil: discard
	Clock  Clock        // nil: the real clock
	// BecomeMaster is called once per transition to MASTER, after the first advert
	// went out: take the VIPs and announce them (gratuitous ARP / unsolicited NA).
	BecomeMaster func(m *Member)
	// LeaveMaster is called once per transition out of MASTER: release the VIPs.
	LeaveMaster func(m *Member)
	// Gratuitous is called when a master must repeat its announcements (it heard a
	// lower priority).
	Gratuitous func(m *Member)
	// StateChange is called for every transition, after the actions above.
	StateChange func(t Transition)
	// PreemptHold, if set, is asked before an instance starts and before a backup
	// acts on an advert: "" lets it preempt as configured; otherwise preemption is
	// held for the reason returned (Instance.SetPreemptHold), which the log (once
	// per hold) and Status.PreemptHeld show. It runs on the Runner's goroutine and
	// must not block.
	PreemptHold func() string
	// DropLogQuiet: a dropped advert is logged (at Warn) the first time its reason
	// occurs for a member, again when the sender changes, and again once the reason
	// has not occurred for DropLogQuiet; the drops in between are only counted
	// (Drops). 0 means DefaultDropLogQuiet.
	DropLogQuiet time.Duration
}

// Runner drives Instances (and their sync Groups) with a clock and transports: it
// receives adverts, delivers timer events at NextDeadline, sends adverts and calls
// the callbacks for the other actions. Run blocks until its context ends, then
// shuts every instance down (a master advertises priority 0) and closes the
// transports.
type Runner struct {
	members []*Member
	opts    RunnerOptions
	log     *slog.Logger
	clock   Clock
	drops   [NumReasons]atomic.Uint64
	sent    atomic.Uint64
	sendErr atomic.Uint64
	rx      atomic.Uint64
	// dropLog rate-limits the drop log lines (once per change of reason or sender).
	dropLog *dropLog

	mu     sync.Mutex // guards status, and members against Update (read without it on Run's goroutine)
	status map[*Instance]*Status
	// zero records the members whose last accepted advert had priority 0, so that
	// the takeover that follows is logged with that reason.
	zero map[*Member]bool
	// healthy is each polled member's health as of its last assessment (Runner
	// goroutine only).
	healthy map[*Member]bool
	// held is why each member's preemption was last held, "" once released
	// (Runner goroutine only).
	held map[*Member]string
	poke chan struct{}

	// Run's: the transports read (one goroutine each, in wg), what they read,
	// and the first fatal error.
	transports []Transport
	wg         sync.WaitGroup
	rxq        chan received
	errc       chan error
	done       chan struct{}
	updates    chan updateReq
	stopped    chan struct{} // closed when Run has returned
}

// NewRunner returns a Runner for members. Each Instance must be in StateInitialize
// and listed once; members of a Group must all be listed.
func NewRunner(members []Member, opts RunnerOptions) (*Runner, error) {
	r := &Runner{opts: opts, log: opts.Logger, clock: opts.Clock, dropLog: newDropLog(opts.DropLogQuiet), status: map[*Instance]*Status{},
		zero: map[*Member]bool{}, healthy: map[*Member]bool{}, held: map[*Member]string{}, poke: make(chan struct{}, 1),
		updates: make(chan updateReq), stopped: make(chan struct{})}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.clock == nil {
		r.clock = realClock{}
	}
	seen := map[*Instance]bool{}
	for i := range members {
		m := members[i]
		switch {
		case m.Instance == nil || m.Transport == nil:
			return nil, fmt.Errorf("vrrp: runner: %w: member %q needs an instance and a transport", ErrInvalidConfig, m.Name)
		case seen[m.Instance]:
			return nil, fmt.Errorf("vrrp: runner: %w: instance %q listed twice", ErrInvalidConfig, m.Name)
		case m.Instance.State() != StateInitialize:
			return nil, fmt.Errorf("vrrp: runner: %w: instance %q already started", ErrInvalidConfig, m.Name)
		}
		seen[m.Instance] = true
		r.members = append(r.members, &m)
		r.status[m.Instance] = &Status{Name: m.Name, State: StateInitialize, Priority: m.Instance.Priority(),
			BasePriority: m.Instance.BasePriority(), Configured: m.Instance.cfg.Priority}
	}
	for _, m := range r.members {
		if g := m.Instance.group; g != nil {
			for _, o := range g.members {
				if !seen[o] {
					return nil, fmt.Errorf("vrrp: runner: %w: sync group member VRID %d of %q is not in the runner", ErrInvalidConfig, o.cfg.VRID, m.Name)
				}
			}
		}
	}
	return r, nil
}

// Drops returns how many received packets were dropped, per Reason. ErrVRID counts
// adverts for VRIDs no member has (keepalived ignores those silently).
func (r *Runner) Drops() [NumReasons]uint64 {
	var out [NumReasons]uint64
	for i := range r.drops {
		out[i] = r.drops[i].Load()
	}
	return out
}

// Counters returns adverts received (decoded), sent, and failed sends.
func (r *Runner) Counters() (received, sent, sendErrors uint64) {
	return r.rx.Load(), r.sent.Load(), r.sendErr.Load()
}

// State returns the state of a member's instance as of the last step, safe to call
// from any goroutine.
func (r *Runner) State(in *Instance) State {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st := r.status[in]; st != nil {
		return st.State
	}
	return 0
}

// Status is one member's state as of its last step, for gvs adm and the dumps.
type Status struct {
	Name  string
	State State
	// Configured is the configured priority, BasePriority the one tracking starts
	// from (254 for an owner that met another owner), Priority the effective one.
	Configured, BasePriority, Priority uint8
	// Master is the current master's address and priority as last heard (the
	// instance's own source address when it is master; invalid before any advert).
	Master         netip.Addr
	MasterPriority uint8
	// Since and Reason are the last transition's time and cause; From its old state.
	Since  time.Time
	From   State
	Reason string
	// Tracks are the tracked objects whose delta applies ("script chk -20").
	Tracks []string
	// PreemptHeld is why this backup accepts a lower-priority master instead of
	// preempting (RunnerOptions.PreemptHold); "" when it does not.
	PreemptHeld string
	// Adverts counts the adverts this instance has handled (keepalived's
	// per-instance "Advertisements: Received"): valid ones of its VRID, counted
	// once the instance has acted on them.
	Adverts uint64
}

// Status returns every member's status in the Runner's order, safe to call from any
// goroutine.
func (r *Runner) Status() []Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Status, 0, len(r.members))
	for _, m := range r.members {
		if st := r.status[m.Instance]; st != nil {
			c := *st
			c.Tracks = slices.Clone(st.Tracks)
			out = append(out, c)
		}
	}
	return out
}

// snapshot records m's state after a step; tr is the transition, if any.
func (r *Runner) snapshot(m *Member, tr *Transition) {
	in := m.Instance
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.status[in]
	if st == nil {
		return
	}
	st.State, st.Priority, st.BasePriority = in.State(), in.Priority(), in.BasePriority()
	st.Master, st.MasterPriority = in.Master()
	if st.State == StateMaster {
		st.Master, st.MasterPriority = in.cfg.Src, in.Priority()
	}
	if tr != nil {
		st.Since, st.From, st.Reason = r.clock.Now(), tr.From, tr.Reason
	}
}

type received struct {
	tr Transport
	p  *Packet
}

// Run starts the instances and drives them until ctx is done, then shuts them down
// and closes the transports. It returns nil after a clean shutdown, or the first
// transport error that is not about a bad packet.
func (r *Runner) Run(ctx context.Context) error {
	r.rxq = make(chan received, 16)
	r.errc = make(chan error, 1)
	r.done = make(chan struct{})
	defer func() {
		close(r.done)
		for _, t := range r.transports {
			t.Close()
		}
		r.wg.Wait()
		close(r.stopped)
	}()
	for _, m := range r.members {
		r.watch(m.Transport)
	}
	for _, m := range r.members {
		r.start(m)
	}
	linkPoll := r.pollInterval()
	var nextPoll time.Time
	if linkPoll > 0 {
		nextPoll = r.clock.Now().Add(linkPoll)
	}

	var runErr error
	for {
		now := r.clock.Now()
		next := nextPoll
		for _, m := range r.members {
			if d := m.Instance.NextDeadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
				next = d
			}
		}
		var tc <-chan time.Time
		stop := func() bool { return false }
		if !next.IsZero() {
			tc, stop = r.clock.NewTimer(max(next.Sub(now), 0))
		}
		select {
		case <-ctx.Done():
			stop()
			r.shutdown()
			return runErr
		case err := <-r.errc:
			stop()
			runErr = err
			r.shutdown()
			return runErr
		case in := <-r.rxq:
			stop()
			r.dispatch(in)
		case u := <-r.updates:
			stop()
			u.done <- r.apply(u.Update)
			if linkPoll = r.pollInterval(); linkPoll > 0 && nextPoll.IsZero() {
				nextPoll = r.clock.Now().Add(linkPoll)
			} else if linkPoll == 0 {
				nextPoll = time.Time{}
			}
		case <-r.poke:
			stop()
			for _, m := range r.members {
				r.reassess(m)
			}
		case <-tc:
			now := r.clock.Now()
			if !nextPoll.IsZero() && !now.Before(nextPoll) {
				nextPoll = now.Add(linkPoll)
				for _, m := range r.members {
					r.reassess(m)
				}
			}
			for _, m := range r.members {
				if d := m.Instance.NextDeadline(); !d.IsZero() && !now.Before(d) {
					reason := "advert timer"
					if m.Instance.State() == StateBackup {
						reason = "master down timer expired (no advert for Master_Down_Interval)"
						if r.zero[m] {
							reason = "backup received priority 0 advertisement: took over after Skew_Time"
						}
					}
					r.step(m, Event{Kind: EventTimer}, reason)
					if held, ok := r.held[m]; ok {
						r.noteHold(m, held)
					}
				}
			}
		}
	}
}

// watch starts reading t unless it is read already.
func (r *Runner) watch(t Transport) {
	if slices.Contains(r.transports, t) {
		return
	}
	r.transports = append(r.transports, t)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.readLoop(t, r.rxq, r.errc, r.done)
	}()
}

// start assesses m's tracked objects and starts its instance.
func (r *Runner) start(m *Member) {
	if m.Instance.State() != StateInitialize {
		return
	}
	r.healthy[m] = true
	r.reassess(m)
	why := r.askHold(m)
	r.step(m, Event{Kind: EventStart}, "init")
	r.noteHold(m, why)
}

// askHold asks RunnerOptions.PreemptHold whether m's preemption is held and
// tells its instance; it returns the reason ("" when free).
func (r *Runner) askHold(m *Member) string {
	if r.opts.PreemptHold == nil {
		return ""
	}
	why := r.opts.PreemptHold()
	m.Instance.SetPreemptHold(why != "")
	return why
}

// holdCause is a hold's reason without its details in parentheses ("bulk sync in
// progress (1 of 2 peers done)" → "bulk sync in progress"): the log says a hold
// once per cause, not per count.
func holdCause(why string) string {
	if i := strings.Index(why, " ("); i >= 0 {
		return why[:i]
	}
	return why
}

// noteHold logs, once per hold and cause, that why kept m from preempting, and
// when that ends; Status.PreemptHeld follows it.
func (r *Runner) noteHold(m *Member, why string) {
	if !m.Instance.HoldingPreempt() {
		why = ""
	}
	prev, was := r.held[m]
	switch {
	case why != "" && (!was || holdCause(why) != holdCause(prev)):
		master, prio := m.Instance.Master()
		r.log.Info("VRRP preempt held: "+why, "instance", m.Name, "priority", m.Instance.Priority(), "master", master, "master_priority", prio)
	case why == "" && was:
		r.log.Info("VRRP preempt hold released", "instance", m.Name, "was", prev, "state", m.Instance.State().String())
	}
	if why == "" {
		delete(r.held, m)
	} else {
		r.held[m] = why
	}
	r.mu.Lock()
	if st := r.status[m.Instance]; st != nil {
		st.PreemptHeld = why
	}
	r.mu.Unlock()
}

// pollInterval is how often tracked objects are polled: the shortest advert
// interval of a polled member; 0 if none is.
func (r *Runner) pollInterval() time.Duration {
	var d time.Duration
	for _, m := range r.members {
		if m.polled() {
			if iv := m.Instance.cfg.Interval; d == 0 || iv < d {
				d = iv
			}
		}
	}
	return d
}

func (r *Runner) readLoop(t Transport, rx chan<- received, errc chan<- error, done <-chan struct{}) {
	for {
		p := new(Packet)
		err := t.Receive(p)
		if err != nil {
			var reason Reason
			switch {
			case errors.As(err, &reason):
				r.drops[reason].Add(1)
				if ok, n := r.dropLog.note(t, reason, netip.Addr{}, r.clock.Now()); ok {
					r.log.Warn("VRRP packet dropped: "+reason.String(), "reason", reason.String(), "suppressed", n)
				}
				continue
			case errors.Is(err, ErrClosed):
				return
			}
			select {
			case errc <- err:
			case <-done:
			}
			return
		}
		r.rx.Add(1)
		select {
		case rx <- received{t, p}:
		case <-done:
			return
		}
	}
}

// dispatch hands a packet to the members of its transport with its VRID.
func (r *Runner) dispatch(in received) {
	p := in.p
	matched := false
	for _, m := range r.members {
		if m.Transport != in.tr || m.Instance.cfg.VRID != p.Advert.VRID || m.Instance.cfg.Src.Is6() != p.Src.Is6() {
			continue
		}
		matched = true
		inst := m.Instance
		prevState, myPrio := inst.State(), inst.Priority()
		why := ""
		if prevState == StateBackup {
			why = r.askHold(m)
		}
		now := r.clock.Now()
		acts, err := inst.Receive(now, p)
		if err != nil {
			var reason Reason
			if errors.As(err, &reason) {
				r.drops[reason].Add(1)
				if ok, n := r.dropLog.note(m, reason, p.Src, now); ok {
					r.log.Warn(fmt.Sprintf("(%s) advert from %v dropped: %s", m.Name, p.Src, reason.String()), "instance", m.Name, "from", p.Src,
						"reason", reason.String(), "version", p.Advert.Version, "priority", p.Advert.Priority, "interval", p.Advert.Interval,
						"suppressed", n)
				}
			}
			continue
		}
		r.zero[m] = p.Advert.Priority == PriorityStop
		r.exec(m, acts, advertReason(prevState, myPrio, p))
		r.noteHold(m, why)
		r.mu.Lock()
		if st := r.status[m.Instance]; st != nil {
			st.Adverts++
		}
		r.mu.Unlock()
	}
	if !matched {
		r.drops[ErrVRID].Add(1)
	}
}

// advertReason says, the way keepalived logs it, why an advert changed the state.
func advertReason(state State, ours uint8, p *Packet) string {
	a := &p.Advert
	switch {
	case a.Priority == PriorityStop:
		return fmt.Sprintf("received priority 0 advert from %v", p.Src)
	case state == StateMaster && a.Priority > ours:
		return fmt.Sprintf("master received advert from %v with higher priority %d, ours %d", p.Src, a.Priority, ours)
	case state == StateMaster && a.Priority == ours:
		return fmt.Sprintf("master received advert from %v with same priority %d but higher IP address than ours", p.Src, ours)
	case state == StateMaster:
		return fmt.Sprintf("received advert from %v with lower priority %d, ours %d, forcing new election", p.Src, a.Priority, ours)
	}
	return fmt.Sprintf("advert from %v priority %d", p.Src, a.Priority)
}

func (r *Runner) step(m *Member, ev Event, reason string) {
	r.exec(m, m.Instance.Step(r.clock.Now(), ev), reason)
}

// exec carries out actions; reason explains any state change among them.
func (r *Runner) exec(m *Member, acts []Action, reason string) {
	for _, a := range acts {
		am := r.member(a.Instance)
		if am == nil {
			continue
		}
		switch a.Kind {
		case ActionSendAdvert:
			r.send(am, a.Priority)
		case ActionBecomeMaster:
			if r.opts.BecomeMaster != nil {
				r.opts.BecomeMaster(am)
			}
		case ActionLeaveMaster:
			if r.opts.LeaveMaster != nil {
				r.opts.LeaveMaster(am)
			}
		case ActionGratuitous:
			if r.opts.Gratuitous != nil {
				r.opts.Gratuitous(am)
			}
		case ActionStateChange:
			why := reason
			if am != m {
				why = fmt.Sprintf("sync group: %s %s", m.Name, reason)
			}
			tr := Transition{Name: am.Name, Instance: am.Instance, From: a.From, To: a.To, Reason: why}
			r.snapshot(am, &tr)
			r.log.Info("VRRP Entering "+a.To.String()+" STATE", "instance", am.Name, "from", a.From.String(), "reason", why,
				"priority", am.Instance.Priority())
			if r.opts.StateChange != nil {
				r.opts.StateChange(tr)
			}
		}
	}
	r.snapshot(m, nil)
	if g := m.Instance.group; g != nil {
		for _, o := range g.members {
			if om := r.member(o); om != nil && om != m {
				r.snapshot(om, nil)
			}
		}
	}
}

func (r *Runner) member(in *Instance) *Member {
	for _, m := range r.members {
		if m.Instance == in {
			return m
		}
	}
	return nil
}

// send sends one advert with prio to the multicast group or to every unicast peer.
func (r *Runner) send(m *Member, prio uint8) {
	cfg := &m.Instance.cfg
	p := Packet{Src: cfg.Src, HopLimit: HopLimit, TOS: TOSNetworkControl, Advert: cfg.Advert(prio)}
	dsts := cfg.Peers
	if len(dsts) == 0 {
		dsts = []netip.Addr{MulticastGroup(cfg.Src.Is6())}
	}
	for _, d := range dsts {
		p.Dst = d
		if err := m.Transport.Send(&p); err != nil {
			r.sendErr.Add(1)
			r.log.Warn("VRRP send failed", "instance", m.Name, "to", d, "err", err)
			continue
		}
		r.sent.Add(1)
		if prio == PriorityStop {
			r.log.Info("VRRP sent 0 priority", "instance", m.Name, "to", d)
		}
	}
}

// shutdown steps every started instance (once per group) through EventShutdown.
func (r *Runner) shutdown() {
	for _, m := range r.members {
		if m.Instance.State() != StateInitialize {
			r.step(m, Event{Kind: EventShutdown}, "shutdown")
		}
	}
}

// Update is a change of the Runner's members while it runs (a reload, docs/vrrp.md
// "Live reload"). Members neither removed nor reconfigured keep their state and
// timers: no flap.
type Update struct {
	// Prepare, if set, runs first on the Runner's goroutine, so that the caller
	// can change what the callbacks read without a lock.
	Prepare func()
	// Remove shuts these instances down (a master advertises priority 0 and
	// releases its VIPs, as keepalived does for an instance a reload removes) and
	// drops them; a sync group goes whole. A transport no member uses any more is
	// closed.
	Remove []*Instance
	// Reconfigure applies new settings to running instances in place.
	Reconfigure []Reconfig
	// Add starts new members (built as for NewRunner).
	Add []Member
}

// Reconfig is a running member's new configuration (Instance.Reconfigure) and
// tracked objects.
type Reconfig struct {
	Instance *Instance
	Config   Config
	LinkUp   func() bool
	Tracks   []Track
	// Applied, when set, is called on the Runner's goroutine once the instance
	// runs with Config, before any later transition of it: the caller follows a
	// change of virtual addresses there (a master adds and announces the new ones).
	Applied func()
}

type updateReq struct {
	Update
	done chan error
}

// ErrStopped is returned by Update once Run has returned.
var ErrStopped = errors.New("vrrp: runner stopped")

// Update applies u on the Runner's goroutine and waits for it. Removals come first,
// then reconfigurations, then additions. An error (an instance that cannot be
// reconfigured in place, an added instance already started) leaves the rest
// applied; the caller restarts the instance instead (remove and add).
func (r *Runner) Update(ctx context.Context, u Update) error {
	req := updateReq{Update: u, done: make(chan error, 1)}
	select {
	case r.updates <- req:
	case <-r.stopped:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-r.stopped:
		return ErrStopped
	}
}

// apply carries out an Update (Run's goroutine).
func (r *Runner) apply(u Update) error {
	if u.Prepare != nil {
		u.Prepare()
	}
	var errs []error
	gone := map[*Instance]bool{}
	for _, in := range u.Remove {
		gone[in] = true
		if g := in.group; g != nil {
			for _, o := range g.members {
				gone[o] = true
			}
		}
	}
	for _, m := range r.members {
		if gone[m.Instance] && m.Instance.State() != StateInitialize {
			r.step(m, Event{Kind: EventShutdown}, "removed by a reload")
		}
	}
	// Status reads the members under mu: a new slice, swapped in under it.
	kept := make([]*Member, 0, len(r.members)+len(u.Add))
	r.mu.Lock()
	for _, m := range r.members {
		if gone[m.Instance] {
			delete(r.healthy, m)
			delete(r.held, m)
			delete(r.zero, m)
			delete(r.status, m.Instance)
			continue
		}
		kept = append(kept, m)
	}
	r.members = kept
	r.mu.Unlock()
	for _, rc := range u.Reconfigure {
		m := r.member(rc.Instance)
		if m == nil {
			errs = append(errs, fmt.Errorf("vrrp: reconfigure: %w: instance is not a member", ErrInvalidConfig))
			continue
		}
		if err := rc.Instance.Reconfigure(rc.Config); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.Name, err))
			continue
		}
		m.LinkUp, m.Tracks = rc.LinkUp, rc.Tracks
		if rc.Applied != nil {
			rc.Applied()
		}
		r.mu.Lock()
		if st := r.status[m.Instance]; st != nil {
			st.Configured = rc.Config.Priority
		}
		r.mu.Unlock()
		r.log.Info("VRRP instance reconfigured", "instance", m.Name, "priority", rc.Config.Priority)
		r.reassess(m)
		r.snapshot(m, nil)
	}
	for i := range u.Add {
		m := u.Add[i]
		if m.Instance == nil || m.Transport == nil || m.Instance.State() != StateInitialize || r.member(m.Instance) != nil {
			errs = append(errs, fmt.Errorf("vrrp: add %q: %w: needs a new instance and a transport", m.Name, ErrInvalidConfig))
			continue
		}
		r.mu.Lock()
		r.members = append(r.members, &m)
		r.status[m.Instance] = &Status{Name: m.Name, State: StateInitialize, Priority: m.Instance.Priority(),
			BasePriority: m.Instance.BasePriority(), Configured: m.Instance.cfg.Priority}
		r.mu.Unlock()
		r.watch(m.Transport)
	}
	for _, m := range r.members {
		r.start(m)
	}
	// Close the transports no member uses any more; their read loops end.
	used := r.transports[:0]
	for _, t := range r.transports {
		if slices.ContainsFunc(r.members, func(m *Member) bool { return m.Transport == t }) {
			used = append(used, t)
		} else {
			t.Close()
		}
	}
	r.transports = used
	return errors.Join(errs...)
}
