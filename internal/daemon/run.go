package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/health"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/control"
)

// Options configure Run.
type Options struct {
	ConfigPath string
	Logger     *slog.Logger // nil: discard
	// Workers is the number of AF_PACKET rings (and goroutines) in the fanout group;
	// 0 = one per CPU.
	Workers int
	// Reload receives a value for every reload request (SIGHUP in gvs run).
	Reload <-chan struct{}
}

// Run runs a director until ctx is cancelled: it checks the host, opens one ring per
// worker on the configured interface, answers ARP/NDP for the VIPs (announcing them
// with gratuitous ARP), forwards VIP traffic and reloads the configuration on request
// keeping every connection.
func Run(ctx context.Context, o Options) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return err
	}
	ifi, err := hostChecker{procSys: "/proc/sys"}.check(cfg.Director.Interface)
	if err != nil {
		return err
	}
	// Take the control socket and the metrics port before touching the network, so
	// a second director on the same socket fails cleanly.
	var ctl *control.Listener
	if cfg.Director.ControlSocket != "" {
		if ctl, err = control.Listen(cfg.Director.ControlSocket); err != nil {
			return err
		}
		defer ctl.Close()
	}
	var metricsLn net.Listener
	if cfg.Director.MetricsListen != "" {
		if metricsLn, err = net.Listen("tcp", cfg.Director.MetricsListen); err != nil {
			return fmt.Errorf("metrics_listen: %w", err)
		}
		defer metricsLn.Close()
	}

	r := &runner{log: log, ifi: ifi, nb: &neighbors{ifi: ifi, procARP: "/proc/net/arp", timeout: 500 * time.Millisecond}}
	opts := DirectorOptions(cfg, log)
	if len(opts.MAC) == 0 {
		opts.MAC = ifi.HardwareAddr
	}
	if !opts.Addr4.IsValid() {
		opts.Addr4 = ifaceAddr(ifi, true)
	}
	if !opts.Addr6.IsValid() {
		opts.Addr6 = ifaceAddr(ifi, false)
	}
	if opts.MTU == 0 || opts.MTU > ifi.MTU {
		opts.MTU = ifi.MTU
	}
	if len(opts.GatewayMAC) == 0 && hasNAT(cfg) {
		// NAT replies go back toward the clients through the default gateway.
		if gw := defaultGateway("/proc/net/route", ifi.Name); gw.IsValid() {
			if macs, _ := r.nb.resolve(ctx, []netip.Addr{gw}); macs[gw] != nil {
				opts.GatewayMAC = macs[gw]
				log.Info("NAT replies go to the default gateway", "gateway", gw, "mac", macs[gw].String())
			}
		}
		if len(opts.GatewayMAC) == 0 {
			log.Warn("NAT services but no gateway toward the clients: set [director] gateway_mac, or a default route on " + ifi.Name + "; replies are dropped (no_gateway) until then")
		}
	}
	r.d, err = dataplane.New(opts)
	if err != nil {
		return err
	}
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }

	// The configured services (config file, then gvs adm) live in the Admin; the
	// health layer shapes what the Director runs from them.
	r.hl = newHealthLayer(log)
	r.admin = NewAdmin(r.d, nil, AdminOptions{
		Now: now,
		Resolve: func(a netip.Addr) net.HardwareAddr {
			m, _ := r.nb.resolve(ctx, []netip.Addr{a})
			return m[a]
		},
		OnChange: r.applied,
		Names:    LoadNames("/etc/hosts", "/etc/services"),
		Logger:   log,
		Transform: func(specs []dataplane.ServiceSpec) []dataplane.ServiceSpec {
			eff, cmds := r.hl.effective(specs)
			runCommands(log, cmds)
			return eff
		},
	})
	r.mon = health.NewMonitor(health.Options{Logger: log, Notify: func(tr health.Transition) {
		r.hl.transition(tr)
		if r.metrics != nil {
			svc, server := r.hl.label(tr.ID)
			r.metrics.SetHealth(svc, server, tr.Up)
		}
		if err := r.admin.Reapply(); err != nil {
			log.Error("applying a health transition", "err", err)
		}
	}})
	specs, macs := r.resolve(ctx, cfg)
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	fanout := uint16(os.Getpid())
	filter := filterFor(specs)
	for i := 0; i < workers; i++ {
		ring, err := dataplane.OpenRing(ifi.Name, dataplane.RingConfig{FanoutID: fanout, Filter: filter})
		if err != nil {
			r.closeRings()
			return fmt.Errorf("open ring %d on %s: %w", i, ifi.Name, err)
		}
		r.rings = append(r.rings, ring)
	}
	defer r.closeRings()
	if r.garp, err = openGARP(ifi); err != nil {
		return err
	}
	defer r.garp.close()
	r.vrrpCfg, r.vrrpGroups = cfg.VRRP, cfg.VRRPSyncGroups
	if len(cfg.VRRP) > 0 {
		// With VRRP the director serves nothing until an instance becomes master.
		r.d.SetOwned([]netip.Addr{})
		if r.vrrp, err = newVRRP(log, r.d, cfg.VRRP, cfg.VRRPSyncGroups, r.hl.serviceUp); err != nil {
			return err
		}
		defer r.vrrp.close()
	}
	if cfg.Director.IngressDrop {
		r.guard = newIngressGuard(ifi.Name)
		defer func() {
			// The context is already cancelled here: remove with a fresh one.
			if err := r.guard.remove(context.Background()); err != nil {
				log.Warn("removing the ingress guard", "err", err)
			}
		}()
	}
	if err := r.configure(cfg, specs, macs); err != nil {
		return err
	}
	log.Info("serving", "interface", ifi.Name, "mac", opts.MAC.String(), "workers", workers, "services", len(specs), "vips", len(filter.VIPs))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, workers+3)
	ws := make([]*dataplane.Worker, workers)
	for i, ring := range r.rings {
		ws[i] = r.d.NewWorker(ring.BatchSize())
		wg.Add(1)
		go func(ring *dataplane.Ring, w *dataplane.Worker) {
			defer wg.Done()
			if err := dataplane.Pump(ctx, ring, w, now); err != nil {
				errs <- err
				cancel()
			}
		}(ring, ws[i])
	}
	background := func(name string, run func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	if metricsLn != nil {
		r.metrics = NewMetrics(r.admin)
		if r.vrrp != nil {
			r.vrrp.onState = r.metrics.SetVRRPState
			for _, v := range cfg.VRRP {
				r.metrics.SetVRRPState(v.Name, "INIT")
			}
		}
		background("metrics", func(ctx context.Context) error { return r.metrics.Serve(ctx, metricsLn) })
	}
	if r.vrrp != nil {
		background("vrrp", r.vrrp.run)
	}
	background("health checks", r.mon.Run)
	background("rate estimator", r.admin.Run)
	if ctl != nil {
		background("control socket", func(ctx context.Context) error { return ctl.Serve(ctx, r.admin) })
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// Real servers' MACs are refreshed like a neighbour cache: a server that was
	// unreachable at start or whose MAC changed is found again.
	refresh := time.NewTicker(30 * time.Second)
	defer refresh.Stop()
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-errs:
			runErr = err
			break loop
		case <-tick.C:
			// Expire connections even when no traffic arrives to drive it.
			r.d.Table().Expire(now(), 0)
		case <-refresh.C:
			r.refreshMACs(ctx)
		case <-o.Reload:
			if err := r.reload(ctx, o.ConfigPath); err != nil {
				log.Error("reload failed; keeping the running configuration", "err", err)
			}
		}
	}
	cancel()
	r.closeRings()
	wg.Wait()
	for i, w := range ws {
		log.Info("worker stopped", "worker", i, "in", w.C.In, "forwarded", w.C.Forwarded, "generated", w.C.Generated)
	}
	return runErr
}

type runner struct {
	log     *slog.Logger
	ifi     *net.Interface
	nb      *neighbors
	d       *dataplane.Director
	rings   []*dataplane.Ring
	guard   *ingressGuard // nil unless ingress_drop
	hl      *healthLayer
	mon     *health.Monitor
	admin   *Admin
	metrics *Metrics            // nil unless metrics_listen
	vrrp    *vrrpManager        // nil without [[vrrp]]
	garp    *garpSender         // gratuitous ARP / unsolicited NA for reloads and adm changes
	pinned  map[netip.Addr]bool // real servers whose MAC the config pins (main loop only)
	// The VRRP settings the instances run with: a reload compares against them.
	vrrpCfg    []config.VRRP
	vrrpGroups []config.VRRPSyncGroup
}

func (r *runner) closeRings() {
	for _, ring := range r.rings {
		ring.Close()
	}
}

// resolve builds the service specs, filling in the MAC of every real server (and
// sorry server) whose MAC is not pinned, from the neighbour table or ARP. Unresolved
// ones are logged; the Director counts their packets as no_mac until a reload finds
// them. It returns the specs and the MACs it found.
func (r *runner) resolve(ctx context.Context, cfg *config.Config) ([]dataplane.ServiceSpec, map[netip.Addr]net.HardwareAddr) {
	specs := Services(cfg)
	var need []netip.Addr
	seen := map[netip.Addr]bool{}
	want := func(a netip.Addr) {
		if !seen[a] {
			seen[a] = true
			need = append(need, a)
		}
	}
	r.pinned = map[netip.Addr]bool{}
	for i, s := range specs {
		for _, rs := range s.RealServers {
			if len(rs.MAC) == 0 {
				want(rs.Addr)
			} else {
				r.pinned[rs.Addr] = true
			}
		}
		if sv := &cfg.Services[i]; sv.SorryServer.IsValid() && sv.SorryServerMAC.IsZero() {
			want(sv.SorryServer.Addr())
		}
	}
	if len(need) == 0 {
		return specs, nil
	}
	macs, missing := r.nb.resolve(ctx, need)
	for i := range specs {
		for j := range specs[i].RealServers {
			rs := &specs[i].RealServers[j]
			if len(rs.MAC) == 0 {
				rs.MAC = macs[rs.Addr]
			}
		}
	}
	for _, a := range missing {
		r.log.Warn("no MAC address for real server: its packets are dropped (no_mac) until it answers ARP or a mac is pinned", "addr", a)
	}
	return specs, macs
}

// configure (re)configures the health layer and the Monitor for cfg and makes specs
// the configured services (discarding gvs adm changes, as a keepalived reload does).
func (r *runner) configure(cfg *config.Config, specs []dataplane.ServiceSpec, macs map[netip.Addr]net.HardwareAddr) error {
	hs, err := r.hl.configure(cfg, specs, macs)
	if err != nil {
		return err
	}
	if err := r.mon.Update(hs); err != nil {
		return err
	}
	r.hl.seed(r.mon.Snapshot())
	if err := r.admin.Replace(specs); err != nil {
		return fmt.Errorf("%s: %w", cfg.File, err)
	}
	return nil
}

// applied follows every accepted change of the configured services (a reload or a
// gvs adm command): the rings' filter, the ingress guard and the VIP announcements.
// It runs with the Admin's lock held.
func (r *runner) applied(specs []dataplane.ServiceSpec) {
	filter := filterFor(specs)
	for _, ring := range r.rings {
		if err := ring.SetFilter(filter); err != nil {
			r.log.Warn("ring filter", "err", err)
		}
	}
	if r.guard != nil {
		if err := r.guard.install(context.Background(), filter.VIPs); err != nil {
			r.log.Warn("ingress guard", "err", err)
		}
	}
	r.announce(filter.VIPs)
}

func (r *runner) reload(ctx context.Context, path string) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	if cfg.Director.Interface != r.ifi.Name {
		return fmt.Errorf("%s: [director] interface changed from %s to %s: restart gvs to change interfaces", cfg.File, r.ifi.Name, cfg.Director.Interface)
	}
	specs, macs := r.resolve(ctx, cfg)
	if err := r.configure(cfg, specs, macs); err != nil {
		return err
	}
	r.log.Info("reloaded", "services", len(specs), "connections", r.d.Table().Len())
	if changed := vrrpChanges(r.vrrpCfg, cfg.VRRP, r.vrrpGroups, cfg.VRRPSyncGroups); len(changed) > 0 {
		r.log.Warn("reload: [[vrrp]] settings are applied when gvs starts, not on reload; the running instances keep theirs: restart gvs to apply the change (the backup takes over meanwhile)",
			"changed", changed)
	}
	return nil
}

// vrrpChanges names what differs between two sets of VRRP settings, ignoring where
// in the file they are: "vrrp VI_1", "vrrp_sync_group VG_1" (changed, added or
// removed), in the new file's order, then the removed ones.
func vrrpChanges(old, cur []config.VRRP, oldG, curG []config.VRRPSyncGroup) []string {
	var out []string
	type key struct{ kind, name string }
	seen := map[key]bool{}
	for _, v := range cur {
		seen[key{"vrrp", v.Name}] = true
		i := slices.IndexFunc(old, func(o config.VRRP) bool { return o.Name == v.Name })
		if i < 0 {
			out = append(out, "vrrp "+v.Name+" (added)")
			continue
		}
		a, b := old[i], v
		a.Line, b.Line = 0, 0
		if !reflect.DeepEqual(a, b) {
			out = append(out, "vrrp "+v.Name)
		}
	}
	for _, g := range curG {
		seen[key{"group", g.Name}] = true
		i := slices.IndexFunc(oldG, func(o config.VRRPSyncGroup) bool { return o.Name == g.Name })
		switch {
		case i < 0:
			out = append(out, "vrrp_sync_group "+g.Name+" (added)")
		case !slices.Equal(oldG[i].Group, g.Group):
			out = append(out, "vrrp_sync_group "+g.Name)
		}
	}
	for _, v := range old {
		if !seen[key{"vrrp", v.Name}] {
			out = append(out, "vrrp "+v.Name+" (removed)")
		}
	}
	for _, g := range oldG {
		if !seen[key{"group", g.Name}] {
			out = append(out, "vrrp_sync_group "+g.Name+" (removed)")
		}
	}
	return out
}

// announce sends a gratuitous ARP (unsolicited NA for IPv6) for each VIP, so
// neighbours learn (or re-learn) that this director serves it.
func (r *runner) announce(vips []netip.Addr) {
	if r.vrrp != nil {
		// Only a VRRP master announces, and only the VIPs it owns.
		vips = r.vrrp.ownedOf(vips)
	}
	if r.garp == nil || len(vips) == 0 {
		return
	}
	// Its own socket: a ring's WriteBatch belongs to its worker goroutine.
	if err := r.garp.send(vips); err != nil && !errors.Is(err, net.ErrClosed) {
		r.log.Warn("gratuitous ARP", "err", err)
	}
}

// filterFor is the ring filter for a configuration: VIPs, NAT real servers' replies,
// ARP, NDP and VRRP.
func filterFor(specs []dataplane.ServiceSpec) *dataplane.Filter {
	f := &dataplane.Filter{ARP: true, NDP: true, VRRP: true}
	seen := map[netip.Addr]bool{}
	add := func(list *[]netip.Addr, a netip.Addr) {
		if a.IsValid() && !seen[a] {
			seen[a] = true
			*list = append(*list, a)
		}
	}
	for _, s := range specs {
		add(&f.VIPs, s.Addr)
		for _, m := range s.Match {
			add(&f.VIPs, m.Addr)
		}
	}
	for _, s := range specs {
		for _, rs := range s.RealServers {
			if rs.Method == dataplane.MethodNAT {
				add(&f.NATRealServers, rs.Addr)
			}
		}
	}
	return f
}

func ifaceAddr(ifi *net.Interface, v4 bool) netip.Addr {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if v4 && ip.Is4() {
			return ip
		}
		if !v4 && ip.Is6() && !ip.IsLinkLocalUnicast() {
			return ip
		}
	}
	return netip.Addr{}
}

// refreshMACs resolves the MAC of every real server the config does not pin again and
// gives the Director the ones that changed (or were missing). It runs in Run's loop.
func (r *runner) refreshMACs(ctx context.Context) {
	specs := r.admin.Specs()
	var addrs []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, s := range specs {
		for _, rs := range s.RealServers {
			if !r.pinned[rs.Addr] && !seen[rs.Addr] {
				seen[rs.Addr] = true
				addrs = append(addrs, rs.Addr)
			}
		}
	}
	if len(addrs) == 0 {
		return
	}
	macs, _ := r.nb.resolve(ctx, addrs)
	changed := false
	for _, s := range specs {
		for _, rs := range s.RealServers {
			if hw, ok := macs[rs.Addr]; ok && !bytes.Equal(hw, rs.MAC) {
				changed = true
			}
		}
	}
	if !changed {
		return
	}
	err := r.admin.Update(func(specs []dataplane.ServiceSpec) ([]dataplane.ServiceSpec, error) {
		for i := range specs {
			for j := range specs[i].RealServers {
				rs := &specs[i].RealServers[j]
				if hw, ok := macs[rs.Addr]; ok && !r.pinned[rs.Addr] {
					rs.MAC = hw
				}
			}
		}
		return specs, nil
	})
	if err != nil {
		r.log.Warn("refreshing real servers' MAC addresses", "err", err)
		return
	}
	r.log.Info("real servers' MAC addresses refreshed")
}
