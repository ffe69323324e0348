package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if !math.IsNaN(Median(nil)) {
		t.Errorf("Median(nil) should be NaN")
	}
}

// percentileRef is the nearest-rank definition written out: the smallest value v
// with at least p% of the values ≤ v.
func percentileRef(sorted []float64, p float64) float64 {
	for _, v := range sorted {
		n := 0
		for _, w := range sorted {
			if w <= v {
				n++
			}
		}
		if float64(n)*100 >= p*float64(len(sorted))-1e-6 {
			return v
		}
	}
	return math.NaN()
}

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	thousand := make([]float64, 1000)
	for i := range thousand {
		thousand[i] = float64(i + 1)
	}
	for _, c := range []struct {
		name string
		in   []float64
		p    float64
		want float64
	}{
		{"one", []float64{7}, 99.9, 7},
		{"median of 100", hundred, 50, 50},
		{"p99 of 100", hundred, 99, 99},
		{"p99.9 of 100 is the maximum", hundred, 99.9, 100},
		{"p99.9 of 1000", thousand, 99.9, 999},
		{"p50 of two", []float64{1, 2}, 50, 1},
		{"p100", []float64{1, 2, 3}, 100, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Percentile(c.in, c.p); got != c.want {
				t.Errorf("Percentile(p%v) = %v, want %v", c.p, got, c.want)
			}
			if ref := percentileRef(c.in, c.p); ref != c.want {
				t.Errorf("reference gives %v, want %v", ref, c.want)
			}
		})
	}
	// Against the reference on uneven sets.
	for n := 1; n <= 40; n++ {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(i*i%17) + float64(i)/100
		}
		sortFloats(v)
		for _, p := range []float64{1, 25, 50, 90, 99, 99.9} {
			if got, want := Percentile(v, p), percentileRef(v, p); got != want {
				t.Errorf("n=%d p%v: got %v, reference %v", n, p, got, want)
			}
		}
	}
	for _, p := range []float64{0, -1, 101} {
		if !math.IsNaN(Percentile([]float64{1}, p)) {
			t.Errorf("Percentile(p%v) should be NaN", p)
		}
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("Percentile of nothing should be NaN")
	}
}

func sortFloats(v []float64) {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
}

// sample builds a LiveSample of one round: UDP delivered frames in one second, and
// HTTP figures (wrk -c1 p50, random keep-alive p50, wrk -c32 req/s) when reqs > 0.
func sample(round int, pinned bool, series string, delivered uint64, c1p50, rkp50, reqs float64) LiveSample {
	path, _, _ := strings.Cut(series, "-")
	s := LiveSample{Round: round, Pinned: pinned, Path: path, Series: series,
		UDP: &UDPSample{Delivered: delivered, Sent: delivered, Elapsed: time.Second}}
	if reqs > 0 {
		s.HTTP = &HTTPSample{
			Serial:    &WRKResult{Conns: 1, P50: c1p50},
			KeepAlive: &WRKResult{Conns: 32, Requests: reqs},
			Random:    []LatencyResult{{Mode: LatKeepAlive, Count: 100, P50: rkp50}},
		}
	}
	return s
}

// near reports whether got and want hold the same values within 1e-9.
func near(got, want []float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			return false
		}
	}
	return true
}

func TestLiveWithinRounds(t *testing.T) {
	r := &LiveResult{Options: DefaultLive(), Samples: []LiveSample{
		sample(1, true, PathDirect, 500_000, 30, 100, 40_000),
		sample(1, true, PathNFT, 250_000, 50, 120, 30_000),
		sample(1, true, PathHop, 400_000, 40, 110, 36_000),
		sample(1, true, PathGVS, 400_000, 60, 130, 34_200),
		// Round 2 drifted down 40%: the within-round ratios stay.
		sample(2, true, PathDirect, 300_000, 50, 150, 24_000),
		sample(2, true, PathNFT, 150_000, 70, 170, 18_000),
		sample(2, true, PathHop, 240_000, 60, 160, 21_600),
		sample(2, true, PathGVS, 240_000, 90, 190, 20_520),
		// Round 3 lost its gvs slot.
		sample(3, true, PathDirect, 400_000, 40, 100, 30_000),
		sample(3, true, PathNFT, 250_000, 60, 100, 20_000),
		sample(1, false, PathGVS, 100_000, 0, 0, 0),
	}}
	if got := r.MedianOf(metric("udp_mpps"), PathDirect, true); got != 0.4 {
		t.Errorf("median direct = %v, want 0.4", got)
	}
	if got := r.RoundRatios("udp_mpps", PathGVS, PathNFT, true); !near(got, []float64{1.6, 1.6}) {
		t.Errorf("gvs/nft per round = %v, want [1.6 1.6] (round 3 has no gvs)", got)
	}
	if got := r.RoundRatios("wrk_cN_req_s", PathGVS, PathHop, true); !near(got, []float64{0.95, 0.95}) {
		t.Errorf("gvs/hop req/s per round = %v, want [0.95 0.95]", got)
	}
	if got := r.Within(metric("wrk_c1_p50_us"), PathGVS, PathDirect, true, Diff); !near(got, []float64{30, 40}) {
		t.Errorf("gvs−direct c1 p50 per round = %v, want [30 40]", got)
	}
	if got := r.RoundRatios("udp_mpps", PathGVS, PathNFT, false); len(got) != 0 {
		t.Errorf("unpinned has no nft: got %v", got)
	}
	r.Summarize()
	if got := r.Summary.Medians["pinned"][PathGVS]["random_keepalive_p50_us"]; got != 160 {
		t.Errorf("median random keep-alive p50 of gvs = %v, want 160", got)
	}
	if _, ok := r.Summary.Medians["unpinned"][PathGVS]["wrk_c1_p50_us"]; ok {
		t.Error("the unpinned gvs sample has no HTTP: no median expected")
	}
	want := Comparison{Metric: "random_keepalive_p50_us", Num: PathGVS, Den: PathDirect, Op: "diff", PerRound: []float64{30, 40}, Median: 35}
	found := false
	for _, c := range r.Summary.Comparisons["pinned"] {
		if c.Metric == want.Metric && c.Num == want.Num && c.Den == want.Den {
			found = true
			if !reflect.DeepEqual(want, c) {
				t.Errorf("comparison %+v, want %+v", c, want)
			}
		}
	}
	if !found {
		t.Errorf("no %s %s−%s comparison in %+v", want.Metric, want.Num, want.Den, r.Summary.Comparisons["pinned"])
	}
	reportHas(t, r,
		"udp_mpps                 gvs/nft: [1.60 1.60]  median 1.60",
		"wrk_cN_req_s             gvs/hop: [0.95 0.95]  median 0.95",
		"wrk_c1_p50_us            gvs−direct: [30 40]  median 35 µs",
	)
}

// reportHas checks that r's text report contains each of lines.
func reportHas(t *testing.T, r *LiveResult, lines ...string) {
	t.Helper()
	var b bytes.Buffer
	r.WriteText(&b)
	for _, line := range lines {
		if !strings.Contains(b.String(), line) {
			t.Errorf("report lacks %q:\n%s", line, b.String())
		}
	}
}

// busyRow gives s's wrk -c32 runs the CPUs' busy shares of a row TestLiveApart prints.
func busyRow(s LiveSample) LiveSample {
	s.HTTP.KeepAlive.CPUBusy = []float64{0.91, 0.8}
	s.HTTP.KeepAliveApart.CPUBusy = []float64{0.55, 1}
	return s
}

// TestLiveApart: the second wrk -c32 run, with the real servers off gvs's CPU, is
// compared within rounds on its own, beside the first, and printed in its column.
func TestLiveApart(t *testing.T) {
	apart := func(s LiveSample, reqs float64) LiveSample {
		s.HTTP.KeepAliveApart = &WRKResult{Conns: 32, Requests: reqs}
		return s
	}
	r := &LiveResult{Options: DefaultLive(), Samples: []LiveSample{
		apart(sample(1, true, PathDirect, 500_000, 30, 100, 40_000), 38_000),
		apart(sample(1, true, PathHop, 400_000, 40, 110, 39_000), 33_000),
		busyRow(apart(sample(1, true, PathGVS, 400_000, 60, 130, 26_000), 36_300)),
		apart(sample(2, true, PathHop, 400_000, 40, 110, 30_000), 20_000),
		apart(sample(2, true, PathGVS, 400_000, 60, 130, 21_000), 24_000),
		// No apart run (unpinned, or --no-apart): no apart figure, the rest stays.
		sample(3, true, PathHop, 400_000, 40, 110, 30_000),
		sample(3, true, PathGVS, 400_000, 60, 130, 15_000),
	}}
	r.Options.RPS = true
	if got := r.RoundRatios("wrk_cN_apart_req_s", PathGVS, PathHop, true); !near(got, []float64{1.1, 1.2}) {
		t.Errorf("gvs/hop apart per round = %v, want [1.1 1.2] (round 3 has none)", got)
	}
	if got := r.RoundRatios("wrk_cN_req_s", PathGVS, PathHop, true); !near(got, []float64{2.0 / 3, 0.7, 0.5}) {
		t.Errorf("gvs/hop per round = %v, want [0.667 0.7 0.5]", got)
	}
	r.Summarize()
	if got := r.Summary.Medians["pinned"][PathGVS]["wrk_cN_apart_req_s"]; got != 30_150 {
		t.Errorf("median apart req/s of gvs = %v, want 30150", got)
	}
	reportHas(t, r,
		"wrk_cN_apart_req_s       gvs/hop: [1.10 1.20]  median 1.15",
		"wrk_cN_apart_req_s       hop/direct: [0.87]  median 0.87",
		"wrk_cN_req_s             gvs/hop: [0.67 0.70 0.50]  median 0.67",
		"1     gvs                 60        0      130        0        0        -        -        -      100     26000     36300       0  0.91/0.80  0.55/1.00",
		"3     gvs                 60        0      130        0        0        -        -        -      100     15000         -       0",
		"gvs              0.400    0.00        -        -         -         -       60        0      130        0        0     21000     30150",
		"c32 apart = the same with the real servers on CPU 1 and the director's receive work on CPU 0 (RPS)",
		"== pinned (senders and HTTP clients on CPU 1: the director's receive work on CPU 0 (RPS); gvs run on CPU 0)",
	)
}

// TestLiveSeveralBackends: with --io all every gvs series is compared with the
// kernel paths on its own.
func TestLiveSeveralBackends(t *testing.T) {
	r := &LiveResult{Samples: []LiveSample{
		sample(1, true, PathNFT, 200_000, 50, 100, 20_000),
		sample(1, true, "gvs-afpacket", 300_000, 60, 100, 30_000),
		sample(1, true, "gvs-afxdp", 220_000, 60, 100, 30_000),
	}}
	r.Summarize()
	got := map[string]float64{}
	for _, c := range r.Summary.Comparisons["pinned"] {
		if c.Metric == "udp_mpps" && c.Den == PathNFT {
			got[c.Num] = c.Median
		}
	}
	if math.Abs(got["gvs-afpacket"]-1.5) > 1e-9 || math.Abs(got["gvs-afxdp"]-1.1) > 1e-9 || len(got) != 2 {
		t.Errorf("gvs-*/nft = %v, want afpacket 1.5, afxdp 1.1", got)
	}
}

func TestLiveJSON(t *testing.T) {
	rf := 3.0
	s := sample(1, true, PathGVS, 400_000, 60, 130, 34_200)
	s.IO = IOAFPacket
	s.UDP.RingFull = &rf
	s.UDP.CPUPerPacket = 1500
	s.UDP.KernelDrops = map[string]uint64{"dir1:rx": 0}
	s.Sat = &Saturation{Rate: 250_000, Limit: "loss", Steps: []SatStep{{Target: 250_000, Sent: 250_000, Delivered: 250_000, Elapsed: time.Second}}}
	r := &LiveResult{Options: DefaultLive(), Samples: []LiveSample{s, sample(1, true, PathDirect, 500_000, 30, 100, 40_000)}, Notes: []string{"AF_XDP not measured"}}
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	get := func(path ...any) any {
		var v any = m
		for _, k := range path {
			switch k := k.(type) {
			case string:
				o, _ := v.(map[string]any)
				v = o[k]
			case int:
				a, _ := v.([]any)
				if k >= len(a) {
					return nil
				}
				v = a[k]
			}
		}
		return v
	}
	for _, c := range []struct {
		path []any
		want any
	}{
		{[]any{"samples", 0, "series"}, "gvs"},
		{[]any{"samples", 0, "io"}, "afpacket"},
		{[]any{"samples", 0, "udp", "delivered"}, 400000.0},
		{[]any{"samples", 0, "udp", "ring_full"}, 3.0},
		{[]any{"samples", 0, "udp", "gvs_cpu_ns_per_packet"}, 1500.0},
		{[]any{"samples", 0, "saturation", "rate_pps"}, 250000.0},
		{[]any{"samples", 0, "http", "wrk_c1", "latency_p50_us"}, 60.0},
		{[]any{"samples", 0, "http", "wrk_cN", "requests_per_s"}, 34200.0},
		{[]any{"samples", 0, "http", "random", 0, "p50_us"}, 130.0},
		{[]any{"samples", 1, "udp", "ring_full"}, nil}, // a kernel path has no ring
		{[]any{"summary", "medians", "pinned", "gvs", "saturation_kpps"}, 250.0},
		{[]any{"summary", "comparisons", "pinned", 0, "median"}, 30.0}, // wrk_c1_p50 gvs−direct
		{[]any{"options", "rounds"}, 3.0},
		{[]any{"notes", 0}, "AF_XDP not measured"},
	} {
		if got := get(c.path...); got != c.want {
			t.Errorf("%v = %#v, want %#v", c.path, got, c.want)
		}
	}
	// And back: the figures survive a round trip.
	var back LiveResult
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Samples, back.Samples) {
		t.Errorf("samples after a round trip:\n got %+v\nwant %+v", back.Samples, r.Samples)
	}
	// A comparison without a median writes null, not a JSON error.
	if _, err := json.Marshal(Comparison{Median: math.NaN()}); err != nil {
		t.Errorf("NaN median: %v", err)
	}
}

func TestSatRate(t *testing.T) {
	st := func(target float64, sent, delivered uint64) SatStep {
		return SatStep{Target: target, Sent: sent, Delivered: delivered, Elapsed: time.Second}
	}
	for _, c := range []struct {
		name  string
		steps []SatStep
		want  float64
	}{
		{"none", nil, 0},
		{"all clean: the best offered", []SatStep{st(100, 100, 100), st(200, 190, 190)}, 190},
		{"stops below the first loss", []SatStep{st(100, 100, 100), st(200, 200, 199), st(150, 150, 150)}, 150},
		// A clean step above a lossy one does not count: loss at 200 means 0 loss is
		// not guaranteed below 300.
		{"clean above a loss ignored", []SatStep{st(100, 100, 100), st(200, 200, 150), st(300, 300, 300)}, 100},
		{"every step lossy", []SatStep{st(100, 100, 99)}, 0},
		{"delivered more than sent (other traffic) is no loss", []SatStep{st(100, 100, 101)}, 100},
		{"a sender-limited step does not count", []SatStep{st(100, 100, 100), {Target: 200, Sent: 150, Delivered: 150, Elapsed: time.Second, Behind: 400 * time.Millisecond}}, 100},
		// Time behind schedule is not sending time: 100 frames in 0.8 s on schedule.
		{"offered over the time on schedule", []SatStep{{Target: 200, Sent: 100, Delivered: 100, Elapsed: time.Second, Behind: 200 * time.Millisecond}}, 125},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := satRate(c.steps); got != c.want {
				t.Errorf("satRate = %v, want %v", got, c.want)
			}
		})
	}
}

func TestSaturationString(t *testing.T) {
	for _, c := range []struct {
		s    Saturation
		want string
	}{
		{Saturation{Rate: 250_000, Limit: "loss"}, "250 (loss)"},
		{Saturation{Rate: 404_200, Limit: "sender"}, "≥404 (sender)"},
		{Saturation{Rate: 404_200, Limit: "steps"}, "≥404 (steps)"},
		{Saturation{Limit: "loss"}, "0 (loss)"},
	} {
		if got := c.s.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.s, got, c.want)
		}
	}
}

func TestBackends(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{{"", []string{"auto"}}, {"auto", []string{"auto"}}, {"afpacket", []string{"afpacket"}}, {"afxdp", []string{"afxdp"}}, {"all", []string{"afpacket", "afxdp"}}} {
		got, err := Backends(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Backends(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	if _, err := Backends("dpdk"); err == nil {
		t.Error("Backends(dpdk) should fail")
	}
}

const wrkOut = `Running 3s test @ http://198.18.0.100:80/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  310.22us   9.80ms   80.00%
    Req/Sec    20.95k     1.01k   22.36k    73.33%
  Latency Distribution
     50%  1.48ms
     75%  1.62ms
     90%  1.80ms
     99%    2.50ms
  62519 requests in 3.00s, 8.35MB read
  Socket errors: connect 2, read 1, write 0, timeout 0
  Non-2xx or 3xx responses: 3
Requests/sec:  20835.42
Transfer/sec:      2.78MB
`

// wrkC1Out is wrk -c1 --latency against a real server: microsecond latencies.
const wrkC1Out = `Running 3s test @ http://198.18.0.5:80/
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    41.07us   18.29us   1.02ms   97.12%
    Req/Sec    22.84k   801.13    23.90k    70.00%
  Latency Distribution
     50%   38.00us
     75%   41.00us
     90%   45.00us
     99%  120.00us
  68193 requests in 3.00s, 7.93MB read
Requests/sec:  22730.54
Transfer/sec:      2.64MB
`

func TestParseWRK(t *testing.T) {
	for _, c := range []struct {
		name, out string
		want      WRKResult
	}{
		{"c32 in ms, errors", wrkOut, WRKResult{Requests: 20835.42, Avg: 1520, P50: 1480, P99: 2500, Errors: 6}},
		{"c1 in µs", wrkC1Out, WRKResult{Requests: 22730.54, Avg: 41.07, P50: 38, P99: 120}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := ParseWRK(c.out)
			if err != nil {
				t.Fatal(err)
			}
			w := c.want
			if math.Abs(r.Avg-w.Avg) > 1e-6 || r.P50 != w.P50 || r.P99 != w.P99 || r.Requests != w.Requests || r.Errors != w.Errors {
				t.Errorf("got %+v, want %+v", r, w)
			}
		})
	}
	if _, err := ParseWRK("unable to connect"); err == nil {
		t.Error("output without Requests/sec should fail")
	}
	if _, err := ParseWRK("     50%   12.00xs\nRequests/sec: 1\n"); err == nil {
		t.Error("an unknown unit should fail")
	}
	for in, want := range map[string]float64{"512.00us": 512, "1.20ms": 1200, "2.00s": 2e6, "1.00m": 60e6} {
		if got, err := parseWRKDuration(in); err != nil || math.Abs(got-want) > 1e-6 {
			t.Errorf("parseWRKDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestParseNetDev(t *testing.T) {
	text := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0: 9000000  150000    0   12    0     0          0         0     4200      70    0    5    0     0       0          0
`
	got, err := parseNetDev(text, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if want := (netDevStats{RXPackets: 150000, RXDrop: 12, TXPackets: 70, TXDrop: 5}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := parseNetDev(text, "eth1"); err == nil {
		t.Error("missing interface should fail")
	}
	if _, err := parseNetDev("eth0: 1 2 3\n", "eth0"); err == nil {
		t.Error("short line should fail")
	}
}

func TestParseProcStat(t *testing.T) {
	text := "cpu  100 5 50 1000 7 3 2 1 0 0\ncpu0 50 2 25 500 3 1 1 0 0 0\nintr 1\n"
	got, _, err := parseProcStat(text)
	if err != nil || got != 100+5+50+3+2+1 {
		t.Errorf("busy = %d, %v; want %d (idle and iowait excluded)", got, err, 100+5+50+3+2+1)
	}
	if _, _, err := parseProcStat("intr 1\n"); err == nil {
		t.Error("no cpu line should fail")
	}
}

// TestProcStatPerCPU: each cpuN line's busy ticks land at N, and two readings make
// each CPU's busy share of the time between them.
func TestProcStatPerCPU(t *testing.T) {
	before := "cpu  300 0 100 2000 0 0 0 0 0 0\ncpu0 100 0 50 1000 0 0 0 0 0 0\ncpu1 200 0 50 1000 0 0 0 0 0 0\n"
	after := "cpu  550 0 200 2150 9 0 0 0 0 0\ncpu0 150 0 50 1150 9 0 0 0 0 0\ncpu1 400 0 150 1000 0 0 0 0 0 0\n"
	_, b0, err := parseProcStat(before)
	if err != nil || !slices.Equal(b0, []uint64{150, 250}) {
		t.Fatalf("per CPU %v, %v; want [150 250]", b0, err)
	}
	busy, b1, err := parseProcStat(after)
	if err != nil || busy != 750 {
		t.Fatalf("busy %d, %v; want 750", busy, err)
	}
	// 3 s: CPU 0 busy 50 ticks of 300 (idle and iowait not busy), CPU 1 all 300.
	if got := cpuBusy(b0, b1, 3*time.Second); !near(got, []float64{50.0 / 300, 1}) {
		t.Errorf("busy shares %v, want [0.167 1]", got)
	}
	if got := fmtBusy(cpuBusy(b0, b1, 3*time.Second)); got != "0.17/1.00" {
		t.Errorf("fmtBusy %q", got)
	}
	if cpuBusy(b0, b1[:1], time.Second) != nil || cpuBusy(b0, b1, 0) != nil || fmtBusy(nil) != "-" {
		t.Error("readings of different lengths or no time must give no shares")
	}
	if _, _, err := parseProcStat("cpu  1 2 3 4 5 6 7 8\ncpuX 1 2 3 4 5 6 7 8\n"); err == nil {
		t.Error("a cpu line with no number should fail")
	}
}

const metricsText = `# HELP gvs_link_drops_total Frames a data-path link lost.
# TYPE gvs_link_drops_total counter
gvs_link_drops_total{link="eth0",reason="ring_full",worker="0"} 7
gvs_link_drops_total{link="eth0",reason="tx",worker="0"} 1
gvs_link_frames_total{direction="rx",link="eth0",worker="0"} 1e+06
gvs_drops_total{reason="not_ip"} 4
gvs_service_connections_total{service="tcp 198.18.0.100:80"} 9
`

func TestParseMetrics(t *testing.T) {
	got, err := ParseMetrics(metricsText, "gvs_link_", "gvs_drops_total")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		`gvs_link_drops_total{link="eth0",reason="ring_full",worker="0"}`: 7,
		`gvs_link_drops_total{link="eth0",reason="tx",worker="0"}`:        1,
		`gvs_link_frames_total{direction="rx",link="eth0",worker="0"}`:    1e6,
		`gvs_drops_total{reason="not_ip"}`:                                4,
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := ParseMetrics("gvs_link_x{a=\"b\"}\n", "gvs_link_"); err == nil {
		t.Error("a series without a value should fail")
	}
	if got, err := ParseMetrics(`gvs_link_x{a="b c"} 2`, "gvs_link_"); err != nil || got[`gvs_link_x{a="b c"}`] != 2 {
		t.Errorf("a label value with a space: %v, %v", got, err)
	}
}

func TestRingFull(t *testing.T) {
	for s, want := range map[string]bool{
		`gvs_link_drops_total{link="eth0",reason="ring_full",worker="0"}`: true,
		`gvs_link_ring_full_total{link="eth0"}`:                           true,
		`gvs_link_kernel_drops_total{link="eth0"}`:                        true,
		`gvs_link_drops_total{link="eth0",reason="tx",worker="0"}`:        false,
		`gvs_link_frames_total{direction="rx"}`:                           false,
		`gvs_drops_total{reason="ring_full"}`:                             false, // not a link counter
	} {
		if got := RingFullSeries(s); got != want {
			t.Errorf("RingFullSeries(%s) = %v, want %v", s, got, want)
		}
	}
	a := map[string]float64{`gvs_link_drops_total{reason="ring_full",worker="0"}`: 5, `gvs_link_drops_total{reason="ring_full",worker="1"}`: 1, `gvs_drops_total{reason="not_ip"}`: 4}
	b := map[string]float64{`gvs_link_drops_total{reason="ring_full",worker="0"}`: 9, `gvs_link_drops_total{reason="ring_full",worker="1"}`: 2, `gvs_drops_total{reason="not_ip"}`: 4}
	d, ring := metricDeltas(a, b)
	if ring == nil || *ring != 5 {
		t.Errorf("ring full = %v, want 5 (4 + 1 over the workers)", ring)
	}
	if len(d) != 2 || d[`gvs_link_drops_total{reason="ring_full",worker="0"}`] != 4 {
		t.Errorf("deltas = %v, want the two that moved", d)
	}
	if _, ring := metricDeltas(nil, map[string]float64{`gvs_drops_total{reason="not_ip"}`: 1}); ring != nil {
		t.Errorf("without gvs_link_* series ring full must be unknown (nil), got %v", *ring)
	}
}

func TestPerWorker(t *testing.T) {
	d := map[string]float64{
		`gvs_link_frames_total{direction="rx",link="eth0",worker="1"}`:    300,
		`gvs_link_frames_total{direction="rx",link="eth1",worker="1"}`:    5,
		`gvs_link_frames_total{direction="rx",link="eth0",worker="0"}`:    200,
		`gvs_link_frames_total{direction="tx",link="eth0",worker="0"}`:    199,
		`gvs_link_drops_total{link="eth0",reason="ring_full",worker="0"}`: 7,
	}
	if got, want := perWorker(d), []uint64{200, 305}; !reflect.DeepEqual(got, want) {
		t.Errorf("perWorker = %v, want %v (rx only, summed over links)", got, want)
	}
	if got := perWorker(map[string]float64{`gvs_drops_total{reason="not_ip"}`: 1}); got != nil {
		t.Errorf("no link series: %v, want nil", got)
	}
}

func TestPaceFrames(t *testing.T) {
	m1, _ := net.ParseMAC("02:00:00:00:00:05")
	m2, _ := net.ParseMAC("02:00:00:00:00:06")
	src, _ := net.ParseMAC("02:00:00:00:00:02")
	o := PaceOptions{SrcMAC: src, DstMACs: []net.HardwareAddr{m1, m2}, Src: netip.MustParseAddr("198.18.0.2"),
		Dst: netip.MustParseAddr("198.18.0.100"), Port: 53, Flows: 3}
	frames, err := paceFrames(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 6 {
		t.Fatalf("%d frames, want 3 flows × 2 MACs", len(frames))
	}
	for i, f := range frames {
		if len(f) != 60 {
			t.Errorf("frame %d: %d bytes, want 60", i, len(f))
		}
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		udp, _ := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
		if eth == nil || ip == nil || udp == nil {
			t.Fatalf("frame %d does not decode: %v", i, p)
		}
		if want := o.DstMACs[i%2]; eth.DstMAC.String() != want.String() {
			t.Errorf("frame %d to %v, want %v", i, eth.DstMAC, want)
		}
		if int(udp.SrcPort) != 1024+i/2 || udp.DstPort != 53 || ip.DstIP.String() != "198.18.0.100" || ip.TTL != 64 {
			t.Errorf("frame %d: %v:%d → %v:%d ttl %d", i, ip.SrcIP, udp.SrcPort, ip.DstIP, udp.DstPort, ip.TTL)
		}
		// Checksums: the IPv4 header and the UDP datagram (with its pseudo-header) verify.
		if sum := onesSum(f[14:34], 0); sum != 0xffff {
			t.Errorf("frame %d: IPv4 header sum %#x, want 0xffff", i, sum)
		}
		pseudo := append(append(append([]byte{}, f[26:34]...), 0, 17), f[38:40]...)
		if sum := onesSum(f[34:], onesSum(pseudo, 0)); sum != 0xffff {
			t.Errorf("frame %d: UDP sum %#x, want 0xffff", i, sum)
		}
	}
	for _, bad := range []PaceOptions{{Src: o.Src, Dst: o.Dst, Flows: 1}, {DstMACs: o.DstMACs, Src: netip.MustParseAddr("2001:db8::1"), Dst: o.Dst, Flows: 1}, {DstMACs: o.DstMACs, Src: o.Src, Dst: o.Dst}} {
		if _, err := paceFrames(bad); err == nil {
			t.Errorf("paceFrames(%+v) should fail", bad)
		}
	}
}

// onesSum is RFC 1071's one's complement sum, written plainly.
func onesSum(b []byte, initial uint16) uint16 {
	s := uint32(initial)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

func TestPaceDue(t *testing.T) {
	for _, c := range []struct {
		rate    float64
		elapsed time.Duration
		count   uint64
		want    uint64
	}{
		{100_000, time.Millisecond, 1000, 100},
		{100_000, time.Second, 1000, 1000}, // capped at count
		{100_000, 0, 1000, 0},
		{0, time.Second, 1000, 0},
		{300_000, 50 * time.Microsecond, 1 << 40, 15},
	} {
		if got := paceDue(c.rate, c.elapsed, c.count); got != c.want {
			t.Errorf("paceDue(%v, %v, %d) = %d, want %d", c.rate, c.elapsed, c.count, got, c.want)
		}
	}
}

// latencyServer is an HTTP server on loopback that counts the connections it
// accepted.
func latencyServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("rs1\n"))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestLatencyClient(t *testing.T) {
	for _, c := range []struct {
		mode      string
		wantConns int64
	}{
		{LatKeepAlive, 1}, // the warm-up's connection carries every request
		{LatFresh, 21},    // one per request, the warm-up's included
	} {
		t.Run(c.mode, func(t *testing.T) {
			srv, conns := latencyServer(t)
			r, err := LatencyClient(context.Background(), LatencyOptions{URL: srv.URL + "/", Mode: c.mode, Requests: 20, Gap: 10 * time.Microsecond, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if r.Count != 20 || r.Errors != 0 || r.Mode != c.mode {
				t.Errorf("got %+v, want 20 answered, 0 errors", r)
			}
			if !(r.P50 > 0 && r.P50 <= r.P99 && r.P99 <= r.P999 && r.P999 <= r.Max) {
				t.Errorf("percentiles out of order: %+v", r)
			}
			if got := conns.Load(); got != c.wantConns {
				t.Errorf("%d connections, want %d", got, c.wantConns)
			}
		})
	}
}

func TestLatencyClientBadInput(t *testing.T) {
	srv, _ := latencyServer(t)
	ok := LatencyOptions{URL: srv.URL + "/", Mode: LatKeepAlive, Requests: 1, Timeout: time.Second}
	for name, mod := range map[string]func(*LatencyOptions){
		"no scheme":     func(o *LatencyOptions) { o.URL = "198.18.0.5/" },
		"https":         func(o *LatencyOptions) { o.URL = "https://198.18.0.5/" },
		"mode":          func(o *LatencyOptions) { o.Mode = "pipelined" },
		"no requests":   func(o *LatencyOptions) { o.Requests = 0 },
		"no timeout":    func(o *LatencyOptions) { o.Timeout = 0 },
		"negative gaps": func(o *LatencyOptions) { o.Gap = -time.Second },
	} {
		o := ok
		mod(&o)
		if _, err := LatencyClient(context.Background(), o); !errors.Is(err, ErrLatencyOptions) {
			t.Errorf("%s: %v, want ErrLatencyOptions", name, err)
		}
	}
	// A closed server: the warm-up request fails, and says so.
	closed, _ := latencyServer(t)
	url := closed.URL + "/"
	closed.Close()
	o := ok
	o.URL = url
	if _, err := LatencyClient(context.Background(), o); err == nil || errors.Is(err, ErrLatencyOptions) || !strings.Contains(err.Error(), "warm-up") {
		t.Errorf("closed server: %v, want a warm-up error", err)
	}
	// A server answering 500 after the warm-up: errors, not latencies.
	calls := atomic.Int64{}
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) > 1 { // the warm-up succeeds, then every request fails
			http.Error(w, "no", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(flaky.Close)
	o = ok
	o.URL, o.Requests = flaky.URL+"/", 5
	r, err := LatencyClient(context.Background(), o)
	if err != nil || r.Errors != 5 || r.Count != 0 {
		t.Errorf("500s: %+v, %v; want 5 errors, 0 answered", r, err)
	}
}

// TestLatencyClientWarmUpTimeout: the warm-up request may take longer than the
// measured requests' timeout (a first segment lost on a busy host comes again only
// after TCP's 1 s retransmission timeout), while a measured request that does is
// an error.
func TestLatencyClientWarmUpTimeout(t *testing.T) {
	calls := atomic.Int64{}
	slow := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := calls.Add(1); n == 1 || n == 3 {
			select { // the warm-up and the second measured request answer late
			case <-slow:
			case <-time.After(1200 * time.Millisecond):
			}
		}
	}))
	t.Cleanup(func() { close(slow); srv.Close() })
	o := LatencyOptions{URL: srv.URL + "/", Mode: LatFresh, Requests: 3, Timeout: 500 * time.Millisecond}
	r, err := LatencyClient(context.Background(), o)
	if err != nil {
		t.Fatalf("a warm-up slower than the timeout failed the run: %v", err)
	}
	if r.Count != 2 || r.Errors != 1 {
		t.Errorf("got %+v, want 2 answered and the late one an error", r)
	}
}
