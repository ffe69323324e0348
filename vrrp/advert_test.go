package vrrp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// addrs4 and addrs6 build VIP lists in documentation/benchmark ranges.
func addrs4(n int) []netip.Addr {
	var a []netip.Addr
	for i := range n {
		a = append(a, netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}))
	}
	return a
}

func addrs6(n int) []netip.Addr {
	var a []netip.Addr
	for i := range n {
		a = append(a, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)}))
	}
	return a
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		src, dst string
		a        Advert
		wantLen  int
	}{
		{"v2 multicast no auth", ka1, mcast4,
			Advert{Version: Version2, VRID: 1, Priority: 100, Interval: time.Second, Addrs: addrs4(1)}, 20},
		{"v2 PASS 3 VIPs", ka1, mcast4,
			Advert{Version: Version2, VRID: 255, Priority: 254, Interval: 255 * time.Second, AuthType: AuthPassword,
				AuthData: password("12345678"), Addrs: addrs4(3)}, 28},
		{"v2 unicast owner", ka1, ka2,
			Advert{Version: Version2, VRID: 7, Priority: 255, Interval: 3 * time.Second, Addrs: addrs4(2)}, 24},
		{"v2 no VIPs", ka1, mcast4,
			Advert{Version: Version2, VRID: 9, Priority: 1, Interval: time.Second}, 16},
		{"v2 255 VIPs", ka1, mcast4,
			Advert{Version: Version2, VRID: 9, Priority: 1, Interval: time.Second, Addrs: addrs4(255)}, 16 + 4*255},
		{"v3 IPv4 multicast", ka1, mcast4,
			Advert{Version: Version3, VRID: 51, Priority: 150, Interval: time.Second, Addrs: addrs4(1)}, 12},
		{"v3 IPv4 unicast 10ms", ka1, ka2,
			Advert{Version: Version3, VRID: 51, Priority: 0, Interval: 10 * time.Millisecond, Addrs: addrs4(4)}, 24},
		{"v3 IPv4 max interval", ka1, mcast4,
			Advert{Version: Version3, VRID: 51, Priority: 100, Interval: 40950 * time.Millisecond, Addrs: addrs4(1)}, 12},
		{"v3 IPv6 multicast", ka1LL, mcast6,
			Advert{Version: Version3, VRID: 51, Priority: 150, Interval: time.Second,
				Addrs: append([]netip.Addr{mustAddr("fe80::1")}, addrs6(2)...)}, 56},
		{"v3 IPv6 unicast", ka1LL, "fe80::2",
			Advert{Version: Version3, VRID: 1, Priority: 255, Interval: 100 * time.Millisecond, Addrs: addrs6(1)}, 24},
		{"v3 IPv6 no VIPs", ka1LL, mcast6,
			Advert{Version: Version3, VRID: 1, Priority: 100, Interval: time.Second}, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, dst := mustAddr(tt.src), mustAddr(tt.dst)
			if got := tt.a.Len(); got != tt.wantLen {
				t.Errorf("Len = %d, want %d", got, tt.wantLen)
			}
			prefix := []byte{0xde, 0xad}
			msg, err := tt.a.Append(bytes.Clone(prefix), src, dst)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(msg, prefix) {
				t.Fatal("Append overwrote the buffer's prefix")
			}
			msg = msg[len(prefix):]
			if len(msg) != tt.wantLen {
				t.Errorf("encoded %d bytes, want %d", len(msg), tt.wantLen)
			}
			if got, want := binary.BigEndian.Uint16(msg[6:]), checksumRef(msg, src, dst); got != want {
				t.Errorf("checksum %#04x, reference %#04x", got, want)
			}
			var got Advert
			if err := got.Decode(msg, src, dst); err != nil {
				t.Fatal(err)
			}
			if !advertEqual(&got, &tt.a) {
				t.Errorf("round trip: got %+v, want %+v", got, tt.a)
			}

			// The same advert inside its IP packet.
			p := Packet{Src: src, Dst: dst, HopLimit: HopLimit, TOS: TOSNetworkControl, ID: 0x1234, Advert: tt.a}
			if src.Is6() {
				p.ID, p.FlowLabel = 0, 0xfffff
			}
			wire, err := p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var q Packet
			if err := q.UnmarshalBinary(wire); err != nil {
				t.Fatal(err)
			}
			if d := diffPacket(&p, &q); d != "" {
				t.Errorf("packet round trip (-want +got):\n%s", d)
			}
			if !bytes.Equal(wire[len(wire)-len(msg):], msg) {
				t.Error("packet payload differs from Advert.Append")
			}
			if src.Is4() && ipv4HeaderChecksumRef(wire[:20]) != binary.BigEndian.Uint16(wire[10:]) {
				t.Error("bad IPv4 header checksum")
			}
		})
	}
}

// TestChecksumUsesRealDestination: in v3 the pseudo-header carries the real
// destination, so unicast and multicast checksums differ; in v2 they do not.
func TestChecksumUsesRealDestination(t *testing.T) {
	src := mustAddr(ka1)
	v3 := Advert{Version: Version3, VRID: 51, Priority: 150, Interval: time.Second, Addrs: addrs4(1)}
	m, _ := v3.Append(nil, src, mustAddr(mcast4))
	u, _ := v3.Append(nil, src, mustAddr(ka2))
	if bytes.Equal(m, u) {
		t.Error("v3 unicast and multicast adverts are identical")
	}
	var a Advert
	if err := a.Decode(u, src, mustAddr(mcast4)); err != ErrChecksum {
		t.Errorf("unicast advert checked against the multicast pseudo-header: %v, want ErrChecksum", err)
	}
	v2 := Advert{Version: Version2, VRID: 51, Priority: 150, Interval: time.Second, Addrs: addrs4(1)}
	m, _ = v2.Append(nil, src, mustAddr(mcast4))
	u, _ = v2.Append(nil, src, mustAddr(ka2))
	if !bytes.Equal(m, u) {
		t.Error("v2 checksum depends on the destination")
	}
}

// TestChecksumDifferential compares Checksum with checksumRef on random messages of
// every length and family.
func TestChecksumDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		msg := make([]byte, 8+r.IntN(64))
		for j := range msg {
			msg[j] = byte(r.Uint32())
		}
		msg[0] = byte(2+i%2)<<4 | msg[0]&0x0f
		var src, dst netip.Addr
		if i%3 == 0 {
			src, dst = netip.AddrFrom16([16]byte(randBytes(r, 16))), netip.AddrFrom16([16]byte(randBytes(r, 16)))
		} else {
			src, dst = netip.AddrFrom4([4]byte(randBytes(r, 4))), netip.AddrFrom4([4]byte(randBytes(r, 4)))
		}
		if got, want := Checksum(msg, src, dst), checksumRef(msg, src, dst); got != want {
			t.Fatalf("Checksum(% x, %v, %v) = %#04x, reference %#04x", msg, src, dst, got, want)
		}
	}
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestChecksumNegativeZero: a message whose checksum field holds 0xffff where the
// computed value is 0x0000 still verifies, as keepalived's in_csum accepts it.
func TestChecksumNegativeZero(t *testing.T) {
	src, dst := mustAddr(ka1), mustAddr(mcast4)
	// Search for an advert whose checksum comes out as 0x0000.
	for prio := range 256 {
		for vrid := 1; vrid < 256; vrid++ {
			a := Advert{Version: Version2, VRID: uint8(vrid), Priority: uint8(prio), Interval: time.Second, Addrs: addrs4(1)}
			msg, _ := a.Append(nil, src, dst)
			if binary.BigEndian.Uint16(msg[6:]) != 0 {
				continue
			}
			msg[6], msg[7] = 0xff, 0xff
			var got Advert
			if err := got.Decode(msg, src, dst); err != nil {
				t.Fatalf("0xffff for 0x0000: %v", err)
			}
			return
		}
	}
	t.Skip("no advert with checksum 0 in the search space")
}

func TestAppendErrors(t *testing.T) {
	src, dst := mustAddr(ka1), mustAddr(mcast4)
	src6, dst6 := mustAddr(ka1LL), mustAddr(mcast6)
	tests := []struct {
		name     string
		a        Advert
		src, dst netip.Addr
	}{
		{"zero advert", Advert{}, src, dst},
		{"version 4", Advert{Version: 4, Interval: time.Second}, src, dst},
		{"v2 over IPv6", Advert{Version: Version2, Interval: time.Second}, src6, dst6},
		{"v2 fractional interval", Advert{Version: Version2, Interval: 1500 * time.Millisecond}, src, dst},
		{"v2 interval too long", Advert{Version: Version2, Interval: 256 * time.Second}, src, dst},
		{"v3 interval not centiseconds", Advert{Version: Version3, Interval: 15 * time.Millisecond}, src, dst},
		{"v3 interval too long", Advert{Version: Version3, Interval: 40960 * time.Millisecond}, src, dst},
		{"negative interval", Advert{Version: Version3, Interval: -time.Second}, src, dst},
		{"v3 with auth", Advert{Version: Version3, Interval: time.Second, AuthType: AuthPassword}, src, dst},
		{"v3 with auth data", Advert{Version: Version3, Interval: time.Second, AuthData: password("x")}, src, dst},
		{"too many VIPs", Advert{Version: Version3, Interval: time.Second, Addrs: addrs4(256)}, src, dst},
		{"IPv6 VIP in IPv4 advert", Advert{Version: Version3, Interval: time.Second, Addrs: addrs6(1)}, src, dst},
		{"IPv4 VIP in IPv6 advert", Advert{Version: Version3, Interval: time.Second, Addrs: addrs4(1)}, src6, dst6},
		{"invalid VIP", Advert{Version: Version3, Interval: time.Second, Addrs: []netip.Addr{{}}}, src, dst},
		{"mixed src/dst families", Advert{Version: Version3, Interval: time.Second}, src, dst6},
		{"no source", Advert{Version: Version3, Interval: time.Second}, netip.Addr{}, dst},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.a.Append([]byte{1}, tt.src, tt.dst)
			if !errors.Is(err, ErrInvalidAdvert) {
				t.Errorf("err = %v, want ErrInvalidAdvert", err)
			}
			if len(b) != 1 {
				t.Errorf("buffer grew to %d bytes on error", len(b))
			}
			p := Packet{Src: tt.src, Dst: tt.dst, HopLimit: HopLimit, Advert: tt.a}
			if _, err := p.MarshalBinary(); !errors.Is(err, ErrInvalidAdvert) {
				t.Errorf("MarshalBinary err = %v, want ErrInvalidAdvert", err)
			}
		})
	}
	p := Packet{Src: src6, Dst: dst6, FlowLabel: 1 << 20, Advert: Advert{Version: Version3, Interval: time.Second}}
	if _, err := p.MarshalBinary(); !errors.Is(err, ErrInvalidAdvert) {
		t.Errorf("21-bit flow label: err = %v, want ErrInvalidAdvert", err)
	}
}

func TestReasonStrings(t *testing.T) {
	seen := map[string]Reason{}
	for r := Reason(1); r < NumReasons; r++ {
		s := r.String()
		if s == "unknown reason" || s == "" {
			t.Errorf("Reason(%d) has no name", r)
		}
		if prev, dup := seen[s]; dup {
			t.Errorf("Reasons %d and %d share the name %q", prev, r, s)
		}
		seen[s] = r
		if r.Error() != "vrrp: "+s {
			t.Errorf("Reason(%d).Error() = %q", r, r.Error())
		}
	}
	if Reason(0).String() != "unknown reason" || NumReasons.String() != "unknown reason" {
		t.Error("out-of-range Reasons must not have a name")
	}
}

// TestZeroAllocDecode: decoding into a reused Packet, checking it and stepping an
// instance with it allocate nothing.
func TestZeroAllocDecode(t *testing.T) {
	for _, w := range []wantAdvert{captures[0].adverts[0], captures[1].adverts[1]} {
		p := w.packet()
		wire, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		cfg := Config{VRID: labVRID, Version: w.version, Priority: 100, Interval: time.Second,
			Src: mustAddr(w.src), Addrs: p.Advert.Addrs, AuthType: w.auth, AuthData: p.Advert.AuthData}
		in, err := NewInstance(cfg)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Unix(0, 0)
		in.Step(now, Event{Kind: EventStart})
		var q Packet
		allocs := testing.AllocsPerRun(100, func() {
			if err := q.UnmarshalBinary(wire); err != nil {
				t.Fatal(err)
			}
			if err := cfg.Check(&q); err != nil {
				t.Fatal(err)
			}
			now = now.Add(time.Second)
			if _, err := in.Receive(now, &q); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per decode+check+step, want 0", w.src, allocs)
		}
		// A drop returns a Reason as the error without allocating either.
		wire[len(wire)-1] ^= 1
		allocs = testing.AllocsPerRun(100, func() {
			if err := q.UnmarshalBinary(wire); err != ErrChecksum {
				t.Fatalf("err = %v, want ErrChecksum", err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per rejected decode, want 0", w.src, allocs)
		}
	}
}

func TestMulticastGroup(t *testing.T) {
	if got := MulticastGroup(false); got != mustAddr(mcast4) {
		t.Errorf("IPv4 group %v", got)
	}
	if got := MulticastGroup(true); got != mustAddr(mcast6) {
		t.Errorf("IPv6 group %v", got)
	}
}
