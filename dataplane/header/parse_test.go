package header

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/gvs-lb/gvs/dataplane/internal/frametest"
)

// ext is one IPv6 extension header for ip6Raw: typ is its protocol number, n its total
// length in bytes (a multiple of 8, or of 4 for AH); fragment headers take frag.
type ext struct {
	typ  uint8
	n    int
	frag uint16 // offset field (offset in bytes | M) for IPProtoFragment
}

// ip6Raw builds an IPv6 frame by hand with the extension header chain exts before
// the upper-layer protocol proto carrying l4.
func ip6Raw(o frametest.Opts, src, dst string, exts []ext, proto uint8, l4 []byte) []byte {
	var chain []byte
	for i, x := range exts {
		next := proto
		if i+1 < len(exts) {
			next = exts[i+1].typ
		}
		h := make([]byte, x.n)
		h[0] = next
		switch x.typ {
		case IPProtoFragment:
			binary.BigEndian.PutUint16(h[2:], x.frag)
			binary.BigEndian.PutUint32(h[4:], 0xcafe)
		case IPProtoAH:
			h[1] = byte(x.n/4 - 2)
		case IPProtoRouting:
			h[1] = byte(x.n/8 - 1) // routing type 0, segments left 0
		default:
			h[1] = byte(x.n/8 - 1)
			h[2], h[3] = 1, byte(x.n-4) // one PadN option filling the header
		}
		chain = append(chain, h...)
	}
	first := proto
	if len(exts) > 0 {
		first = exts[0].typ
	}
	ttl := o.TTL
	if ttl == 0 {
		ttl = 64
	}
	f := make([]byte, EthernetHeaderLen+IPv6HeaderLen)
	putEthernet(f, frametest.MACLB, frametest.MACClient, false, 0, EtherTypeIPv6)
	putIPv6(f[EthernetHeaderLen:], o.TOS, uint16(len(chain)+len(l4)), first, ttl, frametest.A16(src), frametest.A16(dst))
	f = append(f, chain...)
	return append(f, l4...)
}

// tcpSegment returns a TCP header and payload (checksum not set).
func tcpSegment(t testing.TB, sport, dport uint16, n int) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true}, frametest.TCPLayer(frametest.Opts{Flags: TCPFlagSYN | TCPFlagECE | TCPFlagCWR}, sport, dport), frametest.Payload(n)); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// expectFromGopacket derives the Parsed that Decode must produce from gopacket's
// decoding of frame, independently of the package's code.
func expectFromGopacket(t *testing.T, frame []byte) Parsed {
	t.Helper()
	pkt := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	var w Parsed
	off := 0
	done := func() bool { return w.PayloadOff != 0 }
	isExt := func(p uint8) bool {
		return p == IPProtoHopByHop || p == IPProtoRouting || p == IPProtoDstOpts || p == IPProtoFragment || p == IPProtoAH
	}
	l4Known := func() bool {
		switch w.Proto {
		case IPProtoTCP, IPProtoUDP, IPProtoSCTP:
			return true
		case IPProtoICMP:
			return !w.IPv6
		case IPProtoICMPv6:
			return w.IPv6
		}
		return false
	}
	// afterL3 decides, once an IP header or extension header is consumed, whether the
	// walk has ended.
	afterL3 := func() {
		if w.NonFirstFragment || (!(w.IPv6 && isExt(w.Proto)) && !l4Known()) {
			w.PayloadOff = w.L4Off
		}
	}
	ls := pkt.Layers()
	for i := 0; i < len(ls) && !done(); i++ {
		switch v := ls[i].(type) {
		case *gopacket.Fragment:
			// gopacket does not decode into first fragments; do it for it.
			if !w.NonFirstFragment {
				ls = append(ls, gopacket.NewPacket(*v, layers.IPProtocol(w.Proto).LayerType(), gopacket.Default).Layers()...)
			}
		case *layers.Ethernet:
			off = len(v.Contents)
			w.EtherType = uint16(v.EthernetType)
		case *layers.Dot1Q:
			off += len(v.Contents)
			w.HasVLAN, w.VLAN, w.EtherType = true, v.VLANIdentifier, uint16(v.Type)
		case *layers.ARP:
			w.L3Off = off
			w.ARPOp = v.Operation
			copy(w.Src[:4], v.SourceProtAddress)
			copy(w.Dst[:4], v.DstProtAddress)
			w.L4Off, w.PayloadOff, w.End = off+28, off+28, off+28
		case *layers.IPv4:
			w.L3Off = off
			w.IPVersion = 4
			copy(w.Src[:4], v.SrcIP.To4())
			copy(w.Dst[:4], v.DstIP.To4())
			w.TTL, w.TOS, w.Proto = v.TTL, v.TOS, uint8(v.Protocol)
			w.DF = v.Flags&layers.IPv4DontFragment != 0
			w.IsFragment = v.Flags&layers.IPv4MoreFragments != 0 || v.FragOffset != 0
			w.NonFirstFragment = v.FragOffset != 0
			w.L4Off = off + int(v.IHL)*4
			w.End = off + int(v.Length)
			off = w.L4Off
			afterL3()
		case *layers.IPv6:
			w.L3Off = off
			w.IPVersion, w.IPv6 = 6, true
			copy(w.Src[:], v.SrcIP.To16())
			copy(w.Dst[:], v.DstIP.To16())
			w.TTL, w.TOS, w.Proto = v.HopLimit, v.TrafficClass, uint8(v.NextHeader)
			w.End = off + IPv6HeaderLen + int(v.Length)
			off += IPv6HeaderLen
			w.L4Off = off
			afterL3()
		case *layers.IPv6HopByHop:
			off += len(v.Contents)
			w.Proto, w.L4Off = uint8(v.NextHeader), off
			afterL3()
		case *layers.IPv6Destination:
			off += len(v.Contents)
			w.Proto, w.L4Off = uint8(v.NextHeader), off
			afterL3()
		case *layers.IPv6Routing:
			off += len(v.Contents)
			w.Proto, w.L4Off = uint8(v.NextHeader), off
			afterL3()
		case *layers.IPSecAH:
			off += len(v.Contents)
			w.Proto, w.L4Off = uint8(v.NextHeader), off
			afterL3()
		case *layers.IPv6Fragment:
			off += len(v.Contents)
			w.Proto, w.L4Off = uint8(v.NextHeader), off
			w.IsFragment = v.MoreFragments || v.FragmentOffset != 0
			w.NonFirstFragment = v.FragmentOffset != 0
			afterL3()
		case *layers.TCP:
			w.SrcPort, w.DstPort, w.HasPorts = uint16(v.SrcPort), uint16(v.DstPort), true
			w.TCPFlags = v.Contents[13]
			w.PayloadOff = w.L4Off + int(v.DataOffset)*4
		case *layers.UDP:
			w.SrcPort, w.DstPort, w.HasPorts = uint16(v.SrcPort), uint16(v.DstPort), true
			w.PayloadOff = w.L4Off + UDPHeaderLen
		case *layers.SCTP:
			w.SrcPort, w.DstPort, w.HasPorts = uint16(v.SrcPort), uint16(v.DstPort), true
			w.PayloadOff = w.L4Off + sctpCommonHeaderLen
		case *layers.ICMPv4:
			w.ICMPType, w.ICMPCode = v.TypeCode.Type(), v.TypeCode.Code()
			w.PayloadOff = w.L4Off + ICMPHeaderLen
			switch w.ICMPType {
			case 3, 4, 11, 12:
				if !w.IsFragment {
					expectEmbedded(t, &w, v.Payload, layers.LayerTypeIPv4)
				}
			}
		case *layers.ICMPv6:
			w.ICMPType, w.ICMPCode = v.TypeCode.Type(), v.TypeCode.Code()
			w.PayloadOff = w.L4Off + ICMPHeaderLen
			switch w.ICMPType {
			case 1, 2, 3, 4:
				if !w.IsFragment {
					expectEmbedded(t, &w, v.Payload[4:], layers.LayerTypeIPv6)
				}
			}
		}
	}
	if w.L3Off == 0 { // not IP or ARP
		w.L3Off = off
		w.L4Off, w.PayloadOff, w.End = len(frame), len(frame), len(frame)
	}
	return w
}

// expectEmbedded fills the Emb* fields from gopacket's decoding of the quote (which
// tolerates its truncation). Quoted IPv6 extension headers are not supported here.
func expectEmbedded(t *testing.T, w *Parsed, quote []byte, typ gopacket.LayerType) {
	t.Helper()
	q := gopacket.NewPacket(quote, typ, gopacket.Default)
	w.HasEmbedded = true
	w.EmbL3Off = w.PayloadOff
	var l4 []byte
	nonFirst := false
	switch v := q.Layers()[0].(type) {
	case *layers.IPv4:
		copy(w.EmbSrc[:4], v.SrcIP.To4())
		copy(w.EmbDst[:4], v.DstIP.To4())
		w.EmbProto = uint8(v.Protocol)
		w.EmbL4Off = w.PayloadOff + int(v.IHL)*4
		l4 = quote[int(v.IHL)*4:]
		nonFirst = v.FragOffset != 0
	case *layers.IPv6:
		copy(w.EmbSrc[:], v.SrcIP.To16())
		copy(w.EmbDst[:], v.DstIP.To16())
		w.EmbProto = uint8(v.NextHeader)
		w.EmbL4Off = w.PayloadOff + IPv6HeaderLen
		l4 = quote[IPv6HeaderLen:]
	default:
		t.Fatalf("quote decodes as %v", q.Layers()[0].LayerType())
	}
	if (w.EmbProto == IPProtoTCP || w.EmbProto == IPProtoUDP) && len(l4) >= 8 && !nonFirst {
		w.EmbSrcPort = binary.BigEndian.Uint16(l4)
		w.EmbDstPort = binary.BigEndian.Uint16(l4[2:])
		w.EmbHasPorts = true
	}
}

// diffParsed lists the fields that differ, as "field: got X, want Y".
func diffParsed(got, want Parsed) string {
	var b strings.Builder
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := 0; i < gv.NumField(); i++ {
		if g, w := gv.Field(i).Interface(), wv.Field(i).Interface(); !reflect.DeepEqual(g, w) {
			fmt.Fprintf(&b, "\n%s: got %v, want %v", gv.Type().Field(i).Name, g, w)
		}
	}
	return b.String()
}

// oracleFrames are well-formed frames of every shape Decode handles, built with
// gopacket or by hand.
func oracleFrames(t testing.TB) []struct {
	name  string
	frame []byte
} {
	tcpOpts := frametest.TCPLayer(frametest.Opts{Flags: TCPFlagSYN}, 40000, 80)
	tcpOpts.Options = []layers.TCPOption{
		{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
		{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
		{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)},
		{OptionType: layers.TCPOptionKindNop},
		{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
	}
	ipOpts := frametest.IP4Layer(frametest.Opts{}, "198.51.100.7", "192.0.2.10", layers.IPProtocolTCP)
	ipOpts.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
	frag1 := frametest.IP4Layer(frametest.Opts{IPID: 7}, "198.51.100.7", "192.0.2.10", layers.IPProtocolUDP)
	frag1.Flags = layers.IPv4MoreFragments
	frag2 := frametest.IP4Layer(frametest.Opts{IPID: 7}, "198.51.100.7", "192.0.2.10", layers.IPProtocolUDP)
	frag2.FragOffset = 185
	frag3 := frametest.IP4Layer(frametest.Opts{IPID: 7}, "198.51.100.7", "192.0.2.10", layers.IPProtocolICMPv4)
	frag3.Flags = layers.IPv4MoreFragments

	sctp := &layers.SCTP{SrcPort: 5000, DstPort: 3868, VerificationTag: 1}
	arpReq := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: ARPRequest, SourceHwAddress: frametest.MACClient[:], SourceProtAddress: frametest.IPOf("192.0.2.1").To4(),
		DstHwAddress: make([]byte, 6), DstProtAddress: frametest.IPOf("192.0.2.10").To4()}
	arpRep := *arpReq
	arpRep.Operation = ARPReply

	t4 := frametest.L3(t, frametest.TCP4(t, frametest.Opts{Payload: 40}, "192.0.2.10", "198.51.100.7", 80, 40000))
	u4 := frametest.L3(t, frametest.UDP4(t, frametest.Opts{Payload: 40}, "192.0.2.10", "198.51.100.7", 7000, 40000))
	t6 := frametest.L3(t, frametest.TCP6(t, frametest.Opts{Payload: 40}, "2001:db8::10", "2001:db8:1::7", 80, 40000))
	u6 := frametest.L3(t, frametest.UDP6(t, frametest.Opts{Payload: 40}, "2001:db8::10", "2001:db8:1::7", 7000, 40000))
	seg := tcpSegment(t, 40000, 80, 12)

	var echo4, echo6 []gopacket.SerializableLayer
	echo4 = append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeIPv4), frametest.IP4Layer(frametest.Opts{}, "198.51.100.7", "192.0.2.10", layers.IPProtocolICMPv4),
		&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(ICMPv4EchoRequest, 0), Id: 1, Seq: 2}, frametest.Payload(56))
	echo6 = append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeIPv6), frametest.IP6Layer(frametest.Opts{}, "2001:db8:1::7", "2001:db8::10", layers.IPProtocolICMPv6),
		&layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(ICMPv6EchoRequest, 0)}, frametest.Payload(60))

	return []struct {
		name  string
		frame []byte
	}{
		{"tcp4 syn padded", frametest.TCP4(t, frametest.Opts{DF: true, TOS: 0x02}, "198.51.100.7", "192.0.2.10", 40000, 80)},
		{"tcp4 payload", frametest.TCP4(t, frametest.Opts{Payload: 1000, Flags: TCPFlagACK | TCPFlagPSH, TTL: 3}, "198.51.100.7", "192.0.2.10", 40000, 80)},
		{"tcp4 vlan", frametest.TCP4(t, frametest.Opts{VLAN: 100, Flags: TCPFlagFIN | TCPFlagACK}, "198.51.100.7", "192.0.2.10", 40000, 80)},
		{"tcp4 options", frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeIPv4), frametest.IP4Layer(frametest.Opts{}, "198.51.100.7", "192.0.2.10", layers.IPProtocolTCP), tcpOpts)...)},
		{"ipv4 options", frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeIPv4), ipOpts, frametest.TCPLayer(frametest.Opts{}, 1, 2))...)},
		{"udp4", frametest.UDP4(t, frametest.Opts{Payload: 100}, "198.51.100.7", "192.0.2.10", 40000, 7000)},
		{"udp4 vlan empty", frametest.UDP4(t, frametest.Opts{VLAN: 4094}, "198.51.100.7", "192.0.2.10", 40000, 7000)},
		{"sctp4", frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeIPv4), frametest.IP4Layer(frametest.Opts{}, "198.51.100.7", "192.0.2.10", layers.IPProtocolSCTP), sctp)...)},
		{"ipv4 first fragment", frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeIPv4), frag1, &layers.UDP{SrcPort: 1, DstPort: 7000, Length: 3000}, frametest.Payload(1472))...)},
		{"ipv4 non-first fragment", frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeIPv4), frag2, frametest.Payload(100))...)},
		{"icmp4 first fragment", frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeIPv4), frag3, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}, frametest.Payload(1472))...)},
		{"ipv4 gre", frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeIPv4), frametest.IP4Layer(frametest.Opts{}, "198.51.100.7", "192.0.2.10", layers.IPProtocolGRE), frametest.Payload(24))...)},
		{"ipip", frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeIPv4), frametest.IP4Layer(frametest.Opts{}, "10.0.0.1", "10.0.0.5", layers.IPProtocolIPv4), gopacket.Payload(t4))...)},
		{"icmp4 echo", frametest.Serialize(t, echo4...)},
		{"icmp4 port unreachable quoting tcp", frametest.ICMP4Error(t, frametest.Opts{}, "198.51.100.1", "192.0.2.10", 3, 3, t4, 28)},
		{"icmp4 frag needed quoting whole tcp", frametest.ICMP4Error(t, frametest.Opts{VLAN: 7}, "198.51.100.1", "192.0.2.10", 3, 4, t4, len(t4))},
		{"icmp4 time exceeded quoting udp", frametest.ICMP4Error(t, frametest.Opts{}, "198.51.100.1", "192.0.2.10", 11, 0, u4, 28)},
		{"icmp4 source quench short l4", frametest.ICMP4Error(t, frametest.Opts{}, "198.51.100.1", "192.0.2.10", 4, 0, u4, 24)},
		{"icmp4 param problem", frametest.ICMP4Error(t, frametest.Opts{}, "198.51.100.1", "192.0.2.10", 12, 0, t4, 40)},
		{"icmp4 redirect not quoted", frametest.ICMP4Error(t, frametest.Opts{}, "198.51.100.1", "192.0.2.10", 5, 0, t4, 28)},
		{"tcp6", frametest.TCP6(t, frametest.Opts{TOS: 0xb9, Payload: 10}, "2001:db8:1::7", "2001:db8::10", 40000, 80)},
		{"udp6 vlan", frametest.UDP6(t, frametest.Opts{VLAN: 12}, "2001:db8:1::7", "2001:db8::10", 40000, 7000)},
		{"icmp6 echo", frametest.Serialize(t, echo6...)},
		{"icmp6 unreachable quoting tcp", frametest.ICMP6Error(t, frametest.Opts{}, "2001:db8:1::1", "2001:db8::10", 1, 4, t6, 48)},
		{"icmp6 too big quoting udp", frametest.ICMP6Error(t, frametest.Opts{}, "2001:db8:1::1", "2001:db8::10", 2, 0, u6, len(u6))},
		{"icmp6 time exceeded", frametest.ICMP6Error(t, frametest.Opts{}, "2001:db8:1::1", "2001:db8::10", 3, 0, u6, 44)},
		{"icmp6 param problem", frametest.ICMP6Error(t, frametest.Opts{}, "2001:db8:1::1", "2001:db8::10", 4, 0, t6, 60)},
		{"ipv6 hbh dstopts tcp", ip6Raw(frametest.Opts{}, "2001:db8:1::7", "2001:db8::10", []ext{{typ: IPProtoHopByHop, n: 8}, {typ: IPProtoDstOpts, n: 16}}, IPProtoTCP, seg)},
		{"ipv6 routing ah tcp", ip6Raw(frametest.Opts{}, "2001:db8:1::7", "2001:db8::10", []ext{{typ: IPProtoRouting, n: 8}, {typ: IPProtoAH, n: 24}}, IPProtoTCP, seg)},
		{"ipv6 first fragment", ip6Raw(frametest.Opts{}, "2001:db8:1::7", "2001:db8::10", []ext{{typ: IPProtoFragment, n: 8, frag: 1}}, IPProtoTCP, seg)},
		{"ipv6 atomic fragment", ip6Raw(frametest.Opts{}, "2001:db8:1::7", "2001:db8::10", []ext{{typ: IPProtoFragment, n: 8}}, IPProtoTCP, seg)},
		{"ipv6 non-first fragment", ip6Raw(frametest.Opts{}, "2001:db8:1::7", "2001:db8::10", []ext{{typ: IPProtoDstOpts, n: 8}, {typ: IPProtoFragment, n: 8, frag: 1448}}, IPProtoTCP, seg)},
		{"ipv6 no next header", ip6Raw(frametest.Opts{}, "2001:db8:1::7", "2001:db8::10", []ext{{typ: IPProtoDstOpts, n: 8}}, IPProtoNoNext, nil)},
		{"ipv6 esp", ip6Raw(frametest.Opts{}, "2001:db8:1::7", "2001:db8::10", nil, IPProtoESP, make([]byte, 32))},
		{"arp request", frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeARP), arpReq)...)},
		{"arp reply vlan", frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{VLAN: 5}, layers.EthernetTypeARP), &arpRep)...)},
		{"lldp", frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetType(0x88cc)), frametest.Payload(40))...)},
	}
}

// TestDecodeMatchesGopacket checks every field of Parsed against gopacket's decoding.
func TestDecodeMatchesGopacket(t *testing.T) {
	for _, tt := range oracleFrames(t) {
		t.Run(tt.name, func(t *testing.T) {
			var got Parsed
			if d := got.Decode(tt.frame); d != DropNone {
				t.Fatalf("Decode = %v, want none", d)
			}
			want := expectFromGopacket(t, tt.frame)
			if diff := diffParsed(got, want); diff != "" {
				t.Errorf("Parsed differs from gopacket:%s", diff)
			}
		})
	}
}

func TestDecodeExcludesPadding(t *testing.T) {
	f := frametest.TCP4(t, frametest.Opts{}, "198.51.100.7", "192.0.2.10", 40000, 80)
	if len(f) != EthernetMinFrame {
		t.Fatalf("frame is %d bytes, want the padded minimum %d", len(f), EthernetMinFrame)
	}
	var p Parsed
	if d := p.Decode(f); d != DropNone {
		t.Fatal(d)
	}
	if want := EthernetHeaderLen + IPv4MinHeaderLen + TCPMinHeaderLen; p.End != want || p.PayloadOff != want {
		t.Errorf("End %d PayloadOff %d, want both %d (padding excluded)", p.End, p.PayloadOff, want)
	}
}

// fixIPv4 recomputes the IPv4 header checksum of frame's untagged IPv4 header, so a
// mutation reaches the checks after the checksum.
func fixIPv4(f []byte) []byte {
	h := IPv4(f[EthernetHeaderLen:])
	h.SetChecksum(0)
	h.SetChecksum(^frametest.RefSum(f[EthernetHeaderLen:EthernetHeaderLen+h.HeaderLen()], 0))
	return f
}

// fixICMPv4 recomputes the ICMPv4 checksum of an untagged frame with a 20-byte IPv4
// header, over the IP total length.
func fixICMPv4(f []byte) []byte {
	h := IPv4(f[EthernetHeaderLen:])
	m := f[EthernetHeaderLen+IPv4MinHeaderLen : EthernetHeaderLen+int(h.TotalLen())]
	binary.BigEndian.PutUint16(m[2:], 0)
	binary.BigEndian.PutUint16(m[2:], ^frametest.RefSum(m, 0))
	return f
}

func fixICMPv6(f []byte) []byte {
	h := IPv6(f[EthernetHeaderLen:])
	m := f[EthernetHeaderLen+IPv6HeaderLen : EthernetHeaderLen+IPv6HeaderLen+int(h.PayloadLen())]
	binary.BigEndian.PutUint16(m[2:], 0)
	s, d := h.SourceAddress(), h.DestinationAddress()
	binary.BigEndian.PutUint16(m[2:], ^frametest.RefSum(m, frametest.RefPseudo(s[:], d[:], IPProtoICMPv6, len(m))))
	return f
}

// setTotalLen sets the IPv4 total length and trims the frame to it.
func setTotalLen(f []byte, n int) []byte {
	binary.BigEndian.PutUint16(f[EthernetHeaderLen+2:], uint16(n))
	return fixIPv4(f[:EthernetHeaderLen+n])
}

type malformedCase struct {
	name  string
	frame []byte
	want  Drop
}

// malformedCases are frames, each broken in one way, and the drop Decode must report.
func malformedCases(t testing.TB) []malformedCase {
	const (
		e  = EthernetHeaderLen
		i4 = EthernetHeaderLen + IPv4MinHeaderLen
		i6 = EthernetHeaderLen + IPv6HeaderLen
	)
	tcp := func() []byte {
		return frametest.TCP4(t, frametest.Opts{Payload: 20}, "198.51.100.7", "192.0.2.10", 40000, 80)
	}
	udp := func() []byte {
		return frametest.UDP4(t, frametest.Opts{Payload: 20}, "198.51.100.7", "192.0.2.10", 40000, 7000)
	}
	t6 := func() []byte { return frametest.TCP6(t, frametest.Opts{}, "2001:db8:1::7", "2001:db8::10", 40000, 80) }
	quote := frametest.L3(t, frametest.TCP4(t, frametest.Opts{}, "192.0.2.10", "198.51.100.7", 80, 40000))
	quote6 := frametest.L3(t, frametest.TCP6(t, frametest.Opts{}, "2001:db8::10", "2001:db8:1::7", 80, 40000))
	unreach := func(n int) []byte {
		return frametest.ICMP4Error(t, frametest.Opts{}, "198.51.100.1", "192.0.2.10", 3, 3, quote, n)
	}
	unreach6 := func(n int) []byte {
		return frametest.ICMP6Error(t, frametest.Opts{}, "2001:db8:1::1", "2001:db8::10", 1, 4, quote6, n)
	}
	dstopts := func(n int) []ext {
		x := make([]ext, n)
		for i := range x {
			x[i] = ext{typ: IPProtoDstOpts, n: 8}
		}
		return x
	}
	seg := tcpSegment(t, 40000, 80, 0)
	arp := frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: 1, SourceHwAddress: frametest.MACClient[:], SourceProtAddress: frametest.IPOf("192.0.2.1").To4(),
		DstHwAddress: make([]byte, 6), DstProtAddress: frametest.IPOf("192.0.2.10").To4()})...)

	return []malformedCase{
		{"empty", nil, DropShortEthernet},
		{"13 bytes", make([]byte, 13), DropShortEthernet},
		{"vlan tag cut", frametest.TCP4(t, frametest.Opts{VLAN: 3}, "198.51.100.7", "192.0.2.10", 1, 2)[:17], DropShortVLAN},
		{"vlan tag only", frametest.TCP4(t, frametest.Opts{VLAN: 3}, "198.51.100.7", "192.0.2.10", 1, 2)[:18], DropIPv4Short},
		{"arp cut", arp[:e+27], DropARPShort},
		{"arp hlen 8", func() []byte { f := append([]byte(nil), arp...); f[e+arpHLen] = 8; return f }(), DropARPBadFormat},
		{"arp ipv6 ptype", func() []byte { f := append([]byte(nil), arp...); f[e+arpPType] = 0x86; return f }(), DropARPBadFormat},
		{"ipv4 19 bytes", tcp()[:e+19], DropIPv4Short},
		{"ipv4 version 6", func() []byte { f := tcp(); f[e] = 0x65; return f }(), DropIPv4BadVersion},
		{"ipv4 ihl 4", func() []byte { f := tcp(); f[e] = 0x44; return fixIPv4(f) }(), DropIPv4BadIHL},
		{"ipv4 ihl 0", func() []byte { f := tcp(); f[e] = 0x40; return f }(), DropIPv4BadIHL},
		{"ipv4 ihl beyond frame", func() []byte { f := tcp()[:e+40]; f[e] = 0x4f; return f }(), DropIPv4BadIHL},
		{"ipv4 bad checksum", func() []byte { f := tcp(); f[e+ip4Checksum]++; return f }(), DropIPv4BadChecksum},
		{"ipv4 checksum over options", func() []byte {
			f := frametest.Serialize(t, append(frametest.EthLayers(frametest.Opts{}, layers.EthernetTypeIPv4), func() *layers.IPv4 {
				ip := frametest.IP4Layer(frametest.Opts{}, "198.51.100.7", "192.0.2.10", layers.IPProtocolTCP)
				ip.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}
				return ip
			}(), frametest.TCPLayer(frametest.Opts{}, 1, 2))...)
			f[e+22]++ // an option byte
			return f
		}(), DropIPv4BadChecksum},
		{"ipv4 total length < ihl", func() []byte { f := tcp(); binary.BigEndian.PutUint16(f[e+2:], 19); return fixIPv4(f) }(), DropIPv4BadLength},
		{"ipv4 total length > frame", func() []byte {
			f := tcp()
			binary.BigEndian.PutUint16(f[e+2:], uint16(len(f)-e+1))
			return fixIPv4(f)
		}(), DropIPv4BadLength},
		{"tcp 19 bytes", setTotalLen(tcp(), 20+19), DropTCPShort},
		{"tcp 0 bytes", setTotalLen(tcp(), 20), DropTCPShort},
		{"tcp data offset 4", func() []byte { f := tcp(); f[i4+tcpDataOff] = 4 << 4; return f }(), DropTCPBadOffset},
		{"tcp data offset beyond packet", func() []byte { f := tcp(); f[i4+tcpDataOff] = 11 << 4; return f }(), DropTCPBadOffset},
		{"tcp data offset beyond ip length but within frame", func() []byte {
			f := frametest.TCP4(t, frametest.Opts{}, "198.51.100.7", "192.0.2.10", 1, 2) // 6 bytes of padding
			f[i4+tcpDataOff] = 6 << 4
			return f
		}(), DropTCPBadOffset},
		{"udp 7 bytes", setTotalLen(udp(), 27), DropUDPShort},
		{"udp length 7", func() []byte { f := udp(); binary.BigEndian.PutUint16(f[i4+udpLength:], 7); return f }(), DropUDPBadLength},
		{"udp length beyond ip payload", func() []byte { f := udp(); binary.BigEndian.PutUint16(f[i4+udpLength:], 29); return f }(), DropUDPBadLength},
		{"sctp 11 bytes", func() []byte {
			f := setTotalLen(tcp(), 31)
			f[e+ip4Proto] = IPProtoSCTP
			return fixIPv4(f)
		}(), DropSCTPShort},
		{"icmp 7 bytes", func() []byte {
			f := setTotalLen(unreach(28), 27)
			return f
		}(), DropICMPShort},
		{"icmp bad checksum", func() []byte { f := unreach(28); f[i4+icmpChecksum]++; return f }(), DropICMPBadChecksum},
		{"icmp checksum covers the quote", func() []byte { f := unreach(28); f[len(f)-1]++; return f }(), DropICMPBadChecksum},
		{"icmp error quote 19 bytes", unreach(19), DropICMPBadEmbedded},
		{"icmp first fragment: checksum covers other fragments, not verified", func() []byte {
			f := unreach(19) // also a bad quote, not looked at in a fragment
			f[e+ip4FlagsOff] |= ip4FlagMF >> 8
			f[i4+icmpChecksum]++
			return fixIPv4(f)
		}(), DropNone},
		{"icmp error quote version 6", func() []byte { f := unreach(28); f[i4+8] = 0x65; return fixICMPv4(f) }(), DropICMPBadEmbedded},
		{"icmp error quote ihl 4", func() []byte { f := unreach(28); f[i4+8] = 0x44; return fixICMPv4(f) }(), DropICMPBadEmbedded},
		{"icmp error quote ihl beyond", func() []byte { f := unreach(28); f[i4+8] = 0x48; return fixICMPv4(f) }(), DropICMPBadEmbedded},
		{"ipv6 39 bytes", t6()[:e+39], DropIPv6Short},
		{"ipv6 version 4", func() []byte { f := t6(); f[e] = 0x40; return f }(), DropIPv6BadVersion},
		{"ipv6 payload length beyond frame", func() []byte {
			f := t6()
			binary.BigEndian.PutUint16(f[e+ip6PayloadLen:], uint16(len(f)-i6+1))
			return f
		}(), DropIPv6BadLength},
		{"ipv6 payload length cuts tcp", func() []byte {
			f := t6()
			binary.BigEndian.PutUint16(f[e+ip6PayloadLen:], 19)
			return f
		}(), DropTCPShort},
		{"ipv6 hbh truncated", ip6Raw(frametest.Opts{}, "2001:db8:1::7", "2001:db8::10", nil, IPProtoHopByHop, make([]byte, 4)), DropIPv6BadExt},
		{"ipv6 ext length beyond packet", func() []byte {
			f := ip6Raw(frametest.Opts{}, "2001:db8:1::7", "2001:db8::10", []ext{{typ: IPProtoDstOpts, n: 8}}, IPProtoTCP, seg)
			f[i6+ip6ExtLen] = 3
			return f
		}(), DropIPv6BadExt},
		{"ipv6 ah length beyond packet", func() []byte {
			f := ip6Raw(frametest.Opts{}, "2001:db8:1::7", "2001:db8::10", []ext{{typ: IPProtoAH, n: 12}}, IPProtoTCP, seg)
			f[i6+ip6ExtLen] = 20
			return f
		}(), DropIPv6BadExt},
		{"ipv6 fragment header truncated", ip6Raw(frametest.Opts{}, "2001:db8:1::7", "2001:db8::10", nil, IPProtoFragment, make([]byte, 7)), DropIPv6BadExt},
		{"ipv6 hbh not first", ip6Raw(frametest.Opts{}, "2001:db8:1::7", "2001:db8::10", []ext{{typ: IPProtoDstOpts, n: 8}, {typ: IPProtoHopByHop, n: 8}}, IPProtoTCP, seg), DropIPv6BadExt},
		{"ipv6 ext chain ends in truncation", ip6Raw(frametest.Opts{}, "2001:db8:1::7", "2001:db8::10", dstopts(3), IPProtoDstOpts, nil), DropIPv6BadExt},
		{"ipv6 too many ext headers", ip6Raw(frametest.Opts{}, "2001:db8:1::7", "2001:db8::10", dstopts(MaxIPv6ExtHeaders+1), IPProtoTCP, seg), DropIPv6TooManyExt},
		{"ipv6 max ext headers", ip6Raw(frametest.Opts{}, "2001:db8:1::7", "2001:db8::10", dstopts(MaxIPv6ExtHeaders), IPProtoTCP, seg), DropNone},
		{"ipv6 udp length beyond payload", func() []byte {
			f := frametest.UDP6(t, frametest.Opts{Payload: 4}, "2001:db8:1::7", "2001:db8::10", 1, 2)
			binary.BigEndian.PutUint16(f[i6+udpLength:], 13)
			return f
		}(), DropUDPBadLength},
		{"ipv6 udp length 0 (jumbogram)", func() []byte {
			f := frametest.UDP6(t, frametest.Opts{Payload: 4}, "2001:db8:1::7", "2001:db8::10", 1, 2)
			binary.BigEndian.PutUint16(f[i6+udpLength:], 0)
			return f
		}(), DropUDPBadLength},
		{"icmp6 bad checksum", func() []byte { f := unreach6(48); f[i6+icmpChecksum] ^= 0x10; return f }(), DropICMPBadChecksum},
		{"icmp6 checksum covers pseudo-header", func() []byte { f := unreach6(48); f[e+ip6Dst+15] ^= 1; return f }(), DropICMPBadChecksum},
		{"icmp6 error quote 39 bytes", unreach6(39), DropICMPBadEmbedded},
		{"icmp6 error quote version 4", func() []byte { f := unreach6(48); f[i6+8] = 0x45; return fixICMPv6(f) }(), DropICMPBadEmbedded},
		{"icmp6 error quote ext truncated", func() []byte { f := unreach6(48); f[i6+8+ip6NextHeader] = IPProtoDstOpts; return fixICMPv6(f) }(), DropICMPBadEmbedded},
		{"icmp6 5 bytes", func() []byte {
			f := unreach6(48)
			binary.BigEndian.PutUint16(f[e+ip6PayloadLen:], 5)
			return f
		}(), DropICMPShort},
	}
}

func TestDecodeMalformed(t *testing.T) {
	for _, tt := range malformedCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			var p Parsed
			got := p.Decode(tt.frame)
			if got != tt.want {
				t.Errorf("Decode = %v, want %v", got, tt.want)
			}
			checkInvariants(t, &p, tt.frame, got)
		})
	}
}

// checkInvariants asserts what every Decode result guarantees.
func checkInvariants(t testing.TB, p *Parsed, frame []byte, d Drop) {
	t.Helper()
	if d >= NumDrops {
		t.Fatalf("drop %d >= NumDrops", d)
	}
	if !(0 <= p.L3Off && p.L3Off <= p.L4Off && p.L4Off <= p.PayloadOff && p.PayloadOff <= p.End && p.End <= len(frame)) {
		t.Fatalf("offsets out of order: L3 %d L4 %d payload %d end %d len %d (drop %v)", p.L3Off, p.L4Off, p.PayloadOff, p.End, len(frame), d)
	}
	if d != DropNone {
		return
	}
	if p.IPVersion == 4 && p.End-p.L3Off < IPv4MinHeaderLen || p.IPVersion == 6 && p.End-p.L3Off < IPv6HeaderLen {
		t.Fatalf("IP packet of %d bytes", p.End-p.L3Off)
	}
	if p.HasPorts && p.NonFirstFragment {
		t.Fatalf("ports in a non-first fragment")
	}
	if p.HasEmbedded {
		if !(p.PayloadOff <= p.EmbL3Off && p.EmbL3Off <= p.EmbL4Off && p.EmbL4Off <= p.End) {
			t.Fatalf("embedded offsets out of range: %d %d (payload %d end %d)", p.EmbL3Off, p.EmbL4Off, p.PayloadOff, p.End)
		}
		if p.EmbHasPorts && p.End-p.EmbL4Off < embeddedPortsMin {
			t.Fatalf("embedded ports with %d bytes of L4", p.End-p.EmbL4Off)
		}
	}
}

func TestDropNames(t *testing.T) {
	seen := map[string]bool{}
	for d := DropNone; d < NumDrops; d++ {
		s := d.String()
		if s == "" || strings.ToLower(s) != s || strings.ContainsAny(s, " -") || seen[s] {
			t.Errorf("Drop(%d) has name %q: want a unique snake_case name", d, s)
		}
		seen[s] = true
	}
	if got := Drop(200).String(); got != "drop_200" {
		t.Errorf("Drop(200) = %q", got)
	}
	for _, want := range []string{"short_ethernet", "ipv4_bad_ihl", "ipv4_bad_length", "ipv4_bad_checksum", "ipv6_short", "ipv6_bad_ext", "tcp_short", "tcp_bad_offset", "udp_short", "udp_bad_length", "icmp_short"} {
		if !seen[want] {
			t.Errorf("no drop reason named %q", want)
		}
	}
}

func TestDecodeAllocs(t *testing.T) {
	var p Parsed
	for _, tt := range oracleFrames(t) {
		if n := testing.AllocsPerRun(50, func() { p.Decode(tt.frame) }); n != 0 {
			t.Errorf("%s: Decode allocates %v times", tt.name, n)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	frames := []struct {
		name  string
		frame []byte
	}{
		{"tcp4", frametest.TCP4(b, frametest.Opts{Payload: 64}, "198.51.100.7", "192.0.2.10", 40000, 80)},
		{"tcp4_vlan", frametest.TCP4(b, frametest.Opts{VLAN: 100}, "198.51.100.7", "192.0.2.10", 40000, 80)},
		{"udp4", frametest.UDP4(b, frametest.Opts{Payload: 64}, "198.51.100.7", "192.0.2.10", 40000, 7000)},
		{"tcp6", frametest.TCP6(b, frametest.Opts{Payload: 64}, "2001:db8:1::7", "2001:db8::10", 40000, 80)},
		{"icmp4_error", frametest.ICMP4Error(b, frametest.Opts{}, "198.51.100.1", "192.0.2.10", 3, 4, frametest.L3(b, frametest.TCP4(b, frametest.Opts{}, "192.0.2.10", "198.51.100.7", 80, 40000)), 28)},
	}
	for _, f := range frames {
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			var p Parsed
			for b.Loop() {
				if p.Decode(f.frame) != DropNone {
					b.Fatal("drop")
				}
			}
		})
	}
}
