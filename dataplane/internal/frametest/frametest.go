// Package frametest builds the Ethernet frames of gvs's data-path tests with gopacket
// (lengths fixed, checksums computed) and checks frames against gopacket and an
// obviously correct reference checksum: the oracle the header and dataplane tests
// compare the package's own byte code with. It is imported only by tests, and imports
// no gvs package, so that package header's own tests can use it.
package frametest

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
// RFC 3849) and locally administered MACs; tests must not change them.
var (
	MACClient = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x01} // the router toward clients
	MACLB     = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x02} // the director
	MACRS     = [6]byte{0x02, 0x00, 0x00, 0x00, 0x00, 0x05} // a real server
)

// A16 returns s as header.Parsed stores addresses: IPv4 in the first four bytes.
func A16(s string) [16]byte {
	a := netip.MustParseAddr(s)
	if a.Is4() {
		var r [16]byte
		b := a.As4()
		copy(r[:], b[:])
		return r
	}
	return a.As16()
}

func IPOf(s string) net.IP { return net.IP(netip.MustParseAddr(s).AsSlice()) }

// Opts are the knobs of the frame constructors; the zero value gives an
// untagged frame, TTL 64, TOS 0, no DF.
type Opts struct {
	VLAN    uint16 // tag the frame with this VLAN ID when non-zero
	TTL     uint8  // 0: 64
	TOS     uint8
	DF      bool
	Payload int   // L4 payload length (filled with a pattern)
	Flags   uint8 // TCP flags as on the wire (header.TCPFlagSYN …); 0: SYN
	IPID    uint16

	DstMAC      [6]byte             // the frame's destination; zero: MACLB
	ServiceTag  bool                // with VLAN: an 802.1ad service tag (TPID 0x88a8) instead of 802.1Q
	IPv4Options []layers.IPv4Option // IPv4 options, padded by gopacket to a multiple of 4 bytes
}

// EthLayers returns the Ethernet layer (MACClient → MACLB) of a frame carrying typ,
// with an 802.1Q tag (priority 3) when o.VLAN is set.
func EthLayers(o Opts, typ layers.EthernetType) []gopacket.SerializableLayer {
	dst := MACLB
	if o.DstMAC != ([6]byte{}) {
		dst = o.DstMAC
	}
	e := &layers.Ethernet{SrcMAC: net.HardwareAddr(MACClient[:]), DstMAC: net.HardwareAddr(dst[:]), EthernetType: typ}
	if o.VLAN == 0 {
		return []gopacket.SerializableLayer{e}
	}
	e.EthernetType = layers.EthernetTypeDot1Q
	if o.ServiceTag {
		e.EthernetType = layers.EthernetTypeQinQ
	}
	return []gopacket.SerializableLayer{e, &layers.Dot1Q{VLANIdentifier: o.VLAN, Priority: 3, Type: typ}}
}

// IP4Layer returns an IPv4 layer from src to dst with o's TTL, TOS, ID and DF.
func IP4Layer(o Opts, src, dst string, proto layers.IPProtocol) *layers.IPv4 {
	ttl := o.TTL
	if ttl == 0 {
		ttl = 64
	}
	ip := &layers.IPv4{Version: 4, TTL: ttl, TOS: o.TOS, Id: o.IPID, Protocol: proto, SrcIP: IPOf(src), DstIP: IPOf(dst), Options: o.IPv4Options}
	if o.DF {
		ip.Flags = layers.IPv4DontFragment
	}
	return ip
}

// IP6Layer returns an IPv6 layer from src to dst with o's hop limit and traffic
// class.
func IP6Layer(o Opts, src, dst string, next layers.IPProtocol) *layers.IPv6 {
	ttl := o.TTL
	if ttl == 0 {
		ttl = 64
	}
	return &layers.IPv6{Version: 6, HopLimit: ttl, TrafficClass: o.TOS, NextHeader: next, SrcIP: IPOf(src), DstIP: IPOf(dst)}
}

// TCPLayer returns a TCP layer with o's flags and fixed sequence numbers.
func TCPLayer(o Opts, sport, dport uint16) *layers.TCP {
	// The flags byte of the TCP header, FIN in bit 0 to CWR in bit 7 (RFC 9293 §3.1,
	// RFC 3168 §6.1).
	f := o.Flags
	if f == 0 {
		f = 1 << 1 // SYN
	}
	bit := func(i uint) bool { return f>>i&1 != 0 }
	return &layers.TCP{
		SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 0x01020304, Ack: 0x0a0b0c0d, Window: 64240,
		FIN: bit(0), SYN: bit(1), RST: bit(2), PSH: bit(3), ACK: bit(4), URG: bit(5), ECE: bit(6), CWR: bit(7),
	}
}

// Payload returns n bytes of a fixed pattern.
func Payload(n int) gopacket.Payload {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	return b
}

// Serialize builds a frame with gopacket, lengths fixed and checksums computed.
func Serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
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
		t.Fatalf("Serialize: %v", err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// TCP4 builds a TCP/IPv4 frame from src:sport to dst:dport.
func TCP4(t testing.TB, o Opts, src, dst string, sport, dport uint16) []byte {
	t.Helper()
	ls := EthLayers(o, layers.EthernetTypeIPv4)
	ls = append(ls, IP4Layer(o, src, dst, layers.IPProtocolTCP), TCPLayer(o, sport, dport), Payload(o.Payload))
	return Serialize(t, ls...)
}

// UDP4 builds a UDP/IPv4 frame from src:sport to dst:dport.
func UDP4(t testing.TB, o Opts, src, dst string, sport, dport uint16) []byte {
	t.Helper()
	ls := EthLayers(o, layers.EthernetTypeIPv4)
	ls = append(ls, IP4Layer(o, src, dst, layers.IPProtocolUDP), &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}, Payload(o.Payload))
	return Serialize(t, ls...)
}

// TCP6 builds a TCP/IPv6 frame from src:sport to dst:dport.
func TCP6(t testing.TB, o Opts, src, dst string, sport, dport uint16) []byte {
	t.Helper()
	ls := EthLayers(o, layers.EthernetTypeIPv6)
	ls = append(ls, IP6Layer(o, src, dst, layers.IPProtocolTCP), TCPLayer(o, sport, dport), Payload(o.Payload))
	return Serialize(t, ls...)
}

// UDP6 builds a UDP/IPv6 frame from src:sport to dst:dport.
func UDP6(t testing.TB, o Opts, src, dst string, sport, dport uint16) []byte {
	t.Helper()
	ls := EthLayers(o, layers.EthernetTypeIPv6)
	ls = append(ls, IP6Layer(o, src, dst, layers.IPProtocolUDP), &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}, Payload(o.Payload))
	return Serialize(t, ls...)
}

// ICMP4Error builds an ICMPv4 error from router to client quoting quoted (an IP
// packet, no Ethernet header), truncated to quoteLen bytes.
func ICMP4Error(t testing.TB, o Opts, src, dst string, typ, code uint8, quoted []byte, quoteLen int) []byte {
	t.Helper()
	ls := EthLayers(o, layers.EthernetTypeIPv4)
	ls = append(ls, IP4Layer(o, src, dst, layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(typ, code)},
		gopacket.Payload(quoted[:min(quoteLen, len(quoted))]))
	return Serialize(t, ls...)
}

// ICMP6Error is ICMP4Error for ICMPv6.
func ICMP6Error(t testing.TB, o Opts, src, dst string, typ, code uint8, quoted []byte, quoteLen int) []byte {
	t.Helper()
	ls := EthLayers(o, layers.EthernetTypeIPv6)
	// gopacket's ICMPv6 layer is the 4-byte header; the rest-of-header word goes in
	// front of the quote.
	body := append(make([]byte, 4), quoted[:min(quoteLen, len(quoted))]...)
	ls = append(ls, IP6Layer(o, src, dst, layers.IPProtocolICMPv6),
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(typ, code)},
		gopacket.Payload(body))
	return Serialize(t, ls...)
}

// L3 returns a copy of the IP packet of a well-formed Ethernet frame: without the
// Ethernet header (and 802.1Q tag) and without padding, cut by the IP length field.
func L3(t testing.TB, frame []byte) []byte {
	t.Helper()
	off := 14 // Ethernet II header
	if len(frame) >= 18 && binary.BigEndian.Uint16(frame[12:]) == 0x8100 {
		off += 4 // one 802.1Q tag
	}
	if len(frame) < off+20 {
		t.Fatalf("L3: frame of %d bytes", len(frame))
	}
	ip := frame[off:]
	var n int
	switch ip[0] >> 4 {
	case 4:
		n = int(binary.BigEndian.Uint16(ip[2:])) // total length
	case 6:
		n = 40 + int(binary.BigEndian.Uint16(ip[4:])) // fixed header + payload length
	default:
		t.Fatalf("L3: IP version %d", ip[0]>>4)
	}
	if n > len(ip) {
		t.Fatalf("L3: IP length %d beyond the frame", n)
	}
	return append([]byte(nil), ip[:n]...)
}

// RefSum is the obviously correct one's complement sum: big-endian 16-bit words, an
// odd byte padded with zero, 32-bit accumulation folded at the end.
func RefSum(b []byte, initial uint16) uint16 {
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

// RefPseudo builds the pseudo-header bytes and sums them with RefSum.
func RefPseudo(src, dst []byte, proto uint8, length int) uint16 {
	var ph []byte
	ph = append(ph, src...)
	ph = append(ph, dst...)
	if len(src) == 4 {
		ph = append(ph, 0, proto, byte(length>>8), byte(length))
	} else {
		ph = binary.BigEndian.AppendUint32(ph, uint32(length))
		ph = append(ph, 0, 0, 0, proto)
	}
	return RefSum(ph, 0)
}

// CheckOracle decodes frame with gopacket, asserts that every checksum verifies with
// the reference sum (IPv4 headers, TCP, UDP — zero allowed only if allowUDPZero —,
// ICMPv4, ICMPv6), and, when reser is set, that re-serialising the decoded layers
// with ComputeChecksums reproduces the frame byte for byte (so each checksum equals
// gopacket's full recompute). It returns the packet for field checks.
func CheckOracle(t testing.TB, frame []byte, allowUDPZero, reser bool) gopacket.Packet {
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
			if RefSum(v.Contents, 0) != 0xffff {
				t.Errorf("IPv4 %v->%v: header checksum %#04x does not verify", v.SrcIP, v.DstIP, v.Checksum)
			}
		case *layers.IPv6:
			src, dst = v.SrcIP.To16(), v.DstIP.To16()
		case *layers.TCP:
			seg := append(append([]byte(nil), v.Contents...), v.Payload...)
			if RefSum(seg, RefPseudo(src, dst, uint8(layers.IPProtocolTCP), len(seg))) != 0xffff {
				t.Errorf("TCP %d->%d: checksum %#04x does not verify", v.SrcPort, v.DstPort, v.Checksum)
			}
		case *layers.UDP:
			seg := append(append([]byte(nil), v.Contents...), v.Payload...)
			if v.Checksum == 0 {
				if !allowUDPZero {
					t.Errorf("UDP %d->%d: checksum 0", v.SrcPort, v.DstPort)
				}
			} else if RefSum(seg, RefPseudo(src, dst, uint8(layers.IPProtocolUDP), len(seg))) != 0xffff {
				t.Errorf("UDP %d->%d: checksum %#04x does not verify", v.SrcPort, v.DstPort, v.Checksum)
			}
		case *layers.ICMPv4:
			msg := append(append([]byte(nil), v.Contents...), v.Payload...)
			if RefSum(msg, 0) != 0xffff {
				t.Errorf("ICMPv4 %v: checksum %#04x does not verify", v.TypeCode, v.Checksum)
			}
		case *layers.ICMPv6:
			msg := append(append([]byte(nil), v.Contents...), v.Payload...)
			if RefSum(msg, RefPseudo(src, dst, uint8(layers.IPProtocolICMPv6), len(msg))) != 0xffff {
				t.Errorf("ICMPv6 %v: checksum %#04x does not verify", v.TypeCode, v.Checksum)
			}
		}
	}
	if reser {
		got := Reserialize(t, pkt)
		n := min(len(got), len(frame))
		if !bytes.Equal(got[:n], frame[:n]) {
			t.Errorf("gopacket re-serialisation with recomputed checksums differs:\n got %x\nwant %x", got[:n], frame[:n])
		}
	}
	return pkt
}

// Reserialize serialises pkt's layers again with ComputeChecksums (lengths as decoded).
func Reserialize(t testing.TB, pkt gopacket.Packet) []byte {
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
		t.Fatalf("Reserialize: %v", err)
	}
	return buf.Bytes()
}
