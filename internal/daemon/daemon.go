package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/health"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/control"
	"github.com/gvs-lb/gvs/internal/script"
	"github.com/gvs-lb/gvs/ipvs"
)

// A Daemon is a running director: the Director, its links and workers, and the
// controller that owns the desired state — the config file ⊕ gvs adm edits ⊕ the
// health overlay ⊕ VRRP ownership ⊕ resolved MACs — as seesaw's engine manager
// does. One goroutine (the controller) receives typed events (adm requests with a
// reply channel, health and VRRP transitions, reloads, resolved MACs, ticks),
// computes the effective services, applies them to the Director, then hands the
// side effects (ring filters, the ingress guard, announcements, quorum scripts) to a
// goroutine that performs them in order, outside any lock. Readers (listings,
// metrics) read the Director's published generation and the controller's published
// state, never a lock the controller holds.
//
// Build one with New, run it once with Run (or Close it). Handle (gvs adm) and
// Reload are safe for concurrent use while Run runs.
type Daemon struct {
	log   *slog.Logger
	deps  Deps
	clock Clock
	start time.Time
	ifi   Interface
	mode  hostMode // how the config uses the host (hostmode.go)
	d     *dataplane.Director
	links []dataplane.Link
	admin *Admin
	// metrics is the Prometheus registry; served while metrics_listen is set.
	metrics  *Metrics
	status   *statusServer // the status page (status.go); nil without status_listen
	resolver Resolver      // nil: MACs are never resolved
	capacity capacity      // what the links can receive

	// scripts runs every external command (docs/scripts.md §3); trk the
	// vrrp_script, track_file and track_process trackers (nil without [[vrrp]]).
	scripts *script.Runner
	trk     *trackers

	health HealthRunner
	vrrp   *vrrpManager // nil without [[vrrp]]
	cl     *clusterRun  // cluster mode (cluster.go); nil without it
	ann    Announcer    // on the director's interface; nil: none
	guard  Guard        // nil: no guard available
	ctl    *control.Listener

	inbox   inbox
	fx      *effects
	pub     atomic.Pointer[published]
	stopped chan struct{} // closed when the controller has stopped
	commits atomic.Uint64 // configurations the Director took, counted once their side effects are queued and the state published (for tests)
	ran     atomic.Bool
	closed  atomic.Bool
	// ready, when not nil, is called once Run has started the workers.
	ready func()

	// st is the controller's: after New, only the controller goroutine touches it.
	st state
}

// published is the controller's state as readers may see it. It is immutable.
type published struct {
	configured pseq[ipvs.Service]      // file ⊕ adm edits, MACs as pinned
	resolving  map[netip.Addr]bool     // MAC resolutions in progress
	alive      aliveSet                // track_service: services with a live real server
	macs       map[netip.Addr]ipvs.MAC // resolved MACs
}

// ErrStopped is returned by Handle's changes and Reload once the daemon stops.
var ErrStopped = errors.New("daemon: stopped")

// New builds a director for cfg from deps: it checks the host, creates the Director,
// applies cfg's services (real servers whose MAC is not known yet are added at once,
// and resolved when Run runs), opens the links, the control socket and the VRRP
// transports. Nothing runs until Run. On error everything opened is closed.
func New(cfg *config.Config, deps Deps) (_ *Daemon, err error) {
	if deps.Host == nil || deps.OpenLinks == nil {
		return nil, errors.New("daemon: New needs Deps.Host and Deps.OpenLinks")
	}
	d := &Daemon{log: deps.Logger, deps: deps, clock: deps.Clock, stopped: make(chan struct{})}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
		d.deps.Logger = d.log
	}
	if d.clock == nil {
		d.clock = realClock{}
	}
	d.start = d.clock.Now()
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if d.ifi, err = d.checkHost(cfg); err != nil {
		return nil, err
	}
	if deps.NewResolver != nil && d.mode != modeVRRPOnly {
		if d.resolver, err = deps.NewResolver(d.ifi); err != nil {
			return nil, fmt.Errorf("resolver on %s: %w", d.ifi.Name, err)
		}
	}
	// Take the control socket before touching the network, so that a second
	// director on the same socket fails cleanly.
	if cfg.Director.ControlSocket != "" {
		if d.ctl, err = control.Listen(cfg.Director.ControlSocket); err != nil {
			return nil, err
		}
	}
	opts := d.options(cfg, nil)
	if len(opts.GatewayMAC) == 0 && hasNAT(cfg) {
		opts.GatewayMAC = d.gatewayMAC()
	}
	if d.d, err = dataplane.New(opts); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	d.st = state{
		cfg:        cfg,
		opts:       opts,
		macs:       map[netip.Addr]ipvs.MAC{},
		resolving:  map[netip.Addr]bool{},
		tried:      map[netip.Addr]bool{},
		unanswered: map[netip.Addr]bool{},
		touched:    map[ptarget]uint32{},
		marks:      map[ipvs.Key][]ipvs.Match{},
		hl:         newHealthLayer(d.log),
	}
	d.admin = newAdmin(d)
	d.metrics = NewMetrics(d.admin)
	if d.scripts, err = newScriptRunner(cfg, d.log); err != nil {
		return nil, err
	}
	if deps.NewHealth != nil {
		d.health = deps.NewHealth(d.healthNotify)
	} else {
		d.health = health.NewMonitor(health.Options{Logger: d.log, Notify: d.healthNotify, Now: d.clock.Now, Scripts: d.scripts})
	}
	file := Services(cfg)
	specs, err := d.st.hl.configure(cfg, file)
	if err != nil {
		return nil, err
	}
	if err := d.health.Update(specs); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	d.st.hl.seed(d.health.Snapshot())
	if deps.NewAnnouncer != nil && d.mode != modeVRRPOnly {
		if d.ann, err = deps.NewAnnouncer(d.ifi); err != nil {
			return nil, err
		}
	}
	if len(cfg.VRRP) > 0 {
		// With VRRP the director serves nothing until an instance becomes master.
		d.st.owned = map[string][]netip.Addr{}
		d.d.SetOwned([]netip.Addr{})
		// The trackers exist before the instances that read them; a change asks
		// the runner (built next, before Run starts the trackers) to reassess.
		if d.trk, err = newTrackers(cfg, d.scripts, d.scripts, d.clock, d.log, func() { d.vrrp.runner.Reassess() }); err != nil {
			return nil, err
		}
		if d.vrrp, err = newVRRP(d, cfg.VRRP, cfg.VRRPSyncGroups); err != nil {
			return nil, err
		}
	}
	if deps.NewGuard != nil {
		d.guard = deps.NewGuard(d.ifi.Name)
	}
	d.metrics.configure(&cfg.Director, cfg.File, d.log)
	d.metrics.ConfigLoaded(true, d.clock.Now())
	if d.cl, err = d.newCluster(cfg); err != nil {
		return nil, err
	}
	if addr := cfg.Director.MetricsListen; addr != "" {
		if err := CheckMetricsWeb(cfg); err != nil {
			return nil, err
		}
		if d.st.metricsLn, err = net.Listen("tcp", addr); err != nil {
			return nil, fmt.Errorf("%s: metrics_listen: %w", cfg.File, err)
		}
	}
	if d.status, err = newStatusServer(d, cfg); err != nil {
		return nil, err
	}
	d.fx = newEffects(d)
	d.capacity = linkCapacity(cfg)
	if err := d.capacity.check(file); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	sh := d.shape(file)
	if err := d.d.Apply(sh.services); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	lf := d.linkFilter(sh.services)
	d.fx.filterMode = filterMode(lf)
	if d.mode == modeVRRPOnly {
		// No data path: nothing to receive (hostmode.go).
	} else if d.links, err = d.openLinks(deps, cfg, lf); err != nil {
		return nil, fmt.Errorf("open links on %s: %w", d.ifi.Name, err)
	}
	d.capacity = capacityOf(d.links)
	d.fx.logSteering()
	d.st.file = file
	d.st.conf = newConfTable(cloneServices(file))
	d.rememberMarks(file)
	d.commitShaped(sh, true)
	// Marked now, so that the published state says they are on their way.
	d.markMissing(false)
	d.publish()
	return d, nil
}

// options maps cfg's [director] table onto the Director's options, filling in what
// the interface knows (MAC, addresses, MTU). old, when not nil, is what the
// Director runs with: keys only a restart changes keep their running values, and a
// gateway found on the network is kept.
func (d *Daemon) options(cfg *config.Config, old *dataplane.Options) dataplane.Options {
	o := DirectorOptions(cfg, d.log)
	if len(o.MAC) == 0 {
		o.MAC = d.ifi.MAC
	}
	if !o.Addr4.IsValid() {
		o.Addr4 = d.ifi.addr(true)
	}
	if !o.Addr6.IsValid() {
		o.Addr6 = d.ifi.addr(false)
	}
	if o.MTU == 0 || (d.ifi.MTU > 0 && o.MTU > d.ifi.MTU) {
		o.MTU = d.ifi.MTU
	}
	o.HashSeed = d.deps.HashSeed
	if cfg.Cluster.Enabled {
		// The workers flag the connections that need a sync record (cluster.go).
		r := syncRules(&cfg.Cluster)
		o.Sync = &r
		o.MHCanonical = cfg.Cluster.MHOrder == "canonical"
	}
	if old != nil {
		o.ConnShards = old.ConnShards
		if len(o.GatewayMAC) == 0 {
			o.GatewayMAC = old.GatewayMAC
		}
	}
	return o
}

// gatewayMAC finds the MAC of the default gateway toward the clients, where NAT
// replies go without gateway_mac. It waits for the resolver at most a few seconds,
// once, at start.
func (d *Daemon) gatewayMAC() net.HardwareAddr {
	gw := d.deps.Host.DefaultGateway(d.ifi.Name)
	if gw.IsValid() && d.resolver != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if mac, err := d.resolver.Resolve(ctx, gw); err == nil && len(mac) == 6 {
			d.log.Info("NAT replies go to the default gateway", "gateway", gw, "mac", mac.String())
			return mac
		}
	}
	d.log.Warn("NAT services but no gateway toward the clients: set [director] gateway_mac, or a default route on " + d.ifi.Name + "; replies are dropped (no_gateway) until then")
	return nil
}

// Director returns the Director the daemon runs (for tests and the bench harness).
func (d *Daemon) Director() *dataplane.Director { return d.d }

// Configured returns the configured services: the file's as gvs adm changed them,
// with the MACs the config pins. The caller must not modify them.
func (d *Daemon) Configured() []ipvs.Service {
	c := d.pub.Load().configured
	return c.list()
}

// Handle carries out one gvs adm command line (control.Handler).
func (d *Daemon) Handle(ctx context.Context, req control.Request) control.Response {
	return d.admin.Handle(ctx, req)
}

var _ control.Handler = (*Daemon)(nil)

// Reload makes cfg the configuration, applying what changed since the previous
// file (see mergeReload). On error nothing changes. It must be called while Run
// runs.
func (d *Daemon) Reload(ctx context.Context, cfg *config.Config) error {
	if err := d.cl.checkReload(cfg); err != nil {
		return err
	}
	reply := make(chan error, 1)
	err := d.request(ctx, reloadEvent{cfg: cfg, reply: reply}, reply)
	if err == nil {
		d.cl.reloaded(cfg)
	}
	return err
}

// request posts ev to the controller and waits for its reply.
func (d *Daemon) request(ctx context.Context, ev any, reply chan error) error {
	d.inbox.post(ev)
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-d.stopped:
		// The controller may have answered before it stopped.
		select {
		case err := <-reply:
			return err
		default:
			return ErrStopped
		}
	}
}

// now is the Director's clock: nanoseconds since New, on the daemon's clock.
func (d *Daemon) now() int64 { return int64(d.clock.Now().Sub(d.start)) }

// Run runs the director until ctx ends: one worker per link, the controller, health
// checks, VRRP, the control socket and metrics. It then stops them all, waits for
// them, removes the ingress guard and closes the links. It returns the first error
// that stopped it, or nil after ctx ended. Run may be called once.
func (d *Daemon) Run(ctx context.Context) error {
	if d.ran.Swap(true) {
		return errors.New("daemon: Run called twice")
	}
	defer d.close()
	outer := ctx
	if d.cl != nil {
		// SIGTERM drains first: forwarding and sync go on for drain_time.
		var stop context.CancelFunc
		ctx, stop = d.cl.drainContext(ctx, d.clock)
		defer stop()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(d.links)+12)
	fail := func(name string, err error) {
		errs <- fmt.Errorf("%s: %w", name, err)
		cancel()
	}
	background := func(name string, run func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				fail(name, err)
			}
		}()
	}
	workers := make([]*dataplane.Worker, len(d.links))
	for i, l := range d.links {
		w := d.d.NewWorker(l.BatchSize())
		workers[i] = w
		if d.cl != nil {
			l = d.cl.beat(l) // the gate's data-path heartbeat
		}
		background(fmt.Sprintf("worker %d", i), func(ctx context.Context) error { return dataplane.Pump(ctx, l, w, d.now) })
	}
	fxDone := make(chan struct{})
	go func() {
		defer close(fxDone)
		d.fx.run()
	}()
	background("health checks", d.health.Run)
	if d.vrrp != nil {
		background("vrrp", func(ctx context.Context) error {
			vctx, stop := d.cl.vrrpContext(ctx, outer)
			defer stop()
			return d.vrrp.run(vctx)
		})
		background("vrrp trackers", d.trk.run)
	}
	if d.ctl != nil {
		background("control socket", func(ctx context.Context) error { return d.ctl.Serve(ctx, d) })
	}
	if d.status != nil {
		background("status page", d.status.serve)
	}
	if d.cl != nil {
		d.cl.run(ctx, d, background)
	}
	d.log.Info("serving", "interface", d.ifi.Name, "mac", d.st.opts.MAC.String(), "workers", len(d.links),
		"services", d.st.conf.seq.Len(), "vips", d.st.filter.vips.Len(), "link_filter", filterMode(d.st.filter.flat()))
	if d.ready != nil {
		// Ready once what New queued for the host is done (the ingress guard, the
		// first announcements): a service manager then sees the host as gvs serves it.
		select {
		case <-d.fx.flushed():
		case <-ctx.Done():
		}
		d.ready()
	}

	var runErr error
	// The controller runs on this goroutine: it is the only one touching d.st.
	d.control(ctx, &wg, errs, &runErr)
	close(d.stopped)
	d.drainInbox()
	cancel()
	wg.Wait()
	d.stopMetrics()
	d.fx.close()
	<-fxDone
	if d.st.guarded && d.guard != nil {
		// The context is cancelled here: remove with a fresh one.
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := d.guard.Remove(rctx); err != nil {
			d.log.Warn("removing the ingress guard", "err", err)
		}
		rcancel()
	}
	for i, w := range workers {
		attrs := []any{"worker", i, "in", w.C.In, "forwarded", w.C.Forwarded, "generated", w.C.Generated}
		for r := dataplane.Reason(1); r < dataplane.NumReasons; r++ {
			if n := w.C.Reasons[r]; n > 0 {
				attrs = append(attrs, r.String(), n)
			}
		}
		d.log.Info("worker stopped", attrs...)
	}
	return runErr
}

// Close releases what New opened, for a Daemon that is never Run (Run releases
// everything itself). It may be called more than once, and after Run returns,
// not while Run runs.
func (d *Daemon) Close() error {
	d.close()
	return nil
}

// close releases what New opened. It may be called more than once.
func (d *Daemon) close() {
	if d.closed.Swap(true) {
		return
	}
	for _, l := range d.links {
		l.Close()
	}
	if d.vrrp != nil {
		d.vrrp.close()
	}
	if d.ann != nil {
		d.ann.Close()
	}
	d.cl.close()
	if d.ctl != nil {
		d.ctl.Close()
	}
	if d.st.metricsLn != nil {
		d.st.metricsLn.Close()
	}
	d.status.close()
}
