package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"sync"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/health"
	"github.com/gvs-lb/gvs/internal/config"
)

// The health layer sits between the configured services and the Director: the
// health package reports transitions, and this layer turns the configured service
// specs into the effective ones — a failed real server leaves the list, or with
// inhibit_on_failure stays at weight 0; a dynamic check's weight replaces the
// configured one; when the live weight falls below quorum the service keeps only its
// sorry server (if any) and quorum_down runs — as keepalived drives the kernel.
// Established connections follow IPVS's rules for a deleted or quiescent dest
// (expire_nodest_conn).

// policy is what the config says health does for one service.
type policy struct {
	quorum     health.Quorum
	sorry      netip.AddrPort
	sorryMAC   net.HardwareAddr
	quorumUp   string
	quorumDown string
	inhibit    map[netip.AddrPort]bool // per real server, resolved
	checked    bool                    // the service has a [service.check]
}

// healthLayer holds the health state of every checked real server and computes the
// effective services. It is safe for concurrent use.
type healthLayer struct {
	log *slog.Logger

	mu       sync.Mutex
	policies map[string]*policy   // by service key (ServiceSpec.String())
	up       map[string]bool      // by check ID
	weight   map[string]int       // dynamic weights by check ID (absent: configured)
	quorum   map[string]bool      // quorum state by service key
	labels   map[string][2]string // metrics labels (service, server) by check ID
	// alive records, by service address, whether the last effective() left the
	// service a real server with weight (sorry servers do not count): VRRP's
	// track_service.
	alive map[netip.AddrPort]bool
}

func newHealthLayer(log *slog.Logger) *healthLayer {
	return &healthLayer{log: log, policies: map[string]*policy{}, up: map[string]bool{}, weight: map[string]int{}, quorum: map[string]bool{}, labels: map[string][2]string{},
		alive: map[netip.AddrPort]bool{}}
}

// checkID names the check of real server rs of service svc, stable across reloads.
func checkID(svc string, rs netip.AddrPort) string { return svc + " " + rs.String() }

// healthSpecs maps the config's checks onto health specs, one per real server, and
// records each service's policy. Unchanged checks keep their state in the Monitor.
func (h *healthLayer) configure(cfg *config.Config, specs []dataplane.ServiceSpec, macs map[netip.Addr]net.HardwareAddr) ([]health.Spec, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.policies = map[string]*policy{}
	var out []health.Spec
	for i := range cfg.Services {
		s := &cfg.Services[i]
		key := specs[i].String()
		p := &policy{
			quorum:     health.Quorum{Min: s.Quorum, Hysteresis: s.Hysteresis},
			sorry:      s.SorryServer,
			quorumUp:   s.QuorumUp,
			quorumDown: s.QuorumDown,
			inhibit:    map[netip.AddrPort]bool{},
			checked:    s.Check != nil,
		}
		if !s.SorryServerMAC.IsZero() {
			p.sorryMAC = s.SorryServerMAC.HardwareAddr()
		} else if s.SorryServer.IsValid() {
			p.sorryMAC = macs[s.SorryServer.Addr()]
		}
		h.policies[key] = p
		for _, rs := range s.RealServers {
			p.inhibit[rs.Address] = rs.InhibitOnFailure
			if s.Check == nil {
				continue
			}
			hs, err := healthSpec(s.Check, rs.Address)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: service %s: check: %w", cfg.File, s.Check.Line, s, err)
			}
			hs.ID = checkID(key, rs.Address)
			h.labels[hs.ID] = [2]string{ServiceLabel(&specs[i]), ServerLabel(rs.Address.Addr(), rs.Address.Port())}
			out = append(out, hs)
		}
	}
	return out, nil
}

// healthSpec maps one [service.check] onto a health.Spec for target.
func healthSpec(c *config.Check, target netip.AddrPort) (health.Spec, error) {
	t, err := health.ParseType(c.Type.String())
	if err != nil {
		return health.Spec{}, err
	}
	s := health.Defaults(t)
	s.Type, s.Target = t, target
	s.ConnectIP, s.ConnectPort = c.ConnectIP, c.ConnectPort
	s.Path, s.Expect, s.Digest, s.Host, s.SNI, s.TLSVerify = c.Path, c.Expect, c.Digest, c.Host, c.SNI, c.TLSVerify
	for _, code := range c.StatusCodes {
		s.StatusCodes = append(s.StatusCodes, health.StatusRange{Lo: code, Hi: code})
	}
	if c.Payload != "" {
		s.Payload = []byte(c.Payload)
	}
	s.Command = c.Command
	s.Interval, s.Timeout, s.Retries, s.RetryDelay = c.Interval, c.Timeout, c.Retries, c.RetryDelay
	s.Rise, s.Fall, s.Alpha, s.Omega = c.Rise, c.Fall, c.Alpha, c.Omega
	return s, s.Validate()
}

// seed records starting states (alpha: down until the first pass) for checks the
// layer has not seen yet, from the Monitor's snapshot.
func (h *healthLayer) seed(st []health.Status) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := map[string]bool{}
	for _, s := range st {
		seen[s.ID] = true
		if _, ok := h.up[s.ID]; !ok {
			h.up[s.ID] = s.Up
		}
	}
	for id := range h.up {
		if !seen[id] {
			delete(h.up, id)
			delete(h.weight, id)
		}
	}
}

// label returns the metrics labels (service, server) of a check.
func (h *healthLayer) label(id string) (string, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.labels[id]
	return l[0], l[1]
}

// transition records a Monitor transition.
func (h *healthLayer) transition(tr health.Transition) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.up[tr.ID] = tr.Up
	if tr.Weight >= 0 {
		h.weight[tr.ID] = tr.Weight
	}
}

// effective returns the specs the Director should run and the quorum commands to
// run (quorum_up / quorum_down) for services whose quorum state changed.
func (h *healthLayer) effective(specs []dataplane.ServiceSpec) ([]dataplane.ServiceSpec, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]dataplane.ServiceSpec, len(specs))
	var cmds []string
	alive := map[netip.AddrPort]bool{}
	defer func() { h.alive = alive }()
	markAlive := func(s *dataplane.ServiceSpec, servers []dataplane.RealServerSpec) {
		if s.FWMark != 0 || !s.Addr.IsValid() {
			return
		}
		ap := netip.AddrPortFrom(s.Addr, s.Port)
		for _, rs := range servers {
			if rs.Weight > 0 {
				alive[ap] = true
			}
		}
	}
	for i, s := range specs {
		key := s.String()
		p := h.policies[key]
		if p == nil || !p.checked {
			markAlive(&s, s.RealServers)
			out[i] = s
			continue
		}
		var members []health.Member
		kept := make([]dataplane.RealServerSpec, 0, len(s.RealServers))
		for _, rs := range s.RealServers {
			ap := netip.AddrPortFrom(rs.Addr, rs.Port)
			id := checkID(key, ap)
			up, known := h.up[id]
			if !known {
				up = true
			}
			if w, ok := h.weight[id]; ok {
				rs.Weight = int32(w)
			}
			members = append(members, health.Member{Up: up, Weight: int64(rs.Weight)})
			switch {
			case up:
				kept = append(kept, rs)
			case p.inhibit[ap]:
				rs.Weight = 0
				kept = append(kept, rs)
			}
		}
		live := health.LiveWeight(members)
		prev, seen := h.quorum[key]
		var q bool
		if seen {
			q = p.quorum.Next(prev, live)
		} else {
			q = p.quorum.Initial(live)
		}
		h.quorum[key] = q
		if seen && q != prev {
			h.log.Info("quorum", "service", key, "up", q, "live_weight", live)
			if q && p.quorumUp != "" {
				cmds = append(cmds, p.quorumUp)
			}
			if !q && p.quorumDown != "" {
				cmds = append(cmds, p.quorumDown)
			}
		}
		if q {
			markAlive(&s, kept)
		}
		if !q && p.sorry.IsValid() {
			method := dataplane.MethodDR
			if len(s.RealServers) > 0 {
				method = s.RealServers[0].Method
			}
			kept = []dataplane.RealServerSpec{{Addr: p.sorry.Addr(), Port: p.sorry.Port(), Weight: 1, MAC: p.sorryMAC, Method: method}}
		}
		s.RealServers = kept
		out[i] = s
	}
	return out, cmds
}

// serviceUp reports whether the service with address ap has a live real server
// (one with weight, its quorum met), as of the last effective().
func (h *healthLayer) serviceUp(ap netip.AddrPort) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.alive[ap]
}

// runCommands runs quorum commands with /bin/sh -c, each bounded by a minute, without
// blocking the caller.
func runCommands(log *slog.Logger, cmds []string) {
	for _, c := range cmds {
		go func(c string) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if out, err := exec.CommandContext(ctx, "/bin/sh", "-c", c).CombinedOutput(); err != nil {
				log.Warn("quorum command failed", "command", c, "err", err, "output", string(out))
			}
		}(c)
	}
}
