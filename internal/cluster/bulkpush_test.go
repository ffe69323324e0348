package cluster

import (
	"testing"
	"time"
)

// TestLossPushesBackOff (docs/cluster.md §5): a push asked for because of loss that
// overflows the receiver (here: d2 takes at most 20 sync messages from d1 every
// 10 ms, d1 pushes 50) loses records itself; that loss does not ask for the next push
// at once, but after a back-off that doubles. Before, d2 asked again after every
// push's bulk-done, some 60 pushes of 20,000 records in 20 s. Once the overflow
// stops, the next push completes d2's copy.
func TestLossPushesBackOff(t *testing.T) {
	w := newFakeNet(t)
	a, b := w.add("d1", nil), w.add("d2", nil)
	w.start("d1", "d2")
	w.runUntil(3*time.Second, func() bool { return a.n.Warm() && b.n.Warm() })
	const n = 20000
	for i := range n {
		a.table.own(conn(i, 5), w.now, w.now)
	}
	var asks []time.Time
	seen := map[uint32]bool{}
	lose := 5 // the five messages of the live sync below: 200 records lost, above resync_threshold
	var step time.Time
	taken := 0
	overflow := w.now.Add(20 * time.Second)
	w.filter = func(d *datagram, to string) bool {
		if d.control && to == "d1" && isBulkReq(d.b) {
			var m ctlMsg
			if err := decodeControl(&m, d.b, nil); err != nil {
				t.Fatal(err)
			}
			if !seen[m.ReqID] {
				seen[m.ReqID] = true
				asks = append(asks, w.now)
			}
		}
		if d.control || to != "d2" {
			return true
		}
		if lose > 0 {
			lose--
			return false
		}
		if !w.now.Before(overflow) {
			return true
		}
		if !w.now.Equal(step) {
			step, taken = w.now, 0
		}
		taken++
		return taken <= 20
	}
	for i := range 200 {
		e := conn(n+i, 5)
		a.table.own(e, w.now, w.now)
		a.n.Enqueue(&e, w.now)
	}
	w.run(20 * time.Second)
	if len(asks) == 0 {
		t.Fatal("the loss of 200 records asked for no push")
	}
	if len(asks) > 5 {
		t.Fatalf("%d pushes asked for in the 20 s the receiver overflowed, at %v; want a back-off between them", len(asks), sinceFirst(asks))
	}
	for i := 2; i < len(asks); i++ {
		if asks[i].Sub(asks[i-1]) < asks[i-1].Sub(asks[i-2]) || asks[i].Sub(asks[i-1]) < 2*time.Second {
			t.Fatalf("pushes asked for at %v: the gaps do not grow", sinceFirst(asks))
		}
	}
	if b.n.Stats().ResyncDeferred == 0 {
		t.Fatal("no push held back by the back-off was counted")
	}
	if _, ok := w.runUntil(60*time.Second, func() bool { return b.table.len() == n+200 }); !ok {
		t.Fatalf("d2 holds %d of %d entries 60 s after the overflow stopped; pushes asked for at %v", b.table.len(), n+200, sinceFirst(asks))
	}
	t.Logf("pushes asked for at %v", sinceFirst(asks))
}

func sinceFirst(ts []time.Time) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i := range ts {
		out[i] = ts[i].Sub(ts[0])
	}
	return out
}
