package daemon

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/afpacket"
	"github.com/gvs-lb/gvs/dataplane/linktest"
)

// scrape fetches url and returns every sample by its series name, labels sorted
// ("name{a=\"1\",b=\"2\"}"), as the text exposition format writes them.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return samples
}

// series names a sample: series("m", "b", "2", "a", "1") is `m{a="1",b="2"}`.
func series(name string, kv ...string) string {
	if len(kv) == 0 {
		return name
	}
	var pairs []string
	for i := 0; i < len(kv); i += 2 {
		pairs = append(pairs, kv[i]+`="`+kv[i+1]+`"`)
	}
	sort.Strings(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}

func TestMetrics(t *testing.T) {
	ta := newTestAdmin(t)
	ta.ok("-A -t 198.18.0.100:80 -s rr")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.5 -g -w 2")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.6 -g")
	m := NewMetrics(ta.a)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	ta.a.estimate()
	ta.send(syns("198.18.0.100:80", 4)...)
	// A finished connection is inactive: SYN, ACK, FIN.
	fin := tcpPkt{client: ap("198.51.100.9:7000"), vip: ap("198.18.0.100:80"), syn: true}
	ta.send(fin)
	fin.syn, fin.ack = false, true
	ta.send(fin)
	fin.fin = true
	ta.send(fin)
	// Dropped: a VIP port without a service.
	ta.send(tcpPkt{client: ap("198.51.100.9:7001"), vip: ap("198.18.0.100:81"), syn: true})
	ta.a.estimate()
	svc := "TCP/198.18.0.100:80"
	rs5, rs6 := "198.18.0.5:80", "198.18.0.6:80"
	// 5 connections in one 2 s period, averaged with weight 1/4.
	cps := series("gvs_service_estimated_connections_per_second", "service", svc)
	if got := scrape(t, srv.URL)[cps]; got != 0.625 {
		t.Errorf("%s = %v, want 0.625", cps, got)
	}
	ta.ok("-Z") // restarts the estimates, but must not touch the exported counters

	got := scrape(t, srv.URL)
	for _, tc := range []struct {
		series string
		want   float64
	}{
		{series("gvs_service_connections_total", "service", svc), 5},
		{series("gvs_service_packets_total", "service", svc, "direction", "in"), 7},
		{series("gvs_service_packets_total", "service", svc, "direction", "out"), 0},
		{series("gvs_service_bytes_total", "service", svc, "direction", "in"), 280},
		{series("gvs_real_server_weight", "service", svc, "server", rs5), 2},
		{series("gvs_real_server_weight", "service", svc, "server", rs6), 1},
		{series("gvs_real_server_active_connections", "service", svc, "server", rs5) + "+" +
			series("gvs_real_server_active_connections", "service", svc, "server", rs6), 4},
		{series("gvs_real_server_inactive_connections", "service", svc, "server", rs5) + "+" +
			series("gvs_real_server_inactive_connections", "service", svc, "server", rs6), 1},
		{series("gvs_real_server_connections_total", "service", svc, "server", rs5) + "+" +
			series("gvs_real_server_connections_total", "service", svc, "server", rs6), 5},
		{series("gvs_real_server_persistent_connections", "service", svc, "server", rs5), 0},
		{series("gvs_real_server_overloaded", "service", svc, "server", rs5), 0},
		{cps, 0},
		{series("gvs_frames_received_total"), 8},
		{series("gvs_frames_forwarded_total"), 7},
		{series("gvs_drops_total", "reason", "no_service"), 1},
		{series("gvs_drops_total", "reason", "not_syn"), 0},
		{series("gvs_malformed_total", "reason", "ipv4_bad_checksum"), 0},
		{series("gvs_conntrack_entries"), 5},
		{series("gvs_conntrack_max"), 4096},
	} {
		var sum float64
		for _, s := range strings.Split(tc.series, "+") {
			v, ok := got[s]
			if !ok {
				t.Errorf("no series %s", s)
			}
			sum += v
		}
		if sum != tc.want {
			t.Errorf("%s = %v, want %v", tc.series, sum, tc.want)
		}
	}
	if _, ok := got["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}

	// Health and VRRP are pushed by the daemon.
	m.SetHealth(svc, rs5, true)
	m.SetHealth(svc, rs5, true)
	m.SetHealth(svc, rs5, false)
	m.SetHealth(svc, rs6, true)
	m.SetVRRPState("VI_1", "BACKUP")
	m.SetVRRPState("VI_1", "MASTER")
	m.SetVRRPState("VI_1", "MASTER")
	got = scrape(t, srv.URL)
	for _, tc := range []struct {
		series string
		want   float64
	}{
		{series("gvs_real_server_up", "service", svc, "server", rs5), 0},
		{series("gvs_real_server_up", "service", svc, "server", rs6), 1},
		{series("gvs_real_server_health_transitions_total", "service", svc, "server", rs5, "state", "down"), 1},
		{series("gvs_vrrp_state", "vrrp_instance", "VI_1", "state", "MASTER"), 1},
		{series("gvs_vrrp_state", "vrrp_instance", "VI_1", "state", "BACKUP"), 0},
		{series("gvs_vrrp_state", "vrrp_instance", "VI_1", "state", "FAULT"), 0},
		{series("gvs_vrrp_transitions_total", "vrrp_instance", "VI_1", "state", "MASTER"), 1},
	} {
		if v, ok := got[tc.series]; !ok || v != tc.want {
			t.Errorf("%s = %v (present %v), want %v", tc.series, v, ok, tc.want)
		}
	}
	if _, ok := got[series("gvs_real_server_health_transitions_total", "service", svc, "server", rs6, "state", "up")]; ok {
		t.Error("a first health result counted as a transition")
	}
	m.ForgetHealth(svc, rs6)
	if _, ok := scrape(t, srv.URL)[series("gvs_real_server_up", "service", svc, "server", rs6)]; ok {
		t.Error("ForgetHealth left the series")
	}

	// A deleted service's series go away with it.
	ta.ok("-D -t 198.18.0.100:80")
	if _, ok := scrape(t, srv.URL)[series("gvs_service_connections_total", "service", svc)]; ok {
		t.Error("series of a deleted service still exported")
	}
}

func TestServeMetrics(t *testing.T) {
	ta := newTestAdmin(t)
	m := NewMetrics(ta.a)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, ln) }()
	got := scrape(t, "http://"+ln.Addr().String()+"/metrics")
	if got["gvs_conntrack_max"] != 4096 {
		t.Errorf("gvs_conntrack_max = %v", got["gvs_conntrack_max"])
	}
	http.DefaultClient.CloseIdleConnections()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve = %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after cancel")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/metrics"); err == nil {
		t.Error("still serving after shutdown")
	}
	if err := m.ServeMetrics(context.Background(), "256.0.0.1:bad"); err == nil {
		t.Error("ServeMetrics on a bad address succeeded")
	}
}

// statsLink is an in-memory link with the counters of an AF_PACKET ring.
type statsLink struct {
	*linktest.Channel
	st afpacket.Stats
}

func (l *statsLink) Name() string                   { return "eth9" }
func (l *statsLink) Stats() (afpacket.Stats, error) { return l.st, nil }

// TestMetricsLinkStats checks that a link's counters are exported per link and
// worker, each where the frame was lost.
func TestMetricsLinkStats(t *testing.T) {
	sl := &statsLink{Channel: newChannel(), st: afpacket.Stats{
		Packets: 100, Drops: 3, RXFrames: 97, RXCopied: 2, RXTruncated: 4, RXBad: 5,
		LinkErrors: 6, TXFrames: 90, TXBusy: 7, TXDrops: 8,
	}}
	ta := newTestDirector(t, directorConf, func(d *Deps) {
		open := d.OpenLinks
		d.OpenLinks = func(ifi Interface, f *afpacket.Filter, o PacketOptions) ([]dataplane.Link, error) {
			links, err := open(ifi, f, o)
			return append(links, sl), err
		}
	})
	srv := httptest.NewServer(NewMetrics(ta.a).Handler())
	defer srv.Close()
	got := scrape(t, srv.URL)
	for _, tc := range []struct {
		series string
		want   float64
	}{
		{series("gvs_link_frames_total", "link", "eth9", "worker", "1", "direction", "rx"), 97},
		{series("gvs_link_frames_total", "link", "eth9", "worker", "1", "direction", "tx"), 90},
		{series("gvs_link_drops_total", "link", "eth9", "worker", "1", "reason", "ring_full"), 3},
		{series("gvs_link_drops_total", "link", "eth9", "worker", "1", "reason", "rx_truncated"), 4},
		{series("gvs_link_drops_total", "link", "eth9", "worker", "1", "reason", "rx_bad"), 5},
		{series("gvs_link_drops_total", "link", "eth9", "worker", "1", "reason", "tx"), 8},
		{series("gvs_link_tx_busy_total", "link", "eth9", "worker", "1"), 7},
		{series("gvs_link_rx_copied_total", "link", "eth9", "worker", "1"), 2},
		{series("gvs_link_errors_total", "link", "eth9", "worker", "1"), 6},
	} {
		if v, ok := got[tc.series]; !ok || v != tc.want {
			t.Errorf("%s = %v (present %v), want %v", tc.series, v, ok, tc.want)
		}
	}
	for s := range got {
		if strings.HasPrefix(s, "gvs_link_") && strings.Contains(s, `worker="0"`) {
			t.Errorf("series %s for a link without counters", s)
		}
	}
}
