package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The live benchmark (gvs bench live) measures the data path in a network-namespace
// lab the way docs/lab.md "Measuring the live data path fairly" prescribes. Every
// round measures every path once per pinning, one after the other, and for each path:
//
//   - 64-byte UDP: trafgen floods from the lab's client, the real servers count what
//     arrives (rx_packets of their eth0); gvs's CPU per packet, the ring's drop counters
//     (gvs_link_* metrics) and the veths' kernel drops; then (pinned only) the
//     saturation rate: the highest offered rate of a paced sender with 0 frames lost;
//   - HTTP, what users feel: wrk -c1 (one request at a time, keep-alive, back to back),
//     randomly timed single requests (exponential gaps, fresh and kept-alive
//     connections: gvs bench latency-client) and wrk -c32 (keep-alive req/s).
//
// The paths: direct (no director: the client reaches the real servers over the
// bridge), nft (an nftables DNAT balancer in the director's namespace), hop (the
// director's kernel forwards by routing to one real server: no balancing, the cost of
// a hop) and gvs (gvs run in the director's namespace, once per I/O backend asked
// for). Ratios and differences are taken within a round, medians over rounds. This file
// holds the parts that do not need Linux: options, results, statistics, parsers and
// the report.

// Live paths, in the order a round measures them.
const (
	PathDirect = "direct" // no director: straight over the bridge to the real servers
	PathNFT    = "nft"    // nftables DNAT (numgen inc mod N) in the director namespace
	PathHop    = "hop"    // the director's kernel routes the VIP to rs1: forwarding, no balancing
	PathGVS    = "gvs"    // gvs run in the director namespace
)

// LivePaths lists the paths in round order.
var LivePaths = []string{PathDirect, PathNFT, PathHop, PathGVS}

// I/O backends of gvs run ([director] io), as --io takes them.
const (
	IOAuto     = "auto"
	IOAFPacket = "afpacket"
	IOAFXDP    = "afxdp"
	IOAll      = "all" // afpacket and afxdp, both in every round
)

// Backends returns the io values a run measures gvs with, for an --io value.
func Backends(io string) ([]string, error) {
	switch io {
	case "", IOAuto:
		return []string{IOAuto}, nil
	case IOAFPacket, IOAFXDP:
		return []string{io}, nil
	case IOAll:
		return []string{IOAFPacket, IOAFXDP}, nil
	}
	return nil, fmt.Errorf("bench live: --io %q: want auto, afpacket, afxdp or all", io)
}

// A LiveHost is one namespace of the lab RunLive measures in.
type LiveHost struct {
	Name string // the lab's host name: "client", "dir1", "rs1"
	MAC  net.HardwareAddr
	Addr netip.Addr
}

// LiveLab is the lab RunLive measures in, as the caller built it (cmd/gvs builds it
// with internal/lab): a DR topology with one director and the real servers' UDP
// service on port 53.
type LiveLab struct {
	Client, Director LiveHost
	RealServers      []LiveHost
	VIP              netip.Addr
	HTTPPort         uint16
	DirectorConfig   string // gvs's TOML for Director
	Exe              string // the gvs binary
	Dir              string // where configs and logs go
	// Do runs fn on a thread inside host's network namespace.
	Do func(host string, fn func() error) error
	// Command returns argv to run inside host's network namespace.
	Command func(ctx context.Context, host string, argv ...string) (*exec.Cmd, error)
	// HTTPGet fetches url from inside host's network namespace.
	HTTPGet func(host, url string, timeout time.Duration) (string, error)
	// PinServers binds every thread of the real servers' processes (their HTTP and
	// UDP servers) to cpu, or lets them run anywhere again (cpu < 0). Needed only
	// with LiveOptions.RSCPU ≥ 0.
	PinServers func(cpu int) error
}

// LiveOptions configures RunLive. Zero fields take the defaults in DefaultLive.
type LiveOptions struct {
	Rounds   int           `json:"rounds"`    // interleaved rounds (each measures every path once per pinning)
	Duration time.Duration `json:"udp_ns"`    // measured UDP flood per path and round (after Warmup)
	Warmup   time.Duration `json:"warmup_ns"` // traffic before the counters are read
	IO       string        `json:"io"`        // gvs's backend: auto, afpacket, afxdp or all
	Paths    []string      `json:"paths"`     // nil = LivePaths
	Pin      bool          `json:"pin"`       // the pinned measurement: generator and clients on GenCPU, gvs on DirCPU
	Unpinned bool          `json:"unpinned"`  // the unpinned one; with both, each round runs both, pinned first
	GenCPU   int           `json:"gen_cpu"`   // the senders' and HTTP clients' CPU when pinned
	DirCPU   int           `json:"dir_cpu"`   // gvs run's CPU when pinned
	// RSCPU, when ≥ 0, is the real servers' CPU in the pinned measurement (-1: where
	// the scheduler puts them, the default). Pinned beside gvs (RSCPU = DirCPU), a
	// request crosses CPUs as often directly (client → server → client) as through
	// gvs (client → gvs, then server → client), so the difference is gvs's own; left
	// free, the direct path's server runs beside the client and crosses no CPU.
	RSCPU int `json:"rs_cpu"`
	// Apart runs wrk -c WRKConns a second time in the pinned measurement with every
	// path's director work on DirCPU and everything else on GenCPU
	// (HTTPSample.KeepAliveApart): the real servers' processes pinned beside the
	// clients, and the director's receive work steered to DirCPU by RPS on its eth0, as
	// a director host's CPU is its own. In the first run the servers go where the
	// scheduler puts them, mostly on gvs's CPU (the clients keep the other busy), and
	// on veth the director's work runs in the sender's softirq: the kernel paths' on
	// the client's CPU, the real server's receive path inside gvs's send on gvs's, so
	// gvs's work comes out of the servers' CPU and the kernel paths' does not.
	Apart bool `json:"c32_apart"`
	// RPS steers the director's receive work to DirCPU (RPS on its eth0) for the
	// whole pinned measurement, so that every path's director work runs on the
	// director's CPU in every figure, as the apart run does for its own.
	RPS     bool `json:"rps,omitempty"`
	Workers int  `json:"workers"` // gvs run --workers
	Flows   int  `json:"flows"`   // distinct UDP source ports the senders cycle through
	Ingress bool `json:"ingress"` // ingress_drop = true in gvs's config (docs/lab.md: +6–10%)
	// RxSpin, when > 0, adds the series gvs-spin: gvs on AF_PACKET with this
	// [director] rx_spin, measured in the same rounds as the others.
	RxSpin  time.Duration `json:"rx_spin_ns,omitempty"`
	UDP     bool          `json:"udp"`         // the UDP flood (and CPU, drops)
	Sat     bool          `json:"saturation"`  // the saturation search (first pinning of each round; not direct)
	SatStep time.Duration `json:"sat_step_ns"` // length of each paced step of the search
	HTTP    bool          `json:"http"`        // wrk and the latency client
	// HTTPAll balances HTTP through gvs and nft over every real server; by default
	// it ends at rs1 on every path, as direct and hop do (gvs: the others at weight
	// 0 in the TCP service, set with gvs adm), so that only the path differs.
	HTTPAll bool `json:"http_all_servers"`
	// WRKSeconds is the length of each wrk run (-c1 and -c WRKConns).
	WRKSeconds int `json:"wrk_seconds"`
	WRKConns   int `json:"wrk_connections"`
	// LatRequests randomly timed requests per connection mode, with exponential gaps
	// of mean LatGap between the end of one and the start of the next.
	LatRequests int           `json:"latency_requests"`
	LatGap      time.Duration `json:"latency_gap_ns"`
	StateDir    string        `json:"-"` // lab state ("" = lab default); used by the caller building the lab
}

// DefaultLive returns the defaults: 3 rounds, 5 s of UDP flood, pinned and unpinned,
// every path, gvs's default backend, 1 worker, 256 flows, ingress drop on, the
// saturation search in 1 s steps, wrk for 3 s (-c1, -c32) and 1,000 randomly timed
// requests per connection mode with a mean gap of 2 ms.
func DefaultLive() LiveOptions {
	return LiveOptions{
		Rounds: 3, Duration: 5 * time.Second, Warmup: time.Second, IO: IOAuto,
		Pin: true, Unpinned: true, GenCPU: 1, DirCPU: 0, RSCPU: -1,
		Workers: 1, Flows: 256, Ingress: true,
		UDP: true, Sat: true, SatStep: time.Second,
		HTTP: true, WRKSeconds: 3, WRKConns: 32, Apart: true,
		LatRequests: 1000, LatGap: 2 * time.Millisecond,
	}
}

// A LiveSample is one path measured once in a round.
type LiveSample struct {
	Round  int    `json:"round"`
	Pinned bool   `json:"pinned"`
	Path   string `json:"path"`
	IO     string `json:"io,omitempty"` // gvs: the io value it ran with
	Series string `json:"series"`       // Path, or "gvs-afxdp" etc. when several backends run

	UDP  *UDPSample  `json:"udp,omitempty"`
	Sat  *Saturation `json:"saturation,omitempty"`
	HTTP *HTTPSample `json:"http,omitempty"`
}

// UDPSample is one 64-byte UDP flood.
type UDPSample struct {
	Delivered uint64        `json:"delivered"` // rx_packets delta summed over the real servers
	PerRS     []uint64      `json:"per_rs"`    // the same per real server
	Sent      uint64        `json:"sent"`      // tx_packets delta at the client
	Elapsed   time.Duration `json:"elapsed_ns"`
	// DirCPU is gvs's CPU seconds (utime+stime, all threads) per second; 0 for the
	// kernel paths, whose work runs in the sender's softirq.
	DirCPU float64 `json:"gvs_cpu"`
	// CPUPerPacket is gvs's utime+stime over the sample per delivered packet, in ns.
	CPUPerPacket float64 `json:"gvs_cpu_ns_per_packet,omitempty"`
	// MachineCPUPerPacket is the whole machine's busy CPU time (/proc/stat) per
	// delivered packet, in ns: the generator's and the kernel's work included, so the
	// paths compare.
	MachineCPUPerPacket float64 `json:"machine_cpu_ns_per_packet"`
	// KernelDrops are the drop columns of /proc/net/dev over the sample, by
	// "host:dir" ("dir1:rx", "client:tx").
	KernelDrops map[string]uint64 `json:"kernel_drops"`
	// RingFull is the sum of gvs's ring-full counters over the sample (see
	// RingFullSeries); nil when this gvs exports none.
	RingFull *float64 `json:"ring_full,omitempty"`
	// PerWorker are the frames each gvs worker received (gvs_link_frames_total
	// direction rx, summed over links), in worker order; nil for the kernel paths.
	PerWorker []uint64 `json:"per_worker,omitempty"`
	// Metrics are the deltas of gvs's gvs_link_* and gvs_drops_total series that moved.
	Metrics  map[string]float64 `json:"gvs_metrics,omitempty"`
	RunQueue float64            `json:"run_queue"` // mean runnable tasks while measuring: flags slots other load disturbed
	// CPUBusy is each CPU's busy share of the sample (/proc/stat, by CPU number): the
	// one near 1 is the path's bound.
	CPUBusy []float64 `json:"cpu_busy,omitempty"`
}

// Mpps is the delivered rate in millions of packets per second.
func (s *UDPSample) Mpps() float64 {
	if s == nil || s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Delivered) / s.Elapsed.Seconds() / 1e6
}

// SentMpps is the generated rate in Mpps.
func (s *UDPSample) SentMpps() float64 {
	if s == nil || s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Sent) / s.Elapsed.Seconds() / 1e6
}

// Loss is the share of sent frames not delivered, in percent.
func (s *UDPSample) Loss() float64 {
	if s == nil || s.Sent == 0 || s.Delivered >= s.Sent {
		return 0
	}
	return 100 * float64(s.Sent-s.Delivered) / float64(s.Sent)
}

// Saturation is the result of the saturation search on one path.
type Saturation struct {
	// Rate is the highest offered rate (frames sent / time) at which every frame
	// arrived, every slower step included, in packets per second; 0 if even the
	// lowest step lost frames. Only with Limit "loss" is it the saturation rate
	// itself; otherwise it is a lower bound.
	Rate float64 `json:"rate_pps"`
	// Limit says what ended the search: "loss" (the next step lost frames),
	// "sender" (the paced sender could not offer more) or "steps" (no loss at the
	// last step the search makes).
	Limit string    `json:"limit"`
	Steps []SatStep `json:"steps"`
	// Bursts are paced runs of BurstLen at Rate after the search (a load that comes
	// in bursts at what the path just carried): what the receive ring rides out.
	// Their RingFull says how many of the lost frames the ring dropped.
	Bursts []SatStep `json:"bursts,omitempty"`
}

// Burst measurement after the saturation search: BurstCount paced runs of BurstLen
// at the saturation rate (docs/lab.md "Receive ring: V2 or V3", sizing by time).
const (
	BurstLen   = 300 * time.Millisecond
	BurstCount = 3
)

// BurstLoss is the share of the frames of the bursts that were lost, in percent,
// and the ring-full drops over them (nil when the path has no ring counters).
func (s *Saturation) BurstLoss() (pct float64, ringFull *float64, ok bool) {
	var sent, lost uint64
	var rf float64
	for _, b := range s.Bursts {
		sent += b.Sent
		lost += b.Lost()
		if b.RingFull != nil {
			rf += *b.RingFull
			ringFull = &rf
		}
	}
	if sent == 0 {
		return 0, nil, false
	}
	return 100 * float64(lost) / float64(sent), ringFull, true
}

// String gives the rate in kpps with what ended the search: "250 (loss)", or a lower
// bound, "≥404 (sender)".
func (s *Saturation) String() string {
	ge := "≥"
	if s.Limit == "loss" || s.Rate == 0 {
		ge = ""
	}
	return fmt.Sprintf("%s%.0f (%s)", ge, s.Rate/1e3, s.Limit)
}

// A SatStep is one paced run of the saturation search.
type SatStep struct {
	Target    float64       `json:"target_pps"`
	Sent      uint64        `json:"sent"`      // frames the paced sender sent
	Delivered uint64        `json:"delivered"` // frames the real servers' sinks counted
	Elapsed   time.Duration `json:"elapsed_ns"`
	Behind    time.Duration `json:"behind_ns"` // PaceResult.Behind
	// RingFull is gvs's ring-full drops (see RingFullSeries) over the step; nil for
	// the kernel paths.
	RingFull *float64 `json:"ring_full,omitempty"`
}

// Offered is the rate the frames were sent at, in pps: over the time the sender
// kept to its schedule (Elapsed − Behind; bursts of catching up stay within
// paceMaxBehind).
func (s SatStep) Offered() float64 {
	d := s.Elapsed - s.Behind
	if d <= 0 {
		return 0
	}
	return float64(s.Sent) / d.Seconds()
}

// SenderLimited reports whether the sender spent more than a quarter of the step
// behind its schedule: the rate asked for was not offered steadily.
func (s SatStep) SenderLimited() bool { return s.Behind > s.Elapsed/4 }

// Lost is the number of frames sent and not delivered.
func (s SatStep) Lost() uint64 {
	if s.Delivered >= s.Sent {
		return 0
	}
	return s.Sent - s.Delivered
}

// satRate is the highest rate offered steadily (not SenderLimited) without loss
// below every lossy step's target: every step under it delivered every frame.
func satRate(steps []SatStep) float64 {
	firstLossy := 0.0
	for _, s := range steps {
		if s.Lost() > 0 && (firstLossy == 0 || s.Target < firstLossy) {
			firstLossy = s.Target
		}
	}
	rate := 0.0
	for _, s := range steps {
		if s.Lost() == 0 && !s.SenderLimited() && (firstLossy == 0 || s.Target < firstLossy) {
			rate = max(rate, s.Offered())
		}
	}
	return rate
}

// HTTPSample is the HTTP part of one path in one round.
type HTTPSample struct {
	Serial    *WRKResult `json:"wrk_c1,omitempty"` // one request at a time, keep-alive, back to back
	KeepAlive *WRKResult `json:"wrk_cN,omitempty"` // WRKConns connections, keep-alive
	// KeepAliveApart is KeepAlive again with every path's director work on the
	// director's CPU and the real servers beside the clients (LiveOptions.Apart).
	KeepAliveApart *WRKResult      `json:"wrk_cN_apart,omitempty"`
	Random         []LatencyResult `json:"random,omitempty"` // randomly timed requests, per connection mode
	Target         string          `json:"target"`           // the URL
	Errors         []string        `json:"errors,omitempty"` // runs that failed (the others still count)
}

// WRKResult is one wrk run.
type WRKResult struct {
	Conns    int     `json:"connections"`
	Requests float64 `json:"requests_per_s"`
	Avg      float64 `json:"latency_avg_us"`
	P50      float64 `json:"latency_p50_us"`
	P99      float64 `json:"latency_p99_us"`
	Errors   int     `json:"errors"` // socket errors + non-2xx
	// GVSCPU is gvs's CPU time (utime+stime, all threads) over the run per request,
	// in µs; 0 for the kernel paths, whose work runs in softirqs.
	GVSCPU float64 `json:"gvs_cpu_us_per_request,omitempty"`
	// CPUBusy is each CPU's busy share over the run (/proc/stat, by CPU number).
	CPUBusy []float64 `json:"cpu_busy,omitempty"`
}

// Connection modes of the latency client.
const (
	LatFresh     = "fresh"     // a new TCP connection per request (connect included in the latency)
	LatKeepAlive = "keepalive" // one connection for every request
)

// LatencyResult is what gvs bench latency-client measured: single requests with
// exponentially distributed gaps, latencies in µs.
type LatencyResult struct {
	Mode   string  `json:"mode"`
	Count  int     `json:"count"`  // requests answered
	Errors int     `json:"errors"` // requests failed
	GapUs  float64 `json:"mean_gap_us"`
	P50    float64 `json:"p50_us"`
	P99    float64 `json:"p99_us"`
	P999   float64 `json:"p99_9_us"`
	Max    float64 `json:"max_us"`
}

// LiveResult is everything RunLive measured.
type LiveResult struct {
	Options LiveOptions  `json:"options"`
	Samples []LiveSample `json:"samples"`
	Notes   []string     `json:"notes,omitempty"`
	// Summary holds the medians over rounds and the within-round ratios the text
	// report prints, filled by Summarize.
	Summary *LiveSummary `json:"summary,omitempty"`
}

// Median returns the median of v (the mean of the middle two for an even count), NaN
// for none.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return medianSorted(s)
}

// medianSorted is Median of s, which is sorted and not empty; it allocates nothing.
func medianSorted(s []float64) float64 {
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of sorted by the
// nearest-rank method: the smallest value with at least p% of the values at or
// below it. NaN for none.
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 || p <= 0 || p > 100 {
		return math.NaN()
	}
	// The rank is ⌈p/100 × n⌉; the small allowance keeps 99.9% of 1000 at rank 999
	// when the float product comes out a hair above it.
	i := int(math.Ceil(p/100*float64(n)-1e-9)) - 1
	return sorted[max(0, min(i, n-1))]
}

// A Metric extracts one figure from a sample; ok is false where the sample has none.
type Metric struct {
	Name   string                           // "udp_mpps", "wrk_c1_p50_us", …
	Better string                           // "higher" or "lower"
	Get    func(LiveSample) (float64, bool) `json:"-"`
}

// LiveMetrics are the figures the summary takes medians and within-round
// comparisons of.
var LiveMetrics = []Metric{
	{"udp_mpps", "higher", func(s LiveSample) (float64, bool) { return s.UDP.Mpps(), s.UDP != nil }},
	{"udp_loss_pct", "lower", func(s LiveSample) (float64, bool) { return s.UDP.Loss(), s.UDP != nil }},
	{"gvs_cpu_ns_per_packet", "lower", func(s LiveSample) (float64, bool) {
		return udpField(s, func(u *UDPSample) float64 { return u.CPUPerPacket }), s.UDP != nil && s.UDP.CPUPerPacket > 0
	}},
	{"machine_cpu_ns_per_packet", "lower", func(s LiveSample) (float64, bool) {
		return udpField(s, func(u *UDPSample) float64 { return u.MachineCPUPerPacket }), s.UDP != nil && s.UDP.MachineCPUPerPacket > 0
	}},
	{"ring_full", "lower", func(s LiveSample) (float64, bool) {
		if s.UDP == nil || s.UDP.RingFull == nil {
			return 0, false
		}
		return *s.UDP.RingFull, true
	}},
	{"saturation_kpps", "higher", func(s LiveSample) (float64, bool) {
		if s.Sat == nil {
			return 0, false
		}
		return s.Sat.Rate / 1e3, true
	}},
	{"burst_loss_pct", "lower", func(s LiveSample) (float64, bool) {
		if s.Sat == nil {
			return 0, false
		}
		pct, _, ok := s.Sat.BurstLoss()
		return pct, ok
	}},
	{"burst_ring_full", "lower", func(s LiveSample) (float64, bool) {
		if s.Sat == nil {
			return 0, false
		}
		_, rf, ok := s.Sat.BurstLoss()
		if !ok || rf == nil {
			return 0, false
		}
		return *rf, true
	}},
	{"wrk_c1_p50_us", "lower", wrkField(func(h *HTTPSample) *WRKResult { return h.Serial }, func(w *WRKResult) float64 { return w.P50 })},
	{"wrk_c1_p99_us", "lower", wrkField(func(h *HTTPSample) *WRKResult { return h.Serial }, func(w *WRKResult) float64 { return w.P99 })},
	{"wrk_c1_req_s", "higher", wrkField(func(h *HTTPSample) *WRKResult { return h.Serial }, func(w *WRKResult) float64 { return w.Requests })},
	{"wrk_cN_req_s", "higher", wrkField(func(h *HTTPSample) *WRKResult { return h.KeepAlive }, func(w *WRKResult) float64 { return w.Requests })},
	{"wrk_cN_p50_us", "lower", wrkField(func(h *HTTPSample) *WRKResult { return h.KeepAlive }, func(w *WRKResult) float64 { return w.P50 })},
	{"wrk_cN_apart_req_s", "higher", wrkField(func(h *HTTPSample) *WRKResult { return h.KeepAliveApart }, func(w *WRKResult) float64 { return w.Requests })},
	{"wrk_c1_gvs_cpu_us_per_req", "lower", wrkCPU(func(h *HTTPSample) *WRKResult { return h.Serial })},
	{"wrk_cN_gvs_cpu_us_per_req", "lower", wrkCPU(func(h *HTTPSample) *WRKResult { return h.KeepAlive })},
	{"wrk_cN_apart_gvs_cpu_us_per_req", "lower", wrkCPU(func(h *HTTPSample) *WRKResult { return h.KeepAliveApart })},
	{"random_keepalive_p50_us", "lower", latField(LatKeepAlive, func(l LatencyResult) float64 { return l.P50 })},
	{"random_keepalive_p99_us", "lower", latField(LatKeepAlive, func(l LatencyResult) float64 { return l.P99 })},
	{"random_keepalive_p99_9_us", "lower", latField(LatKeepAlive, func(l LatencyResult) float64 { return l.P999 })},
	{"random_fresh_p50_us", "lower", latField(LatFresh, func(l LatencyResult) float64 { return l.P50 })},
	{"random_fresh_p99_us", "lower", latField(LatFresh, func(l LatencyResult) float64 { return l.P99 })},
	{"random_fresh_p99_9_us", "lower", latField(LatFresh, func(l LatencyResult) float64 { return l.P999 })},
}

func udpField(s LiveSample, f func(*UDPSample) float64) float64 {
	if s.UDP == nil {
		return 0
	}
	return f(s.UDP)
}

func wrkField(run func(*HTTPSample) *WRKResult, f func(*WRKResult) float64) func(LiveSample) (float64, bool) {
	return func(s LiveSample) (float64, bool) {
		if s.HTTP == nil || run(s.HTTP) == nil {
			return 0, false
		}
		return f(run(s.HTTP)), true
	}
}

// wrkCPU is gvs's CPU per request of a wrk run, where gvs ran.
func wrkCPU(run func(*HTTPSample) *WRKResult) func(LiveSample) (float64, bool) {
	return func(s LiveSample) (float64, bool) {
		if s.HTTP == nil || run(s.HTTP) == nil || run(s.HTTP).GVSCPU <= 0 {
			return 0, false
		}
		return run(s.HTTP).GVSCPU, true
	}
}

func latField(mode string, f func(LatencyResult) float64) func(LiveSample) (float64, bool) {
	return func(s LiveSample) (float64, bool) {
		if s.HTTP == nil {
			return 0, false
		}
		for _, l := range s.HTTP.Random {
			if l.Mode == mode && l.Count > 0 {
				return f(l), true
			}
		}
		return 0, false
	}
}

// metric returns the LiveMetrics entry called name; it panics for an unknown name,
// a programmer error.
func metric(name string) Metric {
	for _, m := range LiveMetrics {
		if m.Name == name {
			return m
		}
	}
	panic("bench: no live metric " + name)
}

// values returns metric m of series under pinning, per round.
func (r *LiveResult) values(m Metric, series string, pinned bool) map[int]float64 {
	out := map[int]float64{}
	for _, s := range r.Samples {
		if s.Series != series || s.Pinned != pinned {
			continue
		}
		if v, ok := m.Get(s); ok && !math.IsNaN(v) {
			out[s.Round] = v
		}
	}
	return out
}

// MedianOf is the median of metric m of series over the rounds (NaN for none).
func (r *LiveResult) MedianOf(m Metric, series string, pinned bool) float64 {
	var v []float64
	for _, x := range r.values(m, series, pinned) {
		v = append(v, x)
	}
	return Median(v)
}

// Within returns f(num's value, den's value) of metric m per round, for the rounds
// that measured both, in round order.
func (r *LiveResult) Within(m Metric, num, den string, pinned bool, f func(a, b float64) float64) []float64 {
	a, b := r.values(m, num, pinned), r.values(m, den, pinned)
	var rounds []int
	for k := range a {
		if _, ok := b[k]; ok {
			rounds = append(rounds, k)
		}
	}
	slices.Sort(rounds)
	var out []float64
	for _, k := range rounds {
		if v := f(a[k], b[k]); !math.IsNaN(v) && !math.IsInf(v, 0) {
			out = append(out, v)
		}
	}
	return out
}

// Ratio and Diff are the within-round comparisons: a/b (NaN for b = 0) and a−b.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// Diff is a − b.
func Diff(a, b float64) float64 { return a - b }

// RoundRatios returns num/den of metric name per round (see Within).
func (r *LiveResult) RoundRatios(name, num, den string, pinned bool) []float64 {
	return r.Within(metric(name), num, den, pinned, Ratio)
}

// Series returns the series the samples have, in round order of first appearance.
func (r *LiveResult) Series() []string {
	var out []string
	for _, s := range r.Samples {
		if !slices.Contains(out, s.Series) {
			out = append(out, s.Series)
		}
	}
	return out
}

// LiveSummary is the medians over rounds and the within-round comparisons, per
// pinning ("pinned", "unpinned").
type LiveSummary struct {
	Medians     map[string]map[string]map[string]float64 `json:"medians"`     // pinning → series → metric → median
	Comparisons map[string][]Comparison                  `json:"comparisons"` // pinning → comparisons
}

// A Comparison is one within-round comparison of two series on one metric.
type Comparison struct {
	Metric   string    `json:"metric"`
	Num      string    `json:"num"`
	Den      string    `json:"den"`
	Op       string    `json:"op"` // "ratio" (num/den) or "diff" (num−den)
	PerRound []float64 `json:"per_round"`
	Median   float64   `json:"median"`
}

// comparisonSpecs are the comparisons the report makes, for each gvs series ("gvs"
// stands for each of them): added latency over direct, req/s against the kernel hop
// and the nftables balancer, UDP rates.
var comparisonSpecs = []struct{ metric, num, den, op string }{
	{"wrk_c1_p50_us", PathGVS, PathDirect, "diff"},
	{"wrk_c1_p99_us", PathGVS, PathDirect, "diff"},
	{"random_keepalive_p50_us", PathGVS, PathDirect, "diff"},
	{"random_keepalive_p99_us", PathGVS, PathDirect, "diff"},
	{"random_fresh_p50_us", PathGVS, PathDirect, "diff"},
	{"random_fresh_p99_us", PathGVS, PathDirect, "diff"},
	{"wrk_c1_p50_us", PathNFT, PathDirect, "diff"},
	{"wrk_c1_p50_us", PathHop, PathDirect, "diff"},
	{"wrk_cN_req_s", PathGVS, PathHop, "ratio"},
	{"wrk_cN_req_s", PathGVS, PathNFT, "ratio"},
	{"wrk_cN_req_s", PathGVS, PathDirect, "ratio"},
	{"wrk_cN_req_s", PathHop, PathDirect, "ratio"},
	{"wrk_cN_apart_req_s", PathGVS, PathHop, "ratio"},
	{"wrk_cN_apart_req_s", PathGVS, PathNFT, "ratio"},
	{"wrk_cN_apart_req_s", PathGVS, PathDirect, "ratio"},
	{"wrk_cN_apart_req_s", PathHop, PathDirect, "ratio"},
	{"udp_mpps", PathGVS, PathNFT, "ratio"},
	{"udp_mpps", PathGVS, PathDirect, "ratio"},
	{"udp_mpps", PathNFT, PathDirect, "ratio"},
	{"udp_mpps", PathHop, PathDirect, "ratio"},
	{"saturation_kpps", PathGVS, PathNFT, "ratio"},
}

// Summarize fills r.Summary from the samples.
func (r *LiveResult) Summarize() {
	sum := &LiveSummary{Medians: map[string]map[string]map[string]float64{}, Comparisons: map[string][]Comparison{}}
	series := r.Series()
	for _, pinned := range []bool{true, false} {
		if !r.has(pinned) {
			continue
		}
		pn := pinName(pinned)
		med := map[string]map[string]float64{}
		for _, se := range series {
			for _, m := range LiveMetrics {
				if v := r.MedianOf(m, se, pinned); !math.IsNaN(v) {
					if med[se] == nil {
						med[se] = map[string]float64{}
					}
					med[se][m.Name] = v
				}
			}
		}
		sum.Medians[pn] = med
		for _, c := range comparisonSpecs {
			nums := []string{c.num}
			if c.num == PathGVS {
				nums = gvsSeries(series)
			}
			f := Ratio
			if c.op == "diff" {
				f = Diff
			}
			for _, num := range nums {
				v := r.Within(metric(c.metric), num, c.den, pinned, f)
				if len(v) == 0 {
					continue
				}
				sum.Comparisons[pn] = append(sum.Comparisons[pn], Comparison{Metric: c.metric, Num: num, Den: c.den, Op: c.op, PerRound: v, Median: Median(v)})
			}
		}
	}
	r.Summary = sum
}

func gvsSeries(series []string) []string {
	var out []string
	for _, s := range series {
		if s == PathGVS || strings.HasPrefix(s, PathGVS+"-") {
			out = append(out, s)
		}
	}
	return out
}

func pinName(pinned bool) string {
	if pinned {
		return "pinned"
	}
	return "unpinned"
}

// WriteText prints the result: per pinning, the samples of every round, the
// medians over rounds and the within-round comparisons. It summarizes first if
// Summarize was not called.
func (r *LiveResult) WriteText(w io.Writer) {
	if r.Summary == nil {
		r.Summarize()
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	series := r.Series()
	for _, pinned := range []bool{true, false} {
		if !r.has(pinned) {
			continue
		}
		title := "unpinned (no taskset; senders, clients, softirqs and gvs go where the scheduler puts them)"
		if pinned {
			kernel := "the kernel paths run in their softirq there"
			if r.Options.RPS {
				kernel = fmt.Sprintf("the director's receive work on CPU %d (RPS)", r.Options.DirCPU)
			}
			title = fmt.Sprintf("pinned (senders and HTTP clients on CPU %d: %s; gvs run on CPU %d", r.Options.GenCPU, kernel, r.Options.DirCPU)
			if r.Options.RSCPU >= 0 {
				title += fmt.Sprintf("; the real servers on CPU %d", r.Options.RSCPU)
			}
			title += ")"
		}
		fmt.Fprintf(w, "\n== %s\n", title)
		r.writeUDP(w, pinned)
		r.writeHTTP(w, pinned)
		pn := pinName(pinned)
		fmt.Fprintf(w, "-- medians over rounds\n")
		fmt.Fprintf(w, "%-13s %8s %7s %8s %8s %9s %9s %8s %8s %8s %8s %8s %9s %9s %8s %8s %9s\n", "series",
			"Mpps", "loss%", "gvsns/p", "cpuns/p", "ringfull", "sat kpps",
			"c1 p50", "c1 p99", "rk p50", "rk p99", "rk p999", "c32 req/s", "c32 apart", "rf p50", "rf p99", "rf p999")
		for _, se := range series {
			m := r.Summary.Medians[pn][se]
			if m == nil {
				continue
			}
			g := func(k string) string {
				v, ok := m[k]
				if !ok {
					return "-"
				}
				switch k {
				case "udp_mpps":
					return strconv.FormatFloat(v, 'f', 3, 64)
				case "udp_loss_pct":
					return strconv.FormatFloat(v, 'f', 2, 64)
				}
				return strconv.FormatFloat(v, 'f', 0, 64)
			}
			fmt.Fprintf(w, "%-13s %8s %7s %8s %8s %9s %9s %8s %8s %8s %8s %8s %9s %9s %8s %8s %9s\n", se,
				g("udp_mpps"), g("udp_loss_pct"), g("gvs_cpu_ns_per_packet"), g("machine_cpu_ns_per_packet"), g("ring_full"), g("saturation_kpps"),
				g("wrk_c1_p50_us"), g("wrk_c1_p99_us"), g("random_keepalive_p50_us"), g("random_keepalive_p99_us"), g("random_keepalive_p99_9_us"),
				g("wrk_cN_req_s"), g("wrk_cN_apart_req_s"), g("random_fresh_p50_us"), g("random_fresh_p99_us"), g("random_fresh_p99_9_us"))
		}
		fmt.Fprintf(w, "(latencies in µs; c1 = wrk -c1, rk/rf = randomly timed on a kept-alive / fresh connection; c32 = wrk -c%d; c32 apart = the same with the real servers on CPU %d and the director's receive work on CPU %d (RPS); cpuns/p = the whole machine's CPU per packet)\n", r.Options.WRKConns, r.Options.GenCPU, r.Options.DirCPU)
		fmt.Fprintf(w, "-- within-round comparisons (per round, median)\n")
		for _, c := range r.Summary.Comparisons[pn] {
			op, unit := "/", ""
			if c.Op == "diff" {
				op, unit = "−", " µs"
			}
			fmt.Fprintf(w, "%-24s %s%s%s: %s  median %s%s\n", c.Metric, c.Num, op, c.Den, fmtValues(c.PerRound, c.Op), fmtValue(c.Median, c.Op), unit)
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprintf(w, "\n%d note(s) at the top\n", len(r.Notes))
	}
}

func (r *LiveResult) writeUDP(w io.Writer, pinned bool) {
	header := false
	for _, s := range r.Samples {
		if s.Pinned != pinned || (s.UDP == nil && s.Sat == nil) {
			continue
		}
		if !header {
			fmt.Fprintf(w, "-- 64-byte UDP\n%-5s %-13s %9s %9s %6s %5s %10s %8s %8s %9s %9s %15s %14s  %s\n", "round", "series",
				"sent", "delivered", "loss", "runq", "cpus busy", "gvs cpu", "gvsns/p", "ring full", "kern drop", "sat kpps", "burst loss/rf", "per real server (gvs: per worker rx)")
			header = true
		}
		u := s.UDP
		if u == nil {
			u = &UDPSample{}
		}
		rf, sat, burst := "-", "-", "-"
		if u.RingFull != nil {
			rf = strconv.FormatFloat(*u.RingFull, 'f', 0, 64)
		}
		if s.Sat != nil {
			sat = s.Sat.String()
			if pct, brf, ok := s.Sat.BurstLoss(); ok {
				burst = fmt.Sprintf("%.2f%%/", pct)
				if brf != nil {
					burst += strconv.FormatFloat(*brf, 'f', 0, 64)
				} else {
					burst += "-"
				}
			}
		}
		var kd uint64
		for _, v := range u.KernelDrops {
			kd += v
		}
		cpu, cpp := "-", "-"
		if u.DirCPU > 0 {
			cpu, cpp = strconv.FormatFloat(u.DirCPU, 'f', 2, 64), strconv.FormatFloat(u.CPUPerPacket, 'f', 0, 64)
		}
		fmt.Fprintf(w, "%-5d %-13s %8.3fM %8.3fM %5.1f%% %5.1f %10s %8s %8s %9s %9d %15s %14s  %v\n", s.Round, s.Series,
			u.SentMpps(), u.Mpps(), u.Loss(), u.RunQueue, fmtBusy(u.CPUBusy), cpu, cpp, rf, kd, sat, burst, perRSWorkers(u))
	}
}

func perRSWorkers(u *UDPSample) string {
	s := fmt.Sprint(u.PerRS)
	if len(u.PerWorker) > 0 {
		s += fmt.Sprintf(" workers %v", u.PerWorker)
	}
	return s
}

func (r *LiveResult) writeHTTP(w io.Writer, pinned bool) {
	header := false
	for _, s := range r.Samples {
		if s.Pinned != pinned || s.HTTP == nil {
			continue
		}
		if !header {
			fmt.Fprintf(w, "-- HTTP (µs)\n%-5s %-13s %8s %8s %8s %8s %8s %8s %8s %8s %8s %9s %9s %7s %10s %10s\n", "round", "series",
				"c1 p50", "c1 p99", "rk p50", "rk p99", "rk p999", "rf p50", "rf p99", "rf p999", "n", "c32 req/s", "c32 apart", "errors", "c32 busy", "apart busy")
			header = true
		}
		h := s.HTTP
		f := func(v float64, ok bool) string {
			if !ok {
				return "-"
			}
			return strconv.FormatFloat(v, 'f', 0, 64)
		}
		get := func(name string) string { return f(metric(name).Get(s)) }
		n, errs := 0, 0
		for _, l := range h.Random {
			n += l.Count
			errs += l.Errors
		}
		for _, x := range []*WRKResult{h.Serial, h.KeepAlive, h.KeepAliveApart} {
			if x != nil {
				errs += x.Errors
			}
		}
		errs += len(h.Errors)
		busy := func(x *WRKResult) string {
			if x == nil {
				return "-"
			}
			return fmtBusy(x.CPUBusy)
		}
		fmt.Fprintf(w, "%-5d %-13s %8s %8s %8s %8s %8s %8s %8s %8s %8d %9s %9s %7d %10s %10s\n", s.Round, s.Series,
			get("wrk_c1_p50_us"), get("wrk_c1_p99_us"), get("random_keepalive_p50_us"), get("random_keepalive_p99_us"), get("random_keepalive_p99_9_us"),
			get("random_fresh_p50_us"), get("random_fresh_p99_us"), get("random_fresh_p99_9_us"), n, get("wrk_cN_req_s"), get("wrk_cN_apart_req_s"), errs,
			busy(h.KeepAlive), busy(h.KeepAliveApart))
		for _, e := range h.Errors {
			fmt.Fprintf(w, "      %s: %s\n", s.Series, e)
		}
	}
}

// WriteJSON writes the result, summary included, as indented JSON.
func (r *LiveResult) WriteJSON(w io.Writer) error {
	if r.Summary == nil {
		r.Summarize()
	}
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

// MarshalJSON writes NaN and infinities (a median of nothing) as null.
func (c Comparison) MarshalJSON() ([]byte, error) {
	type plain Comparison
	var med *float64
	if !math.IsNaN(c.Median) && !math.IsInf(c.Median, 0) {
		med = &c.Median
	}
	return json.Marshal(struct {
		plain
		Median *float64 `json:"median"`
	}{plain(c), med})
}

func (r *LiveResult) has(pinned bool) bool {
	for _, s := range r.Samples {
		if s.Pinned == pinned {
			return true
		}
	}
	return false
}

func fmtValue(v float64, op string) string {
	if op == "diff" {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func fmtValues(v []float64, op string) string {
	p := make([]string, len(v))
	for i, x := range v {
		p[i] = fmtValue(x, op)
	}
	return "[" + strings.Join(p, " ") + "]"
}

// ParseWRK reads wrk's output (run with --latency): requests/s, the average latency
// and the 50th and 99th percentiles in µs, and the error count.
func ParseWRK(out string) (WRKResult, error) {
	var r WRKResult
	var haveReq bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch {
		case f[0] == "Requests/sec:" && len(f) >= 2:
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return r, fmt.Errorf("wrk: %q: %w", sc.Text(), err)
			}
			r.Requests, haveReq = v, true
		case f[0] == "Latency" && len(f) >= 2 && f[1] != "Distribution" && r.Avg == 0:
			v, err := parseWRKDuration(f[1])
			if err != nil {
				return r, err
			}
			r.Avg = v
		case (f[0] == "50%" || f[0] == "99%") && len(f) >= 2:
			v, err := parseWRKDuration(f[1])
			if err != nil {
				return r, err
			}
			if f[0] == "50%" {
				r.P50 = v
			} else {
				r.P99 = v
			}
		case f[0] == "Socket" && len(f) >= 2 && f[1] == "errors:":
			// Socket errors: connect 0, read 0, write 0, timeout 0
			for i := 2; i+1 < len(f); i += 2 {
				n, _ := strconv.Atoi(strings.TrimSuffix(f[i+1], ","))
				r.Errors += n
			}
		case f[0] == "Non-2xx" && len(f) >= 5:
			n, _ := strconv.Atoi(f[len(f)-1])
			r.Errors += n
		}
	}
	if !haveReq {
		return r, fmt.Errorf("wrk: no Requests/sec in its output:\n%s", out)
	}
	return r, nil
}

// parseWRKDuration parses wrk's "512.00us", "1.20ms", "2.00s", "1.00m" into µs.
func parseWRKDuration(s string) (float64, error) {
	units := []struct {
		suf string
		mul float64
	}{{"us", 1}, {"ms", 1e3}, {"m", 60e6}, {"s", 1e6}}
	for _, u := range units {
		if strings.HasSuffix(s, u.suf) {
			v, err := strconv.ParseFloat(strings.TrimSuffix(s, u.suf), 64)
			if err != nil {
				return 0, fmt.Errorf("wrk: duration %q: %w", s, err)
			}
			return v * u.mul, nil
		}
	}
	return 0, fmt.Errorf("wrk: duration %q: unknown unit", s)
}

// netDevStats are one interface's counters from /proc/net/dev.
type netDevStats struct {
	RXPackets, RXDrop, TXPackets, TXDrop uint64
}

// parseNetDev returns the counters of ifname from /proc/net/dev text.
func parseNetDev(text, ifname string) (netDevStats, error) {
	var s netDevStats
	for _, line := range strings.Split(text, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != ifname {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 12 {
			return s, fmt.Errorf("/proc/net/dev: short line %q", line)
		}
		// Receive: bytes packets errs drop …; transmit (from field 8): bytes packets errs drop.
		for i, dst := range map[int]*uint64{1: &s.RXPackets, 3: &s.RXDrop, 9: &s.TXPackets, 11: &s.TXDrop} {
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return s, fmt.Errorf("/proc/net/dev: %s: %w", ifname, err)
			}
			*dst = v
		}
		return s, nil
	}
	return s, fmt.Errorf("/proc/net/dev: no interface %s", ifname)
}

// userHZ is the unit of /proc/stat and /proc/PID/stat times (USER_HZ, 100 on Linux).
const userHZ = 100

// parseProcStat returns the busy time (all but idle and iowait) of the "cpu" line
// of /proc/stat and of each "cpuN" line (indexed by N; a CPU without a line reads
// 0), in USER_HZ ticks.
func parseProcStat(text string) (busy uint64, perCPU []uint64, err error) {
	found := false
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		var b uint64
		// user nice system idle iowait irq softirq steal [guest guest_nice: in user already]
		for i, v := range f[1:min(len(f), 9)] {
			if i == 3 || i == 4 {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return 0, nil, fmt.Errorf("/proc/stat: %w", err)
			}
			b += n
		}
		if f[0] == "cpu" {
			busy, found = b, true
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil || n < 0 || n >= 1<<16 {
			return 0, nil, fmt.Errorf("/proc/stat: bad line %q", f[0])
		}
		for len(perCPU) <= n {
			perCPU = append(perCPU, 0)
		}
		perCPU[n] = b
	}
	if !found {
		return 0, nil, fmt.Errorf("/proc/stat: no cpu line")
	}
	return busy, perCPU, nil
}

// cpuBusy returns each CPU's busy share of elapsed between two readings of
// parseProcStat's perCPU (nil when elapsed is not positive or the readings differ
// in length).
func cpuBusy(before, after []uint64, elapsed time.Duration) []float64 {
	if elapsed <= 0 || len(before) != len(after) || len(after) == 0 {
		return nil
	}
	out := make([]float64, len(after))
	for i := range after {
		out[i] = float64(after[i]-before[i]) / userHZ / elapsed.Seconds()
	}
	return out
}

// fmtBusy formats cpuBusy's shares as "0.97/1.00", or "-".
func fmtBusy(b []float64) string {
	if len(b) == 0 {
		return "-"
	}
	parts := make([]string, len(b))
	for i, v := range b {
		parts[i] = strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strings.Join(parts, "/")
}

// ParseMetrics reads Prometheus text exposition into series → value (the series is
// the name with its labels as written, "gvs_drops_total{reason=\"not_ip\"}"),
// keeping those whose name starts with one of prefixes.
func ParseMetrics(text string, prefixes ...string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(line, p) }) {
			continue
		}
		// The value follows the last space outside the labels (label values may hold
		// spaces); an optional timestamp is not written by gvs.
		end := strings.LastIndexByte(line, '}')
		i := strings.IndexByte(line[max(end, 0):], ' ')
		if i < 0 {
			return nil, fmt.Errorf("metrics: no value in %q", line)
		}
		i += max(end, 0)
		v, err := strconv.ParseFloat(strings.TrimSpace(line[i:]), 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: %q: %w", line, err)
		}
		out[line[:i]] = v
	}
	return out, nil
}

// RingFullSeries reports whether a gvs_link_* series counts frames lost because a
// receive ring was full: its name or labels say "ring_full", or it counts drops
// ("drop" in the name) reported by the kernel for the ring ("kernel" or "ring").
func RingFullSeries(series string) bool {
	if !strings.HasPrefix(series, "gvs_link_") {
		return false
	}
	s := strings.ToLower(series)
	if strings.Contains(s, "ring_full") || strings.Contains(s, "ringfull") {
		return true
	}
	name, _, _ := strings.Cut(s, "{")
	return strings.Contains(s, "drop") && (strings.Contains(name, "kernel") || strings.Contains(name, "ring") || strings.Contains(s, `"kernel"`) || strings.Contains(s, `"ring"`))
}

// metricDeltas returns b−a for every series of b that moved, and the ring-full sum
// (nil when b has no gvs_link_* series at all: this gvs does not export them).
func metricDeltas(a, b map[string]float64) (map[string]float64, *float64) {
	d := map[string]float64{}
	link, ring := false, 0.0
	for k, v := range b {
		link = link || strings.HasPrefix(k, "gvs_link_")
		x := v - a[k]
		if x != 0 {
			d[k] = x
		}
		if RingFullSeries(k) {
			ring += x
		}
	}
	if len(d) == 0 {
		d = nil
	}
	if !link {
		return d, nil
	}
	return d, &ring
}

// perWorker returns the rx frames per worker from metric deltas:
// gvs_link_frames_total series with direction="rx", by their worker label.
func perWorker(d map[string]float64) []uint64 {
	var out []uint64
	for k, v := range d {
		if !strings.HasPrefix(k, "gvs_link_frames_total{") || !strings.Contains(k, `direction="rx"`) {
			continue
		}
		w, ok := label(k, "worker")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(w)
		if err != nil || n < 0 || n > 4096 {
			continue
		}
		for len(out) <= n {
			out = append(out, 0)
		}
		out[n] += uint64(v)
	}
	return out
}

// label returns the value of label name in a series written as ParseMetrics keys
// them (name{a="x",b="y"}); values with escaped quotes are not expected here.
func label(series, name string) (string, bool) {
	_, rest, ok := strings.Cut(series, "{")
	if !ok {
		return "", false
	}
	for _, kv := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.TrimSpace(k) == name {
			return strings.Trim(v, `"`), true
		}
	}
	return "", false
}

// CheckTools reports the first tool RunLive needs that is not installed.
func (o LiveOptions) CheckTools() error {
	for _, tool := range o.tools() {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("bench live needs %s: %w (apt-get install -y netsniff-ng nftables wrk util-linux iproute2)", tool, err)
		}
	}
	return nil
}

func (o LiveOptions) tools() []string {
	t := []string{"ip", "nft", "taskset"}
	if o.UDP {
		t = append(t, "trafgen")
	}
	if o.HTTP {
		t = append(t, "wrk")
	}
	return t
}
