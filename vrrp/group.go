package vrrp

import (
	"fmt"
	"slices"
	"time"
)

// Group is keepalived's vrrp_sync_group: instances that change state together, so
// that, say, the outside and inside VIPs of a router stay on the same node.
// keepalived's rules (vrrp_sync.c), which Group follows:
//
//   - one member entering Fault takes the others to Fault (a master among them
//     advertises priority 0 and releases its VIPs); the group leaves Fault, to Backup,
//     only when no member's link is down;
//   - one member leaving Master for Backup takes the other masters to Backup;
//   - a backup whose down timer expires goes to Master only when every other member
//     wants to as well (its own timer expired) or the group is already Master;
//     until then it stays Backup with its timer re-armed. The member that completes
//     the set takes all the others to Master.
//
// Start and Shutdown on any member start or stop the whole group. Once in a group, an
// instance is stepped as before (Instance.Step, Instance.Receive), and the actions
// returned may concern several members: look at Action.Instance. The zero Group is not
// usable (use NewGroup). A Group is not safe for concurrent use; one goroutine owns it
// and its members.
type Group struct {
	members []*Instance
	state   State
	acts    []Action
}

// NewGroup ties members into a sync group. Each must be in StateInitialize and in no
// other group. Errors wrap ErrInvalidConfig.
func NewGroup(members ...*Instance) (*Group, error) {
	if len(members) == 0 {
		return nil, fmt.Errorf("vrrp: sync group: %w: no members", ErrInvalidConfig)
	}
	for i, m := range members {
		switch {
		case m == nil:
			return nil, fmt.Errorf("vrrp: sync group: %w: nil member", ErrInvalidConfig)
		case slices.Contains(members[:i], m):
			return nil, fmt.Errorf("vrrp: sync group: %w: VRID %d listed twice", ErrInvalidConfig, m.cfg.VRID)
		case m.group != nil:
			return nil, fmt.Errorf("vrrp: sync group: %w: VRID %d is already in a group", ErrInvalidConfig, m.cfg.VRID)
		case m.state != StateInitialize:
			return nil, fmt.Errorf("vrrp: sync group: %w: VRID %d already started", ErrInvalidConfig, m.cfg.VRID)
		}
	}
	g := &Group{members: slices.Clone(members), state: StateInitialize}
	for _, m := range g.members {
		m.group = g
	}
	return g, nil
}

// Members returns the members in the order given to NewGroup. The slice must not be
// modified.
func (g *Group) Members() []*Instance { return g.members }

// State returns the group's state: the state the last synchronisation brought its
// members to (keepalived's sgroup->state).
func (g *Group) State() State { return g.state }

// NextDeadline returns the earliest NextDeadline among the members, or the zero Time.
func (g *Group) NextDeadline() time.Time {
	var next time.Time
	for _, m := range g.members {
		if d := m.deadline; !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	return next
}

func (g *Group) step(now time.Time, in *Instance, ev Event) []Action {
	g.acts = g.acts[:0]
	switch ev.Kind {
	case EventStart, EventShutdown:
		for _, m := range g.members {
			m.apply(now, ev, &g.acts)
		}
		if ev.Kind == EventShutdown {
			g.state = StateInitialize
			return g.acts
		}
		// A member whose link is down at start faults the group; an owner that went
		// straight to Master takes the others along.
		lead := g.members[0]
		for _, m := range g.members {
			if m.state == StateFault {
				lead = m
				break
			}
			if m.state == StateMaster {
				lead = m
			}
		}
		g.follow(now, lead)
		return g.acts
	}
	prev := in.state
	in.apply(now, ev, &g.acts)
	if in.state != prev {
		g.follow(now, in)
	}
	return g.acts
}

// follow brings the other members to lead's new state (keepalived's vrrp_sync_fault,
// vrrp_sync_backup and vrrp_sync_master).
func (g *Group) follow(now time.Time, lead *Instance) {
	to := lead.state
	for _, m := range g.members {
		if m == lead || m.state == to || m.state == StateInitialize {
			continue
		}
		switch {
		case to == StateFault:
			m.enter(now, StateFault, &g.acts)
		case to == StateBackup && !m.linkDown:
			m.enter(now, StateBackup, &g.acts)
		case to == StateMaster && m.state == StateBackup:
			m.enter(now, StateMaster, &g.acts)
		}
	}
	g.state = to
}

// allUp reports whether no member's link is down.
func (g *Group) allUp() bool {
	for _, m := range g.members {
		if m.linkDown {
			return false
		}
	}
	return true
}

// canGotoMaster is keepalived's vrrp_sync_can_goto_master: the group is Master
// already, or every other member wants Master too.
func (g *Group) canGotoMaster(in *Instance) bool {
	if g.state == StateMaster {
		return true
	}
	for _, m := range g.members {
		if m != in && !m.wantMaster && m.state != StateMaster {
			return false
		}
	}
	return true
}
