package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The cluster lab (docs/lab.md "Cluster lab"): a router namespace running BIRD spreads the
// routed VIP over N directors by ECMP; each director runs gvs in cluster mode and
// its own BIRD, configured from `gvs cluster bird-config`, which learns the VIP
// route gvs holds in its announcement table and announces it to the router over
// eBGP with BFD.
//
//	client 198.18.1.2 ── br1 ── 198.18.1.1 router 198.18.0.1 ── br0 ── dir1..N  .3 …
//	                                                                   └─ rs1..M .3+N …
//
// The real servers answer the client directly (DR) through the router, their
// default route.

// AS numbers of the lab's BGP sessions: one private AS for the router, one shared
// by every director (equal ASNs keep the paths equal for multipath).
const (
	clusterRouterAS   = 65000
	clusterDirectorAS = 65001
)

// clusterVIPOffset puts the routed VIP at .100 of the block after the outside
// network (198.18.2.100 by default): on neither LAN, so only the router's routes
// lead to it.
const clusterVIPOffset = 100

// resolveClusterVIP fills in a cluster lab's VIP, or says why the given one cannot
// be routed.
func (s *Spec) resolveClusterVIP() error {
	if !s.VIP.IsValid() {
		next, ok := blockAfter(s.Outside)
		if !ok {
			return fmt.Errorf("lab: outside network %v: no room for the cluster VIP after it", s.Outside)
		}
		s.VIP = offset(next, clusterVIPOffset)
	}
	if !s.VIP.Is4() || s.Subnet.Contains(s.VIP) || s.Outside.Contains(s.VIP) {
		return fmt.Errorf("lab: cluster VIP %v: want an IPv4 address outside %v and %v (it is routed, not on a LAN)", s.VIP, s.Subnet, s.Outside)
	}
	return nil
}

// clusterRouterSysctls are the router's settings: forwarding, and ECMP hashing on
// the L4 tuple (policy 1), so that the flows of one client spread over the
// directors and a membership change moves about half of them — the worst case
// the acceptance tests want (hash-threshold, the kernel's IPv4 multipath
// algorithm).
func clusterRouterSysctls() []sysctl {
	return []sysctl{
		{key: "net.ipv4.ip_forward", val: "1"},
		{key: "net.ipv4.fib_multipath_hash_policy", val: "1"},
		{key: "net.ipv6.fib_multipath_hash_policy", val: "1", optional: true},
	}
}

// clusterRoutes returns a cluster lab host's routes: the client and the real
// servers reach each other through the router.
func (l *Lab) clusterRoutes(h Host) []string {
	r, _ := l.Host("router")
	switch h.Role {
	case Router:
		if l.spec.ClusterVRRP {
			// Active/standby: the VIP is not routed to the directors but
			// held by the VRRP master, found by ARP on the directors' LAN.
			return []string{fmt.Sprintf("route add %s/32 dev %s", l.spec.VIP, r.Links[0].Name)}
		}
	case Client:
		return []string{fmt.Sprintf("route add default via %s dev eth0", r.Links[1].Addr.Addr())}
	case RealServer:
		return []string{
			fmt.Sprintf("address add %s/32 dev lo", l.spec.VIP),
			fmt.Sprintf("route add default via %s dev eth0", r.Addr()),
		}
	}
	return nil
}

// ClusterServers returns the real servers a cluster lab's services list now. At
// start that is all but the last, the spare that `event rs-add` adds (a lab of one
// real server lists it); rs-add and rs-del change the set.
func (l *Lab) ClusterServers() []Host {
	rs := l.hostsWith(RealServer)
	var names []string
	l.mu.Lock()
	if l.st != nil { // nil: a Lab only planned, never built or opened
		names = l.st.ClusterServers
	}
	l.mu.Unlock()
	if names == nil {
		if len(rs) > 1 {
			rs = rs[:len(rs)-1]
		}
		return rs
	}
	return slices.DeleteFunc(rs, func(h Host) bool { return !slices.Contains(names, h.Name) })
}

// admCmd is `gvs adm args...` for director's control socket.
func (l *Lab) admCmd(director string, args ...string) *exec.Cmd {
	return exec.Command(l.spec.Exe, append([]string{"adm", "--socket", filepath.Join(l.RunDir(), director+".sock")}, args...)...)
}

// clusterConfig is DirectorConfig in a cluster lab: [cluster] on, sync on eth0,
// and the VIP's TCP and UDP services scheduled by mh over the listed servers.
func (l *Lab) clusterConfig(h Host) string {
	s := l.spec
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# gvs lab %q (cluster of %d): config of director %s, written by gvs lab up.", s.Prefix, s.Cluster, h.Name)
	p("#   ip netns exec %s gvs run -c %s", h.NS, l.ConfigPath(h.Name))
	p("")
	p("[director]")
	p("interface = %q", h.Links[0].Name)
	p("mac = %q", h.MAC())
	p("address = %q", h.Addr())
	p("control_socket = %q", filepath.Join(l.RunDir(), h.Name+".sock"))
	if _, err := exec.LookPath("nft"); err == nil {
		p("ingress_drop = true")
	}
	p("# One client opening 200 connections a second reuses its ports within the")
	p("# 2 minutes a DR connection stays in FIN_WAIT here; with the kernel's default")
	p("# (1) a SYN that finds such an entry of a deleted real server is dropped")
	p("# (dest_deleted) as IPVS drops it. 3 reschedules it, as many clients would.")
	p("conn_reuse_mode = 3")
	p("# Metrics on the director's own loopback: ip netns exec %s curl -s %s/metrics", h.NS, clusterMetrics)
	p("metrics_listen = %q", clusterMetrics)
	p("")
	p("[cluster]")
	p("enabled = true")
	p("node_id = %q", h.Name)
	p("sync_interface = %q", h.Links[0].Name)
	if s.ClusterVRRP {
		p("# An active/standby pair: VI_1 below holds the VIP (docs/cluster.md §14).")
		p("announce = \"vrrp\"")
	} else {
		p("bird_socket = %q", l.BirdSocket(h.Name))
	}
	if s.ClusterBulkRate != 0 {
		p("bulk_rate = %d", s.ClusterBulkRate)
	}
	if s.ClusterSyncFlush != 0 {
		p("sync_flush = %q", s.ClusterSyncFlush.String())
	}
	if s.ClusterNoSync {
		p("# The lab's \"sync off\" baseline: sync and control go to this director's own")
		p("# address, which drops them as its own, so it hears no peer.")
		p("sync_peers = [%q]", h.Addr())
	}
	for _, svc := range []struct {
		proto string
		port  uint16
	}{{"tcp", s.HTTPPort}, {"udp", s.UDPPort}} {
		p("")
		p("[[service]]")
		p("address = %q", netip.AddrPortFrom(s.VIP, svc.port).String())
		p("protocol = %q", svc.proto)
		if s.ClusterScheduler == "rr" {
			p("scheduler = \"rr\"")
		} else {
			p("scheduler = \"mh\"")
			p("# mh-port: the client's port counts too, so the one client's connections")
			p("# spread over the real servers as many clients' would.")
			p("scheduler_flags = [\"mh-fallback\", \"mh-port\"]")
		}
		p("method = \"dr\"")
		for _, rs := range l.ClusterServers() {
			p("")
			p("  [[service.real_server]]")
			p("  address = %q", rs.Addr())
			p("  mac = %q", rs.MAC())
		}
	}
	if s.ClusterVRRP {
		prio := 100
		if h.Name == "dir1" {
			prio = 150
		}
		p("")
		p("[[vrrp]]")
		p("name = \"VI_1\"")
		p("interface = %q", h.Links[0].Name)
		p("virtual_router_id = 61")
		p("priority = %d", prio)
		p("advert_int = \"1s\"")
		p("virtual_ipaddress = [%q]", s.VIP.String())
	}
	return b.String()
}

// clusterMetrics is where each director serves its metrics, inside its namespace.
const clusterMetrics = "127.0.0.1:9100"

// birdPaths are one BIRD's files, all inside the lab's run directory.
type birdPaths struct{ conf, ctl, pid string }

func (l *Lab) birdPaths(host string) birdPaths {
	base := filepath.Join(l.RunDir(), host+"-bird")
	return birdPaths{conf: base + ".conf", ctl: base + ".ctl", pid: base + ".pid"}
}

// BirdSocket returns the control socket of host's BIRD ("router", "dir1"), for
// birdc -s.
func (l *Lab) BirdSocket(host string) string { return l.birdPaths(host).ctl }

// RouterBirdConfig returns the router's BIRD configuration: an eBGP session with
// BFD to each director, importing only the VIP, and a kernel protocol that merges
// the equal paths into one multipath route (ECMP).
func (l *Lab) RouterBirdConfig() string {
	r, _ := l.Host("router")
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# gvs lab %q: the router's BIRD, written by gvs lab up.", l.spec.Prefix)
	p("log stderr all;")
	p("router id %s;", r.Addr())
	p("")
	p("protocol device {")
	p("\tscan time 10;")
	p("}")
	p("")
	p("# One kernel route for the VIP with a next hop per announcing director.")
	p("protocol kernel {")
	p("\tmerge paths on;")
	p("\tipv4 {")
	p("\t\timport none;")
	p("\t\texport all;")
	p("\t};")
	p("}")
	p("")
	p("# BFD with the directors' timers: a silent director is gone in 0.3 s.")
	p("protocol bfd {")
	p("\tinterface %q {", r.Links[0].Name)
	p("\t\tmin rx interval 100 ms;")
	p("\t\tmin tx interval 100 ms;")
	p("\t\tmultiplier 3;")
	p("\t};")
	p("}")
	p("")
	p("template bgp director {")
	p("\tlocal %s as %d;", r.Addr(), clusterRouterAS)
	p("\tbfd on;")
	p("\thold time 9;")
	p("\tkeepalive time 3;")
	p("\tconnect delay time 1;")
	p("\tconnect retry time 5;")
	p("\terror wait time 1, 10;")
	p("\tipv4 {")
	p("\t\timport filter { if net = %s/32 then accept; reject; };", l.spec.VIP)
	p("\t\texport none;")
	p("\t};")
	p("}")
	for _, d := range l.hostsWith(Director) {
		p("")
		p("protocol bgp %s from director {", d.Name)
		p("\tneighbor %s as %d;", d.Addr(), clusterDirectorAS)
		p("}")
	}
	return b.String()
}

// DirectorBirdConfig returns director's BIRD configuration: what `gvs cluster
// bird-config` prints for its gvs config, logging to stderr (the lab's log file)
// instead of syslog.
func (l *Lab) DirectorBirdConfig(ctx context.Context, director string) (string, error) {
	h, ok := l.Host(director)
	if !ok || h.Role != Director {
		return "", fmt.Errorf("lab %s: %q is not a director", l.spec.Prefix, director)
	}
	r, _ := l.Host("router")
	cmd := exec.CommandContext(ctx, l.spec.Exe, "cluster", "bird-config", "-c", l.ConfigPath(director),
		"--router", r.Addr().String(), "--router-as", fmt.Sprint(clusterRouterAS), "--as", fmt.Sprint(clusterDirectorAS),
		"--interface", h.Links[0].Name, "--node-id", director)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("lab %s: %s: gvs cluster bird-config: %w: %s", l.spec.Prefix, director, err, strings.TrimSpace(stderr.String()))
	}
	const syslog = "log syslog all;"
	conf := string(out)
	if !strings.Contains(conf, syslog) {
		return "", fmt.Errorf("lab %s: %s: gvs cluster bird-config printed no %q line to replace", l.spec.Prefix, director, syslog)
	}
	return strings.Replace(conf, syslog, "log stderr all;", 1), nil
}

// startBird writes conf and runs BIRD in host's namespace in the foreground, with
// its control socket and pid file in the run directory.
func (l *Lab) startBird(ctx context.Context, host, conf string) (Proc, error) {
	bp := l.birdPaths(host)
	if err := os.WriteFile(bp.conf, []byte(conf), 0o644); err != nil {
		return Proc{}, fmt.Errorf("lab %s: %w", l.spec.Prefix, err)
	}
	return l.startArgv(ctx, host, "bird", false, []string{"bird", "-f", "-c", bp.conf, "-s", bp.ctl, "-P", bp.pid})
}

// ClusterPreflight reports why a cluster lab cannot run here: Preflight's
// reasons and no bridge tool (silent-death events cut a director's switch port);
// for an ECMP cluster also no BIRD and no TUN device (gvs's announcement device).
// An active/standby pair (vrrp: announce = "vrrp") runs neither.
func ClusterPreflight(vrrp bool) error {
	if err := Preflight(DR); err != nil {
		return err
	}
	tools := [][2]string{{"bridge", "iproute2"}, {"bird", "bird2"}, {"birdc", "bird2"}}
	if vrrp {
		tools = tools[:1]
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool[0]); err != nil {
			return fmt.Errorf("lab: a cluster lab needs %s (Debian: apt-get install %s): %w", tool[0], tool[1], err)
		}
	}
	if vrrp {
		return nil
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("lab: a cluster lab needs /dev/net/tun for gvs's announcement device: %w", err)
	}
	return nil
}

// startCluster is Up's last step in a cluster lab: the router's BIRD, then on each
// director its BIRD and gvs.
func (l *Lab) startCluster(ctx context.Context) error {
	if l.spec.ClusterVRRP {
		// An active/standby pair: no BIRD, only gvs.
		for _, d := range l.hostsWith(Director) {
			if _, err := l.StartDirector(ctx, d.Name, ""); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := l.startBird(ctx, "router", l.RouterBirdConfig()); err != nil {
		return err
	}
	for _, d := range l.hostsWith(Director) {
		conf, err := l.DirectorBirdConfig(ctx, d.Name)
		if err != nil {
			return err
		}
		if _, err := l.startBird(ctx, d.Name, conf); err != nil {
			return err
		}
		if _, err := l.StartDirector(ctx, d.Name, ""); err != nil {
			return err
		}
	}
	return nil
}

// proc returns the newest recorded process of host named name that still runs,
// and its child handle when this Lab value started it.
func (l *Lab) proc(host, name string) (Proc, *child, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.st.Procs) - 1; i >= 0; i-- {
		p := l.st.Procs[i]
		if p.Host == host && p.Name == name && alive(procID{PID: p.PID, Start: p.Start}) {
			return p, l.children[p.PID], true
		}
	}
	return Proc{}, nil, false
}

// signalWait sends sig to p (through its child handle if this value started it)
// and waits up to wait for it to exit; it forgets the process once gone.
func (l *Lab) signalWait(p Proc, c *child, sig syscall.Signal, wait time.Duration) error {
	id := procID{PID: p.PID, Start: p.Start}
	if c != nil {
		if err := c.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return err
		}
		select {
		case <-c.done:
		case <-time.After(wait):
			return fmt.Errorf("lab %s: %s %s (pid %d) still runs %v after %v", l.spec.Prefix, p.Host, p.Name, p.PID, wait, sig)
		}
	} else {
		if _, err := signalProc(id, sig); err != nil {
			return err
		}
		// Not alive(): a SIGKILLed multi-threaded process shows as a zombie while
		// its other threads still hold its sockets; wait until it is reaped.
		deadline := time.Now().Add(wait)
		for !reaped(id) {
			if time.Now().After(deadline) {
				return fmt.Errorf("lab %s: %s %s (pid %d) still runs %v after %v", l.spec.Prefix, p.Host, p.Name, p.PID, wait, sig)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.children, p.PID)
	l.st.Procs = slices.DeleteFunc(l.st.Procs, func(q Proc) bool { return q.PID == p.PID && q.Start == p.Start })
	return saveState(l.spec.StateDir, l.st)
}

// reaped reports whether the process id names has exited entirely: no such PID,
// the PID reused by another process, or a zombie none of whose threads runs any
// more (an orphan's zombie may wait a while for its reaper, but holds nothing).
func reaped(id procID) bool {
	state, start, err := procStat(id.PID)
	if err != nil || start != id.Start {
		return true
	}
	if state != 'Z' {
		return false
	}
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(id.PID) + "/task")
	return err != nil || len(tasks) <= 1
}

// Event kinds of `gvs lab event`.
const (
	EventKill        = "kill"         // SIGKILL the director's gvs
	EventSilent      = "silent"       // the director's switch port forwards nothing, both ways; gvs and BIRD keep running
	EventHeal        = "heal"         // undo silent
	EventDrain       = "drain"        // SIGTERM the director's gvs: it withdraws, forwards drain_time, exits
	EventJoin        = "join"         // start the director's gvs (it must not be running)
	EventRestart     = "restart"      // start the director's gvs again, killing a running one first
	EventRSAdd       = "rs-add"       // add a real server on every director (gvs adm)
	EventRSDel       = "rs-del"       // remove it on every director
	EventRouterReset = "router-reset" // restart the router's BIRD (SIGTERM: its routes go, then start)
)

// EventKinds lists the events in the order C5 runs them.
var EventKinds = []string{EventRSAdd, EventKill, EventRestart, EventSilent, EventHeal, EventDrain, EventJoin, EventRSDel, EventRouterReset}

// drainWait bounds a drain: gvs forwards for drain_time (3 s) before it exits.
const drainWait = 15 * time.Second

// Event applies one cluster event. target is the director ("dir2") for kill,
// silent, heal, drain, join and restart, the real server ("rs4") for rs-add and
// rs-del ("" = the spare, the last one), and ignored for router-reset. It
// returns when the event is done: the process gone (kill, drain), started
// (join, restart), the link cut or restored, the servers changed on every
// running director, BIRD restarted.
func (l *Lab) Event(ctx context.Context, kind, target string) error {
	if l.spec.Cluster == 0 {
		return fmt.Errorf("lab %s: events need a cluster lab (gvs lab up --cluster N)", l.spec.Prefix)
	}
	dir := func() (Host, error) {
		h, ok := l.Host(target)
		if !ok || h.Role != Director {
			return Host{}, fmt.Errorf("lab %s: event %s: %q is not a director (dir1 … dir%d)", l.spec.Prefix, kind, target, l.spec.Directors)
		}
		return h, nil
	}
	switch kind {
	case EventKill, EventDrain:
		h, err := dir()
		if err != nil {
			return err
		}
		p, c, ok := l.proc(h.Name, "director")
		if !ok {
			return fmt.Errorf("lab %s: event %s: gvs does not run on %s", l.spec.Prefix, kind, h.Name)
		}
		if kind == EventKill {
			return l.signalWait(p, c, syscall.SIGKILL, killTimeout)
		}
		return l.signalWait(p, c, syscall.SIGTERM, drainWait)
	case EventJoin, EventRestart:
		h, err := dir()
		if err != nil {
			return err
		}
		if p, c, ok := l.proc(h.Name, "director"); ok {
			if kind == EventJoin {
				return fmt.Errorf("lab %s: event join: gvs already runs on %s (pid %d); use restart", l.spec.Prefix, h.Name, p.PID)
			}
			if err := l.signalWait(p, c, syscall.SIGKILL, killTimeout); err != nil {
				return err
			}
		}
		_, err = l.StartDirector(ctx, h.Name, "")
		return err
	case EventSilent, EventHeal:
		h, err := dir()
		if err != nil {
			return err
		}
		return l.cutLink(ctx, h, kind == EventSilent)
	case EventRSAdd, EventRSDel:
		return l.changeServer(ctx, kind == EventRSAdd, target)
	case EventRouterReset:
		if p, c, ok := l.proc("router", "bird"); ok {
			if err := l.signalWait(p, c, syscall.SIGTERM, 2*stopTimeout); err != nil {
				return err
			}
		}
		_, err := l.startBird(ctx, "router", l.RouterBirdConfig())
		return err
	}
	return fmt.Errorf("lab %s: unknown event %q (%s)", l.spec.Prefix, kind, strings.Join(EventKinds, ", "))
}

// cutLink disables director h's port on the lab's switch (bridge port state
// disabled: the bridge forwards nothing to or from it), or enables it again. The
// director's own interface keeps its carrier and stays up, so neither gvs nor
// BIRD learns of the cut except by silence: a host that died without a word.
func (l *Lab) cutLink(ctx context.Context, h Host, cut bool) error {
	sw := l.hosts[0]
	state := "3" // forwarding
	if cut {
		state = "0" // disabled
	}
	args := []string{"-n", sw.NS, "link", "set", "dev", h.Links[0].Port, "state", state}
	if out, err := exec.CommandContext(ctx, "bridge", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("lab %s: bridge %s: %w: %s", l.spec.Prefix, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// changeServer adds or removes real server rs ("" = the spare) on every running
// director's TCP and UDP service, with gvs adm.
func (l *Lab) changeServer(ctx context.Context, add bool, rs string) error {
	all := l.hostsWith(RealServer)
	if rs == "" {
		rs = all[len(all)-1].Name
	}
	h, ok := l.Host(rs)
	if !ok || h.Role != RealServer {
		return fmt.Errorf("lab %s: %q is not a real server (rs1 … rs%d)", l.spec.Prefix, rs, len(all))
	}
	n := 0
	for _, d := range l.hostsWith(Director) {
		if _, _, ok := l.proc(d.Name, "director"); !ok {
			continue
		}
		n++
		for _, svc := range []struct {
			flag string
			port uint16
		}{{"-t", l.spec.HTTPPort}, {"-u", l.spec.UDPPort}} {
			args := []string{"adm", "--socket", filepath.Join(l.RunDir(), d.Name+".sock")}
			vs := netip.AddrPortFrom(l.spec.VIP, svc.port).String()
			if add {
				args = append(args, "-a", svc.flag, vs, "-r", h.Addr().String(), "-g", "-w", "1")
			} else {
				args = append(args, "-d", svc.flag, vs, "-r", h.Addr().String())
			}
			out, err := exec.CommandContext(ctx, l.spec.Exe, args...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("lab %s: %s: gvs %s: %w: %s", l.spec.Prefix, d.Name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
			}
		}
	}
	if n == 0 {
		return fmt.Errorf("lab %s: no director runs gvs", l.spec.Prefix)
	}
	var names []string
	for _, s := range l.ClusterServers() {
		if s.Name != rs {
			names = append(names, s.Name)
		}
	}
	if add {
		names = append(names, rs)
	}
	l.mu.Lock()
	l.st.ClusterServers = names
	err := saveState(l.spec.StateDir, l.st)
	l.mu.Unlock()
	if err != nil {
		return err
	}
	return l.writeConfigs(ctx)
}
