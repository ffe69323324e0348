package bench

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/ipvs"
)

func synthTrace(t testing.TB, o SynthOptions) *Trace {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Synth(&buf, o); err != nil {
		t.Fatal(err)
	}
	tr, err := LoadTrace(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

var naiveRS = [][6]byte{{2, 0, 0, 0, 0, 5}, {2, 0, 0, 0, 0, 6}, {2, 0, 0, 0, 0, 7}}

// TestNaive checks the comparator does what it claims, so the baseline is an honest
// one: every packet forwarded with its TTL one lower and a valid IPv4 checksum (gopacket
// decodes and verifies), flows spread round-robin, and a flow's packets up to its FIN
// on one real server.
func TestNaive(t *testing.T) {
	o := DefaultSynth()
	o.Flows, o.PacketsPerFlow = 90, 6
	tr := synthTrace(t, o)
	orig := tr.Clone()
	n := NewNaive(naiveRS, [6]byte{2, 0, 0, 0, 0, 3})
	out := n.Process(tr.Frames, nil)
	if len(out) != len(tr.Frames) || n.Dropped != 0 {
		t.Fatalf("forwarded %d of %d, dropped %d", len(out), len(tr.Frames), n.Dropped)
	}
	perRS := map[string]int{}
	flowRS := map[string]string{}
	for i, f := range out {
		p := gopacket.NewPacket(f.Bytes(), layers.LayerTypeEthernet, gopacket.Default)
		ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		was := gopacket.NewPacket(orig.Frames[i].Bytes(), layers.LayerTypeEthernet, gopacket.Default).Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if ip.TTL != was.TTL-1 {
			t.Fatalf("frame %d: TTL %d, was %d", i, ip.TTL, was.TTL)
		}
		check := append([]byte(nil), ip.Contents...)
		if header.Checksum(check, 0) != 0xffff {
			t.Fatalf("frame %d: IPv4 header checksum wrong after the TTL update", i)
		}
		eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		if eth.SrcMAC.String() != "02:00:00:00:00:03" {
			t.Fatalf("frame %d: source MAC %v", i, eth.SrcMAC)
		}
		tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		flow := ip.SrcIP.String() + ":" + tcp.SrcPort.String()
		rs := eth.DstMAC.String()
		if tcp.SYN {
			perRS[rs]++
			flowRS[flow] = rs
		} else if got, ok := flowRS[flow]; ok && got != rs {
			t.Fatalf("frame %d of flow %s went to %s, its SYN to %s", i, flow, rs, got)
		}
		if tcp.FIN || tcp.RST {
			delete(flowRS, flow) // the naive balancer forgets the flow here
		}
	}
	// Round-robin per new map entry: a flow's last ACK after its FIN is a new entry to
	// the naive balancer and takes a turn too, so the SYNs spread within a few.
	lo, hi := len(tr.Frames), 0
	for _, n := range perRS {
		lo, hi = min(lo, n), max(hi, n)
	}
	if len(perRS) != 3 || hi-lo > 3 {
		t.Fatalf("round-robin over 3 servers of 90 flows: %v", perRS)
	}
}

// BenchmarkReplayVsNaive replays gvs bench synth's default trace (10 packets per
// flow, 1,024 flows open at once) through the Director (wlc, the default, and rr, the
// naive balancer's policy; DR) and through the naive comparator, in the same process
// on the same bytes: the ratio of their ns/packet is what IPVS's semantics cost.
// Each round builds a fresh Director or comparator (as each gvs bench replay
// --baseline starts) and times the replay alone (replayRounds).
func BenchmarkReplayVsNaive(b *testing.B) {
	pristine := synthTrace(b, DefaultSynth())
	for _, sch := range []string{"wlc", "rr"} {
		b.Run("gvs-"+sch, func(b *testing.B) { replayRounds(b, pristine, gvsReplay(b, sch)) })
	}
	b.Run("naive", func(b *testing.B) { replayRounds(b, pristine, naiveReplay()) })
}

// BenchmarkReplayFlowLength splits BenchmarkReplayVsNaive's cost into what a flow
// costs once and what each of its packets costs: the default trace's 10,000 packets
// cut into flows of 4, 10 and 40 packets (1,024 open at once, as in the default), each
// replayed through gvs (wlc, DR) and the naive comparator as BenchmarkReplayVsNaive
// does. A fit of cpu-ns/packet = perPacket + perFlow/length over the three lengths
// gives both: the per-packet part is what a cached packet costs (a flow's SYN, first
// ACK and FIN are the table's, the rest the flow cache's), the per-flow part what
// scheduling, inserting and the two state changes add to a flow.
func BenchmarkReplayFlowLength(b *testing.B) {
	for _, n := range []int{4, 10, 40} {
		o := DefaultSynth()
		o.PacketsPerFlow, o.Flows = n, 10000/n
		pristine := synthTrace(b, o)
		b.Run(fmt.Sprintf("gvs-wlc/len=%d", n), func(b *testing.B) { replayRounds(b, pristine, gvsReplay(b, "wlc")) })
		b.Run(fmt.Sprintf("naive/len=%d", n), func(b *testing.B) { replayRounds(b, pristine, naiveReplay()) })
	}
}

// gvsReplay returns a builder of replays of a trace through a fresh Director with
// one service on scheduler sch (demoDirector) and one worker, in batches of 64.
func gvsReplay(b *testing.B, sch string) func() func(tr *Trace) {
	out := make([]dataplane.Frame, 0, 128)
	return func() func(tr *Trace) {
		w := demoDirector(b, ipvs.DR, sch).NewWorker(64)
		return func(tr *Trace) {
			for i := 0; i < len(tr.Frames); i += 64 {
				j := min(i+64, len(tr.Frames))
				out = w.Process(tr.Frames[i:j], tr.Times[i], out[:0])
			}
		}
	}
}

// naiveReplay returns a builder of replays through a fresh naive comparator.
func naiveReplay() func() func(tr *Trace) {
	out := make([]dataplane.Frame, 0, 64)
	return func() func(tr *Trace) {
		n := NewNaive(naiveRS, [6]byte{2, 0, 0, 0, 0, 3})
		return func(tr *Trace) {
			for i := 0; i < len(tr.Frames); i += 64 {
				out = n.Process(tr.Frames[i:min(i+64, len(tr.Frames))], out[:0])
			}
		}
	}
}

// replayRounds times b.N replays of pristine, each by a fresh replay from build:
// untimed, it builds the replay, collects the garbage of earlier rounds (as Replay
// and ReplayNaive do before their timed loop: otherwise a GC cycle started by one
// round's setup — a Director's table is megabytes — runs inside the timed replay),
// and restores the pristine frames; then only the replay is timed. Allocations are
// counted in the timed part only (the comparator's map grows there). cpu-ns/packet is
// the same time on the thread's CPU clock, which other processes on a shared machine
// do not inflate.
func replayRounds(b *testing.B, pristine *Trace, build func() func(tr *Trace)) {
	tr := pristine.Clone()
	var spent time.Duration
	var cpu int64
	defer lockThread()()
	b.ReportAllocs()
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		replay := build()
		runtime.GC()
		tr.CopyFrom(pristine)
		b.StartTimer()
		start, c0 := time.Now(), threadCPU()
		replay(tr)
		cpu += threadCPU() - c0
		spent += time.Since(start)
		b.StopTimer()
	}
	b.ReportMetric(float64(spent.Nanoseconds())/float64(b.N*len(pristine.Frames)), "ns/packet")
	b.ReportMetric(float64(cpu)/float64(b.N*len(pristine.Frames)), "cpu-ns/packet")
	b.ReportMetric(0, "ns/op")
}
