package cluster

import (
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// Conditions are what the gate of one VIP checks every gate_interval
// (docs/cluster.md §7.1). All must hold for the VIP to be announced.
type Conditions struct {
	DataPath    bool // every worker's loop heartbeat is fresh and the ring has no error
	Quorum      bool // at least one service on the VIP has quorum
	SyncWarm    bool // the director left SYNCING (Node.Warm)
	Draining    bool // SIGTERM or gvs adm drain: withdraw at once
	ConfigMatch bool // every live peer's config digest equals ours (consulted with RequireSameConfig)
}

// GateConfig is the hysteresis of the gate.
type GateConfig struct {
	Rise              int  // announce_rise: consecutive passes before announcing (≥ 1)
	Fall              int  // announce_fall: consecutive failures before withdrawing (≥ 1)
	RequireSameConfig bool // require_same_config: a config digest mismatch closes the gate
}

// failure returns the first condition that does not hold, or "".
func (c *Conditions) failure(g *GateConfig) string {
	switch {
	case c.Draining:
		return "draining"
	case !c.SyncWarm:
		return "sync_cold"
	case !c.DataPath:
		return "data_path"
	case !c.Quorum:
		return "quorum"
	case g.RequireSameConfig && !c.ConfigMatch:
		return "config_mismatch"
	}
	return ""
}

// Gate is one VIP's announcement decision with hysteresis: it opens after Rise
// consecutive passes and closes after Fall consecutive failures — or at once when
// draining. Rising is slow and falling fast because a flapping VIP moves half of a
// hash-threshold router's flows each time. The zero value is closed; a Gate is not
// safe for concurrent use.
type Gate struct {
	open   bool
	passes int
	fails  int
	reason string
}

// Step evaluates one check and reports whether the gate is open and whether this
// step changed it.
func (g *Gate) Step(cfg *GateConfig, c Conditions) (open, changed bool) {
	why := c.failure(cfg)
	g.reason = why
	if why == "" {
		g.fails = 0
		g.passes++
		if !g.open && g.passes >= max(cfg.Rise, 1) {
			g.open = true
			return true, true
		}
		return g.open, false
	}
	g.passes = 0
	g.fails++
	if g.open && (why == "draining" || g.fails >= max(cfg.Fall, 1)) {
		g.open = false
		return false, true
	}
	return g.open, false
}

// Open reports whether the gate is open.
func (g *Gate) Open() bool { return g.open }

// Reason returns the condition that failed at the last step ("" when all held).
func (g *Gate) Reason() string { return g.reason }

// Routes is where an Announcer puts the routes of announced VIPs: the TAP device and
// kernel table of docs/cluster.md §7.2, or a fake.
type Routes interface {
	Add(vip netip.Addr) error
	Delete(vip netip.Addr) error
}

// Announcer owns one Gate per VIP and keeps Routes in step with them: a route is
// added when a gate opens and deleted when it closes; a failed add or delete is
// retried at the next step, counted and logged once per VIP and cause. It is safe for
// concurrent use.
type Announcer struct {
	mu     sync.Mutex
	cfg    GateConfig
	routes Routes
	log    *slog.Logger
	vips   map[netip.Addr]*vipState
	errors atomic.Uint64
	opened atomic.Uint64
	closed atomic.Uint64
}

type vipState struct {
	gate      Gate
	cond      Conditions // at the last step
	announced bool       // the route is in place
	lastErr   string     // the last route error logged, to log each cause once
}

// NewAnnouncer returns an Announcer for cfg putting routes into r.
func NewAnnouncer(cfg GateConfig, r Routes, log *slog.Logger) (*Announcer, error) {
	if cfg.Rise < 1 || cfg.Fall < 1 {
		return nil, errors.New("cluster: announce_rise and announce_fall must be at least 1")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Announcer{cfg: cfg, routes: r, log: log, vips: map[netip.Addr]*vipState{}}, nil
}

// Step checks every VIP in vips with the conditions cond gives it; VIPs no longer in
// vips are withdrawn and forgotten.
func (a *Announcer) Step(vips []netip.Addr, cond func(netip.Addr) Conditions) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for vip, s := range a.vips {
		if !slices.Contains(vips, vip) {
			s.gate = Gate{}
			if a.syncLocked(vip, s) {
				delete(a.vips, vip)
			}
		}
	}
	for _, vip := range vips {
		s := a.vips[vip]
		if s == nil {
			s = &vipState{}
			a.vips[vip] = s
		}
		s.cond = cond(vip)
		open, changed := s.gate.Step(&a.cfg, s.cond)
		if changed {
			if open {
				a.opened.Add(1)
				a.log.Info("cluster: gate open, announcing", "vip", vip)
			} else {
				a.closed.Add(1)
				a.log.Warn("cluster: gate closed, withdrawing", "vip", vip, "reason", s.gate.Reason())
			}
		}
		a.syncLocked(vip, s)
	}
}

// syncLocked brings the route of vip in line with its gate; it reports whether they
// agree.
func (a *Announcer) syncLocked(vip netip.Addr, s *vipState) bool {
	if s.announced == s.gate.Open() {
		return true
	}
	var err error
	if s.gate.Open() {
		err = a.routes.Add(vip)
	} else {
		err = a.routes.Delete(vip)
	}
	if err != nil {
		a.errors.Add(1)
		if msg := err.Error(); msg != s.lastErr {
			s.lastErr = msg
			a.log.Error("cluster: changing a VIP's announcement route failed; retrying", "vip", vip, "err", err)
		}
		return false
	}
	s.lastErr = ""
	s.announced = s.gate.Open()
	return true
}

// WithdrawAll closes every gate and deletes every route (drain, shutdown).
func (a *Announcer) WithdrawAll() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for vip, s := range a.vips {
		s.gate = Gate{}
		if !a.syncLocked(vip, s) {
			errs = append(errs, errors.New("cluster: withdrawing "+vip.String()+" failed"))
		}
	}
	return errors.Join(errs...)
}

// VIPStatus is one VIP's announcement as gvs adm --cluster shows it.
type VIPStatus struct {
	VIP       netip.Addr
	Open      bool   // the gate
	Announced bool   // the route is in place
	Reason    string // the failing condition at the last check ("" when all held)
}

// Status returns every VIP's state, sorted by address.
func (a *Announcer) Status() []VIPStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]VIPStatus, 0, len(a.vips))
	for vip, s := range a.vips {
		out = append(out, VIPStatus{VIP: vip, Open: s.gate.Open(), Announced: s.announced, Reason: s.gate.Reason()})
	}
	slices.SortFunc(out, func(x, y VIPStatus) int { return x.VIP.Compare(y.VIP) })
	return out
}

// Announced reports whether any VIP's route is in place (Node.SetAnnounced).
func (a *Announcer) Announced() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.vips {
		if s.announced {
			return true
		}
	}
	return false
}
