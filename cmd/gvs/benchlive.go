package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gvs-lb/gvs/bench"
	"github.com/gvs-lb/gvs/internal/lab"
)

const benchLiveHelp = `Usage: gvs bench live [--rounds N] [--seconds S] [--pin|--unpinned] [--rs-cpu N] [--io auto|afpacket|afxdp|all] [--rx-spin D] [--json]

Measures the live data path in a throwaway DR lab (needs root, ip, nft, taskset,
trafgen from netsniff-ng, wrk). Every round measures, one after the other, each path:
direct (no director: over the bridge to the real servers), nft (an nftables DNAT
balancer in the director's namespace; TCP also masqueraded so that answers return
through it), hop (the director's kernel routes the VIP to rs1: forwarding, no
balancing) and gvs (gvs run in the director's namespace, once per --io backend).
UDP is balanced over both real servers; HTTP ends at rs1 on every path (gvs: rs2 at
weight 0 in the TCP service, nft: DNAT to rs1) unless --http-all-servers.
For each path:
  64-byte UDP   trafgen floods for S seconds, the real servers count what arrives;
                gvs's CPU per packet, its ring-full counters (gvs_link_* metrics) and
                the veths' kernel drops; then (first pinning of a round, not direct)
                the saturation rate: the highest rate a paced sender offers with 0
                frames lost, found in 1 s steps, then 3 bursts of 300 ms at that
                rate (frames lost, and how many of them gvs's rings dropped);
  HTTP          wrk -c1 (one request at a time, keep-alive, back to back), randomly
                timed requests (exponential gaps, on a kept-alive and on fresh
                connections: p50/p99/p99.9) and wrk -c32 (keep-alive req/s); when
                pinned, wrk -c32 once more "apart": every path's director work on
                --dir-cpu (the director's receive steered there by RPS) and the
                real servers on --gen-cpu beside the clients, as on a director host
                (--no-apart skips it); gvs's CPU per request in every wrk run.
--rps steers the director's receive work to --dir-cpu in every pinned figure, not
only in the apart run: the kernel paths then forward on the director's CPU, not in
the sender's softirq (HTTP only: needs --no-udp).
The report gives medians over rounds and comparisons within rounds (latency added
over direct, gvs/hop and gvs/nft req/s, gvs/nft pps). Pinned: the senders and
clients on --gen-cpu, gvs on --dir-cpu (the kernel paths run in the sender's
softirq, on its CPU); unpinned: no taskset. Without --pin or --unpinned, both.
--rs-cpu N also binds the real servers' processes to CPU N when pinned: with N =
--dir-cpu every path crosses CPUs as often (direct: client to server and back;
through gvs: client to gvs, server to client), so the latency added is gvs's own;
by default they run where the scheduler puts them, and the direct path's server
beside the client crosses no CPU at all. --rx-spin D adds the series gvs-spin: gvs
on AF_PACKET with [director] rx_spin = D, in the same rounds. The lab is always
torn down.

Examples:
  gvs bench live
  gvs bench live --rounds 5 --seconds 10 --pin --io all --json
  gvs bench live --rounds 1 --seconds 1 --paths direct,gvs --no-saturation`

// cmdBenchLive is `gvs bench live`.
func cmdBenchLive(args []string, stdout, stderr io.Writer) error {
	o := bench.DefaultLive()
	fs := newFlags("live", benchLiveHelp, stderr)
	fs.IntVar(&o.Rounds, "rounds", o.Rounds, "interleaved rounds")
	secs := fs.Float64("seconds", o.Duration.Seconds(), "UDP flood seconds per path and round")
	pin := fs.Bool("pin", false, "measure pinned only")
	unpinned := fs.Bool("unpinned", false, "measure unpinned only")
	fs.StringVar(&o.IO, "io", o.IO, "gvs's I/O backend ([director] io): auto, afpacket, afxdp, or all (afpacket and afxdp in every round)")
	paths := fs.String("paths", strings.Join(bench.LivePaths, ","), "paths to measure, in round order")
	fs.IntVar(&o.GenCPU, "gen-cpu", o.GenCPU, "CPU of the senders and HTTP clients when pinned")
	fs.IntVar(&o.DirCPU, "dir-cpu", o.DirCPU, "CPU of gvs run when pinned")
	fs.IntVar(&o.RSCPU, "rs-cpu", o.RSCPU, "CPU of the real servers' processes when pinned (-1: where the scheduler puts them); = --dir-cpu makes every path cross CPUs equally often")
	fs.IntVar(&o.Workers, "workers", o.Workers, "gvs run --workers")
	fs.IntVar(&o.Flows, "flows", o.Flows, "UDP flows (source ports) the senders cycle through")
	fs.BoolVar(&o.Ingress, "ingress-drop", o.Ingress, "ingress_drop = true in gvs's config")
	fs.DurationVar(&o.RxSpin, "rx-spin", 0, "also measure gvs on AF_PACKET with this [director] rx_spin (series gvs-spin); 0: not")
	noUDP := fs.Bool("no-udp", false, "skip the UDP flood (and the saturation search)")
	noSat := fs.Bool("no-saturation", false, "skip the saturation search")
	satStep := fs.Duration("saturation-step", o.SatStep, "length of each paced step of the saturation search")
	noHTTP := fs.Bool("no-http", false, "skip wrk and the latency client")
	noWRK := fs.Bool("no-wrk", false, "same as --no-http (older name)")
	fs.BoolVar(&o.HTTPAll, "http-all-servers", o.HTTPAll, "HTTP through gvs and nft balanced over every real server (default: rs1 only, as direct and hop)")
	fs.IntVar(&o.WRKSeconds, "wrk-seconds", o.WRKSeconds, "seconds per wrk run")
	fs.IntVar(&o.WRKConns, "wrk-connections", o.WRKConns, "wrk -c of the req/s run")
	fs.BoolVar(&o.RPS, "rps", o.RPS, "steer the director's receive work to --dir-cpu (RPS) for the whole pinned measurement")
	noApart := fs.Bool("no-apart", false, "skip the second wrk -c run with the director's work on --dir-cpu and the real servers on --gen-cpu")
	fs.IntVar(&o.LatRequests, "latency-requests", o.LatRequests, "randomly timed requests per connection mode")
	fs.DurationVar(&o.LatGap, "latency-gap", o.LatGap, "mean gap between randomly timed requests")
	fs.StringVar(&o.StateDir, "state-dir", "", "lab state directory (default the lab's)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	jsonFile := fs.String("json-file", "", "also write the result as JSON to this file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if o.RSCPU < -1 || o.RSCPU >= runtime.NumCPU() {
		return fmt.Errorf("%w: live: --rs-cpu %d: a CPU from 0 to %d, or -1", errUsage, o.RSCPU, runtime.NumCPU()-1)
	}
	if *secs <= 0 || o.Rounds <= 0 || *satStep <= 0 || o.LatRequests <= 0 || o.LatGap <= 0 {
		return fmt.Errorf("%w: live: --seconds, --rounds, --saturation-step, --latency-requests and --latency-gap must be positive", errUsage)
	}
	if o.RxSpin < 0 {
		return fmt.Errorf("%w: live: --rx-spin %v: a duration of 0 or more", errUsage, o.RxSpin)
	}
	if _, err := bench.Backends(o.IO); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	o.Paths = nil
	for _, p := range strings.Split(*paths, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !slices.Contains(bench.LivePaths, p) {
			return fmt.Errorf("%w: live: --paths: unknown path %q (%s)", errUsage, p, strings.Join(bench.LivePaths, ", "))
		}
		o.Paths = append(o.Paths, p)
	}
	if len(o.Paths) == 0 {
		return fmt.Errorf("%w: live: --paths is empty", errUsage)
	}
	o.Duration = time.Duration(*secs * float64(time.Second))
	o.SatStep = *satStep
	o.Pin, o.Unpinned = *pin || !*unpinned, *unpinned || !*pin
	o.UDP = !*noUDP
	o.Sat = o.UDP && !*noSat
	o.HTTP = !*noHTTP && !*noWRK
	o.Apart = !*noApart
	if o.RPS && o.UDP {
		// Measured: with the receive work queued to another CPU, the flood's frames
		// hold trafgen's socket buffer until that CPU frees them, and trafgen gives
		// up on the EAGAIN of its TX ring's flush.
		return fmt.Errorf("%w: live: --rps needs --no-udp: trafgen stops at the first EAGAIN its TX ring's flush gets while the director's receive work is queued to another CPU", errUsage)
	}
	if err := o.CheckTools(); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, liveBound(o))
	defer cancel()
	res, err := runBenchLive(ctx, o, exe, stderr)
	if res != nil && *jsonFile != "" {
		if jerr := writeJSONFile(*jsonFile, res); jerr != nil {
			err = errors.Join(err, jerr)
		}
	}
	if res != nil {
		if *asJSON {
			if jerr := res.WriteJSON(stdout); jerr != nil && err == nil {
				err = jerr
			}
		} else {
			res.WriteText(stdout)
		}
	}
	return err
}

func writeJSONFile(path string, res *bench.LiveResult) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := res.WriteJSON(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// liveBound is a hard bound on a whole run: every slot with all its parts, gvs
// starts, plus slack.
func liveBound(o bench.LiveOptions) time.Duration {
	pins := 1
	if o.Pin && o.Unpinned {
		pins = 2
	}
	slots := o.Rounds * pins * (len(o.Paths) + 1) // gvs may run twice (--io all)
	per := 20 * time.Second
	if o.UDP {
		per += o.Warmup + o.Duration + 5*time.Second
	}
	if o.Sat {
		per += 9*(3*o.SatStep+2*time.Second) + bench.BurstCount*(3*bench.BurstLen+2*time.Second)
	}
	if o.HTTP {
		per += 2*time.Duration(o.WRKSeconds)*time.Second + 2*time.Duration(o.LatRequests)*(4*o.LatGap+10*time.Millisecond) + 20*time.Second
	}
	return time.Duration(slots)*per + 3*time.Minute
}

// runBenchLive builds a DR lab with a fresh prefix, runs the benchmark in it and tears
// it down whatever happens (Down also stops the lab's servers).
func runBenchLive(ctx context.Context, o bench.LiveOptions, exe string, progress io.Writer) (res *bench.LiveResult, err error) {
	var id [4]byte
	rand.Read(id[:])
	prefix := "gb" + hex.EncodeToString(id[:])
	upCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	l, err := lab.Up(upCtx, lab.Spec{Prefix: prefix, Mode: lab.DR, Exe: exe, StateDir: o.StateDir})
	cancel()
	if err != nil {
		return nil, err
	}
	defer func() {
		if derr := l.Down(); derr != nil {
			err = errors.Join(err, fmt.Errorf("lab %s down: %w", prefix, derr))
		}
	}()
	fmt.Fprintf(progress, "lab %s up: DR, client -> VIP %v, one director, two real servers\n", prefix, l.VIP())
	ll := bench.LiveLab{
		VIP: l.VIP(), HTTPPort: l.Spec().HTTPPort, Exe: exe, Dir: l.RunDir(),
		Do: l.Do, Command: l.Command, HTTPGet: l.HTTPGet,
		PinServers: func(cpu int) error { return pinLabServers(l, cpu) },
	}
	for _, h := range l.Hosts() {
		lh := bench.LiveHost{Name: h.Name, MAC: h.MAC(), Addr: h.Addr()}
		switch h.Role {
		case lab.Client:
			ll.Client = lh
		case lab.Director:
			if ll.Director.Name == "" {
				ll.Director = lh
			}
		case lab.RealServer:
			ll.RealServers = append(ll.RealServers, lh)
		}
	}
	if ll.DirectorConfig, err = l.DirectorConfig(ll.Director.Name); err != nil {
		return nil, err
	}
	return bench.RunLive(ctx, ll, o, progress)
}

// cmdLatencyClient is the hidden `gvs bench latency-client`, which gvs bench live
// runs in the lab's client namespace: randomly timed requests, the result as JSON.
func cmdLatencyClient(args []string, stdout, stderr io.Writer) error {
	o := bench.LatencyOptions{Mode: bench.LatKeepAlive, Requests: 1000, Gap: 2 * time.Millisecond, Timeout: time.Second}
	fs := newFlags("latency-client", "Usage: gvs bench latency-client --url URL [flags] (run by gvs bench live)", stderr)
	fs.StringVar(&o.URL, "url", "", "http://host[:port]/path")
	fs.StringVar(&o.Mode, "mode", o.Mode, "keepalive (one connection) or fresh (one per request)")
	fs.IntVar(&o.Requests, "requests", o.Requests, "requests measured")
	fs.DurationVar(&o.Gap, "gap", o.Gap, "mean of the exponential gaps between requests")
	fs.DurationVar(&o.Timeout, "timeout", o.Timeout, "per request")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := bench.LatencyClient(ctx, o)
	if err != nil {
		if errors.Is(err, bench.ErrLatencyOptions) {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return err
	}
	return json.NewEncoder(stdout).Encode(r)
}

// cmdUDPPace is the hidden `gvs bench udp-pace`, which gvs bench live runs in the
// lab's client namespace for the saturation search: paced 64-byte UDP, what was sent
// as JSON.
func cmdUDPPace(args []string, stdout, stderr io.Writer) error {
	var o bench.PaceOptions
	fs := newFlags("udp-pace", "Usage: gvs bench udp-pace --dev DEV --src-mac MAC --dst-mac MAC[,MAC] --src IP --dst IP --rate PPS --count N (run by gvs bench live)", stderr)
	fs.StringVar(&o.Dev, "dev", "eth0", "interface")
	srcMAC := fs.String("src-mac", "", "source MAC")
	dstMACs := fs.String("dst-mac", "", "destination MACs, comma-separated, used in turn")
	src := fs.String("src", "", "source IPv4 address")
	dst := fs.String("dst", "", "destination IPv4 address")
	port := fs.Uint("port", 53, "UDP destination port")
	fs.IntVar(&o.Flows, "flows", 256, "source ports cycled through")
	fs.Float64Var(&o.Rate, "rate", 0, "frames per second")
	fs.Uint64Var(&o.Count, "count", 0, "frames to send")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var err error
	if o.SrcMAC, err = net.ParseMAC(*srcMAC); err != nil {
		return fmt.Errorf("%w: udp-pace: --src-mac: %v", errUsage, err)
	}
	for _, m := range strings.Split(*dstMACs, ",") {
		hw, err := net.ParseMAC(m)
		if err != nil {
			return fmt.Errorf("%w: udp-pace: --dst-mac: %v", errUsage, err)
		}
		o.DstMACs = append(o.DstMACs, hw)
	}
	if o.Src, err = netip.ParseAddr(*src); err != nil {
		return fmt.Errorf("%w: udp-pace: --src: %v", errUsage, err)
	}
	if o.Dst, err = netip.ParseAddr(*dst); err != nil {
		return fmt.Errorf("%w: udp-pace: --dst: %v", errUsage, err)
	}
	if *port == 0 || *port > 65535 {
		return fmt.Errorf("%w: udp-pace: --port %d", errUsage, *port)
	}
	o.Port = uint16(*port)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := bench.PaceUDP(ctx, o)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(r)
}
