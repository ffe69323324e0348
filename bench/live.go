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
// lab the way docs/lab.md "Measuring the live data path fairly" prescribes: trafgen sends
// 64-byte UDP frames from the lab's client, the real servers count what arrives
// (rx_packets of their eth0), and three paths are measured in every round, one after
// the other: the plain bridge (client → real servers, no balancer: the ceiling), an
// nftables DNAT load balancer (numgen) in the director's namespace (the in-kernel
// alternative), and gvs run in the director's namespace. Ratios are taken within a
// round, and medians over rounds. This file holds the parts that do not need Linux:
// options, results, the statistics and the report.

// Live paths, in the order a round measures them.
const (
	PathBridge = "bridge" // client → real servers directly over the switch
	PathNFT    = "nft"    // nftables DNAT (numgen inc mod N) in the director namespace
	PathGVS    = "gvs"    // gvs run in the director namespace
)

// LivePaths lists the paths in round order.
var LivePaths = []string{PathBridge, PathNFT, PathGVS}

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
}

// LiveOptions configures RunLive. Zero fields take the defaults in DefaultLive.
type LiveOptions struct {
	Rounds   int           // interleaved rounds (each measures every path once per pinning)
	Duration time.Duration // measured time per path and round (after Warmup)
	Warmup   time.Duration // traffic before the counters are read
	// Pin selects the pinned measurement (generator on GenCPU, gvs on DirCPU); Unpinned
	// the unpinned one. Both may be set: each round then runs both, pinned first.
	Pin, Unpinned  bool
	GenCPU, DirCPU int
	Workers        int    // gvs run --workers
	Flows          int    // distinct UDP source ports trafgen cycles through
	IngressDrop    bool   // ingress_drop = true in gvs's config (docs/lab.md: +6–10%)
	WRK            bool   // also run wrk through the VIP and directly to rs1
	WRKSeconds     int    // per wrk run
	WRKConns       int    // wrk -c
	StateDir       string `json:"-"` // lab state ("" = lab default); used by the caller building the lab
}

// DefaultLive returns the defaults: 3 rounds of 5 s, pinned and unpinned, 1 worker,
// 256 flows, ingress drop on, wrk for 3 s with 32 connections.
func DefaultLive() LiveOptions {
	return LiveOptions{
		Rounds: 3, Duration: 5 * time.Second, Warmup: time.Second,
		Pin: true, Unpinned: true, GenCPU: 1, DirCPU: 0,
		Workers: 1, Flows: 256, IngressDrop: true,
		WRK: true, WRKSeconds: 3, WRKConns: 32,
	}
}

// A LiveSample is one measurement of one path.
type LiveSample struct {
	Round     int           `json:"round"`
	Pinned    bool          `json:"pinned"`
	Path      string        `json:"path"`
	Delivered uint64        `json:"delivered"` // rx_packets delta summed over the real servers
	PerRS     []uint64      `json:"per_rs"`    // the same per real server
	Sent      uint64        `json:"sent"`      // tx_packets delta at the client
	Elapsed   time.Duration `json:"elapsed_ns"`
	DirCPU    float64       `json:"dir_cpu"`   // gvs: CPU seconds per second of the gvs process (0 for the kernel paths)
	RunQueue  float64       `json:"run_queue"` // mean runnable tasks on the machine while measuring: alone, ~2–3 for the kernel paths, ~4–5 with gvs (its own threads)
}

// Mpps is the delivered rate in millions of packets per second.
func (s LiveSample) Mpps() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Delivered) / s.Elapsed.Seconds() / 1e6
}

// SentMpps is the generated rate in Mpps.
func (s LiveSample) SentMpps() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Sent) / s.Elapsed.Seconds() / 1e6
}

// WRKResult is one wrk run.
type WRKResult struct {
	Target   string  `json:"target"` // "vip" or "rs1"
	Mode     string  `json:"mode"`   // "close" (Connection: close) or "keepalive"
	Requests float64 `json:"requests_per_s"`
	Avg      float64 `json:"latency_avg_us"`
	P50      float64 `json:"latency_p50_us"`
	P99      float64 `json:"latency_p99_us"`
	Errors   int     `json:"errors"` // socket errors + non-2xx
}

// LiveResult is everything RunLive measured.
type LiveResult struct {
	Options LiveOptions  `json:"options"`
	Samples []LiveSample `json:"samples"`
	WRK     []WRKResult  `json:"wrk,omitempty"`
	Notes   []string     `json:"notes,omitempty"`
}

// Median returns the median of v (the mean of the middle two for an even count), NaN
// for none.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// rates returns the delivered Mpps of path under pinning, per round (round order).
func (r *LiveResult) rates(path string, pinned bool) map[int]float64 {
	m := map[int]float64{}
	for _, s := range r.Samples {
		if s.Path == path && s.Pinned == pinned {
			m[s.Round] = s.Mpps()
		}
	}
	return m
}

// MedianMpps is the median delivered rate of path over the rounds.
func (r *LiveResult) MedianMpps(path string, pinned bool) float64 {
	var v []float64
	for _, x := range r.rates(path, pinned) {
		v = append(v, x)
	}
	return Median(v)
}

// RoundRatios returns num/den per round, for the rounds that measured both, in round
// order.
func (r *LiveResult) RoundRatios(num, den string, pinned bool) []float64 {
	a, b := r.rates(num, pinned), r.rates(den, pinned)
	var rounds []int
	for k := range a {
		if _, ok := b[k]; ok && b[k] > 0 {
			rounds = append(rounds, k)
		}
	}
	slices.Sort(rounds)
	out := make([]float64, len(rounds))
	for i, k := range rounds {
		out[i] = a[k] / b[k]
	}
	return out
}

// ratioPairs are the within-round ratios the report prints.
var ratioPairs = [][2]string{{PathGVS, PathNFT}, {PathGVS, PathBridge}, {PathNFT, PathBridge}}

// WriteText prints the result as tables.
func (r *LiveResult) WriteText(w io.Writer) {
	for _, pinned := range []bool{true, false} {
		if !r.has(pinned) {
			continue
		}
		title := "unpinned (no taskset; trafgen, softirqs and gvs go where the scheduler puts them)"
		if pinned {
			title = fmt.Sprintf("pinned (trafgen on CPU %d: the bridge and nftables paths run in its softirq there; gvs run on CPU %d)", r.Options.GenCPU, r.Options.DirCPU)
		}
		fmt.Fprintf(w, "\n== %s\n", title)
		fmt.Fprintf(w, "%-6s %-7s %9s %9s %7s %5s   %s\n", "round", "path", "sent", "delivered", "loss", "runq", "per real server / gvs CPU")
		for _, s := range r.Samples {
			if s.Pinned != pinned {
				continue
			}
			loss := 0.0
			if s.Sent > 0 && s.Sent >= s.Delivered {
				loss = 100 * float64(s.Sent-s.Delivered) / float64(s.Sent)
			}
			extra := fmt.Sprint(s.PerRS)
			if s.Path == PathGVS {
				extra += fmt.Sprintf("  cpu %.2f", s.DirCPU)
			}
			fmt.Fprintf(w, "%-6d %-7s %8.3fM %8.3fM %6.1f%% %5.1f   %s\n", s.Round, s.Path, s.SentMpps(), s.Mpps(), loss, s.RunQueue, extra)
		}
		fmt.Fprintf(w, "median delivered Mpps:")
		for _, p := range LivePaths {
			fmt.Fprintf(w, "  %s %.3f", p, r.MedianMpps(p, pinned))
		}
		fmt.Fprintln(w)
		for _, pr := range ratioPairs {
			v := r.RoundRatios(pr[0], pr[1], pinned)
			fmt.Fprintf(w, "%s/%s per round: %s  median %.2f\n", pr[0], pr[1], fmtRatios(v), Median(v))
		}
	}
	if len(r.WRK) > 0 {
		fmt.Fprintf(w, "\n== wrk (HTTP, %d connections, %d s per run)\n", r.Options.WRKConns, r.Options.WRKSeconds)
		fmt.Fprintf(w, "%-6s %-10s %12s %10s %10s %10s %7s\n", "target", "mode", "req/s", "avg µs", "p50 µs", "p99 µs", "errors")
		for _, x := range r.WRK {
			fmt.Fprintf(w, "%-6s %-10s %12.0f %10.0f %10.0f %10.0f %7d\n", x.Target, x.Mode, x.Requests, x.Avg, x.P50, x.P99, x.Errors)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// WriteJSON writes the result as indented JSON.
func (r *LiveResult) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}

func (r *LiveResult) has(pinned bool) bool {
	for _, s := range r.Samples {
		if s.Pinned == pinned {
			return true
		}
	}
	return false
}

func fmtRatios(v []float64) string {
	p := make([]string, len(v))
	for i, x := range v {
		p[i] = strconv.FormatFloat(x, 'f', 2, 64)
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

// parseWRKDuration parses wrk's "512.00us", "1.20ms", "2.00s" into µs.
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

// parseNetDev returns rx and tx packets of ifname from /proc/net/dev text.
func parseNetDev(text, ifname string) (rx, tx uint64, err error) {
	for _, line := range strings.Split(text, "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != ifname {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 10 {
			return 0, 0, fmt.Errorf("/proc/net/dev: short line %q", line)
		}
		if rx, err = strconv.ParseUint(f[1], 10, 64); err != nil {
			return 0, 0, err
		}
		if tx, err = strconv.ParseUint(f[9], 10, 64); err != nil {
			return 0, 0, err
		}
		return rx, tx, nil
	}
	return 0, 0, fmt.Errorf("/proc/net/dev: no interface %s", ifname)
}

// CheckTools reports the first tool RunLive needs that is not installed.
func (o LiveOptions) CheckTools() error {
	for _, tool := range o.tools() {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("bench live needs %s: %w (apt-get install -y netsniff-ng nftables wrk util-linux)", tool, err)
		}
	}
	return nil
}

func (o LiveOptions) tools() []string {
	t := []string{"ip", "trafgen", "nft", "taskset"}
	if o.WRK {
		t = append(t, "wrk")
	}
	return t
}
