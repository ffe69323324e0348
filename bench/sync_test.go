package bench

import (
	"runtime"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/ipvssync"
)

// BenchmarkReplaySync is what cluster sync costs the data path (issue 14: at most 5 ns
// a packet): gvs bench synth's default trace (DR, wlc) replayed with sync off and on
// (ipvssync.DefaultRules). Only Process is timed, batch by batch (the benchmark's own
// timer stays stopped: starting and stopping it per batch reads the memory statistics,
// which stops the world); the sync-event rings are drained between batches, outside
// the timing, as the daemon's drainer does on another core. Each round builds a fresh
// Director, untimed. allocs/packet counts the replay loop's allocations, drains
// included. cpu-ns/packet is the same time on the thread's CPU clock, which other
// processes on a shared machine do not inflate (it includes the clock reads, about
// 1 ns a packet, in both variants).
func BenchmarkReplaySync(b *testing.B) {
	pristine := synthTrace(b, DefaultSynth())
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			tr := pristine.Clone()
			out := make([]dataplane.Frame, 0, 128)
			var spent time.Duration
			var cpu int64
			defer lockThread()()
			var mallocs uint64
			var ms0, ms1 runtime.MemStats
			events := 0
			b.StopTimer()
			for i := 0; i < b.N; i++ {
				d := demoDirector(b, ipvs.DR, "wlc")
				if on {
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
					cpu += threadCPU() - c0
					spent += time.Since(start)
					events += d.DrainSync(1<<20, func(*conntrack.Conn) {})
				}
				runtime.ReadMemStats(&ms1)
				mallocs += ms1.Mallocs - ms0.Mallocs
				if st := d.SyncStats(); st.Dropped != 0 {
					b.Fatalf("sync events dropped: %+v", st)
				}
			}
			if on && events < b.N*DefaultSynth().Flows/2 {
				b.Fatalf("%d sync events for %d rounds of %d flows", events, b.N, DefaultSynth().Flows)
			}
			b.ReportMetric(float64(spent.Nanoseconds())/float64(b.N*len(pristine.Frames)), "ns/packet")
			b.ReportMetric(float64(cpu)/float64(b.N*len(pristine.Frames)), "cpu-ns/packet")
			b.ReportMetric(float64(events)/float64(b.N), "events/round")
			b.ReportMetric(float64(mallocs)/float64(b.N*len(pristine.Frames)), "allocs/packet")
			b.ReportMetric(0, "ns/op")
		})
	}
}
