package header

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/gvs-lb/gvs/dataplane/internal/frametest"
)

// wantICMPError builds with gopacket the frame BuildICMPError must write.
func wantICMPError(t testing.TB, v6 bool, vlan uint16, tos uint8, id uint16, src, dst string, typ, code uint8, rest uint32, quote []byte) []byte {
	t.Helper()
	e := &layers.Ethernet{SrcMAC: net.HardwareAddr(frametest.MACLB[:]), DstMAC: net.HardwareAddr(frametest.MACClient[:]), EthernetType: layers.EthernetTypeIPv4}
	if v6 {
		e.EthernetType = layers.EthernetTypeIPv6
	}
	ls := []gopacket.SerializableLayer{e}
	if vlan != 0 {
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: vlan, Priority: 3, Type: e.EthernetType})
		e.EthernetType = layers.EthernetTypeDot1Q
	}
	if v6 {
		ls = append(ls, &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolICMPv6, SrcIP: frametest.IPOf(src), DstIP: frametest.IPOf(dst)},
			&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, code)},
			gopacket.Payload(append(binary.BigEndian.AppendUint32(nil, rest), quote...)))
	} else {
		ls = append(ls, &layers.IPv4{Version: 4, TTL: 64, TOS: tos, Id: id, Protocol: layers.IPProtocolICMPv4, SrcIP: frametest.IPOf(src), DstIP: frametest.IPOf(dst)},
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code), Id: uint16(rest >> 16), Seq: uint16(rest)},
			gopacket.Payload(quote))
	}
	f := frametest.Serialize(t, ls...)
	// gopacket pads to the Ethernet minimum; BuildICMPError leaves that to the NIC.
	n := EthernetHeaderLen + IPv4MinHeaderLen + ICMPHeaderLen + len(quote)
	if v6 {
		n += IPv6HeaderLen - IPv4MinHeaderLen
	}
	if vlan != 0 {
		n += VLANTagLen
	}
	return f[:n]
}

func TestBuildICMPError(t *testing.T) {
	const (
		client = "198.51.100.7"
		vip    = "192.0.2.10"
		c6     = "2001:db8:1::7"
		vip6   = "2001:db8::10"
	)
	big4 := frametest.TCP4(t, frametest.Opts{Payload: 1460, DF: true, TOS: 0xb9}, client, vip, 40000, 80)
	big6 := frametest.UDP6(t, frametest.Opts{Payload: 1452, VLAN: 30}, c6, vip6, 40000, 7000)
	small4 := frametest.TCP4(t, frametest.Opts{VLAN: 30, TOS: 0x02}, client, vip, 40000, 80) // padded
	small6 := frametest.TCP6(t, frametest.Opts{}, c6, vip6, 40000, 80)
	echo4 := frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeIPv4), frametest.IP4Layer(frametest.Opts{}, client, vip, layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(ICMPv4EchoRequest, 0), Id: 1, Seq: 1}, frametest.Payload(20))...)

	tests := []struct {
		name  string
		frame []byte
		kind  ICMPErrorKind
		mtu   uint32
		typ   uint8
		code  uint8
		rest  uint32
		quote int // bytes of the offending IP packet quoted
	}{
		{"v4 port unreachable small", small4, ICMPPortUnreachable, 0, 3, 3, 0, 40},
		{"v4 frag needed big", big4, ICMPFragNeeded, 1480, 3, 4, 1480, 576 - 28},
		{"v4 time exceeded", big4, ICMPTimeExceeded, 0, 11, 0, 0, 576 - 28},
		{"v4 about an echo request", echo4, ICMPPortUnreachable, 0, 3, 3, 0, 48},
		{"v6 port unreachable", small6, ICMPPortUnreachable, 0, 1, 4, 0, 60},
		{"v6 packet too big", big6, ICMPFragNeeded, 1460, 2, 0, 1460, 1280 - 48},
		{"v6 time exceeded", big6, ICMPTimeExceeded, 0, 3, 0, 0, 1280 - 48},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := decodeOK(t, tt.frame)
			r := &ICMPReply{Kind: tt.kind, MTU: tt.mtu, Src: p.Dst, EthSrc: frametest.MACLB, EthDst: frametest.MACClient, ID: 0x1234}
			out := make([]byte, ICMPErrorMaxFrame)
			n, ok := BuildICMPError(out, tt.frame, p, r)
			if !ok {
				t.Fatal("refused")
			}
			quote := tt.frame[p.L3Off : p.L3Off+tt.quote]
			src, dst := vip, client
			if p.IPv6 {
				src, dst = vip6, c6
			}
			want := wantICMPError(t, p.IPv6, p.VLAN, 0xc0|p.TOS&0x1e, 0x1234, src, dst, tt.typ, tt.code, tt.rest, quote)
			if !bytes.Equal(out[:n], want) {
				t.Errorf("got  %x\nwant %x", out[:n], want)
			}
			frametest.CheckOracle(t, out[:n], false, true)
			q := decodeOK(t, out[:n])
			limit := 576
			if p.IPv6 {
				limit = 1280
			}
			if q.End-q.L3Off > limit {
				t.Errorf("IP length %d > %d", q.End-q.L3Off, limit)
			}
			if !q.HasEmbedded || q.EmbSrc != p.Src || q.EmbDst != p.Dst || q.EmbSrcPort != p.SrcPort {
				t.Errorf("our decoder does not find the offending packet in the error: %+v", q)
			}
		})
	}
}

func TestBuildICMPErrorTruncatesToBuffer(t *testing.T) {
	f := frametest.TCP4(t, frametest.Opts{Payload: 1000}, "198.51.100.7", "192.0.2.10", 40000, 80)
	p := decodeOK(t, f)
	r := &ICMPReply{Kind: ICMPPortUnreachable, Src: p.Dst, EthSrc: frametest.MACLB, EthDst: frametest.MACClient}
	out := make([]byte, 100)
	n, ok := BuildICMPError(out, f, p, r)
	if !ok || n != 100 {
		t.Fatalf("n %d ok %v, want 100 true", n, ok)
	}
	frametest.CheckOracle(t, out, false, true)
	if _, ok := BuildICMPError(out[:EthernetHeaderLen+IPv4MinHeaderLen+ICMPHeaderLen-1], f, p, r); ok {
		t.Error("built into a buffer too short for the headers")
	}
}

func TestBuildICMPErrorRefuses(t *testing.T) {
	const vip, vip6 = "192.0.2.10", "2001:db8::10"
	quote := frametest.L3(t, frametest.TCP4(t, frametest.Opts{}, vip, "198.51.100.7", 80, 40000))
	quote6 := frametest.L3(t, frametest.TCP6(t, frametest.Opts{}, vip6, "2001:db8:1::7", 80, 40000))
	bcast := frametest.TCP4(t, frametest.Opts{}, "198.51.100.7", vip, 1, 2)
	copy(bcast, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	mcastMAC := frametest.TCP6(t, frametest.Opts{}, "2001:db8:1::7", vip6, 1, 2)
	copy(mcastMAC, []byte{0x33, 0x33, 0, 0, 0, 1})
	frag := func() []byte {
		ip := frametest.IP4Layer(frametest.Opts{}, "198.51.100.7", vip, layers.IPProtocolTCP)
		ip.FragOffset = 100
		return frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeIPv4), ip, frametest.Payload(40))...)
	}()
	frag6 := ip6Raw(frametest.Opts{}, "2001:db8:1::7", vip6, []ext{{typ: IPProtoFragment, n: 8, frag: 1448}}, IPProtoTCP, make([]byte, 40))
	icmp4 := func(typ uint8) []byte {
		return frametest.ICMP4Error(t, frametest.Opts{}, "198.51.100.1", vip, typ, 0, quote, 28)
	}
	icmp6 := func(typ uint8) []byte {
		return frametest.ICMP6Error(t, frametest.Opts{}, "2001:db8:1::1", vip6, typ, 0, quote6, 48)
	}
	arp := frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeARP), &layers.ARP{AddrType: 1, Protocol: 0x800, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: 1, SourceHwAddress: frametest.MACClient[:], SourceProtAddress: []byte{192, 0, 2, 1}, DstHwAddress: make([]byte, 6), DstProtAddress: []byte{192, 0, 2, 10}})...)

	tests := []struct {
		name  string
		frame []byte
		kind  ICMPErrorKind
	}{
		{"icmp4 dest unreachable", icmp4(3), ICMPPortUnreachable},
		{"icmp4 time exceeded", icmp4(11), ICMPTimeExceeded},
		{"icmp4 redirect", icmp4(5), ICMPPortUnreachable},
		{"icmp4 source quench", icmp4(4), ICMPPortUnreachable},
		{"icmp4 param problem", icmp4(12), ICMPPortUnreachable},
		{"icmp4 unknown type", frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeIPv4), frametest.IP4Layer(frametest.Opts{}, "198.51.100.7", vip, layers.IPProtocolICMPv4),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(40, 0)})...), ICMPPortUnreachable},
		{"icmp6 dest unreachable", icmp6(1), ICMPPortUnreachable},
		{"icmp6 packet too big", icmp6(2), ICMPFragNeeded},
		{"icmp6 redirect", frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeIPv6), frametest.IP6Layer(frametest.Opts{}, "fe80::1", vip6, layers.IPProtocolICMPv6),
			&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(ICMPv6Redirect, 0)}, frametest.Payload(36))...), ICMPPortUnreachable},
		{"non-first fragment", frag, ICMPFragNeeded},
		{"non-first fragment v6", frag6, ICMPFragNeeded},
		{"link-layer broadcast", bcast, ICMPPortUnreachable},
		{"link-layer multicast", mcastMAC, ICMPPortUnreachable},
		{"to multicast", frametest.TCP4(t, frametest.Opts{}, "198.51.100.7", "224.0.0.5", 1, 2), ICMPPortUnreachable},
		{"to limited broadcast", frametest.UDP4(t, frametest.Opts{}, "198.51.100.7", "255.255.255.255", 68, 67), ICMPPortUnreachable},
		{"from 0.0.0.0", frametest.UDP4(t, frametest.Opts{}, "0.0.0.0", vip, 68, 67), ICMPPortUnreachable},
		{"from loopback", frametest.TCP4(t, frametest.Opts{}, "127.0.0.1", vip, 1, 2), ICMPPortUnreachable},
		{"from multicast", frametest.TCP4(t, frametest.Opts{}, "239.1.1.1", vip, 1, 2), ICMPPortUnreachable},
		{"from class e", frametest.TCP4(t, frametest.Opts{}, "240.0.0.1", vip, 1, 2), ICMPPortUnreachable},
		{"v6 from unspecified", frametest.TCP6(t, frametest.Opts{}, "::", vip6, 1, 2), ICMPPortUnreachable},
		{"v6 from loopback", frametest.TCP6(t, frametest.Opts{}, "::1", vip6, 1, 2), ICMPPortUnreachable},
		{"v6 from multicast", frametest.TCP6(t, frametest.Opts{}, "ff02::1", vip6, 1, 2), ICMPPortUnreachable},
		{"v6 to multicast", frametest.UDP6(t, frametest.Opts{}, "2001:db8:1::7", "ff02::fb", 1, 2), ICMPPortUnreachable},
		{"arp", arp, ICMPPortUnreachable},
		{"invalid kind", frametest.TCP4(t, frametest.Opts{}, "198.51.100.7", vip, 1, 2), 0},
		{"kind out of range", frametest.TCP4(t, frametest.Opts{}, "198.51.100.7", vip, 1, 2), ICMPTimeExceeded + 1},
	}
	out := make([]byte, ICMPErrorMaxFrame)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := decodeOK(t, tt.frame)
			clear(out)
			r := &ICMPReply{Kind: tt.kind, MTU: 1400, Src: frametest.A16(vip), EthSrc: frametest.MACLB, EthDst: frametest.MACClient}
			if p.IPv6 {
				r.Src = frametest.A16(vip6)
			}
			if n, ok := BuildICMPError(out, tt.frame, p, r); ok || n != 0 {
				t.Errorf("built %d bytes, want a refusal", n)
			}
			if !bytes.Equal(out, make([]byte, len(out))) {
				t.Error("wrote into out while refusing")
			}
		})
	}
}

func TestBuildICMPErrorAllocs(t *testing.T) {
	f4 := frametest.TCP4(t, frametest.Opts{Payload: 1000}, "198.51.100.7", "192.0.2.10", 40000, 80)
	f6 := frametest.TCP6(t, frametest.Opts{Payload: 1400}, "2001:db8:1::7", "2001:db8::10", 40000, 80)
	p4, p6 := decodeOK(t, f4), decodeOK(t, f6)
	r4 := &ICMPReply{Kind: ICMPFragNeeded, MTU: 1480, Src: p4.Dst, EthSrc: frametest.MACLB, EthDst: frametest.MACClient}
	r6 := &ICMPReply{Kind: ICMPFragNeeded, MTU: 1280, Src: p6.Dst, EthSrc: frametest.MACLB, EthDst: frametest.MACClient}
	out := make([]byte, ICMPErrorMaxFrame)
	if n := testing.AllocsPerRun(100, func() {
		BuildICMPError(out, f4, p4, r4)
		BuildICMPError(out, f6, p6, r6)
	}); n != 0 {
		t.Errorf("BuildICMPError allocates %v times per run", n)
	}
}

func BenchmarkBuildICMPError(b *testing.B) {
	f := frametest.TCP4(b, frametest.Opts{Payload: 1460, DF: true}, "198.51.100.7", "192.0.2.10", 40000, 80)
	p := decodeOK(b, f)
	r := &ICMPReply{Kind: ICMPFragNeeded, MTU: 1480, Src: p.Dst, EthSrc: frametest.MACLB, EthDst: frametest.MACClient}
	out := make([]byte, ICMPErrorMaxFrame)
	b.ReportAllocs()
	for b.Loop() {
		BuildICMPError(out, f, p, r)
	}
}
