package bench

import (
	"bytes"
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
// Each round starts from the pristine frames and a fresh Director or comparator (made
// outside the timed part), as each gvs bench replay --baseline does.
func BenchmarkReplayVsNaive(b *testing.B) {
	pristine := synthTrace(b, DefaultSynth())
	run := func(b *testing.B, replay func(tr *Trace, round int) time.Duration) {
		tr := pristine.Clone()
		var spent time.Duration
		b.ReportAllocs()
		b.ResetTimer()
		b.StopTimer()
		for i := 0; i < b.N; i++ {
			tr.CopyFrom(pristine)
			spent += replay(tr, i)
		}
		b.ReportMetric(float64(spent.Nanoseconds())/float64(b.N*len(pristine.Frames)), "ns/packet")
		b.ReportMetric(0, "ns/op")
	}
	for _, sch := range []string{"wlc", "rr"} {
		b.Run("gvs-"+sch, func(b *testing.B) {
			out := make([]dataplane.Frame, 0, 128)
			run(b, func(tr *Trace, _ int) time.Duration {
				// A fresh Director each round, as each gvs bench replay starts.
				w := demoDirector(b, ipvs.DR, sch).NewWorker(64)
				b.StartTimer()
				start := time.Now()
				for i := 0; i < len(tr.Frames); i += 64 {
					j := min(i+64, len(tr.Frames))
					out = w.Process(tr.Frames[i:j], tr.Times[i], out[:0])
				}
				spent := time.Since(start)
				b.StopTimer()
				return spent
			})
		})
	}
	b.Run("naive", func(b *testing.B) {
		out := make([]dataplane.Frame, 0, 64)
		run(b, func(tr *Trace, _ int) time.Duration {
			n := NewNaive(naiveRS, [6]byte{2, 0, 0, 0, 0, 3}) // fresh, as the Director
			b.StartTimer()
			start := time.Now()
			for i := 0; i < len(tr.Frames); i += 64 {
				out = n.Process(tr.Frames[i:min(i+64, len(tr.Frames))], out[:0])
			}
			spent := time.Since(start)
			b.StopTimer()
			return spent
		})
	})
}
