package bench

import (
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/ipvssync"
)

// BenchmarkReplaySync is what cluster sync costs the data path (issue 14: at most 5 ns
// a packet): gvs bench synth's default trace (DR, wlc) replayed with sync off and on
// (ipvssync.DefaultRules). Every round replays the trace both ways, back to back, in
// alternating order, so a slower or busier stretch of a shared machine weighs on both
// variants alike; the off-, on- and diff- metrics are the sums over all rounds (diff:
// on minus off, per packet). Only Process is timed, batch by batch, on clock reads of
// its own (starting and stopping the benchmark's timer per batch reads the memory
// statistics, which stops the world; the benchmark's timer runs over whole rounds,
// setup included, and only sizes b.N). The sync-event rings are drained once per
// replay, after it and untimed (the daemon's drainer runs every 5 ms on another core;
// a drain between batches on the worker's own core would warm its caches with the
// entries the drainer reads). Each replay builds a fresh Director, untimed. allocs/packet counts the replay loops'
// allocations, drains included. cpu-ns/packet is the same time on the thread's CPU
// clock, which other processes on a shared machine do not inflate (it includes the
// clock reads, about 1 ns a packet, in both variants). diff-cpu-ns/packet-median is
// the median over the rounds of each round's own on minus off: a sum (a mean) carries
// whole an interrupt or a steal that lands on one side of one round, which a median
// does not; it measures the same time, and only weighs the outliers differently.
func BenchmarkReplaySync(b *testing.B) {
	pristine := synthTrace(b, DefaultSynth())
	tr := pristine.Clone()
	out := make([]dataplane.Frame, 0, 128)
	defer lockThread()()
	var spent, cpu [2]int64 // [off, on]
	var mallocs uint64
	var ms0, ms1 runtime.MemStats
	events := 0
	replay := func(on bool) {
		d := demoDirector(b, ipvs.DR, "wlc")
		v := 0
		if on {
			v = 1
			o := d.Options()
			r := ipvssync.DefaultRules()
			o.Sync = &r
			if err := d.SetOptions(o); err != nil {
				b.Fatal(err)
			}
		}
		w := d.NewWorker(64)
		runtime.GC()
		tr.CopyFrom(pristine)
		runtime.ReadMemStats(&ms0)
		for j := 0; j < len(tr.Frames); j += 64 {
			k := min(j+64, len(tr.Frames))
			start, c0 := time.Now(), threadCPU()
			out = w.Process(tr.Frames[j:k], tr.Times[j], out[:0])
			cpu[v] += threadCPU() - c0
			spent[v] += time.Since(start).Nanoseconds()
		}
		events += d.DrainSync(1<<20, func(*conntrack.Conn) {})
		runtime.ReadMemStats(&ms1)
		mallocs += ms1.Mallocs - ms0.Mallocs
		if st := d.SyncStats(); st.Dropped != 0 {
			b.Fatalf("sync events dropped: %+v", st)
		}
	}
	rounds := make([]float64, b.N) // each round's on minus off, cpu-ns a packet
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		order := []bool{false, true}
		if i%2 == 1 {
			slices.Reverse(order)
		}
		before := cpu[1] - cpu[0]
		for _, on := range order {
			replay(on)
		}
		rounds[i] = float64(cpu[1]-cpu[0]-before) / float64(len(pristine.Frames))
	}
	slices.Sort(rounds)
	if events < b.N*DefaultSynth().Flows/2 {
		b.Fatalf("%d sync events for %d rounds of %d flows", events, b.N, DefaultSynth().Flows)
	}
	per := func(ns int64) float64 { return float64(ns) / float64(b.N*len(pristine.Frames)) }
	b.ReportMetric(per(spent[0]), "off-ns/packet")
	b.ReportMetric(per(spent[1]), "on-ns/packet")
	b.ReportMetric(per(spent[1]-spent[0]), "diff-ns/packet")
	b.ReportMetric(per(cpu[0]), "off-cpu-ns/packet")
	b.ReportMetric(per(cpu[1]), "on-cpu-ns/packet")
	b.ReportMetric(per(cpu[1]-cpu[0]), "diff-cpu-ns/packet")
	b.ReportMetric(medianSorted(rounds), "diff-cpu-ns/packet-median")
	b.ReportMetric(float64(events)/float64(b.N), "events/round")
	b.ReportMetric(float64(mallocs)/float64(2*b.N*len(pristine.Frames)), "allocs/packet")
	b.ReportMetric(0, "ns/op")
}
