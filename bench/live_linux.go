//go:build linux

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Bounds of the commands the live benchmark runs.
const (
	liveCmdTimeout   = 10 * time.Second // nft, sysctl-like writes, counters
	liveReadyTimeout = 15 * time.Second // gvs answering through the VIP
	liveStopTimeout  = 3 * time.Second  // after SIGINT/SIGTERM, before SIGKILL
	liveUDPPort      = 53               // the lab's UDP service
	liveSinkTable    = "gvsbenchsink"
	liveNATTable     = "gvsbenchlb"
)

// RunLive measures the paths (see live.go) in the lab l describes, which the caller
// built (DR, one director, the real servers' UDP service on port 53) and tears down.
// progress receives one line per step. Needs root, trafgen (netsniff-ng), nft
// (nftables), taskset and, with WRK, wrk.
func RunLive(ctx context.Context, l LiveLab, o LiveOptions, progress io.Writer) (res *LiveResult, err error) {
	o = o.withDefaults()
	if progress == nil {
		progress = io.Discard
	}
	if err := o.CheckTools(); err != nil {
		return nil, err
	}
	b, err := newLiveBench(l, o, progress)
	if err != nil {
		return nil, err
	}
	defer b.cleanup()
	return b.run(ctx)
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
	if !o.Pin && !o.Unpinned {
		o.Pin, o.Unpinned = true, true
	}
	if o.Workers <= 0 {
		o.Workers = d.Workers
	}
	if o.Flows <= 0 {
		o.Flows = d.Flows
	}
	if o.Flows > 60000 {
		o.Flows = 60000
	}
	if o.WRKSeconds <= 0 {
		o.WRKSeconds = d.WRKSeconds
	}
	if o.WRKConns <= 0 {
		o.WRKConns = d.WRKConns
	}
	return o
}

type liveBench struct {
	l        LiveLab
	o        LiveOptions
	log      io.Writer
	client   LiveHost
	dir      LiveHost
	rss      []LiveHost
	cfgPath  string // gvs's config (the lab's plus ingress_drop)
	fwd0     string // the director's net.ipv4.ip_forward before the nft slots
	confDir  string
	sinkDone []LiveHost // real servers with the sink table
}

func newLiveBench(l LiveLab, o LiveOptions, log io.Writer) (*liveBench, error) {
	if len(l.RealServers) == 0 || l.Client.Name == "" || l.Director.Name == "" {
		return nil, fmt.Errorf("bench live: the lab lacks a client, director or real server")
	}
	b := &liveBench{l: l, o: o, log: log, confDir: l.Dir, client: l.Client, dir: l.Director, rss: l.RealServers}
	// The lab's config turns the ingress guard on; --ingress-drop decides.
	var lines []string
	for _, line := range strings.Split(l.DirectorConfig, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "ingress_drop") {
			lines = append(lines, line)
		}
	}
	cfg := strings.Replace(strings.Join(lines, "\n"), "[director]\n", fmt.Sprintf("[director]\ningress_drop = %v\n", o.IngressDrop), 1)
	b.cfgPath = filepath.Join(b.confDir, "bench-"+b.dir.Name+".toml")
	if err := os.WriteFile(b.cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	// The real servers drop the benchmark's UDP at their netdev ingress, after
	// rx_packets counted it: their UDP echo would otherwise answer every packet and
	// compete for the CPUs being measured. Same for every path.
	for _, rs := range b.rss {
		script := fmt.Sprintf("table netdev %s {\n\tchain in {\n\t\ttype filter hook ingress device \"eth0\" priority 0; policy accept;\n\t\tudp dport %d drop\n\t}\n}\n", liveSinkTable, liveUDPPort)
		if err := b.nft(rs, script); err != nil {
			return nil, fmt.Errorf("bench live: sink on %s: %w", rs.Name, err)
		}
		b.sinkDone = append(b.sinkDone, rs)
	}
	fwd, err := b.sysctl(b.dir, "net.ipv4.ip_forward", "")
	if err != nil {
		return nil, err
	}
	b.fwd0 = fwd
	return b, nil
}

// cleanup removes what the benchmark added to the lab (Down removes the rest anyway).
func (b *liveBench) cleanup() {
	b.nftOff()
	for _, h := range b.sinkDone {
		b.nft(h, "delete table netdev "+liveSinkTable+"\n")
	}
}

func (b *liveBench) run(ctx context.Context) (*LiveResult, error) {
	res := &LiveResult{Options: b.o}
	var pins []bool
	if b.o.Pin {
		pins = append(pins, true)
	}
	if b.o.Unpinned {
		pins = append(pins, false)
	}
	for round := 1; round <= b.o.Rounds; round++ {
		for _, pinned := range pins {
			for _, path := range LivePaths {
				if err := ctx.Err(); err != nil {
					return res, context.Cause(ctx)
				}
				s, err := b.sample(ctx, round, pinned, path)
				if err != nil {
					return res, fmt.Errorf("round %d, %s, pinned=%v: %w", round, path, pinned, err)
				}
				fmt.Fprintf(b.log, "round %d %-8s %-6s sent %.3f Mpps, delivered %.3f Mpps %v runq %.1f\n",
					round, pinName(pinned), path, s.SentMpps(), s.Mpps(), s.PerRS, s.RunQueue)
				res.Samples = append(res.Samples, s)
			}
		}
	}
	if b.o.WRK {
		w, notes, err := b.wrk(ctx)
		res.WRK, res.Notes = w, append(res.Notes, notes...)
		if err != nil {
			return res, fmt.Errorf("wrk: %w", err)
		}
	}
	return res, nil
}

func pinName(pinned bool) string {
	if pinned {
		return "pinned"
	}
	return "unpinned"
}

// sample measures one path once.
func (b *liveBench) sample(ctx context.Context, round int, pinned bool, path string) (LiveSample, error) {
	s := LiveSample{Round: round, Pinned: pinned, Path: path}
	var dst []net.HardwareAddr
	var gvs *liveProc
	switch path {
	case PathBridge:
		for _, rs := range b.rss {
			dst = append(dst, rs.MAC)
		}
	case PathNFT:
		dst = []net.HardwareAddr{b.dir.MAC}
		if err := b.nftOn(); err != nil {
			b.nftOff()
			return s, err
		}
		defer b.nftOff()
	case PathGVS:
		dst = []net.HardwareAddr{b.dir.MAC}
		var err error
		if gvs, err = b.startGVS(ctx, pinned); err != nil {
			return s, err
		}
		defer gvs.stop()
	}
	gen, err := b.startTrafgen(ctx, round, pinned, path, dst)
	if err != nil {
		return s, err
	}
	defer gen.stop()
	if err := sleepCtx(ctx, b.o.Warmup); err != nil {
		return s, err
	}
	if err := gen.reaffine(); err != nil {
		return s, err
	}
	c0, err := b.counters(gvs)
	if err != nil {
		return s, err
	}
	// Sample the run queue meanwhile: alone, this benchmark keeps ~2–3 tasks runnable
	// (~4–5 with gvs's threads); clearly more means something else competed for the
	// CPUs and the slot should not be trusted.
	var runq, nq float64
	for end := time.Now().Add(b.o.Duration); time.Now().Before(end); {
		if err := sleepCtx(ctx, min(100*time.Millisecond, time.Until(end))); err != nil {
			return s, err
		}
		if r, ok := procsRunning(); ok {
			runq, nq = runq+r, nq+1
		}
	}
	if nq > 0 {
		s.RunQueue = runq / nq
	}
	c1, err := b.counters(gvs)
	if err != nil {
		return s, err
	}
	if gen.exited() {
		return s, fmt.Errorf("trafgen exited early:\n%s", gen.tail())
	}
	s.Elapsed = c1.at.Sub(c0.at)
	s.Sent = c1.clientTX - c0.clientTX
	for i := range c1.rsRX {
		d := c1.rsRX[i] - c0.rsRX[i]
		s.PerRS = append(s.PerRS, d)
		s.Delivered += d
	}
	if gvs != nil {
		s.DirCPU = (c1.gvsCPU - c0.gvsCPU) / s.Elapsed.Seconds()
	}
	return s, nil
}

type liveCounters struct {
	at       time.Time
	clientTX uint64
	rsRX     []uint64
	gvsCPU   float64 // seconds
}

// counters reads the real servers' eth0 rx_packets and the client's tx_packets from
// /proc/thread-self/net/dev inside their namespaces (the same counters as
// /sys/class/net/eth0/statistics, without a process per read).
func (b *liveBench) counters(gvs *liveProc) (liveCounters, error) {
	var c liveCounters
	c.at = time.Now()
	for _, rs := range b.rss {
		rx, _, err := b.netDev(rs)
		if err != nil {
			return c, err
		}
		c.rsRX = append(c.rsRX, rx)
	}
	_, tx, err := b.netDev(b.client)
	if err != nil {
		return c, err
	}
	c.clientTX = tx
	if gvs != nil {
		c.gvsCPU = procCPU(gvs.cmd.Process.Pid)
	}
	return c, nil
}

func (b *liveBench) netDev(h LiveHost) (rx, tx uint64, err error) {
	err = b.l.Do(h.Name, func() error {
		t, err := os.ReadFile("/proc/thread-self/net/dev")
		if err != nil {
			return err
		}
		rx, tx, err = parseNetDev(string(t), "eth0")
		return err
	})
	return rx, tx, err
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
	return float64(ut+st) / 100 // USER_HZ
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
	var set unix.CPUSet
	if pinned {
		set.Set(b.o.GenCPU)
	} else {
		for c := 0; c < runtime.NumCPU(); c++ {
			set.Set(c)
		}
	}
	p.affinity = &set
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

// setAffinityTree sets the CPU affinity of every thread of pid and of its
// descendants, and returns how many threads it set.
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
		if err := unix.SchedSetaffinity(tid, set); err != nil {
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

// startGVS runs gvs run in the director (pinned: on DirCPU) and waits until HTTP
// through the VIP answers.
func (b *liveBench) startGVS(ctx context.Context, pinned bool) (*liveProc, error) {
	exe := b.l.Exe
	argv := []string{exe, "run", "-c", b.cfgPath, "--workers", strconv.Itoa(b.o.Workers)}
	if pinned {
		argv = append([]string{"taskset", "-c", strconv.Itoa(b.o.DirCPU)}, argv...)
	}
	p, err := b.start(ctx, b.dir, filepath.Join(b.confDir, "bench-gvs.log"), syscall.SIGTERM, argv...)
	if err != nil {
		return nil, err
	}
	url := fmt.Sprintf("http://%s/", netip.AddrPortFrom(b.l.VIP, b.l.HTTPPort))
	deadline := time.Now().Add(liveReadyTimeout)
	for {
		if p.exited() {
			return nil, fmt.Errorf("gvs run exited:\n%s", p.tail())
		}
		if _, err := b.l.HTTPGet(b.client.Name, url, time.Second); err == nil {
			return p, nil
		} else if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("gvs run: no answer through the VIP within %v: %v\n%s", liveReadyTimeout, err, p.tail())
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			p.stop()
			return nil, err
		}
	}
}

// nftOn turns the director into the in-kernel load balancer: forwarding on, ICMP
// redirects off (it forwards back out of the interface it received on), and DNAT of
// VIP:53/udp to the real servers in turn (numgen inc mod N).
func (b *liveBench) nftOn() error {
	for _, kv := range [][2]string{
		{"net.ipv4.conf.all.send_redirects", "0"},
		{"net.ipv4.conf.eth0.send_redirects", "0"},
		{"net.ipv4.ip_forward", "1"},
	} {
		if _, err := b.sysctl(b.dir, kv[0], kv[1]); err != nil {
			return err
		}
	}
	var m []string
	for i, rs := range b.rss {
		m = append(m, fmt.Sprintf("%d : %s", i, rs.Addr))
	}
	script := fmt.Sprintf("table ip %s {\n\tchain pre {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tip daddr %s udp dport %d dnat to numgen inc mod %d map { %s }\n\t}\n}\n",
		liveNATTable, b.l.VIP, liveUDPPort, len(b.rss), strings.Join(m, ", "))
	return b.nft(b.dir, script)
}

// nftOff removes the DNAT table and restores forwarding, so gvs may start.
func (b *liveBench) nftOff() {
	b.nft(b.dir, fmt.Sprintf("table ip %s {}\ndelete table ip %s\n", liveNATTable, liveNATTable))
	if b.fwd0 != "" {
		b.sysctl(b.dir, "net.ipv4.ip_forward", b.fwd0)
	}
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

// wrk measures HTTP through the VIP (gvs running, unpinned) and directly to the first
// real server, interleaved: connections/s with Connection: close, and request
// latency on kept-alive connections.
func (b *liveBench) wrk(ctx context.Context) ([]WRKResult, []string, error) {
	var notes []string
	// Short-lived connections from one client address: widen its port range and let
	// it reuse TIME_WAIT ports, or a few seconds of wrk exhaust them.
	for _, kv := range [][2]string{{"net.ipv4.ip_local_port_range", "1024 65535"}, {"net.ipv4.tcp_tw_reuse", "1"}} {
		if _, err := b.sysctl(b.client, kv[0], kv[1]); err != nil {
			notes = append(notes, err.Error())
		}
	}
	gvs, err := b.startGVS(ctx, false)
	if err != nil {
		return nil, notes, err
	}
	defer gvs.stop()
	port := b.l.HTTPPort
	targets := []struct{ name, url string }{
		{"rs1", fmt.Sprintf("http://%s/", netip.AddrPortFrom(b.rss[0].Addr, port))},
		{"vip", fmt.Sprintf("http://%s/", netip.AddrPortFrom(b.l.VIP, port))},
	}
	var out []WRKResult
	for rep := 0; rep < 2; rep++ {
		for _, mode := range []string{"close", "keepalive"} {
			for _, t := range targets {
				argv := []string{"wrk", "-t", "1", "-c", strconv.Itoa(b.o.WRKConns), "-d", strconv.Itoa(b.o.WRKSeconds) + "s", "--timeout", "2s", "--latency"}
				if mode == "close" {
					argv = append(argv, "-H", "Connection: close")
				}
				argv = append(argv, t.url)
				wctx, cancel := context.WithTimeout(ctx, time.Duration(b.o.WRKSeconds+10)*time.Second)
				cmd, err := b.l.Command(wctx, b.client.Name, argv...)
				if err != nil {
					cancel()
					return out, notes, err
				}
				cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
				o, err := cmd.CombinedOutput()
				cancel()
				if err != nil {
					return out, notes, fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, o)
				}
				r, err := ParseWRK(string(o))
				if err != nil {
					return out, notes, err
				}
				r.Target, r.Mode = t.name, mode
				fmt.Fprintf(b.log, "wrk %-9s %-3s %8.0f req/s avg %6.0f µs p50 %6.0f µs p99 %6.0f µs errors %d\n", mode, t.name, r.Requests, r.Avg, r.P50, r.P99, r.Errors)
				out = append(out, r)
			}
		}
	}
	return out, notes, nil
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
