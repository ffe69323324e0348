package daemon

import (
	"fmt"
	"sync"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/ipvs"
)

// runningDigest is the cluster config digest of what the director runs
// (docs/cluster.md §5): config.ClusterDigestOf the file's part, the sum of the
// running services' digests and the running timeouts — the function
// config.ClusterDigest applies to a file, applied to the configured table as gvs adm
// left it, so a director changed by hand shows as a mismatch on its peers.
//
// The services' sum is kept per page of the published configured table (pseq): a
// publication shares every page a change did not write with the one before, and a
// shared page keeps its sum, so a change costs the pages it wrote and a look at each
// directory, not the table.
type runningDigest struct {
	mu    sync.Mutex
	file  [16]byte // config.ClusterFileDigest of the running file (start, reloads)
	dirty bool     // file changed since the last refresh

	// The cluster events goroutine's (refresh).
	seen  *published
	pages map[*pseqLeaf[ipvs.Service]]config.DigestSum
	dirs  map[*pseqDir[ipvs.Service]]config.DigestSum
	sum   config.DigestSum
	to    ipvs.Timeouts
}

// setFile takes a configuration's file part: at start and on every reload.
func (g *runningDigest) setFile(cfg *config.Config) {
	f := config.ClusterFileDigest(cfg)
	g.mu.Lock()
	g.file, g.dirty = f, true
	g.mu.Unlock()
}

// refresh returns the digest of p's configured table with timeouts to and whether
// anything it depends on changed since the last call. Only one goroutine calls it.
func (g *runningDigest) refresh(p *published, to ipvs.Timeouts) ([16]byte, bool) {
	g.mu.Lock()
	file, dirty := g.file, g.dirty
	g.dirty = false
	g.mu.Unlock()
	if p == nil || (p == g.seen && to == g.to && !dirty) {
		return [16]byte{}, false
	}
	if p != g.seen {
		g.seen = p
		g.sum = g.services(&p.configured)
	}
	g.to = to
	return config.ClusterDigestOf(file, g.sum, to), true
}

// services sums the service digests of s, reusing the sums of the directories and
// pages s shares with the table of the last call.
func (g *runningDigest) services(s *pseq[ipvs.Service]) config.DigestSum {
	dirs := make(map[*pseqDir[ipvs.Service]]config.DigestSum, len(s.dirs))
	pages := make(map[*pseqLeaf[ipvs.Service]]config.DigestSum, len(g.pages))
	var total config.DigestSum
	for _, dir := range s.dirs {
		if dir == nil {
			continue
		}
		if v, ok := g.dirs[dir]; ok {
			// Unchanged directory: its pages are the same, keep their sums.
			for _, leaf := range dir {
				if leaf != nil {
					pages[leaf] = g.pages[leaf]
				}
			}
			dirs[dir] = v
			total = total.Plus(v)
			continue
		}
		var dv config.DigestSum
		for _, leaf := range dir {
			if leaf == nil {
				continue
			}
			v, ok := g.pages[leaf]
			if !ok {
				for _, svc := range leaf { // slots past the list's end are nil
					if svc != nil {
						v = v.Add(config.ServiceDigest(svc))
					}
				}
			}
			pages[leaf] = v
			dv = dv.Plus(v)
		}
		dirs[dir] = dv
		total = total.Plus(dv)
	}
	g.dirs, g.pages = dirs, pages
	return total
}

// timeoutsOf returns the timeouts gvs adm --set and the file set, from the table.
func timeoutsOf(t conntrack.Timeouts) ipvs.Timeouts {
	return ipvs.Timeouts{TCP: t.TCP[conntrack.StateEstablished], TCPFin: t.TCP[conntrack.StateFinWait], UDP: t.UDP}
}

// refreshDigest gives the Node the running digest when it changed: called by the
// cluster events goroutine on every tick, cheap when nothing was published.
func (c *clusterRun) refreshDigest(d *Daemon) {
	dg, ok := c.running.refresh(d.pub.Load(), timeoutsOf(d.d.Table().Timeouts()))
	if !ok || dg == c.digest() {
		return
	}
	c.node.SetConfigDigest(dg)
	c.mu.Lock()
	c.ccfg.ConfigDigest = dg
	c.mu.Unlock()
	c.log.Debug("cluster: the running configuration's digest changed", "digest", fmt.Sprintf("%x", dg))
}
