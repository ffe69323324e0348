package dataplane

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/gopacket/layers"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/dataplane/internal/frametest"
	"github.com/gvs-lb/gvs/ipvs"
)

// TestAdmit: frames Linux would not hand to IPVS are dropped, each under its own
// reason, before anything else happens (no connection, no ICMP error); the ones it
// would are forwarded, tag and all.
func TestAdmit(t *testing.T) {
	dir := [6]byte(dtDirMAC)
	syn := func(o frametest.Opts) []byte {
		o.DstMAC = cmpMAC(o.DstMAC, dir)
		return frametest.TCP4(t, o, dtClient.String(), dtVIP.String(), 40000, 80)
	}
	lsrr := layers.IPv4Option{OptionType: header.IPv4OptLSRR, OptionLength: 7, OptionData: []byte{4, 198, 18, 0, 9}}
	ssrr := layers.IPv4Option{OptionType: header.IPv4OptSSRR, OptionLength: 7, OptionData: []byte{4, 198, 18, 0, 9}}
	rr := layers.IPv4Option{OptionType: 7, OptionLength: 7, OptionData: []byte{4, 0, 0, 0, 0}}
	for _, tc := range []struct {
		name  string
		vlans []uint16
		frame []byte
		want  Reason // 0: forwarded
	}{
		{"to the director", nil, syn(frametest.Opts{}), 0},
		{"to another host", nil, syn(frametest.Opts{DstMAC: [6]byte{2, 0, 0, 0, 0, 0x42}}), ReasonOtherHost},
		{"broadcast", nil, syn(frametest.Opts{DstMAC: [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}), ReasonGroupMAC},
		{"multicast", nil, syn(frametest.Opts{DstMAC: [6]byte{0x01, 0x00, 0x5e, 0, 0, 1}}), ReasonGroupMAC},
		{"vlan not configured", nil, syn(frametest.Opts{VLAN: 10}), ReasonVLAN},
		{"vlan configured", []uint16{10, 20}, syn(frametest.Opts{VLAN: 20}), 0},
		{"other vlan", []uint16{10, 20}, syn(frametest.Opts{VLAN: 30}), ReasonVLAN},
		{"untagged with vlans", []uint16{10}, syn(frametest.Opts{}), 0},
		{"service tag", []uint16{10}, syn(frametest.Opts{VLAN: 10, ServiceTag: true}), ReasonVLAN},
		{"lsrr", nil, syn(frametest.Opts{IPv4Options: []layers.IPv4Option{lsrr}}), ReasonSourceRoute},
		{"ssrr", nil, syn(frametest.Opts{IPv4Options: []layers.IPv4Option{rr, ssrr}}), ReasonSourceRoute},
		{"record route", nil, syn(frametest.Opts{IPv4Options: []layers.IPv4Option{rr}}), 0},
		{"ttl 1 to another host", nil, dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, syn: true, ttl: 1, dstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x42}}.frame(t), ReasonOtherHost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions()
			o.Defense.VLANs = tc.vlans
			h := newHarness(t, o, rrService(ipvs.DR, 80))
			out := h.run(tc.frame, sec)
			if tc.want == 0 {
				if len(out) != 1 || h.w.C.Forwarded != 1 {
					t.Fatalf("not forwarded: %d frames out, reasons %v", len(out), h.w.C.Reasons)
				}
				var p header.Parsed
				if d := p.Decode(out[0]); d != header.DropNone || p.HasVLAN != (tc.frame[12] == 0x81) {
					t.Fatalf("forwarded frame: %v, tagged %v", d, p.HasVLAN)
				}
				return
			}
			if len(out) != 0 || h.w.C.Reasons[tc.want] != 1 || h.w.C.In != 1 || h.d.Table().Len() != 0 {
				t.Fatalf("%d frames out, %d connections, reasons %v; want one %v drop", len(out), h.d.Table().Len(), h.w.C.Reasons, tc.want)
			}
		})
	}
}

func cmpMAC(a, def [6]byte) [6]byte {
	if a == ([6]byte{}) {
		return def
	}
	return a
}

// TestAdmitNeighbourFrames: broadcast ARP and multicast neighbour solicitation are
// still answered (TestAnswersARPForVIPOnly, TestAnswersNeighborSolicitationForVIP6),
// and a broadcast ARP on a VLAN the config does not name is not.
func TestAdmitNeighbourFrames(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	arp := arpRequest(t, dtVIP)
	tagged := append(append(append([]byte(nil), arp[:12]...), 0x81, 0x00, 0x00, 0x0a), arp[12:]...)
	if out := h.run(tagged, 0); len(out) != 0 || h.w.C.Reasons[ReasonVLAN] != 1 {
		t.Fatalf("ARP on VLAN 10: %d answers, reasons %v", len(out), h.w.C.Reasons)
	}
	if out := h.run(arp, 0); len(out) != 1 {
		t.Fatalf("untagged ARP not answered: reasons %v", h.w.C.Reasons)
	}
}

// xrlimRef is the reference for the per-destination limit: Linux's inet_peer
// token count as docs/defense.md §2.1 describes it, in milliseconds — a peer starts
// with a full bucket of 6·timeout, earns a token per millisecond, and a message
// costs timeout.
type xrlimRef struct {
	tokens, last int64
	seen         bool
}

func (r *xrlimRef) allow(nowMs, timeoutMs int64) bool {
	if !r.seen {
		r.seen, r.tokens, r.last = true, 6*timeoutMs, nowMs
	}
	r.tokens = min(r.tokens+nowMs-r.last, 6*timeoutMs)
	r.last = nowMs
	if r.tokens >= timeoutMs {
		r.tokens -= timeoutMs
		return true
	}
	return false
}

// TestICMPRateLimitOneSource: 1,000 TTL-1 packets in a second from one (spoofed)
// source get Linux's budget of time-exceeded errors — 6, then one a second — the
// same count the reference gives at every step, also when the packets are spread
// over two workers. The rest are counted as rate limited.
func TestICMPRateLimitOneSource(t *testing.T) {
	for _, workers := range []int{1, 2} {
		h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
		ws := []*Worker{h.w}
		if workers == 2 {
			ws = append(ws, h.d.NewWorker(64))
		}
		var ref xrlimRef
		sent, want := 0, 0
		const start = 5 * sec
		for i := range 3000 { // 3 s, one packet a millisecond
			now := start + int64(i)*int64(time.Millisecond)
			f := dtPkt{src: dtClient, dst: dtVIP, sport: uint16(1000 + i), dport: 80, syn: true, ttl: 1}.frame(t)
			out := ws[i%workers].Process([]Frame{inFrame(f)}, now, nil)
			sent += len(out)
			if ref.allow(now/int64(time.Millisecond), 1000) {
				want++
			}
			if sent != want {
				t.Fatalf("%d workers, packet %d at %v: %d time-exceeded sent, Linux %d", workers, i, time.Duration(now-start), sent, want)
			}
			if i == 999 && sent != 6 {
				t.Fatalf("%d workers: %d errors in the first second, want 6", workers, sent)
			}
		}
		var limited, ttl uint64
		for _, w := range ws {
			limited += w.C.ICMPRateLimited
			ttl += w.C.Reasons[ReasonTTLExceeded]
		}
		if sent != 8 || limited != 3000-8 || ttl != 3000 {
			t.Errorf("%d workers: %d sent, %d rate limited, %d ttl_exceeded; want 8, 2992, 3000", workers, sent, limited, ttl)
		}
	}
}

// TestICMPRateLimitGlobal: errors to many destinations at once are bounded by
// icmp_msgs_burst, then icmp_msgs_per_sec; with icmp_ratemask 0 nothing is limited,
// and fragmentation needed never is.
func TestICMPRateLimitGlobal(t *testing.T) {
	ttl1 := func(i int) []byte {
		src := netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})
		return dtPkt{src: src, dst: dtVIP, sport: 1000, dport: 80, syn: true, ttl: 1}.frame(t)
	}
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	count := func(h *harness, n int, now int64, frame func(int) []byte) int {
		sent := 0
		for i := range n {
			sent += len(h.run(frame(i), now))
		}
		return sent
	}
	if got := count(h, 200, sec, ttl1); got != 50 {
		t.Fatalf("200 destinations at once: %d errors, want the burst of 50", got)
	}
	// 10 ms later: 10 more tokens (1,000 a second); the first 50 sources are at their
	// own limit's 5 remaining, the others fresh.
	if got := count(h, 200, sec+int64(10*time.Millisecond), func(i int) []byte { return ttl1(i + 1000) }); got != 10 {
		t.Fatalf("10 ms later: %d errors, want 10", got)
	}

	o := testOptions()
	o.Defense.ICMPRateMask = 0
	h = newHarness(t, o, rrService(ipvs.DR, 80))
	if got := count(h, 100, sec, func(int) []byte { return ttl1(7) }); got != 100 {
		t.Fatalf("icmp_ratemask 0: %d of 100 errors sent", got)
	}

	o = testOptions()
	o.MTU = 576
	h = newHarness(t, o, rrService(ipvs.DR, 80))
	big := func(int) []byte {
		return dtPkt{src: dtClient, dst: dtVIP, sport: 1000, dport: 80, syn: true, df: true, plen: 1000}.frame(t)
	}
	if got := count(h, 100, sec, big); got != 100 || h.w.C.Reasons[ReasonTooBig] != 100 {
		t.Fatalf("fragmentation needed: %d of 100 sent (reasons %v)", got, h.w.C.Reasons)
	}
}

// TestICMPRateLimitIPv6: time exceeded is limited per destination like ICMPv4,
// packet too big is not (net.ipv6.icmp.ratemask's default).
func TestICMPRateLimitIPv6(t *testing.T) {
	vip6 := netip.MustParseAddr("2001:db8::100")
	client6 := netip.MustParseAddr("2001:db8:1::7")
	svc := ipvs.Service{Key: ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(vip6, 80)), Scheduler: "rr", RealServers: []ipvs.RealServer{
		{Addr: netip.AddrPortFrom(netip.MustParseAddr("2001:db8::5"), 80), Weight: 1, MAC: ipvs.MACFrom(dtRS1MAC), Method: ipvs.DR}}}
	o := testOptions()
	o.Addr6 = netip.MustParseAddr("2001:db8::3")
	o.MTU = 1280
	h := newHarness(t, o, svc)
	sent := 0
	for i := range 100 {
		sent += len(h.run(dtPkt{src: client6, dst: vip6, sport: uint16(i), dport: 80, syn: true, ttl: 1}.frame(t), sec))
	}
	if sent != 6 || h.w.C.ICMPRateLimited != 94 {
		t.Fatalf("100 hop-limit-1 packets: %d errors, %d limited; want 6, 94", sent, h.w.C.ICMPRateLimited)
	}
	sent = 0
	for i := range 100 {
		sent += len(h.run(dtPkt{src: client6, dst: vip6, sport: uint16(i), dport: 80, syn: true, plen: 1400}.frame(t), sec))
	}
	if sent != 100 {
		t.Fatalf("packet too big: %d of 100 sent", sent)
	}
}

// TestSourceLimit: with source_conn_rate set, each client /24 (/64) opens at most its
// burst of new connections at once, then the rate; established flows are not
// limited; without it nothing is.
func TestSourceLimit(t *testing.T) {
	o := testOptions()
	o.Defense.SourceConnRate, o.Defense.SourceConnBurst = 10, 5
	h := newHarness(t, o, rrService(ipvs.DR, 80))
	synFrom := func(a string, port uint16) []byte {
		return dtPkt{src: netip.MustParseAddr(a), dst: dtVIP, sport: port, dport: 80, syn: true}.frame(t)
	}
	fwd := 0
	for i := range 20 {
		// Different hosts of one /24.
		fwd += len(h.run(synFrom("198.19.5."+itoa(i+1), 40000), sec))
	}
	if fwd != 5 || h.w.C.Reasons[ReasonSourceLimit] != 15 {
		t.Fatalf("20 SYNs from one /24: %d forwarded, %d source_limit; want 5, 15", fwd, h.w.C.Reasons[ReasonSourceLimit])
	}
	if len(h.run(synFrom("198.19.6.1", 40000), sec)) != 1 {
		t.Fatal("another /24 was limited")
	}
	// An established flow of the limited /24 still passes.
	ack := dtPkt{src: netip.MustParseAddr("198.19.5.1"), dst: dtVIP, sport: 40000, dport: 80, ack: true}.frame(t)
	if len(h.run(ack, sec)) != 1 {
		t.Fatalf("established flow dropped: reasons %v", h.w.C.Reasons)
	}
	// 100 ms later: one more.
	if len(h.run(synFrom("198.19.5.200", 1), sec+int64(100*time.Millisecond))) != 1 ||
		len(h.run(synFrom("198.19.5.201", 1), sec+int64(100*time.Millisecond))) != 0 {
		t.Fatal("the /24 did not get exactly one token back after 100 ms")
	}
	// IPv6 /64.
	vip6 := netip.MustParseAddr("2001:db8::100")
	svc6 := ipvs.Service{Key: ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(vip6, 80)), Scheduler: "rr", RealServers: []ipvs.RealServer{
		{Addr: netip.AddrPortFrom(netip.MustParseAddr("2001:db8::5"), 80), Weight: 1, MAC: ipvs.MACFrom(dtRS1MAC), Method: ipvs.DR}}}
	h = newHarness(t, o, svc6)
	fwd = 0
	for i := range 10 {
		src := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 7, 0, 0, 8: byte(i), 15: 1})
		fwd += len(h.run(dtPkt{src: src, dst: vip6, sport: 1, dport: 80, syn: true}.frame(t), sec))
	}
	if fwd != 5 {
		t.Fatalf("10 SYNs from one /64: %d forwarded, want 5", fwd)
	}

	h = newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	fwd = 0
	for i := range 200 {
		fwd += len(h.run(synFrom("198.19.5.1", uint16(i+1)), sec))
	}
	if fwd != 200 {
		t.Fatalf("no limit configured: %d of 200 forwarded", fwd)
	}
}

func itoa(i int) string { return netip.AddrFrom4([4]byte{0, 0, 0, byte(i)}).String()[6:] }

// TestDefenseSetOptions: the limits and VLANs change under traffic with
// SetOptions, and bad values are refused with the key's name.
func TestDefenseSetOptions(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	f := frametest.TCP4(t, frametest.Opts{VLAN: 10, DstMAC: [6]byte(dtDirMAC)}, dtClient.String(), dtVIP.String(), 40000, 80)
	if len(h.run(f, sec)) != 0 {
		t.Fatal("tagged frame forwarded without vlans")
	}
	o := testOptions()
	o.Defense.VLANs = []uint16{10}
	if err := h.d.SetOptions(o); err != nil {
		t.Fatal(err)
	}
	if len(h.run(f, sec)) != 1 {
		t.Fatalf("tagged frame not forwarded after vlans = [10]: %v", h.w.C.Reasons)
	}
	for _, tc := range []struct {
		set  func(*Defense)
		want string
	}{
		{func(d *Defense) { d.VLANs = []uint16{4095} }, "VLAN ID 4095"},
		{func(d *Defense) { d.SourceConnRate = 5 }, "source_conn_burst 0"},
		{func(d *Defense) { d.ICMPMsgsBurst = 0 }, "icmp_msgs_burst 0"},
		{func(d *Defense) { d.ICMPRateLimit = -1 }, "icmp_ratelimit"},
	} {
		o := testOptions()
		tc.set(&o.Defense)
		if err := h.d.SetOptions(o); err == nil || !contains(err.Error(), tc.want) {
			t.Errorf("SetOptions: %v, want an error naming %q", err, tc.want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestDefenseAllocs: the filter, the ICMP limit and the source limit allocate nothing.
func TestDefenseAllocs(t *testing.T) {
	o := testOptions()
	o.Defense.SourceConnRate, o.Defense.SourceConnBurst = 1, 1
	h := newHarness(t, o, rrService(ipvs.DR, 80))
	frames := [][]byte{
		dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, syn: true, dstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 0x42}}.frame(t),
		dtPkt{src: dtClient, dst: dtVIP, sport: 2, dport: 80, syn: true, ttl: 1}.frame(t),
		dtPkt{src: dtClient, dst: dtVIP, sport: 3, dport: 80, syn: true}.frame(t),
		dtPkt{src: dtClient, dst: dtVIP, sport: 4, dport: 80, syn: true}.frame(t),
	}
	var in []Frame
	for _, f := range frames {
		in = append(in, inFrame(f))
	}
	out := make([]Frame, 0, 2*len(in))
	now := sec
	if n := testing.AllocsPerRun(100, func() {
		for i := range in {
			copy(in[i].Buf[Headroom:], frames[i])
			in[i].Off, in[i].Len = Headroom, len(frames[i])
		}
		out = h.w.Process(in, now, out[:0])
		now += int64(time.Millisecond)
	}); n != 0 {
		t.Errorf("%v allocations per batch", n)
	}
	if h.w.C.Reasons[ReasonOtherHost] == 0 || h.w.C.ICMPRateLimited == 0 || h.w.C.Reasons[ReasonSourceLimit] == 0 {
		t.Errorf("a path was not taken: reasons %v, rate limited %d", h.w.C.Reasons, h.w.C.ICMPRateLimited)
	}
}

// TestRateTableConcurrent: workers taking from one bucket at once never get more than
// it holds (run with -race).
func TestRateTableConcurrent(t *testing.T) {
	tb := newRateTable(4)
	const interval, burst = int64(time.Millisecond), 20
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				// Every goroutine's clock reads the same 10 ms span.
				now := sec + int64(i%10)*interval
				if gcraAllow(tb.slot([]byte{1, 2, 3}), now, interval, (burst-1)*interval) {
					allowed.Add(1)
				}
			}
			_ = g
		}()
	}
	wg.Wait()
	// A full bucket of 20, and at most one token per millisecond of the 10 ms span.
	if n := allowed.Load(); n < burst || n > burst+10 {
		t.Errorf("%d allowed, want between %d and %d", n, burst, burst+10)
	}
}
