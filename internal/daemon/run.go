package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/health"
	"github.com/gvs-lb/gvs/internal/config"
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
	r.d, err = dataplane.New(opts)
	if err != nil {
		return err
	}
	specs, macs := r.resolve(ctx, cfg)
	r.hl = newHealthLayer(log)
	r.mon = health.NewMonitor(health.Options{Logger: log, Notify: func(tr health.Transition) {
		r.hl.transition(tr)
		r.reapply()
	}})
	if err := r.configureHealth(cfg, specs, macs); err != nil {
		return err
	}
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
	if cfg.Director.IngressDrop {
		r.guard = newIngressGuard(ifi.Name)
		if err := r.guard.install(ctx, filter.VIPs); err != nil {
			return fmt.Errorf("ingress_drop: %w", err)
		}
		defer func() {
			// The context is already cancelled here: remove with a fresh one.
			if err := r.guard.remove(context.Background()); err != nil {
				log.Warn("removing the ingress guard", "err", err)
			}
		}()
	}
	log.Info("serving", "interface", ifi.Name, "mac", opts.MAC.String(), "workers", workers, "services", len(specs), "vips", len(filter.VIPs))

	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, workers+1)
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
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := r.mon.Run(ctx); err != nil {
			errs <- fmt.Errorf("health checks: %w", err)
			cancel()
		}
	}()
	r.announce(filter.VIPs)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
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
	log   *slog.Logger
	ifi   *net.Interface
	nb    *neighbors
	d     *dataplane.Director
	rings []*dataplane.Ring
	guard *ingressGuard // nil unless ingress_drop
	hl    *healthLayer
	mon   *health.Monitor

	mu   sync.Mutex              // serialises Director.Apply between health and reloads
	base []dataplane.ServiceSpec // the configured services, before health shapes them
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
	for i, s := range specs {
		for _, rs := range s.RealServers {
			if len(rs.MAC) == 0 {
				want(rs.Addr)
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

// reapply gives the Director the effective services: the configured ones as the
// health layer shapes them.
func (r *runner) reapply() {
	r.mu.Lock()
	defer r.mu.Unlock()
	eff, cmds := r.hl.effective(r.base)
	if err := r.d.Apply(eff); err != nil {
		r.log.Error("applying health changes", "err", err)
		return
	}
	runCommands(r.log, cmds)
}

// configureHealth (re)configures the health layer and the Monitor for cfg and
// applies the result. Precondition: r.mu is not held.
func (r *runner) configureHealth(cfg *config.Config, specs []dataplane.ServiceSpec, macs map[netip.Addr]net.HardwareAddr) error {
	hs, err := r.hl.configure(cfg, specs, macs)
	if err != nil {
		return err
	}
	if err := r.mon.Update(hs); err != nil {
		return err
	}
	r.hl.seed(r.mon.Snapshot())
	r.mu.Lock()
	r.base = specs
	eff, cmds := r.hl.effective(specs)
	err = r.d.Apply(eff)
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.File, err)
	}
	runCommands(r.log, cmds)
	return nil
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
	if err := r.configureHealth(cfg, specs, macs); err != nil {
		return err
	}
	filter := filterFor(specs)
	for _, ring := range r.rings {
		if err := ring.SetFilter(filter); err != nil {
			return err
		}
	}
	if r.guard != nil {
		if err := r.guard.install(ctx, filter.VIPs); err != nil {
			return fmt.Errorf("ingress_drop: %w", err)
		}
	}
	r.log.Info("reloaded", "services", len(specs), "connections", r.d.Table().Len())
	r.announce(filter.VIPs)
	return nil
}

// announce sends a gratuitous ARP (unsolicited NA for IPv6) for each VIP, so
// neighbours learn (or re-learn) that this director serves it.
func (r *runner) announce(vips []netip.Addr) {
	if len(r.rings) == 0 {
		return
	}
	var mac [6]byte
	copy(mac[:], r.ifi.HardwareAddr)
	frames := make([]dataplane.Frame, 0, len(vips))
	for _, v := range vips {
		buf := make([]byte, 128)
		var n int
		if v.Is4() {
			n = dataplane.GratuitousARP(buf, mac, v.As4())
		} else {
			n = dataplane.UnsolicitedNA(buf, mac, v.As16())
		}
		frames = append(frames, dataplane.Frame{Buf: buf, Len: n})
	}
	if _, err := r.rings[0].WriteBatch(frames); err != nil && !errors.Is(err, net.ErrClosed) {
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
