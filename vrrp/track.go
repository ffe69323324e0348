package vrrp

// Track is one tracked input of a Member: anything whose state lowers or raises the
// instance's priority, or puts the instance in FAULT — keepalived's track_interface,
// track_script, track_file, track_process, and gvs's track_service. Every kind of
// tracked object is a Track; the Runner knows none of them by kind.
//
// The Runner polls State on its own goroutine about once per advert interval (the
// shortest of the polled members), at start before the instance enters BACKUP, and
// when Runner.Reassess is called. State must not block: an object that takes time
// to test (a script) is tested on its own goroutine, State returns its last result,
// and its owner may call Runner.Reassess when that result changed so that it takes
// effect before the next poll.
//
// The instance's effective priority is its configured priority plus the Delta of
// every Track, clamped to 1–254 (keepalived's vrrp_set_effective_priority); an
// address owner (priority 255) keeps 255. If any Track reports Fault the instance
// goes to FAULT (a master first advertises priority 0) and comes back to BACKUP when
// none does.
type Track struct {
	// Name identifies the object in logs, transition reasons and gvs adm:
	// "interface eth1", "script chk_nginx", "file /run/prio".
	Name string
	// State returns the object's current contribution. It is called only from the
	// Runner's goroutine.
	State func() TrackState
}

// TrackState is what one tracked object contributes right now.
type TrackState struct {
	// Fault takes the instance to FAULT.
	Fault bool
	// Delta is added to the configured priority (keepalived's weight, or for
	// track_file the file's value times the weight).
	Delta int
}

// WeightedTrack returns the Track of an object that is up or down, with keepalived's
// weight rules: weight 0 puts the instance in FAULT while the object is down; a
// negative weight is added while it is down, a positive one while it is up. reverse
// (keepalived's "reverse" keyword, and the "weight -W reverse" forms) swaps up and
// down first. up is called from the Runner's goroutine and must not block.
func WeightedTrack(name string, weight int, reverse bool, up func() bool) Track {
	return Track{Name: name, State: func() TrackState {
		u := up() != reverse
		switch {
		case weight == 0:
			return TrackState{Fault: !u}
		case weight < 0 && !u, weight > 0 && u:
			return TrackState{Delta: weight}
		}
		return TrackState{}
	}}
}
