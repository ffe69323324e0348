package afpacket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/gvs-lb/gvs/dataplane/header"
	"golang.org/x/net/bpf"
)

// rlMAC is the lab's MAC convention (docs/lab.md): 02:00:00:00:00:XX.
func rlMAC(x byte) [6]byte { return [6]byte{2, 0, 0, 0, 0, x} }

// Lab addresses.
var (
	rlGenMAC  = rlMAC(0x02)
	rlDirMAC  = rlMAC(0x03)
	rlGen     = netip.MustParseAddr("198.18.0.2")
	rlVIP     = netip.MustParseAddr("198.18.0.100")
	rlOther   = netip.MustParseAddr("198.18.0.99")
	rlRS      = netip.MustParseAddr("198.18.0.5")
	rlClient  = netip.MustParseAddr("198.19.0.7")
	rlVIP6    = netip.MustParseAddr("2001:2::100")
	rlOther6  = netip.MustParseAddr("2001:2::99")
	rlGen6    = netip.MustParseAddr("2001:2::2")
	rlVRRPDst = netip.MustParseAddr("224.0.0.18")
)

// Frame constructors: plain bytes, written out here so the tests do not depend on the
// package's own header code (the frames are the oracle).

func rlEth(dst, src [6]byte, vlan int, etype uint16, payload []byte) []byte {
	b := append([]byte(nil), dst[:]...)
	b = append(b, src[:]...)
	if vlan >= 0 {
		b = binary.BigEndian.AppendUint16(b, header.EtherTypeVLAN)
		b = binary.BigEndian.AppendUint16(b, uint16(vlan))
	}
	b = binary.BigEndian.AppendUint16(b, etype)
	return append(b, payload...)
}

// rlIPv4 builds an IPv4 header (no options) in front of payload; flagsOff is the
// flags and fragment offset word.
func rlIPv4(src, dst netip.Addr, proto uint8, id, flagsOff uint16, payload []byte) []byte {
	h := make([]byte, 20, 20+len(payload))
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	binary.BigEndian.PutUint16(h[4:], id)
	binary.BigEndian.PutUint16(h[6:], flagsOff)
	h[8] = 64
	h[9] = proto
	s, d := src.As4(), dst.As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	binary.BigEndian.PutUint16(h[10:], ^header.Checksum(h, 0))
	return append(h, payload...)
}

func rlIPv6(src, dst netip.Addr, nh uint8, payload []byte) []byte {
	h := make([]byte, 40, 40+len(payload))
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6] = nh
	h[7] = 64
	s, d := src.As16(), dst.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(h, payload...)
}

// rlUDP builds a UDP header with checksum 0 (none; only valid over IPv4, which is
// all the ring cares about: it does not look at L4).
func rlUDP(sport, dport uint16, payload []byte) []byte {
	h := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint16(h[4:], uint16(8+len(payload)))
	return append(h, payload...)
}

func rlARP(sha [6]byte, spa, tpa netip.Addr) []byte {
	b := []byte{0, 1, 8, 0, 6, 4, 0, 1}
	b = append(b, sha[:]...)
	s, d := spa.As4(), tpa.As4()
	b = append(b, s[:]...)
	b = append(b, 0, 0, 0, 0, 0, 0)
	return append(b, d[:]...)
}

// rlPad pads a frame to the Ethernet minimum, as a sender does.
func rlPad(b []byte) []byte {
	for len(b) < header.EthernetMinFrame {
		b = append(b, 0)
	}
	return b
}

// rlFilterCases are frames a director's filter must pass or drop, each with a
// distinct payload.
func rlFilterCases() (pass, drop [][]byte) {
	udp := func(s string) []byte { return rlUDP(40000, 80, []byte(s)) }
	icmp6 := func(typ byte) []byte { return []byte{typ, 0, 0, 0, 0, 0, 0, 0} }
	pass = [][]byte{
		rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, 1, 0, udp("to vip")))),
		rlPad(rlEth(rlDirMAC, rlGenMAC, 7, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, 2, 0, udp("to vip, tagged")))),
		rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlRS, rlClient, 6, 3, 0, udp("from nat rs")))),
		rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, 4, 0x2000|100, udp("fragment to vip")))),
		rlPad(rlEth([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, rlGenMAC, -1, header.EtherTypeARP, rlARP(rlGenMAC, rlGen, rlVIP))),
		rlPad(rlEth([6]byte{1, 0, 0x5e, 0, 0, 0x12}, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlGen, rlVRRPDst, 112, 5, 0, []byte("vrrp advert")))),
		rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv6, rlIPv6(rlGen6, rlVIP6, 17, udp("to vip6"))),
		rlEth(rlDirMAC, rlGenMAC, 9, header.EtherTypeIPv6, rlIPv6(rlGen6, rlVIP6, 17, udp("to vip6, tagged"))),
		rlEth([6]byte{0x33, 0x33, 0xff, 0, 1, 0}, rlGenMAC, -1, header.EtherTypeIPv6, rlIPv6(rlGen6, netip.MustParseAddr("ff02::1:ff00:100"), 58, icmp6(135))),
	}
	drop = [][]byte{
		rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, rlOther, 17, 11, 0, udp("to other")))),
		rlPad(rlEth(rlDirMAC, rlGenMAC, 7, header.EtherTypeIPv4, rlIPv4(rlClient, rlOther, 17, 12, 0, udp("to other, tagged")))),
		rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, rlOther, 6, 13, 0, udp("tcp to other")))),
		rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv6, rlIPv6(rlGen6, rlOther6, 17, udp("to other6"))),
		rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv6, rlIPv6(rlGen6, rlOther6, 58, icmp6(128))),
		rlPad(rlEth([6]byte{1, 0x80, 0xc2, 0, 0, 0xe}, rlGenMAC, -1, 0x88cc, []byte("lldp"))),
	}
	return pass, drop
}

func rlDirFilter() *Filter {
	return &Filter{VIPs: []netip.Addr{rlVIP, rlVIP6}, NATRealServers: []netip.Addr{rlRS}, MACs: [][6]byte{rlDirMAC}, ARP: true, NDP: true, VRRP: true}
}

// rlManyVIPs returns n VIPs, IPv4 and IPv6 alternately, none of them a lab address
// the tests use otherwise.
func rlManyVIPs(n int) []netip.Addr {
	vips := make([]netip.Addr, 0, n)
	for i := range n {
		if i%2 == 0 {
			vips = append(vips, netip.AddrFrom4([4]byte{198, 19, byte(i >> 9), byte(i >> 1)}))
		} else {
			vips = append(vips, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}))
		}
	}
	return vips
}

// rlCoarse returns f with enough extra VIPs for Program to compile the coarse filter.
func rlCoarse(f *Filter) *Filter {
	c := *f
	c.VIPs = append(rlManyVIPs(200), f.VIPs...)
	return &c
}

// rlUntag returns the frame as packet taps see a tagged frame: the kernel moved the
// 802.1Q tag into skb metadata (skb_vlan_untag).
func rlUntag(b []byte) []byte {
	if len(b) < 18 || binary.BigEndian.Uint16(b[12:]) != header.EtherTypeVLAN {
		return b
	}
	return append(append([]byte(nil), b[:12]...), b[16:]...)
}

func rlRunFilter(t testing.TB, f *Filter, frame []byte) bool {
	t.Helper()
	prog, err := f.Program()
	if err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	n, err := vm.Run(frame)
	if err != nil {
		t.Fatal(err)
	}
	return n != 0
}

// TestFilterProgram runs the compiled filter in x/net/bpf's interpreter on frames a
// director must receive or not, with the 802.1Q tag in the data and moved out.
func TestFilterProgram(t *testing.T) {
	pass, drop := rlFilterCases()
	f := rlDirFilter()
	for i, b := range pass {
		if !rlRunFilter(t, f, b) || !rlRunFilter(t, f, rlUntag(b)) {
			t.Errorf("pass[%d] dropped: % x", i, b)
		}
		if rlRunFilter(t, &Filter{}, b) {
			t.Errorf("the zero Filter passed pass[%d]", i)
		}
	}
	for i, b := range drop {
		if rlRunFilter(t, f, b) || rlRunFilter(t, f, rlUntag(b)) {
			t.Errorf("drop[%d] passed: % x", i, b)
		}
	}
	// The coarse filter passes the same frames, and of the dropped ones those sent
	// to another host's MAC; the director's own unicast traffic passes.
	coarse := rlCoarse(f)
	if coarse.Exact() {
		t.Fatal("200 more VIPs still compile to the exact filter")
	}
	for i, b := range pass {
		if !rlRunFilter(t, coarse, b) || !rlRunFilter(t, coarse, rlUntag(b)) {
			t.Errorf("coarse: pass[%d] dropped: % x", i, b)
		}
	}
	rsMAC := rlMAC(0x05)
	udp := rlUDP(40000, 80, []byte("x"))
	for i, b := range [][]byte{
		rlPad(rlEth(rsMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, 21, 0, udp))),
		rlPad(rlEth(rsMAC, rlGenMAC, 7, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, 22, 0, udp))),
		rlEth(rsMAC, rlGenMAC, -1, header.EtherTypeIPv6, rlIPv6(rlGen6, rlVIP6, 17, udp)),
		rlPad(rlEth([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlGen, netip.MustParseAddr("198.18.255.255"), 17, 23, 0, udp))),
		rlPad(rlEth([6]byte{1, 0, 0x5e, 0, 0, 0xfb}, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlGen, netip.MustParseAddr("224.0.0.251"), 17, 24, 0, udp))),
		rlPad(rlEth(rlDirMAC, rlGenMAC, -1, 0x88cc, []byte("lldp to us"))),
		drop[5],
	} {
		if rlRunFilter(t, coarse, b) || rlRunFilter(t, coarse, rlUntag(b)) {
			t.Errorf("coarse: frame %d passed: % x", i, b)
		}
	}
	for i, b := range drop[:5] {
		if !rlRunFilter(t, coarse, b) {
			t.Errorf("coarse: drop[%d], sent to the director's MAC, dropped: % x", i, b)
		}
	}

	// Each flag opens its own traffic only.
	arp, vrrp, ns := pass[4], pass[5], pass[8]
	for _, tt := range []struct {
		name  string
		f     Filter
		frame []byte
	}{
		{"arp", Filter{ARP: true}, arp},
		{"vrrp", Filter{VRRP: true}, vrrp},
		{"ndp", Filter{NDP: true}, ns},
	} {
		if !rlRunFilter(t, &tt.f, tt.frame) {
			t.Errorf("%s: %+v dropped its frame", tt.name, tt.f)
		}
		for _, other := range [][]byte{arp, vrrp, ns} {
			if &other[0] != &tt.frame[0] && rlRunFilter(t, &tt.f, other) {
				t.Errorf("%s: %+v passed % x", tt.name, tt.f, other)
			}
		}
	}
}

// TestFilterSizes compiles the filter of a director with 0, 1, 5,000 and 50,000 VIPs
// (IPv4 and IPv6 alternately) and NAT real servers: every program is within the
// kernel's limit, exact only while it is short, passes the first and the last VIP and
// a NAT reply, and drops VIP traffic sent to another host's MAC when coarse, traffic
// to another address when exact.
func TestFilterSizes(t *testing.T) {
	for _, n := range []int{0, 1, 5000, 50000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			f := &Filter{VIPs: rlManyVIPs(n), NATRealServers: []netip.Addr{rlRS, netip.MustParseAddr("2001:db8::5")},
				MACs: [][6]byte{rlDirMAC}, ARP: true, NDP: true, VRRP: true}
			prog, err := f.Program()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := bpf.Assemble(prog); err != nil {
				t.Fatal(err)
			}
			exact := f.Exact()
			t.Logf("%d VIPs: %d instructions, exact %v", n, len(prog), exact)
			switch {
			case len(prog) > bpfMaxInstructions:
				t.Fatalf("%d instructions, the kernel takes %d", len(prog), bpfMaxInstructions)
			case exact != (n <= 1):
				t.Errorf("exact = %v for %d VIPs", exact, n)
			case exact && len(prog) > ExactMaxInstructions:
				t.Errorf("exact filter of %d instructions, more than %d", len(prog), ExactMaxInstructions)
			case !exact && len(prog) > 45:
				t.Errorf("coarse filter of %d instructions, expected at most 45", len(prog))
			}
			frame := func(dstMAC [6]byte, src, dst netip.Addr) []byte {
				if dst.Is4() {
					return rlPad(rlEth(dstMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(src, dst, 6, 1, 0, rlUDP(1, 80, nil))))
				}
				return rlEth(dstMAC, rlGenMAC, -1, header.EtherTypeIPv6, rlIPv6(src, dst, 6, rlUDP(1, 80, nil)))
			}
			var vips []netip.Addr
			if n > 0 {
				vips = []netip.Addr{f.VIPs[0], f.VIPs[n-1]}
			}
			for _, v := range vips {
				src := rlClient
				if v.Is6() {
					src = rlGen6
				}
				if !rlRunFilter(t, f, frame(rlDirMAC, src, v)) {
					t.Errorf("%v dropped", v)
				}
				if !exact && rlRunFilter(t, f, frame(rlMAC(0x09), src, v)) {
					t.Errorf("%v to another host's MAC passed", v)
				}
			}
			if !rlRunFilter(t, f, frame(rlDirMAC, rlRS, rlClient)) {
				t.Error("NAT reply dropped")
			}
			if exact && rlRunFilter(t, f, frame(rlDirMAC, rlClient, rlOther)) {
				t.Error("exact filter passed traffic to another address")
			}
			if got, want := len(prog), f.exactLen(splitAddrsT(t, f.VIPs, f.NATRealServers)); exact && got != want {
				t.Errorf("exact program of %d instructions, exactLen says %d", got, want)
			}
		})
	}
}

func splitAddrsT(t *testing.T, vips, rs []netip.Addr) (v4dst, v6dst, v4src, v6src [][]byte) {
	t.Helper()
	v4dst, v6dst, err := splitAddrs(vips)
	if err != nil {
		t.Fatal(err)
	}
	v4src, v6src, err = splitAddrs(rs)
	if err != nil {
		t.Fatal(err)
	}
	return v4dst, v6dst, v4src, v6src
}

// TestFilterManyAddresses checks long exact programs (the unconditional jumps to the
// IPv6 section must reach past 255 instructions), the exact length at the threshold,
// duplicates, the kernel's limit and invalid input.
func TestFilterManyAddresses(t *testing.T) {
	// The longest exact program: every VIP passes, every other address not.
	f := Filter{NATRealServers: []netip.Addr{rlRS}, MACs: [][6]byte{rlDirMAC}, ARP: true, NDP: true, VRRP: true}
	for i := 0; f.exactLen(splitAddrsT(t, append(f.VIPs, rlVIP6), f.NATRealServers)) <= ExactMaxInstructions; i++ {
		f.VIPs = append(f.VIPs, netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}))
		if i%8 == 7 {
			f.VIPs = append(f.VIPs, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}))
		}
	}
	prog, err := f.Program()
	if err != nil {
		t.Fatal(err)
	}
	if !f.Exact() || len(prog) > ExactMaxInstructions || len(prog) < ExactMaxInstructions-20 {
		t.Fatalf("program of %d instructions (exact %v) for %d addresses, want an exact one of about %d", len(prog), f.Exact(), len(f.VIPs), ExactMaxInstructions)
	}
	for _, a := range f.VIPs {
		var b []byte
		if a.Is4() {
			b = rlEth(rlMAC(9), rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, a, 17, 1, 0, nil))
		} else {
			b = rlEth(rlMAC(9), rlGenMAC, -1, header.EtherTypeIPv6, rlIPv6(rlGen6, a, 17, nil))
		}
		if !rlRunFilter(t, &f, b) {
			t.Errorf("%v dropped", a)
		}
	}
	// One more address makes it coarse.
	g := f
	g.VIPs = append(slices.Clone(f.VIPs), rlVIP6)
	if g.Exact() {
		t.Errorf("%d addresses still exact", len(g.VIPs))
	}
	// Duplicates are tested once.
	dup := Filter{VIPs: []netip.Addr{rlVIP, rlVIP, netip.AddrFrom16(rlVIP.As16())}}
	single := Filter{VIPs: []netip.Addr{rlVIP}}
	p1, _ := dup.Program()
	p2, _ := single.Program()
	if len(p1) != len(p2) {
		t.Errorf("duplicate addresses compiled to %d instructions, want %d", len(p1), len(p2))
	}
	// Only MACs make a program too long: 5 instructions each.
	many := rlCoarse(&f)
	for i := range 1000 {
		many.MACs = append(many.MACs, [6]byte{2, 1, 0, 0, byte(i >> 8), byte(i)})
	}
	if _, err := many.Program(); !errors.Is(err, ErrFilterTooLong) {
		t.Errorf("Program with %d MACs: %v, want ErrFilterTooLong", len(many.MACs), err)
	}
	if _, err := (&Filter{VIPs: []netip.Addr{{}}}).Program(); err == nil {
		t.Error("Program accepted an invalid address")
	}
	if MaxVIPs() != 0 {
		t.Errorf("MaxVIPs() = %d, want 0 (no limit)", MaxVIPs())
	}
}

// rlFilterRef is the filter written the slow, obvious way, with the interpreter's rule
// that a load past the end of the frame rejects it at once.
func rlFilterRef(f *Filter, b []byte) bool {
	if !f.Exact() {
		return rlCoarseRef(f, b)
	}
	return rlExactRef(f, b)
}

// rlCoarseRef is the coarse filter (see Filter), with the loads' bounds as the
// program makes them.
func rlCoarseRef(f *Filter, b []byte) bool {
	if len(b) < 1 {
		return false
	}
	if b[0]&1 != 0 {
		return rlExactRef(&Filter{ARP: f.ARP, NDP: f.NDP, VRRP: f.VRRP}, b)
	}
	ours := true
	for _, m := range f.MACs {
		if m[0]&1 != 0 {
			continue // never a director's own
		}
		ours = false
		if len(b) < 4 {
			return false
		}
		if [4]byte(b[:4]) != [4]byte(m[:4]) {
			continue
		}
		if len(b) < 6 {
			return false
		}
		if [2]byte(b[4:6]) == [2]byte(m[4:]) {
			ours = true
			break
		}
	}
	if !ours || len(b) < 14 {
		return false
	}
	et := binary.BigEndian.Uint16(b[12:])
	if et == header.EtherTypeVLAN {
		if len(b) < 18 {
			return false
		}
		et = binary.BigEndian.Uint16(b[16:])
	}
	return et == header.EtherTypeIPv4 || et == header.EtherTypeIPv6 || (f.ARP && et == header.EtherTypeARP)
}

func rlExactRef(f *Filter, b []byte) bool {
	if len(b) < 14 {
		return false
	}
	et, l3 := binary.BigEndian.Uint16(b[12:]), 14
	if et == header.EtherTypeVLAN {
		if len(b) < 18 {
			return false
		}
		et, l3 = binary.BigEndian.Uint16(b[16:]), 18
	}
	ip := b[l3:]
	var v4dst, v4src, v6dst, v6src []netip.Addr
	for _, a := range f.VIPs {
		if a = a.Unmap(); a.Is4() {
			v4dst = append(v4dst, a)
		} else {
			v6dst = append(v6dst, a)
		}
	}
	for _, a := range f.NATRealServers {
		if a = a.Unmap(); a.Is4() {
			v4src = append(v4src, a)
		} else {
			v6src = append(v6src, a)
		}
	}
	// match6 compares word by word, as the program does: a short frame is rejected
	// by the first load that does not fit.
	match6 := func(off int, list []netip.Addr) (hit, short bool) {
		for _, a := range list {
			w := a.As16()
			for i := 0; i < 16; i += 4 {
				if len(ip) < off+i+4 {
					return false, true
				}
				if binary.BigEndian.Uint32(ip[off+i:]) != binary.BigEndian.Uint32(w[i:]) {
					break
				}
				if i == 12 {
					return true, false
				}
			}
		}
		return false, false
	}
	switch et {
	case header.EtherTypeARP:
		return f.ARP
	case header.EtherTypeIPv4:
		for _, c := range []struct {
			off  int
			list []netip.Addr
		}{{16, v4dst}, {12, v4src}} {
			if len(c.list) == 0 {
				continue
			}
			if len(ip) < c.off+4 {
				return false
			}
			for _, a := range c.list {
				if netip.AddrFrom4([4]byte(ip[c.off:])) == a {
					return true
				}
			}
		}
		if f.VRRP {
			return len(ip) >= 10 && ip[9] == 112
		}
	case header.EtherTypeIPv6:
		for _, c := range []struct {
			off  int
			list []netip.Addr
		}{{24, v6dst}, {8, v6src}} {
			hit, short := match6(c.off, c.list)
			if hit || short {
				return hit
			}
		}
		if !f.VRRP && !f.NDP {
			return false
		}
		if len(ip) < 7 {
			return false
		}
		if f.VRRP && ip[6] == 112 {
			return true
		}
		if f.NDP && ip[6] == 58 {
			return len(ip) >= 41 && ip[40] >= 133 && ip[40] <= 137
		}
	}
	return false
}

// FuzzFilter checks the compiled program against rlFilterRef on arbitrary frames and
// flag combinations (a differential test; the interpreter stands in for the kernel).
func FuzzFilter(f *testing.F) {
	pass, drop := rlFilterCases()
	for _, b := range append(pass, drop...) {
		f.Add(b, uint8(7))
		f.Add(rlUntag(b), uint8(5))
		f.Add(b, uint8(7|32|64))
		f.Add(rlUntag(b), uint8(64))
	}
	f.Fuzz(func(t *testing.T, frame []byte, flags uint8) {
		filt := Filter{
			VIPs:           []netip.Addr{rlVIP, rlVIP6, netip.MustParseAddr("198.18.0.101")},
			NATRealServers: []netip.Addr{rlRS, netip.MustParseAddr("2001:2::5")},
			ARP:            flags&1 != 0, NDP: flags&2 != 0, VRRP: flags&4 != 0,
		}
		if flags&8 != 0 {
			filt.VIPs = nil
		}
		if flags&16 != 0 {
			filt.NATRealServers = nil
		}
		if flags&32 != 0 {
			filt.MACs = [][6]byte{rlDirMAC, {3, 0, 0, 0, 0, 1}, rlMAC(0x09)}
		}
		if flags&64 != 0 {
			filt = *rlCoarse(&filt)
		}
		if got, want := rlRunFilter(t, &filt, frame), rlFilterRef(&filt, frame); got != want {
			t.Fatalf("filter %+v: program %v, reference %v on % x", filt, got, want, frame)
		}
	})
}

// TestMulticastMACs: VRRP's groups and one solicited-node group per IPv6 VIP (the
// last 24 bits), each once; past MaxSolicitedGroups the zero address (all multicast)
// instead of the solicited-node groups.
func TestMulticastMACs(t *testing.T) {
	vrrp := [][6]byte{{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12}, {0x33, 0x33, 0x00, 0x00, 0x00, 0x12}}
	v6 := func(n int) []netip.Addr {
		var l []netip.Addr
		for i := range n {
			l = append(l, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}))
		}
		return l
	}
	few := Filter{VIPs: append(v6(3), rlVIP, netip.MustParseAddr("2001:db8:1::1")), NDP: true, VRRP: true}
	want := append(slices.Clone(vrrp), [6]byte{0x33, 0x33, 0xff, 0, 0, 0}, [6]byte{0x33, 0x33, 0xff, 0, 0, 1}, [6]byte{0x33, 0x33, 0xff, 0, 0, 2})
	if got := few.MulticastMACs(); !slices.Equal(got, want) {
		t.Errorf("MulticastMACs = %x, want %x", got, want)
	}
	full := Filter{VIPs: v6(MaxSolicitedGroups), NDP: true, VRRP: true}
	if got := full.MulticastMACs(); len(got) != 2+MaxSolicitedGroups || slices.Contains(got, [6]byte{}) {
		t.Errorf("%d VIPs: %d groups (all multicast %v), want %d listed", MaxSolicitedGroups, len(got), slices.Contains(got, [6]byte{}), 2+MaxSolicitedGroups)
	}
	many := Filter{VIPs: v6(50000), NDP: true, VRRP: true}
	if got, want := many.MulticastMACs(), append(slices.Clone(vrrp), [6]byte{}); !slices.Equal(got, want) {
		t.Errorf("50000 VIPs: %x, want VRRP's groups and all multicast", got)
	}
	many.VRRP = false
	if got := many.MulticastMACs(); !slices.Equal(got, [][6]byte{{}}) {
		t.Errorf("50000 VIPs without VRRP: %x, want all multicast only", got)
	}
}
