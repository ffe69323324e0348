package dataplane

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Test frames use documentation and benchmark address ranges (RFC 5737, RFC 2544,
// RFC 3849) and locally administered MACs.
var (
	macClient = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01} // the router toward clients
	macLB     = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x02} // the director
	macRS     = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x05} // a real server
)

// a16 returns s as Parsed stores addresses: IPv4 in the first four bytes.
func a16(s string) [16]byte {
	a := netip.MustParseAddr(s)
	if a.Is4() {
		var r [16]byte
		b := a.As4()
		copy(r[:], b[:])
		return r
	}
	return a.As16()
}

func ipOf(s string) net.IP { return net.IP(netip.MustParseAddr(s).AsSlice()) }

// frameOpts are the knobs of the frame constructors; the zero value gives an
// untagged frame, TTL 64, TOS 0, no DF.
type frameOpts struct {
	vlan    uint16 // tag the frame with this VLAN ID when non-zero
	ttl     uint8  // 0: 64
	tos     uint8
	df      bool
	payload int // L4 payload length (filled with a pattern)
	flags   uint8
	ipID    uint16
}

func ethLayers(o frameOpts, typ layers.EthernetType) []gopacket.SerializableLayer {
	e := &layers.Ethernet{SrcMAC: net.HardwareAddr(macClient[:]), DstMAC: net.HardwareAddr(macLB[:]), EthernetType: typ}
	if o.vlan == 0 {
		return []gopacket.SerializableLayer{e}
	}
	e.EthernetType = layers.EthernetTypeDot1Q
	return []gopacket.SerializableLayer{e, &layers.Dot1Q{VLANIdentifier: o.vlan, Priority: 3, Type: typ}}
}

func ip4Layer(o frameOpts, src, dst string, proto layers.IPProtocol) *layers.IPv4 {
	ttl := o.ttl
	if ttl == 0 {
		ttl = 64
	}
	ip := &layers.IPv4{Version: 4, TTL: ttl, TOS: o.tos, Id: o.ipID, Protocol: proto, SrcIP: ipOf(src), DstIP: ipOf(dst)}
	if o.df {
		ip.Flags = layers.IPv4DontFragment
	}
	return ip
}

func ip6Layer(o frameOpts, src, dst string, next layers.IPProtocol) *layers.IPv6 {
	ttl := o.ttl
	if ttl == 0 {
		ttl = 64
	}
	return &layers.IPv6{Version: 6, HopLimit: ttl, TrafficClass: o.tos, NextHeader: next, SrcIP: ipOf(src), DstIP: ipOf(dst)}
}

func tcpLayer(o frameOpts, sport, dport uint16) *layers.TCP {
	f := o.flags
	if f == 0 {
		f = TCPFlagSYN
	}
	return &layers.TCP{
		SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 0x01020304, Ack: 0x0a0b0c0d, Window: 64240,
		FIN: f&TCPFlagFIN != 0, SYN: f&TCPFlagSYN != 0, RST: f&TCPFlagRST != 0, PSH: f&TCPFlagPSH != 0,
		ACK: f&TCPFlagACK != 0, URG: f&TCPFlagURG != 0, ECE: f&TCPFlagECE != 0, CWR: f&TCPFlagCWR != 0,
	}
}

func payload(n int) gopacket.Payload {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	return b
}

// serialize builds a frame with gopacket, lengths fixed and checksums computed.
func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	var nl gopacket.NetworkLayer
	for _, l := range ls {
		switch v := l.(type) {
		case *layers.IPv4:
			nl = v
		case *layers.IPv6:
			nl = v
		case *layers.TCP:
			v.SetNetworkLayerForChecksum(nl)
		case *layers.UDP:
			v.SetNetworkLayerForChecksum(nl)
		case *layers.ICMPv6:
			v.SetNetworkLayerForChecksum(nl)
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func tcp4(t testing.TB, o frameOpts, src, dst string, sport, dport uint16) []byte {
	t.Helper()
	ls := ethLayers(o, layers.EthernetTypeIPv4)
	ls = append(ls, ip4Layer(o, src, dst, layers.IPProtocolTCP), tcpLayer(o, sport, dport), payload(o.payload))
	return serialize(t, ls...)
}

func udp4(t testing.TB, o frameOpts, src, dst string, sport, dport uint16) []byte {
	t.Helper()
	ls := ethLayers(o, layers.EthernetTypeIPv4)
	ls = append(ls, ip4Layer(o, src, dst, layers.IPProtocolUDP), &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}, payload(o.payload))
	return serialize(t, ls...)
}

func tcp6(t testing.TB, o frameOpts, src, dst string, sport, dport uint16) []byte {
	t.Helper()
	ls := ethLayers(o, layers.EthernetTypeIPv6)
	ls = append(ls, ip6Layer(o, src, dst, layers.IPProtocolTCP), tcpLayer(o, sport, dport), payload(o.payload))
	return serialize(t, ls...)
}

func udp6(t testing.TB, o frameOpts, src, dst string, sport, dport uint16) []byte {
	t.Helper()
	ls := ethLayers(o, layers.EthernetTypeIPv6)
	ls = append(ls, ip6Layer(o, src, dst, layers.IPProtocolUDP), &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}, payload(o.payload))
	return serialize(t, ls...)
}

// icmp4Error builds an ICMPv4 error from router to client quoting quoted (an IP
// packet, no Ethernet header), truncated to quoteLen bytes.
func icmp4Error(t testing.TB, o frameOpts, src, dst string, typ, code uint8, quoted []byte, quoteLen int) []byte {
	t.Helper()
	ls := ethLayers(o, layers.EthernetTypeIPv4)
	ls = append(ls, ip4Layer(o, src, dst, layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code)},
		gopacket.Payload(quoted[:min(quoteLen, len(quoted))]))
	return serialize(t, ls...)
}

func icmp6Error(t testing.TB, o frameOpts, src, dst string, typ, code uint8, quoted []byte, quoteLen int) []byte {
	t.Helper()
	ls := ethLayers(o, layers.EthernetTypeIPv6)
	// gopacket's ICMPv6 layer is the 4-byte header; the rest-of-header word goes in
	// front of the quote.
	body := append(make([]byte, 4), quoted[:min(quoteLen, len(quoted))]...)
	ls = append(ls, ip6Layer(o, src, dst, layers.IPProtocolICMPv6),
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, code)},
		gopacket.Payload(body))
	return serialize(t, ls...)
}

// l3 strips the Ethernet header (and tag) and the padding off a frame.
func l3(t testing.TB, frame []byte) []byte {
	t.Helper()
	var p Parsed
	if d := p.Decode(frame); d != DropNone {
		t.Fatalf("decode: %v", d)
	}
	return append([]byte(nil), frame[p.L3Off:p.End]...)
}

// refSum is the obviously correct one's complement sum: big-endian 16-bit words, an
// odd byte padded with zero, 32-bit accumulation folded at the end.
func refSum(b []byte, initial uint16) uint16 {
	s := uint64(initial)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint64(b[i])<<8 | uint64(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint64(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

// refPseudo builds the pseudo-header bytes and sums them with refSum.
func refPseudo(src, dst []byte, proto uint8, length int) uint16 {
	var ph []byte
	ph = append(ph, src...)
	ph = append(ph, dst...)
	if len(src) == 4 {
		ph = append(ph, 0, proto, byte(length>>8), byte(length))
	} else {
		ph = binary.BigEndian.AppendUint32(ph, uint32(length))
		ph = append(ph, 0, 0, 0, proto)
	}
	return refSum(ph, 0)
}

// checkOracle decodes frame with gopacket, asserts that every checksum verifies with
// the reference sum (IPv4 headers, TCP, UDP — zero allowed only if allowUDPZero —,
// ICMPv4, ICMPv6), and, when reser is set, that re-serialising the decoded layers
// with ComputeChecksums reproduces the frame byte for byte (so each checksum equals
// gopacket's full recompute). It returns the packet for field checks.
func checkOracle(t testing.TB, frame []byte, allowUDPZero, reser bool) gopacket.Packet {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	if el := pkt.ErrorLayer(); el != nil {
		t.Fatalf("gopacket cannot decode the frame: %v\n%x", el.Error(), frame[:min(len(frame), 128)])
	}
	var src, dst []byte
	for _, l := range pkt.Layers() {
		switch v := l.(type) {
		case *layers.IPv4:
			src, dst = v.SrcIP.To4(), v.DstIP.To4()
			if refSum(v.Contents, 0) != 0xffff {
				t.Errorf("IPv4 %v->%v: header checksum %#04x does not verify", v.SrcIP, v.DstIP, v.Checksum)
			}
		case *layers.IPv6:
			src, dst = v.SrcIP.To16(), v.DstIP.To16()
		case *layers.TCP:
			seg := append(append([]byte(nil), v.Contents...), v.Payload...)
			if refSum(seg, refPseudo(src, dst, IPProtoTCP, len(seg))) != 0xffff {
				t.Errorf("TCP %d->%d: checksum %#04x does not verify", v.SrcPort, v.DstPort, v.Checksum)
			}
		case *layers.UDP:
			seg := append(append([]byte(nil), v.Contents...), v.Payload...)
			if v.Checksum == 0 {
				if !allowUDPZero {
					t.Errorf("UDP %d->%d: checksum 0", v.SrcPort, v.DstPort)
				}
			} else if refSum(seg, refPseudo(src, dst, IPProtoUDP, len(seg))) != 0xffff {
				t.Errorf("UDP %d->%d: checksum %#04x does not verify", v.SrcPort, v.DstPort, v.Checksum)
			}
		case *layers.ICMPv4:
			msg := append(append([]byte(nil), v.Contents...), v.Payload...)
			if refSum(msg, 0) != 0xffff {
				t.Errorf("ICMPv4 %v: checksum %#04x does not verify", v.TypeCode, v.Checksum)
			}
		case *layers.ICMPv6:
			msg := append(append([]byte(nil), v.Contents...), v.Payload...)
			if refSum(msg, refPseudo(src, dst, IPProtoICMPv6, len(msg))) != 0xffff {
				t.Errorf("ICMPv6 %v: checksum %#04x does not verify", v.TypeCode, v.Checksum)
			}
		}
	}
	if reser {
		got := reserialize(t, pkt)
		n := min(len(got), len(frame))
		if !bytes.Equal(got[:n], frame[:n]) {
			t.Errorf("gopacket re-serialisation with recomputed checksums differs:\n got %x\nwant %x", got[:n], frame[:n])
		}
	}
	return pkt
}

// reserialize serialises pkt's layers again with ComputeChecksums (lengths as decoded).
func reserialize(t testing.TB, pkt gopacket.Packet) []byte {
	t.Helper()
	var ls []gopacket.SerializableLayer
	var nl gopacket.NetworkLayer
	for _, l := range pkt.Layers() {
		switch v := l.(type) {
		case *layers.IPv4:
			nl = v
		case *layers.IPv6:
			nl = v
		case *layers.TCP:
			v.SetNetworkLayerForChecksum(nl)
		case *layers.UDP:
			v.SetNetworkLayerForChecksum(nl)
		case *layers.ICMPv6:
			v.SetNetworkLayerForChecksum(nl)
		}
		sl, ok := l.(gopacket.SerializableLayer)
		if !ok {
			t.Fatalf("layer %v is not serialisable", l.LayerType())
		}
		ls = append(ls, sl)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true}, ls...); err != nil {
		t.Fatalf("reserialize: %v", err)
	}
	return buf.Bytes()
}
