package bench

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
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

func TestLiveRatiosWithinRounds(t *testing.T) {
	sec := time.Second
	s := func(round int, pinned bool, path string, n uint64) LiveSample {
		return LiveSample{Round: round, Pinned: pinned, Path: path, Delivered: n, Sent: n, Elapsed: sec}
	}
	r := &LiveResult{Options: DefaultLive(), Samples: []LiveSample{
		s(1, true, PathBridge, 500_000), s(1, true, PathNFT, 250_000), s(1, true, PathGVS, 400_000),
		// Round 2 drifted down 40%: the within-round ratios stay.
		s(2, true, PathBridge, 300_000), s(2, true, PathNFT, 150_000), s(2, true, PathGVS, 240_000),
		s(3, true, PathBridge, 400_000), s(3, true, PathNFT, 250_000),
		s(1, false, PathGVS, 100_000),
	}}
	if got := r.MedianMpps(PathBridge, true); got != 0.4 {
		t.Errorf("median bridge = %v, want 0.4", got)
	}
	got := r.RoundRatios(PathGVS, PathNFT, true)
	if len(got) != 2 || math.Abs(got[0]-1.6) > 1e-9 || math.Abs(got[1]-1.6) > 1e-9 {
		t.Errorf("gvs/nft per round = %v, want [1.6 1.6] (round 3 has no gvs)", got)
	}
	if got := r.RoundRatios(PathNFT, PathBridge, true); len(got) != 3 || math.Abs(got[2]-0.625) > 1e-9 {
		t.Errorf("nft/bridge per round = %v", got)
	}
	if got := r.RoundRatios(PathGVS, PathNFT, false); len(got) != 0 {
		t.Errorf("unpinned has no nft: got %v", got)
	}
	var b bytes.Buffer
	r.WriteText(&b)
	if !strings.Contains(b.String(), "gvs/nft per round: [1.60 1.60]  median 1.60") {
		t.Errorf("report:\n%s", b.String())
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

func TestParseWRK(t *testing.T) {
	r, err := ParseWRK(wrkOut)
	if err != nil {
		t.Fatal(err)
	}
	want := WRKResult{Requests: 20835.42, Avg: 1520, P50: 1480, P99: 2500, Errors: 6}
	if math.Abs(r.Avg-want.Avg) > 1e-6 || r.P50 != want.P50 || r.P99 != want.P99 || r.Requests != want.Requests || r.Errors != want.Errors {
		t.Errorf("got %+v, want %+v", r, want)
	}
	if _, err := ParseWRK("unable to connect"); err == nil {
		t.Error("output without Requests/sec should fail")
	}
}

func TestParseNetDev(t *testing.T) {
	text := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0: 9000000  150000    0    0    0     0          0         0     4200      70    0    0    0     0       0          0
`
	rx, tx, err := parseNetDev(text, "eth0")
	if err != nil || rx != 150000 || tx != 70 {
		t.Errorf("got rx %d tx %d err %v", rx, tx, err)
	}
	if _, _, err := parseNetDev(text, "eth1"); err == nil {
		t.Error("missing interface should fail")
	}
}
