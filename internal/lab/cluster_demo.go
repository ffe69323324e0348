package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteClusterGuide writes what gvs lab up --cluster built and what to try.
func (l *Lab) WriteClusterGuide(w io.Writer) error {
	s := l.spec
	gvs := l.gvsCommand()
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	if s.ClusterVRRP {
		p("Lab %q is up: an active/standby pair of %d directors (gvs, VRRP holding the VIP: dir1 at priority 150; connections synced between them), %d real servers, VIP %v (on the directors' LAN, found by ARP).", s.Prefix, s.Directors, s.RealServers, s.VIP)
	} else {
		p("Lab %q is up: a cluster of %d directors (gvs + BIRD) behind a router (BIRD, ECMP, BFD), %d real servers, VIP %v (routed).", s.Prefix, s.Directors, s.RealServers, s.VIP)
	}
	if s.ClusterNoSync {
		p("Sync is off (each director's sync goes to its own address): the baseline.")
	}
	p("")
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAMESPACE\tIF\tADDRESS\tROLE")
	for _, h := range l.hosts {
		for i, k := range h.Links {
			role := ""
			if i == 0 {
				role = l.describe(h)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", h.NS, k.Name, k.Addr, role)
		}
	}
	tw.Flush()
	var names []string
	for _, h := range l.ClusterServers() {
		names = append(names, h.Name)
	}
	rs := l.hostsWith(RealServer)
	p("")
	p("The services list %s; %s is the spare `event rs-add` adds.", strings.Join(names, ", "), rs[len(rs)-1].Name)
	if s.ClusterVRRP {
		p("Configs and logs: %s", l.RunDir())
		p("")
		p("Try:")
		p("  ip -n %s-router neigh show %v                  # the MAC of the director holding the VIP", s.Prefix, s.VIP)
		p("  %s adm --socket %s/dir1.sock --vrrp            # MASTER, or BACKUP with its preemption held while it syncs", gvs, l.RunDir())
	} else {
		p("Configs, logs and BIRD control sockets: %s", l.RunDir())
		p("")
		p("Try:")
		p("  ip -n %s-router route show %v                 # one next hop per announcing director", s.Prefix, s.VIP)
		p("  birdc -s %s show protocols", l.BirdSocket("router"))
	}
	state := ""
	if s.StateDir != DefaultStateDir {
		state = " --state-dir " + s.StateDir
	}
	p("  %s lab flows --prefix %s%s --conns 300 --rate 50 --duration 60s", gvs, s.Prefix, state)
	p("  %s lab event --prefix %s%s kill dir2            # then: restart dir2", gvs, s.Prefix, state)
	p("  %s adm --socket %s/dir1.sock --cluster         # peers, sync, gates", gvs, l.RunDir())
	p("  %s adm --socket %s/dir1.sock -Lnc", gvs, l.RunDir())
	p("  %s lab down --prefix %s%s", gvs, s.Prefix, state)
	_, err := io.WriteString(w, b.String())
	return err
}

// ClusterUpTimeout bounds the wait for every director's announcement: BGP
// sessions come up within a few seconds (connect delay 1 s), gvs announces
// once its bulk sync and its gate's rise are done.
const ClusterUpTimeout = 60 * time.Second

// WaitAnnounced waits until the router has exactly the named directors (all when
// none are named) as next hops for the VIP.
func (l *Lab) WaitAnnounced(ctx context.Context, timeout time.Duration, directors ...string) error {
	if len(directors) == 0 {
		for _, d := range l.hostsWith(Director) {
			directors = append(directors, d.Name)
		}
	}
	w, err := l.WatchRoutes()
	if err != nil {
		return err
	}
	defer w.Stop()
	_, err = w.Until(ctx, time.Now(), timeout, l.Exactly(directors...))
	return err
}

// WaitMaster waits until director's VRRP instance VI_1 is MASTER (an active/standby
// cluster lab, Spec.ClusterVRRP: the director holds the VIP), asking its gvs adm
// --vrrp every 100 ms; the error names the state last seen.
func (l *Lab) WaitMaster(ctx context.Context, timeout time.Duration, director string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := "no answer"
	for {
		if out, err := l.admCmd(director, "--vrrp").Output(); err == nil {
			for _, line := range strings.Split(string(out), "\n") {
				if f := strings.Fields(line); len(f) > 3 && f[0] == "VI_1" {
					if last = f[3]; last == "MASTER" {
						return nil
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lab %s: %s's VRRP instance VI_1 not MASTER after %v (last seen: %s)", l.spec.Prefix, director, timeout, last)
		case <-tick.C:
		}
	}
}

// ClusterDemoResult is what ClusterDemo observed.
type ClusterDemoResult struct {
	Withdraw time.Duration // from the SIGKILL to dir2 leaving the router's route
	Before   FlowCounts    // totals just before the kill
	Report   FlowsReport
}

// ClusterDemo builds a cluster lab of three directors, holds long-lived
// connections and opens short ones through the VIP, SIGKILLs dir2's gvs under
// that load and reports the withdraw time and the connections broken, second by
// second. The lab is torn down at the end, also on error or cancellation.
func ClusterDemo(ctx context.Context, w io.Writer, spec Spec, o FlowsOptions) (*ClusterDemoResult, error) {
	if spec.Prefix == "" {
		var b [2]byte
		_, _ = rand.Read(b[:])
		spec.Prefix = "gvc" + hex.EncodeToString(b[:])
	}
	if spec.Cluster == 0 {
		spec.Cluster = 3
	}
	if o.Conns == 0 {
		o.Conns = 300
	}
	if o.Rate == 0 {
		o.Rate = 50
	}
	fmt.Fprintf(w, "== gvs lab demo --cluster: %d directors behind an ECMP router, one killed under load\n", spec.Cluster)
	if err := ClusterPreflight(spec.ClusterVRRP); err != nil {
		return nil, err
	}
	l, err := Up(ctx, spec)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := l.Down(); err != nil {
			fmt.Fprintf(w, "teardown: %v\n", err)
		}
	}()
	if err := l.WriteClusterGuide(w); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "\n== waiting for the router to have every director as a next hop for %v\n", l.VIP())
	start := time.Now()
	if err := l.WaitAnnounced(ctx, ClusterUpTimeout); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "   %d next hops after %.1f s\n", spec.Cluster, time.Since(start).Seconds())
	rw, err := l.WatchRoutes()
	if err != nil {
		return nil, err
	}
	defer rw.Stop()
	fmt.Fprintf(w, "\n== %d long-lived connections (a request each second), %d new connections a second\n", o.Conns, o.Rate)
	o.Report = func(s FlowsSecond) { fmt.Fprintf(w, "   %3ds  %v\n", s.Second, s.FlowCounts) }
	f, err := l.StartFlows(ctx, o)
	if err != nil {
		return nil, err
	}
	res := &ClusterDemoResult{}
	stopped := false
	defer func() {
		if !stopped {
			f.Stop()
		}
	}()
	pause := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	if err := pause(5 * time.Second); err != nil {
		return nil, err
	}
	res.Before = f.Counts()
	fmt.Fprintf(w, "\n== SIGKILL gvs on %s-dir2\n", l.Prefix())
	t0 := time.Now()
	if err := l.Event(ctx, EventKill, "dir2"); err != nil {
		return nil, err
	}
	at, err := rw.Until(ctx, t0, 10*time.Second, l.Without("dir2"))
	if err != nil {
		return nil, err
	}
	res.Withdraw = at.Sub(t0)
	fmt.Fprintf(w, "   the router dropped dir2 after %.0f ms: next hops %s\n", res.Withdraw.Seconds()*1000, fmtHops(rw.Hops()))
	if err := pause(10 * time.Second); err != nil {
		return nil, err
	}
	stopped = true
	res.Report = f.Stop()
	d := res.Report.Total.Sub(res.Before)
	fmt.Fprintf(w, "\n== since the kill: %d long-lived connections broken (%d reset, %d timed out, %d closed), %d moved; short: %d ok, %d failed\n",
		d.Broken, d.Reset, d.Timeout, d.Closed, d.Moved, d.ShortOK, d.ShortFailed)
	return res, nil
}
