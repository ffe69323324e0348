package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/gvs-lb/gvs/internal/lab"
)

const labHelp = `Usage: gvs lab up|down|status|demo [flags]

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
  gvs lab demo [--prefix P]
                       the seed's DR experiment end to end: rs2 rs1 rs2 rs1 …, the
                       MAC rewrite on the director's wire, then tear down

Run "gvs lab up -h" for a command's flags.`

func cmdLab(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: gvs lab up|down|status|demo (see gvs lab -h)", errUsage)
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
	return fmt.Errorf("%w: unknown lab command %q (up, down, status or demo)", errUsage, args[0])
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
  gvs lab up --prefix seed --subnet 172.19.0.0/24      # the seed's addresses`

func cmdLabUp(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("lab up", labUpHelp, stderr)
	mode := fs.String("mode", "dr", "forwarding method the topology is for: dr, nat or tun; or ha: seed 004, two load balancers running gvs with VRRP only (kernel VIPs, a web server each)")
	var spec lab.Spec
	fs.IntVar(&spec.RealServers, "real-servers", 2, "number of real servers (1..32)")
	fs.IntVar(&spec.Directors, "directors", 1, "number of directors: 1, or 2 for VRRP")
	fs.StringVar(&spec.Prefix, "prefix", lab.DefaultPrefix, "prefix of every name the lab makes (lowercase letter, then up to 11 letters or digits)")
	subnet := fs.String("subnet", "198.18.0.0/24", "the LAN of client, directors and real servers (IPv4, at most /25)")
	fs.StringVar(&spec.StateDir, "state-dir", lab.DefaultStateDir, "where the lab's state, logs and configs go")
	if err := parseFlags(fs, args); err != nil {
		return err
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

const labDemoHelp = `Usage: gvs lab demo [--prefix P]

Runs the seed article's LVS-DR experiment end to end and tears it down: builds a DR
lab (client, director, rs1, rs2), starts gvs run in the director, makes ten HTTP
requests through the VIP from the client (rr answers rs2 rs1 rs2 rs1 …), and shows
the director's wire: the first SYN arriving and leaving with only its MACs rewritten
(tcpdump -e -n when tcpdump is installed, gvs's own capture otherwise). Needs root.

Example:
  sudo gvs lab demo`

func cmdLabDemo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("lab demo", labDemoHelp, stderr)
	prefix := fs.String("prefix", "", "name prefix (default: gvd + random)")
	mode := fs.String("mode", "dr", "dr: the LVS-DR experiment; ha: seed 004's two load balancers with VRRP only, and a failover")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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
