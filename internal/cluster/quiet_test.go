package cluster

import (
	"testing"
	"time"
)

// TestQuietFlowsStayAlive is acceptance test C8 at the protocol level: flows with a
// 30 s timeout that send one packet every 25 s for three minutes. Their owner never
// sends them again by the kernel's rule (packet 3, then every 50th), so without the
// refresh sweeper the other directors' copies expire after 30 s while the flows live;
// with it, the copies never expire.
func TestQuietFlowsStayAlive(t *testing.T) {
	for _, sweep := range []bool{false, true} {
		w := newFakeNet(t)
		rate := 0
		if sweep {
			rate = 20000
		}
		a := w.add("d1", func(c *Config) { c.SweepRate = rate })
		b := w.add("d2", nil)
		w.start("d1", "d2")
		w.runUntil(3*time.Second, func() bool { return a.n.Warm() && b.n.Warm() })
		const flows = 20
		for i := range flows {
			e := conn(i, 5)
			e.Timeout = 30 * time.Second
			a.table.own(e, w.now, w.now) // sent at its third packet, now
			a.n.Enqueue(&e, w.now)
		}
		expired := 0
		start := w.now
		for w.now.Sub(start) < 3*time.Minute {
			if int(w.now.Sub(start)/time.Millisecond)%25000 == 0 {
				a.table.touch(w.now) // one packet per flow every 25 s
			}
			w.run(100 * time.Millisecond)
			for i := range flows {
				if !b.table.aliveAt(keyOf(conn(i, 5)), w.now) {
					expired++
				}
			}
			if expired > 0 {
				break
			}
		}
		switch {
		case sweep && expired > 0:
			t.Fatalf("with the sweeper, d2's copy of a live quiet flow expired at %v", w.now.Sub(start))
		case !sweep && expired == 0:
			t.Fatal("without the sweeper the copies did not expire: the test cannot tell the sweeper works")
		}
		if sweep {
			t.Logf("sweeper re-sent %d records for %d flows over 3 minutes", a.n.Stats().Swept, flows)
		}
	}
}
