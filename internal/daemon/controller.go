package daemon

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/afpacket"
	"github.com/gvs-lb/gvs/health"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/ipvsadm"
	"github.com/gvs-lb/gvs/ipvs"
)

// Controller timing.
const (
	tickPeriod = time.Second // connection expiry without traffic
	// estimateTicks and refreshTicks are in ticks: the rate estimator's period
	// (IPVS's 2 s) and the period of the real servers' MAC refresh, which finds a
	// server that was unreachable or whose MAC changed, like a neighbour cache.
	estimateTicks = int(estimatePeriod / tickPeriod)
	refreshTicks  = 30
	// maxResolving bounds the MAC resolutions in flight, resolveTimeout each one
	// (the live resolver gives up after 1.5 s).
	maxResolving   = 16
	resolveTimeout = 5 * time.Second
	// scriptTimeout bounds one quorum command; it is killed after that.
	scriptTimeout = time.Minute
)

// state is the desired state the controller owns. Only the controller goroutine
// touches it once New has returned.
type state struct {
	cfg  *config.Config    // the file last loaded
	file []ipvs.Service    // Services(cfg)
	conf confTable         // file ⊕ adm edits: what gvs adm lists and edits; its seq never modified once published
	opts dataplane.Options // the Director's options

	// touched records, for every service and real server gvs adm changed since
	// the file last did, the command line that did: the log of a reload names it
	// when the reload overrides the change. Of a service the file does not have,
	// only its being there can be overridden: it is recorded while it is there
	// and its real servers are not (admDone). A line is kept once, by id, in
	// admLines (admTouch): the map of the touched targets holds no pointer, and
	// the collector does not scan it (10,000 entries after a restore).
	touched map[ptarget]uint32
	// touchedSvcs counts touched's service targets: services gvs adm changed
	// that the configured table does not have (the others' records are the
	// tags of their entries, admTouch); none, and a service's record is not
	// looked for in touched.
	touchedSvcs int
	admLines    map[uint32]admLine
	lineID      uint32        // the last id given to a line
	fileKeys    map[skey]bool // file's keys (inFile), packed: not scanned; nil: not made since file changed
	// admTimeouts is the --set command line that last changed the timeouts; ""
	// when they are the file's.
	admTimeouts string
	// marks remembers the match rules of fwmark services: they stand for the
	// iptables rules that set marks, which live outside the IPVS table, so an
	// fwmark service deleted and added again (-C then -R) gets its rules back.
	marks map[ipvs.Key][]ipvs.Match

	macs      map[netip.Addr]ipvs.MAC // resolved, by address
	resolving map[netip.Addr]bool     // resolutions in flight or queued
	queue     []netip.Addr            // resolutions not started yet, in order
	inflight  int                     // resolutions started, not reported yet
	tried     map[netip.Addr]bool     // addresses resolved at least once
	// unanswered are the addresses whose failure to resolve was logged.
	unanswered map[netip.Addr]bool
	// stale: health transitions or MACs changed the effective services since the
	// Director last took them; staleMACs and staleKeys: only the MACs of these
	// addresses and the checks of these services did (commitStale gives the
	// Director those services).
	stale     bool
	staleMACs map[netip.Addr]bool
	staleKeys map[ipvs.Key]bool
	hl        *healthLayer
	owned     map[string][]netip.Addr // VIPs of the VRRP instances in MASTER; nil without VRRP
	alive     aliveSet

	// filter is the links' filter. Its VIPs are the ones announced so far: a
	// VIP is announced when it enters the filter (announceNew after a whole
	// commit, commitDelta after a delta), so no set of its own is kept beside
	// the filter's (a 10,000-entry map that each gvs adm command adding or
	// removing a VIP probed and wrote, cold).
	filter   *filterView
	flists   filterLists // the builders of its lists
	guarded  bool        // the ingress guard is installed (or its absence warned of)
	guardGen uint64      // the vipsGen of the VIPs it drops

	// delta is what commitDelta keeps to change only what a gvs adm command
	// touched; pubMACs is the copy of macs published last (nil: macs changed
	// since), so a publication copies them only after a change.
	delta   deltaState
	pubMACs map[netip.Addr]ipvs.MAC
	scratch deltaScratch // commitDelta's lists, reused by each delta

	metricsLn     net.Listener // listening, not served yet
	metricsCancel context.CancelFunc
	metricsDone   chan struct{}
}

// Events the controller receives.
type (
	reloadEvent struct {
		cfg   *config.Config
		reply chan error
	}
	healthEvent struct{ tr health.Transition }
	// vrrpEvent reports an instance entering (master) or leaving MASTER.
	vrrpEvent struct {
		instance string
		master   bool
		vips     []netip.Addr
		ann      Announcer // the instance's interface
		repeat   int       // announcements per VIP on becoming master
		// kernel, if set, adds or removes the instance's kernel addresses on the
		// effects goroutine and returns the ones to announce with vips.
		kernel func() []netip.Addr
	}
	macEvent struct {
		addr netip.Addr
		mac  net.HardwareAddr
		err  error
	}
)

// inbox is the controller's unbounded queue of events: posting never blocks, so
// health checks, VRRP and resolvers never wait for the controller (which may be
// waiting for them, as in health's Update).
type inbox struct {
	mu    sync.Mutex
	q     []any
	ready chan struct{} // has a value while q may be non-empty
	once  sync.Once
}

func (b *inbox) init() { b.once.Do(func() { b.ready = make(chan struct{}, 1) }) }

func (b *inbox) post(ev any) {
	b.init()
	b.mu.Lock()
	b.q = append(b.q, ev)
	b.mu.Unlock()
	select {
	case b.ready <- struct{}{}:
	default:
	}
}

func (b *inbox) wait() <-chan struct{} {
	b.init()
	return b.ready
}

func (b *inbox) take() []any {
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.q
	b.q = nil
	return q
}

// healthNotify is the health runner's notify: it never blocks.
func (d *Daemon) healthNotify(tr health.Transition) { d.inbox.post(healthEvent{tr}) }

// control is the controller's loop. It returns when ctx ends or a background part
// fails (its error in *runErr).
func (d *Daemon) control(ctx context.Context, wg *sync.WaitGroup, errs <-chan error, runErr *error) {
	d.serveMetrics()
	d.resolveMissing(ctx, wg, false)
	d.announceNew(nil)
	tick, stop := d.clock.NewTicker(tickPeriod)
	defer stop()
	for n := 1; ; {
		select {
		case <-ctx.Done():
			return
		case err := <-errs:
			*runErr = err
			return
		case <-d.inbox.wait():
			for _, ev := range d.inbox.take() {
				d.handle(ctx, wg, ev)
			}
			d.reapply()
			// Readers see a batch's outcome once the Director runs it.
			d.publish()
		case <-tick:
			d.d.Table().Expire(d.now(), 0)
			d.defend()
			if n%estimateTicks == 0 {
				d.admin.estimate()
			}
			if n%refreshTicks == 0 {
				d.resolveMissing(ctx, wg, true)
			}
			n++
		}
	}
}

// drainInbox answers the requests left when the controller stopped.
func (d *Daemon) drainInbox() {
	for _, ev := range d.inbox.take() {
		switch ev := ev.(type) {
		case *admEvent:
			ev.reply <- ErrStopped
		case reloadEvent:
			ev.reply <- ErrStopped
		}
	}
}

func (d *Daemon) handle(ctx context.Context, wg *sync.WaitGroup, ev any) {
	switch ev := ev.(type) {
	case *admEvent: // the Admin's, until the reply
		err := d.admChange(*ev)
		// Resolutions start before the reply: gvs adm -a returns with the new
		// server's MAC on its way.
		d.resolveMissing(ctx, wg, false)
		ev.reply <- err
		return
	case reloadEvent:
		err := d.reload(ev.cfg)
		d.resolveMissing(ctx, wg, false)
		ev.reply <- err
		return
	case healthEvent:
		d.st.hl.transition(ev.tr)
		svc, server := d.st.hl.label(ev.tr.ID)
		d.metrics.SetHealth(svc, server, d.st.hl.serverUp(ev.tr.ID)) // all of a server's checks
		if k, ok := d.st.hl.services[ev.tr.ID]; ok {
			if d.st.staleKeys == nil {
				d.st.staleKeys = map[ipvs.Key]bool{}
			}
			d.st.staleKeys[k] = true
		} else {
			d.st.stale = true
		}
	case vrrpEvent:
		d.ownership(ev)
	case macEvent:
		d.resolved(ev)
	default:
		panic(fmt.Sprintf("daemon: controller: unknown event %T", ev))
	}
	d.resolveMissing(ctx, wg, false)
}

// reapply gives the Director the effective services again after health
// transitions or new MACs changed them: once per batch of events, however many
// there were. An adm change or a reload in the batch did it already.
func (d *Daemon) reapply() {
	if !d.st.stale && len(d.st.staleMACs)+len(d.st.staleKeys) > 0 {
		if err := d.commitStale(); err != nil {
			d.log.Error("applying health transitions and resolved MACs", "err", err)
			d.st.stale = true // the whole table, then
		}
	}
	if !d.st.stale {
		return
	}
	if err := d.commit(d.st.conf.seq.list()); err != nil {
		d.log.Error("applying health transitions and resolved MACs", "err", err)
	}
}

// shape computes the services the Director should run for conf: MACs filled in
// from the resolved ones, then the health overlay.
func (d *Daemon) shape(conf []ipvs.Service) shaped {
	eff := cloneServices(conf)
	for i := range eff {
		for j := range eff[i].RealServers {
			rs := &eff[i].RealServers[j]
			if rs.MAC.IsZero() {
				rs.MAC = d.st.macs[rs.Addr.Addr()]
			}
		}
	}
	return d.st.hl.effective(eff, func(a netip.Addr) ipvs.MAC { return d.st.macs[a] })
}

// commit makes conf the configured services: it applies their effective form to
// the Director and, once it took them, publishes conf and queues the side effects.
// On error nothing changes.
func (d *Daemon) commit(conf []ipvs.Service) error {
	if err := d.capacity.check(conf); err != nil {
		return err
	}
	sh := d.shape(conf)
	if err := d.d.Apply(sh.services); err != nil {
		return err
	}
	d.setConf(conf)
	d.st.stale, d.st.staleMACs, d.st.staleKeys = false, nil, nil
	d.commitShaped(sh, false)
	return nil
}

// commitShaped records what the Director now runs: health's quorum states, the
// published state, and the side effects — the links' filter, the guard, VIP
// announcements and quorum commands — queued in this order. At start (first) the
// links open with the filter and Run announces every VIP.
func (d *Daemon) commitShaped(sh shaped, first bool) {
	d.st.delta = deltaState{eff: sh.services} // New's table too: a delta starts from it
	d.st.hl.commit(sh)
	d.st.alive = newAliveSet(sh.alive)
	f := d.linkFilter(sh.services)
	var fx effect
	was := d.st.filter
	if d.st.filter == nil || !sameFilter(d.st.filter.flat(), f) {
		d.st.filter = d.st.flists.setWhole(f, d.st.filter)
		if !first {
			fx.filter = d.st.filter
		}
	}
	d.guardEffect(&fx, d.st.cfg.Director.IngressDrop)
	fx.scripts = sh.cmds
	d.fx.queue(fx)
	if !first && was != d.st.filter {
		d.announceNew(was)
	}
	d.publish()
	d.commits.Add(1) // last: a test that sees it finds the effects queued and the state published
}

// guardEffect adds the ingress guard's change to fx: installed for the current
// VIPs while want (again only when they changed), removed otherwise.
func (d *Daemon) guardEffect(fx *effect, want bool) {
	switch {
	case want && d.guard == nil:
		if !d.st.guarded {
			d.log.Warn("ingress_drop is set but no ingress guard is available (gvs run installs one with nft): VIP frames also reach the kernel")
			d.st.guarded = true // warned; nothing installed
		}
	case want && (!d.st.guarded || d.st.guardGen != d.st.filter.vipsGen):
		fx.guard = d.st.filter
		fx.setGuard = true
		d.st.guarded, d.st.guardGen = true, d.st.filter.vipsGen
	case !want && d.st.guarded:
		fx.removeGuard = d.guard != nil
		d.st.guarded, d.st.guardGen = false, 0
	}
}

// announceNew queues announcements of the filter's VIPs that the filter was
// (the VIPs announced so far) does not have; all of them when was is nil;
// restricted to the ones a VRRP master owns.
func (d *Daemon) announceNew(was *filterView) {
	var vips []netip.Addr
	// A set of the announced VIPs: looking each VIP up in a list made a
	// commit O(VIPs²), most of a gvs adm command's time at 10,000 services.
	var announced map[paddr]struct{}
	if was != nil {
		announced = make(map[paddr]struct{}, was.vips.Len())
		for p := range was.vips.all() {
			announced[*p] = struct{}{}
		}
	}
	for p := range d.st.filter.vips.all() {
		if _, ok := announced[*p]; ok {
			continue
		}
		v := p.addr()
		if d.st.owned != nil && !d.ownedVIP(v) {
			continue
		}
		vips = append(vips, v)
	}
	d.announce(vips)
}

// announce queues announcements of vips.
func (d *Daemon) announce(vips []netip.Addr) {
	if len(vips) > 0 && d.ann != nil {
		d.fx.queue(effect{ann: d.ann, announce: vips, repeat: 1})
	}
}

func (d *Daemon) ownedVIP(v netip.Addr) bool {
	for _, list := range d.st.owned {
		if slices.Contains(list, v) {
			return true
		}
	}
	return false
}

func (d *Daemon) publish() {
	macs := d.st.pubMACs
	if macs == nil {
		macs = maps.Clone(d.st.macs)
		d.st.pubMACs = macs
	}
	var resolving map[netip.Addr]bool // none: no map (each gvs adm command publishes)
	if len(d.st.resolving) > 0 {
		resolving = maps.Clone(d.st.resolving)
	}
	d.pub.Store(&published{configured: d.st.conf.seq, resolving: resolving, alive: d.st.alive, macs: macs})
}

// serviceUp reports whether the service at ap has a live real server (track_service).
// It reads published state: VRRP's goroutine calls it.
func (d *Daemon) serviceUp(ap netip.AddrPort) bool {
	p := d.pub.Load()
	return p != nil && p.alive.has(ap)
}

// setTimeouts is --set: a zero value keeps the current one.
func (d *Daemon) setTimeouts(t ipvsadm.Timeouts) {
	tab := d.d.Table()
	to := tab.Timeouts()
	if t.TCP > 0 {
		to.TCP[conntrack.StateEstablished] = t.TCP
	}
	if t.TCPFin > 0 {
		to.TCP[conntrack.StateFinWait] = t.TCPFin
	}
	if t.UDP > 0 {
		to.UDP = t.UDP
	}
	tab.SetTimeouts(to)
}

// reload applies cfg as described at mergeReload, and the [director] keys that a
// running director can change. On error nothing changes.
func (d *Daemon) reload(cfg *config.Config) error {
	old := d.st.cfg
	file := Services(cfg)
	conf, overrides := mergeReload(d.st.file, file, d.st.conf.seq.list())

	changed := directorChanges(&old.Director, &cfg.Director)
	if restart := needsRestart(changed); len(restart) > 0 {
		d.log.Warn("reload: these [director] keys need a restart of gvs to change; the running values stay until then",
			"keys", restart, "file", cfg.File)
	}
	opts := d.options(cfg, &d.st.opts)
	timeoutsChanged := old.Director.Timeouts != cfg.Director.Timeouts
	if !timeoutsChanged {
		// The file did not touch them: what --set made of them stays.
		opts.Timeouts = d.d.Table().Timeouts()
	}
	// The new options must fit the running services and the new services the new
	// options: set the options first, unless they only fit the new services.
	optsChanged := !sameOptions(&d.st.opts, &opts)
	optsFirst := optsChanged && d.d.SetOptions(opts) == nil

	// The health layer's policies follow the new file; on error the old ones are
	// put back.
	hl := d.st.hl
	oldPolicies, oldLabels, oldSorry := hl.policies, hl.labels, hl.sorry
	oldCfg, oldFile, oldConf := d.st.cfg, d.st.file, d.st.conf.seq
	undo := func(err error) error {
		hl.policies, hl.labels, hl.sorry = oldPolicies, oldLabels, oldSorry
		d.st.cfg, d.st.file = oldCfg, oldFile
		d.st.fileKeys = nil
		if optsFirst {
			if uerr := d.d.SetOptions(d.st.opts); uerr != nil {
				d.log.Error("reload: restoring the Director's options failed", "err", uerr)
			}
		}
		return err
	}
	specs, err := hl.configure(cfg, file)
	if err != nil {
		return undo(err)
	}
	d.st.cfg, d.st.file = cfg, file
	d.st.fileKeys = nil
	if err := d.commit(conf); err != nil {
		return undo(fmt.Errorf("%s: %w", cfg.File, err))
	}
	if optsChanged && !optsFirst {
		if err := d.d.SetOptions(opts); err != nil {
			err = undo(fmt.Errorf("%s: [director]: %w", cfg.File, err))
			if rerr := d.commit(oldConf.list()); rerr != nil {
				d.log.Error("reload: restoring the previous services failed", "err", rerr)
			}
			return err
		}
	}
	d.st.opts = opts
	if err := d.health.Update(specs); err != nil {
		// The specs passed Validate in configure: only building a checker can fail.
		d.log.Error("reload: health checks keep their previous settings", "err", err)
	} else {
		hl.seed(d.health.Snapshot())
	}
	if timeoutsChanged && d.st.admTimeouts != "" {
		d.log.Warn("reload overrides a gvs adm change", "what", "timeouts", "adm", d.st.admTimeouts, "file", "changed")
		d.st.admTimeouts = ""
	}
	for _, o := range overrides {
		adm := d.admLineOf(o.target)
		if adm == "" {
			adm = d.admLineOf(target{svc: o.svc})
		}
		d.admTouch(o.target, 0, "")
		d.log.Warn("reload overrides a gvs adm change", "what", o.target.String(), "adm", o.adm, "command", adm, "file", o.file)
	}
	d.metrics.configure(&cfg.Director, cfg.File, nil)
	if slices.Contains(changed, "metrics_listen") || slices.Contains(changed, "metrics_web_config") {
		d.stopMetrics()
		if addr := cfg.Director.MetricsListen; addr != "" {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				d.log.Error("reload: metrics_listen: metrics are off until the next reload", "err", err)
			} else {
				d.st.metricsLn = ln
				d.serveMetrics()
			}
		}
	}
	d.announceNew(nil)
	d.rememberMarks(conf)
	d.reloadVRRP(old, cfg)
	d.reloadScripts(old, cfg)
	d.log.Info("reloaded", "file", cfg.File, "services", len(conf), "director_keys_changed", changed,
		"adm_changes_overridden", len(overrides), "connections", d.d.Table().Len())
	return nil
}

// sameOptions compares the options a reload can change.
func sameOptions(a, b *dataplane.Options) bool {
	x, y := *a, *b
	x.Logger, y.Logger = nil, nil
	x.Rand, y.Rand = nil, nil
	return reflect.DeepEqual(x, y)
}

// ownership follows a VRRP transition: the Director serves the VIPs of the
// instances in MASTER, and a new master announces its VIPs.
func (d *Daemon) ownership(ev vrrpEvent) {
	if ev.master {
		d.st.owned[ev.instance] = ev.vips
	} else {
		delete(d.st.owned, ev.instance)
	}
	vips := []netip.Addr{}
	for _, list := range d.st.owned {
		for _, v := range list {
			if !slices.Contains(vips, v) {
				vips = append(vips, v)
			}
		}
	}
	d.d.SetOwned(vips)
	if (ev.master && ev.ann != nil) || ev.kernel != nil {
		e := effect{kernel: ev.kernel}
		if ev.master {
			e.ann, e.announce, e.repeat = ev.ann, ev.vips, ev.repeat
		}
		d.fx.queue(e)
	}
}

// resolveMissing starts resolving the MAC of every real server and sorry server
// whose MAC is neither pinned, known nor being resolved; with refresh, the known
// ones too (the MAC refresh). Each result comes back as a macEvent.
func (d *Daemon) resolveMissing(ctx context.Context, wg *sync.WaitGroup, refresh bool) {
	marked := d.markMissing(refresh)
	d.startResolutions(ctx, wg)
	if marked {
		d.publish()
	}
}

// markMissing marks the addresses resolveMissing resolves as resolving and queues
// them for startResolutions: addresses never tried before go first, so that a new
// real server never waits behind the retries of unreachable ones. It reports
// whether it marked any.
func (d *Daemon) markMissing(refresh bool) bool {
	if d.resolver == nil {
		return false
	}
	var fresh, again []netip.Addr
	want := func(a netip.Addr) {
		if d.st.resolving[a] {
			return
		}
		_, known := d.st.macs[a]
		switch {
		case !refresh && (known || d.st.tried[a]):
			// Known, or unanswered: the next refresh tries again.
			return
		case known || d.st.tried[a]:
			again = append(again, a)
		default:
			fresh = append(fresh, a)
		}
		d.st.resolving[a] = true
	}
	if refresh || !d.st.delta.scanned {
		// A refresh, or a table committed whole: every real server.
		for s := range d.st.conf.seq.all() {
			for _, rs := range s.RealServers {
				if rs.MAC.IsZero() {
					want(rs.Addr.Addr())
				}
			}
		}
		d.st.delta.scanned = true
	} else {
		// Only a delta's real servers can be new since the last scan
		// (resolutions only make addresses known or tried).
		for _, a := range d.st.delta.scan {
			want(a)
		}
	}
	d.st.delta.scan = d.st.delta.scan[:0]
	for _, a := range d.st.hl.sorryServers() {
		want(a)
	}
	if refresh {
		d.forgetUnused()
	}
	d.st.queue = append(append(fresh, d.st.queue...), again...)
	return len(fresh)+len(again) > 0
}

// forgetUnused drops what the resolver learned of addresses no real server or
// sorry server has any more, so that churn does not grow the maps.
func (d *Daemon) forgetUnused() {
	used := map[netip.Addr]bool{}
	for s := range d.st.conf.seq.all() {
		for _, rs := range s.RealServers {
			used[rs.Addr.Addr()] = true
		}
	}
	for _, a := range d.st.hl.sorryServers() {
		used[a] = true
	}
	for a := range d.st.macs {
		if !used[a] && !d.st.resolving[a] {
			delete(d.st.macs, a)
			d.st.pubMACs = nil
		}
	}
	for _, m := range []map[netip.Addr]bool{d.st.tried, d.st.unanswered} {
		for a := range m {
			if !used[a] && !d.st.resolving[a] {
				delete(m, a)
			}
		}
	}
}

// startResolutions starts queued resolutions while fewer than maxResolving are in
// flight, on goroutines joined by wg, each bounded by resolveTimeout and ctx.
func (d *Daemon) startResolutions(ctx context.Context, wg *sync.WaitGroup) {
	if len(d.st.queue) == 0 || d.st.inflight >= maxResolving {
		return
	}
	r := d.resolver
	for len(d.st.queue) > 0 && d.st.inflight < maxResolving {
		a := d.st.queue[0]
		d.st.queue = d.st.queue[1:]
		d.st.inflight++
		d.st.tried[a] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
			mac, err := r.Resolve(rctx, a)
			cancel()
			if ctx.Err() == nil {
				d.inbox.post(macEvent{addr: a, mac: mac, err: err})
			}
		}()
	}
}

// resolved records a resolution's result; a new or changed MAC makes the
// effective services stale (reapply gives them to the Director).
func (d *Daemon) resolved(ev macEvent) {
	delete(d.st.resolving, ev.addr)
	d.st.inflight--
	if ev.err != nil || len(ev.mac) != 6 {
		_, known := d.st.macs[ev.addr]
		if !known && !d.st.unanswered[ev.addr] {
			// Once per address: it is tried again at every refresh.
			d.st.unanswered[ev.addr] = true
			d.log.Warn("no MAC address for real server: its packets are dropped (no_mac) until it answers ARP (tried again every 30 s) or its mac is pinned in the config",
				"addr", ev.addr, "err", ev.err)
		}
		return
	}
	delete(d.st.unanswered, ev.addr)
	mac := ipvs.MACFrom(ev.mac)
	if old, ok := d.st.macs[ev.addr]; ok && old == mac {
		return
	}
	d.st.macs[ev.addr] = mac
	d.st.pubMACs = nil
	if slices.Contains(d.st.hl.sorryServers(), ev.addr) {
		d.st.stale = true
	} else {
		if d.st.staleMACs == nil {
			d.st.staleMACs = map[netip.Addr]bool{}
		}
		d.st.staleMACs[ev.addr] = true
	}
	d.log.Info("real server's MAC address", "addr", ev.addr, "mac", mac.String())
}

// filterFor is the links' filter for the services the Director runs: VIPs, NAT
// real servers' replies, ARP, NDP and VRRP.
func filterFor(services []ipvs.Service) *afpacket.Filter {
	f := &afpacket.Filter{ARP: true, NDP: true, VRRP: true}
	seen := map[netip.Addr]bool{}
	add := func(list *[]netip.Addr, a netip.Addr) {
		if a.IsValid() && !seen[a] {
			seen[a] = true
			*list = append(*list, a)
		}
	}
	for _, s := range services {
		add(&f.VIPs, s.Addr.Addr())
		for _, m := range s.Match {
			add(&f.VIPs, m.Addr)
		}
	}
	for _, s := range services {
		for _, rs := range s.RealServers {
			if rs.Method == ipvs.NAT {
				add(&f.NATRealServers, rs.Addr.Addr())
			}
		}
	}
	return f
}

// linkFilter is filterFor with the director's own MACs, which the filter needs once
// there are too many VIPs to list (afpacket.Filter): the one it runs with and the
// interface's; and the interface's own addresses, which the XDP program leaves to the
// kernel even from a NAT real server (its neighbour solicitations, health-check
// replies).
func (d *Daemon) linkFilter(services []ipvs.Service) *afpacket.Filter {
	f := filterFor(services)
	for _, m := range []net.HardwareAddr{d.st.opts.MAC, d.ifi.MAC} {
		if len(m) == 6 && !slices.Contains(f.MACs, [6]byte(m)) {
			f.MACs = append(f.MACs, [6]byte(m))
		}
	}
	for _, a := range d.ifi.Addrs {
		if a = a.Unmap(); a.IsValid() && !slices.Contains(f.VIPs, a) && !slices.Contains(f.Local, a) {
			f.Local = append(f.Local, a)
		}
	}
	return f
}

func sameFilter(a, b *afpacket.Filter) bool { return reflect.DeepEqual(a, b) }

// hasNAT reports whether any real server of cfg is forwarded by NAT.
func hasNAT(cfg *config.Config) bool {
	for _, s := range Services(cfg) {
		for _, rs := range s.RealServers {
			if rs.Method == ipvs.NAT {
				return true
			}
		}
	}
	return false
}

// serveMetrics serves the metrics on the listener New or a reload opened.
func (d *Daemon) serveMetrics() {
	ln := d.st.metricsLn
	if ln == nil {
		return
	}
	d.st.metricsLn = nil
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	d.st.metricsCancel, d.st.metricsDone = cancel, done
	go func() {
		defer close(done)
		if err := d.metrics.Serve(ctx, ln); err != nil {
			d.log.Error("metrics", "err", err)
		}
	}()
	d.log.Info("metrics", "listen", ln.Addr().String())
}

// stopMetrics stops serving the metrics and waits until the server has stopped.
func (d *Daemon) stopMetrics() {
	if d.st.metricsLn != nil {
		d.st.metricsLn.Close()
		d.st.metricsLn = nil
	}
	if d.st.metricsCancel == nil {
		return
	}
	d.st.metricsCancel()
	<-d.st.metricsDone
	d.st.metricsCancel, d.st.metricsDone = nil, nil
}

// cloneServices returns a copy of services that shares no slice with them.
func cloneServices(services []ipvs.Service) []ipvs.Service {
	out := make([]ipvs.Service, len(services))
	for i := range services {
		out[i] = services[i]
		out[i].Match = slices.Clone(services[i].Match)
		out[i].RealServers = slices.Clone(services[i].RealServers)
	}
	return out
}
