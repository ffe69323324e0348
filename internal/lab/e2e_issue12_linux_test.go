package lab

import (
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/gvs-lb/gvs/internal/testutil"
)

// The checks of GitHub issue 12 (points 3 and 4) against the live director: frames
// Linux would not forward are never seen leaving the director toward the real
// servers, and are counted; TTL-1 packets from one spoofed source get Linux's
// budget of time-exceeded errors.

// synFrame12 builds a TCP SYN frame client → VIP with the given Ethernet
// destination, optional 802.1Q tag and IPv4 options; the source port marks it.
func synFrame12(t *testing.T, src, dst net.HardwareAddr, from, vip netip.Addr, sport uint16, vlan uint16, ttl uint8, opts []layers.IPv4Option) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: src, DstMAC: dst, EthernetType: layers.EthernetTypeIPv4}
	ls := []gopacket.SerializableLayer{eth}
	if vlan != 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, &layers.Dot1Q{VLANIdentifier: vlan, Type: layers.EthernetTypeIPv4})
	}
	ip := &layers.IPv4{Version: 4, TTL: ttl, Protocol: layers.IPProtocolTCP, SrcIP: from.AsSlice(), DstIP: vip.AsSlice(), Options: opts}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: 80, SYN: true, Seq: 1, Window: 1024}
	tcp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, append(ls, ip, tcp)...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// withDirectorKeys writes dir1's lab config with keys (whole lines) added to its
// [director] table, beside it, and returns the copy's path.
func withDirectorKeys(t *testing.T, l *Lab, keys string) string {
	t.Helper()
	conf, err := os.ReadFile(l.ConfigPath("dir1"))
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(conf), "[director]\n", "[director]\n"+keys, 1)
	if changed == string(conf) {
		t.Fatalf("no [director] table in the lab's config:\n%s", conf)
	}
	path := l.ConfigPath("dir1") + ".issue12.toml"
	if err := os.WriteFile(path, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// reasonCounts sums the drop reasons the director logs when its workers stop.
func reasonCounts(log string) map[string]uint64 {
	out := map[string]uint64{}
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, "worker stopped") {
			continue
		}
		for _, m := range regexp.MustCompile(`\b([a-z_]+)=(\d+)\b`).FindAllStringSubmatch(line, -1) {
			n, _ := strconv.ParseUint(m[2], 10, 64)
			out[m[1]] += n
		}
	}
	return out
}

func TestLiveIssue12Filter(t *testing.T) {
	spec := e2eSpec(t, DR)
	l := upIssue4(t, spec)
	// VLAN 20 is named, VLAN 10 is not.
	p := runGVS(t, l, withDirectorKeys(t, l, "vlans = [20]\nmetrics_listen = \""+metricsAddr+"\"\n"))
	client, _ := l.Host("client")
	dir1, _ := l.Host("dir1")
	other := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}
	lsrr := layers.IPv4Option{OptionType: 131, OptionLength: 7, OptionData: []byte{4, 198, 18, 0, 9}}
	const each = 5
	cases := []struct {
		name    string
		sport   uint16
		frame   []byte
		reason  string // "": forwarded
		forward bool
	}{
		{"to another MAC", 61001, synFrame12(t, client.MAC(), other, client.Addr(), l.VIP(), 61001, 0, 64, nil), "other_host", false},
		{"VLAN 10 (not named)", 61002, synFrame12(t, client.MAC(), dir1.MAC(), client.Addr(), l.VIP(), 61002, 10, 64, nil), "vlan", false},
		{"LSRR", 61003, synFrame12(t, client.MAC(), dir1.MAC(), client.Addr(), l.VIP(), 61003, 0, 64, []layers.IPv4Option{lsrr}), "source_route", false},
		{"broadcast", 61004, synFrame12(t, client.MAC(), net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, client.Addr(), l.VIP(), 61004, 0, 64, nil), "group_mac", false},
		{"VLAN 20 (named)", 61005, synFrame12(t, client.MAC(), dir1.MAC(), client.Addr(), l.VIP(), 61005, 20, 64, nil), "", true},
		{"plain", 61006, synFrame12(t, client.MAC(), dir1.MAC(), client.Addr(), l.VIP(), 61006, 0, 64, nil), "", true},
	}
	// What leaves the director toward the real servers, on the real servers' wire.
	seen := map[uint16]int{}
	var taps []*frameTap
	for _, rs := range l.hostsWith(RealServer) {
		taps = append(taps, tapFrames(t, l, rs.Name, func(p gopacket.Packet) bool {
			tcp := tcpOf(p)
			return tcp != nil && tcp.SrcPort >= 61001 && tcp.SrcPort <= 61006 && ethOf(p).SrcMAC.String() == dir1.MAC().String()
		}))
	}
	for _, c := range cases {
		sendFrames(t, l, "client", each, c.frame)
	}
	// The forwarded frames on the real servers, and every dropped one counted: the
	// two workers take the frames in no common order, and a frame still in a ring
	// when the director stops is never counted.
	testutil.Eventually(t, 10*time.Second, func() bool { return tapsCount(taps) >= 2*each }, "the forwarded frames on the real servers")
	dropped := map[string]float64{}
	for _, c := range cases {
		if c.reason != "" {
			dropped[c.reason] = each
		}
	}
	waitDropped(t, l, dropped)
	for _, tap := range taps {
		for _, p := range tap.stop() {
			seen[uint16(tcpOf(p).SrcPort)]++
		}
	}
	log := stopGVS(t, l, p)
	counts := reasonCounts(log)
	for _, c := range cases {
		switch {
		case c.forward && seen[c.sport] == 0:
			t.Errorf("%s: not forwarded to a real server (the capture works if this is the only error)", c.name)
		case !c.forward && seen[c.sport] != 0:
			t.Errorf("%s: %d frames forwarded to the real servers, want none", c.name, seen[c.sport])
		}
		if c.reason != "" && counts[c.reason] < each {
			t.Errorf("%s: %s counted %d times, want at least %d (counters %v)", c.name, c.reason, counts[c.reason], each, counts)
		}
	}
}

func TestLiveIssue12ICMPBudget(t *testing.T) {
	spec := e2eSpec(t, DR)
	l := upIssue4(t, spec)
	p := runGVS(t, l, withDirectorKeys(t, l, "metrics_listen = \""+metricsAddr+"\"\n"))
	client, _ := l.Host("client")
	dir1, _ := l.Host("dir1")
	spoofed := netip.MustParseAddr("198.18.0.77")
	tap := tapFrames(t, l, "client", func(p gopacket.Packet) bool {
		ic, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
		return ok && ic.TypeCode.Type() == layers.ICMPv4TypeTimeExceeded
	})
	// 1,000 TTL-1 SYNs from one spoofed source, sent at once (well within a second).
	var frames [][]byte
	for i := range 1000 {
		frames = append(frames, synFrame12(t, client.MAC(), dir1.MAC(), spoofed, l.VIP(), uint16(20000+i), 0, 1, nil))
	}
	start := time.Now()
	sendFrames(t, l, "client", 1, frames...)
	sent := time.Since(start)
	// The director may take a while on a loaded machine: wait for the first six.
	for deadline := time.Now().Add(10 * time.Second); tap.count() < 6; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d time-exceeded errors at the client within 10 s, want 6; the director's counters:\n%s", tap.count(), directorCounters(t, l))
		}
	}
	// Every one of the 1,000 handled before the director stops (a frame still in
	// the ring then is never counted), and its errors, if any, seen at the client.
	waitDropped(t, l, map[string]float64{"ttl_exceeded": 1000})
	got := tap.stop()
	elapsed := time.Since(start)
	log := stopGVS(t, l, p)
	counts := reasonCounts(log)
	// Linux: 6 at once to a destination, then one a second for as long as the
	// director was at it.
	budget := 6 + int(elapsed/time.Second)
	if len(got) > budget {
		t.Errorf("%d time-exceeded errors for 1,000 TTL-1 packets sent in %v (seen for %v), want 6–%d", len(got), sent, elapsed, budget)
	}
	if counts["ttl_exceeded"] != 1000 {
		t.Errorf("ttl_exceeded counted %d, want 1000 (counters %v)", counts["ttl_exceeded"], counts)
	}
	t.Logf("%d time-exceeded errors for 1,000 TTL-1 packets sent in %v", len(got), sent)
}

// waitDropped waits (bounded) until dir1's metrics, served on metricsAddr, count at
// least want[reason] frames dropped for each reason. A test that reads the counters
// the workers log when they stop waits for this first: the workers count as they
// go, and the frames still in their rings when the director stops are never
// counted, so stopping it once the last frame sent has been seen elsewhere races
// with the others.
func waitDropped(t *testing.T, l *Lab, want map[string]float64) {
	t.Helper()
	counted := func() bool {
		body := dir1Metrics(t, l)
		for reason, n := range want {
			if !metricAtLeast(body, `gvs_drops_total{reason="`+reason+`"}`, n) {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(10 * time.Second); !counted(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("drops not counted within 10 s, want at least %v; the director's counters:\n%s", want, directorCounters(t, l))
		}
	}
}

// dir1Metrics returns dir1's metrics, served on metricsAddr.
func dir1Metrics(t *testing.T, l *Lab) string {
	t.Helper()
	b, err := l.HTTPFetch("dir1", "http://"+metricsAddr+"/metrics", 3*time.Second, 16<<20)
	if err != nil {
		t.Fatalf("scraping dir1's metrics: %v", err)
	}
	return string(b)
}

// directorCounters returns dir1's frame, drop and ICMP counters that are not zero,
// for a failure message.
func directorCounters(t *testing.T, l *Lab) string {
	t.Helper()
	var out []string
	for line := range strings.Lines(dir1Metrics(t, l)) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") || strings.HasSuffix(line, " 0") {
			continue
		}
		for _, series := range []string{"gvs_frames_", "gvs_drops_total", "gvs_icmp_", "gvs_link_"} {
			if strings.HasPrefix(line, series) {
				out = append(out, line)
			}
		}
	}
	return strings.Join(out, "\n")
}

// tapsCount is the number of frames the taps have kept so far.
func tapsCount(taps []*frameTap) int {
	n := 0
	for _, tap := range taps {
		n += tap.count()
	}
	return n
}

// count returns how many frames the tap has kept so far.
func (f *frameTap) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pkts)
}

// TestLiveIssue12SourceLimit: with source_conn_rate set, a burst of 300 SYNs from
// one (spoofed) /24 reaches the real servers only as far as its burst allows and
// is counted; a client of another /24 connects meanwhile as usual.
func TestLiveIssue12SourceLimit(t *testing.T) {
	spec := e2eSpec(t, DR)
	l := upIssue4(t, spec)
	p := runGVS(t, l, withDirectorKeys(t, l, "source_conn_rate = 5\nsource_conn_burst = 20\n"))
	client, _ := l.Host("client")
	dir1, _ := l.Host("dir1")
	var taps []*frameTap
	for _, rs := range l.hostsWith(RealServer) {
		taps = append(taps, tapFrames(t, l, rs.Name, func(p gopacket.Packet) bool {
			tcp := tcpOf(p)
			return tcp != nil && tcp.SYN && !tcp.ACK && tcp.SrcPort >= 30000 && tcp.SrcPort < 30300 && ethOf(p).SrcMAC.String() == dir1.MAC().String()
		}))
	}
	var frames [][]byte
	for i := range 300 {
		from := netip.AddrFrom4([4]byte{198, 18, 7, byte(1 + i%200)})
		frames = append(frames, synFrame12(t, client.MAC(), dir1.MAC(), from, l.VIP(), uint16(30000+i), 0, 64, nil))
	}
	start := time.Now()
	sendFrames(t, l, "client", 1, frames...)
	sent := time.Since(start)
	// The client's own /24 (198.18.0.0/24) is not limited by the flood.
	if _, err := l.HTTPGet("client", vipURL(l, false, "/"), 3*time.Second); err != nil {
		t.Errorf("a client of another /24 during the flood: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, func() bool { return tapsCount(taps) >= 20 }, "the burst on the real servers")
	fwd := 0
	for _, tap := range taps {
		fwd += len(tap.stop())
	}
	elapsed := time.Since(start)
	counts := reasonCounts(stopGVS(t, l, p))
	// The burst, and 5 a second for the time the frames took to arrive.
	most := 20 + int(5*sent.Seconds()) + 1
	if fwd < 20 || fwd > most {
		t.Errorf("%d of 300 SYNs from one /24 forwarded (sent in %v), want 20–%d", fwd, sent, most)
	}
	if counts["source_limit"]+uint64(fwd) < 300 {
		t.Errorf("source_limit counted %d with %d forwarded, want the 300 SYNs accounted for (counters %v)", counts["source_limit"], fwd, counts)
	}
	t.Logf("%d of 300 SYNs forwarded, %d counted source_limit, sent in %v, checked in %v", fwd, counts["source_limit"], sent, elapsed)
}
