package vrrp

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// groupSim steps a sync group of two instances, A (priority 150, VRID 51) and B
// (priority 100, VRID 52), with a fake clock.
type groupSim struct {
	t     *testing.T
	g     *Group
	a, b  *Instance
	names map[*Instance]string
	now   time.Time
}

func newGroupSim(t *testing.T, modA, modB func(*Config)) *groupSim {
	t.Helper()
	mk := func(vrid, p uint8, vip string, mod func(*Config)) *Instance {
		c := Config{VRID: vrid, Version: Version3, Priority: p, Interval: time.Second, Src: mustAddr(ka2),
			Addrs: []netip.Addr{mustAddr(vip)}}
		if mod != nil {
			mod(&c)
		}
		in, err := NewInstance(c)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	a, b := mk(51, 150, vip4, modA), mk(52, 100, "198.18.1.100", modB)
	g, err := NewGroup(a, b)
	if err != nil {
		t.Fatal(err)
	}
	return &groupSim{t: t, g: g, a: a, b: b, names: map[*Instance]string{a: "A", b: "B"}, now: t0}
}

func (s *groupSim) fmt(acts []Action) string {
	var parts []string
	for _, a := range acts {
		parts = append(parts, s.names[a.Instance]+" "+a.String())
	}
	return strings.Join(parts, ", ")
}

func (s *groupSim) do(in *Instance, d time.Duration, ev Event, want string) {
	s.t.Helper()
	s.now = t0.Add(d)
	if got := s.fmt(in.Step(s.now, ev)); got != want {
		s.t.Errorf("%s %v at %v:\n got %q\nwant %q", s.names[in], ev.Kind, d, got, want)
	}
}

func (s *groupSim) states(a, b, g State) {
	s.t.Helper()
	if s.a.State() != a || s.b.State() != b || s.g.State() != g {
		s.t.Errorf("states A %v, B %v, group %v; want %v, %v, %v", s.a.State(), s.b.State(), s.g.State(), a, b, g)
	}
}

func TestNewGroupErrors(t *testing.T) {
	mk := func() *Instance {
		in, err := NewInstance(v2Config())
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	a, b := mk(), mk()
	if _, err := NewGroup(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("empty group: %v", err)
	}
	if _, err := NewGroup(a, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("nil member: %v", err)
	}
	if _, err := NewGroup(a, a); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("duplicate member: %v", err)
	}
	started := mk()
	started.Step(t0, start)
	if _, err := NewGroup(a, started); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("started member: %v", err)
	}
	if _, err := NewGroup(a, b); err != nil {
		t.Fatal(err)
	}
	if _, err := NewGroup(mk(), b); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("member of two groups: %v", err)
	}
}

// Members whose timers expire go to Master only together (vrrp_sync_can_goto_master).
func TestGroupGoesMasterTogether(t *testing.T) {
	s := newGroupSim(t, nil, nil)
	s.do(s.a, 0, start, "A INIT->BACKUP, B INIT->BACKUP")
	s.states(StateBackup, StateBackup, StateBackup)
	if got := s.g.NextDeadline(); !got.Equal(t0.Add(down150)) {
		t.Errorf("group deadline %v, want A's %v", got.Sub(t0), down150)
	}
	// A times out first but B does not want Master yet: A waits, timer re-armed.
	s.do(s.a, down150, timer, "")
	s.states(StateBackup, StateBackup, StateBackup)
	if got := s.a.NextDeadline(); !got.Equal(t0.Add(2 * down150)) {
		t.Errorf("A re-armed to %v, want %v", got.Sub(t0), 2*down150)
	}
	// B times out: now everyone wants Master.
	s.do(s.b, down100, timer,
		"B send-advert 100, B become-master, B BACKUP->MASTER, A send-advert 150, A become-master, A BACKUP->MASTER")
	s.states(StateMaster, StateMaster, StateMaster)

	// A master of the group hearing a lower priority: GARPs for every master member.
	s.do(s.a, 4*time.Second, adv(ka1, 50), "A send-advert 150, A gratuitous, B gratuitous")

	// One member yields to a higher priority: the group follows, without priority-0
	// adverts.
	s.do(s.a, 5*time.Second, adv(ka1, 200),
		"A leave-master, A MASTER->BACKUP, B leave-master, B MASTER->BACKUP")
	s.states(StateBackup, StateBackup, StateBackup)
	if got := s.b.NextDeadline(); !got.Equal(t0.Add(5*time.Second + down100)) {
		t.Errorf("B's down timer %v, want %v", got.Sub(t0), 5*time.Second+down100)
	}
}

// An accepted advert withdraws a member's wish to be master.
func TestGroupAdvertCancelsWish(t *testing.T) {
	s := newGroupSim(t, nil, nil)
	s.do(s.a, 0, start, "A INIT->BACKUP, B INIT->BACKUP")
	s.do(s.a, down150, timer, "") // A wants Master
	s.do(s.a, 3500*time.Millisecond, adv(ka1, 200), "")
	s.do(s.b, down100, timer, "") // A no longer wants it: B waits
	s.states(StateBackup, StateBackup, StateBackup)
}

// One member's link down faults the group; it comes back only when every member's
// link is up.
func TestGroupFault(t *testing.T) {
	s := newGroupSim(t, func(c *Config) { c.Priority = PriorityOwner }, nil)
	// The owner takes the group to Master at start.
	s.do(s.a, 0, start,
		"A send-advert 255, A become-master, A INIT->MASTER, B INIT->BACKUP, B send-advert 100, B become-master, B BACKUP->MASTER")
	s.states(StateMaster, StateMaster, StateMaster)

	s.do(s.b, time.Second, linkDown,
		"B send-advert 0, B leave-master, B MASTER->FAULT, A send-advert 0, A leave-master, A MASTER->FAULT")
	s.states(StateFault, StateFault, StateFault)
	if !s.g.NextDeadline().IsZero() {
		t.Errorf("timers run in FAULT")
	}
	s.do(s.a, 2*time.Second, adv(ka1, 100), "") // ignored in FAULT
	s.do(s.a, 2*time.Second, linkUp, "")        // A was not down itself; B still is
	s.do(s.a, 3*time.Second, linkDown, "")      // now A is down too
	s.do(s.b, 4*time.Second, linkUp, "")        // B up, A still down
	s.states(StateFault, StateFault, StateFault)
	s.do(s.a, 5*time.Second, linkUp, "A FAULT->BACKUP, B FAULT->BACKUP")
	s.states(StateBackup, StateBackup, StateBackup)
}

func TestGroupStartFaultAndShutdown(t *testing.T) {
	s := newGroupSim(t, nil, nil)
	s.do(s.b, 0, linkDown, "")
	s.do(s.a, 0, start, "A INIT->BACKUP, B INIT->FAULT, A BACKUP->FAULT")
	s.states(StateFault, StateFault, StateFault)
	s.do(s.b, time.Second, linkUp, "B FAULT->BACKUP, A FAULT->BACKUP")
	s.do(s.b, 2*time.Second, shutdown, "A BACKUP->INIT, B BACKUP->INIT")
	s.states(StateInitialize, StateInitialize, StateInitialize)

	s = newGroupSim(t, func(c *Config) { c.Priority = PriorityOwner }, nil)
	s.do(s.a, 0, start,
		"A send-advert 255, A become-master, A INIT->MASTER, B INIT->BACKUP, B send-advert 100, B become-master, B BACKUP->MASTER")
	s.do(s.b, time.Second, shutdown,
		"A send-advert 0, A leave-master, A MASTER->INIT, B send-advert 0, B leave-master, B MASTER->INIT")
	if len(s.g.Members()) != 2 {
		t.Errorf("Members() = %v", s.g.Members())
	}
}
