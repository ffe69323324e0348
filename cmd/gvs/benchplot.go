package main

import (
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/gvs-lb/gvs/bench"
	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/plot"
	"github.com/gvs-lb/gvs/ipvs"
)

// replayPlot collects what gvs bench replay --plot draws: each real server's
// share of the frames sent to real servers, window by window of the trace's time,
// and the pipeline's ns/packet batch by batch.
type replayPlot struct {
	tr     *bench.Trace
	names  []string         // real servers, in config order
	byMAC  map[ipvs.MAC]int // a real server's pinned MAC → its index in names
	window int              // frames per share point
	counts []int            // frames sent to each real server in the current window
	share  [][2][]float64   // per real server: x (s), y (share)
	nsX    []float64        // per batch: trace time (s)
	nsY    []float64        // per batch: ns/packet
	last   int              // frames replayed at the end of the previous batch
	next   int              // frames replayed at which the current window ends
	t0     int64            // the trace's first timestamp
}

// maxSharePoints bounds the share chart: windows of at least a batch, at most
// this many of them.
const maxSharePoints = 200

// newReplayPlot prepares the plot of replaying tr with the real servers of cfg,
// told apart by their pinned MACs (replay requires them).
func newReplayPlot(cfg *config.Config, tr *bench.Trace, batch int) *replayPlot {
	p := &replayPlot{tr: tr, byMAC: map[ipvs.MAC]int{}}
	for _, s := range cfg.Services {
		for _, r := range s.RealServers {
			if r.MAC.IsZero() {
				continue
			}
			if _, ok := p.byMAC[r.MAC]; ok {
				continue // the same host behind several services: one line
			}
			p.byMAC[r.MAC] = len(p.names)
			p.names = append(p.names, r.Addr.Addr().String())
		}
	}
	p.counts = make([]int, len(p.names))
	p.window = max(batch, (len(tr.Frames)+maxSharePoints-1)/maxSharePoints)
	// Room for every point up front: batch runs inside the replay, whose
	// allocations per packet must stay the pipeline's own.
	batches, windows := (len(tr.Frames)+batch-1)/batch, (len(tr.Frames)+p.window-1)/p.window+1
	p.nsX, p.nsY = make([]float64, 0, batches), make([]float64, 0, batches)
	p.share = make([][2][]float64, len(p.names))
	for k := range p.share {
		p.share[k] = [2][]float64{make([]float64, 0, windows), make([]float64, 0, windows)}
	}
	p.next = p.window
	if len(tr.Times) > 0 {
		p.t0 = tr.Times[0]
	}
	return p
}

// batch takes one batch's result (bench.ReplayOptions.AfterBatch).
func (p *replayPlot) batch(done int, took time.Duration, out []dataplane.Frame) {
	n := done - p.last
	p.last = done
	at := p.seconds(done - 1)
	if n > 0 {
		p.nsX = append(p.nsX, at)
		p.nsY = append(p.nsY, float64(took.Nanoseconds())/float64(n))
	}
	for i := range out {
		b := out[i].Bytes()
		if len(b) < 6 {
			continue
		}
		if k, ok := p.byMAC[ipvs.MAC(b[:6])]; ok {
			p.counts[k]++
		}
	}
	if done >= p.next || done == len(p.tr.Frames) {
		total := 0
		for _, c := range p.counts {
			total += c
		}
		if total > 0 {
			for k, c := range p.counts {
				p.share[k][0] = append(p.share[k][0], at)
				p.share[k][1] = append(p.share[k][1], float64(c)/float64(total))
			}
		}
		clear(p.counts)
		p.next = done + p.window
	}
}

// seconds is frame i's time after the trace's first frame.
func (p *replayPlot) seconds(i int) float64 {
	if i < 0 || i >= len(p.tr.Times) {
		return 0
	}
	return float64(p.tr.Times[i]-p.t0) / 1e9
}

// write draws the plot into path as SVG.
func (p *replayPlot) write(path, title string) error {
	share := plot.Chart{Title: "share of the frames sent to real servers, per window of " + fmt.Sprint(p.window) + " frames",
		XLabel: "trace time (s)", YLabel: "share", YFromZero: true, YFormat: plot.Percent}
	for k, name := range p.names {
		share.Series = append(share.Series, plot.Series{Name: name, X: p.share[k][0], Y: p.share[k][1]})
	}
	ns := plot.Chart{Title: "pipeline ns/packet, per batch", XLabel: "trace time (s)", YLabel: "ns/packet", YFromZero: true,
		Series: []plot.Series{{Name: "ns/packet", X: p.nsX, Y: p.nsY}}}
	if m := median(p.nsY); m > 0 {
		ns.Series = append(ns.Series, plot.Series{Name: fmt.Sprintf("median %.0f", m), X: []float64{first(p.nsX), last(p.nsX)}, Y: []float64{m, m}})
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := plot.Write(f, title, share, ns); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func first(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return v[0]
}

func last(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return v[len(v)-1]
}
