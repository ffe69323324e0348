package health

// Quorum is a virtual service's quorum rule, keepalived's quorum and hysteresis: the
// service has quorum while the summed weight of its live real servers is high enough,
// with a dead band of Hysteresis around Min so that one server flapping does not flap
// the quorum. The daemon evaluates it after every Transition of the service's servers
// and, when the result changes, swaps in or out the sorry server and runs quorum_up or
// quorum_down; on shutdown with omega it reports quorum lost.
//
// The zero value is keepalived's default (quorum 1, hysteresis 0).
type Quorum struct {
	Min        int64 // keepalived quorum; values below 1 mean 1
	Hysteresis int64
}

// Member is one real server as the quorum sees it.
type Member struct {
	Up     bool
	Weight int64 // the weight in effect (configured, or set by a dynamic check)
}

// LiveWeight is the summed weight of the UP members; negative weights count as 0.
func LiveWeight(ms []Member) int64 {
	var sum int64
	for _, m := range ms {
		if m.Up && m.Weight > 0 {
			sum += m.Weight
		}
	}
	return sum
}

func (q Quorum) min() int64 { return max(q.Min, 1) }

// Initial reports whether a service starts with quorum: at least Min+Hysteresis of
// live weight (keepalived set_quorum_states).
func (q Quorum) Initial(live int64) bool { return live >= q.min()+q.Hysteresis }

// Next returns the quorum state after the live weight became live, given the state up
// before (keepalived update_quorum_state): quorum is gained at Min+Hysteresis and lost
// below Min−Hysteresis, or when no live weight remains at all.
func (q Quorum) Next(up bool, live int64) bool {
	if up {
		return live > 0 && live >= q.min()-q.Hysteresis
	}
	return live >= q.min()+q.Hysteresis
}
