package vrrp

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// Base packets and configurations that accept each other; every case changes one
// thing.
func v2Packet() Packet {
	return Packet{Src: mustAddr(ka1), Dst: mustAddr(mcast4), HopLimit: HopLimit, TOS: TOSNetworkControl, ID: 1,
		Advert: Advert{Version: Version2, VRID: labVRID, Priority: 150, Interval: time.Second,
			AuthType: AuthPassword, AuthData: password(labPass), Addrs: []netip.Addr{mustAddr(vip4)}}}
}

func v2Config() Config {
	return Config{VRID: labVRID, Version: Version2, Priority: 100, Interval: time.Second, Src: mustAddr(ka2),
		Addrs: []netip.Addr{mustAddr(vip4)}, AuthType: AuthPassword, AuthData: password(labPass)}
}

func v3Packet6() Packet {
	return Packet{Src: mustAddr(ka1LL), Dst: mustAddr(mcast6), HopLimit: HopLimit, TOS: TOSNetworkControl,
		FlowLabel: ka1Flow, Advert: Advert{Version: Version3, VRID: labVRID, Priority: 150, Interval: time.Second,
			Addrs: []netip.Addr{mustAddr(vip6)}}}
}

func v3Config6() Config {
	return Config{VRID: labVRID, Version: Version3, Priority: 100, Interval: time.Second,
		Src: mustAddr("fe80::2"), Addrs: []netip.Addr{mustAddr(vip6)}}
}

func marshal(t *testing.T, p Packet) []byte {
	t.Helper()
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixIPv4 recomputes the IPv4 header checksum after a test edited the header.
func fixIPv4(b []byte) []byte {
	ihl := int(b[0]&0x0f) * 4
	binary.BigEndian.PutUint16(b[10:], ipv4HeaderChecksumRef(b[:ihl]))
	return b
}

// fixVRRP recomputes the VRRP checksum of the message at off after a test edited it.
func fixVRRP(b []byte, off int, src, dst netip.Addr) []byte {
	binary.BigEndian.PutUint16(b[off+6:], checksumRef(b[off:], src, dst))
	return b
}

type decodeCase struct {
	name string
	b    []byte
	want Reason
}

// decodeReasonCases lists every way Packet.UnmarshalBinary rejects a packet.
func decodeReasonCases(t *testing.T) []decodeCase {
	src4, dst4 := mustAddr(ka1), mustAddr(mcast4)
	src6, dst6 := mustAddr(ka1LL), mustAddr(mcast6)
	v2 := func() []byte { return marshal(t, v2Packet()) }
	v6 := func() []byte { return marshal(t, v3Packet6()) }
	return []decodeCase{
		{"empty", nil, ErrTruncated},
		{"IPv4 header cut", v2()[:19], ErrTruncated},
		{"IPv4 total length beyond data", v2()[:39], ErrTruncated},
		{"IPv6 header cut", v6()[:39], ErrTruncated},
		{"IPv6 payload length beyond data", v6()[:63], ErrTruncated},
		{"VRRP header cut", func() []byte {
			b := v2()[:27]
			binary.BigEndian.PutUint16(b[2:], 27)
			return fixIPv4(b)
		}(), ErrTruncated},
		{"IP version 5", func() []byte { b := v2(); b[0] = 0x55; return b }(), ErrIPHeader},
		{"IHL 4", func() []byte { b := v2(); b[0] = 0x44; return b }(), ErrIPHeader},
		{"total length below IHL", func() []byte {
			b := v2()
			binary.BigEndian.PutUint16(b[2:], 19)
			return fixIPv4(b)
		}(), ErrIPHeader},
		{"IPv4 header checksum", func() []byte { b := v2(); b[11] ^= 1; return b }(), ErrIPHeader},
		{"more fragments", func() []byte { b := v2(); b[6] = 0x20; return fixIPv4(b) }(), ErrIPHeader},
		{"fragment offset", func() []byte { b := v2(); b[7] = 1; return fixIPv4(b) }(), ErrIPHeader},
		{"IPv4 protocol UDP", func() []byte { b := v2(); b[9] = 17; return fixIPv4(b) }(), ErrProtocol},
		{"IPsec AH", func() []byte { b := v2(); b[9] = 51; return fixIPv4(b) }(), ErrProtocol},
		{"IPv6 hop-by-hop header", func() []byte { b := v6(); b[6] = 0; return b }(), ErrProtocol},
		{"VRRP version 1", func() []byte { b := v2(); b[20] = 0x11; return fixVRRP(b, 20, src4, dst4) }(), ErrVersion},
		{"VRRP version 4", func() []byte { b := v2(); b[20] = 0x41; return fixVRRP(b, 20, src4, dst4) }(), ErrVersion},
		{"v2 over IPv6", func() []byte { b := v6(); b[40] = 0x21; return fixVRRP(b, 40, src6, dst6) }(), ErrVersion},
		{"type 2", func() []byte { b := v2(); b[20] = 0x22; return fixVRRP(b, 20, src4, dst4) }(), ErrType},
		{"count 2, one address", func() []byte { b := v2(); b[23] = 2; return fixVRRP(b, 20, src4, dst4) }(), ErrLength},
		{"count 0, one address", func() []byte { b := v6(); b[43] = 0; return fixVRRP(b, 40, src6, dst6) }(), ErrLength},
		{"v2 without auth bytes", func() []byte {
			b := v2()[:32]
			binary.BigEndian.PutUint16(b[2:], 32)
			return fixVRRP(fixIPv4(b), 20, src4, dst4)
		}(), ErrLength},
		{"v3 with auth bytes", func() []byte {
			p := v2Packet()
			p.Advert.AuthType, p.Advert.AuthData = AuthNone, [8]byte{}
			b := marshal(t, p)
			b[20] = 0x31
			b[24], b[25] = 0, 100
			return fixVRRP(b, 20, src4, dst4)
		}(), ErrLength},
		{"trailing byte inside IP length", func() []byte {
			b := append(v2(), 0)
			binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
			return fixVRRP(fixIPv4(b), 20, src4, dst4)
		}(), ErrLength},
		{"corrupt VIP", func() []byte { b := v2(); b[31] ^= 0x40; return b }(), ErrChecksum},
		{"corrupt IPv6 VIP", func() []byte { b := v6(); b[len(b)-1] ^= 1; return b }(), ErrChecksum},
		{"v3 multicast checksum sent unicast", func() []byte {
			// keepalived's old_unicast_checksum (docs/vrrp.md §2.6): the pseudo-header
			// carries 224.0.0.18 though the packet goes to the peer.
			p := v2Packet()
			p.Dst = mustAddr(ka2)
			p.Advert.Version, p.Advert.AuthType, p.Advert.AuthData = Version3, AuthNone, [8]byte{}
			b := marshal(t, p)
			return fixVRRP(b, 20, src4, dst4)
		}(), ErrChecksum},
	}
}

func TestDecodeReasons(t *testing.T) {
	for _, tt := range decodeReasonCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			err := p.UnmarshalBinary(tt.b)
			if err != tt.want {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var r Reason
			if !errors.As(err, &r) || r != tt.want || !errors.Is(err, tt.want) {
				t.Errorf("errors.As/Is do not recover %v", tt.want)
			}
		})
	}
}

// TestDecodeAccepts: things that look odd but are valid.
func TestDecodeAccepts(t *testing.T) {
	base := marshal(t, v2Packet())
	tests := []struct {
		name string
		b    []byte
	}{
		{"Ethernet padding after the IP packet", append(marshal(t, v2Packet()), make([]byte, 14)...)},
		{"DF set (kernel-built header)", func() []byte { b := marshal(t, v2Packet()); b[6] = 0x40; return fixIPv4(b) }()},
		{"IPv4 options", func() []byte {
			b := append([]byte{0x46}, base[1:20]...)
			b = append(b, 1, 1, 1, 0) // NOP NOP NOP EOL
			b = append(b, base[20:]...)
			binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
			return fixIPv4(b)
		}()},
		{"v3 reserved bits set", func() []byte {
			p := v3Packet6()
			b := marshal(t, p)
			b[44] |= 0xf0
			return fixVRRP(b, 40, p.Src, p.Dst)
		}()},
		{"IPv6 payload padding", func() []byte { b := marshal(t, v3Packet6()); return append(b, 0, 0) }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Packet
			if err := p.UnmarshalBinary(tt.b); err != nil {
				t.Fatal(err)
			}
			if p.Advert.Priority != 150 || len(p.Advert.Addrs) != 1 || p.Advert.Interval != time.Second {
				t.Errorf("decoded %+v", p.Advert)
			}
		})
	}
}

type checkCase struct {
	name string
	p    func(*Packet)
	cfg  func(*Config)
	v6   bool
	want Reason // 0: accepted
}

// checkReasonCases lists every way Config.Check rejects a decoded packet, and some
// packets it must accept.
func checkReasonCases() []checkCase {
	return []checkCase{
		{"v2 accepted", nil, nil, false, 0},
		{"v3 IPv6 accepted", nil, nil, true, 0},
		{"IPv6 packet, IPv4 instance", func(p *Packet) { *p = v3Packet6() }, nil, false, ErrFamily},
		{"TTL 64 multicast", func(p *Packet) { p.HopLimit = 64 }, nil, false, ErrTTL},
		{"hop limit 1 multicast", func(p *Packet) { p.HopLimit = 1 }, nil, true, ErrTTL},
		{"TTL 64 unicast is fine (keepalived)", func(p *Packet) { p.HopLimit = 64; p.Dst = mustAddr(ka2) },
			func(c *Config) { c.Peers = []netip.Addr{mustAddr(ka1)} }, false, 0},
		{"v3 advert, v2 instance", func(p *Packet) {
			p.Advert.Version, p.Advert.AuthType, p.Advert.AuthData = Version3, AuthNone, [8]byte{}
		}, nil, false, ErrVersionMismatch},
		{"v2 advert, v3 instance", nil, func(c *Config) {
			c.Version, c.AuthType, c.AuthData = Version3, AuthNone, [8]byte{}
		}, false, ErrVersionMismatch},
		{"VRID 52", func(p *Packet) { p.Advert.VRID = 52 }, nil, false, ErrVRID},
		{"no auth, PASS configured", func(p *Packet) { p.Advert.AuthType, p.Advert.AuthData = AuthNone, [8]byte{} },
			nil, false, ErrAuthType},
		{"PASS, no auth configured", nil, func(c *Config) { c.AuthType, c.AuthData = AuthNone, [8]byte{} }, false, ErrAuthType},
		{"AH auth type", func(p *Packet) { p.Advert.AuthType = AuthIPAH }, nil, false, ErrAuthType},
		{"wrong password", func(p *Packet) { p.Advert.AuthData = password("s3cr3t13") }, nil, false, ErrAuthData},
		{"v2 interval 1s vs 2s", nil, func(c *Config) { c.Interval = 2 * time.Second }, false, ErrInterval},
		{"v3 interval 2s vs 1s is fine", func(p *Packet) { p.Advert.Interval = 2 * time.Second }, nil, true, 0},
		{"v3 interval 0", func(p *Packet) { p.Advert.Interval = 0 }, nil, true, ErrInterval},
		{"2 VIPs vs 1", func(p *Packet) { p.Advert.Addrs = append(p.Advert.Addrs, mustAddr("198.18.0.101")) },
			nil, false, ErrAddrCount},
		{"no VIPs vs 1", func(p *Packet) { p.Advert.Addrs = nil }, nil, true, ErrAddrCount},
		{"unicast packet, multicast instance", func(p *Packet) { p.Dst = mustAddr(ka2) }, nil, false, ErrDestination},
		{"multicast packet, unicast instance", nil, func(c *Config) { c.Peers = []netip.Addr{mustAddr(ka1)} },
			false, ErrDestination},
		{"VIP .101 vs .100", func(p *Packet) { p.Advert.Addrs = []netip.Addr{mustAddr("198.18.0.101")} },
			nil, false, ErrAddrMissing},
		{"VIPs in another order are fine", func(p *Packet) {
			p.Advert.Addrs = []netip.Addr{mustAddr("198.18.0.101"), mustAddr(vip4)}
		}, func(c *Config) { c.Addrs = []netip.Addr{mustAddr(vip4), mustAddr("198.18.0.101")} }, false, 0},
		{"owner's VIP mismatch still drops (keepalived)", func(p *Packet) {
			p.Advert.Priority = PriorityOwner
			p.Advert.Addrs = []netip.Addr{mustAddr("198.18.0.101")}
		}, nil, false, ErrAddrMissing},
		{"unicast source not a peer", func(p *Packet) { p.Dst = mustAddr(ka2) },
			func(c *Config) { c.Peers = []netip.Addr{mustAddr("198.18.0.3")}; c.CheckUnicastSrc = true }, false, ErrUnicastSource},
		{"unicast source unchecked", func(p *Packet) { p.Dst = mustAddr(ka2) },
			func(c *Config) { c.Peers = []netip.Addr{mustAddr("198.18.0.3")} }, false, 0},
		{"unicast source is a peer", func(p *Packet) { p.Dst = mustAddr(ka2) },
			func(c *Config) { c.Peers = []netip.Addr{mustAddr(ka1)}; c.CheckUnicastSrc = true }, false, 0},
	}
}

// TestCheckReasons runs checkReasonCases through the full receive path (encode,
// decode, check, Instance.Receive).
func TestCheckReasons(t *testing.T) {
	for _, tt := range checkReasonCases() {
		t.Run(tt.name, func(t *testing.T) {
			p, cfg := v2Packet(), v2Config()
			if tt.v6 {
				p, cfg = v3Packet6(), v3Config6()
			}
			if tt.p != nil {
				tt.p(&p)
			}
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			var q Packet
			if err := q.UnmarshalBinary(marshal(t, p)); err != nil {
				t.Fatal(err)
			}
			err := cfg.Check(&q)
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if err != tt.want {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}

			// Receive drops it without touching the state machine.
			in, _ := NewInstance(cfg)
			now := time.Unix(100, 0)
			in.Step(now, Event{Kind: EventStart})
			deadline := in.NextDeadline()
			acts, err := in.Receive(now.Add(time.Second), &q)
			if err != tt.want || len(acts) != 0 || in.NextDeadline() != deadline || in.State() != StateBackup {
				t.Errorf("Receive = %v, %v; deadline moved %v", acts, err, in.NextDeadline().Sub(deadline))
			}
		})
	}
}

// TestEveryReasonTested insists that the two tables above expect every Reason (and
// they fail unless the Reason is actually returned).
func TestEveryReasonTested(t *testing.T) {
	covered := map[Reason]bool{}
	for _, c := range decodeReasonCases(t) {
		covered[c.want] = true
	}
	for _, c := range checkReasonCases() {
		covered[c.want] = true
	}
	for r := Reason(1); r < NumReasons; r++ {
		if !covered[r] {
			t.Errorf("no test produces %v (%d)", r, r)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		v6   bool
		mod  func(*Config)
		ok   bool
	}{
		{"v2 ok", false, nil, true},
		{"v3 IPv6 ok", true, nil, true},
		{"v3 100ms ok", true, func(c *Config) { c.Interval = 100 * time.Millisecond }, true},
		{"owner ok", false, func(c *Config) { c.Priority = 255 }, true},
		{"no VIPs ok", false, func(c *Config) { c.Addrs = nil }, true},
		{"VRID 0", false, func(c *Config) { c.VRID = 0 }, false},
		{"priority 0", false, func(c *Config) { c.Priority = 0 }, false},
		{"no source", false, func(c *Config) { c.Src = netip.Addr{} }, false},
		{"version 0", false, func(c *Config) { c.Version = 0 }, false},
		{"v2 IPv6", true, func(c *Config) { c.Version = Version2 }, false},
		{"v2 0.5s", false, func(c *Config) { c.Interval = 500 * time.Millisecond }, false},
		{"v2 0s", false, func(c *Config) { c.Interval = 0 }, false},
		{"v3 5ms", true, func(c *Config) { c.Interval = 5 * time.Millisecond }, false},
		{"v3 41s", true, func(c *Config) { c.Interval = 41 * time.Second }, false},
		{"v3 auth", true, func(c *Config) { c.AuthType = AuthPassword }, false},
		{"v2 AH", false, func(c *Config) { c.AuthType = AuthIPAH }, false},
		{"v2 password without PASS", false, func(c *Config) { c.AuthType = AuthNone }, false},
		{"IPv6 VIP on IPv4", false, func(c *Config) { c.Addrs = addrs6(1) }, false},
		{"duplicate VIP", false, func(c *Config) { c.Addrs = []netip.Addr{mustAddr(vip4), mustAddr(vip4)} }, false},
		{"256 VIPs", false, func(c *Config) { c.Addrs = addrs4(256) }, false},
		{"nopreempt owner", false, func(c *Config) { c.Priority = 255; c.NoPreempt = true }, false},
		{"preempt_delay 1001s", false, func(c *Config) { c.PreemptDelay = 1001 * time.Second }, false},
		{"multicast peer", false, func(c *Config) { c.Peers = []netip.Addr{mustAddr(mcast4)} }, false},
		{"IPv6 peer on IPv4", false, func(c *Config) { c.Peers = []netip.Addr{mustAddr("fe80::1")} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := v2Config()
			if tt.v6 {
				c = v3Config6()
			}
			if tt.mod != nil {
				tt.mod(&c)
			}
			err := c.Validate()
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
				t.Errorf("Validate = %v, want ok=%v", err, tt.ok)
			}
			if _, err2 := NewInstance(c); (err2 == nil) != tt.ok {
				t.Errorf("NewInstance = %v, want ok=%v", err2, tt.ok)
			}
		})
	}
}
