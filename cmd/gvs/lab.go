package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/gvs-lb/gvs/internal/lab"
)

const labHelp = `Usage: gvs lab up|down|status|demo|flows|event [flags]

A teaching lab of network namespaces on this machine, as the LVS docker labs build
with containers: a client, a switch, one or two directors and N real servers that
answer HTTP with their name. Needs root and iproute2; creates nothing in the root
namespace. See docs/lab.md.

  gvs lab up [--mode dr|nat|tun|ha] [--real-servers N] [--directors 1|2] [--prefix P] [--subnet CIDR]
                       build a lab and print its topology and the commands to try
  gvs lab down [--prefix P | --all-stale]
                       remove a lab: its processes, namespaces, logs and state
  gvs lab status [--prefix P]
                       show a lab (all labs without --prefix)
  gvs lab demo [--prefix P] [--cluster]
                       the seed's DR experiment end to end: rs2 rs1 rs2 rs1 …, the
                       MAC rewrite on the director's wire, then tear down; --cluster:
                       a director of three killed under load, connections counted
  gvs lab up --cluster N [--vrrp]
                       cluster mode: a router (BIRD, ECMP, BFD) and N directors, each
                       gvs and BIRD (docs/lab.md "Cluster lab"); --vrrp: an
                       active/standby pair, VRRP holding the VIP, connections synced
  gvs lab flows [--conns N] [--rate M] [--duration D] [--json]
                       hold long-lived connections and open short ones through the
                       VIP; report broken and moved connections each second
  gvs lab event kill|silent|heal|drain|join|restart|rs-add|rs-del|router-reset [TARGET]
                       one cluster event: a director's gvs killed, its link silenced
                       or healed, a drain, a (re)start, a real server added or removed
                       on every director, the router's BIRD restarted

Run "gvs lab up -h" for a command's flags.`

func cmdLab(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: gvs lab up|down|status|demo|flows|event (see gvs lab -h)", errUsage)
	}
	switch args[0] {
	case "up":
		return cmdLabUp(args[1:], stdout, stderr)
	case "down":
		return cmdLabDown(args[1:], stdout, stderr)
	case "status":
		return cmdLabStatus(args[1:], stdout, stderr)
	case "demo":
		return cmdLabDemo(args[1:], stdout, stderr)
	case "flows":
		return cmdLabFlows(args[1:], stdout, stderr)
	case "event":
		return cmdLabEvent(args[1:], stdout, stderr)
	case "serve", "rs-tun":
		// Hidden: the lab's own helpers, started by it inside the namespaces.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := lab.RunHelper(ctx, args, stderr)
		if errors.Is(err, lab.ErrUsage) {
			return fmt.Errorf("%w: lab %v", errUsage, err)
		}
		return err
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, labHelp)
		return errHelp
	}
	return fmt.Errorf("%w: unknown lab command %q (up, down, status, demo, flows or event)", errUsage, args[0])
}

const labUpHelp = `Usage: gvs lab up [flags]

Builds a lab: namespaces <prefix>-client, -sw, -dir1 (-dir2), -rs1 … -rsN on
198.18.0.0/24 (NAT adds -gw and puts the client on 198.18.1.0/24), starts each real
server's HTTP server (answers its name on :80) and UDP echo (:53), writes each
director's gvs config, and prints the topology and the commands to try. The lab stays
up until gvs lab down. Ctrl-C while it is being built removes what was made.

Examples:
  gvs lab up
  gvs lab up --mode nat --real-servers 3
  gvs lab up --mode tun --prefix tun --directors 2
  gvs lab up --prefix seed --subnet 172.19.0.0/24      # the seed's addresses
  gvs lab up --cluster 3                               # cluster mode: router, 3 directors, 4 real servers`

func cmdLabUp(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("lab up", labUpHelp, stderr)
	mode := fs.String("mode", "dr", "forwarding method the topology is for: dr, nat or tun; or ha: seed 004, two load balancers running gvs with VRRP only (kernel VIPs, a web server each)")
	var spec lab.Spec
	fs.IntVar(&spec.RealServers, "real-servers", 2, "number of real servers (1..32)")
	fs.IntVar(&spec.Directors, "directors", 1, "number of directors: 1, or 2 for VRRP")
	fs.StringVar(&spec.Prefix, "prefix", lab.DefaultPrefix, "prefix of every name the lab makes (lowercase letter, then up to 11 letters or digits)")
	subnet := fs.String("subnet", "198.18.0.0/24", "the LAN of client, directors and real servers (IPv4, at most /25)")
	fs.StringVar(&spec.StateDir, "state-dir", lab.DefaultStateDir, "where the lab's state, logs and configs go")
	fs.IntVar(&spec.Cluster, "cluster", 0, "cluster mode: this many directors (2..8), each running gvs and BIRD, behind a router namespace running BIRD with ECMP and BFD (DR; 4 real servers unless --real-servers)")
	fs.BoolVar(&spec.ClusterNoSync, "no-sync", false, "with --cluster: each director hears no peer (the sync-off baseline)")
	fs.StringVar(&spec.ClusterScheduler, "scheduler", "", "with --cluster: the services' scheduler, mh (default) or rr")
	fs.BoolVar(&spec.ClusterVRRP, "vrrp", false, "with --cluster: an active/standby pair instead of ECMP — a [[vrrp]] instance holds the VIP (dir1 at priority 150), connections are synced between the directors, no BIRD ([cluster] announce = \"vrrp\", docs/cluster.md §14)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if spec.Cluster != 0 {
		if !flagSet(fs, "real-servers") {
			spec.RealServers = 0
		}
		if flagSet(fs, "directors") {
			return fmt.Errorf("%w: lab up: --cluster sets the number of directors; leave out --directors", errUsage)
		}
		spec.Directors = 0
		if err := lab.ClusterPreflight(spec.ClusterVRRP); err != nil {
			return fmt.Errorf("lab up: %w", err)
		}
	} else if spec.ClusterNoSync || spec.ClusterScheduler != "" || spec.ClusterVRRP {
		return fmt.Errorf("%w: lab up: --no-sync, --scheduler and --vrrp need --cluster", errUsage)
	}
	var err error
	ha := strings.EqualFold(*mode, "ha")
	if ha {
		spec.Mode, spec.Directors = lab.DR, 2
	} else if spec.Mode, err = lab.ParseMode(*mode); err != nil {
		return fmt.Errorf("%w: lab up: --mode: %v (or ha)", errUsage, err)
	}
	if spec.Subnet, err = netip.ParsePrefix(*subnet); err != nil {
		return fmt.Errorf("%w: lab up: --subnet: %v", errUsage, err)
	}
	spec.Detach = true
	if _, err := spec.Resolve(); err != nil {
		return fmt.Errorf("%w: lab up: %v", errUsage, err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stderr, "building lab %q (%s) ...\n", spec.Prefix, spec.Mode)
	l, err := lab.Up(ctx, spec)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("lab up: interrupted; everything made was removed: %w", err)
		}
		return fmt.Errorf("lab up: %w", err)
	}
	if ha {
		if _, err := l.StartHA(ctx); err != nil {
			if derr := l.Down(); derr != nil {
				err = errors.Join(err, derr)
			}
			return fmt.Errorf("lab up: seed 004: %w", err)
		}
		stop()
		return l.WriteHAGuide(stdout)
	}
	if spec.Cluster != 0 {
		wait := func() error { return l.WaitAnnounced(ctx, lab.ClusterUpTimeout) }
		what := "every director's announcement"
		if spec.ClusterVRRP {
			wait = func() error { return l.WaitMaster(ctx, lab.ClusterUpTimeout, "dir1") }
			what = "dir1 to hold the VIP (VRRP MASTER)"
		}
		fmt.Fprintf(stderr, "waiting up to %v for %s ...\n", lab.ClusterUpTimeout, what)
		if err := wait(); err != nil {
			fmt.Fprintf(stderr, "warning: %v (the lab stays up; see the logs in %s)\n", err, l.RunDir())
		}
		stop()
		return l.WriteClusterGuide(stdout)
	}
	stop()
	return l.WriteGuide(stdout)
}

const labDownHelp = `Usage: gvs lab down [--prefix P | --all-stale]

Removes a lab: stops the processes it started (by PID), deletes its namespaces (and
with them every link, address and route), and removes its logs, configs and state
file. Removing a lab that is not there is not an error. --all-stale removes every lab
whose creator is gone and that cannot be in use: test labs whose test died, and labs
whose namespaces have disappeared.

Examples:
  gvs lab down
  gvs lab down --prefix tun
  gvs lab down --all-stale`

func cmdLabDown(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("lab down", labDownHelp, stderr)
	prefix := fs.String("prefix", lab.DefaultPrefix, "prefix of the lab to remove")
	allStale := fs.Bool("all-stale", false, "remove every stale lab instead")
	dir := fs.String("state-dir", lab.DefaultStateDir, "where labs keep their state")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *allStale {
		if flagSet(fs, "prefix") {
			return fmt.Errorf("%w: lab down: --prefix and --all-stale exclude each other", errUsage)
		}
		removed, err := lab.DownStale(*dir)
		for _, p := range removed {
			fmt.Fprintf(stdout, "lab %s: removed\n", p)
		}
		if len(removed) == 0 && err == nil {
			fmt.Fprintln(stdout, "no stale labs")
		}
		if err != nil {
			return fmt.Errorf("lab down: %w", err)
		}
		return nil
	}
	if err := lab.Down(*dir, *prefix); err != nil {
		return fmt.Errorf("lab down: %w", err)
	}
	fmt.Fprintf(stdout, "lab %s: down\n", *prefix)
	return nil
}

const labStatusHelp = `Usage: gvs lab status [--prefix P]

Shows a lab's namespaces with their addresses and its processes, each checked
against the system now; without --prefix, every lab that has a state file.`

func cmdLabStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("lab status", labStatusHelp, stderr)
	prefix := fs.String("prefix", "", "prefix of the lab to show (default: all)")
	dir := fs.String("state-dir", lab.DefaultStateDir, "where labs keep their state")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	prefixes := []string{*prefix}
	if *prefix == "" {
		var err error
		if prefixes, err = lab.List(*dir); err != nil {
			return fmt.Errorf("lab status: %w", err)
		}
		if len(prefixes) == 0 {
			fmt.Fprintf(stdout, "no labs in %s (gvs lab up builds one)\n", *dir)
			return nil
		}
	}
	var out strings.Builder
	for i, p := range prefixes {
		r, err := lab.Status(*dir, p)
		if err != nil {
			return fmt.Errorf("lab status: %w", err)
		}
		if i > 0 {
			out.WriteString("\n")
		}
		r.WriteTo(&out)
	}
	_, err := io.WriteString(stdout, out.String())
	return err
}

// flagSet reports whether a flag was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

const labDemoHelp = `Usage: gvs lab demo [--prefix P] [--cluster]

Runs the seed article's LVS-DR experiment end to end and tears it down: builds a DR
lab (client, director, rs1, rs2), starts gvs run in the director, makes ten HTTP
requests through the VIP from the client (rr answers rs2 rs1 rs2 rs1 …), and shows
the director's wire: the first SYN arriving and leaving with only its MACs rewritten
(tcpdump -e -n when tcpdump is installed, gvs's own capture otherwise). Needs root.

--cluster builds a cluster lab instead (three directors, each gvs and BIRD, behind a
router with ECMP and BFD), holds long-lived connections and opens short ones through
the VIP, SIGKILLs dir2's gvs under that load, and reports how fast the router dropped
it and how many connections broke, second by second: the goal is none. It fails if a
long-lived connection broke. Needs root and bird (Debian: bird2).

Examples:
  sudo gvs lab demo
  sudo gvs lab demo --cluster --conns 600 --rate 100`

func cmdLabDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("lab demo", labDemoHelp, stderr)
	prefix := fs.String("prefix", "", "name prefix (default: gvd + random)")
	mode := fs.String("mode", "dr", "dr: the LVS-DR experiment; ha: seed 004's two load balancers with VRRP only, and a failover")
	cluster := fs.Bool("cluster", false, "cluster mode: a director of three killed under load")
	conns := fs.Int("conns", 300, "with --cluster: long-lived connections")
	rate := fs.Int("rate", 50, "with --cluster: new connections a second")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cluster {
		res, err := lab.ClusterDemo(ctx, stdout, lab.Spec{Prefix: *prefix}, lab.FlowsOptions{Conns: *conns, Rate: *rate})
		if err != nil {
			return fmt.Errorf("lab demo: %w", err)
		}
		if d := res.Report.Total.Sub(res.Before); d.Broken > 0 {
			return fmt.Errorf("lab demo: %d long-lived connections broke after the kill", d.Broken)
		}
		return nil
	}
	switch strings.ToLower(*mode) {
	case "ha":
		if err := lab.HADemo(ctx, stdout, lab.Spec{Prefix: *prefix}); err != nil {
			return fmt.Errorf("lab demo: %w", err)
		}
		return nil
	case "dr":
	default:
		return fmt.Errorf("%w: lab demo: --mode %q: dr or ha", errUsage, *mode)
	}
	res, err := lab.Demo(ctx, stdout, lab.Spec{Prefix: *prefix})
	if err != nil {
		return fmt.Errorf("lab demo: %w", err)
	}
	if len(res.Answers) != 10 {
		return fmt.Errorf("lab demo: %d of 10 requests answered", len(res.Answers))
	}
	return nil
}

const labFlowsHelp = `Usage: gvs lab flows [--prefix P] [--conns N] [--rate M] [--duration D] [--json]

Load for a cluster lab (or any lab), from its client: holds N long-lived TCP
connections to the VIP's HTTP port, each asking GET /whoami every --interval, and
opens M short connections a second. A long-lived connection is broken when a
request on it is reset, unanswered within --timeout or finds it closed (it is then
reopened), and moved when another real server than its first answers. Prints
each second's counts and the totals; --json prints the whole report as JSON at the
end instead. Run gvs lab event in another terminal meanwhile.

Example:
  gvs lab flows --prefix gvs --conns 1200 --rate 200 --duration 2m`

func cmdLabFlows(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("lab flows", labFlowsHelp, stderr)
	prefix := fs.String("prefix", lab.DefaultPrefix, "prefix of the lab")
	dir := fs.String("state-dir", lab.DefaultStateDir, "where labs keep their state")
	var o lab.FlowsOptions
	fs.IntVar(&o.Conns, "conns", 100, "long-lived connections to hold")
	fs.IntVar(&o.Rate, "rate", 20, "short connections to open a second")
	fs.DurationVar(&o.Interval, "interval", time.Second, "between a long-lived connection's requests")
	fs.DurationVar(&o.Timeout, "timeout", 5*time.Second, "for an answer or a connect")
	duration := fs.Duration("duration", 30*time.Second, "how long to run (Ctrl-C ends it sooner)")
	asJSON := fs.Bool("json", false, "print the report as JSON at the end, nothing before")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *duration <= 0 {
		return fmt.Errorf("%w: lab flows: --duration must be positive", errUsage)
	}
	l, err := lab.Open(*dir, *prefix)
	if err != nil {
		return fmt.Errorf("lab flows: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if !*asJSON {
		o.Report = func(s lab.FlowsSecond) { fmt.Fprintf(stdout, "%4ds  %v\n", s.Second, s.FlowCounts) }
	}
	f, err := l.StartFlows(ctx, o)
	if err != nil {
		return fmt.Errorf("lab flows: %w", err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(*duration):
	}
	r := f.Stop()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(stdout, "total  %v\n", r.Total)
	return nil
}

const labEventHelp = `Usage: gvs lab event [--prefix P] [--state-dir DIR] KIND [TARGET]

One event in a cluster lab (gvs lab up --cluster N). KIND and TARGET:
  kill DIR       SIGKILL DIR's gvs (its announcement device vanishes with it)
  silent DIR     DIR's switch port forwards nothing, either way; gvs and BIRD run on,
                 their link up, and notice nothing but silence
  heal DIR       undo silent
  drain DIR      SIGTERM DIR's gvs: it withdraws, forwards for drain_time, exits
  join DIR       start DIR's gvs (not running)
  restart DIR    start DIR's gvs again (a running one is SIGKILLed first)
  rs-add [RS]    add real server RS on every running director with gvs adm (default:
                 the spare, the last real server)
  rs-del [RS]    remove it the same way
  router-reset   restart the router's BIRD: its routes go, then come back
The configs follow rs-add and rs-del, so a restarted director has its peers' set.

Examples:
  gvs lab event kill dir2
  gvs lab event restart dir2
  gvs lab event rs-add`

func cmdLabEvent(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("lab event", labEventHelp, stderr)
	prefix := fs.String("prefix", lab.DefaultPrefix, "prefix of the lab")
	dir := fs.String("state-dir", lab.DefaultStateDir, "where labs keep their state")
	// Flags first, then KIND [TARGET]: parseFlags refuses arguments.
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return fmt.Errorf("%w: %s: %v", errUsage, fs.Name(), err)
	}
	rest := fs.Args()
	if len(rest) < 1 || len(rest) > 2 {
		return fmt.Errorf("%w: lab event: want KIND [TARGET] (%s)", errUsage, strings.Join(lab.EventKinds, ", "))
	}
	target := ""
	if len(rest) == 2 {
		target = rest[1]
	}
	l, err := lab.Open(*dir, *prefix)
	if err != nil {
		return fmt.Errorf("lab event: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	if err := l.Event(ctx, rest[0], target); err != nil {
		return fmt.Errorf("lab event: %w", err)
	}
	fmt.Fprintf(stdout, "lab %s: %s %s done in %.0f ms\n", *prefix, rest[0], target, time.Since(start).Seconds()*1000)
	return nil
}
