package bench

import (
	"bytes"
	"flag"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/sched"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestSynthIsDeterministicAndDecodes(t *testing.T) {
	o := DefaultSynth()
	o.Flows, o.Clients, o.PacketsPerFlow = 50, 7, 6
	var a, b bytes.Buffer
	n, err := Synth(&a, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Synth(&b, o); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the same seed gave different traces")
	}
	if n != 50*6 {
		t.Fatalf("%d packets, want %d", n, 50*6)
	}
	r, err := pcapgo.NewReader(bytes.NewReader(a.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	syns, fins := 0, 0
	flows := map[string]int{}
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		if el := p.ErrorLayer(); el != nil {
			t.Fatalf("gopacket: %v", el.Error())
		}
		tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		key := ip.SrcIP.String() + ":" + tcp.SrcPort.String()
		if flows[key] == 0 && !tcp.SYN {
			t.Fatalf("flow %s starts without SYN", key)
		}
		flows[key]++
		if tcp.SYN {
			syns++
		}
		if tcp.FIN {
			fins++
		}
	}
	if len(flows) != 50 || syns != 50 || fins != 50 {
		t.Fatalf("flows %d syns %d fins %d, want 50 each", len(flows), syns, fins)
	}
}

func TestSynthRejectsBadOptions(t *testing.T) {
	for _, mod := range []func(*SynthOptions){
		func(o *SynthOptions) { o.Flows = 0 },
		func(o *SynthOptions) { o.Clients = -1 },
		func(o *SynthOptions) { o.Proto = "sctp" },
		func(o *SynthOptions) { o.VIP = netip.AddrPort{} },
		func(o *SynthOptions) { o.Replies = true },
	} {
		o := DefaultSynth()
		mod(&o)
		if _, err := Synth(&bytes.Buffer{}, o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}

func demoDirector(t testing.TB, method ipvs.Method, scheduler string) *dataplane.Director {
	t.Helper()
	o := dataplane.DefaultOptions()
	o.MAC = net.HardwareAddr{2, 0, 0, 0, 0, 3}
	o.GatewayMAC = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	o.Addr4 = netip.MustParseAddr("198.18.0.3")
	o.ConnMax = 1 << 18
	rng := rand.New(rand.NewPCG(7, 7))
	o.Rand = func(n uint32) uint32 { return rng.Uint32N(n) }
	d, err := dataplane.New(o)
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(80)
	if method == ipvs.NAT {
		port = 8080
	}
	var rs []ipvs.RealServer
	for i := range 3 {
		rs = append(rs, ipvs.RealServer{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(5 + i)}), port), Weight: int32(i + 1), MAC: ipvs.MAC{2, 0, 0, 0, 0, byte(5 + i)}, Method: method})
	}
	if err := d.Apply([]ipvs.Service{{Key: ipvs.AddrKey(ipvs.TCP, netip.MustParseAddrPort("198.18.0.100:80")), Scheduler: scheduler, RealServers: rs}}); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestGoldenReplay replays the committed trace testdata/golden-nat.pcap (how it was
// made: testdata/README.md) through a NAT director with wrr and compares the frames
// it sends with testdata/golden-nat.out.pcap, and the per-server split with
// testdata/golden-nat.txt. Run with -update after an intended change.
func TestGoldenReplay(t *testing.T) {
	in := filepath.Join("testdata", "golden-nat.pcap")
	if *update {
		d := demoDirector(t, ipvs.NAT, "wrr")
		w := d.NewWorker(1)
		buf := make([]byte, dataplane.Headroom+2048)
		var outs []dataplane.Frame
		o := DefaultSynth()
		o.Flows, o.Clients, o.PacketsPerFlow, o.Concurrent, o.Replies = 12, 4, 5, 4, true
		o.Forward = func(frame []byte, ts time.Time) ([]byte, bool) {
			n := copy(buf[dataplane.Headroom:], frame)
			outs = w.Process([]dataplane.Frame{{Buf: buf, Off: dataplane.Headroom, Len: n}}, ts.UnixNano(), outs[:0])
			if len(outs) == 0 {
				return nil, false
			}
			return outs[0].Bytes(), true
		}
		var tr bytes.Buffer
		if _, err := Synth(&tr, o); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(in, tr.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr, err := LoadTrace(f)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	wf, err := PcapWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Replay(demoDirector(t, ipvs.NAT, "wrr"), tr, ReplayOptions{Batch: 8, Out: wf})
	if err != nil {
		t.Fatal(err)
	}
	var summary bytes.Buffer
	for _, s := range res.Services {
		summary.WriteString(s.Service + " " + s.Scheduler + "\n")
		for _, r := range s.RealServers {
			summary.WriteString(r.Addr + " " + r.Method + " " + itoa(r.Stats.Conns) + " conns " + itoa(r.Stats.InPkts) + " in " + itoa(r.Stats.OutPkts) + " out\n")
		}
	}
	for i, n := range res.Counters.Reasons {
		if n > 0 {
			summary.WriteString("drop " + dataplane.Reason(i).String() + " " + itoa(n) + "\n")
		}
	}
	golden(t, filepath.Join("testdata", "golden-nat.out.pcap"), out.Bytes())
	golden(t, filepath.Join("testdata", "golden-nat.txt"), summary.Bytes())
	if res.Counters.Forwarded != uint64(res.Packets) {
		t.Errorf("forwarded %d of %d packets", res.Counters.Forwarded, res.Packets)
	}
}

func itoa(n uint64) string { return string(appendUint(nil, n)) }

func appendUint(b []byte, n uint64) []byte {
	if n >= 10 {
		b = appendUint(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the replay's output (run go test ./bench -run TestGoldenReplay -update after an intended change)\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestReplaySplitPerScheduler is the README's table: the same trace through each
// scheduler, checking the split each one must produce.
func TestReplaySplitPerScheduler(t *testing.T) {
	o := DefaultSynth()
	o.Flows, o.Clients, o.PacketsPerFlow, o.Concurrent = 600, 60, 4, 1
	var tr bytes.Buffer
	if _, err := Synth(&tr, o); err != nil {
		t.Fatal(err)
	}
	for _, name := range sched.Names() {
		t.Run(name, func(t *testing.T) {
			trace, err := LoadTrace(bytes.NewReader(tr.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			res, err := Replay(demoDirector(t, ipvs.DR, name), trace, ReplayOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var total uint64
			conns := map[string]uint64{}
			for _, r := range res.Services[0].RealServers {
				total += r.Stats.Conns
				conns[r.Addr] = r.Stats.Conns
			}
			t.Logf("%s: w1 %d, w2 %d, w3 %d", name, conns["198.18.0.5:80"], conns["198.18.0.6:80"], conns["198.18.0.7:80"])
			if total != 600 {
				t.Fatalf("%d connections scheduled, want 600 (drops %v)", total, res.Counters.Reasons)
			}
			switch name {
			case "rr":
				for a, n := range conns {
					if n != 200 {
						t.Errorf("rr gave %s %d connections, want 200", a, n)
					}
				}
			case "wrr":
				// weights 1, 2, 3 over 600 connections
				for a, want := range map[string]uint64{"198.18.0.5:80": 100, "198.18.0.6:80": 200, "198.18.0.7:80": 300} {
					if conns[a] != want {
						t.Errorf("wrr gave %s %d connections, want %d", a, conns[a], want)
					}
				}
			case "fo":
				if conns["198.18.0.7:80"] != 600 {
					t.Errorf("fo must send everything to the heaviest server: %v", conns)
				}
			}
		})
	}
}
