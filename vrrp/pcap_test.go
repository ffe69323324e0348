package vrrp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// wantAdvert is what one captured VRRP frame must decode to. The values were read off
// the bytes (tshark-style hex dumps of testdata/*.pcap) and docs/vrrp.md, not produced by
// the decoder.
type wantAdvert struct {
	frame     int
	src, dst  string
	ipID      uint16 // IPv4 only
	flowLabel uint32 // IPv6 only
	version   Version
	prio      uint8
	interval  time.Duration
	auth      AuthType
	pass      string
	vip       string
	checksum  uint16 // bytes 6–7 of the VRRP message as captured
}

const (
	ka1      = "198.18.0.1"
	ka2      = "198.18.0.2"
	ka1LL    = "fe80::18af:6bff:fe48:c66a"
	vip4     = "198.18.0.100"
	vip6     = "2001:db8:18::100"
	mcast4   = "224.0.0.18"
	mcast6   = "ff02::12"
	labVRID  = 51
	labPass  = "s3cr3t12"
	ka1Flow  = 0xd9f12 // the kernel's flow label for ka1's IPv6 socket
	csumV2   = 0x4607  // v2 prio 150
	csumV2p0 = 0xdc07  // v2 prio 0 (v2 has no pseudo-header: same for both senders)
	csumV2ka = 0x7807  // v2 prio 100
)

// captures describes every frame of the four lab captures (docs/vrrp.md §3): which frames
// are VRRP and what each carries. Frames not listed are ARP (gratuitous ARP and the
// unicast peer's ARP exchange).
var captures = []struct {
	file     string
	format   string
	frames   int
	adverts  []wantAdvert
	srcMAC   string // Ethernet source of every VRRP frame from ka1
	checkMAC bool
}{
	{
		file: "vrrp-v2-adverts.pcap", format: "pcapng", frames: 42,
		adverts: func() []wantAdvert {
			v2 := func(frame int, src string, id uint16, prio uint8, sum uint16) wantAdvert {
				return wantAdvert{frame: frame, src: src, dst: mcast4, ipID: id, version: Version2, prio: prio,
					interval: time.Second, auth: AuthPassword, pass: labPass, vip: vip4, checksum: sum}
			}
			var w []wantAdvert
			// ka1 (prio 150) is master, IP IDs 1–12, then shuts down (ID 13, prio 0).
			for i := 0; i < 12; i++ {
				w = append(w, v2(i, ka1, uint16(i+1), 150, csumV2))
			}
			w = append(w, v2(12, ka1, 13, 0, csumV2p0))
			// ka2 (prio 100) takes over after Skew_Time: IDs 1–9.
			for i := 13; i < 22; i++ {
				w = append(w, v2(i, ka2, uint16(i-12), 100, csumV2ka))
			}
			// ka1 restarts (IDs from 1 again) and preempts ka2.
			for i := 22; i < 34; i++ {
				w = append(w, v2(i, ka1, uint16(i-21), 150, csumV2))
			}
			// ka1 killed: ka2 takes over after Master_Down_Interval (IDs 10–16), then
			// shuts down (ID 17, prio 0).
			for i := 34; i < 41; i++ {
				w = append(w, v2(i, ka2, uint16(i-24), 100, csumV2ka))
			}
			return append(w, v2(41, ka2, 17, 0, csumV2p0))
		}(),
	},
	{
		file: "vrrp-v3-adverts.pcap", format: "pcapng", frames: 10,
		adverts: func() []wantAdvert {
			var w []wantAdvert
			for i := 0; i < 10; i += 2 {
				prio, sum4, sum6 := uint8(150), uint16(0xcb4d), uint16(0xc215)
				if i == 8 {
					prio, sum4, sum6 = 0, 0x614e, 0x5816
				}
				w = append(w,
					wantAdvert{frame: i, src: ka1, dst: mcast4, ipID: uint16(i/2 + 1), version: Version3, prio: prio,
						interval: time.Second, vip: vip4, checksum: sum4},
					wantAdvert{frame: i + 1, src: ka1LL, dst: mcast6, flowLabel: ka1Flow, version: Version3, prio: prio,
						interval: time.Second, vip: vip6, checksum: sum6})
			}
			return w
		}(),
		srcMAC: "1a:af:6b:48:c6:6a", checkMAC: true,
	},
	{
		// Unicast: the pseudo-header carries the peer, so the checksum differs from
		// the multicast 0xcb4d. Frames 0–1 are ARP for the peer, 3–7 the 5 GARPs sent
		// right after the first advert.
		file: "vrrp-v3-unicast.pcap", format: "pcap", frames: 11,
		adverts: []wantAdvert{
			{frame: 2, src: ka1, dst: ka2, ipID: 1, version: Version3, prio: 150, interval: time.Second, vip: vip4, checksum: 0xe54b},
			{frame: 8, src: ka1, dst: ka2, ipID: 2, version: Version3, prio: 150, interval: time.Second, vip: vip4, checksum: 0xe54b},
			{frame: 9, src: ka1, dst: ka2, ipID: 3, version: Version3, prio: 150, interval: time.Second, vip: vip4, checksum: 0xe54b},
			{frame: 10, src: ka1, dst: ka2, ipID: 4, version: Version3, prio: 0, interval: time.Second, vip: vip4, checksum: 0x7b4c},
		},
		srcMAC: "1a:af:6b:48:c6:6a", checkMAC: true,
	},
	{
		// use_vmac: same bytes as multicast v3, sourced from 00:00:5e:00:01:33.
		file: "vrrp-v3-vmac.pcap", format: "pcap", frames: 9,
		adverts: []wantAdvert{
			{frame: 0, src: ka1, dst: mcast4, ipID: 1, version: Version3, prio: 150, interval: time.Second, vip: vip4, checksum: 0xcb4d},
			{frame: 6, src: ka1, dst: mcast4, ipID: 2, version: Version3, prio: 150, interval: time.Second, vip: vip4, checksum: 0xcb4d},
			{frame: 7, src: ka1, dst: mcast4, ipID: 3, version: Version3, prio: 150, interval: time.Second, vip: vip4, checksum: 0xcb4d},
			{frame: 8, src: ka1, dst: mcast4, ipID: 4, version: Version3, prio: 0, interval: time.Second, vip: vip4, checksum: 0x614e},
		},
		srcMAC: "00:00:5e:00:01:33", checkMAC: true,
	},
}

func (w wantAdvert) packet() Packet {
	p := Packet{
		Src: mustAddr(w.src), Dst: mustAddr(w.dst), HopLimit: 255, TOS: 0xc0,
		ID: w.ipID, FlowLabel: w.flowLabel,
		Advert: Advert{Version: w.version, VRID: labVRID, Priority: w.prio, Interval: w.interval,
			AuthType: w.auth, Addrs: []netip.Addr{mustAddr(w.vip)}},
	}
	if w.pass != "" {
		p.Advert.AuthData = password(w.pass)
	}
	return p
}

func TestCaptureFormats(t *testing.T) {
	for _, c := range captures {
		frames, format := readCapture(t, c.file)
		if format != c.format || len(frames) != c.frames {
			t.Errorf("%s: %s with %d frames, want %s with %d", c.file, format, len(frames), c.format, c.frames)
		}
		for _, f := range frames {
			if f.linkType != layers.LinkTypeEthernet {
				t.Errorf("%s frame %d: link type %v, want Ethernet (1)", c.file, f.index, f.linkType)
			}
		}
	}
}

func TestCaptureAdverts(t *testing.T) {
	for _, c := range captures {
		t.Run(c.file, func(t *testing.T) {
			frames, _ := readCapture(t, c.file)
			byFrame := map[int]wantAdvert{}
			for _, w := range c.adverts {
				byFrame[w.frame] = w
			}
			var p Packet
			for _, f := range frames {
				ip := ipPacket(t, f)
				w, ok := byFrame[f.index]
				if (ip != nil) != ok {
					t.Fatalf("frame %d: VRRP=%v, want %v", f.index, ip != nil, ok)
				}
				if !ok {
					continue
				}
				if err := p.UnmarshalBinary(ip); err != nil {
					t.Fatalf("frame %d: %v", f.index, err)
				}
				want := w.packet()
				if diff := diffPacket(&want, &p); diff != "" {
					t.Errorf("frame %d: decoded (-want +got):\n%s", f.index, diff)
				}

				// The checksum on the wire is the one read off the capture, and both
				// the package and the reference recompute it.
				msg := ip[len(ip)-p.Advert.Len():]
				if got := binary.BigEndian.Uint16(msg[6:]); got != w.checksum {
					t.Errorf("frame %d: wire checksum %#04x, want %#04x", f.index, got, w.checksum)
				}
				if got := Checksum(msg, p.Src, p.Dst); got != w.checksum {
					t.Errorf("frame %d: Checksum %#04x, want %#04x", f.index, got, w.checksum)
				}
				if got := checksumRef(msg, p.Src, p.Dst); got != w.checksum {
					t.Errorf("frame %d: checksumRef %#04x, want %#04x", f.index, got, w.checksum)
				}
				if p.Src.Is4() {
					if got, want := ipv4HeaderChecksumRef(ip[:20]), binary.BigEndian.Uint16(ip[10:]); got != want {
						t.Errorf("frame %d: IPv4 header checksum %#04x, recomputed %#04x", f.index, want, got)
					}
				}

				// Byte-exact re-encoding, from the expected fields and from the decoded
				// packet.
				for _, q := range []*Packet{&want, &p} {
					enc, err := q.MarshalBinary()
					if err != nil {
						t.Fatalf("frame %d: %v", f.index, err)
					}
					if !bytes.Equal(enc, ip) {
						t.Errorf("frame %d: re-encoded\n got %x\nwant %x", f.index, enc, ip)
					}
				}

				if c.checkMAC {
					eth := gopacket.NewPacket(f.data, layers.LinkTypeEthernet, gopacket.Default).Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
					if eth.SrcMAC.String() != c.srcMAC {
						t.Errorf("frame %d: source MAC %v, want %s", f.index, eth.SrcMAC, c.srcMAC)
					}
				}
			}
		})
	}
}

// TestCaptureVMAC checks VirtualMAC against the use_vmac capture's source MAC.
func TestCaptureVMAC(t *testing.T) {
	frames, _ := readCapture(t, "vrrp-v3-vmac.pcap")
	mac := VirtualMAC(labVRID, false)
	if !bytes.Equal(frames[0].data[6:12], mac[:]) {
		t.Errorf("VirtualMAC(51) = % x, capture has % x", mac, frames[0].data[6:12])
	}
	if got, want := VirtualMAC(labVRID, true), [6]byte{0, 0, 0x5e, 0, 2, 0x33}; got != want {
		t.Errorf("VirtualMAC(51, IPv6) = % x, want % x", got, want)
	}
}

// TestCaptureGopacketV2 uses gopacket's own VRRPv2 layer as an independent decoder of
// every v2 advert.
func TestCaptureGopacketV2(t *testing.T) {
	frames, _ := readCapture(t, "vrrp-v2-adverts.pcap")
	var p Packet
	for _, f := range frames {
		pkt := gopacket.NewPacket(f.data, layers.LinkTypeEthernet, gopacket.Default)
		g, ok := pkt.Layer(layers.LayerTypeVRRP).(*layers.VRRPv2)
		if !ok {
			t.Fatalf("frame %d: gopacket found no VRRPv2 layer", f.index)
		}
		if err := p.UnmarshalBinary(ipPacket(t, f)); err != nil {
			t.Fatalf("frame %d: %v", f.index, err)
		}
		a := p.Advert
		if g.Version != uint8(a.Version) || g.VirtualRtrID != a.VRID || g.Priority != a.Priority ||
			int(g.CountIPAddr) != len(a.Addrs) || uint8(g.AuthType) != uint8(a.AuthType) ||
			time.Duration(g.AdverInt)*time.Second != a.Interval ||
			g.Checksum != Checksum(g.Contents, p.Src, p.Dst) {
			t.Errorf("frame %d: gopacket %+v, ours %+v", f.index, g, a)
		}
		for i, ip := range g.IPAddress {
			if a.Addrs[i] != netip.AddrFrom4([4]byte(ip.To4())) {
				t.Errorf("frame %d: address %d gopacket %v, ours %v", f.index, i, ip, a.Addrs[i])
			}
		}
	}
}

// TestGoldenVectors checks the hex vectors of docs/vrrp.md §1.3 (VRRP messages only).
func TestGoldenVectors(t *testing.T) {
	tests := []struct {
		name     string
		src, dst string
		hex      string
		want     Advert
	}{
		{"v2 prio150 PASS", ka1, mcast4, "21 33 96 01 01 01 46 07 c6 12 00 64 73 33 63 72 33 74 31 32",
			Advert{Version: Version2, VRID: 51, Priority: 150, Interval: time.Second, AuthType: AuthPassword, AuthData: password(labPass)}},
		{"v2 prio0", ka1, mcast4, "21 33 00 01 01 01 dc 07 c6 12 00 64 73 33 63 72 33 74 31 32",
			Advert{Version: Version2, VRID: 51, Priority: 0, Interval: time.Second, AuthType: AuthPassword, AuthData: password(labPass)}},
		{"v3/IPv4 prio150", ka1, mcast4, "31 33 96 01 00 64 cb 4d c6 12 00 64",
			Advert{Version: Version3, VRID: 51, Priority: 150, Interval: time.Second}},
		{"v3/IPv4 prio0", ka1, mcast4, "31 33 00 01 00 64 61 4e c6 12 00 64",
			Advert{Version: Version3, VRID: 51, Priority: 0, Interval: time.Second}},
		{"v3/IPv4 unicast", ka1, ka2, "31 33 96 01 00 64 e5 4b c6 12 00 64",
			Advert{Version: Version3, VRID: 51, Priority: 150, Interval: time.Second}},
		{"v3/IPv4 prio200 50cs", ka2, mcast4, "31 33 c8 01 00 32 99 7e c6 12 00 64",
			Advert{Version: Version3, VRID: 51, Priority: 200, Interval: 500 * time.Millisecond}},
		{"v3/IPv6", ka1LL, mcast6, "31 33 96 01 00 64 c2 15 20 01 0d b8 00 18 00 00 00 00 00 00 00 00 01 00",
			Advert{Version: Version3, VRID: 51, Priority: 150, Interval: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := hex.DecodeString(strings.ReplaceAll(tt.hex, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			src, dst := mustAddr(tt.src), mustAddr(tt.dst)
			want := tt.want
			want.Addrs = []netip.Addr{mustAddr(vip4)}
			if src.Is6() {
				want.Addrs = []netip.Addr{mustAddr(vip6)}
			}
			var got Advert
			if err := got.Decode(msg, src, dst); err != nil {
				t.Fatal(err)
			}
			if !advertEqual(&got, &want) {
				t.Errorf("Decode = %+v, want %+v", got, want)
			}
			enc, err := want.Append(nil, src, dst)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, msg) {
				t.Errorf("Append = % x, want % x", enc, msg)
			}
		})
	}
}

// TestReplayV2Capture replays ka1's adverts from the v2 capture into an Instance set
// up as ka2 (priority 100) and checks that it sends exactly ka2's adverts, byte for
// byte, within 5 ms of when keepalived sent them: the takeover Skew_Time after ka1's
// priority-0 advert, the periodic adverts, the silent step down when ka1 comes back
// with priority 150, the takeover Master_Down_Interval after ka1's last advert, and the
// priority-0 advert at shutdown.
func TestReplayV2Capture(t *testing.T) {
	frames, _ := readCapture(t, "vrrp-v2-adverts.pcap")
	in, err := NewInstance(Config{
		VRID: labVRID, Version: Version2, Priority: 100, Interval: time.Second,
		Src: mustAddr(ka2), Addrs: []netip.Addr{mustAddr(vip4)},
		AuthType: AuthPassword, AuthData: password(labPass),
	})
	if err != nil {
		t.Fatal(err)
	}
	type sent struct {
		at   time.Time
		wire []byte
	}
	var got []sent
	var ipID uint16
	cfg := in.Config()
	collect := func(now time.Time, acts []Action) {
		for _, a := range acts {
			if a.Kind != ActionSendAdvert {
				continue
			}
			ipID++
			p := Packet{Src: cfg.Src, Dst: MulticastGroup(false), HopLimit: HopLimit, TOS: TOSNetworkControl,
				ID: ipID, Advert: cfg.Advert(a.Priority)}
			b, err := p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, sent{now, b})
		}
	}
	// fire delivers every timer due up to until.
	fire := func(until time.Time) {
		for d := in.NextDeadline(); !d.IsZero() && !d.After(until); d = in.NextDeadline() {
			collect(d, in.Step(d, Event{Kind: EventTimer}))
		}
	}

	collect(frames[0].at, in.Step(frames[0].at.Add(-time.Millisecond), Event{Kind: EventStart}))
	var want []sent
	var p Packet
	for _, f := range frames {
		ip := ipPacket(t, f)
		if err := p.UnmarshalBinary(ip); err != nil {
			t.Fatal(err)
		}
		if p.Src == mustAddr(ka2) {
			want = append(want, sent{f.at, ip})
			if p.Advert.Priority == PriorityStop {
				// keepalived was stopped here; stop ours at the same moment.
				fire(f.at)
				collect(f.at, in.Step(f.at, Event{Kind: EventShutdown}))
			}
			continue
		}
		fire(f.at)
		acts, err := in.Receive(f.at, &p)
		if err != nil {
			t.Fatalf("frame %d: %v", f.index, err)
		}
		collect(f.at, acts)
	}
	if len(got) != len(want) {
		t.Fatalf("sent %d adverts, keepalived sent %d", len(got), len(want))
	}
	for i := range want {
		if d := got[i].at.Sub(want[i].at); d < -5*time.Millisecond || d > 5*time.Millisecond {
			t.Errorf("advert %d sent at %v, keepalived at %v (off by %v)", i, got[i].at, want[i].at, d)
		}
		if !bytes.Equal(got[i].wire, want[i].wire) {
			t.Errorf("advert %d:\n got %x\nwant %x", i, got[i].wire, want[i].wire)
		}
	}
	if in.State() != StateInitialize {
		t.Errorf("final state %v, want INIT", in.State())
	}
}

func advertEqual(a, b *Advert) bool {
	return a.Version == b.Version && a.VRID == b.VRID && a.Priority == b.Priority &&
		a.Interval == b.Interval && a.AuthType == b.AuthType && a.AuthData == b.AuthData &&
		slices.Equal(a.Addrs, b.Addrs)
}

// diffPacket returns "" when the packets are equal, else a line per differing field.
func diffPacket(want, got *Packet) string {
	var b strings.Builder
	field := func(name string, w, g any) {
		if w != g {
			b.WriteString("- " + name + ": " + toString(w) + "\n+ " + name + ": " + toString(g) + "\n")
		}
	}
	field("Src", want.Src, got.Src)
	field("Dst", want.Dst, got.Dst)
	field("HopLimit", want.HopLimit, got.HopLimit)
	field("TOS", want.TOS, got.TOS)
	field("ID", want.ID, got.ID)
	field("FlowLabel", want.FlowLabel, got.FlowLabel)
	if !advertEqual(&want.Advert, &got.Advert) {
		field("Advert", want.Advert, got.Advert)
	}
	return b.String()
}
