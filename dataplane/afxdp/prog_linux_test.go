package afxdp

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gvs-lb/gvs/dataplane/header"
)

// needBPF skips a test that cannot load BPF programs here, saying why, unless
// GVS_LAB_REQUIRED=1.
func needBPF(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("GVS_LAB_REQUIRED") == "1" {
		t.Fatal("loading XDP programs needs root (CAP_BPF, CAP_NET_ADMIN)")
	}
	t.Skip("loading XDP programs needs root (CAP_BPF, CAP_NET_ADMIN)")
}

var (
	vip4   = netip.MustParseAddr("198.18.0.100")
	vip6   = netip.MustParseAddr("2001:db8::100")
	rs4    = netip.MustParseAddr("198.18.0.5")
	rs6    = netip.MustParseAddr("2001:db8::5")
	cli4   = netip.MustParseAddr("198.18.0.2")
	cli6   = netip.MustParseAddr("2001:db8::2")
	self4  = netip.MustParseAddr("198.18.0.3")
	local4 = self4 // the host's own addresses (Filter.Local)
	local6 = netip.MustParseAddr("2001:db8::3")
	dirMAC = [6]byte{2, 0, 0, 0, 0, 3}
	cliMAC = [6]byte{2, 0, 0, 0, 0, 2}
)

// eth returns an Ethernet header of type et, with an 802.1Q tag when vlan.
func eth(et uint16, vlan bool) []byte {
	b := append(dirMAC[:], cliMAC[:]...)
	b = append([]byte(nil), b...)
	if vlan {
		b = binary.BigEndian.AppendUint16(b, header.EtherTypeVLAN)
		b = binary.BigEndian.AppendUint16(b, 42)
	}
	return binary.BigEndian.AppendUint16(b, et)
}

// qinq puts an 802.1ad service tag in front of the tagged frame f.
func qinq(f []byte) []byte {
	b := append([]byte(nil), f[:12]...)
	b = binary.BigEndian.AppendUint16(b, 0x88a8)
	b = binary.BigEndian.AppendUint16(b, 7)
	return append(b, f[12:]...)
}

// ip4 returns an IPv4 packet (header and payloadLen zero bytes) in an Ethernet frame.
func ip4(src, dst netip.Addr, proto uint8, payloadLen int, vlan bool) []byte {
	b := eth(header.EtherTypeIPv4, vlan)
	h := make([]byte, 20+payloadLen)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(len(h)))
	h[8], h[9] = 64, proto
	s, d := src.As4(), dst.As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	binary.BigEndian.PutUint16(h[10:], ^header.Checksum(h[:20], 0))
	return append(b, h...)
}

// ip6 returns an IPv6 packet with next header proto and payload in an Ethernet frame.
func ip6(src, dst netip.Addr, proto uint8, payload []byte, vlan bool) []byte {
	b := eth(header.EtherTypeIPv6, vlan)
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6], h[7] = proto, 255
	s, d := src.As16(), dst.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(append(b, h...), payload...)
}

// ns returns a neighbour solicitation for target from src.
func ns(src, target netip.Addr, vlan bool) []byte {
	p := make([]byte, 24)
	p[0] = icmp6NS
	t := target.As16()
	copy(p[8:], t[:])
	// Solicited-node multicast destination (RFC 4291 §2.7.1).
	dst := netip.AddrFrom16([16]byte{0xff, 2, 11: 1, 12: 0xff, 13: t[13], 14: t[14], 15: t[15]})
	return ip6(src, dst, protoICMPv6, p, vlan)
}

// arp returns an ARP packet (op 1 request, 2 reply) asking for target.
func arp(op uint16, sender, target netip.Addr, vlan bool) []byte {
	b := eth(header.EtherTypeARP, vlan)
	a := make([]byte, 28)
	binary.BigEndian.PutUint16(a[0:], 1)
	binary.BigEndian.PutUint16(a[2:], header.EtherTypeIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], op)
	copy(a[8:], cliMAC[:])
	s, t := sender.As4(), target.As4()
	copy(a[14:], s[:])
	copy(a[24:], t[:])
	return append(b, a...)
}

// testProg loads the program with its maps holding vip4/vip6 and the NAT real
// servers rs4/rs6.
func testProg(t testing.TB, o progOptions) (*ebpf.Program, *progMaps) {
	t.Helper()
	needBPF(t)
	m, err := newMaps(1, 1024)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.close)
	if err := m.setAddrs([]netip.Addr{vip4, vip6}, []netip.Addr{rs4, rs6}, []netip.Addr{local4, local6}); err != nil {
		t.Fatal(err)
	}
	p, err := newProgram(m, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, m
}

// decide runs the program on frame with no socket in the XSKMAP and returns the
// Reason it redirected for, or -1 for a frame it passed. A redirect without a socket
// is passed and counted under ReasonNoSocket as well as under its reason.
func decide(t testing.TB, p *ebpf.Program, m *progMaps, frame []byte) int {
	t.Helper()
	before, err := m.counts()
	if err != nil {
		t.Fatal(err)
	}
	ret, err := p.Run(&ebpf.RunOptions{Data: frame})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if ret != xdpPass {
		t.Fatalf("verdict %d without a socket, want XDP_PASS (%d)", ret, xdpPass)
	}
	after, err := m.counts()
	if err != nil {
		t.Fatal(err)
	}
	got := -1
	for r := Reason(0); r < ReasonNoSocket; r++ {
		switch d := after[r] - before[r]; {
		case d == 1 && got == -1:
			got = int(r)
		case d != 0:
			t.Fatalf("counter %v moved by %d (already %d)", r, d, got)
		}
	}
	nosock := after[ReasonNoSocket] - before[ReasonNoSocket]
	if (got >= 0) != (nosock == 1) || nosock > 1 {
		t.Fatalf("reason %d but no_socket moved by %d", got, nosock)
	}
	return got
}

func TestProgramDecisions(t *testing.T) {
	p, m := testProg(t, progOptions{})
	pv, mv := testProg(t, progOptions{redirectVRRP: true})
	const pass = -1
	vrrpMcast4 := netip.MustParseAddr("224.0.0.18")
	vrrpMcast6 := netip.MustParseAddr("ff02::12")
	tests := []struct {
		name     string
		frame    []byte
		want     int
		wantVRRP int // with redirectVRRP
	}{
		{"tcp to IPv4 VIP", ip4(cli4, vip4, header.IPProtoTCP, 20, false), int(ReasonVIP4), int(ReasonVIP4)},
		{"udp to IPv6 VIP", ip6(cli6, vip6, header.IPProtoUDP, make([]byte, 8), false), int(ReasonVIP6), int(ReasonVIP6)},
		{"tagged IPv4 VIP", ip4(cli4, vip4, header.IPProtoUDP, 8, true), int(ReasonVIP4), int(ReasonVIP4)},
		{"tagged IPv6 VIP", ip6(cli6, vip6, header.IPProtoUDP, make([]byte, 8), true), int(ReasonVIP6), int(ReasonVIP6)},
		{"to the director's own address", ip4(cli4, self4, header.IPProtoICMP, 8, false), pass, pass},
		{"IPv6 not a VIP", ip6(cli6, netip.MustParseAddr("2001:db8::3"), header.IPProtoTCP, make([]byte, 20), false), pass, pass},
		{"NAT reply IPv4", ip4(rs4, cli4, header.IPProtoTCP, 20, false), int(ReasonNAT4), int(ReasonNAT4)},
		{"NAT reply IPv6", ip6(rs6, cli6, header.IPProtoTCP, make([]byte, 20), false), int(ReasonNAT6), int(ReasonNAT6)},
		{"NAT server to the host itself IPv4", ip4(rs4, local4, header.IPProtoTCP, 20, false), pass, pass},
		{"NAT server to the host itself IPv6", ip6(rs6, local6, header.IPProtoTCP, make([]byte, 20), false), pass, pass},
		{"NAT server's NS for the host", ns(rs6, local6, false), pass, pass},
		{"NAT server to IPv4 multicast", ip4(rs4, netip.MustParseAddr("224.0.0.1"), header.IPProtoUDP, 8, false), pass, pass},
		{"NAT server to IPv4 broadcast", ip4(rs4, netip.MustParseAddr("255.255.255.255"), header.IPProtoUDP, 8, false), pass, pass},
		{"to a NAT real server (not a reply)", ip4(cli4, rs4, header.IPProtoTCP, 20, false), pass, pass},
		{"from a VIP (not a NAT server)", ip4(vip4, cli4, header.IPProtoTCP, 20, false), pass, pass},
		{"ARP request for VIP", arp(1, cli4, vip4, false), int(ReasonARP), int(ReasonARP)},
		{"tagged ARP request for VIP", arp(1, cli4, vip4, true), int(ReasonARP), int(ReasonARP)},
		{"ARP reply from VIP", arp(2, vip4, cli4, false), pass, pass},
		{"ARP request for own address", arp(1, cli4, self4, false), pass, pass},
		{"NS for VIP", ns(cli6, vip6, false), int(ReasonNS), int(ReasonNS)},
		{"tagged NS for VIP", ns(cli6, vip6, true), int(ReasonNS), int(ReasonNS)},
		{"NS for another address", ns(cli6, netip.MustParseAddr("2001:db8::3"), false), pass, pass},
		{"VRRP v4", ip4(self4, vrrpMcast4, protoVRRP, 20, false), pass, int(ReasonVRRP)},
		{"VRRP v6", ip6(netip.MustParseAddr("fe80::3"), vrrpMcast6, protoVRRP, make([]byte, 8), false), pass, int(ReasonVRRP)},
		{"QinQ to VIP passed", qinq(ip4(cli4, vip4, header.IPProtoUDP, 8, true)), pass, pass},
		{"empty", nil, pass, pass},
		{"Ethernet header only", eth(header.EtherTypeIPv4, false), pass, pass},
		{"truncated IPv4 to VIP", ip4(cli4, vip4, header.IPProtoTCP, 0, false)[:14+19], pass, pass},
		{"truncated IPv6 to VIP", ip6(cli6, vip6, header.IPProtoTCP, nil, false)[:14+39], pass, pass},
		{"truncated NS", ns(cli6, vip6, false)[:14+40+23], pass, pass},
		{"truncated ARP", arp(1, cli4, vip4, false)[:14+27], pass, pass},
		{"truncated tag", eth(header.EtherTypeIPv4, true)[:15], pass, pass},
		{"IPv6 ext header before ICMPv6", ip6(cli6, netip.MustParseAddr("ff02::1:ff00:100"), 0, make([]byte, 32), false), pass, pass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame := tt.frame
			if len(frame) < 14 {
				// Shorter than an Ethernet header: no NIC delivers it, and
				// BPF_PROG_TEST_RUN may refuse them; if it runs them, they pass.
				if ret, err := p.Run(&ebpf.RunOptions{Data: frame}); err == nil && ret != xdpPass {
					t.Errorf("verdict %d, want XDP_PASS", ret)
				}
				return
			}
			if got := decide(t, p, m, frame); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
			if got := decide(t, pv, mv, frame); got != tt.wantVRRP {
				t.Errorf("with VRRP redirect: got %d, want %d", got, tt.wantVRRP)
			}
		})
	}
}

// FuzzProgram runs the program on arbitrary frames: the verdict is XDP_PASS (with no
// socket in the XSKMAP a redirect falls back to it), never an abort or a drop, and a
// frame the program redirects is one the slow reference below says is gvs's. The
// verifier has already proved that no input reads out of bounds.
func FuzzProgram(f *testing.F) {
	for _, s := range [][]byte{
		ip4(cli4, vip4, header.IPProtoTCP, 20, false),
		ip6(cli6, vip6, header.IPProtoUDP, make([]byte, 8), true),
		ip4(rs4, cli4, header.IPProtoTCP, 20, true),
		arp(1, cli4, vip4, false),
		ns(cli6, vip6, false),
		ns(cli6, vip6, true),
		ip4(self4, netip.MustParseAddr("224.0.0.18"), protoVRRP, 20, false),
	} {
		f.Add(s)
	}
	p, m := testProg(f, progOptions{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < ethLen {
			return
		}
		got := decide(t, p, m, frame)
		if want := refDecide(frame); got != want {
			t.Fatalf("program says %d, reference %d", got, want)
		}
	})
}

// refDecide is the program's decision written plainly (no socket in the XSKMAP,
// VRRP left to the kernel): the Reason, or -1 to pass. A NAT server's frame is a
// reply only when it is not to the host itself nor to a multicast address.
func refDecide(b []byte) int {
	if len(b) < ethLen {
		return -1
	}
	et := binary.BigEndian.Uint16(b[12:])
	l3 := b[ethLen:]
	if et == header.EtherTypeVLAN {
		if len(l3) < 4 {
			return -1
		}
		et = binary.BigEndian.Uint16(l3[2:])
		l3 = l3[4:]
	}
	addr := func(s []byte) netip.Addr { a, _ := netip.AddrFromSlice(s); return a }
	switch et {
	case header.EtherTypeIPv4:
		if len(l3) < 20 {
			return -1
		}
		if addr(l3[16:20]) == vip4 {
			return int(ReasonVIP4)
		}
		if d := addr(l3[16:20]); d != local4 && l3[16]&0xe0 != 0xe0 && addr(l3[12:16]) == rs4 {
			return int(ReasonNAT4)
		}
	case header.EtherTypeIPv6:
		if len(l3) < 40 {
			return -1
		}
		if addr(l3[24:40]) == vip6 {
			return int(ReasonVIP6)
		}
		if d := addr(l3[24:40]); d != local6 && l3[24] != 0xff && addr(l3[8:24]) == rs6 {
			return int(ReasonNAT6)
		}
		if l3[6] == protoICMPv6 && len(l3) >= 64 && l3[40] == icmp6NS && addr(l3[48:64]) == vip6 {
			return int(ReasonNS)
		}
	case header.EtherTypeARP:
		if len(l3) >= 28 && binary.BigEndian.Uint16(l3[2:]) == header.EtherTypeIPv4 &&
			binary.BigEndian.Uint16(l3[6:]) == arpRequest && addr(l3[24:28]) == vip4 {
			return int(ReasonARP)
		}
	}
	return -1
}

// TestManyAddrs: tens of thousands of VIPs fit (a map, not an unrolled program);
// more than the map holds is refused, and a refused update leaves the maps as they
// were; shrinking the set removes what is gone.
func TestManyAddrs(t *testing.T) {
	needBPF(t)
	m, err := newMaps(1, 50000)
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	p, err := newProgram(m, progOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var vips []netip.Addr
	for i := range 40000 {
		vips = append(vips, netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)}))
	}
	if err := m.setAddrs(vips, nil, nil); err != nil {
		t.Fatal(err)
	}
	last4, last6 := vips[len(vips)-2], vips[len(vips)-1]
	if got := decide(t, p, m, ip4(cli4, last4, header.IPProtoUDP, 8, false)); got != int(ReasonVIP4) {
		t.Errorf("the 40000th IPv4 VIP: %d", got)
	}
	if got := decide(t, p, m, ip6(cli6, last6, header.IPProtoUDP, make([]byte, 8), false)); got != int(ReasonVIP6) {
		t.Errorf("the 40000th IPv6 VIP: %d", got)
	}
	var more []netip.Addr
	for i := range 50001 {
		more = append(more, netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}))
	}
	more[50000] = netip.AddrFrom4([4]byte{198, 19, 255, 255})
	if err := m.setAddrs(more, nil, nil); !errors.Is(err, ErrTooManyAddrs) {
		t.Fatalf("50001 addresses in a map of 50000: %v, want ErrTooManyAddrs", err)
	}
	if got := decide(t, p, m, ip4(cli4, last4, header.IPProtoUDP, 8, false)); got != int(ReasonVIP4) {
		t.Errorf("a refused update changed the map")
	}
	// A whole new set as large as the map replaces the old one, and the host's own
	// addresses have room of their own: a full map still takes them.
	var local []netip.Addr
	for i := range maxLocalAddrs {
		local = append(local, netip.AddrFrom4([4]byte{198, 18, 255, byte(i)}))
	}
	if err := m.setAddrs(more[:50000], nil, local); err != nil {
		t.Fatalf("50000 VIPs and %d host addresses in a map of 50000: %v", len(local), err)
	}
	if err := m.setAddrs(nil, nil, append(local, self4)); !errors.Is(err, ErrTooManyAddrs) {
		t.Fatalf("%d host addresses: %v, want ErrTooManyAddrs", len(local)+1, err)
	}
	if err := m.setAddrs([]netip.Addr{vip4}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := decide(t, p, m, ip4(cli4, last4, header.IPProtoUDP, 8, false)); got != -1 {
		t.Errorf("a removed VIP still redirected")
	}
	if got := decide(t, p, m, ip4(cli4, vip4, header.IPProtoUDP, 8, false)); got != int(ReasonVIP4) {
		t.Errorf("the kept VIP not redirected")
	}
}
