package dataplane

import (
	"sync"
	"time"
)

// Statistics are kept per worker in plain fields (no atomics on the per-packet path)
// and published to a locked copy at most every publishEvery of the worker's clock, so
// readers such as `gvs adm --stats` and metrics see counters at most that old.
const publishEvery = int64(100 * time.Millisecond)

// published is a worker's last published counters.
type published struct {
	mu     sync.Mutex
	c      Counters
	dstats []Stats
	sstats []Stats
	at     int64
}

// publish copies the worker's counters for readers. It allocates only when the
// configuration grew.
func (w *Worker) publish(now int64) {
	p := &w.pub
	p.mu.Lock()
	p.c = w.C
	if len(p.dstats) < len(w.dstats) {
		p.dstats = make([]Stats, len(w.dstats))
	}
	copy(p.dstats, w.dstats)
	if len(p.sstats) < len(w.sstats) {
		p.sstats = make([]Stats, len(w.sstats))
	}
	copy(p.sstats, w.sstats)
	p.at = now
	p.mu.Unlock()
}

// Flush publishes the worker's counters now (for a worker about to stop, or tests).
func (w *Worker) Flush(now int64) { w.publish(now) }

// Totals are the counters of every worker of a Director, summed.
type Totals struct {
	Counters Counters
	Dests    []Stats // by dest id
	Services []Stats // by service id
}

// Totals sums the counters every worker last published.
func (d *Director) Totals() Totals {
	d.wmu.Lock()
	ws := d.workers
	d.wmu.Unlock()
	var t Totals
	for _, w := range ws {
		p := &w.pub
		p.mu.Lock()
		c := &t.Counters
		c.In += p.c.In
		c.Forwarded += p.c.Forwarded
		c.Generated += p.c.Generated
		c.ICMPSuppressed += p.c.ICMPSuppressed
		c.ICMPRateLimited += p.c.ICMPRateLimited
		c.SloppyCreated += p.c.SloppyCreated
		for i := range c.Reasons {
			c.Reasons[i] += p.c.Reasons[i]
		}
		for i := range c.Malformed {
			c.Malformed[i] += p.c.Malformed[i]
		}
		t.Dests = addStats(t.Dests, p.dstats)
		t.Services = addStats(t.Services, p.sstats)
		p.mu.Unlock()
	}
	return t
}

func addStats(dst, src []Stats) []Stats {
	for len(dst) < len(src) {
		dst = append(dst, Stats{})
	}
	for i := range src {
		s, o := &dst[i], &src[i]
		s.Conns += o.Conns
		s.InPkts += o.InPkts
		s.OutPkts += o.OutPkts
		s.InBytes += o.InBytes
		s.OutBytes += o.OutBytes
	}
	return dst
}
