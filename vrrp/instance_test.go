package vrrp

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// t0 is the fake clock's origin; every time in these tests is an offset from it.
var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// sim steps one Instance with a fake clock.
type sim struct {
	t   *testing.T
	in  *Instance
	now time.Time
}

// newSim builds an instance from the v2 lab configuration of ka2 (priority 100,
// 198.18.0.2, 1 s) changed by mod.
func newSim(t *testing.T, mod func(*Config)) *sim {
	t.Helper()
	c := Config{VRID: labVRID, Version: Version2, Priority: 100, Interval: time.Second,
		Src: mustAddr(ka2), Addrs: []netip.Addr{mustAddr(vip4)}}
	if mod != nil {
		mod(&c)
	}
	in, err := NewInstance(c)
	if err != nil {
		t.Fatal(err)
	}
	return &sim{t: t, in: in, now: t0}
}

func v3(c *Config) { c.Version = Version3 }

// at moves the clock to t0+d without firing timers.
func (s *sim) at(d time.Duration) *sim {
	s.t.Helper()
	if next := t0.Add(d); next.Before(s.now) {
		s.t.Fatalf("clock going back from %v to %v", s.now.Sub(t0), d)
	} else {
		s.now = next
	}
	return s
}

// do steps ev at the current time and checks the actions.
func (s *sim) do(ev Event, want string) {
	s.t.Helper()
	if got := fmtActions(s.in.Step(s.now, ev)); got != want {
		s.t.Errorf("%v at %v: actions %q, want %q", ev.Kind, s.now.Sub(t0), got, want)
	}
}

// advance fires every timer due up to t0+d, then sets the clock to t0+d, and checks
// what happened: "3.609375s: send-advert 100, become-master, BACKUP->MASTER | ...".
func (s *sim) advance(d time.Duration, want string) {
	s.t.Helper()
	end := t0.Add(d)
	var log []string
	for dl := s.in.NextDeadline(); !dl.IsZero() && !dl.After(end); dl = s.in.NextDeadline() {
		if dl.Before(s.now) {
			s.t.Fatalf("deadline %v is in the past (now %v)", dl.Sub(t0), s.now.Sub(t0))
		}
		s.now = dl
		if acts := s.in.Step(dl, Event{Kind: EventTimer}); len(acts) > 0 {
			log = append(log, fmt.Sprintf("%v: %s", dl.Sub(t0), fmtActions(acts)))
		}
	}
	s.now = end
	if got := strings.Join(log, " | "); got != want {
		s.t.Errorf("advancing to %v:\n got %q\nwant %q", d, got, want)
	}
}

// expect checks the state and the deadline (an offset from t0, or -1 for none).
func (s *sim) expect(state State, deadline time.Duration) {
	s.t.Helper()
	if got := s.in.State(); got != state {
		s.t.Errorf("at %v: state %v, want %v", s.now.Sub(t0), got, state)
	}
	got := s.in.NextDeadline()
	switch {
	case deadline < 0 && !got.IsZero():
		s.t.Errorf("at %v: deadline %v, want none", s.now.Sub(t0), got.Sub(t0))
	case deadline >= 0 && !got.Equal(t0.Add(deadline)):
		s.t.Errorf("at %v: deadline %v, want %v", s.now.Sub(t0), got.Sub(t0), deadline)
	}
}

func fmtActions(acts []Action) string {
	var parts []string
	for _, a := range acts {
		parts = append(parts, a.String())
	}
	return strings.Join(parts, ", ")
}

func adv(src string, prio uint8) Event {
	return Event{Kind: EventAdvert, Src: mustAddr(src), Priority: prio, Interval: time.Second}
}

func advInt(src string, prio uint8, interval time.Duration) Event {
	return Event{Kind: EventAdvert, Src: mustAddr(src), Priority: prio, Interval: interval}
}

var (
	start    = Event{Kind: EventStart}
	shutdown = Event{Kind: EventShutdown}
	timer    = Event{Kind: EventTimer}
	linkDown = Event{Kind: EventLinkDown}
	linkUp   = Event{Kind: EventLinkUp}
)

func prio(p uint8) Event { return Event{Kind: EventPriority, Priority: p} }

const (
	// Lab priorities' timers with a 1 s interval (docs/vrrp.md §1.6, §3.5).
	down100 = 3609375 * time.Microsecond // 3 s + 156/256 s
	skew100 = 609375 * time.Microsecond
	down150 = 3414062500 * time.Nanosecond // 3 s + 106/256 s
	ka3     = "198.18.0.3"                 // higher than ka2, for tie-breaks
)

func TestTimers(t *testing.T) {
	tests := []struct {
		name     string
		version  Version
		prio     uint8
		interval time.Duration
		skew     time.Duration
		down     time.Duration
	}{
		// v2: (256−p)/256 s whatever the interval.
		{"v2 100", Version2, 100, time.Second, skew100, down100},
		{"v2 150", Version2, 150, time.Second, 414062500 * time.Nanosecond, down150},
		{"v2 254", Version2, 254, time.Second, 7812500 * time.Nanosecond, 3*time.Second + 7812500*time.Nanosecond},
		{"v2 1 at 3s", Version2, 1, 3 * time.Second, 996093750 * time.Nanosecond, 9*time.Second + 996093750*time.Nanosecond},
		// v3: (256−p)·Master_Adver_Interval/256.
		{"v3 100 1s", Version3, 100, time.Second, skew100, down100},
		{"v3 150 100ms", Version3, 150, 100 * time.Millisecond, 41406250 * time.Nanosecond, 341406250 * time.Nanosecond},
		{"v3 100 3s", Version3, 100, 3 * time.Second, 1828125 * time.Microsecond, 10828125 * time.Microsecond},
		{"v3 255 1s", Version3, 255, time.Second, 3906250 * time.Nanosecond, 3003906250 * time.Nanosecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSim(t, func(c *Config) { c.Version, c.Priority, c.Interval = tt.version, tt.prio, tt.interval })
			if got := s.in.SkewTime(); got != tt.skew {
				t.Errorf("SkewTime = %v, want %v", got, tt.skew)
			}
			if got := s.in.MasterDownInterval(); got != tt.down {
				t.Errorf("MasterDownInterval = %v, want %v", got, tt.down)
			}
		})
	}
}

// RFC 5798 §6.4.1–2: a backup that hears nothing takes over after
// Master_Down_Interval and then advertises every Advertisement_Interval.
func TestMasterDownTimerExpiry(t *testing.T) {
	s := newSim(t, nil)
	s.do(start, "INIT->BACKUP")
	s.expect(StateBackup, down100)
	s.do(timer, "") // early: ignored
	s.advance(3600*time.Millisecond, "")
	s.advance(5700*time.Millisecond,
		"3.609375s: send-advert 100, become-master, BACKUP->MASTER | 4.609375s: send-advert 100 | 5.609375s: send-advert 100")
	s.expect(StateMaster, 6609375*time.Microsecond)

	// v3 with advert_int 0.1 at priority 150: docs/vrrp.md §3.5 measured 0.3611 s.
	s = newSim(t, func(c *Config) { v3(c); c.Priority = 150; c.Interval = 100 * time.Millisecond })
	s.do(start, "INIT->BACKUP")
	s.advance(400*time.Millisecond, "341.40625ms: send-advert 150, become-master, BACKUP->MASTER")
	s.expect(StateMaster, 441406250*time.Nanosecond)
}

// RFC 5798 §6.4.1: the address owner advertises and takes over at once.
func TestOwnerStartsAsMaster(t *testing.T) {
	s := newSim(t, func(c *Config) { c.Priority = PriorityOwner })
	s.do(start, "send-advert 255, become-master, INIT->MASTER")
	s.expect(StateMaster, time.Second)
	s.do(start, "") // already started
}

// RFC 5798 §6.4.2: higher or equal priority restarts the down timer; lower priority
// with preemption is discarded so the timer runs out.
func TestBackupReceives(t *testing.T) {
	s := newSim(t, nil)
	s.do(start, "INIT->BACKUP")
	for i := 1; i <= 3; i++ {
		s.at(time.Duration(i)*time.Second).do(adv(ka1, 150), "")
		s.expect(StateBackup, time.Duration(i)*time.Second+down100)
	}
	if src, p := s.in.Master(); src != mustAddr(ka1) || p != 150 {
		t.Errorf("Master() = %v, %d", src, p)
	}
	// Equal priority from a lower address is still a master to follow in Backup: the
	// address tie-break is for masters.
	s.at(4*time.Second).do(adv(ka1, 100), "")
	s.expect(StateBackup, 4*time.Second+down100)
	// Lower priority: discarded, the timer keeps running.
	s.at(5*time.Second).do(adv(ka1, 50), "")
	s.at(6*time.Second).do(adv(ka1, 50), "")
	s.expect(StateBackup, 4*time.Second+down100)
	s.advance(8*time.Second, "7.609375s: send-advert 100, become-master, BACKUP->MASTER")
}

// RFC 5798 §6.4.2: priority 0 sets the down timer to Skew_Time.
func TestBackupReceivesPriorityZero(t *testing.T) {
	s := newSim(t, nil)
	s.do(start, "INIT->BACKUP")
	s.at(time.Second).do(adv(ka1, 150), "")
	s.at(2*time.Second).do(adv(ka1, 0), "")
	s.expect(StateBackup, 2*time.Second+skew100)
	s.advance(3*time.Second, "2.609375s: send-advert 100, become-master, BACKUP->MASTER")

	// v3: the skew uses the master's interval. docs/vrrp.md §2.7 measured the takeover
	// 0.2073 s after a priority-0 advert from a 0.5 s master, local priority 150:
	// 106·0.5/256 s.
	s = newSim(t, func(c *Config) { v3(c); c.Priority = 150 })
	s.do(start, "INIT->BACKUP")
	s.at(time.Second).do(advInt(ka1, 200, 500*time.Millisecond), "")
	s.at(1500*time.Millisecond).do(advInt(ka1, 0, 500*time.Millisecond), "")
	s.expect(StateBackup, 1500*time.Millisecond+207031250*time.Nanosecond)
}

// RFC 5798 §6.4.3: a master yields to a higher priority at once, without a
// priority-0 advert, and starts the down timer.
func TestMasterReceivesHigher(t *testing.T) {
	s := newSim(t, nil)
	s.do(start, "INIT->BACKUP")
	s.advance(4*time.Second, "3.609375s: send-advert 100, become-master, BACKUP->MASTER")
	s.do(adv(ka1, 150), "leave-master, MASTER->BACKUP")
	s.expect(StateBackup, 4*time.Second+down100)

	// higher_prio_send_advert advertises once before yielding.
	s = newSim(t, func(c *Config) { c.Priority = PriorityOwner - 1; c.HigherPrioSendAdvert = true })
	s.do(start, "INIT->BACKUP")
	s.advance(4*time.Second, "3.0078125s: send-advert 254, become-master, BACKUP->MASTER")
	s.do(adv(ka1, 255), "send-advert 254, leave-master, MASTER->BACKUP")
}

// keepalived's tie-break: on equal priority the higher primary address wins; a
// master that wins re-advertises (not lower_prio_no_advert).
func TestMasterTieBreak(t *testing.T) {
	master := func(t *testing.T, mod func(*Config)) *sim {
		s := newSim(t, mod)
		s.do(start, "INIT->BACKUP")
		s.advance(4*time.Second, "3.609375s: send-advert 100, become-master, BACKUP->MASTER")
		return s
	}
	s := master(t, nil)
	s.do(adv(ka3, 100), "leave-master, MASTER->BACKUP") // 198.18.0.3 > 198.18.0.2
	s = master(t, nil)
	s.do(adv(ka1, 100), "send-advert 100, gratuitous") // 198.18.0.1 < 198.18.0.2
	s.expect(StateMaster, 5*time.Second)
	s = master(t, nil)
	s.do(adv(ka2, 100), "") // our own address: keepalived logs a warning and does nothing
	s.expect(StateMaster, 4609375*time.Microsecond)

	// IPv6 link-local sources compare as 128-bit numbers; zones do not matter.
	six := func(c *Config) {
		v3(c)
		c.Src = mustAddr("fe80::20%eth0")
		c.Addrs = []netip.Addr{mustAddr(vip6)}
	}
	s = master(t, six)
	s.do(adv("fe80::1:0", 100), "leave-master, MASTER->BACKUP")
	s = master(t, six)
	s.do(adv("fe80::1f", 100), "send-advert 100, gratuitous")
	s = master(t, six)
	s.do(adv("fe80::20", 100), "")
}

// A master hearing a lower priority: keepalived re-advertises at once and repeats its
// GARPs; lower_prio_no_advert keeps the RFC's silence (GARPs still go out).
func TestMasterReceivesLower(t *testing.T) {
	s := newSim(t, func(c *Config) { c.Priority = PriorityOwner })
	s.do(start, "send-advert 255, become-master, INIT->MASTER")
	s.at(500*time.Millisecond).do(adv(ka1, 50), "send-advert 255, gratuitous")
	s.expect(StateMaster, 1500*time.Millisecond)

	s = newSim(t, func(c *Config) { c.Priority = PriorityOwner; c.LowerPrioNoAdvert = true })
	s.do(start, "send-advert 255, become-master, INIT->MASTER")
	s.at(500*time.Millisecond).do(adv(ka1, 50), "gratuitous")
	s.expect(StateMaster, time.Second)
}

// RFC 5798 §6.4.3: a master hearing priority 0 advertises at once and restarts its
// timer.
func TestMasterReceivesPriorityZero(t *testing.T) {
	s := newSim(t, func(c *Config) { c.Priority = PriorityOwner })
	s.do(start, "send-advert 255, become-master, INIT->MASTER")
	s.at(300*time.Millisecond).do(adv(ka1, 0), "send-advert 255")
	s.expect(StateMaster, 1300*time.Millisecond)
}

// Two address owners: keepalived lowers its own priority to 254 and yields.
func TestOwnerConflict(t *testing.T) {
	for _, src := range []string{ka1, ka3} {
		s := newSim(t, func(c *Config) { c.Priority = PriorityOwner })
		s.do(start, "send-advert 255, become-master, INIT->MASTER")
		s.at(500*time.Millisecond).do(adv(src, 255), "leave-master, MASTER->BACKUP")
		if p := s.in.Priority(); p != 254 {
			t.Errorf("%s: priority %d after the conflict, want 254", src, p)
		}
	}
}

// nopreempt: a higher-priority backup never takes over from a live master.
func TestNoPreempt(t *testing.T) {
	for _, noPreempt := range []bool{false, true} {
		s := newSim(t, func(c *Config) { c.Priority = 150; c.NoPreempt = noPreempt })
		s.do(start, "INIT->BACKUP")
		var log []string
		for i := 1; i <= 20; i++ {
			at := t0.Add(time.Duration(i) * time.Second)
			for dl := s.in.NextDeadline(); !dl.After(at); dl = s.in.NextDeadline() {
				log = append(log, fmtActions(s.in.Step(dl, timer)))
			}
			s.in.Step(at, adv(ka1, 100))
		}
		if noPreempt {
			if s.in.State() != StateBackup || len(log) != 0 {
				t.Errorf("nopreempt: state %v after %v", s.in.State(), log)
			}
		} else if s.in.State() != StateMaster || len(log) == 0 || log[0] != "send-advert 150, become-master, BACKUP->MASTER" {
			t.Errorf("preempt: state %v after %v", s.in.State(), log)
		}
	}
}

// preempt_delay: the first lower-priority advert starts the delay; lower adverts are
// accepted until it ends, then discarded, and the down timer runs out.
func TestPreemptDelay(t *testing.T) {
	s := newSim(t, func(c *Config) { c.Priority = 150; c.PreemptDelay = 10 * time.Second })
	s.do(start, "INIT->BACKUP")
	for i := 1; i <= 13; i++ {
		s.advance(time.Duration(i)*time.Second, "")
		s.do(adv(ka1, 100), "")
	}
	// Adverts at 1 s … 10 s were accepted (the delay ends at 11 s); the down timer
	// from the one at 10 s fires at 10 s + 3.4140625 s.
	s.expect(StateBackup, 10*time.Second+down150)
	s.advance(14*time.Second, "13.4140625s: send-advert 150, become-master, BACKUP->MASTER")

	// A higher priority stops the delay; the next lower advert starts it again.
	s = newSim(t, func(c *Config) { c.Priority = 150; c.PreemptDelay = 10 * time.Second })
	s.do(start, "INIT->BACKUP")
	for i := 1; i <= 18; i++ {
		p := uint8(100)
		if i == 5 {
			p = 200
		}
		s.advance(time.Duration(i)*time.Second, "")
		s.do(adv(ka1, p), "")
	}
	// Delay restarted at 6 s, ends at 16 s: the last accepted advert is at 15 s.
	s.expect(StateBackup, 15*time.Second+down150)
	s.advance(19*time.Second, "18.4140625s: send-advert 150, become-master, BACKUP->MASTER")
}

// RFC 5798 §6.4.3: shutdown of a master advertises priority 0; of a backup, nothing.
func TestShutdown(t *testing.T) {
	s := newSim(t, func(c *Config) { c.Priority = PriorityOwner })
	s.do(start, "send-advert 255, become-master, INIT->MASTER")
	s.at(time.Second).do(shutdown, "send-advert 0, leave-master, MASTER->INIT")
	s.expect(StateInitialize, -1)
	s.do(shutdown, "")
	s.do(adv(ka1, 100), "") // ignored in INIT
	s.at(2*time.Second).do(start, "send-advert 255, become-master, INIT->MASTER")

	s = newSim(t, nil)
	s.do(start, "INIT->BACKUP")
	s.at(time.Second).do(shutdown, "BACKUP->INIT")
	s.expect(StateInitialize, -1)
	s.advance(10*time.Second, "")
}

// RFC 5798 §6.4.2–3: a v3 backup adopts the master's interval; as master it
// advertises its own again. v2 never adopts.
func TestIntervalAdoption(t *testing.T) {
	s := newSim(t, v3)
	s.do(start, "INIT->BACKUP")
	s.at(time.Second).do(advInt(ka1, 200, 500*time.Millisecond), "")
	if got := s.in.MasterAdverInterval(); got != 500*time.Millisecond {
		t.Errorf("MasterAdverInterval = %v, want 500ms", got)
	}
	// 3·0.5 s + 156·0.5/256 s
	s.expect(StateBackup, time.Second+1804687500*time.Nanosecond)
	s.advance(4*time.Second, "2.8046875s: send-advert 100, become-master, BACKUP->MASTER | 3.8046875s: send-advert 100")
	if got := s.in.MasterAdverInterval(); got != time.Second {
		t.Errorf("master's MasterAdverInterval = %v, want its own 1s", got)
	}
	// Yielding to a master that advertises every 2 s adopts 2 s.
	s.do(advInt(ka1, 200, 2*time.Second), "leave-master, MASTER->BACKUP")
	s.expect(StateBackup, 4*time.Second+6*time.Second+1218750*time.Microsecond)

	s = newSim(t, nil) // v2
	s.do(start, "INIT->BACKUP")
	s.at(time.Second).do(advInt(ka1, 200, 2*time.Second), "")
	if got := s.in.MasterAdverInterval(); got != time.Second {
		t.Errorf("v2 adopted interval %v", got)
	}
}

// keepalived's FAULT: link down leaves Master with a priority-0 advert, ignores
// adverts and timers, and comes back through Backup.
func TestFault(t *testing.T) {
	s := newSim(t, nil)
	s.do(start, "INIT->BACKUP")
	s.advance(4*time.Second, "3.609375s: send-advert 100, become-master, BACKUP->MASTER")
	s.do(linkDown, "send-advert 0, leave-master, MASTER->FAULT")
	s.expect(StateFault, -1)
	s.do(linkDown, "")
	s.at(5*time.Second).do(adv(ka1, 0), "")
	s.do(timer, "")
	if acts, err := s.in.Receive(s.now, &Packet{}); acts != nil || err != nil {
		t.Errorf("Receive in FAULT = %v, %v; want nothing", acts, err)
	}
	s.at(6*time.Second).do(linkUp, "FAULT->BACKUP")
	s.expect(StateBackup, 6*time.Second+down100)
	s.do(linkUp, "")
	s.advance(10*time.Second, "9.609375s: send-advert 100, become-master, BACKUP->MASTER")

	// From Backup.
	s = newSim(t, nil)
	s.do(start, "INIT->BACKUP")
	s.at(time.Second).do(linkDown, "BACKUP->FAULT")
	s.do(shutdown, "FAULT->INIT")

	// Down before start.
	s = newSim(t, nil)
	s.do(linkDown, "")
	s.do(start, "INIT->FAULT")
	s.at(time.Second).do(linkUp, "FAULT->BACKUP")

	// The owner comes back through Backup too (keepalived's try_up_instance), and
	// takes over after 3 s + 1/256 s.
	s = newSim(t, func(c *Config) { c.Priority = PriorityOwner })
	s.do(start, "send-advert 255, become-master, INIT->MASTER")
	s.at(time.Second).do(linkDown, "send-advert 0, leave-master, MASTER->FAULT")
	s.at(2*time.Second).do(linkUp, "FAULT->BACKUP")
	s.advance(6*time.Second, "5.00390625s: send-advert 255, become-master, BACKUP->MASTER")
}

// Tracking changes the effective priority, clamped to 1–254; a rising backup's down
// timer moves earlier by the change of skew (keepalived vrrp_set_effective_priority).
func TestPriorityChange(t *testing.T) {
	s := newSim(t, nil)
	s.do(start, "INIT->BACKUP")
	s.at(time.Second).do(prio(200), "")
	// 3.609375 s − (156−56)/256 s
	s.expect(StateBackup, 3218750*time.Microsecond)
	s.do(prio(50), "") // falling: the running timer stays
	s.expect(StateBackup, 3218750*time.Microsecond)
	s.advance(4*time.Second, "3.21875s: send-advert 50, become-master, BACKUP->MASTER")
	s.do(prio(120), "")
	s.advance(5*time.Second, "4.21875s: send-advert 120")

	// Each rise moves the timer earlier, a fall never later (a keepalived quirk).
	s = newSim(t, nil)
	s.do(start, "INIT->BACKUP")
	s.do(prio(0), "")
	if p := s.in.Priority(); p != 1 {
		t.Errorf("priority 0 clamped to %d, want 1", p)
	}
	s.expect(StateBackup, down100)
	s.do(prio(255), "")
	if p := s.in.Priority(); p != 254 {
		t.Errorf("priority 255 clamped to %d, want 254", p)
	}
	// 3.609375 s − (255−2)/256 s
	s.expect(StateBackup, 2621093750*time.Nanosecond)

	o := newSim(t, func(c *Config) { c.Priority = PriorityOwner })
	o.do(prio(10), "")
	if p := o.in.Priority(); p != PriorityOwner {
		t.Errorf("owner's priority tracked to %d", p)
	}
}

// The transition table, written out by hand.
func TestTransitionTable(t *testing.T) {
	states := []State{StateInitialize, StateBackup, StateMaster, StateFault}
	allowed := map[[2]State]bool{
		{StateInitialize, StateBackup}: true, {StateInitialize, StateMaster}: true, {StateInitialize, StateFault}: true,
		{StateBackup, StateMaster}: true, {StateBackup, StateFault}: true, {StateBackup, StateInitialize}: true,
		{StateMaster, StateBackup}: true, {StateMaster, StateFault}: true, {StateMaster, StateInitialize}: true,
		{StateFault, StateBackup}: true, {StateFault, StateInitialize}: true,
	}
	for _, from := range append(states, 0) {
		for _, to := range append(states, 0) {
			if got := validTransition(from, to); got != allowed[[2]State{from, to}] {
				t.Errorf("validTransition(%v, %v) = %v", from, to, got)
			}
		}
	}
}

func TestImpossibleTransitionPanics(t *testing.T) {
	s := newSim(t, nil)
	s.do(linkDown, "")
	s.do(start, "INIT->FAULT")
	mustPanic(t, "Fault -> Master", func() { s.in.enter(s.now, StateMaster, &s.in.acts) })
	mustPanic(t, "unknown event", func() { s.in.Step(s.now, Event{Kind: 99}) })
}

func mustPanic(t *testing.T, name string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Errorf("%s: no panic", name)
		}
	}()
	f()
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{StateInitialize.String(), "INIT"}, {StateBackup.String(), "BACKUP"},
		{StateMaster.String(), "MASTER"}, {StateFault.String(), "FAULT"}, {State(0).String(), "State(0)"},
		{EventAdvert.String(), "advert"}, {EventKind(0).String(), "EventKind(0)"},
		{ActionGratuitous.String(), "gratuitous"}, {ActionKind(0).String(), "ActionKind(0)"},
		{Action{Kind: ActionSendAdvert, Priority: 7}.String(), "send-advert 7"},
		{Action{Kind: ActionStateChange, From: StateBackup, To: StateMaster}.String(), "BACKUP->MASTER"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// lan connects instances with a lossless, zero-latency multicast segment: every advert
// is encoded, decoded and checked by every other instance, so these tests run the
// codec and the state machine together.
type lan struct {
	t     *testing.T
	nodes []*Instance
	names map[*Instance]string
	now   time.Time
	log   []string // state changes: "3.4140625s A BACKUP->MASTER"
	ipID  uint16
	// latency delays every delivery; 0 delivers within the sender's step.
	latency time.Duration
	pending []delivery
}

type delivery struct {
	at   time.Time
	from *Instance
	wire []byte
}

func newLAN(t *testing.T, cfgs map[string]Config) *lan {
	l := &lan{t: t, names: map[*Instance]string{}, now: t0}
	names := make([]string, 0, len(cfgs))
	for n := range cfgs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		in, err := NewInstance(cfgs[n])
		if err != nil {
			t.Fatal(err)
		}
		l.nodes = append(l.nodes, in)
		l.names[in] = n
	}
	return l
}

func (l *lan) node(name string) *Instance {
	for in, n := range l.names {
		if n == name {
			return in
		}
	}
	l.t.Fatalf("no node %s", name)
	return nil
}

// handle carries out actions, delivering adverts to the other nodes, until quiet.
func (l *lan) handle(acts []Action) {
	queue := slices.Clone(acts)
	for len(queue) > 0 {
		a := queue[0]
		queue = queue[1:]
		switch a.Kind {
		case ActionStateChange:
			l.log = append(l.log, fmt.Sprintf("%v %s %v", l.now.Sub(t0), l.names[a.Instance], a))
		case ActionSendAdvert:
			cfg := a.Instance.Config()
			l.ipID++
			p := Packet{Src: cfg.Src, Dst: MulticastGroup(cfg.Src.Is6()), HopLimit: HopLimit, ID: l.ipID,
				Advert: cfg.Advert(a.Priority)}
			wire, err := p.MarshalBinary()
			if err != nil {
				l.t.Fatal(err)
			}
			if l.latency > 0 {
				l.pending = append(l.pending, delivery{l.now.Add(l.latency), a.Instance, wire})
				continue
			}
			queue = append(queue, l.deliver(a.Instance, wire)...)
		}
	}
}

// deliver hands an advert to every node but its sender and returns their actions.
func (l *lan) deliver(from *Instance, wire []byte) []Action {
	var acts []Action
	for _, n := range l.nodes {
		if n == from {
			continue
		}
		var q Packet
		if err := q.UnmarshalBinary(wire); err != nil {
			l.t.Fatal(err)
		}
		got, err := n.Receive(l.now, &q)
		if err != nil {
			l.t.Fatalf("%s dropped %s's advert: %v", l.names[n], l.names[from], err)
		}
		acts = append(acts, got...)
	}
	return acts
}

func (l *lan) do(name string, ev Event) { l.handle(l.node(name).Step(l.now, ev)) }

// run delivers adverts and fires timers in time order up to t0+d; at equal times
// deliveries come first, then timers in node order.
func (l *lan) run(d time.Duration) {
	end := t0.Add(d)
	for {
		if len(l.pending) > 0 && !l.pending[0].at.After(end) {
			first := l.pending[0]
			early := true
			for _, n := range l.nodes {
				if dl := n.NextDeadline(); !dl.IsZero() && dl.Before(first.at) {
					early = false
				}
			}
			if early {
				l.pending = l.pending[1:]
				l.now = first.at
				l.handle(l.deliver(first.from, first.wire))
				continue
			}
		}
		var next *Instance
		for _, n := range l.nodes {
			if dl := n.NextDeadline(); !dl.IsZero() && !dl.After(end) && (next == nil || dl.Before(next.NextDeadline())) {
				next = n
			}
		}
		if next == nil {
			break
		}
		l.now = next.NextDeadline()
		l.handle(next.Step(l.now, timer))
	}
	l.now = end
}

func (l *lan) expectLog(want ...string) {
	l.t.Helper()
	if !slices.Equal(l.log, want) {
		l.t.Errorf("state changes:\n got %q\nwant %q", l.log, want)
	}
	l.log = nil
}

func labConfig(src string, p uint8) Config {
	return Config{VRID: labVRID, Version: Version2, Priority: p, Interval: time.Second, Src: mustAddr(src),
		Addrs: []netip.Addr{mustAddr(vip4)}, AuthType: AuthPassword, AuthData: password(labPass)}
}

// TestElection replays the lab's failover sequence (docs/vrrp.md §3.5) between two
// instances on an in-memory LAN.
func TestElection(t *testing.T) {
	l := newLAN(t, map[string]Config{"A": labConfig(ka1, 150), "B": labConfig(ka2, 100)})
	l.do("A", start)
	l.do("B", start)
	l.run(10 * time.Second)
	l.expectLog("0s A INIT->BACKUP", "0s B INIT->BACKUP", "3.4140625s A BACKUP->MASTER")

	// Graceful stop: B takes over after Skew_Time (docs/vrrp.md §3.5: 0.6096 s).
	l.do("A", shutdown)
	l.run(12 * time.Second)
	l.expectLog("10s A MASTER->INIT", "10.609375s B BACKUP->MASTER")

	// A comes back, discards B's lower priority, and preempts.
	l.do("A", start)
	l.run(20 * time.Second)
	l.expectLog("12s A INIT->BACKUP", "15.4140625s A BACKUP->MASTER", "15.4140625s B MASTER->BACKUP")

	// A dies without a word: B takes over after Master_Down_Interval from A's last
	// advert (at 19.4140625 s).
	l.do("A", linkDown)
	l.run(25 * time.Second)
	l.expectLog("20s A MASTER->FAULT", "20.609375s B BACKUP->MASTER")
}

// TestElectionTie: equal priorities time out together and both become master; with
// 1 ms of latency each hears the other, and the higher address wins.
func TestElectionTie(t *testing.T) {
	l := newLAN(t, map[string]Config{"A": labConfig(ka1, 100), "B": labConfig(ka2, 100)})
	l.latency = time.Millisecond
	l.do("A", start)
	l.do("B", start)
	l.run(10 * time.Second)
	l.expectLog("0s A INIT->BACKUP", "0s B INIT->BACKUP",
		"3.609375s A BACKUP->MASTER", "3.609375s B BACKUP->MASTER", "3.610375s A MASTER->BACKUP")
	if a, b := l.node("A").State(), l.node("B").State(); a != StateBackup || b != StateMaster {
		t.Errorf("A %v, B %v; want B (198.18.0.2) master", a, b)
	}
}
