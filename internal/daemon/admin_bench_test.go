package daemon

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/control"
	"github.com/gvs-lb/gvs/internal/testutil"
)

// admTable is a restore stream of n TCP services on distinct VIPs of
// 198.18.0.0/15, each with one real server.
func admTable(n int) string {
	var b strings.Builder
	for i := range n {
		vip := fmt.Sprintf("198.18.%d.%d:80", 64+i/250, 1+i%250)
		fmt.Fprintf(&b, "-A -t %s -s rr\n-a -t %s -r 198.19.0.%d:80 -g -w 1\n", vip, vip, 1+i%250)
	}
	return b.String()
}

// BenchmarkAdmAdd measures one gvs adm -A (a new service, then its -D, so the
// table keeps its size) on a director that already runs 10, 1,000 or 10,000 services:
// an adm change must cost what it changes, not what the table holds.
func BenchmarkAdmAdd(b *testing.B) {
	for _, n := range []int{10, 1000, 10_000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			ta := admBenchDirector(b, n)
			defer reportCPU(b)()
			for i := range b.N {
				vip := fmt.Sprintf("198.18.200.%d:80", 1+i%250)
				admBenchRun(b, ta, "-A -t "+vip+" -s rr", "-D -t "+vip)
			}
		})
	}
}

// BenchmarkAdmScript measures what a script pays per service when it adds services
// one by one and removes them later: 250 -A of new services in a row, then their
// 250 -D, on a director that already runs 10 or 10,000 services; an op is one -A
// and its share of the -Ds. Unlike BenchmarkAdmAdd's -A and -D of the same service
// back to back, every add here stays until its batch is removed, so the adds reach
// the Director's tables' pages (not only a generation's delta of recent adds) and the
// deletes write them again. add-ns/op and add-cpu-ns/op are the adds' share alone
// (wall and process CPU time), del-ns/op the removals'.
func BenchmarkAdmScript(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			ta := admBenchDirector(b, n)
			vip := func(i int) string { return fmt.Sprintf("198.18.200.%d:80", 1+i%250) }
			defer reportCPU(b)()
			// The adds' and the removals' shares apart, each batch's spans timed
			// whole (a clock read per command would add its own cost to both).
			var add, addCPU, del int64
			w0, c0 := time.Now(), processCPU()
			for i := range b.N {
				admBenchRun(b, ta, "-A -t "+vip(i)+" -s rr")
				if i%250 == 249 || i == b.N-1 {
					w1, c1 := time.Now(), processCPU()
					add += int64(w1.Sub(w0))
					addCPU += c1 - c0
					for j := i - i%250; j <= i; j++ {
						admBenchRun(b, ta, "-D -t "+vip(j))
					}
					w0, c0 = time.Now(), processCPU()
					del += int64(w0.Sub(w1))
				}
			}
			b.ReportMetric(float64(add)/float64(b.N), "add-ns/op")
			b.ReportMetric(float64(addCPU)/float64(b.N), "add-cpu-ns/op")
			b.ReportMetric(float64(del)/float64(b.N), "del-ns/op")
		})
	}
}

// BenchmarkAdmAddServed measures what a script adding services one by one does
// per service: -A, then -a of its first real server (the service becomes live:
// track_service's liveness changes), at 10 and 10,000 services (and -D, so the
// table keeps its size).
func BenchmarkAdmAddServed(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			ta := admBenchDirector(b, n)
			for i := range b.N {
				vip := fmt.Sprintf("198.18.200.%d:80", 1+i%250)
				rs := fmt.Sprintf("198.19.0.%d:80", 1+i%min(n, 250)) // resolved already
				admBenchRun(b, ta, "-A -t "+vip+" -s rr", "-a -t "+vip+" -r "+rs+" -g -w 1", "-D -t "+vip)
			}
		})
	}
}

// BenchmarkAdmServer measures a gvs adm -a, -e and -d of a NAT real server (its
// address resolved already; NAT keeps its port, and puts it in the links'
// filter) of one of 10 or 10,000 services.
func BenchmarkAdmServer(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			ta := admBenchDirector(b, n)
			for i := range b.N {
				k := i % n
				svc := fmt.Sprintf("-t 198.18.%d.%d:80", 64+k/250, 1+k%250)
				rs := fmt.Sprintf(" -r 198.19.0.%d:8080", 1+k%250)
				admBenchRun(b, ta, "-a "+svc+rs+" -m -w 1", "-e "+svc+rs+" -m -w 2", "-d "+svc+rs)
			}
		})
	}
}

// BenchmarkAdmGC measures a forced collection's CPU time (cpu-ns/op) on a
// director that runs 10 or 10,000 services: what the collector marks of each
// service, which a gvs adm command pays a share of at every cycle its
// allocations bring.
func BenchmarkAdmGC(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			ta := admBenchDirector(b, n)
			admBenchRun(b, ta, "-A -t 198.18.200.1:80 -s rr", "-D -t 198.18.200.1:80")
			runtime.GC()
			b.ResetTimer()
			defer reportCPU(b)()
			for range b.N {
				runtime.GC()
			}
			b.StopTimer()
			reportScan(b)
		})
	}
}

// reportScan reports, as of the last collection, the heap the collector scans
// (scan-heap-B: the objects that may hold pointers, up to their last pointer
// word) and the live heap (live-heap-B): what each cycle marks of the director.
func reportScan(b *testing.B) {
	s := []metrics.Sample{{Name: "/gc/scan/heap:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	b.ReportMetric(float64(s[0].Value.Uint64()), "scan-heap-B")
	b.ReportMetric(float64(s[1].Value.Uint64()), "live-heap-B")
}

// admBenchDirector is a benchmark's director running admTable(n), its real
// servers' MACs resolved, with the timer reset.
func admBenchDirector(b *testing.B, n int) *testAdmin {
	ta := newBenchDirector(b)
	if r := ta.d.Handle(context.Background(), controlReqIn(admTable(n), "-R --atomic")); r.Status != 0 {
		b.Fatalf("restore of %d services: %+v", n, r)
	}
	if got := len(ta.d.Director().Services()); got != n {
		b.Fatalf("%d services after the restore, want %d", got, n)
	}
	// The restore's real servers are being resolved; each answer re-applies
	// the table (reapply). Time the adm commands alone.
	testutil.Eventually(b, time.Minute, func() bool {
		p := ta.d.pub.Load()
		return p != nil && len(p.resolving) == 0
	}, "the MAC resolutions of the restore's real servers")
	b.ReportAllocs()
	b.ResetTimer()
	return ta
}

// reportCPU starts counting the process's CPU time; the function it returns
// reports it per op (cpu-ns/op): on a machine shared with other work, the wall
// clock counts the time other processes ran, the CPU time does not. It reports
// the garbage collector's share of it too (gc-cpu-ns/op, the runtime's estimate
// of its mark, assist and pause CPU time, which it updates at each cycle's end)
// and the cycles that ended per 1,000 ops (gc/kop): what a command pays for
// the collector's marking of everything the director keeps.
func reportCPU(b *testing.B) func() {
	start := processCPU()
	gcStart, cyclesStart := gcCPU()
	return func() {
		if end := processCPU(); start > 0 && end > start {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
		gcEnd, cyclesEnd := gcCPU()
		b.ReportMetric((gcEnd-gcStart)*1e9/float64(b.N), "gc-cpu-ns/op")
		b.ReportMetric(float64(cyclesEnd-cyclesStart)*1000/float64(b.N), "gc/kop")
	}
}

// gcCPU is the collector's CPU time so far in seconds and the cycles it has
// completed, from runtime/metrics.
func gcCPU() (float64, uint64) {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Float64(), s[1].Value.Uint64()
}

// admBenchRun runs gvs adm command lines that must succeed.
func admBenchRun(b *testing.B, ta *testAdmin, lines ...string) {
	for _, line := range lines {
		if r := ta.d.Handle(context.Background(), controlReq(line)); r.Status != 0 {
			b.Fatalf("%s: %+v", line, r)
		}
	}
}

// controlReqIn is controlReq with a standard input (a restore stream).
func controlReqIn(stdin, line string) control.Request {
	r := controlReq(line)
	r.Stdin = stdin
	return r
}
