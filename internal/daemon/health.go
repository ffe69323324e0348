package daemon

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/gvs-lb/gvs/health"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/ipvs"
)

// The health layer sits between the configured services and the Director: the
// health package reports transitions, and this layer turns the configured services
// into the effective ones — a failed real server leaves the list, or with
// inhibit_on_failure stays at weight 0; a dynamic check's weight replaces the
// configured one; when the live weight falls below quorum the service keeps only its
// sorry server (if any) and quorum_down runs — as keepalived drives the kernel.
// Established connections follow IPVS's rules for a deleted or quiescent dest
// (expire_nodest_conn).
//
// The layer belongs to the daemon's controller goroutine: it is not safe for
// concurrent use, and does no I/O.

// policy is what the config says health does for one service.
type policy struct {
	quorum     health.Quorum
	sorry      netip.AddrPort
	sorryMAC   ipvs.MAC // pinned; zero: resolved like a real server's
	quorumUp   string
	quorumDown string
	// inhibit holds the real servers with inhibit_on_failure (resolved); nil
	// if none.
	inhibit map[netip.AddrPort]bool
	checked bool // the service has a [service.check], or a server its own

	// checks lists each checked real server's check IDs: the service's check, or
	// the server's own (all must pass); nil if no server is checked. The maps
	// are made at their first entry: a file of 10,000 services without checks
	// makes none (20,000 maps for the collector to mark at each cycle).
	checks map[netip.AddrPort][]string
}

// healthLayer holds the health state of every checked real server and computes the
// effective services.
type healthLayer struct {
	log *slog.Logger

	policies map[ipvs.Key]*policy
	up       map[string]bool      // by check ID
	weight   map[string]int       // dynamic weights by check ID (absent: configured)
	quorum   map[ipvs.Key]bool    // quorum state by service
	labels   map[string][2]string // metrics labels (service, server) by check ID
	services map[string]ipvs.Key  // the service of each check ID
	sorry    []netip.Addr         // sorryServers, made by configure
}

func newHealthLayer(log *slog.Logger) *healthLayer {
	return &healthLayer{log: log, policies: map[ipvs.Key]*policy{}, up: map[string]bool{}, weight: map[string]int{},
		quorum: map[ipvs.Key]bool{}, labels: map[string][2]string{}}
}

// checkID names the check of real server rs of service svc, stable across reloads.
// A server with several checks of its own has IDs checkID#2, #3 … for the second
// and later.
func checkID(svc ipvs.Key, rs netip.AddrPort) string { return svc.String() + " " + rs.String() }

// configure maps the config's checks onto health specs, one per real server, and
// records each service's policy; services are Services(cfg). Unchanged checks keep
// their state in the runner. On error the layer is unchanged.
func (h *healthLayer) configure(cfg *config.Config, services []ipvs.Service) ([]health.Spec, error) {
	policies := map[ipvs.Key]*policy{}
	labels := map[string][2]string{}
	keys := map[string]ipvs.Key{}
	var out []health.Spec
	for i := range cfg.Services {
		s := &cfg.Services[i]
		svc := &services[i]
		key := svc.Key
		p := &policy{
			quorum:     health.Quorum{Min: s.Quorum, Hysteresis: s.Hysteresis},
			sorry:      s.SorryServer,
			sorryMAC:   ipvs.MAC(s.SorryServerMAC),
			quorumUp:   s.QuorumUp,
			quorumDown: s.QuorumDown,
			checked:    s.Check != nil, // or a server's own check, below
		}
		policies[key] = p
		for j := range s.RealServers {
			addr := svc.RealServers[j].Addr
			if s.RealServers[j].InhibitOnFailure {
				if p.inhibit == nil {
					p.inhibit = map[netip.AddrPort]bool{}
				}
				p.inhibit[addr] = true
			}
			// A server's own checks replace the service's (docs/scripts.md §2).
			list := s.RealServers[j].Checks
			if list == nil && s.Check != nil {
				list = []config.Check{*s.Check}
			}
			base := checkID(key, addr)
			for k := range list {
				c := &list[k]
				hs, err := healthSpec(c, svc, addr)
				if err != nil {
					return nil, fmt.Errorf("%s:%d: service %s: real server %s: check: %w", cfg.File, c.Line, s, addr, err)
				}
				hs.ID = base
				if k > 0 {
					hs.ID = base + "#" + strconv.Itoa(k+1)
				}
				if p.checks == nil {
					p.checks = map[netip.AddrPort][]string{}
				}
				p.checks[addr] = append(p.checks[addr], hs.ID)
				labels[hs.ID] = [2]string{ServiceLabel(svc), ServerLabel(addr.Addr(), addr.Port())}
				keys[hs.ID] = key
				out = append(out, hs)
				p.checked = true
			}
		}
	}
	h.policies, h.labels, h.services = policies, labels, keys
	h.sorry = nil
	for _, p := range policies {
		if p.sorry.IsValid() && p.sorryMAC.IsZero() {
			h.sorry = append(h.sorry, p.sorry.Addr())
		}
	}
	return out, nil
}

// healthSpec maps one [service.check] (or a server's own check) of service svc
// onto a health.Spec for target. An exec check is told which server it checks:
// GVS_RS_ADDR, GVS_RS_PORT, GVS_VS_ADDR and GVS_VS_PORT in its environment, and
// {rs_addr} and {rs_port} in its command replaced (docs/scripts.md §2).
func healthSpec(c *config.Check, svc *ipvs.Service, target netip.AddrPort) (health.Spec, error) {
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
	if c.Type == config.CheckExec {
		s.Command = make([]string, len(c.Command))
		for i, w := range c.Command {
			s.Command[i] = strings.NewReplacer("{rs_addr}", target.Addr().String(), "{rs_port}", strconv.Itoa(int(target.Port()))).Replace(w)
		}
		s.Env = []string{"GVS_RS_ADDR=" + target.Addr().String(), "GVS_RS_PORT=" + strconv.Itoa(int(target.Port()))}
		if svc.FWMark != 0 {
			s.Env = append(s.Env, "GVS_VS_FWMARK="+strconv.FormatUint(uint64(svc.FWMark), 10))
		} else {
			s.Env = append(s.Env, "GVS_VS_ADDR="+svc.Addr.Addr().String(), "GVS_VS_PORT="+strconv.Itoa(int(svc.Addr.Port())))
		}
	}
	s.Interval, s.Timeout, s.Retries, s.RetryDelay = c.Interval, c.Timeout, c.Retries, c.RetryDelay
	s.Rise, s.Fall, s.Alpha, s.Omega = c.Rise, c.Fall, c.Alpha, c.Omega
	return s, s.Validate()
}

// seed records starting states (alpha: down until the first pass) for checks the
// layer has not seen yet, from the runner's snapshot, and forgets removed checks.
func (h *healthLayer) seed(st []health.Status) {
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

// serverUp reports whether the real server that check id belongs to passes all of
// its checks (one not reported yet counts as passing): what its health gauge shows
// when it has several.
func (h *healthLayer) serverUp(id string) bool {
	for _, p := range h.policies {
		for _, ids := range p.checks {
			if !slices.Contains(ids, id) {
				continue
			}
			for _, c := range ids {
				if up, known := h.up[c]; known && !up {
					return false
				}
			}
			return true
		}
	}
	return h.up[id]
}

// label returns the metrics labels (service, server) of a check.
func (h *healthLayer) label(id string) (string, string) {
	l := h.labels[id]
	return l[0], l[1]
}

// transition records a runner transition.
func (h *healthLayer) transition(tr health.Transition) {
	h.up[tr.ID] = tr.Up
	if tr.Weight >= 0 {
		h.weight[tr.ID] = tr.Weight
	}
}

// sorryServers returns the sorry servers whose MAC the config does not pin.
// They are listed once per configure: every gvs adm command asks (markMissing).
func (h *healthLayer) sorryServers() []netip.Addr { return h.sorry }

// shaped is the outcome of effective: what the Director should run, and what
// commit records once it does.
type shaped struct {
	services []ipvs.Service
	cmds     []string // quorum_up / quorum_down commands to run
	quorum   map[ipvs.Key]bool
	// alive records, by service address, whether the service has a real server
	// with weight and its quorum (sorry servers do not count): VRRP's
	// track_service.
	alive map[netip.AddrPort]bool
}

// effective returns the services the Director should run for the configured ones
// (whose MACs are filled in already; mac resolves a sorry server's) and the quorum
// commands to run for services whose quorum state changes. It changes nothing:
// commit records the result once the Director took it.
func (h *healthLayer) effective(services []ipvs.Service, mac func(netip.Addr) ipvs.MAC) shaped {
	return h.effectiveIn(nil, services, mac)
}

// effectiveIn is effective writing the services into buf's memory (grown if
// need be), which the result's services then are: a delta's, in the
// controller's scratch.
func (h *healthLayer) effectiveIn(buf, services []ipvs.Service, mac func(netip.Addr) ipvs.MAC) shaped {
	// The maps are made at their first entry: a command's service without
	// checks or real servers needs neither. Every entry of services is
	// written below.
	res := shaped{services: slices.Grow(buf[:0], len(services))[:len(services)]}
	markAlive := func(s *ipvs.Service, servers []ipvs.RealServer) {
		if s.FWMark != 0 || !s.Addr.IsValid() {
			return
		}
		for _, rs := range servers {
			if rs.Weight > 0 {
				if res.alive == nil {
					res.alive = map[netip.AddrPort]bool{}
				}
				res.alive[s.Addr] = true
			}
		}
	}
	for i, s := range services {
		key := s.Key
		p := h.policies[key]
		if p == nil || !p.checked {
			markAlive(&s, s.RealServers)
			res.services[i] = s
			continue
		}
		var members []health.Member
		kept := make([]ipvs.RealServer, 0, len(s.RealServers))
		for _, rs := range s.RealServers {
			// Up while every check of the server passes (one not reported yet
			// counts as passing); a dynamic weight comes from the last that has one.
			up := true
			for _, id := range p.checks[rs.Addr] {
				if u, known := h.up[id]; known && !u {
					up = false
				}
				if w, ok := h.weight[id]; ok {
					rs.Weight = int32(w)
				}
			}
			members = append(members, health.Member{Up: up, Weight: int64(rs.Weight)})
			switch {
			case up:
				kept = append(kept, rs)
			case p.inhibit[rs.Addr]:
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
		if res.quorum == nil {
			res.quorum = map[ipvs.Key]bool{}
		}
		res.quorum[key] = q
		if seen && q != prev {
			h.log.Info("quorum", "service", key.String(), "up", q, "live_weight", live)
			if q && p.quorumUp != "" {
				res.cmds = append(res.cmds, p.quorumUp)
			}
			if !q && p.quorumDown != "" {
				res.cmds = append(res.cmds, p.quorumDown)
			}
		}
		if q {
			markAlive(&s, kept)
		}
		if !q && p.sorry.IsValid() {
			method := ipvs.DR
			if len(s.RealServers) > 0 {
				method = s.RealServers[0].Method
			}
			m := p.sorryMAC
			if m.IsZero() {
				m = mac(p.sorry.Addr())
			}
			kept = []ipvs.RealServer{{Addr: p.sorry, Weight: 1, MAC: m, Method: method}}
		}
		s.RealServers = kept
		res.services[i] = s
	}
	return res
}

// commit records the quorum states of a result the Director took.
func (h *healthLayer) commit(res shaped) {
	h.quorum = res.quorum
}
