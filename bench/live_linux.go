//go:build linux

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Bounds of the commands the live benchmark runs.
const (
	liveCmdTimeout   = 10 * time.Second // nft, ip, sysctl-like writes, counters
	liveReadyTimeout = 15 * time.Second // gvs (or a kernel path) answering through the VIP
	liveStopTimeout  = 3 * time.Second  // after SIGINT/SIGTERM, before SIGKILL
	liveSettle       = 200 * time.Millisecond
	liveUDPPort      = 53 // the lab's UDP service
	liveSinkTable    = "gvsbenchsink"
	liveNATTable     = "gvsbenchlb"
	liveMetricsAddr  = "127.0.0.1:9109" // gvs's metrics endpoint, on the director namespace's loopback
	liveLatTimeout   = time.Second      // per randomly timed request
)

// RunLive measures the paths (see live.go) in the lab l describes, which the caller
// built (DR, one director, the real servers' HTTP service on l.HTTPPort and UDP on
// port 53) and tears down. progress receives one line per step. Needs root, ip, nft
// (nftables), taskset and, as asked, trafgen (netsniff-ng) and wrk. The result is
// summarized; on an error it holds what was measured before.
func RunLive(ctx context.Context, l LiveLab, o LiveOptions, progress io.Writer) (res *LiveResult, err error) {
	o = o.withDefaults()
	if progress == nil {
		progress = io.Discard
	}
	if err := o.CheckTools(); err != nil {
		return nil, err
	}
	b, err := newLiveBench(ctx, l, o, progress)
	if err != nil {
		return nil, err
	}
	defer b.cleanup()
	res, err = b.run(ctx)
	res.Summarize()
	return res, err
}

func (o LiveOptions) withDefaults() LiveOptions {
	d := DefaultLive()
	if o.Rounds <= 0 {
		o.Rounds = d.Rounds
	}
	if o.Duration <= 0 {
		o.Duration = d.Duration
	}
	if o.Warmup <= 0 {
		o.Warmup = d.Warmup
	}
	if o.IO == "" {
		o.IO = d.IO
	}
	if len(o.Paths) == 0 {
		o.Paths = LivePaths
	}
	if !o.Pin && !o.Unpinned {
		o.Pin, o.Unpinned = true, true
	}
	if o.Workers <= 0 {
		o.Workers = d.Workers
	}
	if o.Flows <= 0 {
		o.Flows = d.Flows
	}
	o.Flows = min(o.Flows, 60000)
	if o.SatStep <= 0 {
		o.SatStep = d.SatStep
	}
	if o.WRKSeconds <= 0 {
		o.WRKSeconds = d.WRKSeconds
	}
	if o.WRKConns <= 0 {
		o.WRKConns = d.WRKConns
	}
	if o.LatRequests <= 0 {
		o.LatRequests = d.LatRequests
	}
	if o.LatGap <= 0 {
		o.LatGap = d.LatGap
	}
	return o
}

// A gvsRun is one backend gvs is measured with.
type gvsRun struct {
	io      string // the --io value it stands for
	series  string
	cfgPath string
}

type liveBench struct {
	l        LiveLab
	o        LiveOptions
	log      io.Writer
	client   LiveHost
	dir      LiveHost
	rss      []LiveHost
	gvs      []gvsRun
	notes    []string
	fwd0     string // the director's net.ipv4.ip_forward before the kernel paths
	confDir  string
	sinkDone []LiveHost // real servers with the sink table
}

func newLiveBench(ctx context.Context, l LiveLab, o LiveOptions, log io.Writer) (*liveBench, error) {
	if len(l.RealServers) == 0 || l.Client.Name == "" || l.Director.Name == "" {
		return nil, fmt.Errorf("bench live: the lab lacks a client, director or real server")
	}
	for _, p := range o.Paths {
		if !slices.Contains(LivePaths, p) {
			return nil, fmt.Errorf("bench live: unknown path %q (want %s)", p, strings.Join(LivePaths, ", "))
		}
	}
	b := &liveBench{l: l, o: o, log: log, confDir: l.Dir, client: l.Client, dir: l.Director, rss: l.RealServers}
	if slices.Contains(o.Paths, PathGVS) {
		if err := b.planGVS(ctx); err != nil {
			return nil, err
		}
	}
	// The real servers count and drop the benchmark's UDP at their netdev ingress,
	// after rx_packets counted it: their UDP echo would otherwise answer every packet
	// and compete for the CPUs being measured. Same for every path.
	for _, rs := range b.rss {
		script := fmt.Sprintf("table netdev %s {\n\tchain in {\n\t\ttype filter hook ingress device \"eth0\" priority 0; policy accept;\n\t\tudp dport %d counter drop\n\t}\n}\n", liveSinkTable, liveUDPPort)
		if err := b.nft(rs, script); err != nil {
			b.cleanup()
			return nil, fmt.Errorf("bench live: sink on %s: %w", rs.Name, err)
		}
		b.sinkDone = append(b.sinkDone, rs)
	}
	fwd, err := b.sysctl(b.dir, "net.ipv4.ip_forward", "")
	if err != nil {
		b.cleanup()
		return nil, err
	}
	b.fwd0 = fwd
	return b, nil
}

// planGVS writes gvs's config for each backend --io asks for. Whether this gvs has
// the [director] io key, and takes a value, is asked of the binary itself (gvs check,
// which only parses): a backend it lacks is named in a note and not measured.
func (b *liveBench) planGVS(ctx context.Context) error {
	ios, err := Backends(b.o.IO)
	if err != nil {
		return err
	}
	// The lab's config turns the ingress guard on; --ingress-drop decides. Metrics
	// on the director's loopback give the ring counters.
	var lines []string
	for _, line := range strings.Split(b.l.DirectorConfig, "\n") {
		t := strings.TrimSpace(line)
		if !strings.HasPrefix(t, "ingress_drop") && !strings.HasPrefix(t, "metrics_listen") {
			lines = append(lines, line)
		}
	}
	base := strings.Join(lines, "\n")
	if !strings.Contains(base, "[director]\n") {
		return fmt.Errorf("bench live: the lab's director config has no [director] table")
	}
	write := func(name, ioLine string) (string, error) {
		extra := fmt.Sprintf("[director]\ningress_drop = %v\nmetrics_listen = %q\n%s", b.o.Ingress, liveMetricsAddr, ioLine)
		path := filepath.Join(b.confDir, "bench-"+b.dir.Name+"-"+name+".toml")
		return path, os.WriteFile(path, []byte(strings.Replace(base, "[director]\n", extra, 1)), 0o644)
	}
	for _, io := range ios {
		series := PathGVS
		if len(ios) > 1 {
			series = PathGVS + "-" + io
		}
		path, err := write(io, fmt.Sprintf("io = %q\n", io))
		if err != nil {
			return err
		}
		cerr := b.check(ctx, path)
		switch {
		case cerr == nil:
		case strings.Contains(cerr.Error(), `unknown key "io"`) && io != IOAFXDP:
			// No io key: AF_PACKET is this gvs's only backend.
			b.note("this gvs has no [director] io key: AF_PACKET is its only backend (measured as %s)", series)
			if path, err = write(io, ""); err != nil {
				return err
			}
		case strings.Contains(cerr.Error(), `unknown key "io"`):
			b.note("AF_XDP not measured: this gvs has no [director] io key yet (io = \"afxdp\" is refused: %v)", firstLine(cerr.Error()))
			continue
		default:
			b.note("gvs with io = %q not measured: gvs check refuses it: %v", io, firstLine(cerr.Error()))
			continue
		}
		b.gvs = append(b.gvs, gvsRun{io: io, series: series, cfgPath: path})
	}
	if b.o.RxSpin > 0 {
		path, err := write("afpacket-spin", fmt.Sprintf("io = %q\nrx_spin = %q\n", IOAFPacket, b.o.RxSpin.String()))
		if err != nil {
			return err
		}
		if cerr := b.check(ctx, path); cerr != nil {
			b.note("gvs with rx_spin = %v not measured: gvs check refuses it: %v", b.o.RxSpin, firstLine(cerr.Error()))
		} else {
			b.gvs = append(b.gvs, gvsRun{io: IOAFPacket, series: PathGVS + "-spin", cfgPath: path})
		}
	}
	if len(b.gvs) == 0 {
		b.note("gvs not measured: no backend of --io %s is available", b.o.IO)
	}
	return nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

func (b *liveBench) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	b.notes = append(b.notes, n)
	fmt.Fprintf(b.log, "note: %s\n", n)
}

// check runs gvs check on a config file (it parses only, and runs outside the lab).
func (b *liveBench) check(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, liveCmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, b.l.Exe, "check", "-c", path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// cleanup removes what the benchmark added to the lab (Down removes the rest anyway).
func (b *liveBench) cleanup() {
	b.nftOff()
	b.hopOff()
	for _, h := range b.sinkDone {
		b.nft(h, "delete table netdev "+liveSinkTable+"\n")
	}
	b.sinkDone = nil
}

func (b *liveBench) run(ctx context.Context) (*LiveResult, error) {
	res := &LiveResult{Options: b.o}
	defer func() { res.Notes = append(res.Notes, b.notes...) }()
	var pins []bool
	if b.o.Pin {
		pins = append(pins, true)
	}
	if b.o.Unpinned {
		pins = append(pins, false)
	}
	if b.o.RSCPU >= 0 && b.l.PinServers == nil {
		return res, fmt.Errorf("bench live: a real-server CPU (%d) was asked for, but the lab cannot pin its servers", b.o.RSCPU)
	}
	if b.o.Apart && b.o.Pin && b.o.HTTP && b.l.PinServers == nil {
		b.notes = append(b.notes, "wrk -c32 with the real servers apart was skipped: the lab cannot pin its servers")
	}
	if b.o.RSCPU >= 0 {
		defer func() {
			if err := b.l.PinServers(-1); err != nil {
				b.notes = append(b.notes, fmt.Sprintf("unpinning the real servers: %v", err))
			}
		}()
	}
	if b.o.RPS {
		defer func() {
			if err := b.rps(-1); err != nil {
				b.notes = append(b.notes, fmt.Sprintf("turning RPS off: %v", err))
			}
		}()
	}
	for round := 1; round <= b.o.Rounds; round++ {
		for i, pinned := range pins {
			if b.o.RSCPU >= 0 {
				cpu := -1
				if pinned {
					cpu = b.o.RSCPU
				}
				if err := b.l.PinServers(cpu); err != nil {
					return res, fmt.Errorf("round %d, %s: pinning the real servers: %w", round, pinName(pinned), err)
				}
			}
			if b.o.RPS {
				if err := b.rps(b.rpsCPU(pinned)); err != nil {
					return res, fmt.Errorf("round %d, %s: %w", round, pinName(pinned), err)
				}
			}
			for _, path := range b.o.Paths {
				runs := []*gvsRun{nil}
				if path == PathGVS {
					runs = runs[:0]
					for j := range b.gvs {
						runs = append(runs, &b.gvs[j])
					}
				}
				for _, g := range runs {
					if err := ctx.Err(); err != nil {
						return res, context.Cause(ctx)
					}
					s, err := b.slot(ctx, round, pinned, i == 0, path, g)
					res.Samples = append(res.Samples, s)
					if err != nil {
						return res, fmt.Errorf("round %d, %s, %s: %w", round, s.Series, pinName(pinned), err)
					}
				}
			}
		}
	}
	return res, nil
}

// slot measures one path (one gvs backend) once: sets it up, floods it with UDP,
// searches its saturation rate (sat: the first pinning of the round, not direct),
// measures HTTP through it and takes it down.
func (b *liveBench) slot(ctx context.Context, round int, pinned, sat bool, path string, g *gvsRun) (LiveSample, error) {
	s := LiveSample{Round: round, Pinned: pinned, Path: path, Series: path}
	if g != nil {
		s.IO, s.Series = g.io, g.series
	}
	url := fmt.Sprintf("http://%s/", netip.AddrPortFrom(b.l.VIP, b.l.HTTPPort))
	dst := []net.HardwareAddr{b.dir.MAC}
	var gvs *liveProc
	switch path {
	case PathDirect:
		dst = dst[:0]
		for _, rs := range b.rss {
			dst = append(dst, rs.MAC)
		}
		url = fmt.Sprintf("http://%s/", netip.AddrPortFrom(b.rss[0].Addr, b.l.HTTPPort))
	case PathNFT:
		defer b.nftOff()
		if err := b.nftOn(); err != nil {
			return s, err
		}
	case PathHop:
		defer b.hopOff()
		if err := b.hopOn(); err != nil {
			return s, err
		}
	case PathGVS:
		// gvs answers ARP for the VIP itself: no static entry at the client.
		b.clientNeigh(false)
		var err error
		if gvs, err = b.startGVS(ctx, pinned, g); err != nil {
			return s, err
		}
		defer gvs.stop()
	}
	if err := b.ready(ctx, url, gvs); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	if gvs != nil {
		if err := b.quiesce(ctx, g); err != nil {
			return s, err
		}
	}
	if b.o.HTTP && !b.o.HTTPAll {
		if err := b.endsAtRS1(url); err != nil {
			return s, fmt.Errorf("%s: %w", path, err)
		}
	}
	if b.o.UDP {
		u, err := b.flood(ctx, round, pinned, s.Series, dst, gvs)
		if err != nil {
			return s, err
		}
		s.UDP = u
		fmt.Fprintf(b.log, "round %d %-8s %-13s UDP sent %.3f Mpps, delivered %.3f Mpps %v, gvs cpu %.2f (%.0f ns/packet), ring full %s, runq %.1f\n",
			round, pinName(pinned), s.Series, u.SentMpps(), u.Mpps(), u.PerRS, u.DirCPU, u.CPUPerPacket, fmtOpt(u.RingFull), u.RunQueue)
		if sat && b.o.Sat && path != PathDirect {
			st, err := b.saturate(ctx, pinned, dst, u, gvs)
			s.Sat = st
			if err != nil {
				return s, fmt.Errorf("saturation: %w", err)
			}
			fmt.Fprintf(b.log, "round %d %-8s %-13s saturation %s kpps in %d steps\n", round, pinName(pinned), s.Series, st, len(st.Steps))
			for _, bu := range st.Bursts {
				fmt.Fprintf(b.log, "  burst %v at %.0f kpps: lost %d of %d, ring full %s\n", BurstLen, bu.Target/1e3, bu.Lost(), bu.Sent, fmtOpt(bu.RingFull))
			}
		}
	}
	if b.o.HTTP {
		s.HTTP = b.http(ctx, pinned, url, gvs)
		fmt.Fprintf(b.log, "round %d %-8s %-13s HTTP c1 p50 %s µs (gvs cpu %s µs/req), random keep-alive p50 %s p99 %s µs, fresh p50 %s µs, c%d %s req/s (gvs cpu %s µs/req), %d errors\n",
			round, pinName(pinned), s.Series, fmtMetric("wrk_c1_p50_us", s), fmtMetric("wrk_c1_gvs_cpu_us_per_req", s), fmtMetric("random_keepalive_p50_us", s),
			fmtMetric("random_keepalive_p99_us", s), fmtMetric("random_fresh_p50_us", s), b.o.WRKConns, fmtMetric("wrk_cN_req_s", s),
			fmtMetric("wrk_cN_gvs_cpu_us_per_req", s), len(s.HTTP.Errors))
	}
	if gvs != nil && gvs.exited() {
		return s, fmt.Errorf("gvs run exited during the slot:\n%s", gvs.tail())
	}
	return s, nil
}

func fmtOpt(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return strconv.FormatFloat(*v, 'f', 0, 64)
}

func fmtMetric(name string, s LiveSample) string {
	v, ok := metric(name).Get(s)
	if !ok {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// ready waits until HTTP through the path answers from the client.
func (b *liveBench) ready(ctx context.Context, url string, gvs *liveProc) error {
	deadline := time.Now().Add(liveReadyTimeout)
	for {
		if gvs != nil && gvs.exited() {
			return fmt.Errorf("gvs run exited:\n%s", gvs.tail())
		}
		_, err := b.l.HTTPGet(b.client.Name, url, time.Second)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			tail := ""
			if gvs != nil {
				tail = "\n" + gvs.tail()
			}
			return fmt.Errorf("no answer from %s within %v: %v%s", url, liveReadyTimeout, err, tail)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// flood measures one 64-byte UDP flood with trafgen.
func (b *liveBench) flood(ctx context.Context, round int, pinned bool, series string, dst []net.HardwareAddr, gvs *liveProc) (*UDPSample, error) {
	u := &UDPSample{}
	gen, err := b.startTrafgen(ctx, round, pinned, series, dst)
	if err != nil {
		return nil, err
	}
	defer gen.stop()
	if err := sleepCtx(ctx, b.o.Warmup); err != nil {
		return nil, err
	}
	if err := gen.reaffine(); err != nil {
		return nil, err
	}
	c0, err := b.counters(gvs)
	if err != nil {
		return nil, err
	}
	// Sample the run queue meanwhile: alone, this benchmark keeps ~2–3 tasks runnable
	// (~4–5 with gvs's threads); clearly more means something else competed for the
	// CPUs and the slot should not be trusted.
	var runq, nq float64
	for end := time.Now().Add(b.o.Duration); time.Now().Before(end); {
		if err := sleepCtx(ctx, min(100*time.Millisecond, time.Until(end))); err != nil {
			return nil, err
		}
		if r, ok := procsRunning(); ok {
			runq, nq = runq+r, nq+1
		}
	}
	if nq > 0 {
		u.RunQueue = runq / nq
	}
	c1, err := b.counters(gvs)
	if err != nil {
		return nil, err
	}
	if gen.exited() {
		return nil, fmt.Errorf("trafgen exited early:\n%s", gen.tail())
	}
	u.Elapsed = c1.at.Sub(c0.at)
	u.Sent = c1.client.TXPackets - c0.client.TXPackets
	for i := range c1.rs {
		d := c1.rs[i].RXPackets - c0.rs[i].RXPackets
		u.PerRS = append(u.PerRS, d)
		u.Delivered += d
	}
	u.KernelDrops = map[string]uint64{
		b.client.Name + ":rx": c1.client.RXDrop - c0.client.RXDrop,
		b.client.Name + ":tx": c1.client.TXDrop - c0.client.TXDrop,
		b.dir.Name + ":rx":    c1.dir.RXDrop - c0.dir.RXDrop,
		b.dir.Name + ":tx":    c1.dir.TXDrop - c0.dir.TXDrop,
	}
	if u.Delivered > 0 {
		u.MachineCPUPerPacket = float64(c1.busy-c0.busy) / float64(userHZ) * 1e9 / float64(u.Delivered)
	}
	u.CPUBusy = cpuBusy(c0.busyCPU, c1.busyCPU, u.Elapsed)
	if gvs != nil {
		cpu := c1.gvsCPU - c0.gvsCPU
		u.DirCPU = cpu / u.Elapsed.Seconds()
		if u.Delivered > 0 {
			u.CPUPerPacket = cpu * 1e9 / float64(u.Delivered)
		}
		u.Metrics, u.RingFull = metricDeltas(c0.metrics, c1.metrics)
		u.PerWorker = perWorker(u.Metrics)
	}
	return u, nil
}

type liveCounters struct {
	at          time.Time
	client, dir netDevStats
	rs          []netDevStats
	busy        uint64   // the machine's busy ticks
	busyCPU     []uint64 // the same per CPU
	gvsCPU      float64  // seconds
	metrics     map[string]float64
}

// counters reads the real servers', the client's and the director's eth0 counters
// from /proc/thread-self/net/dev inside their namespaces (the same counters as
// /sys/class/net/eth0/statistics, without a process per read), the machine's CPU
// time and, with gvs, its CPU time and metrics.
func (b *liveBench) counters(gvs *liveProc) (liveCounters, error) {
	var c liveCounters
	var err error
	if gvs != nil {
		// Scraping takes a moment: before the clock and counters.
		if c.metrics, err = b.metrics(); err != nil {
			return c, err
		}
	}
	c.at = time.Now()
	for _, rs := range b.rss {
		st, err := b.netDev(rs)
		if err != nil {
			return c, err
		}
		c.rs = append(c.rs, st)
	}
	if c.client, err = b.netDev(b.client); err != nil {
		return c, err
	}
	if c.dir, err = b.netDev(b.dir); err != nil {
		return c, err
	}
	c.busy, c.busyCPU = readProcStat()
	if gvs != nil {
		c.gvsCPU = procCPU(gvs.cmd.Process.Pid)
	}
	return c, nil
}

// metrics scrapes gvs's link, drop and frame counters from its metrics endpoint. A
// director just out of a flood on a busy machine may answer late: up to three tries
// of 5 s each before the run gives up.
func (b *liveBench) metrics() (map[string]float64, error) {
	var err error
	for range 3 {
		var text string
		if text, err = b.l.HTTPGet(b.dir.Name, "http://"+liveMetricsAddr+"/metrics", 5*time.Second); err == nil {
			return ParseMetrics(text, "gvs_link_", "gvs_drops_total", "gvs_frames_")
		}
	}
	return nil, fmt.Errorf("gvs metrics (3 tries): %w", err)
}

func (b *liveBench) netDev(h LiveHost) (st netDevStats, err error) {
	err = b.l.Do(h.Name, func() error {
		t, err := os.ReadFile("/proc/thread-self/net/dev")
		if err != nil {
			return err
		}
		st, err = parseNetDev(string(t), "eth0")
		return err
	})
	return st, err
}

// readProcStat returns the machine's busy ticks and each CPU's (parseProcStat);
// zero and nil if /proc/stat is unreadable.
func readProcStat() (busy uint64, perCPU []uint64) {
	t, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, nil
	}
	busy, perCPU, _ = parseProcStat(string(t))
	return busy, perCPU
}

// procCPU returns the user+system CPU seconds of a process (all its threads).
func procCPU(pid int) float64 {
	t, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(t)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return float64(ut+st) / userHZ
}

// Saturation search bounds: steps from satFirst of the flood's delivered rate up by
// satUp at a time (at most satMaxUp of them) until one loses frames or the sender
// offers no more, then satBisect bisections between the last clean and the first
// lossy step; if the first step already loses frames, satDown instead.
const (
	satFirst  = 0.4
	satUp     = 0.2
	satMaxUp  = 8
	satBisect = 2
)

var satDown = []float64{0.2, 0.1}

// saturate finds the highest offered rate at which every frame arrives: paced runs
// (gvs bench udp-pace, in the client, pinned like trafgen) of SatStep each, the
// frames counted exactly by the real servers' sink counters.
func (b *liveBench) saturate(ctx context.Context, pinned bool, dst []net.HardwareAddr, flood *UDPSample, gvs *liveProc) (*Saturation, error) {
	sat := &Saturation{Limit: "steps"}
	base := flood.Mpps() * 1e6
	if base <= 0 {
		return sat, fmt.Errorf("the flood delivered nothing")
	}
	step := func(target float64) (SatStep, error) {
		st, err := b.paceStep(ctx, pinned, dst, target, b.o.SatStep, gvs)
		if err == nil {
			sat.Steps = append(sat.Steps, st)
			fmt.Fprintf(b.log, "  saturation step %.0f kpps: offered %.0f kpps (behind %v), lost %d of %d\n", target/1e3, st.Offered()/1e3, st.Behind.Round(time.Millisecond), st.Lost(), st.Sent)
		}
		return st, err
	}
	clean, lossy := 0.0, 0.0 // targets
	for i := range satMaxUp {
		target := (satFirst + satUp*float64(i)) * base
		st, err := step(target)
		if err == nil && st.Lost() == 0 && st.SenderLimited() {
			// Once more: one descheduling of the sender is no limit.
			st, err = step(target)
		}
		if err != nil {
			return sat, err
		}
		if st.Lost() > 0 {
			lossy = target
			break
		}
		if st.SenderLimited() {
			// The sender cannot offer this rate steadily: on veth the kernel paths
			// forward in its softirq, on its CPU.
			sat.Limit = "sender"
			break
		}
		clean = target
	}
	if clean == 0 && lossy > 0 {
		for _, f := range satDown {
			st, err := step(f * base)
			if err != nil {
				return sat, err
			}
			if st.Lost() == 0 {
				clean = f * base
				break
			}
			lossy = f * base
		}
	}
	if clean > 0 && lossy > 0 {
		for range satBisect {
			mid := (clean + lossy) / 2
			st, err := step(mid)
			if err != nil {
				return sat, err
			}
			if st.Lost() > 0 {
				lossy = mid
			} else {
				clean = mid
			}
		}
	}
	if lossy > 0 && sat.Limit == "steps" {
		sat.Limit = "loss"
	}
	sat.Rate = satRate(sat.Steps)
	// Bursts at that rate: a ring sized by time rides them out (docs/lab.md
	// "Receive ring: V2 or V3").
	for i := 0; i < BurstCount && sat.Rate > 0; i++ {
		st, err := b.paceStep(ctx, pinned, dst, sat.Rate, BurstLen, gvs)
		if err != nil {
			return sat, fmt.Errorf("burst: %w", err)
		}
		sat.Bursts = append(sat.Bursts, st)
	}
	return sat, nil
}

// paceStep sends d's worth of frames at target pps and counts what arrived and,
// with gvs, what its rings dropped for want of room.
func (b *liveBench) paceStep(ctx context.Context, pinned bool, dst []net.HardwareAddr, target float64, d time.Duration, gvs *liveProc) (SatStep, error) {
	st := SatStep{Target: target}
	var m0 map[string]float64
	if gvs != nil {
		var err error
		if m0, err = b.metrics(); err != nil {
			return st, err
		}
	}
	n0, err := b.sinkCount()
	if err != nil {
		return st, err
	}
	var macs []string
	for _, d := range dst {
		macs = append(macs, d.String())
	}
	count := uint64(target * d.Seconds())
	argv := b.clientArgv(pinned, b.l.Exe, "bench", "udp-pace", "--dev", "eth0",
		"--src-mac", b.client.MAC.String(), "--dst-mac", strings.Join(macs, ","),
		"--src", b.client.Addr.String(), "--dst", b.l.VIP.String(), "--port", strconv.Itoa(liveUDPPort),
		"--flows", strconv.Itoa(b.o.Flows), "--rate", strconv.FormatFloat(target, 'f', 0, 64), "--count", strconv.FormatUint(count, 10))
	out, err := b.output(ctx, 3*d+liveCmdTimeout, argv...)
	if err != nil {
		return st, err
	}
	var pr PaceResult
	if err := json.Unmarshal(out, &pr); err != nil {
		return st, fmt.Errorf("udp-pace: %w: %s", err, out)
	}
	if err := sleepCtx(ctx, liveSettle); err != nil {
		return st, err
	}
	n1, err := b.sinkCount()
	if err != nil {
		return st, err
	}
	st.Sent, st.Elapsed, st.Behind, st.Delivered = pr.Sent, pr.Elapsed, pr.Behind, n1-n0
	if gvs != nil {
		m1, err := b.metrics()
		if err != nil {
			return st, err
		}
		_, st.RingFull = metricDeltas(m0, m1)
	}
	return st, nil
}

var nftCounterRE = regexp.MustCompile(`counter packets (\d+)`)

// sinkCount sums the sink counters of the real servers: the benchmark's UDP frames
// that reached them, exactly (rx_packets counts ARP and the rest too).
func (b *liveBench) sinkCount() (uint64, error) {
	var n uint64
	for _, rs := range b.rss {
		ctx, cancel := context.WithTimeout(context.Background(), liveCmdTimeout)
		cmd, err := b.l.Command(ctx, rs.Name, "nft", "list", "table", "netdev", liveSinkTable)
		if err != nil {
			cancel()
			return 0, err
		}
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			return 0, fmt.Errorf("%s: nft list: %w: %s", rs.Name, err, bytes.TrimSpace(out))
		}
		m := nftCounterRE.FindSubmatch(out)
		if m == nil {
			return 0, fmt.Errorf("%s: no counter in the sink table:\n%s", rs.Name, out)
		}
		v, _ := strconv.ParseUint(string(m[1]), 10, 64)
		n += v
	}
	return n, nil
}

// clientArgv prefixes argv with taskset when pinned: the client side of every
// measurement (trafgen, the paced sender, wrk, the latency client) runs on GenCPU.
func (b *liveBench) clientArgv(pinned bool, argv ...string) []string {
	if pinned {
		return append([]string{"taskset", "-c", strconv.Itoa(b.o.GenCPU)}, argv...)
	}
	return argv
}

// output runs argv in the client's namespace, bounded by timeout, and returns its
// standard output (its standard error goes in the error).
func (b *liveBench) output(ctx context.Context, timeout time.Duration, argv ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd, err := b.l.Command(ctx, b.client.Name, argv...)
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// http measures HTTP from the client to url: wrk -c1, randomly timed requests on a
// kept-alive and on fresh connections, wrk -c WRKConns. A run that fails is named in
// Errors; the others still count.
func (b *liveBench) http(ctx context.Context, pinned bool, url string, gvs *liveProc) *HTTPSample {
	h := &HTTPSample{Target: url}
	wrk := func(conns int) *WRKResult {
		argv := b.clientArgv(pinned, "wrk", "-t", "1", "-c", strconv.Itoa(conns), "-d", strconv.Itoa(b.o.WRKSeconds)+"s", "--timeout", "2s", "--latency", url)
		var cpu0 float64
		if gvs != nil {
			cpu0 = procCPU(gvs.cmd.Process.Pid)
		}
		_, busy0 := readProcStat()
		t0 := time.Now()
		out, err := b.output(ctx, time.Duration(b.o.WRKSeconds)*time.Second+liveCmdTimeout, argv...)
		_, busy1 := readProcStat()
		busy := cpuBusy(busy0, busy1, time.Since(t0))
		var cpu float64
		if gvs != nil {
			cpu = procCPU(gvs.cmd.Process.Pid) - cpu0
		}
		if err != nil {
			h.Errors = append(h.Errors, err.Error())
			return nil
		}
		r, err := ParseWRK(string(out))
		if err != nil {
			h.Errors = append(h.Errors, err.Error())
			return nil
		}
		r.Conns, r.CPUBusy = conns, busy
		if n := r.Requests * float64(b.o.WRKSeconds); cpu > 0 && n > 0 {
			r.GVSCPU = cpu * 1e6 / n
		}
		return &r
	}
	h.Serial = wrk(1)
	for _, mode := range []string{LatKeepAlive, LatFresh} {
		argv := b.clientArgv(pinned, b.l.Exe, "bench", "latency-client", "--url", url, "--mode", mode,
			"--requests", strconv.Itoa(b.o.LatRequests), "--gap", b.o.LatGap.String(), "--timeout", liveLatTimeout.String())
		bound := time.Duration(b.o.LatRequests)*(4*b.o.LatGap+liveLatTimeout/10) + liveCmdTimeout
		out, err := b.output(ctx, bound, argv...)
		if err != nil {
			h.Errors = append(h.Errors, err.Error())
			continue
		}
		var r LatencyResult
		if err := json.Unmarshal(out, &r); err != nil {
			h.Errors = append(h.Errors, fmt.Sprintf("latency-client: %v: %s", err, out))
			continue
		}
		h.Random = append(h.Random, r)
	}
	h.KeepAlive = wrk(b.o.WRKConns)
	if pinned && b.o.Apart && b.l.PinServers != nil {
		h.KeepAliveApart = b.apart(&h.Errors, func() *WRKResult { return wrk(b.o.WRKConns) })
	}
	return h
}

// apart runs measure with every path's director work on the director's CPU and
// everything else on the clients': the real servers pinned beside the clients, and
// the director's receive work steered to DirCPU by RPS on its eth0 (on veth it
// would run in the sending client's or server's softirq, on their CPU). Then the
// servers go back where the options put them and RPS as the options say. What fails is
// appended to errs; nil then.
func (b *liveBench) apart(errs *[]string, measure func() *WRKResult) *WRKResult {
	var r *WRKResult
	if err := b.l.PinServers(b.o.GenCPU); err != nil {
		*errs = append(*errs, fmt.Sprintf("apart: pinning the real servers to CPU %d: %v", b.o.GenCPU, err))
	} else if err := b.rps(b.o.DirCPU); err != nil {
		*errs = append(*errs, fmt.Sprintf("apart: %v", err))
	} else {
		r = measure()
	}
	if err := b.rps(b.rpsCPU(true)); err != nil {
		*errs = append(*errs, fmt.Sprintf("apart: putting RPS back: %v", err))
	}
	if err := b.l.PinServers(b.o.RSCPU); err != nil {
		*errs = append(*errs, fmt.Sprintf("apart: putting the real servers back (CPU %d): %v", b.o.RSCPU, err))
	}
	return r
}

// rpsCPU is where the director's receive work goes outside the apart run: DirCPU
// with LiveOptions.RPS when pinned, else the CPU that received the frame (-1).
func (b *liveBench) rpsCPU(pinned bool) int {
	if pinned && b.o.RPS {
		return b.o.DirCPU
	}
	return -1
}

// rps steers the receive work of the director's eth0 to cpu (Receive Packet
// Steering, its rx-0 queue's rps_cpus), or leaves it on the CPU that received the
// frame (cpu < 0). It writes through `ip netns exec`, whose own sysfs mount shows the
// director's devices, and the script writes only if that eth0 has the director's MAC.
func (b *liveBench) rps(cpu int) error {
	mask := "0"
	if cpu >= 0 {
		mask = strconv.FormatUint(1<<uint(cpu), 16)
	}
	const script = `d=/sys/class/net/eth0
if [ "$(cat $d/address)" != "$1" ]; then echo "$d is not the director's eth0 ($(cat $d/address), want $1)" >&2; exit 1; fi
echo "$2" > $d/queues/rx-0/rps_cpus`
	ctx, cancel := context.WithTimeout(context.Background(), liveCmdTimeout)
	defer cancel()
	cmd, err := b.l.Command(ctx, b.dir.Name, "sh", "-c", script, "rps", b.dir.MAC.String(), mask)
	if err != nil {
		return err
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: rps_cpus %s: %w: %s", b.dir.Name, mask, err, bytes.TrimSpace(out))
	}
	return nil
}

// clientNeigh points the VIP at the director's MAC in the client's neighbour table
// (on) or removes that entry (off). The kernel paths need it: nobody answers ARP for
// the VIP there (the real servers hide it, the director does not have it); gvs
// answers for itself.
func (b *liveBench) clientNeigh(on bool) error {
	if on {
		return b.ip(b.client, "neigh", "replace", b.l.VIP.String(), "lladdr", b.dir.MAC.String(), "dev", "eth0", "nud", "permanent")
	}
	b.ip(b.client, "neigh", "del", b.l.VIP.String(), "dev", "eth0")
	return nil
}

// hopOn makes the director a plain router for the VIP: forwarding on, a host route
// for the VIP via the first real server (which has it on lo), no balancing.
func (b *liveBench) hopOn() error {
	if err := b.forwarding(true); err != nil {
		return err
	}
	if err := b.ip(b.dir, "route", "replace", b.l.VIP.String()+"/32", "via", b.rss[0].Addr.String(), "dev", "eth0"); err != nil {
		return err
	}
	return b.clientNeigh(true)
}

// hopOff undoes hopOn.
func (b *liveBench) hopOff() {
	b.ip(b.dir, "route", "del", b.l.VIP.String()+"/32")
	b.clientNeigh(false)
	b.forwarding(false)
}

// forwarding turns the director's IPv4 forwarding on (ICMP redirects off: it
// forwards back out of the interface it received on) or back to what it was.
func (b *liveBench) forwarding(on bool) error {
	if !on {
		if b.fwd0 != "" {
			b.sysctl(b.dir, "net.ipv4.ip_forward", b.fwd0)
		}
		return nil
	}
	for _, kv := range [][2]string{
		{"net.ipv4.conf.all.send_redirects", "0"},
		{"net.ipv4.conf.eth0.send_redirects", "0"},
		{"net.ipv4.ip_forward", "1"},
	} {
		if _, err := b.sysctl(b.dir, kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

func (b *liveBench) ip(h LiveHost, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), liveCmdTimeout)
	defer cancel()
	cmd, err := b.l.Command(ctx, h.Name, append([]string{"ip"}, args...)...)
	if err != nil {
		return err
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: ip %s: %w: %s", h.Name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// nftOn turns the director into the in-kernel load balancer: forwarding on, and DNAT
// of VIP:53/udp to the real servers in turn (numgen inc mod N, per new flow) and of
// VIP:HTTP/tcp to rs1 (with HTTPAll, in turn as well); TCP is masqueraded to the director's address as well, so that
// the real servers' answers come back through it to be un-NATed (a DNAT balancer
// cannot answer from the VIP otherwise).
func (b *liveBench) nftOn() error {
	if err := b.forwarding(true); err != nil {
		return err
	}
	var m, addrs []string
	for i, rs := range b.rss {
		m = append(m, fmt.Sprintf("%d : %s", i, rs.Addr))
		addrs = append(addrs, rs.Addr.String())
	}
	mp := strings.Join(m, ", ")
	tcpTo := b.rss[0].Addr.String() // HTTP ends at rs1, as on every path (HTTPAll: balanced)
	if b.o.HTTPAll {
		tcpTo = fmt.Sprintf("numgen inc mod %d map { %s }", len(b.rss), mp)
	}
	script := fmt.Sprintf(`table ip %[1]s {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr %[2]s udp dport %[3]d dnat to numgen inc mod %[4]d map { %[5]s }
		ip daddr %[2]s tcp dport %[6]d dnat to %[8]s
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		ip daddr { %[7]s } tcp dport %[6]d masquerade
	}
}
`, liveNATTable, b.l.VIP, liveUDPPort, len(b.rss), mp, b.l.HTTPPort, strings.Join(addrs, ", "), tcpTo)
	if err := b.nft(b.dir, script); err != nil {
		return err
	}
	return b.clientNeigh(true)
}

// nftOff removes the DNAT table and restores forwarding, so gvs may start.
func (b *liveBench) nftOff() {
	b.nft(b.dir, fmt.Sprintf("table ip %s {}\ndelete table ip %s\n", liveNATTable, liveNATTable))
	b.clientNeigh(false)
	b.forwarding(false)
}

// quiesce sets every real server but rs1 to weight 0 in gvs's TCP service (unless
// HTTPAll), with gvs adm as an operator would: HTTP then ends at rs1 as on the
// direct and hop paths, through the same scheduling code.
func (b *liveBench) quiesce(ctx context.Context, g *gvsRun) error {
	if b.o.HTTPAll {
		return nil
	}
	vip := netip.AddrPortFrom(b.l.VIP, b.l.HTTPPort).String()
	for _, rs := range b.rss[1:] {
		actx, cancel := context.WithTimeout(ctx, liveCmdTimeout)
		out, err := exec.CommandContext(actx, b.l.Exe, "adm", "--config", g.cfgPath, "-e", "-t", vip, "-r", rs.Addr.String(), "-g", "-w", "0").CombinedOutput()
		cancel()
		if err != nil {
			return fmt.Errorf("gvs adm -e -t %s -r %s -w 0: %w: %s", vip, rs.Addr, err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// endsAtRS1 checks that HTTP to url is answered by rs1 (the lab's servers answer
// their name), a few connections in a row.
func (b *liveBench) endsAtRS1(url string) error {
	for range 4 {
		body, err := b.l.HTTPGet(b.client.Name, url, 2*time.Second)
		if err != nil {
			return err
		}
		if got := strings.TrimSpace(body); got != b.rss[0].Name {
			return fmt.Errorf("HTTP to %s answered by %q, want %s on every path", url, got, b.rss[0].Name)
		}
	}
	return nil
}

// startGVS runs gvs run with g's config in the director (pinned: on DirCPU).
func (b *liveBench) startGVS(ctx context.Context, pinned bool, g *gvsRun) (*liveProc, error) {
	argv := []string{b.l.Exe, "run", "-c", g.cfgPath, "--workers", strconv.Itoa(b.o.Workers)}
	if pinned {
		argv = append([]string{"taskset", "-c", strconv.Itoa(b.o.DirCPU)}, argv...)
	}
	return b.start(ctx, b.dir, filepath.Join(b.confDir, "bench-"+g.series+".log"), syscall.SIGTERM, argv...)
}

// trafgenConfig returns a trafgen packet config: one 60-byte (64 on the wire) UDP
// frame per destination MAC, client → VIP:53, the source port cycling over flows.
func trafgenConfig(src net.HardwareAddr, srcIP, vip netip.Addr, dst []net.HardwareAddr, flows int) string {
	var sb strings.Builder
	for _, d := range dst {
		// 14 + 20 + 8 + 18 = 60 bytes; the veth adds no FCS, a wire would make it 64.
		fmt.Fprintf(&sb, "{ eth(da=%s, sa=%s), ipv4(sa=%s, da=%s, ttl=64, df), udp(sp=dinc(%d, %d), dp=%d), fill(0x00, 18) }\n",
			d, src, srcIP, vip, 1024, 1024+flows-1, liveUDPPort)
	}
	return sb.String()
}

func (b *liveBench) startTrafgen(ctx context.Context, round int, pinned bool, path string, dst []net.HardwareAddr) (*liveProc, error) {
	conf := filepath.Join(b.confDir, "bench-"+path+".trafgen")
	if err := os.WriteFile(conf, []byte(trafgenConfig(b.client.MAC, b.client.Addr, b.l.VIP, dst, b.o.Flows)), 0o644); err != nil {
		return nil, err
	}
	// -n bounds the run even if the stop below never came: at most ~5 Mpps for the
	// whole slot plus slack. --no-sock-mem, --notouch-irq: touch no global socket memory or IRQ settings.
	max := uint64(5e6 * (b.o.Warmup + b.o.Duration + 10*time.Second).Seconds())
	argv := []string{"trafgen", "--dev", "eth0", "--conf", conf, "--cpus", "1", "--no-sock-mem", "--notouch-irq", "--no-cpu-stats", "-n", strconv.FormatUint(max, 10)}
	if pinned {
		argv = append([]string{"taskset", "-c", strconv.Itoa(b.o.GenCPU)}, argv...)
	}
	logPath := filepath.Join(b.confDir, fmt.Sprintf("bench-trafgen-%d-%s-%s.log", round, pinName(pinned), path))
	p, err := b.start(ctx, b.client, logPath, syscall.SIGINT, argv...)
	if err != nil {
		return nil, err
	}
	// trafgen binds each of its --cpus workers to CPU 0, 1, … itself, whatever taskset
	// said: once the worker runs, move the whole process tree to GenCPU (pinned) or
	// let it run anywhere (unpinned).
	if err := sleepCtx(ctx, 300*time.Millisecond); err != nil {
		p.stop()
		return nil, err
	}
	cpu := -1
	if pinned {
		cpu = b.o.GenCPU
	}
	p.affinity = cpuSet(cpu)
	if err := p.reaffine(); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// reaffine applies p.affinity to the whole trafgen tree again: on a busy machine a
// worker may bind itself only after the first attempt (sample calls this once more
// after the warm-up, before counting).
func (p *liveProc) reaffine() error {
	if p.affinity == nil {
		return nil
	}
	if n, err := setAffinityTree(p.cmd.Process.Pid, p.affinity); err != nil || n < 2 {
		return fmt.Errorf("trafgen: setting the CPU affinity of its workers (%d tasks): %v\n%s", n, err, p.tail())
	}
	return nil
}

// cpuSet returns the set of cpu alone, or of every CPU when cpu < 0.
func cpuSet(cpu int) *unix.CPUSet {
	var set unix.CPUSet
	if cpu >= 0 {
		set.Set(cpu)
		return &set
	}
	for c := range runtime.NumCPU() {
		set.Set(c)
	}
	return &set
}

// SetProcessAffinity binds every thread of process pid and of its descendants to
// cpu, or lets them run on every CPU again (cpu < 0), and returns how many threads
// it set. A thread that ends meanwhile is skipped.
func SetProcessAffinity(pid, cpu int) (int, error) { return setAffinityTree(pid, cpuSet(cpu)) }

// setAffinityTree sets the CPU affinity of every thread of pid and of its
// descendants, and returns how many threads it set (a thread that ended meanwhile
// is skipped).
func setAffinityTree(pid int, set *unix.CPUSet) (int, error) {
	n := 0
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, set); err == unix.ESRCH {
			continue
		} else if err != nil {
			return n, fmt.Errorf("task %d: %w", tid, err)
		}
		n++
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, tid))
		for _, k := range strings.Fields(string(kids)) {
			kid, err := strconv.Atoi(k)
			if err != nil {
				continue
			}
			m, err := setAffinityTree(kid, set)
			n += m
			if err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// sysctl sets key to val in h's namespace (val "" only reads) and returns the value
// found before.
func (b *liveBench) sysctl(h LiveHost, key, val string) (string, error) {
	var old string
	err := b.l.Do(h.Name, func() error {
		path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
		t, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		old = strings.TrimSpace(string(t))
		if val == "" {
			return nil
		}
		return os.WriteFile(path, []byte(val), 0o644)
	})
	if err != nil {
		return "", fmt.Errorf("%s: sysctl %s: %w", h.Name, key, err)
	}
	return old, nil
}

func (b *liveBench) nft(h LiveHost, script string) error {
	ctx, cancel := context.WithTimeout(context.Background(), liveCmdTimeout)
	defer cancel()
	cmd, err := b.l.Command(ctx, h.Name, "nft", "-f", "-")
	if err != nil {
		return err
	}
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: nft: %w: %s", h.Name, err, bytes.TrimSpace(out))
	}
	return nil
}

// A liveProc is a process the benchmark started in a namespace (ip netns exec execs
// it, and taskset execs in turn: the PID is the program's). It dies with the
// benchmark (Pdeathsig) and is stopped by its PID only.
type liveProc struct {
	cmd      *exec.Cmd
	sig      syscall.Signal
	log      string
	done     chan struct{}
	affinity *unix.CPUSet // trafgen: where its workers must run
}

func (b *liveBench) start(ctx context.Context, h LiveHost, logPath string, sig syscall.Signal, argv ...string) (*liveProc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd, err := b.l.Command(ctx, h.Name, argv...)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &liveProc{cmd: cmd, sig: sig, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *liveProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop signals the process group the process leads (trafgen's workers are forked
// children: a signal to the parent alone leaves them sending) with its own signal,
// then SIGKILL, each bounded.
func (p *liveProc) stop() {
	for _, sig := range []syscall.Signal{p.sig, syscall.SIGKILL} {
		if p.exited() {
			// The leader is gone; make sure no worker outlives it.
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			return
		}
		syscall.Kill(-p.cmd.Process.Pid, sig)
		select {
		case <-p.done:
			return
		case <-time.After(liveStopTimeout):
		}
	}
}

func (p *liveProc) tail() string {
	t, _ := os.ReadFile(p.log)
	if len(t) > 2000 {
		t = t[len(t)-2000:]
	}
	return string(t)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// procsRunning returns procs_running from /proc/stat (it counts this reader too).
func procsRunning() (float64, bool) {
	t, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(t), "\n") {
		if v, ok := strings.CutPrefix(line, "procs_running "); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			return float64(n - 1), err == nil
		}
	}
	return 0, false
}
