package conntrack

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
)

// TestConcurrent runs workers on disjoint flows (sharing persistence templates across
// shards) alongside Expire, Walk, Template lookups and a dest deletion; run it with
// -race. At the end everything expires and every counter is back to zero.
//
// Barriers fix what the scheduler would otherwise decide: the dest is deleted, and
// Expire and Walk have run, after every worker's first half and before any worker's
// last quarter, so packets always flow both before and after the deletion and the
// sweeps always overlap them. The checks are invariants that hold for every
// interleaving: the dest counters equal a recount of the table, Len stays within Max,
// and everything expires to zero.
func TestConcurrent(t *testing.T) {
	v := newEnv(t, func(c *Config) {
		c.Max = 4000
		c.Shards = 8
		c.Tick = 10 * time.Millisecond
		c.ExpireNodestConn = true
	})
	for id := uint32(1); id <= 3; id++ {
		v.addDest(id, fmt.Sprintf("10.0.0.%d", id), 8080, 1)
	}
	// The dests map is read concurrently by the table: freeze it before starting.
	dests := v.dests
	var clock atomic.Int64
	const workers = 4
	iters := 3000
	if testing.Short() {
		iters = 500
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	// half is done when every worker is halfway; mid is closed once the dest is
	// deleted and Expire and Walk have each run since.
	var half, sweeps sync.WaitGroup
	half.Add(workers)
	sweeps.Add(2)
	mid := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c, tpl Conn
			tk := tcpKey(fmt.Sprintf("203.0.113.%d", w*8), 0, vip, 443)
			for i := range iters {
				switch i {
				case iters / 2:
					half.Done()
				case iters * 3 / 4:
					<-mid
				}
				now := clock.Add(int64(time.Millisecond))
				cl := fmt.Sprintf("198.51.%d.%d", w, i%50)
				k := tcpKey(cl, uint16(1000+i%7), vip, 80)
				if i%3 == 0 {
					k.VPort = 443
				}
				switch v.tbl.In(&k, []uint8{fSYN, fACK, fFINACK, fRST}[i%4], now, &c) {
				case Miss:
					d := dests[uint32(1+i%3)]
					var ctl Ref
					if k.VPort == 443 {
						if !v.tbl.Template(&tk, now, &tpl) {
							if v.tbl.InsertTemplate(&tk, d, 8080, 2*time.Second, now, &tpl) != Hit {
								continue
							}
						}
						ctl, d = tpl.Ref, dests[tpl.Dest]
					}
					v.tbl.Insert(&k, d, 8080, ipvs.NAT, 0, ctl, fSYN, now, &c)
				case Hit:
					if c.Method == ipvs.NAT {
						v.tbl.Out(protoTCP, false, c.DAddr, c.DPort, k.CAddr, c.Key.CPort, fACK, now, &c)
					}
				}
			}
		}()
	}
	deleted := make(chan struct{})
	go func() {
		half.Wait()
		// Deleting a dest flips a flag the workers read concurrently; ExpireDest
		// flushes its conns while packets flow.
		d := dests[2]
		if _, err := v.pool.Delete(d.Addr(), d.Port()); err != nil {
			t.Errorf("Delete: %v", err)
		}
		v.tbl.ExpireDest(2, clock.Load())
		close(deleted)
		sweeps.Wait()
		close(mid)
	}()
	// sweep calls f until stop, and counts down sweeps after its first call once
	// the dest is deleted.
	sweep := func(f func()) {
		counted := false
		for {
			select {
			case <-stop:
				return
			default:
			}
			select {
			case <-deleted:
				f()
				if !counted {
					counted = true
					sweeps.Done()
				}
			default:
				f()
			}
		}
	}
	var aux sync.WaitGroup
	aux.Go(func() { sweep(func() { v.tbl.Expire(clock.Load(), 100) }) })
	aux.Go(func() { sweep(func() { v.tbl.Each(func(c *Conn) bool { return c.Expires != 0 }) }) })
	wg.Wait()
	close(stop)
	aux.Wait()
	if l := v.tbl.Len(); l > 4000 {
		t.Fatalf("Len %d > Max", l)
	}
	checkCounts(t, v.tbl, dests)
	end := clock.Load() + 3600*sec
	for v.tbl.Expire(end, 0) != 0 {
	}
	if v.tbl.Len() != 0 || walkLen(v.tbl) != 0 {
		t.Fatalf("len %d after expiry", v.tbl.Len())
	}
	for id, d := range dests {
		if countsOf(d) != (counts{}) {
			t.Errorf("dest %d: %+v", id, countsOf(d))
		}
	}
}
