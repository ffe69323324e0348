package health

import "time"

// state is one target's health state machine: keepalived's retry logic plus rise and
// fall. It does no I/O and reads no clock, so every case is tested by stepping.
//
// The zero value is a DOWN target with no weight set; start from initialState.
type state struct {
	up     bool
	weight int // last weight a dynamic check reported, or WeightUnchanged
	retry  int // failed probes of the current check so far (UP only)
	fails  int // consecutive failed checks (UP only)
	oks    int // consecutive successful probes (DOWN only)
}

func initialState(s *Spec) state { return state{up: s.InitialUp(), weight: WeightUnchanged} }

// change is what a step did to the target as the daemon sees it.
type change uint8

const (
	noChange change = iota
	wentUp
	wentDown
	weightChanged // an UP target's dynamic weight changed
)

// step applies one probe's result and returns the change and the delay from this
// probe's start to the next one. s must be normalized (Rise, Fall ≥ 1).
//
// keepalived (check_api/check_misc epilogues): while UP a failure is retried
// Retries times RetryDelay apart and the target goes DOWN when the last retry fails;
// while DOWN there are no retries and the first success brings it UP. Rise and Fall
// generalise the two "first": Fall counts failed checks (each of 1+Retries probes),
// Rise counts successful probes.
func (st *state) step(r Result, s *Spec) (change, time.Duration) {
	if r.Up {
		st.retry, st.fails = 0, 0
		if st.up {
			if r.Weight != WeightUnchanged && r.Weight != st.weight {
				st.weight = r.Weight
				return weightChanged, s.Interval
			}
			return noChange, s.Interval
		}
		if r.Weight != WeightUnchanged {
			st.weight = r.Weight
		}
		st.oks++
		if st.oks >= s.Rise {
			st.up, st.oks = true, 0
			return wentUp, s.Interval
		}
		return noChange, s.Interval
	}
	st.oks = 0
	if !st.up {
		return noChange, s.Interval
	}
	if st.retry < s.Retries {
		st.retry++
		return noChange, s.RetryDelay
	}
	st.retry = 0
	st.fails++
	if st.fails >= s.Fall {
		st.up, st.fails = false, 0
		return wentDown, s.Interval
	}
	return noChange, s.Interval
}
