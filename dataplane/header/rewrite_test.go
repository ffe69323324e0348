package header

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/gvs-lb/gvs/dataplane/internal/frametest"
)

// decodeOK decodes frame and fails the test on a drop.
func decodeOK(t testing.TB, frame []byte) *Parsed {
	t.Helper()
	p := new(Parsed)
	if d := p.Decode(frame); d != DropNone {
		t.Fatalf("Decode = %v", d)
	}
	return p
}

// resyncs asserts that p, as the rewrites left it, equals a fresh Decode of frame.
func resyncs(t testing.TB, p *Parsed, frame []byte) {
	t.Helper()
	var q Parsed
	if d := q.Decode(frame); d != DropNone {
		t.Fatalf("rewritten frame does not decode: %v", d)
	}
	if *p != q {
		t.Errorf("Parsed not kept in step with the frame:%s", diffParsed(*p, q))
	}
}

func TestDecTTL(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		want  []byte // nil: DecTTL must refuse and change nothing
	}{
		{"ipv4", frametest.TCP4(t, frametest.Opts{TTL: 64, DF: true, TOS: 0x02, Payload: 8}, "198.51.100.7", "192.0.2.10", 40000, 80),
			frametest.TCP4(t, frametest.Opts{TTL: 63, DF: true, TOS: 0x02, Payload: 8}, "198.51.100.7", "192.0.2.10", 40000, 80)},
		{"ipv4 ttl 2", frametest.UDP4(t, frametest.Opts{TTL: 2, VLAN: 9}, "198.51.100.7", "192.0.2.10", 40000, 7000),
			frametest.UDP4(t, frametest.Opts{TTL: 1, VLAN: 9}, "198.51.100.7", "192.0.2.10", 40000, 7000)},
		{"ipv4 ttl 255", frametest.UDP4(t, frametest.Opts{TTL: 255}, "198.51.100.7", "192.0.2.10", 40000, 7000),
			frametest.UDP4(t, frametest.Opts{TTL: 254}, "198.51.100.7", "192.0.2.10", 40000, 7000)},
		{"ipv6", frametest.TCP6(t, frametest.Opts{TTL: 64}, "2001:db8:1::7", "2001:db8::10", 40000, 80),
			frametest.TCP6(t, frametest.Opts{TTL: 63}, "2001:db8:1::7", "2001:db8::10", 40000, 80)},
		{"ipv4 ttl 1", frametest.TCP4(t, frametest.Opts{TTL: 1}, "198.51.100.7", "192.0.2.10", 40000, 80), nil},
		{"ipv6 hop limit 1", frametest.TCP6(t, frametest.Opts{TTL: 1}, "2001:db8:1::7", "2001:db8::10", 40000, 80), nil},
		{"arp", frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeARP), &layers.ARP{AddrType: 1, Protocol: 0x800, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: 1, SourceHwAddress: frametest.MACClient[:], SourceProtAddress: []byte{192, 0, 2, 1}, DstHwAddress: make([]byte, 6), DstProtAddress: []byte{192, 0, 2, 10}})...), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := append([]byte(nil), tt.frame...)
			p := decodeOK(t, f)
			ok := DecTTL(f, p)
			if tt.want == nil {
				if ok || !bytes.Equal(f, tt.frame) {
					t.Fatalf("DecTTL = %v and changed the frame; want false, unchanged", ok)
				}
				return
			}
			if !ok {
				t.Fatal("DecTTL = false")
			}
			if !bytes.Equal(f, tt.want) {
				t.Errorf("got  %x\nwant %x", f, tt.want)
			}
			frametest.CheckOracle(t, f, false, true)
			resyncs(t, p, f)
		})
	}
	// TTL 0 (never valid on the wire, but Decode accepts it as Linux does).
	f := frametest.TCP4(t, frametest.Opts{}, "198.51.100.7", "192.0.2.10", 1, 2)
	f[EthernetHeaderLen+ip4TTL] = 0
	fixIPv4(f)
	if DecTTL(f, decodeOK(t, f)) {
		t.Error("DecTTL accepted TTL 0")
	}
}

func TestSetMACs(t *testing.T) {
	f := frametest.TCP4(t, frametest.Opts{VLAN: 3}, "198.51.100.7", "192.0.2.10", 40000, 80)
	SetMACs(f, frametest.MACRS, frametest.MACLB)
	e := frametest.CheckOracle(t, f, false, true).Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if !bytes.Equal(e.DstMAC, frametest.MACRS[:]) || !bytes.Equal(e.SrcMAC, frametest.MACLB[:]) {
		t.Errorf("MACs %v -> %v, want %x -> %x", e.SrcMAC, e.DstMAC, frametest.MACLB, frametest.MACRS)
	}
}

type natCase struct {
	name     string
	in, want []byte
	inbound  bool
	addr     string
	port     uint16
}

// natCases pairs each original frame with the frame gopacket builds directly with
// the translated addresses: the rewrite must produce it byte for byte.
func natCases(t testing.TB) []natCase {
	const (
		client = "198.51.100.7"
		vip    = "192.0.2.10"
		rs     = "10.0.0.5"
		c6     = "2001:db8:1::7"
		vip6   = "2001:db8::10"
		rs6    = "2001:db8:ffff::5"
	)
	var cs []natCase
	for _, o := range []frametest.Opts{{}, {Payload: 1}, {Payload: 1401, VLAN: 42}, {Payload: 7, Flags: TCPFlagACK | TCPFlagPSH, TTL: 17, TOS: 0xb8}} {
		cs = append(cs,
			natCase{"tcp4 in", frametest.TCP4(t, o, client, vip, 40000, 80), frametest.TCP4(t, o, client, rs, 40000, 8080), true, rs, 8080},
			natCase{"tcp4 out", frametest.TCP4(t, o, rs, client, 8080, 40000), frametest.TCP4(t, o, vip, client, 80, 40000), false, vip, 80},
			natCase{"udp4 in", frametest.UDP4(t, o, client, vip, 40000, 7000), frametest.UDP4(t, o, client, rs, 40000, 7001), true, rs, 7001},
			natCase{"udp4 out", frametest.UDP4(t, o, rs, client, 7001, 40000), frametest.UDP4(t, o, vip, client, 7000, 40000), false, vip, 7000},
			natCase{"tcp6 in", frametest.TCP6(t, o, c6, vip6, 40000, 80), frametest.TCP6(t, o, c6, rs6, 40000, 8080), true, rs6, 8080},
			natCase{"tcp6 out", frametest.TCP6(t, o, rs6, c6, 8080, 40000), frametest.TCP6(t, o, vip6, c6, 80, 40000), false, vip6, 80},
			natCase{"udp6 in", frametest.UDP6(t, o, c6, vip6, 40000, 7000), frametest.UDP6(t, o, c6, rs6, 40000, 7001), true, rs6, 7001},
			natCase{"udp6 out", frametest.UDP6(t, o, rs6, c6, 7001, 40000), frametest.UDP6(t, o, vip6, c6, 7000, 40000), false, vip6, 7000},
			natCase{"tcp4 same port", frametest.TCP4(t, o, client, vip, 40000, 80), frametest.TCP4(t, o, client, rs, 40000, 80), true, rs, 80},
		)
	}
	return cs
}

func TestNAT(t *testing.T) {
	for _, tt := range natCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			f := append([]byte(nil), tt.in...)
			p := decodeOK(t, f)
			var ok bool
			if tt.inbound {
				ok = NATInbound(f, p, frametest.A16(tt.addr), tt.port)
			} else {
				ok = NATOutbound(f, p, frametest.A16(tt.addr), tt.port)
			}
			if !ok {
				t.Fatal("rewrite refused")
			}
			if !bytes.Equal(f, tt.want) {
				t.Errorf("got  %x\nwant %x", f, tt.want)
			}
			frametest.CheckOracle(t, f, false, true)
			resyncs(t, p, f)
		})
	}
}

// TestNATUDPZeroChecksum: a datagram without checksum gets a full one (IPVS falls
// through to a full computation when the field is 0, docs/ipvs-semantics.md §7.2).
func TestNATUDPZeroChecksum(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		var in, want []byte
		if v6 {
			in = frametest.UDP6(t, frametest.Opts{Payload: 33}, "2001:db8:1::7", "2001:db8::10", 40000, 7000)
			want = frametest.UDP6(t, frametest.Opts{Payload: 33}, "2001:db8:1::7", "2001:db8:ffff::5", 40000, 7001)
		} else {
			in = frametest.UDP4(t, frametest.Opts{Payload: 33}, "198.51.100.7", "192.0.2.10", 40000, 7000)
			want = frametest.UDP4(t, frametest.Opts{Payload: 33}, "198.51.100.7", "10.0.0.5", 40000, 7001)
		}
		p := decodeOK(t, in)
		binary.BigEndian.PutUint16(in[p.L4Off+udpChecksum:], 0)
		addr := frametest.A16("10.0.0.5")
		if v6 {
			addr = frametest.A16("2001:db8:ffff::5")
		}
		if !NATInbound(in, p, addr, 7001) {
			t.Fatal("refused")
		}
		if !bytes.Equal(in, want) {
			t.Errorf("v6=%v: got  %x\nwant %x", v6, in, want)
		}
	}
}

// zeroSumUDP returns a UDP/IPv4 frame from src to dst whose correct checksum is 0,
// i.e. must be sent as 0xffff: the last payload word is chosen to make the sum ffff.
func zeroSumUDP(t testing.TB, src, dst string) []byte {
	f := frametest.UDP4(t, frametest.Opts{Payload: 20}, src, dst, 40000, 7000)
	p := decodeOK(t, f)
	u := f[p.L4Off:p.End]
	binary.BigEndian.PutUint16(u[len(u)-2:], 0)
	binary.BigEndian.PutUint16(u[udpChecksum:], 0)
	s := frametest.RefSum(u, frametest.RefPseudo(p.Src[:4], p.Dst[:4], IPProtoUDP, len(u)))
	binary.BigEndian.PutUint16(u[len(u)-2:], ^s) // now the sum is ffff
	if frametest.RefSum(u, frametest.RefPseudo(p.Src[:4], p.Dst[:4], IPProtoUDP, len(u))) != 0xffff {
		t.Fatal("construction failed")
	}
	binary.BigEndian.PutUint16(u[udpChecksum:], 0xffff)
	return f
}

func TestNATUDPComputedZeroSentAsFFFF(t *testing.T) {
	// The datagram is built so that after translation its checksum computes to 0.
	target := zeroSumUDP(t, "198.51.100.7", "10.0.0.5")
	p := decodeOK(t, target)
	payloadWord := binary.BigEndian.Uint16(target[p.End-2:])

	for _, absent := range []bool{false, true} {
		f := frametest.UDP4(t, frametest.Opts{Payload: 20}, "198.51.100.7", "192.0.2.10", 40000, 7001)
		q := decodeOK(t, f)
		binary.BigEndian.PutUint16(f[q.End-2:], payloadWord)
		u := f[q.L4Off:q.End]
		binary.BigEndian.PutUint16(u[udpChecksum:], 0)
		if !absent {
			binary.BigEndian.PutUint16(u[udpChecksum:], ^frametest.RefSum(u, frametest.RefPseudo(q.Src[:4], q.Dst[:4], IPProtoUDP, len(u))))
		}
		NATInbound(f, q, frametest.A16("10.0.0.5"), 7000)
		if got := binary.BigEndian.Uint16(f[q.L4Off+udpChecksum:]); got != 0xffff {
			t.Errorf("absent=%v: checksum %#04x, want 0xffff", absent, got)
		}
		// No re-serialisation: gopacket writes a computed 0 as 0, not 0xffff.
		frametest.CheckOracle(t, f, false, false)
	}
}

// TestNATFragments rewrites both fragments of a UDP datagram and checks that the
// reassembled datagram verifies with the new addresses.
func TestNATFragments(t *testing.T) {
	whole := frametest.L3(t, frametest.UDP4(t, frametest.Opts{Payload: 100}, "198.51.100.7", "192.0.2.10", 40000, 7000))
	udpBytes := whole[IPv4MinHeaderLen:] // 108 bytes
	mk := func(off int, data []byte, mf bool) []byte {
		ip := frametest.IP4Layer(frametest.Opts{IPID: 99}, "198.51.100.7", "192.0.2.10", layers.IPProtocolUDP)
		ip.FragOffset = uint16(off / 8)
		if mf {
			ip.Flags = layers.IPv4MoreFragments
		}
		return frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeIPv4), ip, gopacket.Payload(data))...)
	}
	first, second := mk(0, udpBytes[:48], true), mk(48, udpBytes[48:], false)
	var reassembled []byte
	for i, f := range [][]byte{first, second} {
		p := decodeOK(t, f)
		if !p.IsFragment || p.NonFirstFragment != (i == 1) || p.HasPorts != (i == 0) {
			t.Fatalf("fragment %d decoded as %+v", i, p)
		}
		if !NATInbound(f, p, frametest.A16("10.0.0.5"), 7001) {
			t.Fatalf("fragment %d: rewrite refused", i)
		}
		resyncs(t, p, f)
		if h := IPv4(f[p.L3Off:p.End]); !h.ChecksumValid() || h.DestinationAddress() != [4]byte{10, 0, 0, 5} {
			t.Fatalf("fragment %d: header %x", i, f[p.L3Off:p.L4Off])
		}
		reassembled = append(reassembled, f[p.L4Off:p.End]...)
	}
	if frametest.RefSum(reassembled, frametest.RefPseudo([]byte{198, 51, 100, 7}, []byte{10, 0, 0, 5}, IPProtoUDP, len(reassembled))) != 0xffff {
		t.Error("reassembled datagram does not verify")
	}
	if got := binary.BigEndian.Uint16(reassembled[udpDstPort:]); got != 7001 {
		t.Errorf("port %d", got)
	}

	// A first fragment without checksum keeps it absent: the rest of the datagram
	// is not here to compute one.
	f := mk(0, udpBytes[:48], true)
	p := decodeOK(t, f)
	binary.BigEndian.PutUint16(f[p.L4Off+udpChecksum:], 0)
	NATInbound(f, p, frametest.A16("10.0.0.5"), 7001)
	if c := binary.BigEndian.Uint16(f[p.L4Off+udpChecksum:]); c != 0 {
		t.Errorf("fragment checksum %#04x, want 0 (absent)", c)
	}
}

func TestNATRefuses(t *testing.T) {
	frames := map[string][]byte{
		"icmp": frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeIPv4), frametest.IP4Layer(frametest.Opts{}, "198.51.100.7", "192.0.2.10", layers.IPProtocolICMPv4),
			&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)})...),
		"gre":  frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeIPv4), frametest.IP4Layer(frametest.Opts{}, "198.51.100.7", "192.0.2.10", layers.IPProtocolGRE), frametest.Payload(8))...),
		"lldp": frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetType(0x88cc)), frametest.Payload(40))...),
	}
	for name, f := range frames {
		orig := append([]byte(nil), f...)
		p := decodeOK(t, f)
		if NATInbound(f, p, frametest.A16("10.0.0.5"), 1) || NATOutbound(f, p, frametest.A16("10.0.0.5"), 1) || NATICMPInbound(f, p, frametest.A16("10.0.0.5"), 1) || NATICMPOutbound(f, p, frametest.A16("10.0.0.5"), 1) {
			t.Errorf("%s: a NAT rewrite accepted it", name)
		}
		if !bytes.Equal(f, orig) {
			t.Errorf("%s: frame changed", name)
		}
	}
}

func TestNATICMP(t *testing.T) {
	const (
		client = "198.51.100.7"
		router = "198.51.100.1"
		vip    = "192.0.2.10"
		rs     = "10.0.0.5"
		c6     = "2001:db8:1::7"
		r6     = "2001:db8:1::1"
		vip6   = "2001:db8::10"
		rs6    = "2001:db8:ffff::5"
	)
	// A reply as it left the director (VIP:80 -> client) and as the real server
	// sent it (RS:8080 -> client); a request as the client sent it and as the
	// real server received it.
	reply4 := frametest.L3(t, frametest.TCP4(t, frametest.Opts{Payload: 30}, vip, client, 80, 40000))
	reply4rs := frametest.L3(t, frametest.TCP4(t, frametest.Opts{Payload: 30}, rs, client, 8080, 40000))
	req4 := frametest.L3(t, frametest.UDP4(t, frametest.Opts{Payload: 30}, client, vip, 40000, 7000))
	req4rs := frametest.L3(t, frametest.UDP4(t, frametest.Opts{Payload: 30}, client, rs, 40000, 7001))
	reply6 := frametest.L3(t, frametest.TCP6(t, frametest.Opts{Payload: 30}, vip6, c6, 80, 40000))
	reply6rs := frametest.L3(t, frametest.TCP6(t, frametest.Opts{Payload: 30}, rs6, c6, 8080, 40000))
	req6 := frametest.L3(t, frametest.UDP6(t, frametest.Opts{Payload: 30}, c6, vip6, 40000, 7000))
	req6rs := frametest.L3(t, frametest.UDP6(t, frametest.Opts{Payload: 30}, c6, rs6, 40000, 7001))

	// withL4Checksum makes the quote carry the L4 checksum of other (the packet
	// before translation), since translation leaves the quoted L4 checksum alone.
	withL4Checksum := func(q, other []byte, tcp bool) []byte {
		q = append([]byte(nil), q...)
		hl := IPv6HeaderLen
		if q[0]>>4 == 4 {
			hl = IPv4(q).HeaderLen()
		}
		off := hl + udpChecksum
		if tcp {
			off = hl + tcpChecksum
		}
		copy(q[off:off+2], other[off:off+2])
		return q
	}

	tests := []struct {
		name     string
		in, want []byte
		inbound  bool
		addr     string
		port     uint16
	}{
		{"v4 in frag needed, whole quote", frametest.ICMP4Error(t, frametest.Opts{}, router, vip, 3, 4, reply4, len(reply4)),
			frametest.ICMP4Error(t, frametest.Opts{}, router, rs, 3, 4, withL4Checksum(reply4rs, reply4, true), len(reply4)), true, rs, 8080},
		{"v4 in time exceeded, 28 bytes", frametest.ICMP4Error(t, frametest.Opts{VLAN: 8}, router, vip, 11, 0, reply4, 28),
			frametest.ICMP4Error(t, frametest.Opts{VLAN: 8}, router, rs, 11, 0, reply4rs, 28), true, rs, 8080},
		{"v4 out port unreachable", frametest.ICMP4Error(t, frametest.Opts{}, rs, client, 3, 3, req4rs, 36),
			frametest.ICMP4Error(t, frametest.Opts{}, vip, client, 3, 3, withL4Checksum(req4, req4rs, false), 36), false, vip, 7000},
		{"v6 in too big", frametest.ICMP6Error(t, frametest.Opts{}, r6, vip6, 2, 0, reply6, len(reply6)),
			frametest.ICMP6Error(t, frametest.Opts{}, r6, rs6, 2, 0, withL4Checksum(reply6rs, reply6, true), len(reply6)), true, rs6, 8080},
		{"v6 out unreachable", frametest.ICMP6Error(t, frametest.Opts{}, rs6, c6, 1, 4, req6rs, 48),
			frametest.ICMP6Error(t, frametest.Opts{}, vip6, c6, 1, 4, withL4Checksum(req6, req6rs, false), 48), false, vip6, 7000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := append([]byte(nil), tt.in...)
			p := decodeOK(t, f)
			if !p.HasEmbedded || !p.EmbHasPorts {
				t.Fatalf("no quote decoded: %+v", p)
			}
			var ok bool
			if tt.inbound {
				ok = NATICMPInbound(f, p, frametest.A16(tt.addr), tt.port)
			} else {
				ok = NATICMPOutbound(f, p, frametest.A16(tt.addr), tt.port)
			}
			if !ok {
				t.Fatal("refused")
			}
			if !bytes.Equal(f, tt.want) {
				t.Errorf("got  %x\nwant %x", f, tt.want)
			}
			frametest.CheckOracle(t, f, false, true)
			resyncs(t, p, f)
			if p.IPVersion == 4 {
				if q := IPv4(f[p.EmbL3Off:p.End]); !q.ChecksumValid() {
					t.Error("quoted IPv4 header checksum does not verify")
				}
			}
		})
	}
}

func TestRewriteAllocs(t *testing.T) {
	f4 := frametest.TCP4(t, frametest.Opts{Payload: 100}, "198.51.100.7", "192.0.2.10", 40000, 80)
	u4 := frametest.UDP4(t, frametest.Opts{Payload: 100}, "198.51.100.7", "192.0.2.10", 40000, 7000)
	f6 := frametest.TCP6(t, frametest.Opts{Payload: 100}, "2001:db8:1::7", "2001:db8::10", 40000, 80)
	icmp := frametest.ICMP4Error(t, frametest.Opts{}, "198.51.100.1", "192.0.2.10", 3, 4, frametest.L3(t, frametest.TCP4(t, frametest.Opts{}, "192.0.2.10", "198.51.100.7", 80, 40000)), 28)
	p4, pu, p6, pi := decodeOK(t, f4), decodeOK(t, u4), decodeOK(t, f6), decodeOK(t, icmp)
	binary.BigEndian.PutUint16(u4[pu.L4Off+udpChecksum:], 0) // exercise the full-checksum path
	rs, vip, rs6 := frametest.A16("10.0.0.5"), frametest.A16("192.0.2.10"), frametest.A16("2001:db8:ffff::5")
	n := testing.AllocsPerRun(100, func() {
		p4.TTL = 64
		DecTTL(f4, p4)
		SetMACs(f4, frametest.MACRS, frametest.MACLB)
		NATInbound(f4, p4, rs, 8080)
		NATOutbound(f4, p4, vip, 80)
		NATInbound(u4, pu, rs, 8080)
		NATInbound(f6, p6, rs6, 8080)
		NATICMPInbound(icmp, pi, rs, 8080)
		NATICMPOutbound(icmp, pi, vip, 80)
	})
	if n != 0 {
		t.Errorf("rewrites allocate %v times per run", n)
	}
}

func BenchmarkDecTTL(b *testing.B) {
	f := frametest.TCP4(b, frametest.Opts{}, "198.51.100.7", "192.0.2.10", 40000, 80)
	p := decodeOK(b, f)
	b.ReportAllocs()
	for b.Loop() {
		p.TTL = 64 // keep the TTL from running out; the frame's TTL just wraps
		DecTTL(f, p)
	}
}

func BenchmarkNAT(b *testing.B) {
	for _, c := range []struct {
		name  string
		frame []byte
		addr  [16]byte
	}{
		{"tcp4", frametest.TCP4(b, frametest.Opts{Payload: 64}, "198.51.100.7", "192.0.2.10", 40000, 80), frametest.A16("10.0.0.5")},
		{"udp4", frametest.UDP4(b, frametest.Opts{Payload: 64}, "198.51.100.7", "192.0.2.10", 40000, 7000), frametest.A16("10.0.0.5")},
		{"tcp6", frametest.TCP6(b, frametest.Opts{Payload: 64}, "2001:db8:1::7", "2001:db8::10", 40000, 80), frametest.A16("2001:db8:ffff::5")},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := decodeOK(b, c.frame)
			addrs := [2][16]byte{c.addr, p.Dst}
			ports := [2]uint16{8080, p.DstPort}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				NATInbound(c.frame, p, addrs[i&1], ports[i&1]) // one rewrite per op, alternating
				i++
			}
		})
	}
}

// TestChecksumDecTTLIsEqn3 holds DecTTL's shortcut to the general incremental update
// it replaces: for every checksum and every (TTL, protocol) word of a TTL from 1 to
// 255 (protocols 6, 17 and 255 stand for all: the shortcut never reads the word),
// checksumDecTTL gives what ChecksumUpdate16 gives for the word losing one TTL (on the
// checksum byte-swapped, as checksumDecTTL takes and returns it).
func TestChecksumDecTTLIsEqn3(t *testing.T) {
	for hc := 0; hc <= 0xffff; hc++ {
		want0 := bits.ReverseBytes16(checksumDecTTL(bits.ReverseBytes16(uint16(hc))))
		for ttl := 1; ttl <= 255; ttl++ {
			for _, proto := range []int{6, 17, 255} {
				m := uint16(ttl<<8 | proto)
				if got := ChecksumUpdate16(uint16(hc), m, m-0x0100); got != want0 {
					t.Fatalf("checksum %#04x, word %#04x: shortcut %#04x, RFC 1624 eqn. 3 %#04x", hc, m, want0, got)
				}
			}
		}
	}
}
