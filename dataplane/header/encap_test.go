package header

import (
	"bytes"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/gvs-lb/gvs/dataplane/internal/frametest"
)

// headroom is what links reserve in front of every frame (dataplane.Headroom, which
// this package's tests cannot import: dataplane imports header). dataplane's
// TestHeadroomFitsEncapsulation checks the real constant against Encapsulate.
const headroom = 64

// withHeadroom copies frame into a fresh buffer after headroom bytes of junk, as a
// link would hand it over.
func withHeadroom(frame []byte) []byte {
	buf := make([]byte, headroom+len(frame))
	for i := range headroom {
		buf[i] = 0xee
	}
	copy(buf[headroom:], frame)
	return buf
}

// wantEncap builds with gopacket the frame Encapsulate must return for inner (an IP
// packet).
func wantEncap(t testing.TB, vlan uint16, outer6 bool, tos uint8, df bool, ttl uint8, id uint16, proto layers.IPProtocol, src, dst string, inner []byte) []byte {
	t.Helper()
	e := &layers.Ethernet{SrcMAC: net.HardwareAddr(frametest.MACLB[:]), DstMAC: net.HardwareAddr(frametest.MACRS[:]), EthernetType: layers.EthernetTypeIPv4}
	if outer6 {
		e.EthernetType = layers.EthernetTypeIPv6
	}
	ls := []gopacket.SerializableLayer{e}
	if vlan != 0 {
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: vlan, Priority: 3, Type: e.EthernetType})
		e.EthernetType = layers.EthernetTypeDot1Q
	}
	if outer6 {
		ls = append(ls, &layers.IPv6{Version: 6, TrafficClass: tos, HopLimit: ttl, NextHeader: proto, SrcIP: frametest.IPOf(src), DstIP: frametest.IPOf(dst)})
	} else {
		ip := &layers.IPv4{Version: 4, TOS: tos, TTL: ttl, Id: id, Protocol: proto, SrcIP: frametest.IPOf(src), DstIP: frametest.IPOf(dst)}
		if df {
			ip.Flags = layers.IPv4DontFragment
		}
		ls = append(ls, ip)
	}
	ls = append(ls, gopacket.Payload(inner))
	return frametest.Serialize(t, ls...)
}

func TestEncapsulate(t *testing.T) {
	const (
		client, vip = "198.51.100.7", "192.0.2.10"
		c6, vip6    = "2001:db8:1::7", "2001:db8::10"
		lb, rs      = "10.0.0.1", "10.0.0.5"
		lb6, rs6    = "2001:db8:ffff::1", "2001:db8:ffff::5"
	)
	tests := []struct {
		name     string
		frame    []byte
		outer6   bool
		pmtuDisc bool
		tos      uint8 // expected outer DS byte
		df       bool  // expected outer DF
		proto    layers.IPProtocol
	}{
		{"4in4 df copied", frametest.TCP4(t, frametest.Opts{DF: true, TOS: 0x02, TTL: 63}, client, vip, 40000, 80), false, true, 0x02, true, layers.IPProtocolIPv4},
		{"4in4 no df", frametest.TCP4(t, frametest.Opts{TOS: 0xb8, TTL: 63, Payload: 100}, client, vip, 40000, 80), false, true, 0xb8, false, layers.IPProtocolIPv4},
		{"4in4 pmtu_disc off", frametest.TCP4(t, frametest.Opts{DF: true, TTL: 9}, client, vip, 40000, 80), false, false, 0, false, layers.IPProtocolIPv4},
		{"4in4 ce", frametest.UDP4(t, frametest.Opts{TOS: 0xbb, Payload: 3}, client, vip, 40000, 7000), false, true, 0xba, false, layers.IPProtocolIPv4},
		{"4in4 vlan", frametest.TCP4(t, frametest.Opts{VLAN: 77, DF: true, TOS: 0x01}, client, vip, 40000, 80), false, true, 0x01, true, layers.IPProtocolIPv4},
		{"6in4", frametest.TCP6(t, frametest.Opts{TOS: 0x03, TTL: 50}, c6, vip6, 40000, 80), false, true, 0x02, false, layers.IPProtocolIPv6},
		{"6in6", frametest.TCP6(t, frametest.Opts{TOS: 0x2a, VLAN: 5, Payload: 1000}, c6, vip6, 40000, 80), true, true, 0x2a, false, layers.IPProtocolIPv6},
		{"4in6", frametest.TCP4(t, frametest.Opts{DF: true, TOS: 0x03, VLAN: 4094}, client, vip, 40000, 80), true, true, 0x02, false, layers.IPProtocolIPv4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := withHeadroom(tt.frame)
			p := decodeOK(t, buf[headroom:])
			inner := append([]byte(nil), buf[headroom+p.L3Off:headroom+p.End]...)
			tun := &Tunnel{Src: frametest.A16(lb), Dst: frametest.A16(rs), EthSrc: frametest.MACLB, EthDst: frametest.MACRS, ID: 0x4242, PMTUDisc: tt.pmtuDisc}
			src, dst := lb, rs
			if tt.outer6 {
				tun.IPv6, tun.Src, tun.Dst = true, frametest.A16(lb6), frametest.A16(rs6)
				src, dst = lb6, rs6
			}
			out, ok := Encapsulate(buf, headroom, p, tun)
			if !ok {
				t.Fatal("refused")
			}
			if &out[len(out)-1] != &buf[headroom+p.End-1] {
				t.Error("result does not end at the inner packet's end in the same buffer")
			}
			want := wantEncap(t, p.VLAN, tt.outer6, tt.tos, tt.df, p.TTL, 0x4242, tt.proto, src, dst, inner)
			if !bytes.Equal(out, want[:len(out)]) || len(want) > len(out) && !bytes.Equal(want[len(out):], make([]byte, len(want)-len(out))) {
				t.Errorf("got  %x\nwant %x", out, want)
			}
			frametest.CheckOracle(t, out, false, true)
			q := decodeOK(t, out)
			if !bytes.Equal(out[q.L4Off:q.End], inner) {
				t.Error("inner packet changed")
			}
		})
	}
}

func TestEncapsulateHeadroom(t *testing.T) {
	f := frametest.TCP4(t, frametest.Opts{}, "198.51.100.7", "192.0.2.10", 40000, 80)
	tun := &Tunnel{Src: frametest.A16("10.0.0.1"), Dst: frametest.A16("10.0.0.5")}
	// 20 bytes of outer IPv4 fit over the old Ethernet header plus 20 bytes of
	// headroom, not 19.
	for _, tc := range []struct {
		off int
		ok  bool
	}{{20, true}, {19, false}, {0, false}} {
		buf := make([]byte, tc.off+len(f))
		copy(buf[tc.off:], f)
		p := decodeOK(t, buf[tc.off:])
		if _, ok := Encapsulate(buf, tc.off, p, tun); ok != tc.ok {
			t.Errorf("off %d: ok %v, want %v", tc.off, ok, tc.ok)
		}
	}
	// The worst case — tagged frame, IPv6 outer — fits in the headroom.
	f = frametest.TCP4(t, frametest.Opts{VLAN: 1}, "198.51.100.7", "192.0.2.10", 40000, 80)
	buf := withHeadroom(f)
	p := decodeOK(t, buf[headroom:])
	if _, ok := Encapsulate(buf, headroom, p, &Tunnel{IPv6: true}); !ok {
		t.Error("headroom too small for a tagged frame with an IPv6 outer header")
	}
	arp := withHeadroom(frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeARP), &layers.ARP{AddrType: 1, Protocol: 0x800, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: 1, SourceHwAddress: frametest.MACClient[:], SourceProtAddress: []byte{192, 0, 2, 1}, DstHwAddress: make([]byte, 6), DstProtAddress: []byte{192, 0, 2, 10}})...))
	if _, ok := Encapsulate(arp, headroom, decodeOK(t, arp[headroom:]), tun); ok {
		t.Error("encapsulated ARP")
	}
}

func TestECNEncapsulate(t *testing.T) {
	for _, tc := range []struct{ in, want uint8 }{
		{0x00, 0x00}, {0x01, 0x01}, {0x02, 0x02}, {0x03, 0x02},
		{0xb8, 0xb8}, {0xbb, 0xba}, {0xfd, 0xfd}, {0xff, 0xfe},
	} {
		if got := ECNEncapsulate(tc.in); got != tc.want {
			t.Errorf("ECNEncapsulate(%#02x) = %#02x, want %#02x", tc.in, got, tc.want)
		}
	}
}

func TestTunnelMTU(t *testing.T) {
	for _, tc := range []struct {
		link   int
		outer6 bool
		mtu    int
		ok     bool
	}{
		{1500, false, 1480, true},
		{1500, true, 1460, true},
		{88, false, 68, true},
		{87, false, 67, false},
		{1320, true, 1280, true},
		{1319, true, 1279, false},
		{9000, false, 8980, true},
	} {
		if mtu, ok := TunnelMTU(tc.link, tc.outer6); mtu != tc.mtu || ok != tc.ok {
			t.Errorf("TunnelMTU(%d, %v) = %d, %v; want %d, %v", tc.link, tc.outer6, mtu, ok, tc.mtu, tc.ok)
		}
	}
}

func TestExceedsMTU(t *testing.T) {
	df := decodeOK(t, frametest.TCP4(t, frametest.Opts{DF: true, Payload: 1450}, "198.51.100.7", "192.0.2.10", 1, 2)) // 1490 bytes
	nodf := decodeOK(t, frametest.TCP4(t, frametest.Opts{Payload: 1450}, "198.51.100.7", "192.0.2.10", 1, 2))
	v6 := decodeOK(t, frametest.TCP6(t, frametest.Opts{Payload: 1430}, "2001:db8:1::7", "2001:db8::10", 1, 2)) // 1490 bytes
	for _, tc := range []struct {
		name     string
		p        *Parsed
		mtu      int
		pmtuDisc bool
		want     bool
	}{
		{"df over", df, 1480, true, true},
		{"df exact fit", df, 1490, true, false},
		{"df pmtu_disc off", df, 1480, false, false},
		{"no df", nodf, 1480, true, false},
		{"v6 over", v6, 1480, false, true},
		{"v6 fits", v6, 1500, true, false},
	} {
		if got := ExceedsMTU(tc.p, tc.mtu, tc.pmtuDisc); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestTransmitVectors12_16 checks docs/ipvs-semantics.md §12.16: client 198.51.100.7:40000 ->
// VIP 192.0.2.10:80, TTL 64, TOS 0x02 (ECT(0)), DF, total length 60; real server
// 10.0.0.5:8080; director source 10.0.0.1; route MTU 1500; pmtu_disc 1.
func TestTransmitVectors12_16(t *testing.T) {
	const (
		client, vip, rs, lb = "198.51.100.7", "192.0.2.10", "10.0.0.5", "10.0.0.1"
		routeMTU            = 1500
	)
	request := func(tos uint8, payloadLen int) []byte {
		return withHeadroom(frametest.TCP4(t, frametest.Opts{TTL: 64, TOS: tos, DF: true, Payload: payloadLen, Flags: TCPFlagACK | TCPFlagPSH}, client, vip, 40000, 80))
	}
	ip4 := func(t *testing.T, f []byte) *layers.IPv4 {
		t.Helper()
		return frametest.CheckOracle(t, f, false, true).Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	}

	t.Run("request", func(t *testing.T) {
		f := request(0x02, 20)
		if ip := ip4(t, f[headroom:]); ip.Length != 60 {
			t.Fatalf("total length %d, want 60", ip.Length)
		}
	})

	t.Run("DR", func(t *testing.T) {
		buf := request(0x02, 20)
		f := buf[headroom:]
		p := decodeOK(t, f)
		if !DecTTL(f, p) {
			t.Fatal("DecTTL refused")
		}
		SetMACs(f, frametest.MACRS, frametest.MACLB)
		pkt := frametest.CheckOracle(t, f, false, true)
		ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		e := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		if ip.SrcIP.String() != client || ip.DstIP.String() != vip || tcp.SrcPort != 40000 || tcp.DstPort != 80 {
			t.Errorf("addresses changed: %v:%d -> %v:%d", ip.SrcIP, tcp.SrcPort, ip.DstIP, tcp.DstPort)
		}
		if ip.TTL != 63 || !bytes.Equal(e.DstMAC, frametest.MACRS[:]) {
			t.Errorf("TTL %d, L2 next hop %v; want 63, the real server", ip.TTL, e.DstMAC)
		}
	})

	t.Run("NAT", func(t *testing.T) {
		buf := request(0x02, 20)
		f := buf[headroom:]
		p := decodeOK(t, f)
		DecTTL(f, p)
		if !NATInbound(f, p, frametest.A16(rs), 8080) {
			t.Fatal("refused")
		}
		pkt := frametest.CheckOracle(t, f, false, true)
		ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if ip.SrcIP.String() != client || tcp.SrcPort != 40000 || ip.DstIP.String() != rs || tcp.DstPort != 8080 || ip.TTL != 63 {
			t.Errorf("got %v:%d -> %v:%d TTL %d", ip.SrcIP, tcp.SrcPort, ip.DstIP, tcp.DstPort, ip.TTL)
		}

		reply := frametest.TCP4(t, frametest.Opts{TTL: 64, Flags: TCPFlagSYN | TCPFlagACK}, rs, client, 8080, 40000)
		q := decodeOK(t, reply)
		if !NATOutbound(reply, q, frametest.A16(vip), 80) {
			t.Fatal("refused")
		}
		pkt = frametest.CheckOracle(t, reply, false, true)
		ip = pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp = pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if ip.SrcIP.String() != vip || tcp.SrcPort != 80 || ip.DstIP.String() != client || tcp.DstPort != 40000 || ip.TTL != 64 {
			t.Errorf("reply %v:%d -> %v:%d TTL %d", ip.SrcIP, tcp.SrcPort, ip.DstIP, tcp.DstPort, ip.TTL)
		}
	})

	tun := func(pmtuDisc bool) *Tunnel {
		return &Tunnel{Src: frametest.A16(lb), Dst: frametest.A16(rs), EthSrc: frametest.MACLB, EthDst: frametest.MACRS, ID: 1, PMTUDisc: pmtuDisc}
	}

	t.Run("TUN", func(t *testing.T) {
		buf := request(0x02, 20)
		p := decodeOK(t, buf[headroom:])
		DecTTL(buf[headroom:], p)
		innerWant := frametest.L3(t, frametest.TCP4(t, frametest.Opts{TTL: 63, TOS: 0x02, DF: true, Payload: 20, Flags: TCPFlagACK | TCPFlagPSH}, client, vip, 40000, 80))
		mtu, ok := TunnelMTU(routeMTU, false)
		if !ok || ExceedsMTU(p, mtu, true) {
			t.Fatal("60-byte packet does not fit the tunnel")
		}
		out, ok := Encapsulate(buf, headroom, p, tun(true))
		if !ok {
			t.Fatal("refused")
		}
		pkt := frametest.CheckOracle(t, out, false, true)
		outer := pkt.Layers()[1].(*layers.IPv4)
		if outer.SrcIP.String() != lb || outer.DstIP.String() != rs || outer.Protocol != layers.IPProtocolIPv4 ||
			outer.TTL != 63 || outer.TOS != 0x02 || outer.Flags&layers.IPv4DontFragment == 0 || outer.Length != 80 {
			t.Errorf("outer %v -> %v proto %v TTL %d TOS %#x flags %v length %d", outer.SrcIP, outer.DstIP, outer.Protocol, outer.TTL, outer.TOS, outer.Flags, outer.Length)
		}
		if inner := out[EthernetHeaderLen+IPv4MinHeaderLen:]; !bytes.Equal(inner, innerWant) {
			t.Errorf("inner packet\n got %x\nwant %x", inner, innerWant)
		}
	})

	t.Run("TUN frag needed", func(t *testing.T) {
		buf := request(0x02, 1490-40)
		f := buf[headroom:]
		p := decodeOK(t, f)
		DecTTL(f, p)
		if p.End-p.L3Off != 1490 {
			t.Fatalf("inner length %d", p.End-p.L3Off)
		}
		mtu, ok := TunnelMTU(routeMTU, false)
		if !ok || !ExceedsMTU(p, mtu, true) {
			t.Fatalf("1490-byte DF packet fits a tunnel MTU of %d", mtu)
		}
		out := make([]byte, ICMPErrorMaxFrame)
		n, ok := BuildICMPError(out, f, p, &ICMPReply{Kind: ICMPFragNeeded, MTU: uint32(mtu), Src: p.Dst, EthSrc: frametest.MACLB, EthDst: frametest.MACClient})
		if !ok {
			t.Fatal("no ICMP built")
		}
		pkt := frametest.CheckOracle(t, out[:n], false, true)
		ip := pkt.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		icmp := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		if ip.DstIP.String() != client || icmp.TypeCode != layers.CreateICMPv4TypeCode(3, 4) || icmp.Seq != 1480 {
			t.Errorf("ICMP to %v %v MTU %d; want %s frag-needed MTU 1480", ip.DstIP, icmp.TypeCode, icmp.Seq, client)
		}
	})

	t.Run("TUN pmtu_disc 0", func(t *testing.T) {
		buf := request(0x02, 1490-40)
		p := decodeOK(t, buf[headroom:])
		DecTTL(buf[headroom:], p)
		mtu, _ := TunnelMTU(routeMTU, false)
		if ExceedsMTU(p, mtu, false) {
			t.Error("MTU checked with pmtu_disc 0")
		}
		out, ok := Encapsulate(buf, headroom, p, tun(false))
		if !ok {
			t.Fatal("refused")
		}
		if outer := IPv4(out[EthernetHeaderLen:]); outer.DF() {
			t.Error("outer DF set with pmtu_disc 0")
		}
	})

	t.Run("TUN CE", func(t *testing.T) {
		buf := request(0x03, 20)
		p := decodeOK(t, buf[headroom:])
		DecTTL(buf[headroom:], p)
		out, _ := Encapsulate(buf, headroom, p, tun(true))
		if outer := ip4(t, out); outer.TOS != 0x02 {
			t.Errorf("outer TOS %#x, want 0x02", outer.TOS)
		}
		if inner := IPv4(out[EthernetHeaderLen+IPv4MinHeaderLen:]); inner.TOS() != 0x03 {
			t.Errorf("inner TOS %#x changed", inner.TOS())
		}
	})
}

func TestEncapsulateAllocs(t *testing.T) {
	f := frametest.TCP4(t, frametest.Opts{Payload: 100, DF: true}, "198.51.100.7", "192.0.2.10", 40000, 80)
	buf := withHeadroom(f)
	p := decodeOK(t, buf[headroom:])
	tun := &Tunnel{Src: frametest.A16("10.0.0.1"), Dst: frametest.A16("10.0.0.5"), PMTUDisc: true}
	tun6 := &Tunnel{IPv6: true, Src: frametest.A16("2001:db8:ffff::1"), Dst: frametest.A16("2001:db8:ffff::5")}
	var sink int
	if n := testing.AllocsPerRun(100, func() {
		// Encapsulate overwrites the Ethernet header it reads the tag from; restore it.
		copy(buf[headroom:], f[:EthernetHeaderLen])
		out, _ := Encapsulate(buf, headroom, p, tun)
		sink += len(out)
		copy(buf[headroom:], f[:EthernetHeaderLen])
		out, _ = Encapsulate(buf, headroom, p, tun6)
		sink += len(out)
		m, _ := TunnelMTU(1500, false)
		if ExceedsMTU(p, m, true) {
			sink++
		}
	}); n != 0 {
		t.Errorf("Encapsulate allocates %v times per run", n)
	}
	_ = sink
}

func BenchmarkEncapsulate(b *testing.B) {
	f := frametest.TCP4(b, frametest.Opts{Payload: 64, DF: true}, "198.51.100.7", "192.0.2.10", 40000, 80)
	buf := withHeadroom(f)
	p := decodeOK(b, buf[headroom:])
	tun := &Tunnel{Src: frametest.A16("10.0.0.1"), Dst: frametest.A16("10.0.0.5"), EthSrc: frametest.MACLB, EthDst: frametest.MACRS, PMTUDisc: true}
	b.ReportAllocs()
	for b.Loop() {
		Encapsulate(buf, headroom, p, tun)
	}
}
