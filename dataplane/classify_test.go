package dataplane

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket/layers"

	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/dataplane/internal/frametest"
	"github.com/gvs-lb/gvs/ipvs"
)

// TestAddrEntryIsByFamily: a large set's entry is an address of its own family only:
// an IPv4 probe equal to an IPv6 member's first 4 bytes is not that member (the IPv4
// comparison reads 4 bytes), nor is an IPv6 probe an IPv4 member, and each is itself.
func TestAddrEntryIsByFamily(t *testing.T) {
	v6, ok := entryOf(netip.MustParseAddr("2001:db8::1"))
	v4, ok4 := entryOf(netip.AddrFrom4([4]byte{0x20, 0x01, 0x0d, 0xb8}))
	if !ok || !ok4 {
		t.Fatal("entryOf refused a valid address")
	}
	for _, c := range []struct {
		e    addrEntry
		a    [16]byte
		v6   bool
		want bool
	}{
		{v6, v4.a, false, false},
		{v4, v6.a, true, false},
		{v4, v4.a, true, false},
		{v6, v6.a, true, true},
		{v4, v4.a, false, true},
	} {
		if got := c.e.is(&c.a, c.v6); got != c.want {
			t.Errorf("entry %x (v6 %v) is %x (v6 %v) = %v, want %v", c.e.a, c.e.v6, c.a, c.v6, got, c.want)
		}
	}
}

// TestInSmall4MatchesContains: the word scan of a small set answers as contains does
// for IPv4, also for a probe equal to the first 4 bytes of an IPv6 member, and a
// large set leaves every address to contains (false).
func TestInSmall4MatchesContains(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8::1")
	collide := [16]byte{0x20, 0x01, 0x0d, 0xb8} // v6's first 4 bytes as an IPv4 address
	for _, n := range []int{0, 1, 5, addrSetLinear - 1, addrSetLinear + 4} {
		addrs := []netip.Addr{v6}
		for i := range n {
			addrs = append(addrs, netip.AddrFrom4([4]byte{198, 18, 2, byte(i)}))
		}
		s := newAddrSet(addrs)
		large := s.small == nil
		if large != (len(addrs) > addrSetLinear) {
			t.Fatalf("%d addresses: large %v", len(addrs), large)
		}
		probes := [][16]byte{collide}
		for i := range n + 2 {
			probes = append(probes, [16]byte{198, 18, 2, byte(i)}, [16]byte{198, 19, 2, byte(i)})
		}
		for _, a := range probes {
			want := s.contains(&a, false) && !large
			if got := s.inSmall4(&a); got != want {
				t.Fatalf("%d addresses (large %v): inSmall4(%v) = %v, want %v", len(addrs), large, a[:4], got, want)
			}
		}
	}
}

// TestFastClassificationMatchesGeneral holds Process's path for the common frame
// (untagged IPv4 TCP or UDP to a VIP, sent to inbound without processFrame) to the
// general one: the same frames go through Process and through processFrame alone
// (runGeneral), on a Director with few VIPs (the small set's IPv4 list) and one
// with more than addrSetLinear (the large set's table), with and without VRRP
// ownership, and must leave the same frames and the same counters.
func TestFastClassificationMatchesGeneral(t *testing.T) {
	vip6, rs6 := netip.MustParseAddr("2001:db8::100"), netip.MustParseAddr("2001:db8::5")
	svcs := []ipvs.Service{rrService(ipvs.NAT, 8080), {Key: ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(vip6, 80)), Scheduler: "rr", RealServers: []ipvs.RealServer{
		{Addr: netip.AddrPortFrom(rs6, 80), Weight: 1, MAC: ipvs.MACFrom(dtRS1MAC), Method: ipvs.DR},
	}}}
	// An IPv4 VIP equal to the first 4 bytes of the IPv6 addresses: only an IPv4
	// frame may match it (the frames are in memory, never sent).
	alias := rrService(ipvs.NAT, 8080)
	alias.Key = ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(netip.AddrFrom4([4]byte{0x20, 0x01, 0x0d, 0xb8}), 80))
	svcs = append(svcs, alias)
	many := append([]ipvs.Service(nil), svcs...)
	for i := range addrSetLinear {
		s := rrService(ipvs.NAT, 8080)
		s.Key = ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}), 80))
		many = append(many, s)
	}
	lsrr := layers.IPv4Option{OptionType: header.IPv4OptLSRR, OptionLength: 7, OptionData: []byte{4, 198, 18, 0, 9}}
	tcp4 := func(o frametest.Opts, dst netip.Addr) []byte {
		o.DstMAC = cmpMAC(o.DstMAC, [6]byte(dtDirMAC))
		return frametest.TCP4(t, o, dtClient.String(), dst.String(), 40001, 80)
	}
	other := net.HardwareAddr{2, 0, 0, 0, 0, 0x42}
	frames := []struct {
		name string
		b    []byte
	}{
		{"syn to the VIP", dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, syn: true}.frame(t)},
		{"ack to the VIP", dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, ack: true}.frame(t)},
		{"reply from the real server", dtPkt{srcMAC: dtRS2MAC, src: dtRS2, dst: dtClient, sport: 8080, dport: 40000, syn: true, ack: true}.frame(t)},
		{"reply from the other real server", dtPkt{srcMAC: dtRS1MAC, src: dtRS1, dst: dtClient, sport: 8080, dport: 40000, syn: true, ack: true}.frame(t)},
		{"to another host", dtPkt{src: dtClient, dst: dtVIP, sport: 40002, dport: 80, syn: true, dstMAC: other}.frame(t)},
		{"ttl 1 to another host", dtPkt{src: dtClient, dst: dtVIP, sport: 40003, dport: 80, syn: true, ttl: 1, dstMAC: other}.frame(t)},
		{"tagged", tcp4(frametest.Opts{VLAN: 10}, dtVIP)},
		{"source route", tcp4(frametest.Opts{IPv4Options: []layers.IPv4Option{lsrr}}, dtVIP)},
		{"no service at the port", dtPkt{src: dtClient, dst: dtVIP, sport: 40004, dport: 81, syn: true}.frame(t)},
		{"to no VIP", dtPkt{src: dtClient, dst: netip.MustParseAddr("198.18.3.1"), sport: 40005, dport: 80, syn: true}.frame(t)},
		{"ttl 1 to the VIP", dtPkt{src: dtClient, dst: dtVIP, sport: 40006, dport: 80, syn: true, ttl: 1}.frame(t)},
		{"udp to the VIP", dtPkt{src: dtClient, dst: dtVIP, sport: 40007, dport: 80, udp: true}.frame(t)},
		{"IPv6 to the VIP", dtPkt{src: netip.MustParseAddr("2001:db8::7"), dst: vip6, sport: 40008, dport: 80, syn: true}.frame(t)},
		{"IPv6 to no VIP", dtPkt{src: netip.MustParseAddr("2001:db8::7"), dst: netip.MustParseAddr("2001:db8::200"), sport: 40009, dport: 80, syn: true}.frame(t)},
		{"ARP for the VIP", arpRequest(t, dtVIP)},
	}
	for _, set := range []struct {
		name  string
		svcs  []ipvs.Service
		large bool
	}{{"small", svcs, false}, {"large", many, true}} {
		for _, owned := range [][]netip.Addr{nil, {}, {vip6}, {dtVIP}} {
			fast, general := newHarness(t, testOptions(), set.svcs...), newHarness(t, testOptions(), set.svcs...)
			if large := fast.d.snap.Load().vips.small == nil; large != set.large {
				t.Fatalf("%s: the VIP set is large: %v", set.name, large)
			}
			fast.d.SetOwned(owned)
			general.d.SetOwned(owned)
			for i, f := range frames {
				now := int64(i) * sec
				got, want := fast.run(f.b, now), general.runGeneral(f.b, now)
				if len(got) != len(want) {
					t.Fatalf("%s, owned %v, %s: %d frames out, want %d", set.name, owned, f.name, len(got), len(want))
				}
				for k := range got {
					if !bytes.Equal(got[k], want[k]) {
						t.Fatalf("%s, owned %v, %s: frame %d differs", set.name, owned, f.name, k)
					}
				}
				if fast.w.C.Reasons != general.w.C.Reasons || fast.w.C.Forwarded != general.w.C.Forwarded || fast.w.C.In != general.w.C.In {
					t.Fatalf("%s, owned %v, %s: reasons %v, forwarded %d, in %d; want %v, %d, %d", set.name, owned, f.name,
						fast.w.C.Reasons, fast.w.C.Forwarded, fast.w.C.In, general.w.C.Reasons, general.w.C.Forwarded, general.w.C.In)
				}
			}
			// The frames reach both outcomes the fast path decides: frames go to two
			// VIPs, and owned lists at most one of them.
			if notOwned := owned != nil; notOwned != (fast.w.C.Reasons[ReasonNotOwned] > 0) || (owned == nil || len(owned) > 0) != (fast.w.C.Forwarded > 0) {
				t.Fatalf("%s, owned %v: forwarded %d, not owned %d", set.name, owned, fast.w.C.Forwarded, fast.w.C.Reasons[ReasonNotOwned])
			}
		}
	}
}

// runGeneral is run with the frame classified by processFrame alone, from its
// decode on (frameRaw), as Process does for a frame it does not take itself: the
// reference Process's path for the common frame is held to. It does Process's
// bookkeeping before the frame; not its publishing and expiry, which leave the
// frames and the worker's counters alone.
func (h *harness) runGeneral(b []byte, now int64) [][]byte {
	h.t.Helper()
	w := h.w
	s := w.d.snap.Load()
	if s != w.s {
		w.sync(s)
	}
	w.batchGen, w.nicmp, w.now, w.hash, w.out = s.gen, 0, now, 0, nil
	f := inFrame(b)
	w.C.In++
	w.processFrame(s, &f, f.Bytes(), frameRaw)
	var got [][]byte
	for _, o := range w.out {
		got = append(got, append([]byte(nil), o.Bytes()...))
	}
	return got
}
