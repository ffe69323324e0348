package vrrp

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// State is a virtual router's state: RFC 5798 §6.4's three plus keepalived's FAULT.
type State uint8

const (
	_ State = iota
	// StateInitialize is the state before Start and after Shutdown.
	StateInitialize
	// StateBackup watches the master and takes over when its down timer runs out.
	StateBackup
	// StateMaster owns the VIPs and advertises every Advertisement_Interval.
	StateMaster
	// StateFault is keepalived's state for a down interface (or failed tracked
	// object): no adverts are sent or processed until the link is back.
	StateFault
)

// String returns the state as keepalived logs it.
func (s State) String() string {
	switch s {
	case StateInitialize:
		return "INIT"
	case StateBackup:
		return "BACKUP"
	case StateMaster:
		return "MASTER"
	case StateFault:
		return "FAULT"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// validTransition is the transition table. Staying in a state is not a transition.
// Fault leads only to Backup (keepalived's try_up_instance: even an address owner
// comes back through Backup) or, on shutdown, to Initialize.
func validTransition(from, to State) bool {
	switch from {
	case StateInitialize:
		return to == StateBackup || to == StateMaster || to == StateFault
	case StateBackup:
		return to == StateMaster || to == StateFault || to == StateInitialize
	case StateMaster:
		return to == StateBackup || to == StateFault || to == StateInitialize
	case StateFault:
		return to == StateBackup || to == StateInitialize
	}
	return false
}

// EventKind says what happened.
type EventKind uint8

const (
	_ EventKind = iota
	// EventStart starts the instance (RFC 5798 §6.4.1 Startup).
	EventStart
	// EventShutdown stops it; a master first advertises priority 0.
	EventShutdown
	// EventAdvert is a received advert that passed decoding and Config.Check.
	EventAdvert
	// EventTimer fires whatever timer is due at now; early or spurious deliveries
	// are ignored.
	EventTimer
	// EventLinkDown: the interface (or an object tracked without weight) went down.
	EventLinkDown
	// EventLinkUp: it came back.
	EventLinkUp
	// EventPriority sets a new effective priority (base priority plus tracking
	// weights).
	EventPriority
)

// Event is one input to Instance.Step.
type Event struct {
	Kind EventKind
	// Src is the advert's IP source (EventAdvert).
	Src netip.Addr
	// Priority is the advert's priority (EventAdvert) or the new effective priority
	// (EventPriority, clamped to 1–254 and ignored for an address owner, as keepalived
	// does).
	Priority uint8
	// Interval is the advert's interval (EventAdvert); v3 backups adopt it.
	Interval time.Duration
}

// AdvertEvent returns the EventAdvert for a received packet.
func AdvertEvent(p *Packet) Event {
	return Event{Kind: EventAdvert, Src: p.Src, Priority: p.Advert.Priority, Interval: p.Advert.Interval}
}

// ActionKind says what the runner must do.
type ActionKind uint8

const (
	_ ActionKind = iota
	// ActionSendAdvert: send Instance.Config().Advert(Priority) to the multicast
	// group or to every unicast peer.
	ActionSendAdvert
	// ActionBecomeMaster: take the VIPs, start answering ARP/ND for them, then send
	// gratuitous ARP / unsolicited NA (keepalived: garp_master_repeat now and again
	// after garp_master_delay). It always follows the first advert, so that the old
	// master lets go first (docs/vrrp.md §1.9).
	ActionBecomeMaster
	// ActionLeaveMaster: release the VIPs and stop answering ARP/ND for them.
	ActionLeaveMaster
	// ActionGratuitous: a master heard a lower priority; repeat gratuitous ARP/NA
	// (keepalived's garp_lower_prio_repeat, 0 in strict mode).
	ActionGratuitous
	// ActionStateChange: From → To, for logs and notify scripts.
	ActionStateChange
)

// Action is one output of Instance.Step.
type Action struct {
	Kind ActionKind
	// Instance is the instance that acts; in a Group it may not be the one stepped.
	Instance *Instance
	// Priority is the priority to advertise (ActionSendAdvert).
	Priority uint8
	// From and To are the states of an ActionStateChange.
	From, To State
}

// Instance is one virtual router's state machine; the zero value is not usable. Create
// it with NewInstance, feed it with Step (or Receive), and deliver EventTimer when
// NextDeadline is reached. It never reads the clock and never blocks. It is not safe
// for concurrent use.
type Instance struct {
	cfg   Config
	state State
	// base is the configured priority, lowered to 254 when another owner shows up;
	// prio is the effective priority after tracking.
	base, prio uint8
	// masterAdverInt is RFC 5798's Master_Adver_Interval.
	masterAdverInt time.Duration
	// deadline is when the Adver_Timer (master) or Master_Down_Timer (backup) fires;
	// zero when no timer runs.
	deadline time.Time
	// preemptUntil is keepalived's preempt_time: zero, or until when a lower-priority
	// master is still accepted.
	preemptUntil time.Time
	// holdPreempt is an outside condition holding preemption (SetPreemptHold);
	// holding is set when it last kept this backup from preempting.
	holdPreempt, holding bool
	linkDown             bool
	// wantMaster is keepalived's wantstate == MASTER for a sync group member held in
	// Backup until the whole group can go.
	wantMaster bool
	master     netip.Addr
	masterPrio uint8
	group      *Group
	acts       []Action
}

// NewInstance returns an instance in StateInitialize with the link assumed up. It
// validates cfg (errors wrap ErrInvalidConfig) and keeps its own copy.
func NewInstance(cfg Config) (*Instance, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Addrs = slices.Clone(cfg.Addrs)
	cfg.Peers = slices.Clone(cfg.Peers)
	return &Instance{
		cfg:            cfg,
		state:          StateInitialize,
		base:           cfg.Priority,
		prio:           cfg.Priority,
		masterAdverInt: cfg.Interval,
	}, nil
}

// Config returns the instance's configuration. Its slices must not be modified.
func (in *Instance) Config() Config { return in.cfg }

// State returns the current state.
func (in *Instance) State() State { return in.state }

// Priority returns the effective priority, the one advertised.
func (in *Instance) Priority() uint8 { return in.prio }

// BasePriority returns the configured priority (254 for an owner that met another
// owner), to which tracking weights are added.
func (in *Instance) BasePriority() uint8 { return in.base }

// Master returns the source and priority of the last advert processed as a backup
// (zero before any).
func (in *Instance) Master() (netip.Addr, uint8) { return in.master, in.masterPrio }

// SetPreemptHold holds or releases preemption for a reason outside VRRP (a
// director whose connection sync has not caught up yet, docs/cluster.md §14):
// while held, a backup accepts a lower-priority master as preempt_delay makes it,
// and an address owner starts as a backup instead of taking over at once. A dead
// master is not waited for: with no advert the down timer still makes this router
// master. It takes effect at the next event.
func (in *Instance) SetPreemptHold(hold bool) {
	in.holdPreempt = hold
	if !hold {
		in.holding = false
	}
}

// HoldingPreempt reports whether the hold kept this router from preempting: it
// accepted the last advert, from a lower priority, only because of it (or, an
// owner, started as a backup because of it).
func (in *Instance) HoldingPreempt() bool { return in.holding }

// NextDeadline returns when the runner must deliver EventTimer, or the zero Time if no
// timer runs (Initialize, Fault).
func (in *Instance) NextDeadline() time.Time { return in.deadline }

// MasterAdverInterval returns Master_Adver_Interval: the configured interval, or in
// v3 the interval adopted from the current master's adverts.
func (in *Instance) MasterAdverInterval() time.Duration { return in.masterAdverInt }

// SkewTime returns Skew_Time for the effective priority. v2 (RFC 3768 §6.1):
// (256−Priority)/256 s whatever the interval. v3 (RFC 5798 §6.1):
// ((256−Priority)·Master_Adver_Interval)/256. keepalived computes it in microseconds
// (VRRP_TIMER_SKEW); this is exact to the nanosecond, which docs/vrrp.md §1.6 allows.
func (in *Instance) SkewTime() time.Duration {
	return skewTime(in.cfg.Version, in.prio, in.masterAdverInt)
}

// MasterDownInterval returns Master_Down_Interval: 3·Master_Adver_Interval + Skew_Time
// (in v2 Master_Adver_Interval is always the configured interval).
func (in *Instance) MasterDownInterval() time.Duration {
	return 3*in.masterAdverInt + in.SkewTime()
}

func skewTime(v Version, prio uint8, masterAdverInt time.Duration) time.Duration {
	if v == Version2 {
		return time.Duration(256-int(prio)) * time.Second / 256
	}
	return time.Duration(256-int(prio)) * masterAdverInt / 256
}

// Step applies ev at time now and returns what to do, in order. The slice is owned by
// the instance (by its Group, for a member) and valid until the next Step or Receive
// on it or on any member of its group. now must not go backwards between calls.
func (in *Instance) Step(now time.Time, ev Event) []Action {
	if in.group != nil {
		return in.group.step(now, in, ev)
	}
	in.acts = in.acts[:0]
	in.apply(now, ev, &in.acts)
	return in.acts
}

// Receive checks a decoded packet against the configuration and steps the instance
// with it. As keepalived, an instance in Initialize or Fault ignores adverts without
// checking them (nil, nil). Otherwise a packet that fails Config.Check returns its
// Reason and changes nothing.
func (in *Instance) Receive(now time.Time, p *Packet) ([]Action, error) {
	if in.state != StateBackup && in.state != StateMaster {
		return nil, nil
	}
	if err := in.cfg.Check(p); err != nil {
		return nil, err
	}
	return in.Step(now, AdvertEvent(p)), nil
}

// apply is one step: compute the next state, then enter it.
func (in *Instance) apply(now time.Time, ev Event, out *[]Action) {
	in.enter(now, in.step(now, ev, out), out)
}

// step handles ev in the current state, emits the actions that belong to the event
// itself, and returns the next state; enter does the rest.
func (in *Instance) step(now time.Time, ev Event, out *[]Action) State {
	switch ev.Kind {
	case EventStart:
		switch {
		case in.state != StateInitialize:
			return in.state
		case in.linkDown:
			return StateFault
		case in.prio == PriorityOwner && in.holdPreempt:
			// Held (SetPreemptHold): the owner waits as a backup; its down
			// timer (3 intervals and a skew of 1/256) still makes it master
			// when no one else is.
			in.holding = true
		case in.prio == PriorityOwner:
			// RFC 5798 §6.4.1: the owner advertises and takes over at once
			// (keepalived measured 21 ms, docs/vrrp.md §3.5).
			return StateMaster
		}
		return StateBackup
	case EventShutdown:
		// enter sends the priority-0 advert when leaving Master (RFC 5798 §6.4.3).
		return StateInitialize
	case EventLinkDown:
		in.linkDown = true
		if in.state == StateBackup || in.state == StateMaster {
			return StateFault
		}
		return in.state
	case EventLinkUp:
		in.linkDown = false
		if in.state == StateFault && (in.group == nil || in.group.allUp()) {
			return StateBackup
		}
		return in.state
	case EventPriority:
		in.setPriority(ev.Priority)
		return in.state
	case EventTimer:
		if in.deadline.IsZero() || now.Before(in.deadline) {
			return in.state
		}
		switch in.state {
		case StateMaster:
			in.send(out, in.prio)
			in.deadline = now.Add(in.cfg.Interval)
		case StateBackup:
			if in.group != nil && !in.group.canGotoMaster(in) {
				// keepalived vrrp_sync_can_goto_master: wait for the other members,
				// re-arming the down timer meanwhile.
				in.wantMaster = true
				in.deadline = now.Add(in.MasterDownInterval())
				return StateBackup
			}
			return StateMaster
		}
		return in.state
	case EventAdvert:
		switch in.state {
		case StateBackup:
			return in.backupRx(now, ev)
		case StateMaster:
			return in.masterRx(now, ev, out)
		}
		// keepalived ignores adverts in INIT and FAULT.
		return in.state
	}
	panic(fmt.Sprintf("vrrp: Step called with unknown event kind %d", ev.Kind))
}

// backupRx is RFC 5798 §6.4.2 "If an ADVERTISEMENT is received" in Backup, with
// keepalived's preempt_delay (vrrp_state_backup).
func (in *Instance) backupRx(now time.Time, ev Event) State {
	in.master, in.masterPrio = ev.Src, ev.Priority
	if ev.Priority == PriorityStop {
		// The master is leaving: take over after Skew_Time only.
		in.deadline = now.Add(in.SkewTime())
		return StateBackup
	}
	delaying := in.cfg.PreemptDelay > 0 && (in.preemptUntil.IsZero() || in.preemptUntil.After(now))
	lower := !in.cfg.NoPreempt && ev.Priority < in.prio
	in.holding = lower && !delaying && in.holdPreempt
	if lower && !delaying && !in.holdPreempt {
		// Lower priority and preemption on: discard, so that the down timer runs
		// out and this router takes over.
		return StateBackup
	}
	if in.cfg.Version == Version3 && ev.Interval > 0 {
		in.masterAdverInt = ev.Interval
	}
	in.deadline = now.Add(in.MasterDownInterval())
	if in.cfg.PreemptDelay > 0 {
		// keepalived starts the delay at the first lower-priority advert and
		// cancels it when a priority at least ours shows up.
		if ev.Priority >= in.prio {
			in.preemptUntil = time.Time{}
		} else if in.preemptUntil.IsZero() {
			in.preemptUntil = now.Add(in.cfg.PreemptDelay)
		}
	}
	in.wantMaster = false
	return StateBackup
}

// masterRx is RFC 5798 §6.4.3 "If an ADVERTISEMENT is received" in Master, as
// keepalived's vrrp_state_master_rx does it.
func (in *Instance) masterRx(now time.Time, ev Event, out *[]Action) State {
	if ev.Priority == PriorityStop {
		in.send(out, in.prio)
		in.deadline = now.Add(in.cfg.Interval)
		return StateMaster
	}
	cmp := ev.Src.WithZone("").Compare(in.cfg.Src.WithZone(""))
	if ev.Priority == in.prio && cmp != 0 && in.prio == PriorityOwner {
		// keepalived: "CONFIGURATION ERROR: local instance and a remote instance are
		// both configured as address owner ... reducing local priority". The RFC has
		// owners ignore adverts instead.
		in.base, in.prio = PriorityOwner-1, PriorityOwner-1
	}
	// Equal priorities: the higher primary address wins, compared as unsigned
	// big-endian numbers (RFC 5798 §6.4.3).
	if ev.Priority > in.prio || (ev.Priority == in.prio && cmp > 0) {
		if in.cfg.HigherPrioSendAdvert {
			in.send(out, in.prio)
		}
		in.master, in.masterPrio = ev.Src, ev.Priority
		if in.cfg.Version == Version3 && ev.Interval > 0 {
			in.masterAdverInt = ev.Interval
		}
		// No priority-0 advert: the new master is already there.
		return StateBackup
	}
	if ev.Priority == in.prio && cmp == 0 {
		// keepalived: "WARNING - equal priority advert received from remote host
		// with our IP address." Nothing else.
		return StateMaster
	}
	// Lower priority. The RFC discards it; keepalived re-advertises at once ("forcing
	// new election") unless lower_prio_no_advert, and repeats its GARPs, also for the
	// other masters of its sync group.
	if !in.cfg.LowerPrioNoAdvert {
		in.send(out, in.prio)
		in.deadline = now.Add(in.cfg.Interval)
	}
	in.emit(out, Action{Kind: ActionGratuitous})
	if in.group != nil {
		for _, m := range in.group.members {
			if m != in && m.state == StateMaster {
				m.emit(out, Action{Kind: ActionGratuitous})
			}
		}
	}
	return StateMaster
}

// setPriority is keepalived's vrrp_set_effective_priority.
func (in *Instance) setPriority(p uint8) {
	if in.base == PriorityOwner {
		return
	}
	p = min(max(p, 1), PriorityOwner-1)
	if p == in.prio {
		return
	}
	oldDown := in.MasterDownInterval()
	raising := p > in.prio
	in.prio = p
	// A backup whose priority rises has a shorter skew: keepalived moves the running
	// down timer earlier by the difference.
	if in.state == StateBackup && raising && !in.deadline.IsZero() {
		in.deadline = in.deadline.Add(in.MasterDownInterval() - oldDown)
	}
}

// enter moves to state to, with the exit and entry actions of RFC 5798 §6.4.
func (in *Instance) enter(now time.Time, to State, out *[]Action) {
	from := in.state
	if from == to {
		return
	}
	if !validTransition(from, to) {
		panic(fmt.Sprintf("vrrp: impossible transition %v -> %v", from, to))
	}
	if from == StateMaster {
		if to != StateBackup {
			// Shutdown (RFC 5798 §6.4.3) and, in keepalived, FAULT too: advertise
			// priority 0 so that a backup takes over after Skew_Time.
			in.send(out, PriorityStop)
		}
		in.emit(out, Action{Kind: ActionLeaveMaster})
	}
	in.state = to
	in.wantMaster = false
	if to != StateBackup {
		in.holding = false
	}
	switch to {
	case StateMaster:
		// A v3 master advertises its own interval again (keepalived: "changing
		// advert interval ... to locally configured").
		in.masterAdverInt = in.cfg.Interval
		in.send(out, in.prio)
		in.emit(out, Action{Kind: ActionBecomeMaster})
		in.deadline = now.Add(in.cfg.Interval)
	case StateBackup:
		if from != StateMaster {
			in.masterAdverInt = in.cfg.Interval
		}
		in.deadline = now.Add(in.MasterDownInterval())
		in.preemptUntil = time.Time{}
	case StateInitialize, StateFault:
		in.masterAdverInt = in.cfg.Interval
		in.deadline = time.Time{}
		in.preemptUntil = time.Time{}
	}
	in.emit(out, Action{Kind: ActionStateChange, From: from, To: to})
}

func (in *Instance) send(out *[]Action, prio uint8) {
	in.emit(out, Action{Kind: ActionSendAdvert, Priority: prio})
}

func (in *Instance) emit(out *[]Action, a Action) {
	a.Instance = in
	*out = append(*out, a)
}

// String returns the event kind's name.
func (k EventKind) String() string {
	switch k {
	case EventStart:
		return "start"
	case EventShutdown:
		return "shutdown"
	case EventAdvert:
		return "advert"
	case EventTimer:
		return "timer"
	case EventLinkDown:
		return "link-down"
	case EventLinkUp:
		return "link-up"
	case EventPriority:
		return "priority"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// String returns the action kind's name.
func (k ActionKind) String() string {
	switch k {
	case ActionSendAdvert:
		return "send-advert"
	case ActionBecomeMaster:
		return "become-master"
	case ActionLeaveMaster:
		return "leave-master"
	case ActionGratuitous:
		return "gratuitous"
	case ActionStateChange:
		return "state-change"
	}
	return fmt.Sprintf("ActionKind(%d)", uint8(k))
}

// String formats the action for logs: "send-advert 100", "BACKUP->MASTER".
func (a Action) String() string {
	switch a.Kind {
	case ActionSendAdvert:
		return fmt.Sprintf("send-advert %d", a.Priority)
	case ActionStateChange:
		return a.From.String() + "->" + a.To.String()
	}
	return a.Kind.String()
}

// Reconfigure applies a changed configuration to a running instance without a
// state change (a reload, docs/vrrp.md "Live reload"): priority, nopreempt,
// preempt_delay, lower_prio_no_advert, higher_prio_send_advert and the virtual
// addresses, as keepalived keeps the state of an instance whose addresses changed.
// What identifies the virtual router (VRID, version, source, interval,
// authentication, unicast peers) cannot change in place, nor can the priority
// become or stop being 255 (the owner's rules differ): the error says so and
// nothing changes. The new priority and addresses are advertised with the next
// advert; the Runner then adds its tracking deltas (Runner.Update).
func (in *Instance) Reconfigure(c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	old := in.cfg
	same := c.VRID == old.VRID && c.Version == old.Version && c.Src == old.Src && c.Interval == old.Interval &&
		c.AuthType == old.AuthType && c.AuthData == old.AuthData &&
		slices.Equal(c.Peers, old.Peers) && c.CheckUnicastSrc == old.CheckUnicastSrc
	if !same {
		return fmt.Errorf("vrrp: reconfigure VRID %d: %w: only the priority, preemption settings and virtual addresses change in place", old.VRID, ErrInvalidConfig)
	}
	if (c.Priority == PriorityOwner) != (old.Priority == PriorityOwner) {
		return fmt.Errorf("vrrp: reconfigure VRID %d: %w: priority 255 (address owner) cannot be set or left in place", old.VRID, ErrInvalidConfig)
	}
	if !slices.Equal(c.Addrs, old.Addrs) {
		c.Addrs = slices.Clone(c.Addrs) // the caller's slice is not the advert's
	} else {
		c.Addrs = old.Addrs
	}
	c.Peers = old.Peers
	in.cfg = c
	if in.base == PriorityOwner {
		return nil
	}
	in.base = c.Priority
	in.setPriority(c.Priority)
	return nil
}
