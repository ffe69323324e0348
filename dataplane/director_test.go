package dataplane

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/dataplane/internal/frametest"
	"github.com/gvs-lb/gvs/ipvs"
)

var (
	dtClientMAC = net.HardwareAddr{2, 0, 0, 0, 0, 2}
	dtDirMAC    = net.HardwareAddr{2, 0, 0, 0, 0, 3}
	dtRS1MAC    = net.HardwareAddr{2, 0, 0, 0, 0, 5}
	dtRS2MAC    = net.HardwareAddr{2, 0, 0, 0, 0, 6}
	dtGwMAC     = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	dtVIP       = netip.MustParseAddr("198.18.0.100")
	dtRS1       = netip.MustParseAddr("198.18.0.5")
	dtRS2       = netip.MustParseAddr("198.18.0.6")
	dtClient    = netip.MustParseAddr("198.19.0.7")
)

const sec = int64(time.Second)

// dtPkt describes a test frame built with gopacket (the independent encoder).
type dtPkt struct {
	srcMAC, dstMAC net.HardwareAddr
	src, dst       netip.Addr
	sport, dport   uint16
	udp            bool
	syn, ack, fin  bool
	rst            bool
	ttl            uint8
	df             bool
	tos            uint8
	plen           int
}

func (p dtPkt) frame(t testing.TB) []byte {
	t.Helper()
	if p.srcMAC == nil {
		p.srcMAC = dtClientMAC
	}
	if p.dstMAC == nil {
		p.dstMAC = dtDirMAC
	}
	if p.ttl == 0 {
		p.ttl = 64
	}
	eth := &layers.Ethernet{SrcMAC: p.srcMAC, DstMAC: p.dstMAC}
	var nl gopacket.NetworkLayer
	ls := []gopacket.SerializableLayer{eth}
	proto := layers.IPProtocolTCP
	if p.udp {
		proto = layers.IPProtocolUDP
	}
	if p.src.Is6() {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip := &layers.IPv6{Version: 6, HopLimit: p.ttl, TrafficClass: p.tos, NextHeader: proto, SrcIP: p.src.AsSlice(), DstIP: p.dst.AsSlice()}
		nl = ip
		ls = append(ls, ip)
	} else {
		eth.EthernetType = layers.EthernetTypeIPv4
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: p.ttl, TOS: p.tos, Protocol: proto, Id: 7, SrcIP: p.src.AsSlice(), DstIP: p.dst.AsSlice()}
		if p.df {
			ip.Flags = layers.IPv4DontFragment
		}
		nl = ip
		ls = append(ls, ip)
	}
	if p.udp {
		u := &layers.UDP{SrcPort: layers.UDPPort(p.sport), DstPort: layers.UDPPort(p.dport)}
		u.SetNetworkLayerForChecksum(nl)
		ls = append(ls, u)
	} else {
		tc := &layers.TCP{SrcPort: layers.TCPPort(p.sport), DstPort: layers.TCPPort(p.dport), SYN: p.syn, ACK: p.ack, FIN: p.fin, RST: p.rst, Seq: 1000, Window: 512}
		tc.SetNetworkLayerForChecksum(nl)
		ls = append(ls, tc)
	}
	ls = append(ls, gopacket.Payload(bytes.Repeat([]byte{'x'}, p.plen)))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// inFrame copies a frame into a buffer with headroom.
func inFrame(b []byte) Frame {
	buf := make([]byte, Headroom+len(b))
	copy(buf[Headroom:], b)
	return Frame{Buf: buf, Off: Headroom, Len: len(b)}
}

type harness struct {
	t *testing.T
	d *Director
	w *Worker
}

func newHarness(t *testing.T, opts Options, svcs ...ipvs.Service) *harness {
	t.Helper()
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Apply(svcs); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, d: d, w: d.NewWorker(64)}
}

func testOptions() Options {
	o := DefaultOptions()
	o.MAC = dtDirMAC
	o.GatewayMAC = dtGwMAC
	o.Addr4 = netip.MustParseAddr("198.18.0.3")
	o.ConnMax = 1 << 12
	o.ConnShards = 4
	return o
}

func rrService(m ipvs.Method, port uint16) ipvs.Service {
	return ipvs.Service{Key: ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(dtVIP, 80)), Scheduler: "rr", RealServers: []ipvs.RealServer{
		{Addr: netip.AddrPortFrom(dtRS1, port), Weight: 1, MAC: ipvs.MACFrom(dtRS1MAC), Method: m},
		{Addr: netip.AddrPortFrom(dtRS2, port), Weight: 1, MAC: ipvs.MACFrom(dtRS2MAC), Method: m},
	}}
}

// run processes one frame and returns the frames sent, copied.
func (h *harness) run(b []byte, now int64) [][]byte {
	h.t.Helper()
	in := []Frame{inFrame(b)}
	var got [][]byte
	for _, f := range h.w.Process(in, now, nil) {
		got = append(got, append([]byte(nil), f.Bytes()...))
	}
	return got
}

// decode decodes a frame with gopacket and fails on any decoding error.
func dtDecode(t *testing.T, b []byte) gopacket.Packet {
	t.Helper()
	p := gopacket.NewPacket(b, layers.LayerTypeEthernet, gopacket.Default)
	if el := p.ErrorLayer(); el != nil {
		t.Fatalf("gopacket cannot decode the frame: %v", el.Error())
	}
	return p
}

// checksumsValid checks every checksum of a frame against the slow reference and
// against gopacket's full recompute (checkOracle, shared with the header tests).
func checksumsValid(t *testing.T, b []byte) {
	t.Helper()
	frametest.CheckOracle(t, b, false, true)
}

func TestDRRoundRobinSeed000(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	var names []string
	for i := range 10 {
		in := dtPkt{src: dtClient, dst: dtVIP, sport: uint16(40000 + i), dport: 80, syn: true, df: true}.frame(t)
		out := h.run(in, int64(i)*sec)
		if len(out) != 1 {
			t.Fatalf("SYN %d: %d frames out, want 1 (counters %+v)", i, len(out), h.w.C.Reasons)
		}
		p := dtDecode(t, out[0])
		eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		switch eth.DstMAC.String() {
		case dtRS1MAC.String():
			names = append(names, "rs1")
		case dtRS2MAC.String():
			names = append(names, "rs2")
		default:
			t.Fatalf("SYN %d went to %v", i, eth.DstMAC)
		}
		if eth.SrcMAC.String() != dtDirMAC.String() {
			t.Errorf("source MAC %v, want the director's", eth.SrcMAC)
		}
		ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if ip.TTL != 63 || !ip.DstIP.Equal(dtVIP.AsSlice()) || !ip.SrcIP.Equal(dtClient.AsSlice()) {
			t.Errorf("DR must only decrement TTL: got ttl %d %v > %v", ip.TTL, ip.SrcIP, ip.DstIP)
		}
		// Everything after the Ethernet header but TTL and checksum is unchanged.
		// (IPv4 header: TTL at offset 8, protocol at 9, checksum at 10–11.)
		if !bytes.Equal(in[14+12:], out[0][14+12:]) || !bytes.Equal(in[14:14+8], out[0][14:14+8]) || in[14+9] != out[0][14+9] {
			t.Errorf("DR changed bytes beyond TTL/checksum")
		}
		checksumsValid(t, out[0])
	}
	want := "rs2 rs1 rs2 rs1 rs2 rs1 rs2 rs1 rs2 rs1"
	if got := dtJoin(names); got != want {
		t.Fatalf("rr over rs1, rs2 (added in that order): got %s, want %s", got, want)
	}
}

func dtJoin(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x)
	}
	return b.String()
}

func TestEstablishedFlowStaysOnItsServer(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	syn := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, syn: true}
	first := dtDecode(t, h.run(syn.frame(t), 0)[0]).Layer(layers.LayerTypeEthernet).(*layers.Ethernet).DstMAC.String()
	for i := 1; i < 5; i++ {
		ack := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, ack: true, plen: 10}
		out := h.run(ack.frame(t), int64(i)*sec)
		if len(out) != 1 {
			t.Fatalf("packet %d not forwarded: %+v", i, h.w.C.Reasons)
		}
		if got := dtDecode(t, out[0]).Layer(layers.LayerTypeEthernet).(*layers.Ethernet).DstMAC.String(); got != first {
			t.Fatalf("packet %d went to %s, the flow started on %s", i, got, first)
		}
	}
	// A second connection goes to the other server (rr), and the counters say so.
	h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 40001, dport: 80, syn: true}.frame(t), 5*sec)
	var act int32
	for _, sv := range h.d.Services() {
		for _, dv := range sv.Dests {
			if dv.ActiveConns != 1 {
				t.Errorf("%v: %d active connections, want 1", dv.Addr, dv.ActiveConns)
			}
			act += dv.ActiveConns
		}
	}
	if act != 2 {
		t.Fatalf("active connections %d, want 2", act)
	}
}

func TestNATBothDirections(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.NAT, 8080))
	syn := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, syn: true, df: true, plen: 3}
	out := h.run(syn.frame(t), 0)
	if len(out) != 1 {
		t.Fatalf("SYN not forwarded: %+v", h.w.C.Reasons)
	}
	p := dtDecode(t, out[0])
	ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if !ip.DstIP.Equal(dtRS2.AsSlice()) || tcp.DstPort != 8080 || ip.TTL != 63 || !ip.SrcIP.Equal(dtClient.AsSlice()) || tcp.SrcPort != 40000 {
		t.Fatalf("NAT in: got %v:%d > %v:%d ttl %d, want client > rs2:8080 ttl 63", ip.SrcIP, tcp.SrcPort, ip.DstIP, tcp.DstPort, ip.TTL)
	}
	checksumsValid(t, out[0])

	reply := dtPkt{srcMAC: dtRS2MAC, src: dtRS2, dst: dtClient, sport: 8080, dport: 40000, syn: true, ack: true}
	out = h.run(reply.frame(t), sec)
	if len(out) != 1 {
		t.Fatalf("reply not forwarded: %+v", h.w.C.Reasons)
	}
	p = dtDecode(t, out[0])
	ip = p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	tcp = p.Layer(layers.LayerTypeTCP).(*layers.TCP)
	eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if !ip.SrcIP.Equal(dtVIP.AsSlice()) || tcp.SrcPort != 80 || !ip.DstIP.Equal(dtClient.AsSlice()) || tcp.DstPort != 40000 {
		t.Fatalf("NAT out: got %v:%d > %v:%d, want VIP:80 > client:40000", ip.SrcIP, tcp.SrcPort, ip.DstIP, tcp.DstPort)
	}
	if eth.DstMAC.String() != dtGwMAC.String() || eth.SrcMAC.String() != dtDirMAC.String() {
		t.Errorf("reply MACs %v > %v, want director > gateway", eth.SrcMAC, eth.DstMAC)
	}
	checksumsValid(t, out[0])
	if st := h.w.DestStats(h.d.Services()[0].Dests[0].ID); st.OutPkts != 1 || st.InPkts != 1 || st.Conns != 1 {
		t.Errorf("dtRS2 stats %+v, want 1 conn, 1 in, 1 out", st)
	}
}

func TestUDPChecksumZeroNAT(t *testing.T) {
	svc := rrService(ipvs.NAT, 5353)
	svc.Key = ipvs.AddrKey(ipvs.UDP, netip.AddrPortFrom(dtVIP, 53))
	h := newHarness(t, testOptions(), svc)
	b := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 53, udp: true, plen: 9}.frame(t)
	b[14+20+6], b[14+20+7] = 0, 0 // no checksum
	out := h.run(b, 0)
	if len(out) != 1 {
		t.Fatalf("not forwarded: %+v", h.w.C.Reasons)
	}
	checksumsValid(t, out[0]) // IPVS computes a full checksum for a zero one
}

func TestTunnelHeaders(t *testing.T) {
	// docs/ipvs-semantics.md §12.16: TTL 64, TOS 0x02, DF, total length 60.
	h := newHarness(t, testOptions(), rrService(ipvs.TUN, 80))
	in := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, syn: true, df: true, tos: 0x02, plen: 20}.frame(t)
	out := h.run(in, 0)
	if len(out) != 1 {
		t.Fatalf("not forwarded: %+v", h.w.C.Reasons)
	}
	p := dtDecode(t, out[0])
	ls := p.Layers()
	outer, ok := ls[1].(*layers.IPv4)
	if !ok || outer.Protocol != layers.IPProtocolIPv4 {
		t.Fatalf("no IPIP outer header: %v", ls)
	}
	if !outer.SrcIP.Equal(net.IP{198, 18, 0, 3}) || !outer.DstIP.Equal(dtRS2.AsSlice()) || outer.TTL != 63 || outer.TOS != 0x02 || outer.Flags&layers.IPv4DontFragment == 0 || outer.Length != 80 {
		t.Fatalf("outer %v > %v ttl %d tos %#x flags %v len %d", outer.SrcIP, outer.DstIP, outer.TTL, outer.TOS, outer.Flags, outer.Length)
	}
	inner := ls[2].(*layers.IPv4)
	if inner.TTL != 63 || !inner.DstIP.Equal(dtVIP.AsSlice()) {
		t.Fatalf("inner ttl %d dst %v", inner.TTL, inner.DstIP)
	}
	checksumsValid(t, out[0])

	// CE becomes ECT(0) outside; 1490 bytes with DF get frag-needed MTU 1480.
	ce := dtPkt{src: dtClient, dst: dtVIP, sport: 40001, dport: 80, syn: true, tos: 0x03}.frame(t)
	if o := dtDecode(t, h.run(ce, 0)[0]).Layers()[1].(*layers.IPv4); o.TOS != 0x02 {
		t.Errorf("outer TOS for inner CE: %#x, want 0x02", o.TOS)
	}
	big := dtPkt{src: dtClient, dst: dtVIP, sport: 40002, dport: 80, syn: true, df: true, plen: 1490 - 40}.frame(t)
	out = h.run(big, 0)
	if len(out) != 1 {
		t.Fatalf("want one ICMP error, got %d frames", len(out))
	}
	icmp, ok := dtDecode(t, out[0]).Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if !ok || icmp.TypeCode != layers.CreateICMPv4TypeCode(3, 4) || icmp.Seq != 1480 {
		t.Fatalf("want frag-needed MTU 1480, got %v", dtDecode(t, out[0]))
	}
	if h.w.C.Reasons[ReasonTooBig] != 1 {
		t.Errorf("too_big counted %d times", h.w.C.Reasons[ReasonTooBig])
	}
}

func TestNoDestinationSendsPortUnreachable(t *testing.T) {
	svc := rrService(ipvs.DR, 80)
	svc.RealServers[0].Weight, svc.RealServers[1].Weight = 0, 0
	h := newHarness(t, testOptions(), svc)
	for _, udp := range []bool{false, true} {
		s := svc
		if udp {
			s.Protocol = ipvs.UDP
			if err := h.d.Apply([]ipvs.Service{svc, s}); err != nil {
				t.Fatal(err)
			}
		}
		out := h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, syn: true, udp: udp}.frame(t), 0)
		if len(out) != 1 {
			t.Fatalf("udp=%v: want an ICMP error", udp)
		}
		p := dtDecode(t, out[0])
		icmp, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		if !ok || icmp.TypeCode != layers.CreateICMPv4TypeCode(3, 3) || !ip.SrcIP.Equal(dtVIP.AsSlice()) || !ip.DstIP.Equal(dtClient.AsSlice()) {
			t.Fatalf("udp=%v: want port unreachable from the VIP to the dtClient, got %v", udp, p)
		}
		checksumsValid(t, out[0])
	}
	if h.w.C.Reasons[ReasonNoDest] != 2 {
		t.Fatalf("no_dest counted %d, want 2", h.w.C.Reasons[ReasonNoDest])
	}
}

func TestTTLExpiry(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	out := h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, syn: true, ttl: 1}.frame(t), 0)
	if len(out) != 1 {
		t.Fatalf("want time exceeded")
	}
	p := dtDecode(t, out[0])
	icmp, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if !ok || icmp.TypeCode != layers.CreateICMPv4TypeCode(11, 0) {
		t.Fatalf("want ICMP time exceeded, got %v", p)
	}
	if ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4); !ip.SrcIP.Equal(net.IP{198, 18, 0, 3}) {
		t.Errorf("time exceeded from %v, want the director's address", ip.SrcIP)
	}
}

func TestBadInputIsCounted(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	good := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, syn: true}.frame(t)
	cases := []struct {
		name string
		b    []byte
		want Reason
	}{
		{"truncated", good[:20], ReasonMalformed},
		{"not SYN", dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, ack: true}.frame(t), ReasonNotSYN},
		{"RST", dtPkt{src: dtClient, dst: dtVIP, sport: 2, dport: 80, syn: true, rst: true}.frame(t), ReasonNotSYN},
		{"no service", dtPkt{src: dtClient, dst: dtVIP, sport: 3, dport: 81, syn: true}.frame(t), ReasonNoService},
		{"not ours", dtPkt{src: dtClient, dst: dtRS1, sport: 4, dport: 80, syn: true}.frame(t), ReasonNotOurs},
		{"arp", func() []byte {
			buf := gopacket.NewSerializeBuffer()
			gopacket.SerializeLayers(buf, gopacket.SerializeOptions{},
				&layers.Ethernet{SrcMAC: dtClientMAC, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
				&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
					SourceHwAddress: dtClientMAC, SourceProtAddress: dtClient.AsSlice(), DstHwAddress: make([]byte, 6), DstProtAddress: dtRS1.AsSlice()})
			return buf.Bytes()
		}(), ReasonNotIP},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := h.w.C.Reasons[c.want]
			if out := h.run(c.b, 0); len(out) != 0 {
				t.Fatalf("forwarded %d frames", len(out))
			}
			if h.w.C.Reasons[c.want] != before+1 {
				t.Fatalf("reason %v not counted: %+v", c.want, h.w.C.Reasons)
			}
		})
	}
	var sum uint64
	for _, n := range h.w.C.Reasons {
		sum += n
	}
	if h.w.C.In != h.w.C.Forwarded+sum {
		t.Fatalf("in %d != forwarded %d + not forwarded %d", h.w.C.In, h.w.C.Forwarded, sum)
	}
}

func TestTableFullRefusesNewKeepsOld(t *testing.T) {
	o := testOptions()
	o.ConnMax = 4
	h := newHarness(t, o, rrService(ipvs.DR, 80))
	for i := range 4 {
		if out := h.run(dtPkt{src: dtClient, dst: dtVIP, sport: uint16(1000 + i), dport: 80, syn: true}.frame(t), 0); len(out) != 1 {
			t.Fatalf("conn %d refused early", i)
		}
		// Confirmed (ESTABLISHED): never evicted to make room (docs/defense.md §7).
		if out := h.run(dtPkt{src: dtClient, dst: dtVIP, sport: uint16(1000 + i), dport: 80, ack: true}.frame(t), 0); len(out) != 1 {
			t.Fatalf("conn %d: ACK not forwarded", i)
		}
	}
	if out := h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 2000, dport: 80, syn: true}.frame(t), 0); len(out) != 0 {
		t.Fatalf("the fifth connection must be refused")
	}
	if h.w.C.Reasons[ReasonTableFull] != 1 {
		t.Fatalf("table_full = %d", h.w.C.Reasons[ReasonTableFull])
	}
	if out := h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 1000, dport: 80, ack: true}.frame(t), 0); len(out) != 1 {
		t.Fatalf("an established connection was lost when the table filled")
	}
}

func TestPersistenceSendsClientNetToSameServer(t *testing.T) {
	svc := rrService(ipvs.DR, 80)
	svc.Persistence = 300 * time.Second
	svc.Netmask = netip.MustParsePrefix("0.0.0.0/24")
	h := newHarness(t, testOptions(), svc)
	var first string
	for i := range 6 {
		c := netip.AddrFrom4([4]byte{198, 19, 0, byte(10 + i)})
		out := h.run(dtPkt{src: c, dst: dtVIP, sport: uint16(5000 + i), dport: 80, syn: true}.frame(t), int64(i)*sec)
		if len(out) != 1 {
			t.Fatalf("conn %d not forwarded", i)
		}
		mac := dtDecode(t, out[0]).Layer(layers.LayerTypeEthernet).(*layers.Ethernet).DstMAC.String()
		if i == 0 {
			first = mac
		} else if mac != first {
			t.Fatalf("client %v went to %s, its /24 is persistent on %s", c, mac, first)
		}
	}
	// Another /24 is scheduled afresh: rr moves on.
	out := h.run(dtPkt{src: netip.MustParseAddr("198.19.1.1"), dst: dtVIP, sport: 1, dport: 80, syn: true}.frame(t), 10*sec)
	if mac := dtDecode(t, out[0]).Layer(layers.LayerTypeEthernet).(*layers.Ethernet).DstMAC.String(); mac == first {
		t.Fatalf("a new client network should get the next server under rr")
	}
}

func TestDeterministicOutput(t *testing.T) {
	var frames [][]byte
	for i := range 200 {
		frames = append(frames, dtPkt{src: netip.AddrFrom4([4]byte{198, 19, 0, byte(i % 7)}), dst: dtVIP, sport: uint16(3000 + i%50), dport: 80, syn: i%3 == 0, ack: i%3 != 0}.frame(t))
	}
	runOnce := func() []byte {
		h := newHarness(t, testOptions(), rrService(ipvs.NAT, 8080))
		var all []byte
		for i, b := range frames {
			for _, o := range h.run(b, int64(i)*sec/10) {
				all = append(all, o...)
			}
		}
		return all
	}
	if a, b := runOnce(), runOnce(); !bytes.Equal(a, b) {
		t.Fatalf("same input and times gave different output")
	}
}

func TestEstablishedPathAllocatesNothing(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, syn: true}.frame(t), 0)
	ack := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, ack: true}.frame(t)
	in := []Frame{inFrame(ack)}
	out := make([]Frame, 0, 4)
	allocs := testing.AllocsPerRun(1000, func() {
		copy(in[0].Buf[Headroom:], ack)
		out = h.w.Process(in, sec, out[:0])
	})
	if allocs != 0 {
		t.Fatalf("established DR path: %v allocs per packet", allocs)
	}
}

func TestApplyKeepsConnectionsAndRejectsBadConfig(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, syn: true}.frame(t), 0)
	bad := rrService(ipvs.DR, 80)
	bad.RealServers = append(bad.RealServers, bad.RealServers[0])
	if err := h.d.Apply([]ipvs.Service{bad}); err == nil {
		t.Fatal("a duplicate real server was accepted")
	}
	neg := rrService(ipvs.DR, 80)
	neg.RealServers[0].Weight = -1
	if err := h.d.Apply([]ipvs.Service{neg}); err == nil {
		t.Fatal("a negative weight was accepted")
	}
	// A reload that changes a weight keeps the connection on its server.
	re := rrService(ipvs.DR, 80)
	re.RealServers[0].Weight = 5
	if err := h.d.Apply([]ipvs.Service{re}); err != nil {
		t.Fatal(err)
	}
	if h.d.Table().Len() != 1 {
		t.Fatalf("reload lost connections: %d left", h.d.Table().Len())
	}
	if out := h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, ack: true}.frame(t), sec); len(out) != 1 {
		t.Fatalf("the established connection broke across the reload")
	}
}

func arpRequest(t *testing.T, target netip.Addr) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{},
		&layers.Ethernet{SrcMAC: dtClientMAC, DstMAC: layers.EthernetBroadcast, EthernetType: layers.EthernetTypeARP},
		&layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4, Operation: 1,
			SourceHwAddress: dtClientMAC, SourceProtAddress: dtClient.AsSlice(), DstHwAddress: make([]byte, 6), DstProtAddress: target.AsSlice()})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAnswersARPForVIPOnly(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	out := h.run(arpRequest(t, dtVIP), 0)
	if len(out) != 1 {
		t.Fatalf("no ARP reply for the VIP")
	}
	p := dtDecode(t, out[0])
	arp := p.Layer(layers.LayerTypeARP).(*layers.ARP)
	eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if arp.Operation != 2 || !bytes.Equal(arp.SourceHwAddress, dtDirMAC) || !bytes.Equal(arp.SourceProtAddress, dtVIP.AsSlice()) ||
		!bytes.Equal(arp.DstHwAddress, dtClientMAC) || !bytes.Equal(arp.DstProtAddress, dtClient.AsSlice()) ||
		eth.DstMAC.String() != dtClientMAC.String() || eth.SrcMAC.String() != dtDirMAC.String() {
		t.Fatalf("bad ARP reply: %v", p)
	}
	if out := h.run(arpRequest(t, dtRS1), 0); len(out) != 0 {
		t.Fatalf("answered ARP for an address that is not a VIP")
	}
	if h.w.C.Reasons[ReasonNeighbor] != 1 || h.w.C.Reasons[ReasonNotIP] != 1 {
		t.Fatalf("counters: %v", h.w.C.Reasons)
	}
}

func TestAnswersNeighborSolicitationForVIP6(t *testing.T) {
	vip6 := netip.MustParseAddr("2001:db8::100")
	svc := ipvs.Service{Key: ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(vip6, 80)), Scheduler: "rr", RealServers: []ipvs.RealServer{{Addr: netip.AddrPortFrom(netip.MustParseAddr("2001:db8::5"), 80), Weight: 1, MAC: ipvs.MACFrom(dtRS1MAC), Method: ipvs.DR}}}
	h := newHarness(t, testOptions(), svc)
	src := netip.MustParseAddr("2001:db8::7")
	snm := netip.MustParseAddr("ff02::1:ff00:100")
	ip := &layers.IPv6{Version: 6, HopLimit: 255, NextHeader: layers.IPProtocolICMPv6, SrcIP: src.AsSlice(), DstIP: snm.AsSlice()}
	icmp := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(135, 0)}
	icmp.SetNetworkLayerForChecksum(ip)
	ns := &layers.ICMPv6NeighborSolicitation{TargetAddress: vip6.AsSlice(), Options: layers.ICMPv6Options{{Type: layers.ICMPv6OptSourceAddress, Data: dtClientMAC}}}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: dtClientMAC, DstMAC: net.HardwareAddr{0x33, 0x33, 0xff, 0, 1, 0}, EthernetType: layers.EthernetTypeIPv6}, ip, icmp, ns); err != nil {
		t.Fatal(err)
	}
	out := h.run(buf.Bytes(), 0)
	if len(out) != 1 {
		t.Fatalf("no neighbour advertisement (counters %v)", h.w.C.Reasons)
	}
	p := dtDecode(t, out[0])
	na, ok := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
	if !ok || !na.TargetAddress.Equal(vip6.AsSlice()) || !na.Solicited() || !na.Override() {
		t.Fatalf("bad NA: %v", p)
	}
	ip6 := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if !ip6.SrcIP.Equal(vip6.AsSlice()) || !ip6.DstIP.Equal(src.AsSlice()) || ip6.HopLimit != 255 {
		t.Fatalf("NA addressed %v > %v hlim %d", ip6.SrcIP, ip6.DstIP, ip6.HopLimit)
	}
	checksumsValid(t, out[0])
}

func TestCompletesPartialChecksums(t *testing.T) {
	for _, m := range []ipvs.Method{ipvs.DR, ipvs.NAT, ipvs.TUN} {
		h := newHarness(t, testOptions(), rrService(m, 80))
		b := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, syn: true, plen: 33}.frame(t)
		// What a local stack with checksum offload leaves in the field: the
		// pseudo-header sum, not the checksum.
		ip := b[header.EthernetHeaderLen:]
		ps := header.PseudoHeaderSum(ip[12:16], ip[16:20], header.IPProtoTCP, uint32(len(ip)-20))
		binary.BigEndian.PutUint16(ip[20+16:], ps)
		in := []Frame{inFrame(b)}
		in[0].CsumPartial = true
		out := h.w.Process(in, 0, nil)
		if len(out) != 1 {
			t.Fatalf("%v: not forwarded", m)
		}
		checksumsValid(t, out[0].Bytes())
	}
}

func TestTotalsSumWorkers(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	w2 := h.d.NewWorker(8)
	for i := range 4 {
		w := h.w
		if i%2 == 1 {
			w = w2
		}
		in := []Frame{inFrame(dtPkt{src: dtClient, dst: dtVIP, sport: uint16(100 + i), dport: 80, syn: true}.frame(t))}
		w.Process(in, int64(i), nil)
	}
	h.w.Flush(10)
	w2.Flush(10)
	tot := h.d.Totals()
	if tot.Counters.In != 4 || tot.Counters.Forwarded != 4 {
		t.Fatalf("totals %+v, want 4 in, 4 forwarded", tot.Counters)
	}
	var conns uint64
	for _, s := range tot.Dests {
		conns += s.Conns
	}
	if conns != 4 || tot.Services[0].Conns != 4 || tot.Services[0].InPkts != 4 {
		t.Fatalf("dest conns %d, service %+v", conns, tot.Services[0])
	}
}

func TestSetOwnedGatesVIPs(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	syn := func(port uint16) []byte {
		return dtPkt{src: dtClient, dst: dtVIP, sport: port, dport: 80, syn: true}.frame(t)
	}
	h.d.SetOwned([]netip.Addr{})
	if out := h.run(syn(1), 0); len(out) != 0 {
		t.Fatal("a backup forwarded VIP traffic")
	}
	if out := h.run(arpRequest(t, dtVIP), 0); len(out) != 0 {
		t.Fatal("a backup answered ARP for the VIP")
	}
	if h.w.C.Reasons[ReasonNotOwned] != 2 {
		t.Fatalf("not_owned = %d, want 2", h.w.C.Reasons[ReasonNotOwned])
	}
	h.d.SetOwned([]netip.Addr{dtVIP})
	if out := h.run(syn(2), 0); len(out) != 1 {
		t.Fatal("the master does not forward")
	}
	h.d.SetOwned(nil)
	if out := h.run(arpRequest(t, dtVIP), 0); len(out) != 1 {
		t.Fatal("without VRRP every VIP is served")
	}
}

// TestFlowCacheKeepsTableInStep: packets served from the worker's flow cache still
// keep their connection alive in the table (refreshed every tick), a deleted real
// server is noticed at once, and a FIN goes through the table's state machine.
func TestFlowCacheKeepsTableInStep(t *testing.T) {
	o := testOptions()
	o.Timeouts.TCP[conntrack.StateEstablished] = time.Second
	h := newHarness(t, o, rrService(ipvs.DR, 80))
	h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, syn: true}.frame(t), 0)
	ack := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, ack: true}.frame(t)
	// 5 s of ACKs every 50 ms: far past the 1 s ESTABLISHED timeout.
	for i := 1; i <= 100; i++ {
		if out := h.run(ack, int64(i)*50*int64(time.Millisecond)); len(out) != 1 {
			t.Fatalf("ACK %d not forwarded (%v)", i, h.w.C.Reasons)
		}
	}
	var c conntrack.Conn
	found := false
	h.d.Table().Each(func(x *conntrack.Conn) bool { c, found = *x, true; return false })
	if !found || c.State != conntrack.StateEstablished {
		t.Fatalf("the connection left the table while its packets were served from the cache: %+v", c)
	}
	if wantMin := 5*sec + sec - refreshEvery; c.Expires < wantMin {
		t.Fatalf("the table entry expires at %v, want ≥ %v (refreshed at least every tick)", time.Duration(c.Expires), time.Duration(wantMin))
	}
	// A FIN goes through the table: ESTABLISHED → FIN_WAIT (input-only table).
	fin := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, fin: true, ack: true}.frame(t)
	h.run(fin, 5*sec+int64(time.Millisecond))
	h.d.Table().Each(func(x *conntrack.Conn) bool { c = *x; return false })
	if c.State != conntrack.StateFinWait {
		t.Fatalf("after FIN the state is %v, want FIN_WAIT", c.State)
	}
	// Delete the real server: the next ACK is dropped by the table, not forwarded
	// from the cache.
	h2 := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	h2.run(dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, syn: true}.frame(t), 0)
	a := dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, ack: true}.frame(t)
	h2.run(a, 1)
	h2.run(a, 2) // served from the cache
	svc := rrService(ipvs.DR, 80)
	svc.RealServers = svc.RealServers[:1] // rs2, the first connection's server (list [rs2, rs1]), goes
	if err := h2.d.Apply([]ipvs.Service{svc}); err != nil {
		t.Fatal(err)
	}
	if out := h2.run(a, 3); len(out) != 0 || h2.w.C.Reasons[ReasonDestDeleted] != 1 {
		t.Fatalf("after deleting its server: %d frames out, dest_deleted %d", len(out), h2.w.C.Reasons[ReasonDestDeleted])
	}
}

// TestNarrowPrefetch: when few of the previous batch's table frames were TCP segments
// without SYN, FIN or RST, the prefetch hashes only the frames that have one of those
// flags, UDP, and nothing the peek cannot read; when more were, every TCP/UDP frame.
// Fails with the narrow pass hashing an ACK or skipping a SYN, FIN, RST or UDP frame,
// or with the choice between the two inverted or not made.
func TestNarrowPrefetch(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	growBuckets(t, h)
	p := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80}
	syn, ack, fin, rst, udp := p, p, p, p, p
	syn.syn, ack.ack, fin.fin, fin.ack, rst.rst, udp.udp = true, true, true, true, true, true
	frames := [][]byte{syn.frame(t), ack.frame(t), fin.frame(t), rst.frame(t), udp.frame(t), ack.frame(t)[:20]}
	narrow := []bool{true, false, true, true, true, false} // hashed by the narrow pass
	full := []bool{true, true, true, true, true, false}
	check := func(name string, ackRefs int, want []bool) {
		t.Helper()
		in := make([]Frame, len(frames))
		for i, b := range frames {
			in[i] = inFrame(b)
		}
		h.w.lookups, h.w.ackRefs = len(in), ackRefs
		h.w.Process(in, sec, nil)
		for i, w := range want {
			if got := h.w.hashes[i] != 0; got != w {
				t.Errorf("%s: frame %d hashed %v, want %v", name, i, got, w)
			}
		}
	}
	check("narrow", 0, narrow)
	check("full", len(frames), full)
	check("narrow again", (len(frames)-1)/prefetchShare, narrow)
	check("full at the share", (len(frames)+prefetchShare-1)/prefetchShare, full)
}

// growBuckets makes h's table outgrow its small buckets (conntrack's
// Table.BucketsSmall), as a busy director's does, by SYNs of fresh flows (none
// of them a tuple the tests use: sources from 198.19.1.0), then flushes it and
// clears the worker's count of lookups: the batch prefetch runs only for a table
// whose buckets did.
func growBuckets(t *testing.T, h *harness) {
	t.Helper()
	syn := dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, syn: true}.frame(t)
	in := make([]Frame, benchBatchSize)
	for i := 1 << 16; h.d.Table().BucketsSmall(); i += len(in) {
		if i >= 1<<16+int(h.d.opts.ConnMax) {
			t.Fatalf("%d connections made and the buckets are still small", i-1<<16)
		}
		for j := range in {
			in[j] = inFrame(flowFrame(syn, i+j))
		}
		h.w.Process(in, sec, nil)
	}
	h.d.Table().Flush()
	h.w.lookups = 0
}

// TestSmallBucketsNotPrefetched: while the table's buckets are small (a few
// hundred connections) batches of SYNs are not prefetched, and once they have
// grown, the same batches are (the rule TestRefStepsNotPrefetched checks). Fails
// with the pass made for a small table, or never made.
func TestSmallBucketsNotPrefetched(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	syn := dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, syn: true}.frame(t)
	batches := func() uint64 {
		t.Helper()
		pf := h.w.prefetched
		for k := range 3 { // SYNs, then the same SYNs retransmitted, twice
			in := make([]Frame, 8)
			for j := range in {
				in[j] = inFrame(flowFrame(syn, j))
			}
			if out := h.w.Process(in, int64(k+1)*int64(time.Millisecond), nil); len(out) != len(in) {
				t.Fatalf("%d of %d forwarded (%v)", len(out), len(in), h.w.C.Reasons)
			}
		}
		return h.w.prefetched - pf
	}
	if n := batches(); n != 0 || !h.d.Table().BucketsSmall() {
		t.Fatalf("small buckets: %d batches prefetched (small %v), want 0", n, h.d.Table().BucketsSmall())
	}
	growBuckets(t, h)
	if n := batches(); n != 2 {
		t.Fatalf("grown buckets: %d batches prefetched, want 2 (each after a batch of SYNs)", n)
	}
}

// TestRefStepsNotPrefetched: the first ACKs and FINs of flows the cache holds are
// stepped at their slots' Refs and read no bucket, so a batch of them does not make
// the next batch prefetched, where a batch of SYNs (lookups) does.
func TestRefStepsNotPrefetched(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	growBuckets(t, h)
	h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 100, dport: 80, syn: true}.frame(t), 0)
	batch := func(syn, ack, fin bool) []Frame {
		in := make([]Frame, 8)
		for i := range in {
			p := dtPkt{src: dtClient, dst: dtVIP, sport: uint16(1 + i), dport: 80, syn: syn, ack: ack, fin: fin}
			in[i] = inFrame(p.frame(t))
		}
		return in
	}
	steps := []struct {
		name       string
		in         []Frame
		prefetched bool // this batch is prefetched
		refs       int  // of its frames stepped at a Ref
	}{
		{"SYNs", batch(true, false, false), false, 0},
		{"first ACKs", batch(false, true, false), true, 8},
		{"FINs", batch(false, true, true), false, 8},
	}
	for i, s := range steps {
		pf, refs := h.w.prefetched, h.w.refSteps
		if out := h.w.Process(s.in, int64(i+1)*int64(time.Millisecond), nil); len(out) != len(s.in) {
			t.Fatalf("%s: %d of %d forwarded (%v)", s.name, len(out), len(s.in), h.w.C.Reasons)
		}
		if got := h.w.prefetched != pf; got != s.prefetched {
			t.Errorf("%s: prefetched %v, want %v", s.name, got, s.prefetched)
		}
		if got := int(h.w.refSteps - refs); got != s.refs {
			t.Errorf("%s: %d stepped at a Ref, want %d", s.name, got, s.refs)
		}
	}
}

// TestFlowPassAfterChurn: the flow pass (prefetchFlows) is made for a batch after one
// in which a quarter of the frames made a new connection or were stepped at their
// slot's Ref, and not after a batch the flow cache served; a batch with the pass
// forwards what it would without (a frame too short to peek among them), and
// allocates nothing. Fails with the pass made always, never, or gated on anything
// else.
func TestFlowPassAfterChurn(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	batch := func(syn, ack bool, short bool) []Frame {
		in := make([]Frame, 8)
		for i := range in {
			p := dtPkt{src: dtClient, dst: dtVIP, sport: uint16(1 + i), dport: 80, syn: syn, ack: ack}
			b := p.frame(t)
			if short && i == 7 {
				b = b[:header.PeekFlow4Len-1]
			}
			in[i] = inFrame(b)
		}
		return in
	}
	steps := []struct {
		name  string
		in    []Frame
		pass  bool // this batch gets the flow pass
		sent  int
		churn int // its frames that made a connection or were stepped at a Ref
	}{
		{"SYNs", batch(true, false, false), false, 8, 8},
		// Retransmitted SYNs are looked up and change nothing: table work, no churn.
		{"SYNs retransmitted", batch(true, false, false), true, 8, 0},
		{"SYNs retransmitted again", batch(true, false, false), false, 8, 0},
		// The 8th frame is too short: dropped, its flow's first ACK comes in the
		// next batch.
		{"first ACKs", batch(false, true, true), false, 7, 7},
		{"ACKs the cache serves", batch(false, true, false), true, 8, 1},
		{"ACKs again", batch(false, true, false), false, 8, 0},
	}
	for i, s := range steps {
		n := h.w.flowPasses
		out := h.w.Process(s.in, int64(i+1)*int64(time.Millisecond), nil)
		if len(out) != s.sent {
			t.Fatalf("%s: %d of %d forwarded (%v)", s.name, len(out), s.sent, h.w.C.Reasons)
		}
		if got := h.w.flowPasses != n; got != s.pass {
			t.Errorf("%s: flow pass %v, want %v", s.name, got, s.pass)
		}
		if got := h.w.churn + int(h.w.refSteps-h.w.refSteps0); got != s.churn {
			t.Errorf("%s: churn %d, want %d", s.name, got, s.churn)
		}
	}
	// Batches of new connections, each after one: the pass every time, no allocation.
	const runs = 50
	fresh := make([][]Frame, runs+2)
	for r := range fresh {
		fresh[r] = make([]Frame, 8)
		for i := range fresh[r] {
			p := dtPkt{src: dtClient, dst: dtVIP, sport: uint16(1000 + 8*r + i), dport: 80, syn: true}
			fresh[r][i] = inFrame(p.frame(t))
		}
	}
	out := make([]Frame, 0, 8)
	r, n := 0, h.w.flowPasses
	allocs := testing.AllocsPerRun(runs, func() {
		out = h.w.Process(fresh[r], sec, out[:0])
		r++
	})
	if allocs != 0 {
		t.Fatalf("batches with the flow pass: %v allocs", allocs)
	}
	// AllocsPerRun's first run follows "ACKs again": no pass.
	if got := h.w.flowPasses - n; got != uint64(r-1) {
		t.Fatalf("%d of %d batches of new connections got the flow pass, want all but the first", got, r)
	}
}

// TestPrefetchedBatch runs batches that all go to the connection table (retransmitted
// SYNs of 48 flows in SYN_RECV): from the second batch on they are prefetched, the
// result is the same as without, and nothing is allocated.
func TestPrefetchedBatch(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	growBuckets(t, h)
	var orig [][]byte
	syn := dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, syn: true}.frame(t)
	// Every fourth frame is too short to peek (and malformed): the prefetch's hashes
	// stay by frame, so the SYNs after it are looked up with their own.
	flows := 0
	for i := range benchBatchSize {
		if i%4 == 3 {
			orig = append(orig, syn[:20])
			continue
		}
		orig = append(orig, flowFrame(syn, i))
		flows++
	}
	bb := newBatch(orig)
	out := make([]Frame, 0, 2*benchBatchSize)
	out = h.w.Process(bb.in, sec, out[:0])
	if len(out) != flows || h.d.Table().Len() != flows {
		t.Fatalf("first batch: %d sent, %d connections", len(out), h.d.Table().Len())
	}
	first := make([][]byte, len(out))
	for i := range out {
		first[i] = append([]byte(nil), out[i].Bytes()...)
	}
	allocs := testing.AllocsPerRun(100, func() {
		bb.restore()
		out = h.w.Process(bb.in, 2*sec, out[:0])
	})
	if allocs != 0 {
		t.Fatalf("prefetched batch: %v allocs", allocs)
	}
	if h.w.prefetched == 0 {
		t.Fatal("no batch was prefetched")
	}
	if len(out) != flows || h.d.Table().Len() != flows {
		t.Fatalf("retransmissions: %d sent, %d connections (reasons %v)", len(out), h.d.Table().Len(), h.w.C.Reasons)
	}
	for i := range out {
		if !bytes.Equal(out[i].Bytes(), first[i]) {
			t.Fatalf("frame %d differs from the unprefetched batch:\n% x\n% x", i, out[i].Bytes(), first[i])
		}
	}
}
