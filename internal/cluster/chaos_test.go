package cluster

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// touch marks every entry of the table active now (its flows keep sending).
func (t *fakeTable) touch(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, fe := range t.entries {
		if fe.m.Origin == 0 {
			fe.m.LastActive = now
		}
	}
}

// TestChaosConverges runs three directors creating connections while 10 % of all
// datagrams are lost, kills one (its flows move to the others, which adopt them) and
// restarts it with an empty table, then lets the loss stop: within the refresh
// sweeper's reach (half the 20 s timeout) every director holds every live connection —
// incremental sync, loss detection, bulk on join, adoption and the sweeper together
// repair what the loss and the restart cost.
func TestChaosConverges(t *testing.T) {
	seeds := uint64(4)
	if testing.Short() {
		seeds = 1
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { chaos(t, seed) })
	}
}

func chaos(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 8848))
	w := newFakeNet(t)
	ids := []string{"d1", "d2", "d3"}
	for _, id := range ids {
		w.add(id, nil)
	}
	w.start(ids...)
	w.runUntil(3*time.Second, func() bool { return w.nodes["d1"].n.Warm() && w.nodes["d2"].n.Warm() && w.nodes["d3"].n.Warm() })
	lossy := true
	w.filter = func(*datagram, string) bool { return !lossy || rng.IntN(10) != 0 }
	owned := map[Key]string{} // every connection created, by owner
	next := 0
	create := func(tn *testNode) {
		e := conn(next, byte(5+next%4))
		e.Timeout = 20 * time.Second
		next++
		tn.table.own(e, w.now, w.now)
		tn.n.Enqueue(&e, w.now)
		owned[e.Key()] = tn.id
	}
	steps := 0
	step := func(creating bool) {
		steps++
		for _, id := range ids {
			tn := w.nodes[id]
			if tn.down {
				continue
			}
			if creating {
				create(tn)
			}
			if steps%10 == 0 { // flows send every 100 ms
				tn.table.touch(w.now)
			}
		}
		w.run(10 * time.Millisecond)
	}
	for range 300 { // 3 s
		step(true)
	}
	// d3 dies: its connections live on at d1 and d2 (orphans now).
	d3 := w.nodes["d3"]
	d3.down = true
	// The router moves d3's flows to d1 and d2. The director a flow lands on adopts
	// its synced entry at the flow's first packet (origin := local, sent at once), or,
	// if the entry never reached it, schedules the flow afresh (sloppy mh picks the
	// same server) and owns the new entry.
	adopt := func() {
		for k, o := range owned {
			if o != "d3" {
				continue
			}
			tn := w.nodes[[]string{"d1", "d2"}[k.CPort%2]]
			fe, ok := tn.table.get(k)
			e := fe.e
			if !ok {
				for i := 0; ; i++ { // rebuild the flow's entry as the data path would
					if c := conn(i, byte(5+i%4)); c.Key() == k {
						e = c
						e.Timeout = 20 * time.Second
						break
					}
				}
			}
			tn.table.own(e, w.now, w.now)
			tn.n.Enqueue(&e, w.now)
			owned[k] = tn.id
		}
	}
	w.run(300 * time.Millisecond) // withdrawn, rerouted
	adopt()
	for range 200 {
		step(true)
	}
	// d3 restarts with an empty table and a new incarnation.
	fresh := w.add("d3-new", func(c *Config) { c.NodeID = "d3" })
	delete(w.nodes, "d3-new")
	w.order = w.order[:len(w.order)-1]
	fresh.addr = d3.addr
	fresh.n.cfg.Self = d3.n.cfg.Self
	w.nodes["d3"] = fresh
	fresh.n.Start(w.now)
	for range 300 {
		step(true)
	}
	lossy = false
	for range 1500 { // 15 s: more than half the timeout
		step(false)
	}
	for _, id := range ids {
		tn := w.nodes[id]
		missing := 0
		for k := range owned {
			if _, ok := tn.table.get(k); !ok {
				missing++
			}
		}
		if missing != 0 {
			t.Errorf("%s misses %d of %d connections; stats %+v", id, missing, len(owned), tn.n.Stats())
		}
	}
	if !w.nodes["d3"].n.Warm() {
		t.Error("the restarted d3 never became ready")
	}
}
