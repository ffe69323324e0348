package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/internal/cluster"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/ipvssync"
	"github.com/gvs-lb/gvs/vrrp"
)

// Cluster mode's part of the daemon (docs/cluster.md §13): the [cluster] table
// becomes a cluster.Node (sync and control channel) over UDP sockets, an Announcer
// over the fate-sharing TAP device, and a gate loop fed with the daemon's own
// inputs — the workers' heartbeats, the services' quorum, the node's warmth, the
// drain, the peers' config digests.

// ClusterDeps are what cluster mode takes from the host. LiveDeps fills them; tests
// pass an in-memory network and route table, so a cluster of daemons runs without
// root.
type ClusterDeps struct {
	// Prefixes returns the addresses of the interface named name with their prefix
	// lengths: the director's own addresses (dropped as senders) and, without
	// sync_sources, the accepted senders.
	Prefixes func(name string) ([]netip.Prefix, error)
	// Listen opens the sync and control sockets (cluster.ListenUDP).
	Listen func(cluster.UDPConfig) (SyncNet, error)
	// OpenTAP opens the announcement device (cluster.OpenTAP).
	OpenTAP func(name string, table, proto int) (RouteDevice, error)
	// Bird reports the BIRD answering on the control socket path (cluster.BirdStatus);
	// nil: never asked.
	Bird func(ctx context.Context, socket string) (cluster.BirdState, error)
	// Hostname is the default node_id; nil: os.Hostname.
	Hostname func() (string, error)
	// Rand draws incarnations and request ids; nil: math/rand/v2.
	Rand func() uint64
}

// SyncNet is the transport of the sync and control datagrams and what drives a Node
// over it. *cluster.UDP with cluster.Run is the live one (udpNet).
type SyncNet interface {
	cluster.Transport
	// MaxLen is the sync_maxlen that fits the sync interface's MTU.
	MaxLen() int
	// Run feeds n the datagrams received and ticks it until ctx ends, then closes
	// the sockets.
	Run(ctx context.Context, n *cluster.Node, clock cluster.Clock) error
	Close() error
}

// RouteDevice is the announcement device: routes in, routes out, and Close, which
// withdraws every route with the device. *cluster.TAP is one.
type RouteDevice interface {
	cluster.Routes
	Close() error
}

var _ RouteDevice = (*cluster.TAP)(nil)

// udpNet is the live SyncNet.
type udpNet struct{ *cluster.UDP }

// syncTick is how often Run ticks the Node: flushes, sweeps, heartbeats.
const syncTick = 10 * time.Millisecond

func (u udpNet) Run(ctx context.Context, n *cluster.Node, clock cluster.Clock) error {
	return cluster.Run(ctx, n, u.UDP, clock, syncTick)
}

// liveClusterDeps are cluster mode's live dependencies.
func liveClusterDeps() ClusterDeps {
	return ClusterDeps{
		Prefixes: interfacePrefixes,
		Listen: func(c cluster.UDPConfig) (SyncNet, error) {
			u, err := cluster.ListenUDP(c)
			if err != nil {
				return nil, err
			}
			return udpNet{u}, nil
		},
		OpenTAP: func(name string, table, proto int) (RouteDevice, error) {
			return cluster.OpenTAP(name, table, proto)
		},
		Bird:     cluster.BirdStatus,
		Hostname: os.Hostname,
	}
}

// interfacePrefixes returns the addresses of interface name with their prefixes.
func interfacePrefixes(name string) ([]netip.Prefix, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, err
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ones, _ := n.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return out, nil
}

// birdEvery is how often the BIRD that exports the routes is asked how it is.
const birdEvery = 5 * time.Second

// clusterRun is a Daemon's cluster mode; nil when [cluster] is off.
type clusterRun struct {
	log   *slog.Logger
	cfg   config.Cluster // as started: a reload may not change it (checkReload)
	ccfg  cluster.Config
	iface string // the sync interface
	net   SyncNet
	tap   RouteDevice
	node  *cluster.Node
	ann   *cluster.Announcer
	bird  func(ctx context.Context, socket string) (cluster.BirdState, error)
	// table is the connection table as the Node sees it (Sink and Table).
	table clusterTable

	// vrrpMasters counts this director's VRRP instances in MASTER (announce =
	// "vrrp": the node is ANNOUNCED while it is not 0).
	vrrpMasters atomic.Int32

	// draining is set by gvs adm --cluster-drain and by the shutdown: the gate
	// closes at once; sync goes on.
	draining atomic.Bool
	drainWhy atomic.Pointer[string]
	// stallAfter is how long a worker may spend on one batch before the data path
	// counts as dead.
	stallAfter time.Duration
	beats      []*workerBeat

	mu        sync.Mutex // guards what follows
	birdState cluster.BirdState
	birdErr   error
	birdCause string // the cause last logged ("": none, or BIRD healthy)
	birdAt    time.Time
	// stall is each worker's last sample: its beat and when it was taken.
	stall []beatSample

	// The gate goroutine's: the published state the VIPs were computed from.
	seen   *published
	vips   []netip.Addr
	quorum map[netip.Addr]bool

	// running is the config digest of the running table (cluster_digest.go).
	running runningDigest
}

// clusterTable is the connection table as the cluster runtime reaches it.
type clusterTable interface {
	cluster.Sink
	cluster.Table
}

// newCluster builds cluster mode for cfg on the Director d.d: the Node, its sockets
// and the announcement device. It returns nil when [cluster] is off. A failure is
// an error naming the key to fix; what was opened is closed.
func (d *Daemon) newCluster(cfg *config.Config) (_ *clusterRun, err error) {
	cc := &cfg.Cluster
	if !cc.Enabled {
		return nil, nil
	}
	deps := d.deps.Cluster
	if deps.Listen == nil || deps.OpenTAP == nil || deps.Prefixes == nil {
		return nil, fmt.Errorf("%s: [cluster] enabled: this build of the director has no cluster transport", cfg.File)
	}
	c := &clusterRun{log: d.log.With("component", "cluster"), cfg: *cc, bird: deps.Bird,
		stallAfter: max(time.Second, 2*cc.GateInterval)}
	c.cfg.SyncPeers = slices.Clone(cc.SyncPeers)
	c.cfg.SyncSources = slices.Clone(cc.SyncSources)
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	c.iface = cc.SyncInterface
	if c.iface == "" {
		c.iface = d.ifi.Name
	}
	prefixes, err := deps.Prefixes(c.iface)
	if err != nil {
		return nil, fmt.Errorf("%s: [cluster] sync_interface %q: %w", cfg.File, c.iface, err)
	}
	nodeID := cc.NodeID
	if nodeID == "" {
		host := deps.Hostname
		if host == nil {
			host = os.Hostname
		}
		if nodeID, err = host(); err != nil || nodeID == "" {
			return nil, fmt.Errorf("%s: [cluster] node_id is not set and the host name is unknown (%v): set node_id", cfg.File, err)
		}
	}
	if c.ccfg, err = clusterConfig(cfg, nodeID, prefixes); err != nil {
		return nil, err
	}
	c.running.setFile(cfg)
	ucfg := cluster.UDPConfig{Interface: c.iface, Group: cc.SyncGroup, Peers: cc.SyncPeers,
		SyncPort: cc.SyncPort, Ports: cc.SyncPorts, ControlPort: cc.ControlPort, TTL: cc.SyncTTL, SockSize: cc.SyncSockSize}
	if c.net, err = deps.Listen(ucfg); err != nil {
		return nil, fmt.Errorf("%s: [cluster] sync sockets on %s (sync_interface, sync_port %d, control_port %d): %w",
			cfg.File, c.iface, cc.SyncPort, cc.ControlPort, err)
	}
	if cc.SyncMaxLen == 0 {
		c.ccfg.SyncMaxLen = min(c.net.MaxLen(), 65507)
	}
	if err := c.ccfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: [cluster]: %w", cfg.File, err)
	}
	if !c.vrrpMode() {
		if c.tap, err = deps.OpenTAP(cc.AnnounceDevice, cc.AnnounceTable, cc.AnnounceProto); err != nil {
			return nil, fmt.Errorf("%s: [cluster] announce_device %q (needs CAP_NET_ADMIN and /dev/net/tun): %w", cfg.File, cc.AnnounceDevice, err)
		}
		gcfg := cluster.GateConfig{Rise: cc.AnnounceRise, Fall: cc.AnnounceFall, RequireSameConfig: cc.RequireSameConfig}
		if c.ann, err = cluster.NewAnnouncer(gcfg, c.tap, c.log); err != nil {
			return nil, fmt.Errorf("%s: [cluster]: %w", cfg.File, err)
		}
	}
	c.table = newTableAdapter(d)
	if c.node, err = cluster.NewNode(c.ccfg, cluster.Deps{Sink: c.table, Table: c.table, Transport: c.net, Logger: c.log, Rand: deps.Rand}); err != nil {
		return nil, fmt.Errorf("%s: [cluster]: %w", cfg.File, err)
	}
	d.metrics.reg.MustRegister(cluster.Collector(c.node, c.ann, d.clock.Now), syncCollector{d})
	return c, nil
}

// clusterConfig maps [cluster] onto the runtime's Config (docs/cluster.md §13
// step 1). prefixes are the sync interface's: the director's own addresses, and
// the accepted senders when sync_sources is empty.
func clusterConfig(cfg *config.Config, nodeID string, prefixes []netip.Prefix) (cluster.Config, error) {
	cc := &cfg.Cluster
	c := cluster.DefaultConfig(nodeID)
	c.SyncID = uint8(cc.SyncID)
	c.SyncVersion = ipvssync.Version(cc.SyncVersion)
	if cc.SyncMaxLen != 0 {
		c.SyncMaxLen = cc.SyncMaxLen
	}
	c.SyncPorts, c.SyncQLenMax, c.SyncFlush = cc.SyncPorts, cc.SyncQLenMax, cc.SyncFlush
	c.Rules = syncRules(cc)
	c.SweepRate, c.BulkRate, c.ResyncThreshold = cc.SyncSweepRate, cc.BulkRate, cc.ResyncThreshold
	c.JoinWait = cc.JoinWait
	for _, p := range prefixes {
		c.Self = append(c.Self, p.Addr())
	}
	c.Sources = slices.Clone(cc.SyncSources)
	if len(c.Sources) == 0 {
		for _, p := range prefixes {
			c.Sources = append(c.Sources, p.Masked())
		}
		// Unicast peers may sit beyond the sync interface's subnets (a routed sync
		// network): the peers the file names are senders too.
		for _, a := range cc.SyncPeers {
			c.Sources = append(c.Sources, netip.PrefixFrom(a, a.BitLen()))
		}
		if len(c.Sources) == 0 {
			return c, fmt.Errorf("%s: [cluster] sync_sources is empty and the sync interface has no address to take the subnets from: set sync_sources", cfg.File)
		}
	}
	c.ConfigDigest = config.ClusterDigest(cfg)
	if cc.SyncAuthKeyFile != "" {
		key, err := os.ReadFile(cc.SyncAuthKeyFile)
		if err != nil {
			return c, fmt.Errorf("%s: [cluster] sync_auth_key_file: %w", cfg.File, err)
		}
		if key = []byte(strings.TrimSpace(string(key))); len(key) == 0 {
			return c, fmt.Errorf("%s: [cluster] sync_auth_key_file %s is empty: write a shared secret into it", cfg.File, cc.SyncAuthKeyFile)
		}
		c.AuthKey = key
	}
	return c, nil
}

// syncRules are the sender's rules of [cluster] (sync_threshold, sync_refresh_period,
// sync_retries, sync_persist_mode): the workers decide with them which packets need
// a record (dataplane.Options.Sync), the sweeper which entries need a refresh.
func syncRules(cc *config.Cluster) ipvssync.Rules {
	return ipvssync.Rules{
		Threshold:     uint32(cc.SyncThreshold[0]),
		Period:        uint32(cc.SyncThreshold[1]),
		RefreshPeriod: cc.SyncRefreshPeriod,
		Retries:       uint8(cc.SyncRetries),
		PersistMode:   cc.SyncPersistMode != 0,
	}
}

// close releases the sockets and the device; the device's routes go with it.
func (c *clusterRun) close() {
	if c == nil {
		return
	}
	if c.net != nil {
		c.net.Close()
	}
	if c.tap != nil {
		c.tap.Close()
	}
}

// run starts the node and runs everything of cluster mode until ctx ends: the sync
// runtime, the event drainer and the gate.
func (c *clusterRun) run(ctx context.Context, d *Daemon, background func(string, func(context.Context) error)) {
	c.stall = make([]beatSample, len(c.beats))
	c.node.Start(d.clock.Now())
	c.log.Info("cluster: started", "node_id", c.ccfg.NodeID, "incarnation", fmt.Sprintf("%#x", c.node.Incarnation()),
		"sync_interface", c.iface, "peers", len(c.cfg.SyncPeers), "group", c.cfg.SyncGroup)
	background("cluster sync", func(ctx context.Context) error { return c.net.Run(ctx, c.node, d.clock) })
	background("cluster events", func(ctx context.Context) error { return c.drainEvents(ctx, d) })
	if c.vrrpMode() {
		return // the [[vrrp]] instances hold the VIPs: no gate, no routes, no BIRD
	}
	background("cluster gate", func(ctx context.Context) error { return c.gateLoop(ctx, d) })
	background("cluster bird", func(ctx context.Context) error { return c.birdLoop(ctx, d) })
}

// vrrpMode reports whether [cluster] announce = "vrrp": an active/standby pair
// whose [[vrrp]] instances hold the VIPs (docs/cluster.md §14). c may be nil.
func (c *clusterRun) vrrpMode() bool {
	return c != nil && c.cfg.Announce == config.AnnounceVRRP
}

// preemptHold is the VRRP runner's PreemptHold (docs/cluster.md §14): while this
// director's bulk sync after start is not done — the join gate that join_wait
// bounds — its VRRP instances do not take over from a lower-priority master, so
// that they take the VIPs only once they hold the connections; with
// require_same_config, also while a live peer's config digest differs. "" when
// free (or cluster mode off: c nil).
func (c *clusterRun) preemptHold(now time.Time) string {
	if c == nil {
		return ""
	}
	if c.node.Warm() {
		if c.cfg.RequireSameConfig && !c.node.ConfigMatch(now) {
			// As the BIRD gate closes on it: a director scheduling unlike its
			// peer takes no VIP from a live master.
			return "config digest differs from a live peer (require_same_config)"
		}
		return ""
	}
	j := c.node.Join(now)
	if j == nil {
		return "cluster sync not started"
	}
	if len(j.Peers) == 0 {
		return "bulk sync in progress (no peer heard yet)"
	}
	done := 0
	var records uint64
	for _, p := range j.Peers {
		if p.Complete {
			done++
		}
		records += p.Received
	}
	return fmt.Sprintf("bulk sync in progress (%d of %d peers done, %d records received)", done, len(j.Peers), records)
}

// vrrpTransition counts a VRRP instance entering or leaving MASTER. c may be nil.
func (c *clusterRun) vrrpTransition(from, to vrrp.State) {
	switch {
	case c == nil:
	case to == vrrp.StateMaster:
		c.vrrpMasters.Add(1)
	case from == vrrp.StateMaster:
		c.vrrpMasters.Add(-1)
	}
}

// vrrpContext is the context VRRP runs under: in VRRP mode it also ends with
// outer, the daemon's context before drainContext, so that on SIGTERM the
// instances let go of the VIPs at once (a master advertises priority 0 and its
// peer takes over after Skew_Time) while forwarding and sync go on for
// drain_time for the packets still on their way. Elsewhere it is ctx.
func (c *clusterRun) vrrpContext(ctx, outer context.Context) (context.Context, context.CancelFunc) {
	if !c.vrrpMode() {
		return ctx, func() {}
	}
	vctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(outer, cancel)
	return vctx, func() {
		stop()
		cancel()
	}
}

// gateLoop checks every VIP's gate every gate_interval (docs/cluster.md §7.1); when
// ctx ends it withdraws every route.
func (c *clusterRun) gateLoop(ctx context.Context, d *Daemon) error {
	tick, stop := d.clock.NewTicker(c.cfg.GateInterval)
	defer stop()
	for {
		select {
		case <-ctx.Done():
			c.withdraw()
			return nil
		case now := <-tick:
			c.step(d, now)
		}
	}
}

// birdLoop asks BIRD how it is at start and every birdEvery, on a goroutine of its
// own: a BIRD that does not answer delays no gate check.
func (c *clusterRun) birdLoop(ctx context.Context, d *Daemon) error {
	if c.bird == nil {
		return nil
	}
	tick, stop := d.clock.NewTicker(birdEvery)
	defer stop()
	c.checkBird(ctx, d.clock.Now())
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick:
			c.checkBird(ctx, now)
		}
	}
}

// step is one gate check of every VIP.
func (c *clusterRun) step(d *Daemon, now time.Time) {
	if p := d.pub.Load(); p != c.seen {
		// The controller published a new state: the VIPs or their quorum may differ.
		c.seen = p
		c.vips, c.quorum = clusterVIPs(d.Configured(), p.alive, d.markServing)
	}
	vips, quorum := c.vips, c.quorum
	base := cluster.Conditions{
		DataPath:    c.dataPathAlive(now) && linkUp(d),
		SyncWarm:    c.node.Warm(),
		Draining:    c.draining.Load(),
		ConfigMatch: c.node.ConfigMatch(now),
	}
	c.ann.Step(vips, func(vip netip.Addr) cluster.Conditions {
		cond := base
		cond.Quorum = quorum[vip]
		return cond
	})
	c.node.SetAnnounced(c.ann.Announced())
}

// clusterVIPs returns the VIPs of the configured services — a service's address, or
// the addresses an fwmark service's match rules name — and, per VIP, whether one of
// its services has quorum: a real server with weight and the service's quorum if it
// sets one (track_service's reading), for an fwmark service a real server with
// weight in the running table (markServing).
func clusterVIPs(configured []ipvs.Service, alive aliveSet, markServing func() map[ipvs.Key]bool) ([]netip.Addr, map[netip.Addr]bool) {
	quorum := map[netip.Addr]bool{}
	var vips []netip.Addr
	add := func(a netip.Addr, up bool) {
		if _, seen := quorum[a]; !seen {
			vips = append(vips, a)
		}
		quorum[a] = quorum[a] || up
	}
	var marks map[ipvs.Key]bool
	for i := range configured {
		s := &configured[i]
		switch {
		case s.FWMark != 0:
			if marks == nil {
				marks = markServing()
			}
			for _, m := range s.Match {
				add(m.Addr, marks[s.Key])
			}
		case s.Addr.IsValid():
			add(s.Addr.Addr(), alive.has(s.Addr))
		}
	}
	slices.SortFunc(vips, netip.Addr.Compare)
	return vips, quorum
}

// markServing returns, for each fwmark service the Director runs, whether it has a
// real server with weight (the health checks' verdicts are in the weights).
func (d *Daemon) markServing() map[ipvs.Key]bool {
	up := map[ipvs.Key]bool{}
	for _, v := range d.d.Services() {
		if !v.Spec.Key.IsMark() {
			continue
		}
		for _, dv := range v.Dests {
			up[v.Spec.Key] = up[v.Spec.Key] || dv.Weight > 0
		}
	}
	return up
}

// withdraw closes every gate and deletes every route (drain, shutdown).
func (c *clusterRun) withdraw() {
	if c.ann == nil {
		return // announce = "vrrp": no routes
	}
	if err := c.ann.WithdrawAll(); err != nil {
		c.log.Warn("cluster: withdrawing the VIP routes", "err", err)
	}
	c.node.SetAnnounced(false)
}

// drain enters DRAINING for why (gvs adm --cluster-drain, shutdown): the node tells
// its peers, and every route is withdrawn at once rather than at the next check;
// forwarding and sync go on.
func (c *clusterRun) drain(why string) {
	c.drainWhy.Store(&why)
	if c.draining.Swap(true) {
		return
	}
	c.node.Drain()
	c.withdraw()
	if c.vrrpMode() {
		c.log.Info("cluster: draining: VRRP gives up the VIPs at once, forwarding and sync go on", "why", why)
		return
	}
	c.log.Info("cluster: draining, VIP routes withdrawn; forwarding and sync go on", "why", why)
}

// undrain leaves DRAINING (gvs adm --cluster-undrain): the gates rise again after
// announce_rise checks.
func (c *clusterRun) undrain() bool {
	if !c.draining.Swap(false) {
		return false
	}
	c.node.Undrain()
	c.log.Info("cluster: drain ended, the gates may open again")
	return true
}

// drainContext returns the context the daemon runs under in cluster mode: when ctx
// ends (SIGTERM in gvs run) the director drains, keeps forwarding and syncing for
// drain_time so the router has moved its flows, and then the returned context ends
// (docs/cluster.md §13 step 6).
func (c *clusterRun) drainContext(ctx context.Context, clock Clock) (context.Context, context.CancelFunc) {
	inner, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stopTimer := func() bool { return false }
	var mu sync.Mutex
	stop := context.AfterFunc(ctx, func() {
		c.drain("shutdown")
		if c.cfg.DrainTime <= 0 {
			cancel()
			return
		}
		c.log.Info("cluster: stopping after drain_time", "drain_time", c.cfg.DrainTime)
		mu.Lock()
		defer mu.Unlock()
		stopTimer = clock.AfterFunc(c.cfg.DrainTime, cancel)
	})
	return inner, func() {
		stop()
		mu.Lock()
		stopTimer()
		mu.Unlock()
		cancel()
	}
}

// checkBird asks BIRD how it is and logs a change of cause once: BIRD not running
// means gvs serves, but its VIPs reach no router.
func (c *clusterRun) checkBird(ctx context.Context, now time.Time) {
	if c.bird == nil {
		return
	}
	bctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	st, err := c.bird(bctx, c.cfg.BirdSocket)
	cancel()
	if ctx.Err() != nil {
		return
	}
	cause := ""
	if err != nil {
		cause = err.Error()
	}
	c.mu.Lock()
	c.birdState, c.birdErr, c.birdAt = st, err, now
	changed := cause != c.birdCause
	c.birdCause = cause
	c.mu.Unlock()
	switch {
	case !changed:
	case errors.Is(err, cluster.ErrBirdNotRunning):
		c.log.Error("cluster: BIRD is not running: gvs serves, but no router learns its VIPs; install bird2 and run it with the configuration of gvs cluster bird-config",
			"socket", c.cfg.BirdSocket, "err", err)
	case err != nil:
		c.log.Error("cluster: BIRD does not export gvs's routes: gvs serves, but no router learns its VIPs", "socket", c.cfg.BirdSocket, "err", err)
	default:
		c.log.Info("cluster: BIRD runs gvs's configuration", "sessions_established", st.Established, "speakers", len(st.Speakers))
	}
}

// workerBeat is a worker's loop heartbeat: its link wrapped so that entering and
// leaving ReadBatch each count once — odd while the worker waits for frames, even
// while it processes a batch. Two atomic adds per batch, none per packet.
type workerBeat struct {
	dataplane.Link
	n       atomic.Uint64
	stopped atomic.Bool // ReadBatch failed: the worker's loop ends
}

func (b *workerBeat) ReadBatch(frames []dataplane.Frame) (int, error) {
	b.n.Add(1)
	k, err := b.Link.ReadBatch(frames)
	b.n.Add(1)
	if err != nil {
		b.stopped.Store(true) // Pump returns: closed, or the link failed
	}
	return k, err
}

// beatSample is the gate's last look at one worker.
type beatSample struct {
	n  uint64
	at time.Time
}

// beat wraps l, the link of a worker Run starts, in the worker's heartbeat.
func (c *clusterRun) beat(l dataplane.Link) *workerBeat {
	b := &workerBeat{Link: l}
	c.beats = append(c.beats, b)
	return b
}

// dataPathAlive reports whether every worker is alive: its loop runs and it is not
// stuck in one batch for stallAfter. A director without links (none configured)
// has no data path to lose.
func (c *clusterRun) dataPathAlive(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	alive := true
	for i, b := range c.beats {
		n := b.n.Load()
		s := &c.stall[i]
		switch {
		case b.stopped.Load() || n == 0:
			alive = false // stopped, or not started yet
		case n%2 == 1:
			*s = beatSample{n, now} // waiting for frames
		case n != s.n:
			*s = beatSample{n, now} // a new batch since the last look
		case now.Sub(s.at) >= c.stallAfter:
			alive = false
		}
	}
	return alive
}

// linkUp reports whether the director's interface is up with carrier: with it down
// the workers wait for frames that never come, alive as far as their loops go, and
// a router that still reaches the director another way would send it flows it
// cannot forward.
func linkUp(d *Daemon) bool {
	ifi, err := d.deps.Host.Interface(d.ifi.Name)
	return err == nil && ifi.Up
}

// clusterKeys are the [cluster] keys with their config.Cluster fields, for reload's
// comparison; TestClusterKeysComplete checks that every field is here.
var clusterKeys = [...]struct{ key, field string }{
	{"enabled", "Enabled"}, {"node_id", "NodeID"}, {"announce", "Announce"}, {"announce_device", "AnnounceDevice"},
	{"announce_table", "AnnounceTable"}, {"announce_proto", "AnnounceProto"}, {"announce_rise", "AnnounceRise"},
	{"announce_fall", "AnnounceFall"}, {"gate_interval", "GateInterval"}, {"join_wait", "JoinWait"},
	{"drain_time", "DrainTime"}, {"require_same_config", "RequireSameConfig"}, {"mh_order", "MHOrder"},
	{"sync_interface", "SyncInterface"}, {"sync_group", "SyncGroup"}, {"sync_port", "SyncPort"},
	{"sync_ttl", "SyncTTL"}, {"sync_id", "SyncID"}, {"sync_peers", "SyncPeers"}, {"sync_sources", "SyncSources"},
	{"sync_version", "SyncVersion"}, {"sync_maxlen", "SyncMaxLen"}, {"sync_threshold", "SyncThreshold"},
	{"sync_refresh_period", "SyncRefreshPeriod"}, {"sync_retries", "SyncRetries"},
	{"sync_persist_mode", "SyncPersistMode"}, {"sync_flush", "SyncFlush"}, {"sync_sweep_rate", "SyncSweepRate"},
	{"sync_qlen_max", "SyncQLenMax"}, {"sync_sock_size", "SyncSockSize"}, {"sync_ports", "SyncPorts"},
	{"control_port", "ControlPort"}, {"sync_auth_key_file", "SyncAuthKeyFile"}, {"bulk_rate", "BulkRate"},
	{"resync_threshold", "ResyncThreshold"}, {"bird_socket", "BirdSocket"},
}

// checkReload refuses a reload that changes [cluster]: the node's sockets, device,
// identity and sync rules are fixed at start, and a cluster whose directors run
// different settings would not be told by the digest. The error names every key
// that changed. c may be nil (cluster mode off).
func (c *clusterRun) checkReload(cfg *config.Config) error {
	var running config.Cluster
	if c != nil {
		running = c.cfg
	}
	switch {
	case !running.Enabled && !cfg.Cluster.Enabled:
		return nil
	case running.Enabled != cfg.Cluster.Enabled:
		return fmt.Errorf("%s: [cluster] enabled (%v → %v): cluster mode is turned on or off only when the director starts; restart it or keep the running value",
			cfg.File, running.Enabled, cfg.Cluster.Enabled)
	}
	old, cur := reflect.ValueOf(running), reflect.ValueOf(cfg.Cluster)
	var changed []string
	for _, k := range clusterKeys {
		a, b := old.FieldByName(k.field).Interface(), cur.FieldByName(k.field).Interface()
		if !reflect.DeepEqual(a, b) {
			changed = append(changed, fmt.Sprintf("%s (%v → %v)", k.key, a, b))
		}
	}
	if len(changed) == 0 {
		return nil
	}
	return fmt.Errorf("%s: [cluster] %s: cluster settings apply only when the director starts; restart it (gvs adm --cluster-drain first moves its flows away) or keep the running values",
		cfg.File, strings.Join(changed, ", "))
}

// reloaded takes a reload's configuration: the running digest takes its file part,
// and the heartbeats carry the result from the next events tick on. c may be nil.
func (c *clusterRun) reloaded(cfg *config.Config) {
	if c == nil {
		return
	}
	c.running.setFile(cfg)
}

// digest returns the config digest the node runs with.
func (c *clusterRun) digest() [16]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ccfg.ConfigDigest
}
