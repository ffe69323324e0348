package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
)

// teardownTimeout bounds Down: every wait inside is bounded too, this is the
// backstop for a hung `ip`.
const teardownTimeout = 30 * time.Second

// A Lab is a running topology. It is safe for concurrent use. A Lab made by Up
// waits for the processes it started; one made by Open (for a lab another process
// built) finds them by PID.
type Lab struct {
	spec  Spec // resolved: no zero fields
	hosts []Host
	log   *slog.Logger

	mu       sync.Mutex
	st       *state
	children map[int]*child // processes started through this value, by PID
}

// A child is a process this Lab value started and reaps.
type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once Wait has returned
}

// Preflight reports why a lab cannot be built here (not root, no `ip`, no network
// namespaces, no TUN device for TUN mode), or nil. Tests skip on its error.
func Preflight(m Mode) error {
	if os.Geteuid() != 0 {
		return errors.New("lab: needs root (network namespaces, veth, bridges)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("lab: needs iproute2's ip: %w", err)
	}
	if err := netnsUsable(); err != nil {
		return err
	}
	if m == TUN {
		if _, err := os.Stat("/dev/net/tun"); err != nil {
			return fmt.Errorf("lab: TUN mode needs /dev/net/tun: %w", err)
		}
	}
	return nil
}

// Up builds the lab spec describes: namespaces, switch, links, addresses,
// sysctls, and the real servers' processes, waiting until every server listens.
// If anything fails, or ctx ends first, Up removes everything it made and returns
// the error. The lab lives until Down, also beyond the calling process when
// spec.Detach is set.
func Up(ctx context.Context, spec Spec) (*Lab, error) {
	s, err := spec.Resolve()
	if err != nil {
		return nil, err
	}
	if err := Preflight(s.Mode); err != nil {
		return nil, err
	}
	self, err := selfID()
	if err != nil {
		return nil, err
	}
	l := newLab(s)
	st := &state{
		Version: stateVersion, Prefix: s.Prefix, Created: time.Now().UTC().Truncate(time.Second),
		Owner: self, Detach: s.Detach, Spec: toJSON(s),
	}
	for _, h := range l.hosts {
		st.Namespaces = append(st.Namespaces, h.NS)
	}
	// The state file first: it is the prefix's lock, and it lets Down find whatever
	// exists if this process dies half way.
	if err := createState(s.StateDir, st); err != nil {
		return nil, err
	}
	l.st = st
	if err := l.checkFree(ctx); err != nil {
		// Those namespaces are not ours: give back the prefix, touch nothing else.
		os.Remove(statePath(s.StateDir, s.Prefix))
		os.Remove(runDir(s.StateDir, s.Prefix))
		return nil, err
	}
	if err := l.build(ctx); err != nil {
		err = fmt.Errorf("lab %s: up: %w", s.Prefix, err)
		if derr := l.Down(); derr != nil {
			err = errors.Join(err, fmt.Errorf("lab %s: tearing down after the failure: %w", s.Prefix, derr))
		}
		return nil, err
	}
	l.log.Info("lab up", "prefix", s.Prefix, "mode", s.Mode, "hosts", len(l.hosts))
	return l, nil
}

// Open returns the lab with this prefix that another process (or an earlier run)
// built, from its state file in dir ("" = DefaultStateDir). ErrNotFound if there
// is none.
func Open(dir, prefix string) (*Lab, error) {
	st, err := loadState(dir, prefix)
	if err != nil {
		return nil, err
	}
	s, err := st.Spec.spec(prefix, stateDir(dir), st.Detach)
	if err != nil {
		return nil, fmt.Errorf("lab %s: state: %w", prefix, err)
	}
	l := newLab(s)
	l.st = st
	return l, nil
}

func newLab(s Spec) *Lab {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Lab{spec: s, hosts: plan(s), log: log, children: make(map[int]*child)}
}

func selfID() (procID, error) {
	pid := os.Getpid()
	_, start, err := procStat(pid)
	if err != nil {
		return procID{}, fmt.Errorf("lab: own start time: %w", err)
	}
	return procID{PID: pid, Start: start}, nil
}

// Spec returns the lab's spec with every default filled in.
func (l *Lab) Spec() Spec { return l.spec }

// Prefix returns the lab's prefix.
func (l *Lab) Prefix() string { return l.spec.Prefix }

// VIP returns the lab's virtual address.
func (l *Lab) VIP() netip.Addr { return l.spec.VIP }

// Hosts returns the lab's hosts: switch, gateway (NAT), client, directors, real
// servers. The slice is a copy.
func (l *Lab) Hosts() []Host { return slices.Clone(l.hosts) }

// Host returns the host named name ("client", "dir1", "rs2", "gw", "sw").
func (l *Lab) Host(name string) (Host, bool) {
	for _, h := range l.hosts {
		if h.Name == name {
			return h, true
		}
	}
	return Host{}, false
}

// hostsWith returns the hosts of one role.
func (l *Lab) hostsWith(r Role) []Host {
	var hs []Host
	for _, h := range l.hosts {
		if h.Role == r {
			hs = append(hs, h)
		}
	}
	return hs
}

func (l *Lab) ns(host string) (string, error) {
	h, ok := l.Host(host)
	if !ok {
		return "", fmt.Errorf("lab %s: no host %q", l.spec.Prefix, host)
	}
	return h.NS, nil
}

// Do runs fn on an OS thread inside host's network namespace (see InNetns).
func (l *Lab) Do(host string, fn func() error) error {
	ns, err := l.ns(host)
	if err != nil {
		return err
	}
	return InNetns(ns, fn)
}

// Command returns `ip netns exec <ns> argv...`: argv run inside host's namespace
// (with /sys remounted for it), as a student types it.
func (l *Lab) Command(ctx context.Context, host string, argv ...string) (*exec.Cmd, error) {
	ns, err := l.ns(host)
	if err != nil {
		return nil, err
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...), nil
}

// RunDir returns the directory holding the lab's logs and generated configs.
func (l *Lab) RunDir() string { return runDir(l.spec.StateDir, l.spec.Prefix) }

// StatePath returns the lab's state file.
func (l *Lab) StatePath() string { return statePath(l.spec.StateDir, l.spec.Prefix) }

// Procs returns the processes the lab started, as recorded in its state.
func (l *Lab) Procs() []Proc {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.st.Procs)
}

// checkFree fails if any of the lab's namespace names is taken.
func (l *Lab) checkFree(ctx context.Context) error {
	have, err := namespaces(ctx)
	if err != nil {
		return err
	}
	for _, h := range l.hosts {
		if have[h.NS] {
			return fmt.Errorf("lab %s: %w: namespace %s exists without a state file; if it is left from an earlier lab, remove it with gvs lab down --prefix %s", l.spec.Prefix, ErrExists, h.NS, l.spec.Prefix)
		}
	}
	return nil
}

// build makes everything after the state file. Each step checks ctx, so an
// interrupt stops between steps and Up tears down.
func (l *Lab) build(ctx context.Context) error {
	s := l.spec
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"namespaces", l.addNamespaces},
		{"switch", l.buildSwitch},
		{"hosts", l.configureHosts},
		{"director configs", l.writeConfigs},
		{"servers", l.startServers},
	}
	if s.Cluster != 0 {
		steps = append(steps, struct {
			name string
			fn   func(context.Context) error
		}{"cluster", l.startCluster})
	}
	for _, st := range steps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("before %s: %w", st.name, context.Cause(ctx))
		}
		l.log.Debug("lab step", "prefix", s.Prefix, "step", st.name)
		if err := st.fn(ctx); err != nil {
			if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
				// The interrupt killed a command: say so, errors.Is included.
				return fmt.Errorf("%s: %w (%w)", st.name, context.Cause(ctx), err)
			}
			return fmt.Errorf("%s: %w", st.name, err)
		}
	}
	return nil
}

func (l *Lab) addNamespaces(ctx context.Context) error {
	var lines []string
	for _, h := range l.hosts {
		lines = append(lines, "netns add "+h.NS)
	}
	return ipBatch(ctx, "", lines)
}

// buildSwitch makes the bridges and every veth pair from inside the switch's
// namespace, the host end created directly in the host's namespace: no link ever
// exists in the caller's namespace, not even for a moment.
func (l *Lab) buildSwitch(ctx context.Context) error {
	sw := l.hosts[0]
	// A switch does not speak: no IPv6 link-local chatter from its ports. The
	// bridge netfilter hooks cost every path 20-30% (docs/lab.md); the knobs exist only
	// with br_netfilter, and the per-bridge nf_call_* options below cover the rest.
	if err := setSysctls(sw.NS, []sysctl{
		{key: "net.ipv6.conf.all.disable_ipv6", val: "1", optional: true},
		{key: "net.ipv6.conf.default.disable_ipv6", val: "1", optional: true},
		{key: "net.bridge.bridge-nf-call-iptables", val: "0", optional: true},
		{key: "net.bridge.bridge-nf-call-ip6tables", val: "0", optional: true},
		{key: "net.bridge.bridge-nf-call-arptables", val: "0", optional: true},
	}); err != nil {
		return err
	}
	bridges := []string{bridgeInside}
	if l.spec.Mode == NAT || l.spec.Cluster != 0 {
		bridges = append(bridges, bridgeOutside)
	}
	lines := []string{"link set dev lo up"}
	for _, br := range bridges {
		// No STP (ports forward at once), no netfilter, no multicast snooping (VRRP
		// adverts and everything else flood like on a dumb switch).
		lines = append(lines,
			"link add name "+br+" type bridge stp_state 0 mcast_snooping 0 nf_call_iptables 0 nf_call_ip6tables 0 nf_call_arptables 0",
			"link set dev "+br+" up")
	}
	for _, h := range l.hosts[1:] {
		for _, k := range h.Links {
			lines = append(lines,
				fmt.Sprintf("link add name %s type veth peer name %s address %s netns %s", k.Port, k.Name, k.MAC, h.NS),
				fmt.Sprintf("link set dev %s master %s up", k.Port, k.Bridge))
		}
	}
	if err := ipBatch(ctx, sw.NS, lines); err != nil {
		return err
	}
	var ports []string
	for _, h := range l.hosts[1:] {
		for _, k := range h.Links {
			ports = append(ports, k.Port)
		}
	}
	l.offloadsOff(sw.NS, ports)
	return nil
}

// configureHosts sets each host's sysctls, then its addresses and routes. The
// sysctls go first so that ARP behaves from the moment eth0 comes up.
func (l *Lab) configureHosts(ctx context.Context) error {
	for _, h := range l.hosts[1:] {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		if err := setSysctls(h.NS, l.sysctls(h)); err != nil {
			return err
		}
		if err := ipBatch(ctx, h.NS, l.ipLines(h)); err != nil {
			return err
		}
		var names []string
		for _, k := range h.Links {
			names = append(names, k.Name)
		}
		l.offloadsOff(h.NS, names)
	}
	return nil
}

// offloadsOff turns TSO, GSO and GRO off on the interfaces devs of namespace ns,
// so that every frame crossing a director is MTU-sized: a veth otherwise passes
// 64 KB GSO frames up to AF_PACKET, which a director cannot forward. Failures
// are logged: the lab still works for small transfers.
func (l *Lab) offloadsOff(ns string, devs []string) {
	err := InNetns(ns, func() error {
		var errs []error
		for _, dev := range devs {
			if err := offloadsOff(dev); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		l.log.Warn("lab: cannot turn segmentation offloads off; large transfers through a director may stall", "ns", ns, "err", err)
	}
}

// sysctls returns a host's settings.
func (l *Lab) sysctls(h Host) []sysctl {
	var s []sysctl
	set := func(key, val string) { s = append(s, sysctl{key: key, val: val}) }
	if l.spec.IPv6 {
		// No duplicate address detection, for link-local addresses too (nodad only
		// covers the addresses the lab adds): while eth0's link-local address is
		// tentative (about a second after link up) a host does not resolve its
		// neighbours, and a real server's first reply waits for a retransmission.
		devs := []string{"all", "default"}
		for _, k := range h.Links {
			devs = append(devs, k.Name)
		}
		for _, dev := range devs {
			set("net.ipv6.conf."+dev+".accept_dad", "0")
		}
	}
	switch h.Role {
	case Director:
		// gvs forwards from userspace: the kernel must not forward VIP traffic
		// too (gvs run refuses to start where it would), nor send redirects.
		set("net.ipv4.ip_forward", "0")
		for _, dev := range []string{"all", "default", "eth0"} {
			set("net.ipv4.conf."+dev+".forwarding", "0")
			set("net.ipv4.conf."+dev+".send_redirects", "0")
		}
		if l.spec.IPv6 {
			set("net.ipv6.conf.all.forwarding", "0")
		}
	case Router:
		return clusterRouterSysctls()
	case Gateway:
		set("net.ipv4.ip_forward", "1")
		if l.spec.IPv6 {
			set("net.ipv6.conf.all.forwarding", "1")
		}
	case RealServer:
		if l.spec.Mode == NAT {
			break
		}
		// The VIP sits on lo: answer ARP only for addresses of the interface
		// asked on (arp_ignore=1), and never announce the VIP as an ARP source
		// (arp_announce=2). The kernel takes the larger of "all" and the
		// device's value, so "all" and lo are set, as the seeds do.
		for _, dev := range []string{"all", "lo"} {
			set("net.ipv4.conf."+dev+".arp_ignore", "1")
			set("net.ipv4.conf."+dev+".arp_announce", "2")
		}
		if l.spec.Mode == TUN {
			// Decapsulated packets come in on tun0 from a client that routes via
			// eth0: strict reverse-path filtering would drop them. "default"
			// covers tun0, made later by the decapsulator.
			for _, dev := range []string{"all", "default", "eth0"} {
				set("net.ipv4.conf."+dev+".rp_filter", "0")
			}
		}
	}
	return s
}

// ipLines returns a host's ip -batch lines: lo up, addresses, routes.
func (l *Lab) ipLines(h Host) []string {
	lines := []string{"link set dev lo up"}
	for _, k := range h.Links {
		lines = append(lines, fmt.Sprintf("address add %s dev %s", k.Addr, k.Name))
		if k.Addr6.IsValid() {
			// nodad: usable at once, no 1-2 s of duplicate address detection.
			lines = append(lines, fmt.Sprintf("address add %s dev %s nodad", k.Addr6, k.Name))
		}
		lines = append(lines, fmt.Sprintf("link set dev %s up", k.Name))
	}
	v6 := l.spec.IPv6
	if l.spec.Cluster != 0 {
		return append(lines, l.clusterRoutes(h)...)
	}
	switch {
	case h.Role == RealServer && l.spec.Mode != NAT:
		lines = append(lines, fmt.Sprintf("address add %s/32 dev lo", l.spec.VIP))
		if v6 {
			// IPv6 needs no arp_ignore: Linux answers a neighbour solicitation only
			// for an address of the interface it arrived on (ndisc_recv_ns looks
			// the target up with strict=1), and joins the VIP's solicited-node group
			// on lo only. Its own solicitations take eth0's address as source
			// (never the VIP, which is on another interface): no arp_announce
			// either. TestLabIPv6VIPHidden checks it.
			lines = append(lines, fmt.Sprintf("address add %s/128 dev lo nodad", VIP6))
		}
	case h.Role == RealServer && l.spec.Mode == NAT:
		// Replies must pass back through the director, which un-NATs them.
		dir1, _ := l.Host("dir1")
		lines = append(lines, fmt.Sprintf("route add default via %s dev eth0", dir1.Addr()))
		if v6 {
			lines = append(lines, fmt.Sprintf("route add ::/0 via %s dev eth0", dir1.Addr6()))
		}
	case h.Role == Client && l.spec.Mode == NAT:
		gw, _ := l.Host("gw")
		lines = append(lines, fmt.Sprintf("route add default via %s dev eth0", gw.Links[1].Addr.Addr()))
		if v6 {
			lines = append(lines, fmt.Sprintf("route add ::/0 via %s dev eth0", gw.Links[1].Addr6.Addr()))
		}
	}
	return lines
}

// writeConfigs writes DirectorConfig for each director into RunDir, so
// `gvs run -c` and `gvs check -c` have a file to point at.
func (l *Lab) writeConfigs(context.Context) error {
	for _, h := range l.hostsWith(Director) {
		c, err := l.DirectorConfig(h.Name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(l.ConfigPath(h.Name), []byte(c), 0o644); err != nil {
			return fmt.Errorf("lab: director config: %w", err)
		}
	}
	return nil
}

// ConfigPath returns where Up wrote DirectorConfig(director).
func (l *Lab) ConfigPath(director string) string {
	return filepath.Join(l.RunDir(), director+".toml")
}

// startServers starts each real server's HTTP/UDP server and, in TUN mode, its
// decapsulator, and waits until each is ready.
func (l *Lab) startServers(ctx context.Context) error {
	for _, h := range l.hostsWith(RealServer) {
		args := []string{"lab", "serve", "--name", h.Name,
			"--http", ":" + strconv.Itoa(int(l.spec.HTTPPort)),
			"--udp", ":" + strconv.Itoa(int(l.spec.UDPPort))}
		if l.spec.IPv6 {
			args = append(args, "--ipv6")
		}
		if _, err := l.start(ctx, h.Name, "serve", true, args...); err != nil {
			return err
		}
		if l.spec.Mode == TUN {
			if _, err := l.start(ctx, h.Name, "rs-tun", true, "lab", "rs-tun", "--dev", tunDev); err != nil {
				return err
			}
		}
	}
	return nil
}

// tunDev is the TUN device the decapsulator writes inner packets into.
const tunDev = "tun0"

// Down removes the lab: it stops the processes the lab started (by PID, SIGTERM
// then SIGKILL, bounded), deletes its namespaces (which takes the veths, bridges,
// addresses and routes with them), and removes its logs, configs and state file.
// It is idempotent. A namespace still used by a process the lab did not start
// (say a tcpdump) loses its name at once but lives until that process exits; Down
// then returns an error wrapping ErrBusy that names it.
func (l *Lab) Down() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
	defer cancel()
	return teardown(ctx, l.spec.StateDir, l.spec.Prefix, l.st, l.children)
}

// Down removes the lab with this prefix that an earlier Up made, in this process
// or another, from its state file in dir ("" = DefaultStateDir). Without a state
// file it still deletes every namespace the prefix can have made, but kills no
// process: it knows of none it started. Removing a lab that does not exist is
// not an error.
func Down(dir, prefix string) error {
	if !prefixRE.MatchString(prefix) {
		return fmt.Errorf("lab: prefix %q: want a lowercase letter then up to 11 lowercase letters or digits", prefix)
	}
	st, err := loadState(dir, prefix)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
	defer cancel()
	return teardown(ctx, stateDir(dir), prefix, st, nil)
}

// DownStale removes every lab in dir ("" = DefaultStateDir) whose creator is gone
// and that cannot be in use: a lab that was not detached (a test, say) whose
// creating process died without tearing it down, or a detached one whose
// namespaces have all disappeared. It returns the prefixes it removed. Labs of
// running creators, and detached labs that still exist, are left alone.
func DownStale(dir string) ([]string, error) {
	prefixes, err := List(dir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
	defer cancel()
	have, err := namespaces(ctx)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, p := range prefixes {
		st, err := loadState(dir, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !stale(st, have) {
			continue
		}
		if err := teardown(ctx, stateDir(dir), p, st, nil); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}

// stale reports whether a lab's creator is gone and the lab cannot be in use.
func stale(st *state, have map[string]bool) bool {
	if alive(st.Owner) {
		return false
	}
	if !st.Detach {
		return true
	}
	for _, ns := range st.Namespaces {
		if have[ns] {
			return false
		}
	}
	return true
}

// teardown is Down's body. st may be nil (no state file); children holds the
// processes the calling Lab value started and reaps.
func teardown(ctx context.Context, dir, prefix string, st *state, children map[int]*child) error {
	var errs []error
	// Processes first, newest first: a namespace is only really gone once no
	// process is left in it.
	if st != nil {
		for i := len(st.Procs) - 1; i >= 0; i-- {
			p := st.Procs[i]
			if err := stop(p, children[p.PID]); err != nil {
				errs = append(errs, fmt.Errorf("lab %s: stop %s %s: %w", prefix, p.Host, p.Name, err))
			}
		}
	}
	have, err := namespaces(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	mine := namespaceRE(prefix)
	var recorded []string
	if st != nil {
		recorded = st.Namespaces
	}
	var del []string
	for ns := range have {
		if mine.MatchString(ns) || slices.Contains(recorded, ns) {
			del = append(del, ns)
		}
	}
	slices.Sort(del)
	var busy []error
	for _, ns := range del {
		if pids, err := nsPIDs(ctx, ns); err == nil && len(pids) > 0 {
			var who []string
			for _, pid := range pids {
				who = append(who, fmt.Sprintf("%d (%s)", pid, comm(pid)))
			}
			busy = append(busy, fmt.Errorf("lab %s: %w: %s holds %v; it lives until they exit", prefix, ErrBusy, ns, who))
		}
		if err := ipBatch(ctx, "", []string{"netns del " + ns}); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		// Keep the state file: Down can be run again.
		return errors.Join(append(errs, busy...)...)
	}
	if err := os.RemoveAll(runDir(dir, prefix)); err != nil {
		errs = append(errs, fmt.Errorf("lab %s: %w", prefix, err))
	}
	if err := os.Remove(statePath(dir, prefix)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("lab %s: %w", prefix, err))
	}
	return errors.Join(append(errs, busy...)...)
}

// comm returns a process's command name, for messages.
func comm(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return "?"
	}
	return string(trimNL(b))
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
