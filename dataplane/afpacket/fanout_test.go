package afpacket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"golang.org/x/net/bpf"
)

// Steering test addresses: clients, VIPs and NAT real servers of both families.
var (
	stClient  = netip.MustParseAddr("198.19.0.7")
	stVIP     = netip.MustParseAddr("198.18.0.100")
	stRS      = netip.MustParseAddr("198.18.0.5")
	stRS2     = netip.MustParseAddr("198.18.0.6")
	stClient6 = netip.MustParseAddr("2001:db8:1::7")
	stVIP6    = netip.MustParseAddr("2001:db8::100")
	stRS6     = netip.MustParseAddr("2001:db8::5")
	stNATRS   = []netip.Addr{stRS, stRS2, stRS6}
)

// stPacket builds an IP packet (from the network header, as the fanout program sees
// it) with a transport header carrying the ports; ihl is the IPv4 header length in
// 32-bit words (5 without options).
func stPacket(src, dst netip.Addr, proto uint8, sport, dport uint16, ihl int) []byte {
	l4 := binary.BigEndian.AppendUint16(nil, sport)
	l4 = binary.BigEndian.AppendUint16(l4, dport)
	l4 = append(l4, make([]byte, 16)...)
	if src.Is6() {
		return rlIPv6(src, dst, proto, l4)
	}
	b := rlIPv4(src, dst, proto, 1, 0, nil)
	b[0] = 0x40 | byte(ihl)
	b = append(b, make([]byte, 4*ihl-20)...)
	return append(b, l4...)
}

func stRun(t testing.TB, prog []bpf.Instruction, pkt []byte) uint32 {
	t.Helper()
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	n, err := vm.Run(pkt)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(n)
}

// TestSteerFlowAndReply checks, in x/net/bpf's interpreter, that a request to a VIP
// and the NAT reply to it (rewritten source, the client as destination) get the same
// worker index, for IPv4 (with and without IP options) and IPv6, TCP, UDP and SCTP,
// whatever the group's size; and that clients spread over the workers.
func TestSteerFlowAndReply(t *testing.T) {
	prog, err := SteerProgram(stNATRS)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name               string
		client, vip, rs    netip.Addr
		proto              uint8
		ihl                int
		cport, vport, port uint16
	}{
		{"tcp4", stClient, stVIP, stRS, 6, 5, 40001, 80, 8080},
		{"udp4", stClient, stVIP, stRS2, 17, 5, 53001, 53, 53},
		{"sctp4", stClient, stVIP, stRS, 132, 5, 40002, 38412, 38412},
		{"tcp4 options", stClient, stVIP, stRS, 6, 7, 40003, 80, 80},
		{"tcp6", stClient6, stVIP6, stRS6, 6, 0, 40004, 443, 8443},
		{"udp6", stClient6, stVIP6, stRS6, 17, 0, 40005, 53, 53},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := stRun(t, prog, stPacket(tt.client, tt.vip, tt.proto, tt.cport, tt.vport, tt.ihl))
			reply := stRun(t, prog, stPacket(tt.rs, tt.client, tt.proto, tt.port, tt.cport, tt.ihl))
			if req != reply {
				t.Errorf("request → %#x, its NAT reply → %#x", req, reply)
			}
			// The kernel's plain flow hash differs for the two: so would a program
			// that ignored which side the client is on.
			other := stRun(t, prog, stPacket(tt.client, tt.vip, tt.proto, tt.cport+1, tt.vport, tt.ihl))
			if other == req {
				t.Errorf("two flows of the client (ports %d, %d) hash alike: %#x", tt.cport, tt.cport+1, req)
			}
		})
	}
	for _, n := range []uint32{2, 3, 4} {
		counts := make([]int, n)
		for i := range 1024 {
			c := netip.AddrFrom4([4]byte{198, 19, byte(i >> 6), byte(i)})
			counts[stRun(t, prog, stPacket(c, stVIP, 6, uint16(30000+i%64), 80, 5))%n]++
		}
		for w, c := range counts {
			if c < 1024/int(n)/2 {
				t.Errorf("%d workers: worker %d gets %d of 1024 flows: %v", n, w, c, counts)
			}
		}
	}
}

// TestSteerOthers: frames that are not IP go to the first worker, truncated ones do
// not stop the program, and fragments without ports hash on addresses only.
func TestSteerOthers(t *testing.T) {
	prog, err := SteerProgram(stNATRS)
	if err != nil {
		t.Fatal(err)
	}
	if got := stRun(t, prog, rlARP(rlGenMAC, rlGen, rlVIP)); got != 0 {
		t.Errorf("ARP → %d, want 0", got)
	}
	req := stPacket(stClient, stVIP, 17, 40000, 53, 5)
	reply := stPacket(stRS, stClient, 17, 53, 40000, 5)
	for _, b := range [][]byte{req, reply} {
		binary.BigEndian.PutUint16(b[6:], 185) // a non-first fragment
		b[10], b[11] = 0, 0
	}
	if a, b := stRun(t, prog, req), stRun(t, prog, reply); a != b || a != steerMixRef(binary.BigEndian.Uint32(stClient.AsSlice()), 0) {
		t.Errorf("fragments of a request and its reply → %#x, %#x, want both the hash of the client's address", a, b)
	}
	for _, b := range [][]byte{stPacket(stClient6, stVIP6, 6, 1, 2, 0), stPacket(stClient, stVIP, 6, 1, 2, 5), stPacket(stRS, stClient, 6, 1, 2, 5)} {
		for n := range len(b) {
			if got, want := stRun(t, prog, b[:n]), steerRef(b[:n], stNATRS); got != want {
				t.Errorf("% x truncated to %d: %#x, want %#x", b, n, got, want)
			}
		}
	}
}

// TestSteerLength: the program's length is its fixed part plus 2 per IPv4 and 9 per
// IPv6 NAT real server, within SteerMaxInstructions, else ErrSteerTooLong.
func TestSteerLength(t *testing.T) {
	for _, tt := range []struct{ v4, v6 int }{{0, 0}, {1, 0}, {0, 1}, {3, 2}, {(SteerMaxInstructions - steerFixedLen) / 2, 0}} {
		var rs []netip.Addr
		for i := range tt.v4 {
			rs = append(rs, netip.AddrFrom4([4]byte{198, 18, 2, byte(i)}), netip.AddrFrom4([4]byte{198, 18, 2, byte(i)}))
		}
		for i := range tt.v6 {
			rs = append(rs, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}))
		}
		prog, err := SteerProgram(rs)
		if err != nil {
			t.Fatalf("%d+%d addresses: %v", tt.v4, tt.v6, err)
		}
		if want := steerFixedLen + 2*tt.v4 + 9*tt.v6; len(prog) != want {
			t.Errorf("%d+%d addresses: %d instructions, want %d", tt.v4, tt.v6, len(prog), want)
		}
		if _, err := bpf.Assemble(prog); err != nil {
			t.Error(err)
		}
	}
	var rs []netip.Addr
	for i := range 60 {
		rs = append(rs, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}))
	}
	if _, err := SteerProgram(rs); !errors.Is(err, ErrSteerTooLong) {
		t.Errorf("60 IPv6 real servers: %v, want ErrSteerTooLong", err)
	}
}

// steerMixRef is the program's final hash of an address hash and a port.
func steerMixRef(addr, port uint32) uint32 {
	h := addr + port
	for _, k := range []uint32{steerMul1, steerMul2} {
		h *= k
		h ^= h >> 16
	}
	return h
}

// steerRef is the steering program written the slow, obvious way, with the
// interpreter's rule that a load past the end returns 0 at once.
func steerRef(b []byte, natRS []netip.Addr) uint32 {
	be32 := binary.BigEndian.Uint32
	hasPorts := func(p byte) bool { return p == 6 || p == 17 || p == 132 }
	if len(b) < 1 {
		return 0
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) < 16 {
			return 0
		}
		addr, portOff := be32(b[12:]), 0
		if slices.ContainsFunc(natRS, func(a netip.Addr) bool { return a.Unmap().Is4() && be32(a.Unmap().AsSlice()) == addr }) {
			if len(b) < 20 {
				return 0
			}
			addr, portOff = be32(b[16:]), 2
		}
		if binary.BigEndian.Uint16(b[6:])&0x1fff != 0 || !hasPorts(b[9]) {
			return steerMixRef(addr, 0)
		}
		at := int(b[0]&0xf)*4 + portOff
		if len(b) < at+2 {
			return 0
		}
		return steerMixRef(addr, uint32(binary.BigEndian.Uint16(b[at:])))
	case 6:
		off, portOff := 8, 0
		for _, a := range natRS {
			if a.Unmap().Is4() {
				continue
			}
			w := a.As16()
			match := true
			for i := 0; i < 16 && match; i += 4 {
				if len(b) < 8+i+4 {
					return 0
				}
				match = be32(b[8+i:]) == be32(w[i:])
			}
			if match {
				off, portOff = 24, 2
				break
			}
		}
		if len(b) < off+16 {
			return 0
		}
		h := be32(b[off:])
		for i := 4; i < 16; i += 4 {
			h = h*steerMul1 + be32(b[off+i:])
		}
		if !hasPorts(b[6]) {
			return steerMixRef(h, 0)
		}
		if len(b) < 40+portOff+2 {
			return 0
		}
		return steerMixRef(h, uint32(binary.BigEndian.Uint16(b[40+portOff:])))
	}
	return 0
}

// FuzzSteer checks the program against steerRef on arbitrary packets.
func FuzzSteer(f *testing.F) {
	for _, b := range [][]byte{
		stPacket(stClient, stVIP, 6, 40001, 80, 5),
		stPacket(stRS, stClient, 6, 80, 40001, 5),
		stPacket(stClient, stVIP, 17, 40001, 80, 15),
		stPacket(stClient6, stVIP6, 17, 40001, 80, 0),
		stPacket(stRS6, stClient6, 6, 80, 40001, 0),
		rlARP(rlGenMAC, rlGen, rlVIP),
	} {
		f.Add(b, false)
		f.Add(b, true)
	}
	progs := map[bool][]bpf.Instruction{}
	for _, none := range []bool{false, true} {
		rs := stNATRS
		if none {
			rs = nil
		}
		p, err := SteerProgram(rs)
		if err != nil {
			f.Fatal(err)
		}
		progs[none] = p
	}
	f.Fuzz(func(t *testing.T, pkt []byte, none bool) {
		rs := stNATRS
		if none {
			rs = nil
		}
		if got, want := stRun(t, progs[none], pkt), steerRef(pkt, rs); got != want {
			t.Fatalf("program %#x, reference %#x on % x", got, want, pkt)
		}
	})
}

func ExampleSteerProgram() {
	prog, _ := SteerProgram([]netip.Addr{netip.MustParseAddr("198.18.0.5")})
	fmt.Println(len(prog), "instructions")
	// Output: 83 instructions
}
