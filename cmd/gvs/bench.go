package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gvs-lb/gvs/bench"
	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/ipvs"
)

var errHelp = flag.ErrHelp

func cmdBench(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: gvs bench synth|replay|dump|live (see gvs bench synth -h)", errUsage)
	}
	switch args[0] {
	case "synth":
		return cmdSynth(args[1:], stdout, stderr)
	case "replay":
		return cmdReplay(args[1:], stdout, stderr)
	case "dump":
		return cmdDump(args[1:], stdout, stderr)
	case "live":
		return cmdBenchLive(args[1:], stdout, stderr)
	case "latency-client": // hidden: run by gvs bench live in the lab's client
		return cmdLatencyClient(args[1:], stdout, stderr)
	case "udp-pace": // hidden: run by gvs bench live in the lab's client
		return cmdUDPPace(args[1:], stdout, stderr)
	}
	return fmt.Errorf("%w: unknown bench command %q (synth, replay, dump or live)", errUsage, args[0])
}

func newFlags(name, help string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nFlags:\n", help)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return fmt.Errorf("%w: %s: %v", errUsage, fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: %s: unexpected argument %q", errUsage, fs.Name(), fs.Arg(0))
	}
	return nil
}

const synthHelp = `Usage: gvs bench synth --out FILE [flags]

Writes a pcap of synthetic client traffic to a VIP: --flows connections from --clients
client addresses (198.19.0.0/16), interleaved, each of --packets-per-flow packets
(TCP: SYN, ACK, data…, FIN+ACK, ACK; UDP: datagrams). With --replies and -c, the real
servers' answers follow each client packet, as a NAT director sees them.

Examples:
  gvs bench synth --out trace.pcap --flows 1000 --clients 100
  gvs bench synth --out udp.pcap --proto udp --vip 198.18.0.100:53 --packets-per-flow 2
  gvs bench synth --out nat.pcap -c nat.toml --replies`

func cmdSynth(args []string, stdout, stderr io.Writer) error {
	o := bench.DefaultSynth()
	fs := newFlags("synth", synthHelp, stderr)
	out := fs.String("out", "", "pcap file to write (required)")
	fs.IntVar(&o.Flows, "flows", o.Flows, "number of flows")
	fs.IntVar(&o.Clients, "clients", o.Clients, "number of client addresses")
	vip := fs.String("vip", o.VIP.String(), "destination VIP:PORT")
	fs.StringVar(&o.Proto, "proto", o.Proto, "tcp or udp")
	fs.IntVar(&o.PacketsPerFlow, "packets-per-flow", o.PacketsPerFlow, "client packets per flow")
	fs.IntVar(&o.Concurrent, "concurrent", 0, "flows open at once (0 = min(flows, 1024))")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "random seed")
	fs.DurationVar(&o.Gap, "gap", o.Gap, "time between packets")
	replies := fs.Bool("replies", false, "add the real servers' replies (needs -c)")
	cfgPath := fs.String("c", "", "config whose services learn the replies' real servers")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: synth: --out FILE is required", errUsage)
	}
	ap, err := netip.ParseAddrPort(*vip)
	if err != nil {
		return fmt.Errorf("%w: synth: --vip: %v", errUsage, err)
	}
	o.VIP = ap
	o.Replies = *replies
	if *replies {
		if *cfgPath == "" {
			return fmt.Errorf("%w: synth: --replies needs -c CONFIG to learn which real server answers", errUsage)
		}
		d, err := loadDirector(*cfgPath)
		if err != nil {
			return err
		}
		w := d.NewWorker(1)
		frames := make([]dataplane.Frame, 1)
		var outs []dataplane.Frame
		buf := make([]byte, dataplane.Headroom+65536)
		o.Forward = func(frame []byte, ts time.Time) ([]byte, bool) {
			n := copy(buf[dataplane.Headroom:], frame)
			frames[0] = dataplane.Frame{Buf: buf, Off: dataplane.Headroom, Len: n}
			outs = w.Process(frames, ts.UnixNano(), outs[:0])
			if len(outs) == 0 {
				return nil, false
			}
			return outs[0].Bytes(), true
		}
	}
	f, err := os.Create(*out)
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	// Progress on a terminal, counted from the records written; the estimate
	// is the client packets, doubled with replies.
	estimate := o.Flows * o.PacketsPerFlow
	if o.Replies {
		estimate *= 2
	}
	prog := newProgress(stderr, "synth "+*out, estimate, "packets")
	n, err := bench.Synth(&pcapCounter{w: f, report: prog.update}, o)
	prog.finish()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %d packets (%d flows, %d clients, %s) to %s\n", n, o.Flows, o.Clients, o.Proto, *out)
	return nil
}

const replayHelp = `Usage: gvs bench replay -c FILE --in PCAP [--out PCAP] [--plot SVG] [--json] [--baseline]

Runs a pcap through the Director in-process, with time taken from the pcap's
timestamps, and reports packets/s and ns/packet of the pipeline (pcap reading is timed
separately), allocations per packet, connections and packets per real server, and
every drop reason. Real servers need a pinned mac = "..." in the config. On a
terminal, stderr shows the loading and replaying as it goes. --plot FILE.svg draws
each real server's share of the frames over the trace's time and the pipeline's
ns/packet batch by batch, in one self-contained SVG. --baseline
also replays the same frames through the naive balancer a Go programmer writes in an
afternoon (a map of 5-tuples, round-robin on a miss, forgotten on FIN/RST, MAC and TTL
rewritten) and prints its ns/packet beside the pipeline's: what IPVS's semantics cost.

Examples:
  gvs bench synth --out trace.pcap && gvs bench replay -c config.example.toml --in trace.pcap
  gvs bench replay -c lab.toml --in trace.pcap --out rewritten.pcap && tcpdump -e -n -r rewritten.pcap
  gvs bench replay -c config.example.toml --in trace.pcap --baseline
  gvs bench replay -c config.example.toml --in trace.pcap --plot replay.svg`

func cmdReplay(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("replay", replayHelp, stderr)
	cfgPath := fs.String("c", "", "config file (required)")
	in := fs.String("in", "", "pcap to replay (required)")
	outPath := fs.String("out", "", "write the frames the Director sends to this pcap")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	batch := fs.Int("batch", 64, "frames per Process call")
	plotPath := fs.String("plot", "", "draw real-server shares and ns/packet per batch into this SVG file")
	baseline := fs.Bool("baseline", false, "also replay the same frames through the naive comparator (map[5-tuple], round-robin, MAC and TTL rewrite) and print both")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *cfgPath == "" || *in == "" {
		return fmt.Errorf("%w: replay: -c FILE and --in PCAP are required", errUsage)
	}
	d, err := loadDirector(*cfgPath)
	if err != nil {
		return err
	}
	if err := requireMACs(d, *cfgPath); err != nil {
		return err
	}
	f, err := os.Open(*in)
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	size := 0
	if fi, err := f.Stat(); err == nil {
		size = int(fi.Size())
	}
	loading := newProgress(stderr, "loading "+*in, size, "bytes")
	tr, err := bench.LoadTrace(bufio.NewReaderSize(&countingReader{r: f, report: loading.update}, 1<<20))
	loading.finish()
	f.Close()
	if err != nil {
		return fmt.Errorf("replay: %s: %w", *in, err)
	}
	var naive *bench.Naive
	var naiveTrace *bench.Trace
	if *baseline {
		if naive, err = naiveFor(*cfgPath, tr); err != nil {
			return err
		}
		naiveTrace = tr.Clone() // both replays rewrite frames in place
	}
	o := bench.ReplayOptions{Batch: *batch}
	replaying := newProgress(stderr, "replaying "+*in, len(tr.Frames), "packets")
	var pl *replayPlot
	if *plotPath != "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return err
		}
		pl = newReplayPlot(cfg, tr, *batch)
	}
	if replaying != nil || pl != nil {
		o.AfterBatch = func(done int, took time.Duration, out []dataplane.Frame) {
			replaying.update(done)
			if pl != nil {
				pl.batch(done, took, out)
			}
		}
	}
	var bw *bufio.Writer
	var of *os.File
	if *outPath != "" {
		of, err = os.Create(*outPath)
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		defer of.Close()
		bw = bufio.NewWriterSize(of, 1<<20)
		if o.Out, err = bench.PcapWriter(bw); err != nil {
			return err
		}
	}
	res, err := bench.Replay(d, tr, o)
	replaying.finish()
	if err != nil {
		return fmt.Errorf("replay: %w", err)
	}
	if pl != nil {
		if err := pl.write(*plotPath, "gvs bench replay "+filepath.Base(*in)); err != nil {
			return fmt.Errorf("replay: --plot: %w", err)
		}
	}
	if bw != nil {
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		if err := of.Close(); err != nil {
			return fmt.Errorf("replay: %w", err)
		}
	}
	var base *bench.NaiveResult
	if naive != nil {
		b := bench.ReplayNaive(naive, naiveTrace, *batch)
		base = &b
	}
	if *asJSON {
		j := jsonResult(res)
		if base != nil {
			j.Baseline = &jsonBaseline{NsPerPacket: base.NsPerPacket, AllocsPerPacket: base.AllocsPerPacket, Forwarded: base.Forwarded, Ratio: res.NsPerPacket / base.NsPerPacket}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(j)
	}
	printResult(stdout, res)
	if base != nil {
		fmt.Fprintf(stdout, "\nbaseline: the naive balancer (map[5-tuple], round-robin on a miss, delete on FIN/RST, MAC and TTL only)\n")
		fmt.Fprintf(stdout, "baseline: %.1f ns/packet, %.3f allocs/packet, forwarded %d; gvs/baseline = %.2f\n", base.NsPerPacket, base.AllocsPerPacket, base.Forwarded, res.NsPerPacket/base.NsPerPacket)
	}
	return nil
}

// naiveFor builds the naive comparator over the config's real servers (their pinned
// MACs, in file order) sending from the director's MAC (the config's, or the first
// frame's destination).
func naiveFor(path string, tr *bench.Trace) (*bench.Naive, error) {
	c, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	var rs [][6]byte
	for _, s := range c.Services {
		for _, r := range s.RealServers {
			if !r.MAC.IsZero() {
				rs = append(rs, r.MAC)
			}
		}
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("replay: --baseline: %s has no real server with a pinned mac", path)
	}
	mac := c.Director.MAC
	if mac.IsZero() && len(tr.Frames) > 0 && tr.Frames[0].Len >= 6 {
		mac = ipvs.MAC(tr.Frames[0].Bytes()[:6])
	}
	return bench.NewNaive(rs, mac), nil
}

// requireMACs refuses a replay whose real servers have no pinned MAC: the rewritten
// frames would have nowhere to go.
func requireMACs(d *dataplane.Director, path string) error {
	var missing []string
	for _, sv := range d.Services() {
		for _, dv := range sv.Dests {
			if !d.DestHasMAC(dv.ID) {
				missing = append(missing, fmt.Sprintf("%s real server %s:%d", sv.Spec.String(), dv.Addr, dv.Port))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("replay: %s: real servers need mac = \"...\" for replay: %s", path, strings.Join(missing, "; "))
	}
	return nil
}

type jsonOut struct {
	Packets         int                   `json:"packets"`
	Mpps            float64               `json:"mpps"`
	NsPerPacket     float64               `json:"ns_per_packet"`
	AllocsPerPacket float64               `json:"allocs_per_packet"`
	LoadSeconds     float64               `json:"pcap_load_seconds"`
	Forwarded       uint64                `json:"forwarded"`
	Generated       uint64                `json:"icmp_generated"`
	Drops           map[string]uint64     `json:"drops"`
	Malformed       map[string]uint64     `json:"malformed"`
	Conns           int                   `json:"conntrack_entries"`
	Services        []bench.ServiceResult `json:"services"`
	Baseline        *jsonBaseline         `json:"baseline,omitempty"`
}

// jsonBaseline is the naive comparator's replay of the same frames (--baseline).
type jsonBaseline struct {
	NsPerPacket     float64 `json:"ns_per_packet"`
	AllocsPerPacket float64 `json:"allocs_per_packet"`
	Forwarded       uint64  `json:"forwarded"`
	Ratio           float64 `json:"gvs_over_baseline"`
}

func jsonResult(r *bench.Result) jsonOut {
	j := jsonOut{Packets: r.Packets, Mpps: r.Mpps, NsPerPacket: r.NsPerPacket, AllocsPerPacket: r.AllocsPerPacket,
		LoadSeconds: r.Load.Seconds(), Forwarded: r.Counters.Forwarded, Generated: r.Counters.Generated,
		Drops: map[string]uint64{}, Malformed: map[string]uint64{}, Conns: r.Conns, Services: r.Services}
	for i, n := range r.Counters.Reasons {
		if n > 0 {
			j.Drops[dataplane.Reason(i).String()] = n
		}
	}
	for i, n := range r.Counters.Malformed {
		if n > 0 {
			j.Malformed[header.Drop(i).String()] = n
		}
	}
	return j
}

func printResult(w io.Writer, r *bench.Result) {
	fmt.Fprintf(w, "replayed %d packets in batches of %d\n", r.Packets, r.Batch)
	fmt.Fprintf(w, "pipeline: %.2f Mpps, %.1f ns/packet, %.3f allocs/packet (one core)\n", r.Mpps, r.NsPerPacket, r.AllocsPerPacket)
	fmt.Fprintf(w, "pcap load: %s (not included above)\n", r.Load.Round(time.Millisecond))
	fmt.Fprintf(w, "forwarded %d, ICMP generated %d, connection entries left %d\n", r.Counters.Forwarded, r.Counters.Generated, r.Conns)
	for _, s := range r.Services {
		fmt.Fprintf(w, "\n%s  scheduler %s: %d conns, %d packets in, %d packets out\n", s.Service, s.Scheduler, s.Stats.Conns, s.Stats.InPkts, s.Stats.OutPkts)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "real server\tmethod\tweight\tconns\tshare\tpkts in\tpkts out\tactive\tinactive\t")
		for _, rs := range s.RealServers {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1f%%\t%d\t%d\t%d\t%d\t\n", rs.Addr, rs.Method, rs.Weight, rs.Stats.Conns, 100*rs.ConnShare, rs.Stats.InPkts, rs.Stats.OutPkts, rs.Active, rs.Inactive)
		}
		tw.Flush()
	}
	type kv struct {
		k string
		v uint64
	}
	var drops []kv
	for i, n := range r.Counters.Reasons {
		if n > 0 {
			drops = append(drops, kv{dataplane.Reason(i).String(), n})
		}
	}
	for i, n := range r.Counters.Malformed {
		if n > 0 {
			drops = append(drops, kv{"malformed/" + header.Drop(i).String(), n})
		}
	}
	sort.Slice(drops, func(i, j int) bool { return drops[i].k < drops[j].k })
	if len(drops) > 0 {
		fmt.Fprintln(w, "\nnot forwarded:")
		for _, d := range drops {
			fmt.Fprintf(w, "  %-24s %d\n", d.k, d.v)
		}
	}
}

const dumpHelp = `Usage: gvs bench dump --in PCAP [--count N] [--syn-only] [--by-mac MAC=NAME,...]

Prints a pcap one frame per line, like tcpdump -e -n (for machines without tcpdump).

Examples:
  gvs bench dump --in out.pcap --count 4
  gvs bench dump --in out.pcap --syn-only --by-mac 02:00:00:00:00:05=rs1,02:00:00:00:00:06=rs2`

func cmdDump(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("dump", dumpHelp, stderr)
	in := fs.String("in", "", "pcap to print (required)")
	var o bench.DumpOptions
	fs.IntVar(&o.Count, "count", 0, "print at most N frames")
	fs.BoolVar(&o.SYNOnly, "syn-only", false, "print only TCP SYNs (one per new connection)")
	byMAC := fs.String("by-mac", "", "name MACs: MAC=NAME,...")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *in == "" {
		return fmt.Errorf("%w: dump: --in PCAP is required", errUsage)
	}
	if *byMAC != "" {
		o.Names = map[string]string{}
		for _, kv := range strings.Split(*byMAC, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("%w: dump: --by-mac wants MAC=NAME, got %q", errUsage, kv)
			}
			o.Names[strings.ToLower(k)] = v
		}
	}
	f, err := os.Open(*in)
	if err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	defer f.Close()
	return bench.Dump(stdout, bufio.NewReader(f), o)
}
