package dataplane

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// wantICMPError builds with gopacket the frame BuildICMPError must write.
func wantICMPError(t testing.TB, v6 bool, vlan uint16, tos uint8, id uint16, src, dst string, typ, code uint8, rest uint32, quote []byte) []byte {
	t.Helper()
	e := &layers.Ethernet{SrcMAC: net.HardwareAddr(macLB[:]), DstMAC: net.HardwareAddr(macClient[:]), EthernetType: layers.EthernetTypeIPv4}
	if v6 {
		e.EthernetType = layers.EthernetTypeIPv6
	}
	ls := []gopacket.SerializableLayer{e}
	if vlan != 0 {
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: vlan, Priority: 3, Type: e.EthernetType})
		e.EthernetType = layers.EthernetTypeDot1Q
	}
	if v6 {
		ls = append(ls, &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolICMPv6, SrcIP: ipOf(src), DstIP: ipOf(dst)},
			&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, code)},
			gopacket.Payload(append(binary.BigEndian.AppendUint32(nil, rest), quote...)))
	} else {
		ls = append(ls, &layers.IPv4{Version: 4, TTL: 64, TOS: tos, Id: id, Protocol: layers.IPProtocolICMPv4, SrcIP: ipOf(src), DstIP: ipOf(dst)},
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code), Id: uint16(rest >> 16), Seq: uint16(rest)},
			gopacket.Payload(quote))
	}
	f := serialize(t, ls...)
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
	big4 := tcp4(t, frameOpts{payload: 1460, df: true, tos: 0xb9}, client, vip, 40000, 80)
	big6 := udp6(t, frameOpts{payload: 1452, vlan: 30}, c6, vip6, 40000, 7000)
	small4 := tcp4(t, frameOpts{vlan: 30, tos: 0x02}, client, vip, 40000, 80) // padded
	small6 := tcp6(t, frameOpts{}, c6, vip6, 40000, 80)
	echo4 := serialize(t, append(ethLayers(frameOpts{}, layers.EthernetTypeIPv4), ip4Layer(frameOpts{}, client, vip, layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(ICMPv4EchoRequest, 0), Id: 1, Seq: 1}, payload(20))...)

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
			r := &ICMPReply{Kind: tt.kind, MTU: tt.mtu, Src: p.Dst, EthSrc: macLB, EthDst: macClient, ID: 0x1234}
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
			checkOracle(t, out[:n], false, true)
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
	f := tcp4(t, frameOpts{payload: 1000}, "198.51.100.7", "192.0.2.10", 40000, 80)
	p := decodeOK(t, f)
	r := &ICMPReply{Kind: ICMPPortUnreachable, Src: p.Dst, EthSrc: macLB, EthDst: macClient}
	out := make([]byte, 100)
	n, ok := BuildICMPError(out, f, p, r)
	if !ok || n != 100 {
		t.Fatalf("n %d ok %v, want 100 true", n, ok)
	}
	checkOracle(t, out, false, true)
	if _, ok := BuildICMPError(out[:EthernetHeaderLen+IPv4MinHeaderLen+ICMPHeaderLen-1], f, p, r); ok {
		t.Error("built into a buffer too short for the headers")
	}
}

func TestBuildICMPErrorRefuses(t *testing.T) {
	const vip, vip6 = "192.0.2.10", "2001:db8::10"
	quote := l3(t, tcp4(t, frameOpts{}, vip, "198.51.100.7", 80, 40000))
	quote6 := l3(t, tcp6(t, frameOpts{}, vip6, "2001:db8:1::7", 80, 40000))
	bcast := tcp4(t, frameOpts{}, "198.51.100.7", vip, 1, 2)
	copy(bcast, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	mcastMAC := tcp6(t, frameOpts{}, "2001:db8:1::7", vip6, 1, 2)
	copy(mcastMAC, []byte{0x33, 0x33, 0, 0, 0, 1})
	frag := func() []byte {
		ip := ip4Layer(frameOpts{}, "198.51.100.7", vip, layers.IPProtocolTCP)
		ip.FragOffset = 100
		return serialize(t, append(ethLayers(frameOpts{}, layers.EthernetTypeIPv4), ip, payload(40))...)
	}()
	frag6 := ip6Raw(frameOpts{}, "2001:db8:1::7", vip6, []ext{{typ: IPProtoFragment, n: 8, frag: 1448}}, IPProtoTCP, make([]byte, 40))
	icmp4 := func(typ uint8) []byte {
		return icmp4Error(t, frameOpts{}, "198.51.100.1", vip, typ, 0, quote, 28)
	}
	icmp6 := func(typ uint8) []byte {
		return icmp6Error(t, frameOpts{}, "2001:db8:1::1", vip6, typ, 0, quote6, 48)
	}
	arp := serialize(t, append(ethLayers(frameOpts{}, layers.EthernetTypeARP), &layers.ARP{AddrType: 1, Protocol: 0x800, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: 1, SourceHwAddress: macClient[:], SourceProtAddress: []byte{192, 0, 2, 1}, DstHwAddress: make([]byte, 6), DstProtAddress: []byte{192, 0, 2, 10}})...)

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
		{"icmp4 unknown type", serialize(t, append(ethLayers(frameOpts{}, layers.EthernetTypeIPv4), ip4Layer(frameOpts{}, "198.51.100.7", vip, layers.IPProtocolICMPv4),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(40, 0)})...), ICMPPortUnreachable},
		{"icmp6 dest unreachable", icmp6(1), ICMPPortUnreachable},
		{"icmp6 packet too big", icmp6(2), ICMPFragNeeded},
		{"icmp6 redirect", serialize(t, append(ethLayers(frameOpts{}, layers.EthernetTypeIPv6), ip6Layer(frameOpts{}, "fe80::1", vip6, layers.IPProtocolICMPv6),
			&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(ICMPv6Redirect, 0)}, payload(36))...), ICMPPortUnreachable},
		{"non-first fragment", frag, ICMPFragNeeded},
		{"non-first fragment v6", frag6, ICMPFragNeeded},
		{"link-layer broadcast", bcast, ICMPPortUnreachable},
		{"link-layer multicast", mcastMAC, ICMPPortUnreachable},
		{"to multicast", tcp4(t, frameOpts{}, "198.51.100.7", "224.0.0.5", 1, 2), ICMPPortUnreachable},
		{"to limited broadcast", udp4(t, frameOpts{}, "198.51.100.7", "255.255.255.255", 68, 67), ICMPPortUnreachable},
		{"from 0.0.0.0", udp4(t, frameOpts{}, "0.0.0.0", vip, 68, 67), ICMPPortUnreachable},
		{"from loopback", tcp4(t, frameOpts{}, "127.0.0.1", vip, 1, 2), ICMPPortUnreachable},
		{"from multicast", tcp4(t, frameOpts{}, "239.1.1.1", vip, 1, 2), ICMPPortUnreachable},
		{"from class e", tcp4(t, frameOpts{}, "240.0.0.1", vip, 1, 2), ICMPPortUnreachable},
		{"v6 from unspecified", tcp6(t, frameOpts{}, "::", vip6, 1, 2), ICMPPortUnreachable},
		{"v6 from loopback", tcp6(t, frameOpts{}, "::1", vip6, 1, 2), ICMPPortUnreachable},
		{"v6 from multicast", tcp6(t, frameOpts{}, "ff02::1", vip6, 1, 2), ICMPPortUnreachable},
		{"v6 to multicast", udp6(t, frameOpts{}, "2001:db8:1::7", "ff02::fb", 1, 2), ICMPPortUnreachable},
		{"arp", arp, ICMPPortUnreachable},
		{"invalid kind", tcp4(t, frameOpts{}, "198.51.100.7", vip, 1, 2), 0},
		{"kind out of range", tcp4(t, frameOpts{}, "198.51.100.7", vip, 1, 2), ICMPTimeExceeded + 1},
	}
	out := make([]byte, ICMPErrorMaxFrame)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := decodeOK(t, tt.frame)
			clear(out)
			r := &ICMPReply{Kind: tt.kind, MTU: 1400, Src: a16(vip), EthSrc: macLB, EthDst: macClient}
			if p.IPv6 {
				r.Src = a16(vip6)
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
	f4 := tcp4(t, frameOpts{payload: 1000}, "198.51.100.7", "192.0.2.10", 40000, 80)
	f6 := tcp6(t, frameOpts{payload: 1400}, "2001:db8:1::7", "2001:db8::10", 40000, 80)
	p4, p6 := decodeOK(t, f4), decodeOK(t, f6)
	r4 := &ICMPReply{Kind: ICMPFragNeeded, MTU: 1480, Src: p4.Dst, EthSrc: macLB, EthDst: macClient}
	r6 := &ICMPReply{Kind: ICMPFragNeeded, MTU: 1280, Src: p6.Dst, EthSrc: macLB, EthDst: macClient}
	out := make([]byte, ICMPErrorMaxFrame)
	if n := testing.AllocsPerRun(100, func() {
		BuildICMPError(out, f4, p4, r4)
		BuildICMPError(out, f6, p6, r6)
	}); n != 0 {
		t.Errorf("BuildICMPError allocates %v times per run", n)
	}
}

func BenchmarkBuildICMPError(b *testing.B) {
	f := tcp4(b, frameOpts{payload: 1460, df: true}, "198.51.100.7", "192.0.2.10", 40000, 80)
	p := decodeOK(b, f)
	r := &ICMPReply{Kind: ICMPFragNeeded, MTU: 1480, Src: p.Dst, EthSrc: macLB, EthDst: macClient}
	out := make([]byte, ICMPErrorMaxFrame)
	b.ReportAllocs()
	for b.Loop() {
		BuildICMPError(out, f, p, r)
	}
}
