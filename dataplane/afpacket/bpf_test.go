package afpacket

import (
	"encoding/binary"
	"errors"
	"net/netip"
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
	return &Filter{VIPs: []netip.Addr{rlVIP, rlVIP6}, NATRealServers: []netip.Addr{rlRS}, ARP: true, NDP: true, VRRP: true}
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

// TestFilterManyAddresses checks long programs: the unconditional jumps to the IPv6
// section must reach past 255 instructions, every address must pass, and the kernel's
// limit is enforced.
func TestFilterManyAddresses(t *testing.T) {
	var f Filter
	for i := range 200 {
		f.VIPs = append(f.VIPs, netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}))
		f.VIPs = append(f.VIPs, netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 15: byte(i)}))
	}
	prog, err := f.Program()
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) < 2000 {
		t.Fatalf("program of %d instructions, expected a long one", len(prog))
	}
	for _, a := range []netip.Addr{f.VIPs[0], f.VIPs[1], f.VIPs[len(f.VIPs)-2], f.VIPs[len(f.VIPs)-1]} {
		var b []byte
		if a.Is4() {
			b = rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, a, 17, 1, 0, nil))
		} else {
			b = rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv6, rlIPv6(rlGen6, a, 17, nil))
		}
		if !rlRunFilter(t, &f, b) {
			t.Errorf("%v dropped", a)
		}
	}
	// Duplicates are tested once.
	dup := Filter{VIPs: []netip.Addr{rlVIP, rlVIP, netip.AddrFrom16(rlVIP.As16())}}
	single := Filter{VIPs: []netip.Addr{rlVIP}}
	p1, _ := dup.Program()
	p2, _ := single.Program()
	if len(p1) != len(p2) {
		t.Errorf("duplicate addresses compiled to %d instructions, want %d", len(p1), len(p2))
	}
	for i := range 300 {
		f.NATRealServers = append(f.NATRealServers, netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 1, 14: byte(i >> 8), 15: byte(i)}))
	}
	if _, err := f.Program(); !errors.Is(err, ErrFilterTooLong) {
		t.Errorf("Program of %d addresses: %v, want ErrFilterTooLong", len(f.VIPs)+len(f.NATRealServers), err)
	}
	if _, err := (&Filter{VIPs: []netip.Addr{{}}}).Program(); err == nil {
		t.Error("Program accepted an invalid address")
	}
}

// rlFilterRef is the filter written the slow, obvious way, with the interpreter's rule
// that a load past the end of the frame rejects it at once.
func rlFilterRef(f *Filter, b []byte) bool {
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
		if got, want := rlRunFilter(t, &filt, frame), rlFilterRef(&filt, frame); got != want {
			t.Fatalf("filter %+v: program %v, reference %v on % x", filt, got, want, frame)
		}
	})
}
