package daemon

import (
	"math"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/internal/ipvsadm"
)

// The rate estimator behaves as IPVS's (ip_vs_est): every estimatePeriod it takes
// the counters' deltas, turns them into per-second rates, and folds each into a
// moving average avg += (rate − avg)·estimateWeight, so a step change shows after
// one period and is mostly (≈90 %) there after about 8 seconds. A service or real
// server is estimated from the first tick that sees it, and -Z restarts its
// average from zero.
const (
	estimatePeriod = 2 * time.Second
	estimateWeight = 0.25 // W = 2^-2
)

// estimate is one tick of the estimator.
func (a *Admin) estimate() {
	views := a.views()
	t := a.d.Totals()
	a.smu.Lock()
	defer a.smu.Unlock()
	a.est.step(views, t)
}

// estimator holds the estimates of every service and real server by id. The zero
// value is ready. Guarded by Admin.smu.
type estimator struct {
	svcs, dests map[uint32]*rateEst
}

// rateEst is one estimate: the counters at the previous tick and the averages.
type rateEst struct {
	last dataplane.Stats
	avg  [5]float64 // conns, in packets, out packets, in bytes, out bytes per second
}

// step folds the counters since the last tick into the averages of the services
// and real servers in views, starts estimates for new ones and drops those no
// longer listed.
func (e *estimator) step(views []dataplane.ServiceView, t dataplane.Totals) {
	if e.svcs == nil {
		e.svcs, e.dests = map[uint32]*rateEst{}, map[uint32]*rateEst{}
	}
	seenS, seenD := make(map[uint32]bool, len(views)), map[uint32]bool{}
	for _, v := range views {
		seenS[v.ID] = true
		advance(e.svcs, v.ID, at(t.Services, v.ID))
		for _, dv := range v.Dests {
			seenD[dv.ID] = true
			advance(e.dests, dv.ID, at(t.Dests, dv.ID))
		}
	}
	for id := range e.svcs {
		if !seenS[id] {
			delete(e.svcs, id)
		}
	}
	for id := range e.dests {
		if !seenD[id] {
			delete(e.dests, id)
		}
	}
}

func advance(m map[uint32]*rateEst, id uint32, cur dataplane.Stats) {
	r := m[id]
	if r == nil {
		m[id] = &rateEst{last: cur}
		return
	}
	secs := estimatePeriod.Seconds()
	deltas := [5]uint64{
		cur.Conns - r.last.Conns, cur.InPkts - r.last.InPkts, cur.OutPkts - r.last.OutPkts,
		cur.InBytes - r.last.InBytes, cur.OutBytes - r.last.OutBytes,
	}
	for i, d := range deltas {
		if d > math.MaxInt64 {
			d = 0 // a counter went backwards: no sample
		}
		r.avg[i] += (float64(d)/secs - r.avg[i]) * estimateWeight
	}
	r.last = cur
}

// reset restarts the estimate from cur with zero rates (-Z). A nil r is a no-op.
func (r *rateEst) reset(cur dataplane.Stats) {
	if r == nil {
		return
	}
	r.last = cur
	r.avg = [5]float64{}
}

// rates returns the estimate rounded to whole units per second; zero for nil.
func (r *rateEst) rates() ipvsadm.Rates {
	if r == nil {
		return ipvsadm.Rates{}
	}
	u := func(f float64) uint64 { return uint64(math.Round(f)) }
	return ipvsadm.Rates{CPS: u(r.avg[0]), InPPS: u(r.avg[1]), OutPPS: u(r.avg[2]), InBPS: u(r.avg[3]), OutBPS: u(r.avg[4])}
}
