package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gvs-lb/gvs/bench"
	"github.com/gvs-lb/gvs/internal/lab"
)

const benchLiveHelp = `Usage: gvs bench live [--rounds N] [--seconds S] [--pin|--unpinned] [--json]

Measures the live data path in a throwaway DR lab (needs root, trafgen from
netsniff-ng, nft, taskset, wrk). Each round sends 64-byte UDP frames with trafgen from
the client for S seconds to each of: the real servers directly over the bridge (the
ceiling), an nftables DNAT load balancer (numgen) in the director's namespace, and gvs
run in the director's namespace; the real servers count what arrives (rx_packets). It
reports delivered Mpps per round, medians, and gvs/nft, gvs/bridge, nft/bridge ratios
taken within each round. Pinned: trafgen on --gen-cpu, gvs on --dir-cpu (the kernel
paths run in trafgen's softirq, on its CPU); unpinned: no taskset. Then wrk
(connections/s with Connection: close, and latency) through the VIP vs directly to rs1.
Without --pin or --unpinned, both are measured. The lab is always torn down.

Examples:
  gvs bench live
  gvs bench live --rounds 5 --seconds 10 --pin --json`

// cmdBenchLive is `gvs bench live`.
func cmdBenchLive(args []string, stdout, stderr io.Writer) error {
	o := bench.DefaultLive()
	fs := newFlags("live", benchLiveHelp, stderr)
	fs.IntVar(&o.Rounds, "rounds", o.Rounds, "interleaved rounds")
	secs := fs.Float64("seconds", o.Duration.Seconds(), "measured seconds per path and round")
	pin := fs.Bool("pin", false, "measure pinned only")
	unpinned := fs.Bool("unpinned", false, "measure unpinned only")
	fs.IntVar(&o.GenCPU, "gen-cpu", o.GenCPU, "CPU of the generator when pinned")
	fs.IntVar(&o.DirCPU, "dir-cpu", o.DirCPU, "CPU of gvs run when pinned")
	fs.IntVar(&o.Workers, "workers", o.Workers, "gvs run --workers")
	fs.IntVar(&o.Flows, "flows", o.Flows, "UDP flows (source ports) trafgen cycles through")
	fs.BoolVar(&o.IngressDrop, "ingress-drop", o.IngressDrop, "ingress_drop = true in gvs's config")
	noWRK := fs.Bool("no-wrk", false, "skip the wrk runs")
	fs.IntVar(&o.WRKSeconds, "wrk-seconds", o.WRKSeconds, "seconds per wrk run")
	fs.IntVar(&o.WRKConns, "wrk-connections", o.WRKConns, "wrk -c")
	fs.StringVar(&o.StateDir, "state-dir", "", "lab state directory (default the lab's)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *secs <= 0 || o.Rounds <= 0 {
		return fmt.Errorf("%w: live: --seconds and --rounds must be positive", errUsage)
	}
	o.Duration = time.Duration(*secs * float64(time.Second))
	o.Pin, o.Unpinned = *pin || !*unpinned, *unpinned || !*pin
	o.WRK = !*noWRK
	if err := o.CheckTools(); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A hard bound on the whole run: every slot, gvs start and wrk run, plus slack.
	slots := o.Rounds * 3 * 2
	limit := time.Duration(slots)*(o.Duration+o.Warmup+20*time.Second) + 3*time.Minute
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	res, err := runBenchLive(ctx, o, exe, stderr)
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
