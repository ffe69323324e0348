package track

import (
	"strconv"
	"time"
)

// Clock is the time source of the trackers; testutil.Clock fits it.
type Clock interface {
	Now() time.Time
	// NewTimer returns a channel that receives once d has passed, and a stop function.
	NewTimer(d time.Duration) (<-chan time.Time, func() bool)
}

// RealClock is the wall clock.
type RealClock struct{}

func (RealClock) Now() time.Time { return time.Now() }

func (RealClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// State is the state of an object that is up or down.
type State uint8

const (
	_ State = iota
	// Init: no result yet (a script that has not finished its first run).
	Init
	Up
	Down
)

func (s State) String() string {
	switch s {
	case Init:
		return "INIT"
	case Up:
		return "UP"
	case Down:
		return "DOWN"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Contribution returns what an object in state st, tracked with weight (keepalived's
// "weight W", -253..253) and reverse, does to a VRRP instance (docs/scripts.md §1.3):
//
//   - weight 0: FAULT while the object is down (up, with reverse);
//   - a positive weight is added while the object is up, a negative one while it
//     is down; reverse negates the weight, the condition staying the same (so
//     "weight 10 reverse" takes 10 off while the object is up);
//   - an object without a result yet (Init) changes nothing, except that with
//     weight 0 it holds the instance back (FAULT) until it reports up.
func Contribution(st State, weight int, reverse bool) (fault bool, delta int) {
	if st == Init || st == 0 {
		return weight == 0, 0
	}
	up := st == Up
	if weight == 0 {
		return up == reverse, 0
	}
	m := 1
	if reverse {
		m = -1
	}
	if weight > 0 && up || weight < 0 && !up {
		return false, weight * m
	}
	return false, 0
}

// FileContribution returns what a tracked file holding value does to an instance
// tracking it with weight and reverse (keepalived's track_file, docs/scripts.md
// §1.4): with weight 0, FAULT while the value is not 0 (while it is 0, with
// reverse); otherwise the value times the weight (negated with reverse) is added to
// the priority, capped at 253, and -254 or less means FAULT.
func FileContribution(value int64, weight int, reverse bool) (fault bool, delta int) {
	if weight == 0 {
		return (value != 0) != reverse, 0
	}
	m := int64(1)
	if reverse {
		m = -1
	}
	// value fits in 32 bits and |weight| ≤ 254, so the product fits in 64.
	s := value * int64(weight) * m
	switch {
	case s <= -254:
		return true, 0
	case s > 253:
		return false, 253
	}
	return false, int(s)
}
